"""The n-gram Markov chain: the next event given the ``order`` events before it.

``order=1`` is the 2016 original's first-order chain. Histories are padded
with ``<bos>``, so the first events of a sequence have contexts of their
own. Smoothing is Witten-Bell interpolation, which needs no setting: at
every context length ``j = order .. 1`` ::

    P_j(w | h) = (c(h, w) + T(h) * P_{j-1}(w | h')) / (c(h) + T(h))

where ``h'`` drops the oldest event of ``h``, ``c`` counts training events
and ``T(h)`` is the number of distinct events seen after ``h``; a context
never seen in training backs off to ``P_{j-1}`` entirely. The recursion
ends at the unigram (``j = 0``, the empty context) interpolated with a
uniform floor over every event that can come (``<unk>`` and ``<eos>``
included), so no event gets probability zero.

Counts are tables of sorted integer keys (a context of ``j`` ids read as a
number in base ``V``, or a 64-bit hash of it when that number does not fit),
looked up with ``searchsorted``: fitting and scoring are a handful of numpy
passes, with each distinct history computed once.
"""

from __future__ import annotations

import numpy as np

from ..data.vocab import BOS, PAD, with_end
from ..errors import InputError
from ..limits import check_memory
from .base import BaselineModel, register

MAX_ORDER = 100  # events of history; beyond, no training data has a context twice
DENSE_LIMIT = 1 << 22  # floats of one dense (histories, V) block while computing distributions
HASH_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: a multiplicative hash when V**j overflows


def support_mask(vocab_size: int) -> np.ndarray:
    """Events a next-event model may predict: everything but padding and ``<bos>``."""
    mask = np.ones(vocab_size, bool)
    mask[[PAD, BOS]] = False
    return mask


def histories(ids: np.ndarray, complete: bool, order: int, prefix: np.ndarray | None = None):
    """``(targets, H)``: each target event and the ``order`` events before it, ``<bos>``-padded.

    ``prefix`` (the last ``order`` events already read, for streams) replaces the padding.
    """
    ids = np.asarray(ids, dtype=np.int64)
    y = with_end(ids, complete)
    pad = np.full(order, BOS, np.int64) if prefix is None else np.asarray(prefix, np.int64)
    seq = np.concatenate((pad, ids))
    if order == 0:
        return y, np.zeros((len(y), 0), np.int64)
    H = np.lib.stride_tricks.sliding_window_view(seq, order)[: len(y)]
    return y, np.ascontiguousarray(H)


def context_keys(H: np.ndarray, vocab_size: int) -> np.ndarray:
    """One integer per row of ``H`` (a context, oldest event first), exact while ``V**j`` fits."""
    j = H.shape[1]
    if j == 0:
        return np.zeros(len(H), np.uint64)
    exact = vocab_size ** j < 2 ** 63
    base = np.uint64(vocab_size) if exact else HASH_MULT
    key = np.zeros(len(H), np.uint64)
    with np.errstate(over="ignore"):
        for c in range(j):
            key = key * base + H[:, c].astype(np.uint64)
    return key


class HistoryModel(BaselineModel):
    """A next-event model that reads the ``history`` events before each position, ``<bos>``-padded.

    Subclasses give ``history`` and ``distributions(H)``: the log-probabilities
    of the next event after each distinct row of ``H``. Scoring, streams and
    the one computation per distinct history are here.
    """

    history = 0

    def distributions(self, H: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _log_proba_histories(self, H: np.ndarray) -> np.ndarray:
        if len(H) == 0:
            return np.zeros((0, len(self.vocab_)), np.float32)
        uniq, inv = np.unique(H, axis=0, return_inverse=True)
        return self.distributions(uniq)[inv.ravel()]

    def log_proba(self, ids_list, complete):
        pairs = [histories(a, c, self.history) for a, c in zip(ids_list, complete)]
        if not pairs:
            return []
        lp = self._log_proba_histories(np.concatenate([p[1] for p in pairs]))
        bounds = np.cumsum([0] + [len(p[0]) for p in pairs])
        return [lp[bounds[i]:bounds[i + 1]] for i in range(len(pairs))]

    def stream_start(self):
        return np.full(self.history, BOS, np.int64)

    def stream_step(self, ids, state):
        ids = np.asarray(ids, np.int64)
        _, H = histories(ids, False, self.history, prefix=state)
        seq = np.concatenate((state, ids))
        return self._log_proba_histories(H), seq[len(seq) - self.history:].copy()


class _Level:
    """Counts for one context length: contexts, their totals and distinct followers, and pairs."""

    def __init__(self, ctx: np.ndarray, y: np.ndarray, vocab_size: int):
        self.ctx, inv, self.total = np.unique(ctx, return_inverse=True, return_counts=True)
        pair = inv.astype(np.int64) * vocab_size + y
        upair, self.pair_count = np.unique(pair, return_counts=True)
        self.pair_ctx, self.pair_event = upair // vocab_size, upair % vocab_size
        self.types = np.bincount(self.pair_ctx, minlength=len(self.ctx))
        self.indptr = np.r_[0, np.cumsum(self.types)]

    def tensors(self, j: int) -> dict:
        return {f"ctx{j}": self.ctx, f"total{j}": self.total, f"pair_ctx{j}": self.pair_ctx,
                f"pair_event{j}": self.pair_event, f"pair_count{j}": self.pair_count}

    @classmethod
    def from_tensors(cls, t: dict, j: int) -> "_Level":
        lv = cls.__new__(cls)
        lv.ctx, lv.total = t[f"ctx{j}"].astype(np.uint64), t[f"total{j}"].astype(np.int64)
        lv.pair_ctx, lv.pair_event = t[f"pair_ctx{j}"].astype(np.int64), t[f"pair_event{j}"].astype(np.int64)
        lv.pair_count = t[f"pair_count{j}"].astype(np.int64)
        lv.types = np.bincount(lv.pair_ctx, minlength=len(lv.ctx))
        lv.indptr = np.r_[0, np.cumsum(lv.types)]
        return lv

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Row of each context key in the table, -1 where it was never seen."""
        if len(self.ctx) == 0:
            return np.full(len(keys), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.ctx, keys), len(self.ctx) - 1)
        return np.where(self.ctx[pos] == keys, pos, -1)

    def dense_counts(self, rows: np.ndarray, vocab_size: int) -> np.ndarray:
        """``c(h, w)`` for every ``w`` as a dense ``(len(rows), V)`` array (rows >= 0 only)."""
        out = np.zeros((len(rows), vocab_size), np.float64)
        n = self.types[rows]
        which = np.repeat(np.arange(len(rows)), n)
        starts = np.repeat(self.indptr[rows] - np.r_[0, np.cumsum(n)[:-1]], n)
        k = starts + np.arange(int(n.sum()))
        out[which, self.pair_event[k]] = self.pair_count[k]
        return out


@register
class MarkovModel(HistoryModel):
    """n-gram Markov chain with Witten-Bell interpolation down to a uniform floor.

    >>> Detector(MarkovModel(order=3)).fit("train.txt").predict("test.txt")  # doctest: +SKIP
    """

    kind = "markov"

    def __init__(self, order: int = 1, seed: int = 0, validation_split: float = 0.1, min_count: int = 1):
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
            raise InputError(f"order must be an integer from 0 to {MAX_ORDER}, not {order!r}", params="order")
        super().__init__(seed, validation_split, min_count)
        self.order = order

    @property
    def history(self) -> int:
        return self.order

    def _settings(self) -> dict:
        return {"order": self.order, **super()._settings()}

    # --- fitting -------------------------------------------------------------------
    def _fit(self, train, train_complete, valid, valid_complete):
        V = len(self.vocab_)
        n = sum(len(a) + 1 for a in train)
        check_memory(3.0 * 8 * n * (self.order + 2), f"a Markov chain of order {self.order} over {n:,} events",
                     params="order")
        pairs = [histories(a, c, self.order) for a, c in zip(train, train_complete)]
        y = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
        H = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros((0, self.order), np.int64)
        self.levels_ = [_Level(context_keys(H[:, self.order - j:], V), y, V) for j in range(self.order + 1)]

    def _tensors(self) -> dict:
        out = {}
        for j, lv in enumerate(self.levels_):
            out.update(lv.tensors(j))
        return out

    def _load_tensors(self, tensors: dict) -> None:
        self.levels_ = [_Level.from_tensors(tensors, j) for j in range(self.order + 1)]

    # --- scoring ---------------------------------------------------------------------
    def distribution(self, H: np.ndarray) -> np.ndarray:
        """``log P(. | h)`` for each row ``h`` of ``H`` (``order`` ids, oldest first): ``(len(H), V)``."""
        V = len(self.vocab_)
        mask = support_mask(V)
        p = np.broadcast_to(np.where(mask, 1.0 / mask.sum(), 0.0), (len(H), V)).copy()
        for j, lv in enumerate(self.levels_):
            rows = lv.lookup(context_keys(H[:, self.order - j:], V))
            seen = rows >= 0
            if not seen.any():
                continue
            r = rows[seen]
            c, t = lv.total[r].astype(np.float64)[:, None], lv.types[r].astype(np.float64)[:, None]
            p[seen] = (lv.dense_counts(r, V) + t * p[seen]) / (c + t)
        with np.errstate(divide="ignore"):
            return np.log(p).astype(np.float32)

    def distributions(self, H: np.ndarray) -> np.ndarray:
        step = max(1, DENSE_LIMIT // len(self.vocab_))
        return np.concatenate([self.distribution(H[s:s + step]) for s in range(0, len(H), step)])
