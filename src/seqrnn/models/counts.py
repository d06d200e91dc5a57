"""Sequence-level detectors: unseen events, unusual length, unusual event counts.

They judge a finished session as a whole, not event by event (Landauer et
al., FSE 2024, find such detectors as good as published deep models on
HDFS). Each keeps the one model interface so every command accepts it:

* next-event distribution (``log_proba``, for ``evaluate`` and
  ``predict``): the add-one smoothed unigram of the training events, the
  same at every position. It is *not* used to decide: these models have no
  surprise view (``event_view = False``), so only the views below and the
  Detector's unseen-event rule decide.
* views, each a distance calibrated on the training sessions (the
  ``1 - target_fpr`` quantile of the leave-one-out distances, at least
  ``view_floor``, so that anything never seen fires when training shows
  no spread), combined by :class:`seqrnn.detect.Detector` like its own:

  ``length``
      events in the session, distance to the nearest training length;
  ``count``
      the event count vector, L1 distance to the nearest training count
      vector, each event optionally weighted by its idf
      (``log((1 + n) / (1 + df)) + 1``: events found in few sessions weigh more).

Kinds: ``unseen`` (no view: the unseen-event rule alone), ``length``,
``count`` (``idf=True`` for the weighted one) and ``combined`` (all three).
"""

from __future__ import annotations

import numpy as np

from ..data.vocab import EOS, with_end
from ..errors import InputError
from ..profiles import count_matrix, deviations, deviations_text, first_surplus, idf_weights, nearest_to
from ..profiles import leave_one_out as profiles_loo
from .base import BaselineModel, register
from .markov import support_mask


class SequenceLevelModel(BaselineModel):
    kind = "sequence-level"
    views: tuple[str, ...] = ()
    event_view = False  # the unigram is no detector: no surprise view
    count_profile = False  # its own count view (if any) replaces the Detector's count profile
    view_floor = 0.5  # below one event's difference: a length or count vector never seen fires

    def __init__(self, idf: bool = False, seed: int = 0, validation_split: float = 0.1, min_count: int = 1):
        super().__init__(seed, validation_split, min_count)
        self.idf = bool(idf)

    def _settings(self) -> dict:
        return {"idf": self.idf, **super()._settings()}

    # --- fitting ------------------------------------------------------------------------
    def _fit(self, train, train_complete, valid, valid_complete):
        V = len(self.vocab_)
        y = np.concatenate([with_end(a, c) for a, c in zip(train, train_complete)])
        mask = support_mask(V)
        counts = np.bincount(y, minlength=V).astype(np.float64)
        p = np.where(mask, counts + 1.0, 0.0)
        with np.errstate(divide="ignore"):
            self.log_unigram_ = np.log(p / p.sum()).astype(np.float32)
        sessions = [a for a, c in zip(train, train_complete) if c]
        if self.views and len(sessions) < 2:
            raise InputError(f"the {self.kind} detector needs at least two finished sessions (format sessions)",
                             params="format")
        self.lengths_ = np.unique([len(a) for a in sessions]).astype(np.int64) if sessions else np.zeros(0, np.int64)
        counts = count_matrix(sessions, V) if sessions else np.zeros((0, V), np.float32)
        if self.idf and len(counts):
            self.weights_ = idf_weights(counts)
        else:
            self.weights_ = np.ones(V, np.float32)
        self.profiles_ = np.unique(counts, axis=0).astype(np.float32)

    def _tensors(self) -> dict:
        return {"log_unigram": self.log_unigram_, "lengths": self.lengths_, "profiles": self.profiles_,
                "weights": self.weights_}

    def _load_tensors(self, t: dict) -> None:
        self.log_unigram_, self.lengths_ = t["log_unigram"], t["lengths"].astype(np.int64)
        self.profiles_, self.weights_ = t["profiles"], t["weights"]

    # --- scoring ---------------------------------------------------------------------------
    def log_proba(self, ids_list, complete):
        return [np.broadcast_to(self.log_unigram_, (len(a) + bool(c), len(self.log_unigram_)))
                for a, c in zip(ids_list, complete)]

    def stream_start(self):
        return None

    def stream_step(self, ids, state):
        return np.broadcast_to(self.log_unigram_, (len(ids), len(self.log_unigram_))), state

    # --- the sequence-level views (see seqrnn.detect.Detector) ------------------------------------
    def sequence_views(self, ids_list: list[np.ndarray], leave_one_out: bool = False) -> dict[str, np.ndarray]:
        """Each view's distance for each finished session (events without ``<eos>``); with
        ``leave_one_out``, of each training session to the others."""
        out = {}
        lengths = np.array([len(a) for a in ids_list], np.int64)
        if "length" in self.views:
            out["length"] = self._length_loo(lengths) if leave_one_out else self._length_distance(lengths)
        if "count" in self.views:
            counts = count_matrix(ids_list, len(self.vocab_))
            out["count"] = (profiles_loo(counts, self.weights_)[0] if leave_one_out
                            else nearest_to(counts, self.profiles_, self.weights_)[0])
        return out

    @staticmethod
    def _length_loo(lengths) -> np.ndarray:
        lengths = np.asarray(lengths, np.int64)
        uniq, inverse, mult = np.unique(lengths, return_inverse=True, return_counts=True)
        gaps = np.diff(uniq).astype(np.float64)
        near = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
        return np.where(mult > 1, 0.0, near)[inverse.ravel()]

    def _length_distance(self, lengths: np.ndarray) -> np.ndarray:
        ref = self.lengths_
        if len(ref) == 0:
            return np.zeros(len(lengths))
        pos = np.searchsorted(ref, lengths)
        lo = ref[np.clip(pos - 1, 0, len(ref) - 1)]
        hi = ref[np.clip(pos, 0, len(ref) - 1)]
        return np.minimum(np.abs(lengths - lo), np.abs(lengths - hi)).astype(np.float64)

    def sequence_view_reason(self, name: str, sc) -> tuple[int, str, list]:
        """Where and why view ``name`` fired on the session scored in ``sc``: position, reason, deviations."""
        ids = sc.ids[sc.ids != EOS]
        if name == "length":
            near = int(self.lengths_[np.argmin(np.abs(self.lengths_ - len(ids)))])
            return len(sc.ids) - 1, f"unusual length: {len(ids)} events (nearest normal {near})", []
        counts = count_matrix([ids], len(self.vocab_))
        _, arg = nearest_to(counts, self.profiles_, self.weights_)
        dev = deviations(counts[0], self.profiles_[arg[0]], self.weights_, self.vocab_)
        return first_surplus(sc.ids, dev, self.vocab_), deviations_text(dev), dev


@register
class UnseenModel(SequenceLevelModel):
    """A session is anomalous when it holds an event never seen in training."""

    kind = "unseen"
    views = ()


@register
class LengthModel(SequenceLevelModel):
    """A session is anomalous when its length is far from every training session's."""

    kind = "length"
    views = ("length",)


@register
class CountModel(SequenceLevelModel):
    """A session is anomalous when its event count vector is far from every training session's."""

    kind = "count"
    views = ("count",)


@register
class CombinedModel(SequenceLevelModel):
    """Unseen event, length and count vector together: anomalous when any of them fires."""

    kind = "combined"
    views = ("length", "count")
