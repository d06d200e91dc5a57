"""Raw log files -> a parsed folder (:mod:`seqrnn.parse.folder`), in one pass.

>>> summary = parse_logs(["HDFS.log"], "parsed", Parser(ParserSettings(log_format=FMT)),
...                      IdGrouper(r"blk_-?\\d+"))                                    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from array import array

from ..artifacts import atomic_file, atomic_write_text, check_output_folder
from ..data.formats import CR_LINE, expand_paths
from ..errors import InputError
from ..tail import LONG_LINE, TOO_LONG, read_lines
from .folder import FOLDER_FORMAT, FOLDER_VERSION, MARKER, UNFINISHED, is_parsed_folder
from .parser import Parser
from .timelimit import RegexTimeout, watchdog

PROGRESS_EVERY = 50_000  # lines between calls of the progress callback
NUL_LINE = "holds a NUL byte (binary data, not text)"


def raw_lines(path: str):
    """``(number, text or None)`` of each line of ``path`` (None: not UTF-8 text; ``tail.TOO_LONG``: a
    line longer than ``tail.RAW_LINE_LIMIT`` bytes, never held whole)."""
    import sys

    if path == "-" and sys.stdin is None:  # started with standard input closed (``<&-``)
        raise InputError("standard input is closed", "<stdin>")
    fh = sys.stdin.buffer if path == "-" else open(path, "rb")
    try:
        for number, raw in read_lines(fh, True, path):
            if raw is TOO_LONG:
                yield number, raw
                continue
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, None
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def unreadable(text) -> str | None:
    """Why a raw line (as :func:`raw_lines` or a lenient ``Tailer`` gives it) is no log text, or None."""
    if text is None:
        return "not UTF-8 text"
    if text is TOO_LONG:
        return LONG_LINE
    return NUL_LINE if "\0" in text else CR_LINE if "\r" in text else None


def parse_logs(paths, out: str, parser: Parser, grouper=None, progress=None, malformed=None) -> dict:
    """Parse ``paths`` (files, folders, globs; ``-``: standard input) into the folder ``out``.

    ``grouper``: see :mod:`seqrnn.parse.grouping` (None: one stream). ``progress(lines, seconds)``
    is called every :data:`PROGRESS_EVERY` lines; ``malformed(file, line, why)`` for each line that
    does not fit the log format (or is not UTF-8): such lines are counted and skipped; but a parse
    where no line fits, or (with a grouper) no line joins a session, is an :class:`InputError`
    naming the first line and why. Each regular expression gets :data:`.timelimit.LIMIT` seconds a
    line: a line the log format cannot match in time is malformed, a ``--session`` or mask pattern
    that runs over it is an :class:`InputError`. Returns the summary written to ``parse.json``
    (``ungrouped``: the lines in no session, ``first_ungrouped``: where the first is, and why).
    """
    for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        if str(p) != "-" and is_parsed_folder(p):  # its files are no raw log
            raise InputError("a parsed folder, not raw log files: to parse new lines with its parser, "
                             f"seqrnn parse FILE --resume {p} --out DIR", str(p))
    check_output_folder(out, "--out", "the parsed folder to write")
    files = expand_paths(paths)
    folder = os.path.realpath(out)
    for f in files:
        if f != "-" and os.path.dirname(os.path.realpath(f)) == folder:  # read as it is written, or next time
            raise InputError(f"is in the output folder {out}: parse into another folder", f)
    os.makedirs(out, exist_ok=True)
    # Until the summary replaces it, parse.json says the parse is under way: a parse killed half-way
    # leaves a folder that readers refuse, not one taken as complete (an earlier parse's parse.json
    # beside new events) nor a folder of files read as sequences.
    atomic_write_text(os.path.join(out, MARKER), json.dumps(UNFINISHED))
    with watchdog():  # a regex that backtracks for ever on a line is stopped (seqrnn.parse.timelimit)
        try:
            return _parse_logs(files, out, parser, grouper, progress, malformed)
        except InputError as exc:  # refused: the folder says so (its files, half replaced, are not read as data)
            atomic_write_text(os.path.join(out, MARKER), json.dumps({**UNFINISHED, "state": "failed",
                                                                     "error": str(exc)[:500]}))
            raise


def _parse_logs(files, out, parser, grouper, progress, malformed) -> dict:
    start = time.perf_counter()
    clusters = array("q")  # the cluster of each event; their event ids are final only at the end
    sessions: dict[str, array] = {}
    n_lines = n_bad = n_ungrouped = 0
    first_bad = first_ungrouped = None  # (file, line, text, why) of the first line that failed
    sources = []
    # Written as every output is (atomic_file): a link planted at one of these names is replaced, never
    # followed, and a parse stopped midway leaves the earlier files whole (or none), never half of one.
    with contextlib.ExitStack() as stack:
        lines_fh, params_fh, bad_fh = (stack.enter_context(atomic_file(os.path.join(out, name), newline=""))
                                       for name in ("lines.csv", "parameters", "malformed.csv"))
        lines_fh.write("file,line\n")
        write_line, write_params = lines_fh.write, params_fh.write
        bad_rows = csv.writer(bad_fh)
        bad_rows.writerow(["file", "line", "reason"])
        fmt, masker, miner = parser.format, parser.masker, parser.miner
        for index, path in enumerate(files):
            name = "<stdin>" if path == "-" else path
            sources.append({"path": name, "abspath": os.path.abspath(path) if path != "-" else None})
            for number, text in raw_lines(path):
                n_lines += 1
                if progress is not None and n_lines % PROGRESS_EVERY == 0:
                    progress(n_lines, time.perf_counter() - start)
                if text is not None and text is not TOO_LONG and not text.strip():
                    continue  # a blank line is not an event, nor an error
                why = unreadable(text)
                try:  # NUL: binary; CR: old Mac line ends (the file would be one line); as watch says
                    fields = None if why else fmt.match(text)
                except RegexTimeout as exc:
                    fields, why = None, f"took over {exc.seconds:g} s to match the log format (too long a line)"
                if fields is None:
                    why = why or "does not fit the log format"
                    n_bad += 1
                    if first_bad is None:
                        first_bad = (name, number, text, why)
                    bad_rows.writerow([name, number, why])
                    if malformed is not None:
                        malformed(name, number, why)
                    continue
                try:
                    masked, original = masker(fields["Content"])
                    keys = grouper.keys(text, fields, len(clusters)) if grouper is not None else ()
                except RegexTimeout as exc:
                    raise too_slow(exc, parser, grouper, name, number) from None
                event, template = miner.add(masked)
                params = ([o for t, o in zip(template, original) if t == "<*>"]
                          if len(template) == len(original) else original)
                row = len(clusters)
                clusters.append(event)
                write_line(f"{index},{number}\n")
                write_params(" ".join(params) + "\n")  # tokens: they hold no whitespace
                if grouper is not None and not keys:
                    n_ungrouped += 1
                    if first_ungrouped is None:
                        first_ungrouped = (name, number, text, grouper.miss(text, fields))
                for key in keys:
                    members = sessions.get(key)
                    if members is None:
                        if "," in key:  # sessions and sessions.index are 'id,...' lines: it would not read back
                            raise InputError(f"session id {key[:80]!r} holds a comma, which the sessions file "
                                             "cannot hold: write the session pattern or field so that ids have "
                                             "none (e.g. [^,\\s]+)", name, number)
                        members = sessions[key] = array("q")
                    members.append(row)
            if path != "-":
                sources[-1].update(file_head(path))  # explain checks the file still begins so
    nothing(files, out, parser, grouper, clusters, sessions, n_lines, n_bad, first_bad, first_ungrouped)
    # Templates may have merged since a line was read (see Miner): every id through its event.
    ids = [str(miner.event(c)) for c in clusters]
    atomic_write_text(os.path.join(out, "events"), "".join(i + "\n" for i in ids))
    if grouper is not None:
        atomic_write_text(os.path.join(out, "sessions"),
                          "".join(f"{k},{' '.join(ids[r] for r in v)}\n" for k, v in sessions.items()))
        atomic_write_text(os.path.join(out, "sessions.index"),
                          "".join(f"{k},{' '.join(str(r + 1) for r in v)}\n" for k, v in sessions.items()))
    else:
        for stale in ("sessions", "sessions.index"):
            if os.path.exists(os.path.join(out, stale)):
                os.remove(os.path.join(out, stale))
    write_templates(os.path.join(out, "templates.csv"), parser)
    parser.save(os.path.join(out, "parser.json"))
    seconds = time.perf_counter() - start
    summary = {"format": FOLDER_FORMAT, "version": FOLDER_VERSION, "files": sources, "lines": n_lines,
               "events": len(ids), "malformed": n_bad,
               "ungrouped": n_ungrouped if grouper is not None else None,
               "first_ungrouped": (f"{first_ungrouped[0]}:{first_ungrouped[1]}: {first_ungrouped[3]}"
                                   if first_ungrouped is not None else None), "templates": len(parser.miner.events()),
               "sessions": len(sessions) if grouper is not None else None,
               "grouping": grouper.describe if grouper is not None else None,
               "log_format": parser.settings.log_format, "seconds": round(seconds, 3),
               "lines_per_second": round(n_lines / seconds) if seconds > 0 else None}
    atomic_write_text(os.path.join(out, MARKER), json.dumps(summary, indent=2))
    return summary


HEAD_BYTES = 4096  # the start of each raw file parse.json keeps a hash of


def file_head(path: str) -> dict:
    """``head_bytes`` and ``head_sha256``: the length and SHA-256 of the first :data:`HEAD_BYTES` bytes of
    ``path``, by which the way back to its lines (:mod:`.explain`) knows it is still the file that was parsed
    (grown by new lines, but not rotated, truncated or replaced)."""
    import hashlib

    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return {"head_bytes": len(head), "head_sha256": hashlib.sha256(head).hexdigest()}


def quoted(text: str | None, limit: int = 120) -> str:
    """A raw line as a message quotes it (cut at ``limit`` characters)."""
    if text is None:
        return "(not UTF-8 text)"
    return repr(text if len(text) <= limit else text[:limit] + "...")


def too_slow(exc: RegexTimeout, parser: Parser, grouper, name: str, number: int) -> InputError:
    """The error for a user's pattern that ran past the time limit on a line."""
    pattern = (grouper.describe.get("pattern") if exc.what == "session" and grouper is not None
               else " | ".join(parser.settings.mask_patterns))
    kind = "session pattern" if exc.what == "session" else "mask_patterns"
    return InputError(f"{kind} {pattern!r} took over {exc.seconds:g} s on this line: it backtracks without end "
                      "(a repeat inside a repeat such as (a+)+, or alternatives that overlap such as (a|ab)*); "
                      "write it without nested or overlapping repeats", name, number, params=exc.what)


def nothing(files, out, parser, grouper, clusters, sessions, n_lines, n_bad, first_bad, first_ungrouped) -> None:
    """Refuse a parse that gives nothing (no line fits the log format, or no line joins a session),
    naming the first line that failed and why, before the folder is written as a parsed folder."""
    if clusters and (grouper is None or sessions):
        return
    stale = os.path.join(out, MARKER)
    if os.path.exists(stale):  # an earlier parse's description no longer fits the files just written
        os.remove(stale)
    if not clusters and first_bad is not None:
        name, number, text, why = first_bad
        spec = parser.settings.log_format or "<Content>"
        raise InputError(f"no line fits the log format {spec!r} ({n_bad:,} of {n_lines:,} lines tried, "
                         f"listed in {os.path.join(out, 'malformed.csv')}); the first: {why}"
                         + (f": {quoted(text)}" if text is not None and text is not TOO_LONG else ""), name, number)
    if not clusters:
        names = ["<stdin>" if f == "-" else f for f in files]
        raise InputError("nothing to parse: the input is empty or holds only blank lines",
                         names[0] if len(names) == 1 else ", ".join(names)[:300])
    name, number, text, why = first_ungrouped
    raise InputError(f"no line joined a session (of {len(clusters):,} lines parsed); the first: {why}: "
                     f"{quoted(text)}", name, number)


def write_templates(path: str, parser: Parser) -> None:
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "template", "count"])
    w.writerows(parser.templates())
    atomic_write_text(path, buf.getvalue())


def check_paths(paths) -> None:
    """Refuse an output folder among the inputs early (it would be read while being written)."""
    for p in paths:
        if p != "-" and not os.path.exists(p) and not any(c in p for c in "*?["):
            raise InputError("no such file or folder", p)
