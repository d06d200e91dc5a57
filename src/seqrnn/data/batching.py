"""Turn encoded sequences into padded training and scoring batches.

Every batch maker of the training loop lives here (numpy only: the trainer
makes the tensors). One per way of training:

* :class:`SessionBatches`, many-to-many: input ``[BOS, e1 .. en]``, target
  ``[e1 .. en, EOS]`` (no EOS for an unfinished sequence), padded on the
  right, in buckets of similar length so that little of a batch is padding;
* :class:`StreamBatches`, one long stream, many-to-many: the stream cut into
  ``n`` parallel contiguous rows, read ``chunk`` steps at a time with the
  recurrent state carried from chunk to chunk (truncated back-propagation
  through time);
* :class:`WindowBatches`, many-to-one: every window of ``w`` events before a
  target event (:class:`Windows`, gathered batch by batch);
* :class:`ClozeBatches`, the context model: each event with the events on
  both sides of it;
* :class:`LabelledBatches`, the classifier: whole sequences and their labels.

:func:`next_event_batches` picks among the first three.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np

from .vocab import BOS, PAD, with_end


def inputs_targets(ids: np.ndarray, complete: bool) -> tuple[np.ndarray, np.ndarray]:
    """The next-event pairs of one sequence: ``x[t]`` is followed by ``y[t]``."""
    y = with_end(ids, complete)
    x = np.concatenate(([BOS], y[:-1])).astype(np.int64) if len(y) else np.zeros(0, np.int64)
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


# --- batch makers ------------------------------------------------------------------------------
class BatchMaker(Protocol):
    """One kind of training data, ready to iterate epoch by epoch (what the trainer reads).

    The next-event makers yield ``(x, y, carry)``: inputs, targets (``PAD`` is
    not a target) and whether the recurrent state of the previous batch runs
    on into this one (a long stream read chunk by chunk). What a batch means
    is the business of the loss that reads it.
    """

    def __len__(self) -> int:
        """The events (or weighted items) of one epoch, for the progress bar."""

    def n_batches(self) -> int:
        """The batches (optimizer steps, in training) of one epoch."""

    def epoch(self, rng: np.random.Generator | None) -> Iterator[tuple]:
        """One epoch's batches, tuples of numpy arrays (and flags), shuffled by ``rng`` (``None``: fixed order)."""


class LengthBuckets:
    """The makers that batch whole rows, rows of similar length together (:func:`length_buckets`).

    A subclass sets ``lengths`` (one per row), ``batch_size`` (rows in a
    batch, at most), ``events`` (its ``len``) and ``epoch``; a batch holds at
    most ``tokens_per_row x batch_size`` padded events.
    """

    tokens_per_row = 64
    lengths: np.ndarray
    batch_size: int
    events: int

    def __len__(self) -> int:
        return self.events

    def n_batches(self) -> int:
        return len(self.buckets(None))

    def buckets(self, rng: np.random.Generator | None) -> list[np.ndarray]:
        """The row indices of each batch of one epoch, in a shuffled order (``rng``) or a fixed one."""
        return length_buckets(self.lengths, self.batch_size, rng, max_tokens=self.batch_size * self.tokens_per_row)


class SessionBatches(LengthBuckets):
    """Finished sessions, many-to-many: ``[BOS, e1 .. en]`` -> ``[e1 .. en, EOS]``, in length buckets."""

    def __init__(self, ids: list[np.ndarray], complete: list[bool], batch_size: int):
        pairs = [inputs_targets(a, c) for a, c in zip(ids, complete)]
        pairs = [p for p in pairs if len(p[1])]
        self.x = [p[0] for p in pairs]
        self.y = [p[1] for p in pairs]
        self.lengths = np.array([len(y) for y in self.y])
        self.events = int(self.lengths.sum())
        self.batch_size = batch_size

    def epoch(self, rng: np.random.Generator | None):
        for idx in self.buckets(rng):
            yield pad([self.x[i] for i in idx]), pad([self.y[i] for i in idx]), False


class StreamBatches:
    """Unfinished sequences, many-to-many, as one stream cut into parallel rows read ``chunk`` steps at a time.

    Rows of contiguous events; the last row is padded (``PAD`` targets are not
    trained), so that every event is trained, or validated, exactly once per
    epoch. In training there are up to ``batch_size`` rows of at least
    ``chunk`` events; in validation rows of at least 8 events.
    """

    def __init__(self, ids: list[np.ndarray], batch_size: int, chunk: int, training: bool):
        xs, ys = zip(*(inputs_targets(a, False) for a in ids if len(a))) if ids else ((), ())
        x = np.concatenate(xs) if xs else np.zeros(0, np.int64)
        y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
        rows = min(batch_size, max(1, len(y) // (chunk if training else 8)))
        width = -(-len(y) // rows)
        self.x = np.full(rows * width, PAD, np.int64)
        self.y = np.full(rows * width, PAD, np.int64)
        self.x[: len(x)], self.y[: len(y)] = x, y
        self.x, self.y = self.x.reshape(rows, width), self.y.reshape(rows, width)
        self.chunk = chunk
        self.events = int(len(y))

    def __len__(self) -> int:
        return self.events

    def n_batches(self) -> int:
        return -(-self.x.shape[1] // self.chunk)

    def epoch(self, rng: np.random.Generator | None):
        """The chunks in order (``rng`` is not used: the state runs from one chunk into the next)."""
        for start in range(0, self.x.shape[1], self.chunk):
            yield (np.ascontiguousarray(self.x[:, start:start + self.chunk]),
                   np.ascontiguousarray(self.y[:, start:start + self.chunk]), True)


class WindowBatches:
    """Many-to-one: batches of ``batch_size`` windows, each ``(window,)`` inputs and a ``(1,)`` target."""

    def __init__(self, ids: list[np.ndarray], complete: list[bool], window: int, batch_size: int):
        self.windows = Windows(ids, complete, window)
        self.y = self.windows.y
        self.events = int(len(self.y))
        self.batch_size = batch_size

    def __len__(self) -> int:
        return self.events

    def n_batches(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def epoch(self, rng: np.random.Generator | None):
        order = rng.permutation(len(self.y)) if rng is not None else np.arange(len(self.y))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.windows.x(idx), self.y[idx][:, None], False


def cloze_rows(ids: np.ndarray, complete: bool) -> np.ndarray:
    """The context model's input for one sequence: ``[BOS, targets...]``.

    The targets are the events, then ``EOS`` for a finished session. Row
    ``j`` of the output is computed from ``BOS`` and the targets before ``j``
    (forward) and the targets after ``j`` (backward), never from target ``j``.
    """
    return np.concatenate(([BOS], with_end(ids, complete))).astype(np.int64)


class ClozeBatches(LengthBuckets):
    """The context model's batches: ``(z, y, False)``, ``z`` its :func:`cloze_rows` padded, ``y = z[:, 1:]``.

    In length buckets; unfinished sequences (streams) are cut into pieces of
    ``chunk`` events, each an unfinished sequence of its own.
    """

    def __init__(self, ids: list[np.ndarray], complete: list[bool], batch_size: int, chunk: int):
        rows = []
        for a, c in zip(ids, complete):
            if c:
                rows.append(cloze_rows(a, True))
            else:
                rows.extend(cloze_rows(a[s:s + chunk], False) for s in range(0, len(a), chunk))
        self.z = [r for r in rows if len(r) > 1]
        self.lengths = np.array([len(r) - 1 for r in self.z])
        self.events = int(self.lengths.sum())
        self.batch_size = batch_size

    def epoch(self, rng: np.random.Generator | None):
        for idx in self.buckets(rng):
            z = pad([self.z[i] for i in idx])
            yield z, np.ascontiguousarray(z[:, 1:]), False


class LabelledBatches(LengthBuckets):
    """Labelled rows for the classifier: ``(x, y, w)`` padded rows, float32 labels and weights.

    Each row is a distinct ``(sequence, label)`` weighted by how often it
    occurs, so ``len`` (the items of one epoch) is the sum of the weights.
    Whole sequences are longer than next-event rows: up to ``256 x
    batch_size`` padded events a batch.
    """

    tokens_per_row = 256

    def __init__(self, rows: list[np.ndarray], labels: np.ndarray, weights: np.ndarray, batch_size: int):
        self.rows = rows
        self.labels = np.asarray(labels, np.float32)
        self.weights = np.asarray(weights, np.float32)
        self.lengths = np.array([len(r) for r in rows])
        self.events = int(round(float(self.weights.sum())))
        self.batch_size = batch_size

    def epoch(self, rng: np.random.Generator | None):
        for idx in self.buckets(rng):
            yield pad([self.rows[i] for i in idx]), self.labels[idx], self.weights[idx]


def next_event_batches(ids: list[np.ndarray], complete: list[bool], *, mapping: str = "many-to-many",
                       window: int = 10, batch_size: int = 64, chunk: int = 100, training: bool = True):
    """The batch maker for next-event training: windows (many-to-one), sessions (all finished) or a stream.

    ``batch_size`` counts sequences (sessions), rows (a stream) or, many-to-one,
    32 times as many windows: a window is a short sequence.
    """
    if mapping == "many-to-one":
        return WindowBatches(ids, complete, window, batch_size * 32)
    if all(complete):
        return SessionBatches(ids, complete, batch_size)
    return StreamBatches(ids, batch_size, chunk, training)
