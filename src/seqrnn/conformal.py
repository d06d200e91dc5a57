"""One false-positive budget for several views: conformal p-values and their fusion.

Each view of a sequence (unseen events, the model's surprise, the count
profile, a baseline's own distances) gives one number per sequence, higher
meaning stranger. Calibration keeps, for each view, the numbers of ``n``
normal sequences that were scored out of sample (cross-fitted or
leave-one-out, see :mod:`seqrnn.crossfit`). For a new sequence:

* the p-value of view ``v`` is the share of calibration sequences at least
  as extreme, counting the new one: ``(1 + #{s_i >= s}) / (n + 1)``;
* the views are fused on p-values: ``F = -log(min_v p_v)``, where beyond the
  largest calibration value a view's p-value keeps falling exponentially
  with the excess, in units of the view's tail scale (so that sequences
  beyond every calibration sequence are still ordered, and ties between
  views broken);
* the fused p-value is the share of calibration sequences whose own ``F``
  (computed leave-one-out, each against the others) is at least ``F``; a
  sequence is anomalous when it is at most the target rate ``alpha``, that
  is when ``F`` is above the ``k``-th largest calibration ``F``, ``k =
  floor(alpha (n + 1))``.

On normal data exchangeable with the calibration sequences the rate of
false positives is then at most ``k / (n + 1) <= alpha`` for the union of
the views. With ``n`` sequences no rate below ``1 / (n + 1)`` can be
promised: ``k`` is at least 1, and the promise says so.

Because ``F`` is a maximum of increasing functions, the decision is also
"some view above its own cut": :meth:`Calibration.cut` gives each view's
cut in its own units (the surprise cut in nats, for event flags and plots).
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


def promised_rate(alpha: float, n: int) -> tuple[int, float]:
    """``(k, rate)``: the calibration rank that decides and the false-positive rate promised with ``n``
    calibration sequences: ``k = max(1, floor(alpha (n + 1)))``, rate ``k / (n + 1)``."""
    k = max(1, int(math.floor(alpha * (n + 1) + 1e-9)))
    return k, k / (n + 1)


@dataclass
class Calibration:
    """The calibration values of each view (one per calibration sequence, aligned) and what follows.

    ``values``: view name -> array of ``n`` numbers (higher is stranger);
    ``alpha``: the target false-positive rate.
    """

    values: dict
    alpha: float

    def __post_init__(self):
        self.values = {k: np.asarray(v, np.float64) for k, v in self.values.items()}
        lengths = {len(v) for v in self.values.values()}
        if len(lengths) > 1:
            raise ValueError(f"views of unequal lengths {sorted(lengths)}")
        self.n = lengths.pop() if lengths else 0
        self.sorted = {k: np.sort(v) for k, v in self.values.items()}
        self.tau = {k: tail_scale(v) for k, v in self.values.items()}
        self.fused_ = np.sort(self._fused_leave_one_out()) if self.n else np.zeros(0)
        self.k, self.promised_fpr = promised_rate(self.alpha, self.n)
        self.fused_cut = float(self.fused_[-self.k]) if self.n >= self.k else math.inf

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
        return g

    def p_value(self, name: str, s) -> np.ndarray:
        """View ``name``'s p-value: the share of calibration sequences at least as extreme (the new one counted)."""
        a, n = self.sorted[name], self.n
        s = np.atleast_1d(np.asarray(s, np.float64))
        return (1 + n - np.searchsorted(a, s, side="left")) / (n + 1)

    def _loo_log_p(self, name: str) -> np.ndarray:
        """:meth:`log_p` of each calibration value against the others (n - 1 of them)."""
        a, v, n = self.sorted[name], self.values[name], self.n
        r = n - np.searchsorted(a, v, side="left") - 1  # the others >= it
        g = np.log(n) - np.log1p(r)
        if n >= 2:
            top = r == 0  # the largest, alone: beyond the largest of the others
            g[top] += (v[top] - a[-2]) / self.tau[name]
        return g

    def _fused_leave_one_out(self) -> np.ndarray:
        return np.max([self._loo_log_p(k) for k in self.values], axis=0) if self.values else np.zeros(self.n)

    # --- fused ---------------------------------------------------------------------------------
    def fused(self, stats: dict) -> np.ndarray:
        """``F`` of new sequences: the largest ``-log p`` over the views given (name -> array)."""
        parts = [self.log_p(k, v) for k, v in stats.items() if k in self.values]
        if not parts:
            return np.zeros(len(next(iter(stats.values()))) if stats else 0)
        return np.max(parts, axis=0)

    def fused_p_value(self, f, rng=None) -> np.ndarray:
        """The share of calibration sequences whose fused statistic is at least ``f`` (the new one counted).

        With ``rng`` (a numpy Generator) ties are broken at random (smoothed conformal p-values: exactly
        uniform on exchangeable data, where the plain ones are only at least uniform)."""
        f = np.atleast_1d(np.asarray(f, np.float64))
        at_least = self.n - np.searchsorted(self.fused_, f - 1e-12, side="left")
        if rng is None:
            return (1 + at_least) / (self.n + 1)
        above = self.n - np.searchsorted(self.fused_, f + 1e-12, side="right")
        return (above + rng.random(len(f)) * (1 + at_least - above)) / (self.n + 1)

    def cut(self, name: str) -> float:
        """View ``name``'s cut in its own units: it fires alone when its value is above this."""
        a, n, fc = self.sorted[name], self.n, self.fused_cut
        if not n or not math.isfinite(fc):
            return math.inf
        if fc >= math.log(n + 1):  # beyond the calibration values
            return float(a[-1] + (fc - math.log(n + 1)) * self.tau[name])
        # log((n+1)/(1+r)) > fc  <=>  r < (n+1) e^-fc - 1  <=>  r <= m
        m = int(math.ceil((n + 1) * math.exp(-fc) - 1 - 1e-9)) - 1
        if m >= n:
            return -math.inf
        return float(a[n - 1 - max(m, 0)]) if m >= 0 else float(a[-1])

    def summary(self) -> dict:
        return {"calibration_sequences": self.n, "target_fpr": self.alpha, "promised_fpr": self.promised_fpr,
                "rank": self.k, "fused_cut": self.fused_cut,
                "cuts": {k: self.cut(k) for k in self.values}, "tail_scales": dict(self.tau)}
