"""Windowed Naive Bayes next-event predictor (the 2016 original's baseline).

The features of a position are the ``window`` events before it, one
feature per offset (``<bos>`` before the start). Naive Bayes takes them as
independent given the next event ``y``::

    log P(y | x) = log P(y) + sum_o log P(x_o | y) - log Z

with Lidstone smoothing (``alpha``; 1 is Laplace)::

    P(y)       = (c(y) + alpha) / (N + alpha * |Y|)
    P(x_o = v | y) = (c_o(v, y) + alpha) / (c(y) + alpha * V)

over the events ``Y`` that may come (all but padding and ``<bos>``) and the
``V`` values a feature may take. Learning is a ``bincount`` per offset; the
model is one ``(window, V, V)`` table of log-probabilities, and scoring sums
``window`` rows of it per position, all positions at once.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import register
from .markov import HistoryModel, histories, support_mask

TABLE_LIMIT = 1 << 28  # floats in the (window, V, V) table: 1 GiB
GATHER_LIMIT = 1 << 24  # floats in one (positions, window, V) gather


def logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(1, keepdims=True)))


@register
class NaiveBayesModel(HistoryModel):
    """Windowed Naive Bayes over the ``window`` events before each position."""

    kind = "nb"

    def __init__(self, window: int = 10, alpha: float = 1.0, seed: int = 0, validation_split: float = 0.1,
                 min_count: int = 1):
        if not isinstance(window, int) or window < 1:
            raise InputError(f"window must be an integer >= 1, not {window!r}", params="window")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < float("inf"):
            raise InputError(f"alpha (Lidstone smoothing) must be a finite number > 0, not {alpha!r}", params="alpha")
        super().__init__(seed, validation_split, min_count)
        self.window, self.alpha = window, alpha

    @property
    def history(self) -> int:
        return self.window

    def _settings(self) -> dict:
        return {"window": self.window, "alpha": self.alpha, **super()._settings()}

    def _fit(self, train, train_complete, valid, valid_complete):
        V, w, a = len(self.vocab_), self.window, self.alpha
        if w * V * V > TABLE_LIMIT:
            raise InputError(f"Naive Bayes over {V - 4} events and a window of {w} needs a table of {w * V * V:,} "
                             "floats; use a smaller window or a larger min_count", params=("window", "min_count"))
        pairs = [histories(x, c, w) for x, c in zip(train, train_complete)]
        y = np.concatenate([p[0] for p in pairs])
        X = np.concatenate([p[1] for p in pairs])
        classes = support_mask(V)
        cy = np.bincount(y, minlength=V).astype(np.float64)
        prior = np.where(classes, (cy + a) / (len(y) + a * classes.sum()), 0.0)
        table = np.empty((w, V, V), np.float32)
        for o in range(w):
            c = np.bincount(X[:, o] * V + y, minlength=V * V).reshape(V, V).astype(np.float64)  # [value, class]
            table[o] = np.log((c + a) / (cy + a * V)[None, :])
        with np.errstate(divide="ignore"):
            self.log_prior_ = np.log(prior).astype(np.float32)
        self.log_likelihood_ = table

    def _tensors(self) -> dict:
        return {"log_prior": self.log_prior_, "log_likelihood": self.log_likelihood_}

    def _load_tensors(self, tensors: dict) -> None:
        self.log_prior_, self.log_likelihood_ = tensors["log_prior"], tensors["log_likelihood"]

    def distributions(self, X: np.ndarray) -> np.ndarray:
        V, w = len(self.vocab_), self.window
        out = np.empty((len(X), V), np.float32)
        offsets = np.arange(w)
        step = max(1, GATHER_LIMIT // (w * V))
        for s in range(0, len(X), step):
            joint = self.log_prior_[None, :] + self.log_likelihood_[offsets[None, :], X[s:s + step]].sum(1)
            out[s:s + step] = joint - logsumexp(joint)
        return out
