"""Turn encoded sequences into padded training and scoring batches.

Three shapes of batch, one per way of training:

* sessions, many-to-many: input ``[BOS, e1 .. en]``, target ``[e1 .. en, EOS]``
  (no EOS for an unfinished sequence), padded on the right, in buckets of
  similar length so that little of a batch is padding;
* one long stream, many-to-many: the stream cut into ``n`` parallel
  contiguous rows, read ``chunk`` steps at a time with the recurrent state
  carried from chunk to chunk (truncated back-propagation through time);
* many-to-one: every window of ``w`` events before a target event
  (:class:`Windows`, gathered batch by batch).
"""

from __future__ import annotations

import numpy as np

from .vocab import BOS, EOS, PAD


def inputs_targets(ids: np.ndarray, complete: bool) -> tuple[np.ndarray, np.ndarray]:
    """The next-event pairs of one sequence: ``x[t]`` is followed by ``y[t]``."""
    x = np.concatenate(([BOS], ids)).astype(np.int64)
    if complete:
        y = np.concatenate((ids, [EOS])).astype(np.int64)
    else:
        x = x[:-1] if len(ids) else x[:0]
        y = ids.astype(np.int64)
    return x, y


def pad(rows: list[np.ndarray], value: int = PAD) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None,
                   max_tokens: int | None = None) -> list[np.ndarray]:
    """Group indices into batches of similar length.

    Sorted by length (ties broken at random when ``rng`` is given), cut into
    batches of ``batch_size`` sequences (fewer if ``max_tokens`` padded
    tokens would be exceeded), and the batch order shuffled.
    """
    lengths = np.asarray(lengths)
    if rng is not None:
        order = np.lexsort((rng.random(len(lengths)), lengths))
    else:
        order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        end = min(start + batch_size, len(order))
        if max_tokens is not None:
            # Longest in [start, end) is the last one (sorted); shrink until it fits.
            while end - start > 1 and (end - start) * lengths[order[end - 1]] > max_tokens:
                end = start + max(1, (end - start) // 2)
        batches.append(order[start:end])
        start = end
    if rng is not None:
        rng.shuffle(batches)
    return batches


class Windows:
    """Every window of many sequences, without a copy of each window.

    Materialising them takes ``window`` times the memory of the events (800 MB
    for a stream of 10M events and windows of 10); here the sequences are kept
    once, left-padded, in one buffer, with each window's start and the event
    after it, and a batch of windows is gathered when it is needed.
    """

    def __init__(self, ids_list: list[np.ndarray], complete: list[bool], window: int):
        self.window = window
        bufs, starts, ys, self.counts = [], [], [], []
        offset = 0
        for ids, c in zip(ids_list, complete):
            x, y = inputs_targets(ids, c)
            bufs.append(np.concatenate((np.full(window - 1, PAD, dtype=np.int64), x)))
            starts.append(offset + np.arange(len(y), dtype=np.int64))
            ys.append(y)
            self.counts.append(len(y))
            offset += len(bufs[-1])
        self.buffer = np.concatenate(bufs) if bufs else np.zeros(0, np.int64)
        self.starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self.y = np.concatenate(ys) if ys else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.y)

    def x(self, idx) -> np.ndarray:
        """The windows ``idx`` (indices or a slice), as a ``(n, window)`` array."""
        return self.buffer[self.starts[idx][:, None] + np.arange(self.window)]
