"""Decisions: which events and which sequences are anomalous, and why.

Three views of a sequence, each with a threshold calibrated on normal data
only (no labels), each saying why it fired:

unseen event
    an event never seen in training is anomalous by itself;
surprise (the model's view)
    an event is anomalous when the model gave it a probability below the
    threshold (or, with ``top_g``, when it was not among the ``g`` most likely
    events: DeepLog's rule). The threshold is the largest surprise seen on
    the held-out validation sessions, ``margin`` nats further out (ln 100:
    a few hundred held-out sessions do not show every rare normal event);
count profile (for sessions)
    the session's event counts, compared with the nearest count profile of
    a training session in a distance that weighs each event by how much its
    count varies in training (``|c - c'| / (std + 0.1)`` summed). Its
    threshold is the ``1 - target_fpr`` quantile of the leave-one-out
    distances of the training sessions. Unusual repeat counts and missing
    events are what it catches; the model's view catches wrong orders.

A model may bring sequence-level views of its own (the baselines of
:mod:`seqrnn.models.counts`): ``model.calibrate_views(target_fpr)`` gives
their thresholds at calibration, ``model.sequence_views(ids_list)`` their
distances for finished sessions and ``model.sequence_view_reason`` the
reason when one fires. A model with ``event_view = False`` has no surprise
view, and one with ``count_profile = False`` no count profile.

A sequence's score is the largest of the views' scores, each divided by its
threshold: above 1 is anomalous, and the score orders sequences for ROC
curves. The thresholds live in ``config.json`` (``calibration``) and the
training count profiles in ``detector.safetensors``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .data.formats import Sequence
from .data.vocab import EOS, UNK

DEFAULT_TARGET_FPR = 0.001
DEFAULT_MARGIN = math.log(100)  # nats beyond the most surprising held-out event
COUNT_EPS = 0.1
DETECTOR_FILE = "detector.safetensors"


# --- count profiles -----------------------------------------------------------------
def count_matrix(ids_list: list[np.ndarray], vocab_size: int) -> np.ndarray:
    out = np.zeros((len(ids_list), vocab_size), dtype=np.float32)
    for i, ids in enumerate(ids_list):
        np.add.at(out[i], ids, 1.0)
    out[:, UNK] = 0.0  # unseen events are judged by their own rule
    return out


def nearest(profiles: np.ndarray, reference: np.ndarray, weights: np.ndarray,
            exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Weighted L1 distance of each profile to its nearest reference profile, and its index."""
    dist = np.empty(len(profiles), dtype=np.float64)
    arg = np.empty(len(profiles), dtype=np.int64)
    step = max(1, (1 << 24) // max(1, reference.size))
    for start in range(0, len(profiles), step):
        block = profiles[start:start + step]
        d = (np.abs(block[:, None, :] - reference[None, :, :]) * weights).sum(-1)
        if exclude_self:
            d[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        arg[start:start + step] = d.argmin(1)
        dist[start:start + step] = d.min(1)
    return dist, arg


def calibrate(model, train: list[Sequence], valid: list[Sequence], target_fpr: float = DEFAULT_TARGET_FPR,
              margin: float = DEFAULT_MARGIN) -> dict:
    """Set ``model.calibration_`` (thresholds) and ``model.count_profiles_`` from normal data."""
    from .errors import InputError
    from .score import score_sequences

    if not 0.0 < target_fpr < 1.0:
        raise InputError(f"target false-positive rate must be in (0, 1), not {target_fpr}")
    held_out = valid or train
    scores = score_sequences(model, held_out, topk=1)
    max_nll = [float(s.nll[~s.unknown].max()) if (~s.unknown).any() else 0.0 for s in scores]
    most = max(max_nll, default=None)
    calib = {
        "target_fpr": target_fpr,
        "margin": margin,
        "nll_threshold": (most + margin if most is not None else 20.0) if getattr(model, "event_view", True) else None,
        "held_out_sequences": len(held_out),
        "held_out_max_nll": most,
        "count": None,
    }
    if hasattr(model, "calibrate_views"):
        calib["views"] = model.calibrate_views(target_fpr)
    sessions = [s for s in train if s.complete]
    if len(sessions) >= 2 and len(sessions) == len(train) and getattr(model, "count_profile", True):
        counts = count_matrix(model.encode(sessions)[0], len(model.vocab_))
        unique, inverse, multiplicity = np.unique(counts, axis=0, return_inverse=True, return_counts=True)
        weights = (1.0 / (counts.std(0) + COUNT_EPS)).astype(np.float32)
        loo, _ = nearest(unique, unique, weights, exclude_self=True)
        loo = np.where(multiplicity > 1, 0.0, loo)[inverse.ravel()]
        threshold = float(np.quantile(loo, 1.0 - target_fpr))
        calib["count"] = {"threshold": max(threshold, 1e-6), "eps": COUNT_EPS, "profiles": int(len(unique)),
                          "leave_one_out_max": float(loo.max())}
        model.count_profiles_ = unique.astype(np.float32)
        model.count_weights_ = weights
    else:
        model.count_profiles_ = None
        model.count_weights_ = None
    model.calibration_ = calib
    return calib


def save_detector(model, model_dir: str) -> None:
    from .artifacts import save_tensors

    if getattr(model, "count_profiles_", None) is not None:
        save_tensors(os.path.join(model_dir, DETECTOR_FILE),
                     {"count_profiles": model.count_profiles_, "count_weights": model.count_weights_})


def load_detector(model, model_dir: str) -> None:
    from .artifacts import load_tensors

    path = os.path.join(model_dir, DETECTOR_FILE)
    calib = getattr(model, "calibration_", None) or {}
    if calib.get("count") and os.path.isfile(path):
        t = load_tensors(path)
        model.count_profiles_, model.count_weights_ = t["count_profiles"], t["count_weights"]
    else:
        model.count_profiles_ = model.count_weights_ = None


# --- decisions ---------------------------------------------------------------------------
@dataclass
class Finding:
    """The decision about one sequence, with its evidence."""

    scores: object  # EventScores
    anomalous: bool
    score: float
    event_anomalous: np.ndarray
    position: int | None = None  # first offending position (len(seq) is the end)
    reason: str = ""
    views: dict = field(default_factory=dict)
    count_deviations: list = field(default_factory=list)


@dataclass
class Decisions:
    findings: list[Finding]

    @property
    def scores(self) -> np.ndarray:
        return np.array([f.score for f in self.findings])

    @property
    def anomalous(self) -> np.ndarray:
        return np.array([f.anomalous for f in self.findings], dtype=bool)


class Detector:
    """Apply a fitted model's calibrated decision rule (or overrides) to sequences."""

    def __init__(self, model, top_g: int | None = None, threshold: float | None = None,
                 use_counts: bool = True, topk: int = 5):
        self.model = model
        from .errors import InputError

        if threshold is not None and not 0.0 < threshold < 1.0:
            raise InputError(f"--threshold is a probability in (0, 1), not {threshold}")
        if top_g is not None and top_g < 1:
            raise InputError(f"--top-g must be at least 1, not {top_g}")
        calib = getattr(model, "calibration_", None) or {}
        self.top_g = top_g
        self.nll_threshold = -math.log(threshold) if threshold is not None else calib.get("nll_threshold", 20.0)
        count = calib.get("count") if use_counts else None
        self.count_threshold = count["threshold"] if count else None
        self.view_thresholds = calib.get("views") or {}  # the model's own sequence-level views
        self.topk = topk

    def decide(self, seqs: list[Sequence], scores=None) -> Decisions:
        from .score import score_sequences

        if scores is None:
            scores = score_sequences(self.model, seqs, topk=self.topk)
        count_dist = count_near = None
        profiles = getattr(self.model, "count_profiles_", None)
        # Count profiles describe whole sessions: an unfinished sequence has none to compare.
        sessions = [i for i, sc in enumerate(scores) if sc.sequence.complete]
        if self.count_threshold is not None and profiles is not None and sessions:
            counts = count_matrix([scores[i].ids[scores[i].ids != EOS] for i in sessions], len(self.model.vocab_))
            uniq, inv = np.unique(counts, axis=0, return_inverse=True)
            d, a = nearest(uniq, profiles, self.model.count_weights_)
            count_dist, count_near = d[inv.ravel()], a[inv.ravel()]
        extra = {}
        if self.view_thresholds and sessions:
            extra = self.model.sequence_views([scores[i].ids[scores[i].ids != EOS] for i in sessions])
        row = {i: r for r, i in enumerate(sessions)}
        findings = []
        for i, sc in enumerate(scores):
            r = row.get(i) if count_dist is not None else None
            f = self._one(sc, None if r is None else (count_dist[r], counts[r], profiles[count_near[r]]))
            if i in row and extra:
                self._add_views(f, {name: float(v[row[i]]) for name, v in extra.items()})
            findings.append(f)
        return Decisions(findings)

    def _add_views(self, f: Finding, values: dict) -> None:
        """Combine the model's own sequence-level views into a finding, like the count profile."""
        for name, value in values.items():
            threshold = self.view_thresholds[name]
            f.views[name + "_distance"] = value
            f.views[name] = value / threshold
            f.score = max(f.score, f.views[name])
            if value > threshold and not f.anomalous:
                f.anomalous = True
                f.position, f.reason, f.count_deviations = self.model.sequence_view_reason(name, f.scores)

    def event_flags(self, sc) -> np.ndarray:
        if self.top_g is not None:
            surprising = sc.rank > self.top_g
        elif self.nll_threshold is None:  # a model without a surprise view
            surprising = np.zeros(len(sc), bool)
        else:
            surprising = sc.nll > self.nll_threshold
        return surprising | sc.unknown

    def event_reason(self, sc, position: int) -> str:
        """Why the event at ``position`` (flagged by :meth:`event_flags`) is anomalous."""
        if sc.unknown[position]:
            return "unseen event: never seen in training"
        if sc.ids[position] == EOS:
            return f"ended early: p(end)={sc.prob[position]:.2g}"
        if self.top_g is not None:
            return f"unexpected event: rank {int(sc.rank[position])}, not in the top {self.top_g}"
        return f"unlikely event: p={sc.prob[position]:.2g} < {math.exp(-self.nll_threshold):.2g}"

    def _one(self, sc, count) -> Finding:
        flags = self.event_flags(sc)
        known = ~sc.unknown
        max_nll = float(sc.nll[known].max()) if known.any() else 0.0
        views = {"max_nll": max_nll,
                 "surprise": max_nll / self.nll_threshold if self.nll_threshold else 0.0}
        if self.top_g is not None:
            views["surprise"] = float(sc.rank[known].max() / (self.top_g + 0.5)) if known.any() else 0.0
        score = views["surprise"]
        deviations = []
        count_fired = False
        if count is not None:
            dist, c, ref = count
            views["count_distance"] = float(dist)
            views["count"] = float(dist / self.count_threshold)
            score = max(score, views["count"])
            count_fired = dist > self.count_threshold
            if count_fired:
                deviations = _count_deviations(c, ref, self.model.count_weights_, self.model.vocab_)
        if sc.unknown.any():
            score = max(score, 1.0 + float(sc.unknown.sum()))
        anomalous = bool(flags.any() or count_fired)
        position, reason = None, ""
        if flags.any():
            position = int(np.flatnonzero(flags)[0])
            reason = self.event_reason(sc, position)
        elif count_fired:
            position = _count_position(sc, deviations, self.model.vocab_)
            reason = "unusual event counts: " + ", ".join(
                f"{d['event']} x{d['count']} (normal x{d['normal']})" for d in deviations[:3])
        return Finding(sc, anomalous, float(score), flags, position, reason, views, deviations)


def _count_deviations(c, ref, weights, vocab) -> list[dict]:
    diff = c - ref
    order = np.argsort(-np.abs(diff) * weights, kind="stable")
    return [{"event": vocab.itos[j], "count": int(c[j]), "normal": int(ref[j])}
            for j in order if diff[j] != 0]


def _count_position(sc, deviations, vocab) -> int:
    """Where the first surplus event occurs; the end if events are missing."""
    best = len(sc.ids) - 1
    for d in deviations:
        if d["count"] > d["normal"]:
            where = np.flatnonzero(sc.ids == vocab.stoi[d["event"]])
            if len(where) > d["normal"]:
                best = min(best, int(where[d["normal"]]))
    return best
