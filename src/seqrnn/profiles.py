"""Count profiles of sessions: event count vectors and the distance to the nearest known one.

Shared by the Detector's count-profile view (:mod:`seqrnn.detect`) and the
sequence-level baselines (:mod:`seqrnn.models.counts`). A profile is the
vector of how often each event occurs in a session; two are compared by a
weighted L1 distance, and a session is judged by its nearest profile among
those of the training sessions.

The Detector compares the logarithms ``log(1 + c)`` of counts
(:func:`transformed`), each event weighted by its idf (:func:`idf_weights`):
on a log scale an event seen 30 or 31 times differs less than one seen 0 or
1 times, and the idf weighs the events few sessions hold (in logs: errors,
retries) above those every session holds. Chosen on 18 splits of HDFS and 4
seeds of the order benchmark, against raw counts weighted by the inverse of
their standard deviation (the rule before) and three other ways
(``docs/calibration.md``); models saved before keep their own.
"""

from __future__ import annotations

import numpy as np

from .data.vocab import UNK


def count_matrix(ids_list: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """One row of event counts per sequence; unseen events are judged by their own rule, not counted."""
    from .limits import check_memory

    check_memory(4.0 * len(ids_list) * vocab_size,
                 f"the event counts of {len(ids_list):,} sessions over {vocab_size:,} events (the count view)")
    out = np.zeros((len(ids_list), vocab_size), dtype=np.float32)
    if len(ids_list):
        rows = np.repeat(np.arange(len(ids_list)), [len(ids) for ids in ids_list])
        ids = np.concatenate(ids_list).astype(np.int64)
        if len(ids) and not 0 <= ids.min() <= ids.max() < vocab_size:
            raise IndexError(f"event ids must lie in [0, {vocab_size})")
        cells = rows * vocab_size + ids
        if out.size <= 4 * len(cells) + (1 << 16):  # few cells: count them all at once
            out.ravel()[:] = np.bincount(cells, minlength=out.size)
        else:  # a large vocabulary: the cells that occur (a count of every cell took 8 bytes a cell, and its time)
            cells, n = np.unique(cells, return_counts=True)
            out.ravel()[cells] = n
    out[:, UNK] = 0.0
    return out


#: How a detector file may say its counts are compared: as they are (models saved before) or ``log(1 + c)``
#: (the Detector's). :func:`transformed` also takes ``sqrt``, for benchmarks.
TRANSFORMS = ("raw", "log")


def transformed(counts: np.ndarray, how: str) -> np.ndarray:
    """``counts`` as compared (:data:`TRANSFORMS`, or ``sqrt``)."""
    if how == "raw":
        return counts
    if how == "sqrt":
        return np.sqrt(counts, dtype=np.float32)
    if how == "log":
        return np.log1p(counts, dtype=np.float32)
    raise ValueError(f"unknown count transform {how!r:.40}: one of {', '.join(TRANSFORMS)}, sqrt")


def idf_weights(counts: np.ndarray) -> np.ndarray:
    """Each event's weight: ``1 + log((n + 1) / (df + 1))``, ``df`` the sessions of ``n`` that hold it."""
    df = (np.asarray(counts) > 0).sum(0)
    return (1.0 + np.log((len(counts) + 1.0) / (df + 1.0))).astype(np.float32)


#: Values (profiles x references x events) one block of :func:`nearest` computes at once.
NEAREST_CELLS = 1 << 24
#: Vocabularies larger than this are compared on the events a block of profiles holds (see :func:`nearest`).
SPARSE_VOCABULARY = 256


def nearest(profiles: np.ndarray, reference: np.ndarray, weights: np.ndarray,
            exclude_self: bool = False, totals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted L1 distance of each profile to its nearest reference profile, and its index.

    With ``exclude_self`` the profiles are the reference itself and each is
    compared with the others only. Computed in blocks of bounded memory. Over
    a vocabulary larger than :data:`SPARSE_VOCABULARY` a block is compared on
    the events its profiles hold, the rest of each reference's distance being
    its weighted count of the others: a session holds few of thousands of
    events, and comparing every pair on all of them made the time grow with
    sessions x sessions x vocabulary. ``totals`` (each reference's weighted
    count, :func:`weighted_totals`) may be given when the same reference is
    compared again and again.
    """
    if reference.shape[1] > SPARSE_VOCABULARY and len(profiles) and len(reference):
        if totals is None:
            totals = weighted_totals(reference, weights)
        return _nearest_on_held_events(profiles, reference, weights, exclude_self, totals)
    dist = np.empty(len(profiles), dtype=np.float64)
    arg = np.empty(len(profiles), dtype=np.int64)
    step = max(1, NEAREST_CELLS // max(1, reference.size))
    for start in range(0, len(profiles), step):
        block = profiles[start:start + step]
        d = (np.abs(block[:, None, :] - reference[None, :, :]) * weights).sum(-1)
        if exclude_self:
            d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        arg[start:start + step] = d.argmin(1)
        dist[start:start + step] = d.min(1)
    return dist, arg


def weighted_totals(reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each reference profile's weighted count, ``sum of w b`` (float64)."""
    return reference.astype(np.float64) @ weights.astype(np.float64)


def _nearest_on_held_events(profiles, reference, weights, exclude_self, total):
    """:func:`nearest` of sparse profiles: for a block of profiles that hold the events ``C`` (and no other),
    ``d(a, b) = sum over C of w |a - b|  +  (sum over all of w b - sum over C of w b)``, ``total`` the
    references' ``sum over all of w b``."""
    m = len(reference)
    held = profiles != 0
    sizes = held.sum(1)
    dist = np.empty(len(profiles), dtype=np.float64)
    arg = np.empty(len(profiles), dtype=np.int64)
    start = 0
    while start < len(profiles):
        cols, own = held[start], int(sizes[start])
        end = start + 1
        while end < len(profiles):  # grow the block while its profiles share most events, within NEAREST_CELLS
            wider = cols | held[end]
            n = max(1, int(wider.sum()))
            if (end - start + 1) * m * n > NEAREST_CELLS or (end - start + 1) * n > 2 * (own + sizes[end]):
                break
            cols, own, end = wider, own + int(sizes[end]), end + 1
        c = np.flatnonzero(cols)
        ref_c = reference[:, c]
        rest = total - ref_c.astype(np.float64) @ weights[c].astype(np.float64)
        d = (np.abs(profiles[start:end, None, c] - ref_c[None, :, :]) * weights[c]).sum(-1) + rest
        if exclude_self:
            d[np.arange(end - start), np.arange(start, end)] = np.inf
        arg[start:end] = d.argmin(1)
        dist[start:end] = d.min(1)
        start = end
    return dist, arg


def leave_one_out(counts: np.ndarray, weights: np.ndarray, outside: np.ndarray | None = None,
                  transform: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """Each row's distance to the nearest *other* row (0 where it occurs twice), and the distinct rows.

    Identical sessions are compared once: the distance is computed over the
    distinct rows and spread back to every row. ``outside`` (a mask of rows)
    leaves rows out of the profiles: their distance is to the nearest profile
    of the others, and they are nobody's nearest. Distances are between the
    counts as ``transform`` makes them (:func:`transformed`); the rows returned
    are counts as given.
    """
    keep = np.ones(len(counts), bool) if outside is None else ~np.asarray(outside, bool)
    if keep.sum() < 2:  # too few left to leave any out
        keep = np.ones(len(counts), bool)
    unique, inverse, multiplicity = np.unique(counts[keep], axis=0, return_inverse=True, return_counts=True)
    if len(unique) < 2:
        return np.zeros(len(counts)), unique
    compared = transformed(unique, transform)
    loo, _ = nearest(compared, compared, weights, exclude_self=True)
    out = np.empty(len(counts))
    out[keep] = np.where(multiplicity > 1, 0.0, loo)[inverse.ravel()]
    if not keep.all():
        out[~keep] = nearest_to(counts[~keep], unique, weights, transform)[0]
    return out, unique


class Reference:
    """Reference profiles made ready once for many comparisons (the detector's, one session at a time
    under ``watch``): the counts as ``transform`` makes them and, over a large vocabulary, each one's
    weighted total. :meth:`nearest` is :func:`nearest_to` without redoing that work on every call."""

    def __init__(self, counts: np.ndarray, weights: np.ndarray, transform: str = "raw"):
        self.counts, self.weights, self.transform = counts, weights, transform
        self.compared = transformed(counts, transform)
        self.totals = (weighted_totals(self.compared, weights)
                       if self.compared.shape[1] > SPARSE_VOCABULARY else None)

    def nearest(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's distance to its nearest reference profile, and its index; rows that repeat are
        computed once."""
        uniq, inv = np.unique(counts, axis=0, return_inverse=True)
        d, a = nearest(transformed(uniq, self.transform), self.compared, self.weights, totals=self.totals)
        return d[inv.ravel()], a[inv.ravel()]


def nearest_to(counts: np.ndarray, reference: np.ndarray, weights: np.ndarray,
               transform: str = "raw") -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest` for rows that repeat: each distinct row is computed once (on the counts as
    ``transform`` makes them, the reference's too)."""
    return Reference(reference, weights, transform).nearest(counts)


def deviations(counts: np.ndarray, reference: np.ndarray, weights: np.ndarray, vocab,
               transform: str = "raw") -> list[dict]:
    """The events whose count differs from the reference profile, largest weighted difference (of the counts
    as compared, ``transform``) first."""
    diff = counts - reference
    gap = transformed(counts, transform) - transformed(reference, transform)
    order = np.argsort(-np.abs(gap) * weights, kind="stable")
    order = order[diff[order] != 0]
    return [{"event": vocab.itos[j], "count": int(c), "normal": int(r)}
            for j, c, r in zip(order.tolist(), counts[order].tolist(), reference[order].tolist())]


def deviations_text(devs: list[dict], most: int = 3) -> str:
    return "unusual event counts: " + ", ".join(f"{d['event']} x{d['count']} (normal x{d['normal']})"
                                                for d in devs[:most])


def surplus_positions(ids: np.ndarray, devs: list[dict], vocab) -> np.ndarray:
    """The occurrences of each event beyond its normal count, in order; the last position if events are
    only missing."""
    marks = []
    for d in devs:
        if d["count"] > d["normal"]:
            where = np.flatnonzero(ids == vocab.stoi[d["event"]])
            marks += where[d["normal"]:].tolist()
    return np.array(sorted(marks) or [len(ids) - 1], np.int64)


def first_surplus(ids: np.ndarray, devs: list[dict], vocab) -> int:
    """Where the first surplus event occurs in ``ids``; the last position if events are only missing."""
    return int(surplus_positions(ids, devs, vocab)[0])
