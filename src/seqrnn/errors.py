"""Errors a user can act on.

Every problem with the user's input is raised as :class:`InputError`, which
names the file and, where it helps, the line. The command line prints its
message and exits with code 2; the Python API lets it propagate.
"""

from __future__ import annotations


class SeqrnnError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(SeqrnnError, ValueError):
    """Bad input: a missing, empty or malformed file, or a bad option."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class ModelFileError(SeqrnnError, ValueError):
    """A model directory that is missing, truncated or not ours."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
