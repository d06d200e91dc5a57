"""Read event sequences from files: the ``sessions``, ``stream`` and ``text`` formats.

Every reader returns a list of :class:`Sequence`. A sequence remembers where
it came from (file and line of each event for streams, file and line of the
session otherwise), so that a detection can point back at the input.

Formats
-------
sessions
    One sequence per line, tokens separated by spaces or commas, with an
    optional ``session_id,`` prefix (``blk_1,5 5 22 11``). Every line of a
    file says whether it has the prefix (see :func:`session_line_kind`); a
    file whose lines disagree is refused at the first line that disagrees,
    and only a file whose lines are all ambiguous (``s1,a``, ``a,b,c``) is
    settled by the rule of :func:`has_session_ids`.
stream
    One event per line; all files (sorted by name) form one long sequence,
    or one sequence per file with ``separate_files=True``.
text
    The characters (or whitespace-separated words) of each file.
"""

from __future__ import annotations

import glob
import io
import os
import re
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

FORMATS = ("sessions", "stream", "text")
DEFAULT_MAX_LENGTH = 100_000  # tokens in one session line; longer ones are streams
MAX_EVENT_BYTES = 1 << 20  # one line of a stream (one event)
BOM = "\ufeff"


@dataclass
class Sequence:
    """One sequence of string tokens and where it came from."""

    id: str
    tokens: list[str]
    source: str = ""
    line: int = 0  # line of the session (sessions) or of the first event (stream)
    complete: bool = True  # a session ends (its end is an event); a stream goes on
    lines: np.ndarray | None = field(default=None, repr=False)  # per-event line (stream)
    files: np.ndarray | None = field(default=None, repr=False)  # per-event index into `sources`
    sources: list[str] | None = field(default=None, repr=False)  # the files of a joined stream

    def __len__(self) -> int:
        return len(self.tokens)

    def location(self, position: int) -> str:
        """``file:line`` of the event at ``position`` (the end for ``len(self)``)."""
        if self.lines is None or not len(self.lines):
            return f"{self.source}:{self.line}"
        q = min(position, len(self.lines) - 1)
        source = self.sources[int(self.files[q])] if self.files is not None else self.source
        return f"{source}:{int(self.lines[q])}"

    def slice(self, start: int, end: int | None = None) -> "Sequence":
        """The events ``start:end`` as a sequence that still points at their lines."""
        lines = None if self.lines is None else self.lines[start:end]
        files = None if self.files is None else self.files[start:end]
        first = self.line if lines is None or not len(lines) else int(lines[0])
        return Sequence(self.id, self.tokens[start:end], self.source, first, self.complete, lines, files,
                        self.sources)


_SHARD_FILE = re.compile(r"(train|valid)-\d{5,}\.(tokens|offsets|complete)(\.tmp)?\.npy")


def expand_paths(paths: list[str] | str) -> list[str]:
    """Expand globs and folders into a sorted list of files; ``-`` is stdin."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[str] = []
    for p in map(str, paths):
        if p == "-":
            files.append(p)
            continue
        if any(ch in p for ch in "*?["):
            matched = sorted(f for f in glob.glob(p) if os.path.isfile(f))
            if not matched:
                raise InputError("no file matches this pattern", p)
            files.extend(matched)
        elif os.path.isdir(p):
            if os.path.isfile(os.path.join(p, "shards.json")):  # its .npy files are no text to read
                raise InputError("a shards folder (seqrnn encode) is read by seqrnn train alone, as its only "
                                 "input, for a neural model; give other commands the files it was encoded from", p)
            matched = sorted(
                os.path.join(p, f) for f in os.listdir(p)
                if not f.startswith(".") and os.path.isfile(os.path.join(p, f))
            )
            if not matched:
                raise InputError("folder holds no files", p)
            if any(_SHARD_FILE.fullmatch(os.path.basename(f)) for f in matched):  # shards without their shards.json
                raise InputError("the seqrnn encode writing this shards folder did not finish (no shards.json: "
                                 "it was stopped, failed, or is still running): encode again into a new folder", p)
            files.extend(matched)
        elif os.path.isfile(p):
            files.append(p)
        elif os.path.exists(p):
            raise InputError("not a regular file", p)
        else:
            raise InputError("no such file or folder", p)
    return files


def _open_binary(path: str):
    if path == "-":
        if sys.stdin is None:  # started with standard input closed (``<&-``)
            raise InputError("standard input is closed", "<stdin>")
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None


def line_limit(max_length: int) -> int:
    """Bytes read of a session line of at most ``max_length`` tokens before it is refused unread."""
    return min(sys.maxsize, 64 * max_length + 256)


def carriage_return(text: str, name: str, number: int) -> InputError:
    """The error for a line (its line end dropped) that holds a carriage return: only ``\n`` ends a line
    (``\r\n`` too), so a file of old Mac line ends (a lone ``\r``) would be one line."""
    return InputError(f"carriage return at column {text.index(chr(13)) + 1} inside a line (a file with old Mac "
                      "line endings? lines end with \\n: convert it with tr '\\r' '\\n')", name, number)


#: What parse and watch say of a raw line holding a carriage return (they skip it as malformed).
CR_LINE = "holds a carriage return inside the line (old Mac line endings? lines end with \\n)"


def decode_line(raw: bytes, name: str, number: int) -> str:
    """One line of a file as text: UTF-8 strictly, no NUL byte, no byte-order mark at the start of
    the file, no carriage return inside the line (every format, text too: its events point at lines)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not UTF-8 text", name, number
        ) from None
    if "\0" in text:
        raise InputError(f"NUL byte at column {text.index(chr(0)) + 1}: a binary file, not text", name, number)
    if number == 1 and text.startswith(BOM):
        text = text[1:]
    text = text.rstrip("\r\n")
    if "\r" in text:
        raise carriage_return(text, name, number)
    return text


def iter_lines(path: str, max_bytes: int | None = None):
    """Yield ``(line_number, text)`` of a file (see :func:`decode_line`); a line longer than
    ``max_bytes`` is refused before it is read whole."""
    name = "<stdin>" if path == "-" else path
    fh = _open_binary(path)
    try:
        number = 0
        while True:
            raw = fh.readline(max_bytes + 1) if max_bytes else fh.readline()
            if not raw:
                break
            number += 1
            if max_bytes and len(raw) > max_bytes and not raw.endswith(b"\n"):
                raise InputError(f"line is longer than {max_bytes:,} bytes", name, number)
            yield number, decode_line(raw, name, number)
    finally:
        if fh is not getattr(sys.stdin, "buffer", None):
            fh.close()


# What the start of a session line says about an id prefix (see session_line_kind).
WITH_ID, WITHOUT_ID, ONE_COMMA, COMMAS = "id", "no id", "one comma", "commas"


def session_line_kind(text: str) -> str:
    """Whether a session line has an ``id,`` prefix: ``WITH_ID`` (``blk_1,5 22``: a field without
    spaces, a comma, space-separated tokens), ``WITHOUT_ID`` (no comma, or spaces before the first),
    or ambiguous: ``ONE_COMMA`` (``s1,a``) or ``COMMAS`` (``a,b,c``)."""
    head, sep, rest = text.strip().partition(",")
    head = head.strip()
    if not sep or not head or _has_space(head):
        return WITHOUT_ID
    rest = rest.strip()
    if _has_space(rest):
        return WITH_ID
    return COMMAS if "," in rest else ONE_COMMA


def _has_space(stripped: str) -> bool:
    """Whether a string without leading or trailing whitespace holds any (``str.isspace``'s, as ``split``
    splits on): a plain space is the usual one, tested first."""
    return " " in stripped or len(stripped.split(None, 1)) > 1


def has_session_ids(lines: list[str]) -> bool:
    """Whether session lines start with ``id,`` (lines that agree; see :class:`SessionIds`).

    A line with space-separated tokens after a first field without spaces
    (``blk_1,5 5 22``) has one; a line without a comma or with spaces before
    it has none; lines of commas alone have one if none has a second comma
    (``s1,a``); ``a,b,c`` is tokens, no id.
    """
    kinds = {session_line_kind(line) for line in lines}
    if WITH_ID in kinds or WITHOUT_ID in kinds:
        return WITHOUT_ID not in kinds
    return bool(kinds) and COMMAS not in kinds


class SessionIds:
    """Decides, line by line, whether the lines of one sessions file carry an ``id,`` prefix, and
    refuses a line that disagrees with an earlier one (naming both).

    :meth:`see` takes each line's kind in order and returns the decision once
    a line settles it (``True``/``False``; ``None`` while every line seen is
    ambiguous); :meth:`settle` gives the decision for a file that ended
    ambiguous.
    """

    def __init__(self, name: str):
        self.name = name
        self.decided: bool | None = None
        self.first: int | None = None  # the line that decided
        self.commas = False

    def see(self, number: int, text: str) -> bool | None:
        kind = session_line_kind(text)
        if kind in (WITH_ID, WITHOUT_ID):
            with_id = kind == WITH_ID
            if self.decided is None:
                self.decided, self.first = with_id, number
            elif with_id != self.decided:
                raise InputError(
                    (f"line starts with a session id ('{text.strip().partition(',')[0].strip()},'), but line "
                     f"{self.first} has none" if with_id else
                     f"line has no 'id,' prefix, but line {self.first} has one"
                     ) + ": the lines of a sessions file must all start with a session id or none",
                    self.name, number)
        self.commas |= kind == COMMAS
        return self.decided

    def settle(self) -> bool:
        return self.decided if self.decided is not None else not self.commas


def parse_session_line(text: str, with_id: bool, number: int, name: str, max_length: int):
    """Split one session line into ``(id, tokens)``."""
    if len(text) > 16 * max_length + 64:
        # Cheap guard before splitting a huge line.
        raise InputError(
            f"line is {len(text):,} characters long, more than a session of at most "
            f"{max_length:,} tokens can be (use format stream for one long sequence, or a larger max_length)",
            name, number, params=("format", "max_length"),
        )
    if with_id:
        sid, sep, rest = text.partition(",")
        if not sep:
            raise InputError("expected an 'id,' prefix", name, number)
        sid = sid.strip()
    else:
        sid, rest = str(number), text
    tokens = rest.replace(",", " ").split()
    if len(tokens) > max_length:
        raise InputError(
            f"session has {len(tokens):,} tokens, more than the limit of {max_length:,} "
            "(use format stream for one long sequence, or a larger max_length)",
            name, number, params=("format", "max_length"),
        )
    return sid, tokens


def check_max_length(max_length) -> None:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InputError(f"max_length must be an integer >= 1, not {max_length!r}", params="max_length")


def read_sessions(paths, max_length: int = DEFAULT_MAX_LENGTH, session_ids: bool | None = None) -> list[Sequence]:
    """Read the ``sessions`` format: one sequence per non-blank line.

    ``session_ids`` None: each file's lines say whether they carry an ``id,``
    prefix, and must agree (see :class:`SessionIds`)."""
    check_max_length(max_length)
    out: list[Sequence] = []
    for path in expand_paths(paths):
        name = "<stdin>" if path == "-" else path
        ids = SessionIds(name)
        with_id = session_ids
        count = 0
        held: list[tuple[int, str]] = []  # ambiguous lines, held until a line settles the id question

        def add(number: int, text: str) -> None:
            sid, tokens = parse_session_line(text, with_id, number, name, max_length)
            out.append(Sequence(sid, tokens, name, number, complete=True))

        for number, text in iter_lines(path, line_limit(max_length)):
            if not text.strip():
                continue
            count += 1
            if session_ids is None:
                with_id = ids.see(number, text)
                if with_id is None:
                    held.append((number, text))
                    continue
                for n, t in held:
                    add(n, t)
                held = []
            add(number, text)
        if held:
            with_id = ids.settle()
            for n, t in held:
                add(n, t)
        if count == 0:
            raise InputError("file holds no sequences (it is empty or blank)", name)
    return out


def read_stream(paths, separate_files: bool = False) -> list[Sequence]:
    """Read the ``stream`` format: one event per line, files in name order."""
    out: list[Sequence] = []
    tokens: list[str] = []
    lines: list[int] = []
    files: list[int] = []
    sources: list[str] = []
    first_line = 0
    for path in sorted(expand_paths(paths)):
        name = "<stdin>" if path == "-" else path
        count = 0
        for number, text in iter_lines(path, MAX_EVENT_BYTES):
            token = text.strip()
            if not token:
                continue
            if any(c.isspace() for c in token):
                raise InputError(
                    "a stream has one event per line, this line has several "
                    "(use format sessions for one sequence per line)", name, number, params="format",
                )
            if not tokens:
                first_line = number
            tokens.append(token)
            lines.append(number)
            files.append(len(sources))
            count += 1
        if count == 0:
            raise InputError("file holds no events (it is empty or blank)", name)
        sources.append(name)
        if separate_files:
            out.append(Sequence(name, tokens, name, first_line, complete=False,
                                lines=np.asarray(lines, dtype=np.int64)))
            tokens, lines, files = [], [], []
    if not separate_files:
        source = sources[0] if len(sources) == 1 else f"{sources[0]} (+{len(sources) - 1} files)"
        out.append(Sequence("stream", tokens, source, first_line, complete=False,
                            lines=np.asarray(lines, dtype=np.int64), files=np.asarray(files, dtype=np.int32),
                            sources=sources))
    return out


def read_text(paths, tokens: str = "chars") -> list[Sequence]:
    """Read the ``text`` format: each file is one sequence of characters or words."""
    if tokens not in ("chars", "words"):
        raise InputError(f"tokens must be chars or words, not {tokens!r}", params="tokens")
    out: list[Sequence] = []
    for path in expand_paths(paths):
        name = "<stdin>" if path == "-" else path
        buf = io.StringIO()
        numbers, per_line = [], []  # each token's line, so that a detection points at file:line
        for number, text in iter_lines(path):
            buf.write(text)
            buf.write("\n")
            numbers.append(number)
            per_line.append(len(text) + 1 if tokens == "chars" else len(text.split()))
        content = buf.getvalue()
        if not content.strip():
            raise InputError("file holds no text (it is empty or blank)", name)
        toks = list(content) if tokens == "chars" else content.split()
        lines = np.repeat(np.asarray(numbers, np.int32), np.asarray(per_line, np.int64))
        out.append(Sequence(name, toks, name, 1, complete=False, lines=lines if len(lines) == len(toks) else None))
    return out


def read_sequences(paths, format: str = "sessions", *, separate_files: bool = False,
                   max_length: int = DEFAULT_MAX_LENGTH, text_tokens: str = "chars") -> list[Sequence]:
    """Read sequences in any supported format (see the module docstring); a folder written by
    ``seqrnn parse`` is read as its sessions or its event stream (:mod:`seqrnn.parse.folder`)."""
    from ..parse.folder import parsed_inputs

    parsed = parsed_inputs(paths, format)
    if parsed is not None:
        return parsed
    if format == "sessions":
        return read_sessions(paths, max_length=max_length)
    if format == "stream":
        return read_stream(paths, separate_files=separate_files)
    if format == "text":
        return read_text(paths, tokens=text_tokens)
    raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")


def split_validation(seqs: list[Sequence], fraction: float, seed: int) -> tuple[list[Sequence], list[Sequence]]:
    """Hold out ``fraction`` of the sessions at random (seeded), or the last part of each stream."""
    if fraction <= 0:
        return seqs, []
    if all(s.complete for s in seqs):
        if len(seqs) < 2:
            return seqs, []
        rng = np.random.default_rng(seed)
        n_valid = max(1, int(round(fraction * len(seqs))))
        hold = set(rng.permutation(len(seqs))[:n_valid].tolist())
        return ([s for i, s in enumerate(seqs) if i not in hold],
                [s for i, s in enumerate(seqs) if i in hold])
    train, valid = [], []
    for s in seqs:
        cut = int(round(len(s) * (1 - fraction)))
        train.append(s.slice(0, cut))
        if cut < len(s):
            valid.append(s.slice(cut))
    return train, valid


def as_sequences(data, format: str = "sessions", text_tokens: str = "chars") -> list[Sequence]:
    """Accept paths, a list of :class:`Sequence`, or a list of token lists."""
    if isinstance(data, (str, os.PathLike)):
        return read_sequences(data, format, text_tokens=text_tokens)
    data = list(data)
    if not data:
        raise InputError("no sequences given")
    if all(isinstance(s, Sequence) for s in data):
        return data
    if all(isinstance(s, (str, os.PathLike)) for s in data):
        return read_sequences(data, format, text_tokens=text_tokens)
    out = []
    for i, s in enumerate(data):
        toks = [str(t) for t in s]
        out.append(Sequence(str(i), toks, "<memory>", i + 1, complete=(format != "stream")))
    return out
