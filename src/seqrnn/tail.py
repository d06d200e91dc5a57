"""Follow a growing file like ``tail -F``: complete lines only, true line numbers, through
rotation (the path now names a new file: read the old one to its end, then the new one from its
start) and truncation (the file got shorter: read it again from its start).

>>> for number, text in Tailer("app.log").lines():   # doctest: +SKIP
...     print(number, text)
"""

from __future__ import annotations

import os
import sys
import time

from .errors import InputError

#: Bytes of one raw log line kept before it is given up (parse and watch skip such a line as malformed,
#: without holding it whole; detect --follow refuses it): a line of a few megabytes is no log message,
#: and the template miner's work and memory grow with a line's tokens.
RAW_LINE_LIMIT = 1 << 20


class _TooLong(str):
    """The type of :data:`TOO_LONG`."""


#: What a lenient reader yields in place of a line longer than :data:`RAW_LINE_LIMIT` (test it with ``is``).
TOO_LONG = _TooLong("")
LONG_LINE = f"is longer than {RAW_LINE_LIMIT:,} bytes (not a log message: skipped unread)"


def too_long(name: str, number: int, limit: int) -> InputError:
    return InputError(f"line is longer than {limit:,} bytes", name, number)


def read_lines(fh, lenient: bool, name: str, limit: int | None = None, start: int = 0):
    """``(number, raw bytes or TOO_LONG)`` of each line of the binary file ``fh`` (numbered from
    ``start + 1``), each read with at most ``limit`` bytes held (default :data:`RAW_LINE_LIMIT`): a longer
    line is :data:`TOO_LONG` with ``lenient`` (its bytes read in pieces and dropped), else an error."""
    limit = limit or RAW_LINE_LIMIT
    number = start
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            if not lenient:
                raise too_long(name, number, limit)
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(limit)
            yield number, TOO_LONG
            continue
        yield number, raw



def check_followable(path: str) -> None:
    """Refuse what cannot be followed: a path that is not there, or not a regular file (``-`` is read
    from standard input)."""
    if path != "-" and not os.path.isfile(path):
        raise InputError("not a regular file (a folder, a pipe or a device): follow a file, or read standard "
                         "input with '-'" if os.path.exists(path) else "no such file", path)

class Tailer:
    """``lines()`` yields ``(number, text)``; with ``idle=True`` it also yields ``None`` after
    each ``poll`` seconds without a new line (so a caller can act on time passing). ``path``
    ``"-"`` reads standard input to its end. ``generation`` counts the files read so far (1 +
    rotations + truncations); ``name`` is the path as given. A line that is not UTF-8 text is an
    error, or with ``lenient`` yielded as ``(number, None)`` for the caller to count and skip. A file
    of old Mac line ends (a carriage return followed by more text, and no ``\\n`` yet) is an error
    either way: its first line would never end."""

    def __init__(self, path: str, poll: float = 0.1, from_end: bool = False, lenient: bool = False,
                 max_bytes: int | None = None):
        self.path, self.lenient = path, lenient
        self.limit = max_bytes or RAW_LINE_LIMIT  # bytes of a line held before it is given up
        self.name = "<stdin>" if path == "-" else path
        self.poll = poll
        self.from_end = from_end
        self.generation = 0
        self.ended = False  # a line has ended (with \n): the file is no file of old Mac line ends

    def lines(self, idle: bool = False):
        if self.path == "-":
            yield from self._stdin()
            return
        check_followable(self.path)
        fh, ident = self._open()
        number = 0
        pending = b""
        skipping = False  # in the rest of a line longer than the limit, already yielded as TOO_LONG
        if self.from_end:  # skip what is there, but count its lines: numbers stay the file's
            for raw in iter(lambda: fh.readline(self.limit + 1), b""):
                if raw.endswith(b"\n"):  # a line's last piece
                    number += 1
                    pending, self.ended = b"", True
                else:  # the line being written (or a piece of a long one): read on when it ends
                    pending = (pending + raw)[:self.limit + 1]  # its length (over the limit: given up on)
        try:
            while True:
                chunk = fh.readline(self.limit + 1)
                if chunk:
                    if skipping:  # the rest of a line given up on
                        skipping = not chunk.endswith(b"\n")
                        continue
                    if not chunk.endswith(b"\n"):
                        pending += chunk  # a line still being written
                        if len(pending) > self.limit:
                            number += 1
                            if not self.lenient:
                                raise too_long(self.name, number, self.limit)
                            pending, skipping = b"", True
                            yield number, TOO_LONG
                        elif b"\r" in pending[:-1] and not self.ended:
                            # No line has ended yet, and a carriage return is followed by more text: a
                            # file of old Mac line ends, whose first line would never end (lenient too:
                            # never a silent hang). Once lines have ended, a carriage return in the line
                            # being written (a progress bar redrawn) is waited on: the line is then malformed.
                            from .data.formats import carriage_return

                            raise carriage_return(pending.decode("utf-8", "replace"), self.name, number + 1)
                        continue
                    raw, pending = pending + chunk, b""
                    number += 1
                    self.ended = True
                    yield number, self._checked(raw, number)
                    continue
                # At the end of what is written: rotated, truncated, or just quiet?
                try:
                    st = os.stat(self.path)
                except FileNotFoundError:
                    st = None  # between a rotation's move and the new file
                if st is not None and (st.st_dev, st.st_ino) != ident:
                    # The old file's last lines, written before the move: read as every line is.
                    # (skipping: the first "line" is the end of line `number`, given up on)
                    for n, raw in read_lines(_Joined(pending, fh), self.lenient, self.name, self.limit,
                                             number - skipping):
                        if skipping:
                            skipping = False
                            continue
                        yield n, self._decode(raw, n) if raw is not TOO_LONG else raw
                    fh.close()
                    fh, ident = self._open()
                    number, pending, skipping = 0, b"", False
                    continue
                if st is not None and st.st_size < fh.tell():
                    fh.seek(0)  # truncated: the file starts again
                    self.generation += 1
                    number, pending, skipping = 0, b"", False
                    continue
                if idle:
                    yield None
                time.sleep(self.poll)
        finally:
            fh.close()

    def _open(self):
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", self.path) from None
        st = os.fstat(fh.fileno())
        self.generation += 1
        return fh, (st.st_dev, st.st_ino)

    def _checked(self, raw: bytes, number: int) -> str:
        """A whole line (its ``\n`` included) decoded, or ``TOO_LONG`` (an error unless lenient)."""
        if len(raw.rstrip(b"\n")) > self.limit:
            if not self.lenient:
                raise too_long(self.name, number, self.limit)
            return TOO_LONG
        return self._decode(raw, number)

    def _decode(self, raw: bytes, number: int) -> str:
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            if self.lenient:
                return None
            raise InputError("line is not UTF-8 text", self.name, number) from None

    def _stdin(self):
        if sys.stdin is None:  # started with standard input closed (``<&-``)
            raise InputError("standard input is closed", "<stdin>")
        # One line at a time: a decision never waits for a buffer to fill.
        for number, raw in read_lines(sys.stdin.buffer, self.lenient, self.name, self.limit):
            yield number, raw if raw is TOO_LONG else self._decode(raw, number)


class _Joined:
    """``readline(size)`` over ``head`` and then the rest of ``fh``, where ``head`` is the start of a line
    already read (the tailer's pending bytes: no ``\n`` in them, and fewer than ``size``)."""

    def __init__(self, head: bytes, fh):
        self.head, self.fh = head, fh

    def readline(self, size: int = -1) -> bytes:
        head, self.head = self.head, b""
        return head + self.fh.readline(size - len(head) if size > 0 else -1)
