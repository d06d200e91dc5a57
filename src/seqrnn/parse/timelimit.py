"""A bound on the time one regular expression may take on one line.

Python's ``re`` backtracks: a pattern such as ``(a+)+$`` takes exponential
time on a line of ``a``s that does not end the way it wants, and a log
format of several fields takes polynomial time on a long line that does
not fit. A user's ``--session`` or ``--mask-pattern`` regex, or a long
malformed line, would hang ``parse`` or ``watch`` without a word.

Inside :func:`watchdog` (in the main thread), every call made through
:func:`run` that takes more than ``limit`` seconds raises
:class:`RegexTimeout` from inside the matching: ``re`` checks for signals
while it backtracks, and a ``SIGALRM`` timer ticking every ``tick``
seconds notices a call that has not finished. The cost per call is a
counter and a flag (no system call); elsewhere (another thread, a
``SIGALRM`` handler of the caller's own in place) calls run unbounded.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

LIMIT = 1.0  # seconds one regular expression may take on one line
TICK = 0.1  # seconds between the watchdog's looks


class RegexTimeout(Exception):
    """A regular expression ran past the limit on one line; ``what`` names it (the parameter it came
    from: ``session``, ``mask_patterns``, ``log_format``)."""

    def __init__(self, seconds: float, what: str | None = None):
        self.seconds, self.what = seconds, what
        super().__init__(f"a regular expression took over {seconds:g} s on one line")


class _State:
    calls = 0  # guarded calls so far (the watchdog tells one call from the next by this)
    busy = False  # a guarded call is running
    seen = -1  # the call the watchdog saw busy at its last look
    waited = 0.0  # how long it has seen that call busy
    limit = LIMIT
    active = False


_state = _State()


def run(fn, arg, what: str):
    """``fn(arg)`` (a compiled pattern's method and the line), bounded when a watchdog is active;
    ``what``: the parameter the pattern came from, for the :class:`RegexTimeout`."""
    s = _state
    s.calls += 1
    s.busy = True
    try:
        return fn(arg)
    except RegexTimeout as exc:
        exc.what = what
        raise
    finally:
        s.busy = False


def _look(signum, frame):
    s = _state
    if not s.busy:
        s.seen, s.waited = -1, 0.0
        return
    if s.calls != s.seen:
        s.seen, s.waited = s.calls, 0.0
        return
    s.waited += TICK
    if s.waited >= s.limit:
        s.seen, s.waited = -1, 0.0
        raise RegexTimeout(s.limit)


@contextmanager
def watchdog(limit: float | None = None):
    """Bound each :func:`run` call of the block to about ``limit`` seconds (default :data:`LIMIT`),
    from the main thread; elsewhere, or inside another watchdog, a no-op."""
    limit = LIMIT if limit is None else limit
    s = _state
    usable = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
              and not s.active and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None))
    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _look)
    signal.siginterrupt(signal.SIGALRM, False)  # system calls (in C libraries too) restart after a tick
    s.active, s.limit, s.seen, s.waited = True, limit, -1, 0.0
    before = signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, *before)  # (a timer of the caller's, if any, goes on)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)
        s.active = False
