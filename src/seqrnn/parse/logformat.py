"""Split a raw log line into named fields with a Loghub-style format.

``'<Date> <Time> <Pid> <Level> <Component>: <Content>'``: each ``<Name>`` is a
field, the text between fields is literal (any run of spaces matches any run
of whitespace). ``<Content>`` is the message the templates are mined from; a
format without it is refused. A line that does not match is *malformed*: the
caller counts it and goes on.
"""

from __future__ import annotations

import re

from ..errors import InputError
from .timelimit import run

FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
UNCLOSED = re.compile(r"<[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_>])|(?<![A-Za-z0-9_<])[A-Za-z_][A-Za-z0-9_]*>")


class LogFormat:
    """A compiled ``--log-format``; ``None`` (or ``"<Content>"``) takes the whole line as the message."""

    def __init__(self, spec: str | None = None):
        self.spec = spec or "<Content>"
        parts = FIELD.split(self.spec)
        # parts alternates literal, name, literal, name, ..., literal
        self.fields = parts[1::2]
        if "Content" not in self.fields:
            raise InputError(f"log format {self.spec!r} has no <Content> field (the message)", params="log_format")
        if len(set(self.fields)) != len(self.fields):
            raise InputError(f"log format {self.spec!r} names a field twice", params="log_format")
        self.whole = self.fields == ["Content"] and not parts[0].strip() and not parts[-1].strip()
        for literal in parts[0::2]:
            unclosed = UNCLOSED.search(literal)
            if unclosed:
                raise InputError(f"log format {self.spec!r} has {unclosed.group(0)!r}, a field without its "
                                 "closing '>' or opening '<' (fields are written <Name>)", params="log_format")
        literals = []
        for part in parts[0::2]:
            part = re.sub(r"\\(.)", r"\1", part)  # Loghub's formats escape brackets: \[<ADDR>\]
            literals.append(r"\s+".join(re.escape(w) for w in re.split(r"\s+", part)) if part.strip()
                            else (r"\s+" if part else ""))
        groups = [f"(?P<{name}>.*?)" for name in self.fields[:-1]] + [f"(?P<{self.fields[-1]}>.*)"]
        pattern = literals[0] + "".join(g + lit for g, lit in zip(groups, literals[1:]))
        # the fast form: each field but the last, with the literal after it, is atomic (taken at its first fit)
        fast = literals[0] + "".join(f"(?>{g}{lit})" for g, lit in zip(groups[:-1], literals[1:-1]))
        fast += groups[-1] + literals[-1]
        self.regex = re.compile("^" + pattern + "$")
        # The backtracking form takes polynomial time on a long line that does not fit (each field may
        # end at any space); the fast one never backtracks into a field. Where the fast one matches, the
        # other matches the same way (its first try is the fast one's path); only a line the fast one
        # refuses is tried by the other, under the time limit of :mod:`.timelimit`.
        self.fast = re.compile("^" + fast + "$")

    def match(self, line: str) -> dict | None:
        """The fields of ``line`` (name -> text), or None when the line does not fit the format."""
        if self.whole:
            return {"Content": line.strip()}
        m = self.fast.match(line) or run(self.regex.match, line, "log_format")
        return m.groupdict() if m else None

    def content(self, line: str) -> str | None:
        """The message of ``line``, or None when it does not fit."""
        if self.whole:
            return line.strip()
        m = self.fast.match(line) or run(self.regex.match, line, "log_format")
        return m.group("Content") if m else None
