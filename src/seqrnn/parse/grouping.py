"""Group parsed lines into sessions.

- ``IdGrouper(pattern)``: by the identifiers a regular expression finds in the
  line (HDFS block ids ``blk_-?\\d+``); a line with several ids joins each.
- ``FieldGrouper(name)``: by the value of a field of the log format.
- ``TimeGrouper(size, step, fields, time_format)``: windows of ``size``
  seconds starting every ``step`` seconds (``step == size``: fixed windows;
  smaller: sliding, a line joins every window that covers it).
- ``CountGrouper(n)``: every ``n`` lines.

``keys(line, fields, index)`` gives the sessions one line joins; a line that
joins none (no id in it) stays in the event stream only.
"""

from __future__ import annotations

import re
from datetime import datetime

from ..errors import InputError
from .timelimit import run


class IdGrouper:
    def __init__(self, pattern: str):
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise InputError(f"session pattern is not a regular expression: {exc}", params="session") from None
        self.describe = {"by": "id", "pattern": pattern}

    def keys(self, line: str, fields: dict, index: int) -> list[str]:
        found = run(self.regex.findall, line, "session")
        if not found:
            return []
        found = [f if isinstance(f, str) else f[0] for f in found]  # a pattern with groups: the first
        found = [f for f in found if f.strip()]  # an empty match ('id=(\w*)' on 'id= '): no id, no session
        return list(dict.fromkeys(found)) if len(found) > 1 else found

    def miss(self, line: str, fields: dict) -> str:
        """Why ``line`` joins no session."""
        return f"no match of the session pattern {self.describe['pattern']!r}, or only empty ones"


class FieldGrouper:
    def __init__(self, name: str, fields: list[str]):
        if name not in fields:
            raise InputError(f"session field {name!r} is not a field of the log format "
                             f"({', '.join(fields)})", params="session_field")
        self.name = name
        self.describe = {"by": "field", "field": name}

    def keys(self, line: str, fields: dict, index: int) -> list[str]:
        value = fields.get(self.name, "").strip()
        return [value] if value else []

    def miss(self, line: str, fields: dict) -> str:
        return f"its field {self.name} is empty"


class CountGrouper:
    def __init__(self, n: int):
        if n < 1:
            raise InputError("session_lines must be >= 1", params="session_lines")
        self.n = n
        self.describe = {"by": "lines", "lines": n}

    def keys(self, line: str, fields: dict, index: int) -> list[str]:
        return [f"lines-{index // self.n * self.n + 1}"]

    def miss(self, line: str, fields: dict) -> str:
        return "no session"  # (never: every line joins one)


MAX_WINDOWS = 1000  # windows a line may join (window / step)


class TimeGrouper:
    """Windows of ``size`` seconds every ``step`` seconds, on the time read from ``time_fields``
    (joined by a space) with :func:`datetime.strptime`'s ``time_format``."""

    def __init__(self, size: float, step: float | None, time_fields: list[str], time_format: str,
                 fields: list[str]):
        step = size if step is None else step
        if size <= 0 or step <= 0 or step > size:
            raise InputError("window must be > 0 and step in (0, window]", params=("window", "step"))
        if size / step > MAX_WINDOWS:  # each line joins size / step windows: bound the work and the output
            raise InputError(f"window / step is {size / step:,.0f} windows for each line: at most {MAX_WINDOWS:,} "
                             "(a longer step)", params=("window", "step"))
        missing = [f for f in time_fields if f not in fields]
        if not time_fields or missing:
            raise InputError(f"time fields {missing or time_fields} are not fields of the log format "
                             f"({', '.join(fields)})", params="time_fields")
        self.size, self.step, self.time_fields, self.time_format = size, step, time_fields, time_format
        # a window is named by its start: to the millisecond when starts fall between seconds (else two names)
        self.timespec = "seconds" if float(step).is_integer() else "milliseconds"
        self.describe = {"by": "time", "window": size, "step": step, "time_fields": time_fields,
                         "time_format": time_format}

    def time(self, fields: dict) -> float | None:
        text = " ".join(fields[f] for f in self.time_fields)
        try:
            return datetime.strptime(text, self.time_format).timestamp()
        except ValueError:
            return None

    def keys(self, line: str, fields: dict, index: int) -> list[str]:
        t = self.time(fields)
        if t is None:
            return []
        last = int(t // self.step)
        first = int((t - self.size) // self.step) + 1
        out = []
        for k in range(first, last + 1):
            start = k * self.step
            if start <= t < start + self.size:
                out.append(datetime.fromtimestamp(round(start, 3)).isoformat(timespec=self.timespec))
        return out

    def miss(self, line: str, fields: dict) -> str:
        text = " ".join(fields[f] for f in self.time_fields)
        return (f"its time {text!r} (fields {' '.join(self.time_fields)}) does not fit the time format "
                f"{self.time_format!r}")


def grouper(session: str | None = None, session_field: str | None = None, session_lines: int | None = None,
            window: float | None = None, step: float | None = None, time_fields=None,
            time_format: str | None = None, fields: list[str] | None = None):
    """The grouper the options name (at most one), or None: one stream."""
    given = [n for n, v in (("session", session), ("session_field", session_field),
                            ("session_lines", session_lines), ("window", window)) if v is not None]
    if len(given) > 1:
        raise InputError(f"choose one way of grouping, not {' and '.join(given)}", params=given)
    if window is None and (time_format is not None or time_fields):  # read nowhere else: not ignored in silence
        raise InputError("time_format and time_fields apply to time windows (window)",
                         params=("time_format", "time_fields", "window"))
    fields = fields or ["Content"]
    if session is not None:
        return IdGrouper(session)
    if session_field is not None:
        return FieldGrouper(session_field, fields)
    if session_lines is not None:
        return CountGrouper(session_lines)
    if window is not None:
        if not time_format:
            raise InputError("time windows need time_format (a strptime format of the time fields)",
                             params="time_format")
        tf = list(time_fields) if time_fields else [f for f in fields if f in ("Date", "Time", "Timestamp")]
        return TimeGrouper(window, step, tf, time_format, fields)
    if step is not None:
        raise InputError("step applies to time windows (window)", params=("step", "window"))
    return None
