"""Progress bars for the long steps of a command (tqdm, on standard error, only on a terminal), and how a
number reads in the lines a person reads (:func:`human`)."""

from __future__ import annotations

import sys

CHUNK = 50_000  # sequences decided per step of the bar, at most
BLOCK_FLOATS = 1 << 25  # log-probabilities a block may hold at once (128 MiB): events x vocabulary


def human(value, spec: str = ",") -> str:
    """A number as a person reads it, for every count in text a person reads (summaries, ``info``, the
    report): thousands separated (``2,098 of 2,105``), other numbers by ``spec`` (``".1f"``); ``-`` where
    there is none. JSON keeps plain numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return format(value, spec)


def bar(total: int, desc: str, unit: str = "seq", enabled: bool | None = None):
    """A tqdm bar on standard error; ``enabled`` None: only when standard error is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, dynamic_ncols=True,
                file=sys.stderr, disable=None if enabled is None else not enabled)


def decide(detector, seqs: list, desc: str = "detect", enabled: bool | None = None, chunk: int = CHUNK,
           floats: int = BLOCK_FLOATS):
    """``detector.decide(seqs)`` with a progress bar, in blocks when there are many: at most ``chunk``
    sequences, and no more events than ``floats`` log-probabilities over the model's vocabulary hold (the
    scores of a block are computed at once, each distinct sequence once: the larger the block, the fewer
    scored twice and the fuller the batches).

    Each sequence's decision depends on itself alone, so the blocks decide exactly what one call would.
    """
    from .detect import Decisions

    blocks = _blocks(seqs, chunk, max(1, floats // max(1, len(detector.model.vocab_))))
    if len(blocks) == 1:
        return detector.decide(seqs)
    findings = []
    with bar(len(seqs), desc, enabled=enabled) as b:
        for start, end in blocks:
            findings += detector.decide(seqs[start:end]).findings
            b.update(end - start)
    return Decisions(findings)


def _blocks(seqs: list, most: int, events: int) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive blocks of at most ``most`` sequences and about ``events`` events
    (each sequence counted with its end; a longer sequence is a block of its own)."""
    out, start, held = [], 0, 0
    for i, s in enumerate(seqs):
        n = len(s) + 1
        if i > start and (i - start >= most or held + n > events):
            out.append((start, i))
            start, held = i, 0
        held += n
    return out + [(start, len(seqs))] if seqs else [(0, 0)]
