"""One false-positive budget for several views: conformal p-values, split across the views.

Each view of a sequence (unseen events, the model's surprise, the count
profile, a baseline's own distances) gives one number per sequence, higher
meaning stranger. Calibration keeps, for each view, the numbers of ``n``
normal sequences that were scored out of sample (cross-fitted or
leave-one-out, see :mod:`seqrnn.crossfit`). For a new sequence:

* the p-value of view ``v`` is the share of calibration sequences at least
  as extreme, counting the new one: ``(1 + #{s_i >= s}) / (n + 1)``;
* the budget is split across the ``V`` views (Bonferroni): each view gets
  ``k`` calibration ranks, ``k = max(2, floor(alpha (n + 1) / V))``, and
  fires when its value is above its ``k``-th largest calibration value
  (its p-value at most ``k / (n + 1)``);
* on normal data exchangeable with the calibration sequences each view then
  fires with probability at most ``k / (n + 1)``, and the union of the views
  at most ``V k / (n + 1)``: that is the rate promised, never less.

Why at least two ranks per view: with one, a view's cut is its single
largest calibration value, and one outlier among the normal sequences
(HDFS's training data holds a session whose leave-one-out count distance is
16.4 where the next is 1.47) switches the view off. Why a rank budget per
view rather than one shared by all (the fusion on ``min_v p_v`` this module
first used): with a shared budget of two ranks the two most extreme
calibration sequences of any view set every view's cut, so the view with the
outlier again lost. The price is honest and stated: with ``n`` calibration
sequences and ``V`` views no rate below ``2 V / (n + 1)`` is promised.

Sequences are ordered (scores, the fused statistic) by ``F = -log min_v
p_v``, where beyond the largest calibration value a view's p-value keeps
falling exponentially with the excess, in units of the view's tail scale, so
that sequences beyond every calibration sequence are still ordered; the
decision itself uses only the ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TAIL_SHARE = 0.01  # the tail scale: mean excess of the top 1% over the value where it starts
TAIL_MIN = 5  # calibration values the tail scale rests on, at least


def tail_scale(values: np.ndarray) -> float:
    """How fast a view's tail falls: the mean excess of its largest values (at least a small positive number)."""
    a = np.sort(np.asarray(values, np.float64))
    if len(a) == 0:
        return 1.0
    t = min(len(a), max(TAIL_MIN, int(math.ceil(TAIL_SHARE * len(a)))))
    top = a[-t:]
    scale = float(top.mean() - top[0])
    spread = float(a[-1] - a[0])
    return max(scale, 1e-3 * spread, 1e-6 * (abs(float(a[-1])) + 1.0))


MIN_RANKS = 2  # calibration ranks per view, at least: one outlier cannot set a view's cut


def view_ranks(alpha: float, n: int, views: int) -> int:
    """The calibration ranks each of ``views`` views gets of the budget ``alpha`` with ``n`` sequences."""
    return max(MIN_RANKS, math.floor(alpha * (n + 1) / max(views, 1) + 1e-9))


def promised_rate(alpha: float, n: int, views: int = 1) -> tuple[int, float]:
    """``(k, rate)``: the calibration ranks of each view and the false-positive rate promised for the union
    of ``views`` views with ``n`` calibration sequences: ``k = max(2, floor(alpha (n + 1) / views))``,
    rate ``min(1, views k / (n + 1))``."""
    k = view_ranks(alpha, n, views)
    return k, min(1.0, max(views, 1) * k / (n + 1))


@dataclass
class Calibration:
    """The calibration values of each view (one per calibration sequence, aligned) and what follows.

    ``values``: view name -> array of ``n`` numbers (higher is stranger);
    ``alpha``: the target false-positive rate;
    ``floors``: view name -> the largest value of the sequences given back as normal (feedback): a view's
    cut is never below it, so that a confirmed false positive is not flagged again (a higher cut only
    lowers the rate: the promise holds).
    """

    values: dict
    alpha: float
    floors: dict | None = None

    def __post_init__(self):
        self.values = {k: np.asarray(v, np.float64) for k, v in self.values.items()}
        self.floors = {k: float(v) for k, v in (self.floors or {}).items() if k in self.values}
        lengths = {len(v) for v in self.values.values()}
        if len(lengths) > 1:
            raise ValueError(f"views of unequal lengths {sorted(lengths)}")
        self.n = lengths.pop() if lengths else 0
        self.sorted = {k: np.sort(v) for k, v in self.values.items()}
        self.tau = {k: tail_scale(v) for k, v in self.values.items()}
        self.k, self.promised_fpr = promised_rate(self.alpha, self.n, len(self.values))
        # F at which a view fires: its p-value at most k / (n + 1), i.e. -log p >= log((n + 1) / k); the cut
        # sits half a rank further so that "above the cut" is strict on both sides.
        self.fused_cut = math.log((self.n + 1) / (self.k + 0.5)) if self.n >= self.k else math.inf

    # --- one view ------------------------------------------------------------------------
    def log_p(self, name: str, s) -> np.ndarray:
        """``-log`` of view ``name``'s p-value at ``s``, extended beyond the largest calibration value."""
        a, n = self.sorted[name], self.n
        s = np.atleast_1d(np.asarray(s, np.float64))
        r = n - np.searchsorted(a, s, side="left")  # calibration values >= s
        g = np.log(n + 1) - np.log1p(r)
        beyond = r == 0
        if n and beyond.any():
            g[beyond] += (s[beyond] - a[-1]) / self.tau[name]
        if name in self.floors and math.isfinite(self.fused_cut):
            below = s <= self.floors[name]  # at or below a confirmed normal value: never beyond the cut
            g[below] = np.minimum(g[below], math.log((n + 1) / (self.k + 1)))
        return g

    def p_value(self, name: str, s) -> np.ndarray:
        """View ``name``'s p-value: the share of calibration sequences at least as extreme (the new one counted)."""
        a, n = self.sorted[name], self.n
        s = np.atleast_1d(np.asarray(s, np.float64))
        return (1 + n - np.searchsorted(a, s, side="left")) / (n + 1)

    # --- fused ---------------------------------------------------------------------------------
    def fused(self, stats: dict) -> np.ndarray:
        """``F`` of new sequences: the largest ``-log p`` over the views given (name -> array)."""
        parts = [self.log_p(k, v) for k, v in stats.items() if k in self.values]
        if not parts:
            return np.zeros(len(next(iter(stats.values()))) if stats else 0)
        return np.max(parts, axis=0)

    def fused_p_value(self, f) -> np.ndarray:
        """The fused p-value at fused statistic ``f``: ``min(1, V min_v p_v)`` (Bonferroni over the ``V``
        views); a sequence is anomalous when it is at most the promised rate. Never below ``V / (n + 1)``:
        beyond every calibration value the extrapolation orders sequences (scores), it backs no smaller rate."""
        f = np.atleast_1d(np.asarray(f, np.float64))
        return np.minimum(1.0, max(len(self.values), 1) * np.maximum(np.exp(-f), 1.0 / (self.n + 1)))

    def cut(self, name: str) -> float:
        """View ``name``'s cut in its own units: it fires when its value is above this, its ``k``-th largest
        calibration value (infinite when there are fewer than ``k``)."""
        a, n = self.sorted[name], self.n
        if n < self.k:
            return math.inf
        return max(float(a[n - self.k]), self.floors.get(name, -math.inf))

    def summary(self) -> dict:
        return {"calibration_sequences": self.n, "target_fpr": self.alpha, "promised_fpr": self.promised_fpr,
                "ranks_per_view": self.k, "views": len(self.values), "fused_cut": self.fused_cut,
                "cuts": {k: self.cut(k) for k in self.values}, "tail_scales": dict(self.tau), "floors": dict(self.floors)}
