"""The parsed folder that ``seqrnn parse`` writes and every sequence-reading command reads.

==================  ==========================================================================
``events``          one event id per parsed line, in log order (the ``stream`` format)
``sessions``        ``session_id,e e e`` per session, when lines were grouped (``sessions``)
``sessions.index``  ``session_id,i i i``: the rows of ``events`` (1-based) of each session
``lines.csv``       per row of ``events``: ``file`` (its index in ``parse.json``'s ``files``) and
                    ``line``: where the raw line is
``parameters``      per row of ``events``: the variable parts of the message, space-separated
``templates.csv``   ``id,template,count``: every template of the parser state; ``count`` is its lines
                    in every parse of that state (with ``--resume``, the earlier folders' too)
``parser.json``     the parser state (plain JSON, see :mod:`seqrnn.parse.miner`) to resume from
``parse.json``      what was parsed and how: files, counts, log format, grouping, speed
``malformed.csv``   ``file,line`` of each line that did not fit the log format
==================  ==========================================================================
"""

from __future__ import annotations

import csv
import json
import math
import os
import re

from ..errors import InputError

FOLDER_FORMAT = "seqrnn-parsed"
FOLDER_VERSION = 1
MARKER = "parse.json"
# parse.json while a parse writes the folder (replaced by the summary at its end)
UNFINISHED = {"format": FOLDER_FORMAT, "version": FOLDER_VERSION, "state": "parsing"}


def is_parsed_folder(path) -> bool:
    """Whether ``path`` is a folder written by ``seqrnn parse``."""
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(path, MARKER))


def read_info(folder: str) -> dict:
    path = os.path.join(folder, MARKER)
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"cannot read the parsed folder's description: {str(exc)[:200]}", path) from None
    if not isinstance(info, dict) or info.get("format") != FOLDER_FORMAT:
        raise InputError("not a parsed folder written by seqrnn parse", path)
    if info.get("state") == "failed":
        raise InputError(f"the parse writing this folder failed ({str(info.get('error'))[:300]}): parse again",
                         path)
    if info.get("state") == "parsing":
        raise InputError("the parse writing this folder did not finish (it was stopped, or is still running): "
                         "parse the log again", path)
    if info.get("version") != FOLDER_VERSION:
        raise InputError(f"parsed folder version {info.get('version')!r} is not {FOLDER_VERSION}", path)
    files = info.get("files")
    if not isinstance(files, list) or not files or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("abspath"), (str, type(None)))
            for f in files):
        raise InputError("bad file list", path)
    if not isinstance(info.get("log_format"), (str, type(None))):
        raise InputError("bad log_format (text, or null)", path)
    problem = _grouping_problem(info.get("grouping"))
    if problem:
        raise InputError(f"bad grouping: {problem}", path)
    return info


def _grouping_problem(g) -> str | None:
    """What is wrong with a ``grouping`` entry of ``parse.json`` (None: nothing)."""
    if g is None:
        return None
    text = lambda v: isinstance(v, str)  # noqa: E731
    seconds = lambda v: type(v) in (int, float) and math.isfinite(v) and v > 0  # noqa: E731
    fields = {"id": {"pattern": text}, "field": {"field": text},
              "lines": {"lines": lambda v: type(v) is int and v >= 1},
              "time": {"window": seconds, "step": seconds, "time_format": text,
                       "time_fields": lambda v: isinstance(v, list) and bool(v) and all(map(text, v))}}
    if not isinstance(g, dict) or g.get("by") not in fields:
        return f"{str(g)[:80]} is not a grouping seqrnn parse writes (by id, field, lines or time)"
    wrong = [k for k, ok in fields[g["by"]].items() if not ok(g.get(k))]
    return f"a grouping by {g['by']} with a missing or wrong {', '.join(wrong)}" if wrong else None


MAX_NUMBER = 1 << 62  # larger line or row numbers than any file holds (and than int64 takes)
_WHOLE = re.compile(r"0|[1-9][0-9]{0,17}")  # a whole number as parse writes it, below MAX_NUMBER


def _lines(path: str):
    """``(number, text)`` of each line of ``path`` (line end dropped); a line that is not UTF-8 is an error."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise InputError("not UTF-8 text (not written by seqrnn parse)", path, number) from None
            if "\r" in text:  # only \n ends a line, as for every reader (seqrnn.data.formats)
                raise InputError(f"carriage return at column {text.index(chr(13)) + 1} inside a line (not written "
                                 "by seqrnn parse)", path, number)
            yield number, text


def _rows(path: str):
    """``(number, fields)`` of each CSV line of ``path`` (no field spans lines in what parse writes). A field
    may be as long as its line: a template is as long as its raw line (up to ``tail.RAW_LINE_LIMIT``), and
    the csv module's own limit (131,072 characters) refused the templates.csv parse wrote for a longer one."""
    for number, text in _lines(path):
        limit = csv.field_size_limit()
        try:
            if len(text) > limit:
                csv.field_size_limit(len(text))
            yield number, next(csv.reader([text]), [])
        except csv.Error as exc:
            raise InputError(f"not a CSV row: {exc}", path, number) from None
        finally:
            csv.field_size_limit(limit)


def _number(text: str, path: str, number: int, what: str, low: int = 0) -> int:
    """A whole number written as parse writes it (decimal digits, no sign or leading zero), in
    ``[low, MAX_NUMBER)``."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        raise InputError(f"{what} {text[:40]!r} is not a whole number", path, number)
    value = int(text) if len(text) < 20 else MAX_NUMBER
    if not low <= value < MAX_NUMBER:
        raise InputError(f"{what} {text[:40]} is out of range (at least {low}, below 2**62)", path, number)
    return value


def _whole_file(path: str) -> str | None:
    """The text of ``path`` when it is UTF-8 (None otherwise: :func:`_lines` then says where it is not)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# possessive (*+): the match keeps no state per row, so a file of millions of rows costs no memory
_EVENTS = re.compile(r"(?:(?:0|[1-9][0-9]{0,17})\n)*+")
_LOCATIONS = re.compile(r"file,line\n(?:(?:0|[1-9][0-9]{0,17}),[1-9][0-9]{0,17}\n)*+")


def read_events(folder: str) -> list[str]:
    """The event ids of ``events`` (template ids: whole numbers), one per parsed line."""
    path = os.path.join(folder, "events")
    text = _whole_file(path)
    if text is not None and _EVENTS.fullmatch(text):  # as parse writes it: checked at once
        return text.split()
    out = []
    for number, text in _lines(path):
        t = text.strip()
        if t:
            if not _WHOLE.fullmatch(t):
                _number(t, path, number, "event id")
            out.append(t)
    return out


def read_locations(folder: str, n_files: int):
    """``(file index, line)`` arrays, one entry per row of ``events``."""
    import numpy as np

    path = os.path.join(folder, "lines.csv")
    text = _whole_file(path)
    if text is not None and _LOCATIONS.fullmatch(text):  # as parse writes it: checked at once
        values = np.array(list(map(int, text[len("file,line\n"):].replace(",", "\n").split())), dtype=np.int64)
        if not len(values) or values[0::2].max() < n_files:
            return values[0::2].astype(np.int32), values[1::2]
    files, lines = [], []
    for number, text in _lines(path):
        row = text.split(",")
        if number == 1:
            if row != ["file", "line"]:
                raise InputError("expected the header file,line", path, number)
            continue
        if len(row) != 2:
            raise InputError("expected file index and line number", path, number)
        if _WHOLE.fullmatch(row[0]) and _WHOLE.fullmatch(row[1]) and row[1] != "0":  # the common case, at once
            f, n = int(row[0]), int(row[1])
        else:
            f = _number(row[0], path, number, "file index")
            n = _number(row[1], path, number, "line number", low=1)
        if f >= n_files:
            raise InputError(f"file index {f} out of range (parse.json lists {n_files} files)", path, number)
        files.append(f)
        lines.append(n)
    return np.asarray(files, dtype=np.int32), np.asarray(lines, dtype=np.int64)


def read_parameters(folder: str) -> list[list[str]]:
    """The parameters of each row of ``events``."""
    path = os.path.join(folder, "parameters")
    return [text.split() for _, text in _lines(path)]


def read_templates(folder: str) -> dict[str, str]:
    """Event id -> template text, from the folder's ``templates.csv``: parse's layout only
    (``id,template,count``, checked row by row; :func:`seqrnn.report.load_templates` hands that layout here
    too)."""
    return read_templates_file(os.path.join(folder, "templates.csv"))


def read_templates_file(path: str) -> dict[str, str]:
    """Event id -> template text, from a ``templates.csv`` that parse wrote (checked row by row)."""
    out = {}
    for number, row in _rows(path):
        if number == 1:
            if row and row[0].startswith("\ufeff"):  # a byte-order mark (an editor's save) is no part of the header
                row = [row[0][1:], *row[1:]]
            if row != ["id", "template", "count"]:
                raise InputError("expected the header id,template,count", path, number)
            continue
        if len(row) != 3:
            raise InputError("expected id,template,count", path, number)
        _number(row[0], path, number, "template id")
        _number(row[2], path, number, "count")
        if row[0] in out:
            raise InputError(f"template id {row[0]} given twice", path, number)
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
    templates = os.path.join(folder, "templates.csv")
    if os.path.isfile(templates):  # every event has its template (detect prints them; damaged: the text lost)
        known = read_templates_file(templates)
        missing = set(events).difference(known)
        if missing:
            first = next(i for i, e in enumerate(events) if e in missing)
            raise InputError(f"event id {events[first]} (events, line {first + 1}) has no row here: the folder "
                             "is damaged (parse the log again)", templates)
    if fmt == "stream":
        return [Sequence("stream", events, sources[0] if len(sources) == 1 else folder, int(lines[0]),
                         complete=False, lines=lines, files=files, sources=sources)]
    import numpy as np

    out = []
    path = os.path.join(folder, "sessions.index")
    for number, text in _lines(path):  # 'id,rows' as parse writes them (ids hold no comma), not CSV: a session of
        row = text.split(",", 1)           # thousands of lines is a longer field than the csv module reads
        if len(row) != 2 or "," in row[1]:
            raise InputError("expected session_id,rows", path, number)
        rows = [_number(i, path, number, "row", low=1) - 1 for i in row[1].split()]
        if not rows:
            raise InputError("a session of no rows", path, number)
        if max(rows) >= len(events):
            raise InputError(f"row {max(rows) + 1} out of range (events has {len(events):,} rows)", path, number)
        if any(b <= a for a, b in zip(rows, rows[1:])):
            raise InputError("rows must increase (a session's lines in log order)", path, number)
        rows = np.asarray(rows, dtype=np.int64)
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
    dest = os.path.join(model_dir, "parser")
    if len(folders) != 1:  # an earlier training's parser would number events otherwise than this model
        for name in KEPT:
            if os.path.isfile(os.path.join(dest, name)):
                os.unlink(os.path.join(dest, name))
        try:
            os.rmdir(dest)  # only once empty
        except OSError:
            pass
        return
    os.makedirs(dest, exist_ok=True)
    for name in KEPT:
        src = os.path.join(folders[0], name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(dest, name))


def _fits(a: str, b: str) -> bool:
    """Whether two templates can be one event's (the same words, where neither holds a variable: a resumed
    parser may generalise a template it had)."""
    x, y = a.split(), b.split()
    return len(x) == len(y) and all(u == v or "<*>" in u or "<*>" in v for u, v in zip(x, y))


def check_event_ids(paths, model_dir: str) -> None:
    """Refuse a parsed folder among ``paths`` whose event ids are not those of the parser the model in
    ``model_dir`` was trained with (``MODEL/parser``): a log parsed anew, without ``--resume
    MODEL/parser``, numbers its templates in the order it meets them, so the model would read other
    events than the ids say. Refused when an id the two share names templates that cannot be one: a parser
    resumed from the model's keeps every id's template (or generalises it, which still fits), so one such id
    is a log parsed anew, whose ids may agree up to where the logs first differ (OpenStack: 7 of 43 differed,
    and 20 of 22 normal sessions were flagged)."""
    kept = os.path.join(model_dir, "parser", "templates.csv")
    if not os.path.isfile(kept):
        return
    known = None
    for path in ([paths] if isinstance(paths, str) else paths):
        if not is_parsed_folder(path) or os.path.realpath(path) == os.path.realpath(os.path.dirname(kept)):
            continue
        known = read_templates_file(kept) if known is None else known
        theirs = read_templates(path)
        shared = [i for i in theirs if i in known]
        differ = [i for i in shared if not _fits(theirs[i], known[i])]
        if differ:
            i = differ[0]
            raise InputError(f"its event ids are not the model's: event {i} is {theirs[i][:80]!r} here and "
                             f"{known[i][:80]!r} to the model ({len(differ)} of {len(shared)} ids differ); parse "
                             f"the log with the model's parser: seqrnn parse LOG --resume "
                             f"{os.path.join(model_dir, 'parser')} --out DIR", path)
