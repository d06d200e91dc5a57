"""Errors a user can act on.

Every problem with the user's input is raised as :class:`InputError`, which
names the file and, where it helps, the line. The command line prints its
message and exits with code 2; the Python API lets it propagate.

A message about an argument speaks of the Python parameter (``top_k must be
>= 0``) and lists it in ``params``; the command line prints the flag it
declares for that parameter instead (``--top-k must be >= 0``), see
:meth:`InputError.renamed`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping


class SeqrnnError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(SeqrnnError, ValueError):
    """Bad input: a missing, empty or malformed file, or a bad argument.

    ``params``: the parameters the message names (a name or several), each
    as a whole word of the message, so that a front end can call them by its
    own names.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 params: str | Iterable[str] = ()):
        self.path = path
        self.line = line
        self.reason = message
        self.params = (params,) if isinstance(params, str) else tuple(params)
        super().__init__(self._where() + message)

    def _where(self) -> str:
        if self.path is None:
            return ""
        path = self.path if "\n" not in str(self.path) and "\r" not in str(self.path) else repr(str(self.path))
        return f"{path}:{self.line}: " if self.line is not None else f"{path}: "  # (a message stays one line)

    def renamed(self, names: Mapping[str, str]) -> str:
        """The message with each of ``params`` that ``names`` maps renamed, e.g. with
        ``{"top_k": "--top-k"}``; the file and line are left as they are."""
        known = sorted((p for p in self.params if p in names), key=len, reverse=True)
        if not known:
            return str(self)
        word = re.compile(r"(?<![\w-])(%s)(?![\w-])" % "|".join(map(re.escape, known)))
        return self._where() + word.sub(lambda m: names[m.group(1)], self.reason)


class ModelFileError(SeqrnnError, ValueError):
    """A model directory that is missing, truncated or not ours."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class Interrupted(Exception):
    """Work stopped by Ctrl-C or SIGTERM after saving what it could (:class:`seqrnn.train.TrainingInterrupted`);
    the command line exits with 128 + ``signal``."""

    signal = 2

    @property
    def exit_code(self) -> int:
        return 128 + self.signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that a training saves its checkpoint and stops
    the same way (the command line exits with 143 instead of 130)."""

    def __init__(self, signum: int = 15):
        self.signum = signum
        super().__init__(f"terminated by signal {signum}")
