"""Progress bars for the long steps of a command (tqdm, on standard error, only on a terminal)."""

from __future__ import annotations

import sys

CHUNK = 2000  # sequences decided per step of the bar


def bar(total: int, desc: str, unit: str = "seq", enabled: bool | None = None):
    """A tqdm bar on standard error; ``enabled`` None: only when standard error is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, dynamic_ncols=True,
                file=sys.stderr, disable=None if enabled is None else not enabled)


def decide(detector, seqs: list, desc: str = "detect", enabled: bool | None = None, chunk: int = CHUNK):
    """``detector.decide(seqs)`` with a progress bar: in blocks of ``chunk`` sequences when there are more.

    Each sequence's decision depends on itself alone, so the blocks decide exactly what one call would
    (identical sequences are still scored once per block).
    """
    from .detect import Decisions

    if len(seqs) <= chunk:
        return detector.decide(seqs)
    findings = []
    with bar(len(seqs), desc, enabled=enabled) as b:
        for start in range(0, len(seqs), chunk):
            block = seqs[start:start + chunk]
            findings += detector.decide(block).findings
            b.update(len(block))
    return Decisions(findings)
