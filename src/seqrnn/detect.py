"""Decisions: which events and which sequences are anomalous, and why.

A :class:`Detector` holds a fitted next-event model and the decision rule
learned for it, on normal data only (no labels). Models score; the Detector
decides, and owns everything it learned (scikit-learn style: settings in
``__init__``, ``fit`` on normal data, learned state in attributes ending in
``_``, its own files ``detector.json`` and ``detector.safetensors`` beside
the model's).

Three views of a sequence, each with a threshold learned by ``fit``, each
saying why it fired:

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
:mod:`seqrnn.models.counts`, see ``SequenceModel.sequence_views``); their
thresholds are learned the same way as the count profile's, from the
training sessions' leave-one-out distances. A model whose ``event_view`` is
off has no surprise view, and one whose ``count_profile`` is off no count
profile.

A sequence's score is the largest of the views' scores, each divided by its
threshold: above 1 is anomalous, and the score orders sequences for ROC
curves.

>>> detector = Detector(RNNModel(preset="deeplog"), target_fpr=0.001).fit("train.txt")  # doctest: +SKIP
>>> detector.predict("test.txt")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import artifacts
from .data.formats import Sequence, as_sequences
from .data.vocab import EOS
from .errors import InputError, ModelFileError
from .profiles import count_matrix, deviations, deviations_text, first_surplus, leave_one_out, nearest_to

DEFAULT_TARGET_FPR = 0.001
DEFAULT_MARGIN = math.log(100)  # nats beyond the most surprising held-out event
UNCALIBRATED_NLL = 20.0  # the surprise threshold when no held-out event was scored (nats)
COUNT_EPS = 0.1
DETECTOR_JSON = "detector.json"
DETECTOR_TENSORS = "detector.safetensors"
FORMAT = "seqrnn-detector"
FORMAT_VERSION = 1


def _check_model(model) -> None:
    from .models.base import SequenceModel

    if isinstance(model, (str, os.PathLike)):
        raise InputError(f"a Detector takes a model, not the path {str(model)!r}: Detector.load(model_dir) reads a "
                         "model directory with its detector")
    if not isinstance(model, SequenceModel):
        raise InputError(f"a {getattr(model, 'kind', type(model).__name__)} model does not predict the next "
                         "event, so a Detector cannot judge with it (for a classifier: use seqrnn classify "
                         "predict or evaluate)")


def _number(value) -> float:
    """A number read from a file (not a string or a bool), finite, or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, not {value!r}")
    return float(value)


def _positive(value) -> float:
    """A threshold read from a file: a finite number above zero, or a ValueError."""
    value = _number(value)
    if not value > 0:
        raise ValueError(f"a threshold must be above 0, not {value}")
    return value


def _profiles(tensors: dict, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The count profiles and weights of ``detector.safetensors``, checked: floating point, finite,
    non-negative, at least one profile, one column per vocabulary entry."""
    profiles, weights = tensors["count_profiles"], tensors["count_weights"]
    for name, a in (("count_profiles", profiles), ("count_weights", weights)):
        if a.dtype.kind != "f" or not np.isfinite(a).all() or (a < 0).any():
            raise ValueError(f"{name} must hold finite numbers >= 0 (floating point)")
    if profiles.ndim != 2 or len(profiles) == 0 or profiles.shape[1] != vocab_size or weights.shape != (vocab_size,):
        raise ValueError(f"count profiles {profiles.shape} and weights {weights.shape} do not fit a vocabulary "
                         f"of {vocab_size}")
    return profiles.astype(np.float32), weights.astype(np.float32)


def model_fingerprint(model) -> str:
    """A hash of what a model computes from: its kind, vocabulary and weights (as saved)."""
    import hashlib

    h = hashlib.sha256(model.kind.encode())
    h.update("\x00".join(model.vocab_.itos).encode("utf-8"))
    for name, value in sorted(artifacts.as_arrays(model._tensors()).items()):
        h.update(f"\x00{name}:{value.dtype.str}:{value.shape}".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:32]


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
    """Decide which sequences a fitted next-event model finds anomalous, and why.

    Settings: ``model`` (fitted by :meth:`fit` if it is not yet),
    ``target_fpr`` (the false-positive rate the count thresholds are set
    for), ``margin`` (nats added to the largest held-out surprise), and the
    decision-time options ``use_counts`` (the count-profile view),
    ``top_g`` (DeepLog's rule instead of the probability threshold),
    ``threshold`` (a probability replacing the learned one) and ``topk``
    (expected events listed per position).

    Learned by :meth:`fit`: ``nll_threshold_``, ``held_out_max_nll_``,
    ``n_held_out_``, ``count_threshold_``, ``count_profiles_``,
    ``count_weights_``, ``count_loo_max_`` and ``view_thresholds_``.
    """

    def __init__(self, model, *, target_fpr: float = DEFAULT_TARGET_FPR, margin: float = DEFAULT_MARGIN,
                 use_counts: bool = True, top_g: int | None = None, threshold: float | None = None, topk: int = 5):
        _check_model(model)
        if not 0.0 < target_fpr < 1.0:
            raise InputError(f"target_fpr (a false-positive rate) must be in (0, 1), not {target_fpr}",
                             params="target_fpr")
        if not (margin >= 0 and math.isfinite(margin)):
            raise InputError(f"margin must be a finite number >= 0 nats, not {margin}", params="margin")
        if not (isinstance(topk, int) and topk >= 1):
            raise InputError(f"topk must be an integer >= 1, not {topk!r}", params="topk")
        self.model, self.target_fpr, self.margin = model, target_fpr, margin
        self.use_counts, self.topk = use_counts, topk
        self._set_overrides(top_g, threshold)

    def _set_overrides(self, top_g, threshold) -> None:
        if threshold is not None and not 0.0 < threshold < 1.0:
            raise InputError(f"threshold is a probability in (0, 1), not {threshold}", params="threshold")
        if top_g is not None and not (isinstance(top_g, int) and top_g >= 1):
            raise InputError(f"top_g must be at least 1, not {top_g}", params="top_g")
        self.top_g, self.threshold = top_g, threshold

    def with_options(self, *, use_counts: bool | None = None, top_g: int | None = None,
                     threshold: float | None = None, topk: int | None = None) -> "Detector":
        """A copy that shares what was learned, with other decision-time options."""
        other = copy.copy(self)
        other._set_overrides(top_g if top_g is not None else self.top_g,
                             threshold if threshold is not None else self.threshold)
        if use_counts is not None:
            other.use_counts = use_counts
        if topk is not None:
            other.topk = topk
        return other

    # --- learning the thresholds ---------------------------------------------------------
    def fit(self, X, validation_data=None, *, format: str | None = None, text_tokens: str | None = None):
        """Learn the thresholds from normal sequences ``X`` (paths, :class:`Sequence` list or token lists).

        The surprise threshold comes from the sequences the model held out
        (``validation_data``, or the same split of ``X`` the model makes when
        it trains); the count thresholds and profiles from the rest. A model
        that is not fitted yet is first fitted on the same split.
        """
        model = self.model
        if not model.is_fitted():
            seqs = as_sequences(X, format or "sessions", text_tokens or "chars")
            valid = as_sequences(validation_data, format or "sessions", text_tokens or "chars") \
                if validation_data is not None else None
            model.fit(seqs, validation_data=valid, format=format or "sessions", text_tokens=text_tokens or "chars")
        else:
            seqs = model.read(X, format)
            valid = model.read(validation_data, format) if validation_data is not None else None
        if valid is None:
            train, valid = model.split(seqs)
        else:
            train = seqs
        self._calibrate(train, valid)
        return self

    def _calibrate(self, train: list[Sequence], held_out: list[Sequence]) -> None:
        from .score import score_sequences

        model = self.model
        held_out = held_out or train
        self.n_held_out_ = len(held_out)
        self.held_out_max_nll_ = self.nll_threshold_ = None
        if model.event_view:
            scores = score_sequences(model, held_out, topk=1)
            max_nll = [float(s.nll[~s.unknown].max()) for s in scores if (~s.unknown).any()]
            self.held_out_max_nll_ = max(max_nll, default=None)
            self.nll_threshold_ = (self.held_out_max_nll_ + self.margin if self.held_out_max_nll_ is not None
                                   else UNCALIBRATED_NLL)
        self.count_threshold_ = self.count_profiles_ = self.count_weights_ = self.count_loo_max_ = None
        self.view_thresholds_ = {}
        # Count views describe finished sessions: a stream has none.
        if not (len(train) >= 2 and all(s.complete for s in train)):
            return
        ids = model.encode(train)[0]
        for name, loo in model.sequence_views(ids, leave_one_out=True).items():
            self.view_thresholds_[name] = max(self._quantile(loo), model.view_floor)
        if model.count_profile:
            counts = count_matrix(ids, len(model.vocab_))
            weights = (1.0 / (counts.std(0) + COUNT_EPS)).astype(np.float32)
            loo, unique = leave_one_out(counts, weights)
            self.count_threshold_ = max(self._quantile(loo), 1e-6)
            self.count_profiles_ = unique.astype(np.float32)
            self.count_weights_ = weights
            self.count_loo_max_ = float(loo.max())

    def _quantile(self, distances: np.ndarray) -> float:
        return float(np.quantile(distances, 1.0 - self.target_fpr))

    def is_fitted(self) -> bool:
        return hasattr(self, "view_thresholds_")

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise RuntimeError("Detector is not fitted yet: call fit() or Detector.load()")

    @property
    def calibration(self) -> dict:
        """What was learned, as JSON (``detector.json``, ``seqrnn info`` and ``train --json``)."""
        self._check_fitted()
        count = None
        if self.count_threshold_ is not None:
            count = {"threshold": self.count_threshold_, "eps": COUNT_EPS, "profiles": int(len(self.count_profiles_)),
                     "leave_one_out_max": self.count_loo_max_}
        out = {"target_fpr": self.target_fpr, "promised_fpr": self.promised_fpr,
               "calibration_sequences": self.n_held_out_, "margin": self.margin,
               "nll_threshold": self.nll_threshold_, "held_out_sequences": self.n_held_out_,
               "held_out_max_nll": self.held_out_max_nll_, "count": count}
        if self.view_thresholds_:
            out["views"] = dict(self.view_thresholds_)
        return out

    @property
    def promised_fpr(self) -> float:
        """The false-positive rate the calibration can stand behind, not less than its data allows.

        The surprise threshold lies beyond the largest surprise of ``n`` held-out normal sequences: a new
        normal sequence exceeds it with probability at most ``1 / (n + 1)`` (no fewer can be promised with
        ``n`` of them). The count and sequence views are set at ``target_fpr`` of the training sessions.
        The union of the views promises at most the sum; unseen events are not counted in it (a normal
        sequence with an event never seen in training is flagged)."""
        self._check_fitted()
        rate = 0.0
        if self.nll_threshold_ is not None and isinstance(self.n_held_out_, int) and self.n_held_out_ > 0:
            rate += 1.0 / (self.n_held_out_ + 1)
        if self.count_threshold_ is not None or self.view_thresholds_:
            rate += self.target_fpr
        return min(max(rate, self.target_fpr), 1.0)

    def describe(self) -> str:
        """One line for a person (``seqrnn info``): the views and their thresholds."""
        views = ["unseen event"]
        if self.nll_threshold_ is not None:
            views.append(f"event probability threshold {math.exp(-self.nll_threshold_):.3g} "
                         f"(-log p > {self.nll_threshold_:.3f})")
        if self.count_threshold_ is not None:
            views.append(f"count-profile threshold {self.count_threshold_:.3f}")
        views += [f"{k} distance threshold {v:.3f}" for k, v in self.view_thresholds_.items()]
        return (f"detection  {', '.join(views)}, target FPR {self.target_fpr}, promised FPR "
                f"{self.promised_fpr:.3g} (held-out sequences: {self.n_held_out_})")

    # --- files ---------------------------------------------------------------------------------
    def save(self, model_dir: str) -> str:
        """Write ``detector.safetensors`` (the count profiles), then ``detector.json`` that names them and
        the fingerprint of the model they were learned for."""
        from . import modeldir

        cal = self.calibration
        with modeldir.saving(model_dir):  # the directory's write lock; status.json says when it is complete
            if self.count_profiles_ is not None:
                artifacts.save_tensors(os.path.join(model_dir, DETECTOR_TENSORS),
                                       {"count_profiles": self.count_profiles_, "count_weights": self.count_weights_})
            artifacts.write_json(os.path.join(model_dir, DETECTOR_JSON),
                                 {"format": FORMAT, "format_version": FORMAT_VERSION,
                                  "model_fingerprint": model_fingerprint(self.model), **cal})
        return model_dir

    @classmethod
    def load(cls, model_dir: str, model=None, *, use_counts: bool = True, top_g: int | None = None,
             threshold: float | None = None, topk: int = 5) -> "Detector":
        """The detector saved in ``model_dir`` (with its model, loaded from there unless given).

        The files are refused unless they were written for this very model (its vocabulary and
        weights: a fingerprint), hold finite thresholds and profiles of the model's vocabulary.
        """
        if model is None:
            from .models.base import load_next_event_model as load

            model = load(model_dir)
        _check_model(model)
        path = os.path.join(model_dir, DETECTOR_JSON)
        if os.path.isfile(path):
            cal = artifacts.read_json(path, ModelFileError, "detector file")
            if not isinstance(cal, dict) or cal.get("format") != FORMAT:
                raise ModelFileError(f"not a detector file (no \"format\": \"{FORMAT}\")", path)
            version = cal.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
                raise ModelFileError(f"detector file of format version {version!r}, which this seqrnn does not "
                                     "read (upgrade seqrnn)", path)
            if cal.get("model_fingerprint") != model_fingerprint(model):
                raise ModelFileError(
                    "the detector was learned for another model (its fingerprint differs): the model was "
                    "trained again after it, and that training did not finish; train again", path)
        elif os.path.exists(path):
            raise ModelFileError("not a regular file", path)
        else:  # written before the detector had files of its own: the calibration lived in config.json
            cal = (artifacts.read_config(model_dir).get("calibration")) or None
            if cal is None:
                raise ModelFileError(
                    f"{DETECTOR_JSON} is missing: the model has no detector. seqrnn train writes one when "
                    "training finishes (so a training that was stopped leaves none: train again or resume it); "
                    "in Python, Detector(model).fit(X).save(dir)", model_dir)
        try:
            target_fpr, margin = _number(cal["target_fpr"]), _number(cal["margin"])
            if not (0.0 < target_fpr < 1.0 and margin >= 0):
                raise ValueError(f"target_fpr {target_fpr} or margin {margin} out of range")
            nll_threshold = None if cal["nll_threshold"] is None else _positive(cal["nll_threshold"])
            if (nll_threshold is None) == model.event_view:
                raise ValueError("a surprise threshold where the model has no surprise view, or none where it has")
            views = cal.get("views") or {}
            if not isinstance(views, dict) or (views and set(views) != set(model.views)):
                raise ValueError(f"views {sorted(views)} are not the model's {sorted(model.views)}")
            views = {str(k): _positive(v) for k, v in views.items()}
            count = cal.get("count")
            if count is not None and not isinstance(count, dict):
                raise ValueError(f"count must be an object or null, not {count!r:.60}")
            profiles = weights = None
            if count:
                if not model.count_profile:
                    raise ValueError("a count profile for a model without one")
                t = artifacts.load_tensors(os.path.join(model_dir, DETECTOR_TENSORS))
                profiles, weights = _profiles(t, len(model.vocab_))
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"detector files do not fit the model ({type(exc).__name__}: {exc})",
                                 model_dir) from None
        det = cls(model, target_fpr=target_fpr, margin=margin, use_counts=use_counts, top_g=top_g,
                  threshold=threshold, topk=topk)
        det.nll_threshold_, det.view_thresholds_ = nll_threshold, views
        det.held_out_max_nll_, det.n_held_out_ = cal.get("held_out_max_nll"), cal.get("held_out_sequences")
        det.count_threshold_ = det.count_profiles_ = det.count_weights_ = det.count_loo_max_ = None
        if count:
            det.count_threshold_ = _positive(count["threshold"]) if isinstance(count, dict) else None
            det.count_loo_max_ = count.get("leave_one_out_max")
            det.count_profiles_, det.count_weights_ = profiles, weights
        return det

    # --- deciding ----------------------------------------------------------------------------------
    @property
    def nll_cut(self) -> float | None:
        """The surprise threshold in force (nats): the learned one, or ``threshold``'s."""
        return -math.log(self.threshold) if self.threshold is not None else self.nll_threshold_

    def decide(self, seqs: list[Sequence], scores=None) -> Decisions:
        from .score import score_sequences

        self._check_fitted()
        model = self.model
        if scores is None:
            scores = score_sequences(model, seqs, topk=self.topk)
        # Count views describe whole sessions: an unfinished sequence has none to compare.
        sessions = [i for i, sc in enumerate(scores) if sc.sequence.complete]
        events = [scores[i].ids[scores[i].ids != EOS] for i in sessions]
        count_dist = counts = count_near = None
        if self.use_counts and self.count_threshold_ is not None and sessions:
            counts = count_matrix(events, len(model.vocab_))
            count_dist, count_near = nearest_to(counts, self.count_profiles_, self.count_weights_)
        extra = model.sequence_views(events) if self.view_thresholds_ and sessions else {}
        row = {i: r for r, i in enumerate(sessions)}
        findings = []
        for i, sc in enumerate(scores):
            r = row.get(i) if count_dist is not None else None
            f = self._one(sc, None if r is None else (count_dist[r], counts[r], self.count_profiles_[count_near[r]]))
            if i in row and extra:
                self._add_views(f, {name: float(v[row[i]]) for name, v in extra.items()})
            findings.append(f)
        return Decisions(findings)

    def decision_function(self, X, format: str | None = None) -> np.ndarray:
        """Sequence anomaly scores: above 1 is anomalous; higher is more abnormal (PyOD's sign)."""
        return self.decide(self.model.read(X, format)).scores

    def score_samples(self, X, format: str | None = None) -> np.ndarray:
        """The same as :meth:`decision_function` (PyOD's sign; scikit-learn's is the opposite)."""
        return self.decision_function(X, format)

    def predict(self, X, format: str | None = None) -> np.ndarray:
        """``True`` for each anomalous sequence."""
        return self.decide(self.model.read(X, format)).anomalous

    def _add_views(self, f: Finding, values: dict) -> None:
        """Combine the model's own sequence-level views into a finding, like the count profile."""
        for name, value in values.items():
            threshold = self.view_thresholds_[name]
            f.views[name + "_distance"] = value
            f.views[name] = value / threshold
            f.score = max(f.score, f.views[name])
            if value > threshold and not f.anomalous:
                f.anomalous = True
                f.position, f.reason, f.count_deviations = self.model.sequence_view_reason(name, f.scores)

    def event_flags(self, sc) -> np.ndarray:
        cut = self.nll_cut
        if self.top_g is not None:
            surprising = sc.rank > self.top_g
        elif cut is None:  # a model without a surprise view
            surprising = np.zeros(len(sc), bool)
        else:
            surprising = sc.nll > cut
        return surprising | sc.unknown

    def event_reason(self, sc, position: int) -> str:
        """Why the event at ``position`` (flagged by :meth:`event_flags`) is anomalous."""
        if sc.unknown[position]:
            return "unseen event: never seen in training"
        if sc.ids[position] == EOS:
            return f"ended early: p(end)={sc.prob[position]:.2g}"
        if self.top_g is not None:
            return f"unexpected event: rank {int(sc.rank[position])}, not in the top {self.top_g}"
        return f"unlikely event: p={sc.prob[position]:.2g} < {math.exp(-self.nll_cut):.2g}"

    def _one(self, sc, count) -> Finding:
        flags = self.event_flags(sc)
        known = ~sc.unknown
        max_nll = float(sc.nll[known].max()) if known.any() else 0.0
        cut = self.nll_cut
        views = {"max_nll": max_nll, "surprise": max_nll / cut if cut else 0.0}
        if self.top_g is not None:
            views["surprise"] = float(sc.rank[known].max() / (self.top_g + 0.5)) if known.any() else 0.0
        score = views["surprise"]
        devs = []
        count_fired = False
        if count is not None:
            dist, c, ref = count
            views["count_distance"] = float(dist)
            views["count"] = float(dist / self.count_threshold_)
            score = max(score, views["count"])
            count_fired = dist > self.count_threshold_
            if count_fired:
                devs = deviations(c, ref, self.count_weights_, self.model.vocab_)
        if sc.unknown.any():
            score = max(score, 1.0 + float(sc.unknown.sum()))
        anomalous = bool(flags.any() or count_fired)
        position, reason = None, ""
        if flags.any():
            position = int(np.flatnonzero(flags)[0])
            reason = self.event_reason(sc, position)
        elif count_fired:
            position = first_surplus(sc.ids, devs, self.model.vocab_)
            reason = deviations_text(devs)
        return Finding(sc, anomalous, float(score), flags, position, reason, views, devs)
