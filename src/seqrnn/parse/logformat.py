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

FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


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
        pattern = []
        for i, part in enumerate(parts):
            if i % 2:
                last = i == len(parts) - 2
                pattern.append(f"(?P<{part}>.*)" if last else f"(?P<{part}>.*?)")
            else:
                part = re.sub(r"\\(.)", r"\1", part)  # Loghub's formats escape brackets: \[<ADDR>\]
                pattern.append(r"\s+".join(re.escape(w) for w in re.split(r"\s+", part)) if part.strip()
                               else (r"\s+" if part else ""))
        self.regex = re.compile("^" + "".join(pattern) + "$")

    def match(self, line: str) -> dict | None:
        """The fields of ``line`` (name -> text), or None when the line does not fit the format."""
        if self.whole:
            return {"Content": line.strip()}
        m = self.regex.match(line)
        return m.groupdict() if m else None

    def content(self, line: str) -> str | None:
        """The message of ``line``, or None when it does not fit."""
        if self.whole:
            return line.strip()
        m = self.regex.match(line)
        return m.group("Content") if m else None
