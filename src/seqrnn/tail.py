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



def split_lines(data: bytes) -> list[bytes]:
    """``data``'s lines, each with its ``\n`` (the last may lack it): only ``\n`` ends a line, as for
    ``readline`` (``bytes.splitlines`` also splits at a lone ``\r``, form feeds and more)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    return out + [parts[-1]] if parts[-1] else out


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

    def __init__(self, path: str, poll: float = 0.1, from_end: bool = False, lenient: bool = False):
        self.path, self.lenient = path, lenient
        self.name = "<stdin>" if path == "-" else path
        self.poll = poll
        self.from_end = from_end
        self.generation = 0

    def lines(self, idle: bool = False):
        if self.path == "-":
            yield from self._stdin()
            return
        check_followable(self.path)
        fh, ident = self._open()
        number = 0
        pending = b""
        if self.from_end:  # skip what is there, but count its lines: numbers stay the file's
            for raw in iter(fh.readline, b""):
                if raw.endswith(b"\n"):
                    number += 1
                else:
                    pending = raw
        try:
            while True:
                chunk = fh.readline()
                if chunk:
                    if not chunk.endswith(b"\n"):
                        pending += chunk  # a line still being written
                        if b"\r" in pending[:-1]:  # old Mac line ends: no \n will come (lenient too: never a hang)
                            from .data.formats import carriage_return

                            raise carriage_return(pending.decode("utf-8", "replace"), self.name, number + 1)
                        continue
                    raw, pending = pending + chunk, b""
                    number += 1
                    yield number, self._decode(raw, number)
                    continue
                # At the end of what is written: rotated, truncated, or just quiet?
                try:
                    st = os.stat(self.path)
                except FileNotFoundError:
                    st = None  # between a rotation's move and the new file
                if st is not None and (st.st_dev, st.st_ino) != ident:
                    rest = fh.read()  # the old file's last lines, written before the move
                    for raw in split_lines(pending + rest):
                        number += 1
                        yield number, self._decode(raw, number)
                    fh.close()
                    fh, ident = self._open()
                    number, pending = 0, b""
                    continue
                if st is not None and st.st_size < fh.tell():
                    fh.seek(0)  # truncated: the file starts again
                    self.generation += 1
                    number, pending = 0, b""
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
        stdin, number = sys.stdin.buffer, 0
        while True:
            raw = stdin.readline()  # one line at a time: a decision never waits for a buffer to fill
            if not raw:
                return
            number += 1
            yield number, self._decode(raw, number)
