"""One false-positive budget for several views: conformal p-values and cuts that share it.

Each view of a sequence (unseen events, the model's surprise, the count
profile, a baseline's own distances) gives one number per sequence, higher
meaning stranger. Calibration keeps, for each view, the numbers of ``n``
normal sequences that were scored out of sample (cross-fitted or
leave-one-out, see :mod:`seqrnn.crossfit`).

The budget ``alpha`` (the false-positive rate asked) is shared by the
``V`` views. On normal data exchangeable with the calibration sequences, a
view whose cut leaves ``U_v`` calibration values above it fires on a new
sequence with probability about ``(U_v + 1) / (n + 1)`` (the conformal
argument: the new one is as likely as any of the ``n + 1`` to be among the
most extreme). For the union of the views that is about
``(U + V) / (n + 1)``, with ``U`` the calibration sequences beyond some cut
(a sequence extreme in several views counts once). So:

* every view gets the same number of ranks ``k``: its cut is its ``k``-th
  largest calibration value, and it fires above it;
* ``k`` is the largest for which ``U <= floor(alpha (n + 1)) - V``
  (:func:`places`). The most extreme normal sequences are often extreme in
  several views at once (a rare event is surprising and a count outlier),
  so the views together spend fewer places than ``V (k - 1)``;
* a view whose ``k``-th largest value is a far outlier (a later value of
  the view :data:`GAP` times smaller) gets the ranks down to that value,
  the other views fewer (their cuts rising by less than :data:`GAP`), when
  the union still fits the places (:func:`view_ranks`): its outliers
  still count in ``U``;
* the rate promised is ``(U + V) / (n + 1)``: within ``alpha`` when ``n`` is
  large enough, and never below ``V / (n + 1)`` (each view's largest value
  backs no less).

A sequence's p-value is the rate the union would promise with cuts just
below it: with ``r`` the fewest calibration values at least as extreme as
it in any view, ``(#{calibration sequences within the top r of some view}
+ V) / (n + 1)``. It is at most the promise exactly when some view fires.
With one view it is the conformal p-value.

How the rule was chosen (``docs/calibration.md``): the views' tails differ
(HDFS's count profiles hold a few far outliers among normal sessions, its
surprise values a dense tail), and a budget split evenly by Bonferroni
(``alpha / V`` each) left each view one or two ranks, so that two outliers
switched the count view off. Sharing the places by the union keeps one
promise and gives each view as many ranks as the data allows.

Sequences are ordered (scores) by ``F = max_v -log p_v``, where beyond the
largest calibration value a view's p-value keeps falling exponentially with
the excess, in units of the view's tail scale, so that sequences beyond
every calibration sequence are still ordered; the decision uses the ranks.
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
    if spread == 0:  # every calibration value alike (no unseen event in any): one unit of the view's own
        return max(abs(float(a[-1])), 1.0)
    return max(scale, 1e-3 * spread, 1e-6 * (abs(float(a[-1])) + 1.0))


def places(alpha: float, n: int, views: int = 1) -> int:
    """How many of ``n`` calibration sequences the budget ``alpha`` lets lie beyond the cuts of ``views``
    views: ``floor(alpha (n + 1)) - views``, at least 0."""
    return max(0, math.floor(alpha * (n + 1) + 1e-9) - max(views, 1))


def rank_counts(values: np.ndarray) -> np.ndarray:
    """For each value, how many of ``values`` are at least as large (itself included)."""
    a = np.sort(values)
    return len(a) - np.searchsorted(a, values, side="left")


def beyond_ranks(values: dict, sorted_: dict, ranks: dict) -> int:
    """How many sequences lie beyond some view's ``ranks[view]``-th largest value (``sorted_``: each view's
    values in ascending order)."""
    n = len(next(iter(values.values())))
    out = np.zeros(n, bool)
    for name, v in values.items():
        out |= v > float(sorted_[name][n - ranks[name]])
    return int(out.sum())


def shared_ranks(values: dict, alpha: float) -> int:
    """``k``, the ranks every view gets: the largest (at least 1) for which at most ``places(alpha, n, V)``
    calibration sequences lie beyond some view's ``k``-th largest value. Floors (feedback) do not enter:
    they only lower the sequences beyond the cuts, and never give the views more ranks."""
    names = list(values)
    n = len(values[names[0]]) if names else 0
    if n == 0:
        return 1
    allowed = places(alpha, n, len(names))
    sorted_ = {k: np.sort(v) for k, v in values.items()}

    def beyond(k: int) -> int:
        return beyond_ranks(values, sorted_, {name: k for name in names})

    lo, hi = 1, n  # beyond(k) grows with k and beyond(1) is 0: the largest k within the places, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if beyond(mid) <= allowed:
            lo = mid
        else:
            hi = mid - 1
    return lo


GAP = 3.0  # a cut that falls to a third or less a few ranks further sits on a few outliers (docs/calibration.md)


def view_ranks(values: dict, alpha: float, k: int) -> dict:
    """Each view's number of ranks: ``k`` (:func:`shared_ranks`), but more for a view whose ``k``-th
    largest value is an outlier: where a later value of the view is :data:`GAP` times smaller, the view
    gets the ranks down to the first such value, if the union still fits the places with the other views
    at fewer ranks (the most that fit, at most ``k``). They give up ranks only while their own cuts stay
    within a factor :data:`GAP` (a cut at 0 stays at 0): a view is not blinded to see another. Where it
    cannot fit, ``k`` stays.

    Equal ranks leave a view blind when its few largest calibration values are far outliers: on HDFS,
    four normal training sessions with count distances 8 to 74 where the rest are below 1.5 held the
    count cut at 12 (three ranks), and the count view, which finds nearly every anomaly at 1.5, found
    46% of them. Its outliers still count in ``U``: the promise is kept."""
    names = list(values)
    n = len(values[names[0]]) if names else 0
    ranks = {name: k for name in names}
    if n == 0 or len(names) < 2:
        return ranks
    allowed = places(alpha, n, len(names))
    sorted_ = {name: np.sort(v) for name, v in values.items()}
    desc = {name: a[::-1] for name, a in sorted_.items()}  # the r-th largest at r - 1

    def fits(cand: dict) -> bool:
        return beyond_ranks(values, sorted_, cand) <= allowed

    for name in names:
        a, r = desc[name], ranks[name]
        cut = float(a[r - 1])
        past = np.flatnonzero(a[r:] <= cut / GAP) if cut > 0 else []
        if not len(past):
            continue
        wanted = r + 1 + int(past[0])  # the first value past the gap is the view's cut
        others = [o for o in names if o != name]
        # the fewest ranks each other view may keep: its cut at most GAP times where it is
        least = {o: 1 + int(np.flatnonzero(desc[o][:ranks[o]] <= GAP * float(desc[o][ranks[o] - 1]))[0])
                 for o in others}

        def cand(ko: int) -> dict:  # the others at most ko ranks each (their fewest kept): more with ko
            out = {o: max(min(ranks[o], ko), least[o]) for o in others}
            out[name] = wanted
            return out

        if not fits(cand(1)):
            continue
        lo, hi = 1, max(ranks[o] for o in others)  # the most ranks the others keep, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(cand(mid)) else (lo, mid - 1)
        ranks = cand(lo)
    return ranks


# A floor holds a little above the value it was given: the same sequence scored again in another batch
# differs in its last float32 bits (the products' order), and a given-back false positive must stay below.
FLOOR_SLACK = 1e-5  # relative (of the value, at least of 1)


def _slackened(floor: float) -> float:
    return floor + FLOOR_SLACK * max(1.0, abs(floor))


@dataclass
class Calibration:
    """The calibration values of each view (one per calibration sequence, aligned) and what follows.

    ``values``: view name -> array of ``n`` numbers (higher is stranger);
    ``alpha``: the target false-positive rate;
    ``floors``: view name -> the largest value of the sequences given back as normal (feedback): a view's
    cut is never below it (by :data:`FLOOR_SLACK`, so that the same sequence scored again is not above
    it by rounding), so that a confirmed false positive is not flagged again (a higher cut only lowers
    the rate: the promise holds).

    Derived: ``n``, ``k`` (the ranks every view gets), ``ranks`` (each view's: ``k``, more for a view past
    its outliers, :func:`view_ranks`), ``beyond`` (``U``: calibration sequences beyond
    some cut), ``promised_fpr`` (``(U + V) / (n + 1)``), ``fused_cut`` (the fused statistic at the cuts).
    """

    values: dict
    alpha: float
    floors: dict | None = None

    def __post_init__(self):
        self.values = {k: np.asarray(v, np.float64) for k, v in self.values.items()}
        self.floors = {k: float(v) for k, v in (self.floors or {}).items() if k in self.values}
        self._floor_at = {k: _slackened(v) for k, v in self.floors.items()}
        lengths = {len(v) for v in self.values.values()}
        if len(lengths) > 1:
            raise ValueError(f"views of unequal lengths {sorted(lengths)}")
        self.n = lengths.pop() if lengths else 0
        self.sorted = {k: np.sort(v) for k, v in self.values.items()}
        self.tau = {k: tail_scale(v) for k, v in self.values.items()}
        self.views = max(len(self.values), 1)
        self.k = shared_ranks(self.values, self.alpha)
        self.ranks = view_ranks(self.values, self.alpha, self.k)  # each view's: k, more past an outlier gap
        self.beyond = int(self.outside().sum())  # U: beyond some cut, floors applied
        self.promised_fpr = min(1.0, (self.beyond + self.views) / (self.n + 1))
        # F at which a view fires: at most k - 1 calibration values at least as extreme, i.e.
        # -log p >= log((n + 1) / k); the cut sits half a rank further so that "above the cut" is strict.
        self.fused_cut = math.log((self.n + 1) / (self.k + 0.5)) if self.n else math.inf
        # each calibration sequence's fewest values at least as extreme in any view (its fused rank), a
        # view's ranks counted in units of its share (k / its ranks), so that every cut is at rank k
        self._fused_ranks = np.sort(np.min([rank_counts(v) * self._share(k) for k, v in self.values.items()],
                                           axis=0)) if self.values and self.n else np.zeros(0)

    def _share(self, name: str) -> float:
        """``k`` over view ``name``'s ranks: 1, less for a view given more ranks (:func:`view_ranks`)."""
        return self.k / self.ranks[name]

    # --- one view ------------------------------------------------------------------------
    def at_least(self, name: str, s) -> np.ndarray:
        """How many calibration values of view ``name`` are at least ``s``."""
        s = np.atleast_1d(np.asarray(s, np.float64))
        return self.n - np.searchsorted(self.sorted[name], s, side="left")

    def _rank(self, name: str, s: np.ndarray) -> np.ndarray:
        """:meth:`at_least`, and at least the view's ranks at or below its floor (never beyond its cut)."""
        r = self.at_least(name, s)
        if name in self.floors and self.n:
            r = np.where(s <= self._floor_at[name], np.maximum(r, self.ranks[name]), r)
        return r

    def log_p(self, name: str, s) -> np.ndarray:
        """``-log`` of view ``name``'s p-value at ``s``, extended beyond the largest calibration value."""
        a, n = self.sorted[name], self.n
        s = np.atleast_1d(np.asarray(s, np.float64))
        r = self._rank(name, s)
        g = np.log(n + 1) - np.log1p(r)
        beyond = r == 0
        if n and beyond.any():
            g[beyond] += (s[beyond] - a[-1]) / self.tau[name]
        if self.ranks[name] != self.k:  # a view with more ranks: its cut at the shared one (fused_cut)
            g = g * (self.fused_cut / math.log((n + 1) / (self.ranks[name] + 0.5)))
        return g

    def p_value(self, name: str, s) -> np.ndarray:
        """View ``name``'s p-value: the share of calibration sequences at least as extreme (the new one counted)."""
        return (1 + self.at_least(name, s)) / (self.n + 1)

    # --- fused ---------------------------------------------------------------------------------
    def fused(self, stats: dict) -> np.ndarray:
        """``F`` of new sequences: the largest ``-log p`` over the views given (name -> array)."""
        parts = [self.log_p(k, v) for k, v in stats.items() if k in self.values]
        if not parts:
            return np.zeros(len(next(iter(stats.values()))) if stats else 0)
        return np.max(parts, axis=0)

    def fused_p_value(self, stats: dict) -> np.ndarray:
        """The p-value of new sequences (view name -> array): with ``r`` the fewest calibration values at
        least as extreme in any view, ``(#{calibration sequences within the top r of some view} + V) /
        (n + 1)``, the rate the union of the views would promise with cuts just below it (at most 1). At
        most :attr:`promised_fpr` exactly when a view fires (floors aside)."""
        parts = [self._rank(k, np.atleast_1d(np.asarray(v, np.float64))) * self._share(k) for k, v in stats.items()
                 if k in self.values]
        if not parts:
            return np.ones(len(next(iter(stats.values()))) if stats else 0)
        r = np.min(parts, axis=0)
        inside = np.searchsorted(self._fused_ranks, r, side="right")  # calibration sequences with rank <= r
        return np.minimum(1.0, (self.views + inside) / (self.n + 1))

    def outside(self) -> np.ndarray:
        """Which calibration sequences lie beyond some view's cut (the ``U`` of the promise)."""
        out = np.zeros(self.n, bool)
        for name, v in self.values.items():
            out |= v > self.cut(name)
        return out

    def cut(self, name: str) -> float:
        """View ``name``'s cut in its own units: it fires when its value is above this, its ``k``-th largest
        calibration value (``ranks[name]``-th for a view past its outliers; or the floor of feedback, if
        higher)."""
        a, n = self.sorted[name], self.n
        r = self.ranks[name]
        if n < r or n == 0:
            return math.inf
        return max(float(a[n - r]), self._floor_at.get(name, -math.inf))
