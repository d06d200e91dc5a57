"""The parsed folder that ``seqrnn parse`` writes and every sequence-reading command reads.

==================  ==========================================================================
``events``          one event id per parsed line, in log order (the ``stream`` format)
``sessions``        ``session_id,e e e`` per session, when lines were grouped (``sessions``)
``sessions.index``  ``session_id,i i i``: the rows of ``events`` (1-based) of each session
``lines.csv``       per row of ``events``: ``file`` (its index in ``parse.json``'s ``files``) and
                    ``line``: where the raw line is
``parameters``      per row of ``events``: the variable parts of the message, space-separated
``templates.csv``   ``id,template,count``
``parser.json``     the parser state (plain JSON, see :mod:`seqrnn.parse.miner`) to resume from
``parse.json``      what was parsed and how: files, counts, log format, grouping, speed
``malformed.csv``   ``file,line`` of each line that did not fit the log format
==================  ==========================================================================
"""

from __future__ import annotations

import csv
import json
import os

from ..errors import InputError

FOLDER_FORMAT = "seqrnn-parsed"
FOLDER_VERSION = 1
MARKER = "parse.json"


def is_parsed_folder(path) -> bool:
    """Whether ``path`` is a folder written by ``seqrnn parse``."""
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(path, MARKER))


def read_info(folder: str) -> dict:
    path = os.path.join(folder, MARKER)
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the parsed folder's description: {exc}", path) from None
    if not isinstance(info, dict) or info.get("format") != FOLDER_FORMAT:
        raise InputError("not a parsed folder written by seqrnn parse", path)
    if info.get("version") != FOLDER_VERSION:
        raise InputError(f"parsed folder version {info.get('version')!r} is not {FOLDER_VERSION}", path)
    files = info.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise InputError("bad file list", path)
    return info


def _rows(path: str):
    try:
        fh = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None
    with fh:
        yield from enumerate(csv.reader(fh), start=1)


def read_events(folder: str) -> list[str]:
    path = os.path.join(folder, "events")
    try:
        with open(path, encoding="utf-8") as fh:
            return [t.strip() for t in fh if t.strip()]
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None


def read_locations(folder: str, n_files: int):
    """``(file index, line)`` arrays, one entry per row of ``events``."""
    import numpy as np

    path = os.path.join(folder, "lines.csv")
    files, lines = [], []
    for number, row in _rows(path):
        if number == 1:
            continue
        try:
            f, ln = int(row[0]), int(row[1])
        except (ValueError, IndexError):
            raise InputError("expected file index and line number", path, number) from None
        if not 0 <= f < n_files:
            raise InputError(f"file index {f} out of range", path, number)
        files.append(f)
        lines.append(ln)
    return np.asarray(files, dtype=np.int32), np.asarray(lines, dtype=np.int64)


def read_parameters(folder: str) -> list[list[str]]:
    """The parameters of each row of ``events``."""
    path = os.path.join(folder, "parameters")
    try:
        with open(path, encoding="utf-8", newline="\n") as fh:
            return [line.split() for line in fh]
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None


def read_templates(folder: str) -> dict[str, str]:
    """Event id -> template text."""
    path = os.path.join(folder, "templates.csv")
    out = {}
    for number, row in _rows(path):
        if number == 1:
            continue
        if len(row) < 2:
            raise InputError("expected id,template,count", path, number)
        out[row[0]] = row[1]
    return out


def read_parsed(folder: str, format: str | None = None):
    """The sequences of a parsed folder: its sessions (``format`` ``"sessions"``, the default when it
    has them) or its event stream (``"stream"``); each event points at its raw line (file:line)."""
    from ..data.formats import Sequence

    info = read_info(folder)
    has_sessions = bool(info.get("grouping"))
    fmt = format or ("sessions" if has_sessions else "stream")
    if fmt not in ("sessions", "stream"):
        raise InputError(f"a parsed folder holds sessions or a stream, not {fmt}", folder, params="format")
    if fmt == "sessions" and not has_sessions:
        raise InputError("parsed folder has no sessions (it was parsed without grouping): read it with "
                         "format stream, or parse again with a grouping (--session, --window, ...)",
                         folder, params="format")
    sources = [f["path"] for f in info["files"]]
    events = read_events(folder)
    files, lines = read_locations(folder, len(sources))
    if len(files) != len(events):
        raise InputError(f"lines.csv has {len(files)} rows for {len(events)} events", folder)
    if not events:
        raise InputError("parsed folder holds no events", folder)
    if fmt == "stream":
        return [Sequence("stream", events, sources[0] if len(sources) == 1 else folder, int(lines[0]),
                         complete=False, lines=lines, files=files, sources=sources)]
    import numpy as np

    out = []
    path = os.path.join(folder, "sessions.index")
    for number, row in _rows(path):
        if len(row) != 2:
            raise InputError("expected session_id,rows", path, number)
        try:
            rows = np.asarray([int(i) - 1 for i in row[1].split()], dtype=np.int64)
        except ValueError:
            raise InputError("rows must be numbers", path, number) from None
        if len(rows) == 0 or rows.min() < 0 or rows.max() >= len(events):
            raise InputError("row out of range", path, number)
        first = int(rows[0])
        out.append(Sequence(row[0], [events[i] for i in rows], sources[int(files[first])], int(lines[first]),
                            complete=True, lines=lines[rows], files=files[rows], sources=sources))
    if not out:
        raise InputError("parsed folder holds no sessions", folder)
    return out


def parsed_inputs(paths, format: str | None = None):
    """The sequences of ``paths`` when they name parsed folders (one or more), else None. Mixing a
    parsed folder with other input is refused."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [p for p in paths]
    if not all(isinstance(p, (str, os.PathLike)) for p in paths):
        return None
    parsed = [is_parsed_folder(p) for p in paths]
    if not any(parsed):
        return None
    if not all(parsed):
        raise InputError("a parsed folder cannot be read together with other input files",
                         str(paths[parsed.index(False)]))
    out = []
    for p in paths:
        out.extend(read_parsed(str(p), format))
    return out


KEPT = ("parser.json", "parse.json", "templates.csv")


def keep_parser(inputs, model_dir: str) -> None:
    """When a model is trained on one parsed folder, keep its parser state, description and
    templates in ``MODEL/parser`` (what ``seqrnn watch`` parses new lines with)."""
    import shutil

    folders = [p for p in ([inputs] if isinstance(inputs, str) else inputs) if is_parsed_folder(p)]
    if len(folders) != 1:
        return
    dest = os.path.join(model_dir, "parser")
    os.makedirs(dest, exist_ok=True)
    for name in KEPT:
        src = os.path.join(folders[0], name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(dest, name))
