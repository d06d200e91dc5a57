"""The one interface every model keeps, neural or not.

A model learns, from normal sequences, a distribution over the next event.
What it must implement is small:

* ``_fit(train, valid)`` on encoded sequences;
* ``log_proba(ids_list, complete_list)``: for each sequence of ``n`` events
  the ``(n, V)`` (or ``(n + 1, V)`` for a finished session, the end being an
  event too) log-probabilities of every vocabulary entry at each position,
  given only the events before it;
* ``stream_start()`` / ``stream_step(ids, state)``: the same for a stream
  read in pieces, with the model's state carried from piece to piece;
* ``_tensors()`` / ``_load_tensors()`` for the weights, if any.

Everything else (scores, evaluation, predictions, detection, saving) is
written once, here and in :mod:`seqrnn.score` and :mod:`seqrnn.detect`.
The detection side follows scikit-learn and PyOD: ``fit`` learns and
returns ``self``, learned state ends in ``_``, ``decision_function`` gives
higher-is-more-abnormal scores and ``predict`` compares them with the
calibrated ``threshold_``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .. import artifacts
from ..data.formats import Sequence, as_sequences
from ..data.vocab import Vocabulary
from ..errors import InputError

REGISTRY: dict[str, type] = {}


def register(cls):
    REGISTRY[cls.kind] = cls
    return cls


class SequenceModel:
    kind = "base"

    # --- what subclasses provide ------------------------------------------------
    def _fit(self, train: list[np.ndarray], train_complete: list[bool],
             valid: list[np.ndarray], valid_complete: list[bool], **kwargs) -> None:
        raise NotImplementedError

    def log_proba(self, ids_list: list[np.ndarray], complete: list[bool]) -> list[np.ndarray]:
        raise NotImplementedError

    def stream_start(self):
        raise NotImplementedError

    def stream_step(self, ids: np.ndarray, state) -> tuple[np.ndarray, object]:
        raise NotImplementedError

    def _settings(self) -> dict:
        """JSON-able settings that rebuild an unfitted model of this kind."""
        return {}

    def _tensors(self) -> dict:
        return {}

    def _load_tensors(self, tensors: dict) -> None:
        pass

    # --- fitting -------------------------------------------------------------
    def split_validation(self, seqs: list[Sequence], fraction: float, seed: int):
        """Hold out ``fraction`` of the sessions at random, or the last part of each stream."""
        if fraction <= 0:
            return seqs, []
        if all(s.complete for s in seqs):
            if len(seqs) < 2:
                return seqs, []
            rng = np.random.default_rng(seed)
            n_valid = max(1, int(round(fraction * len(seqs))))
            perm = rng.permutation(len(seqs))
            hold = set(perm[:n_valid].tolist())
            return ([s for i, s in enumerate(seqs) if i not in hold],
                    [s for i, s in enumerate(seqs) if i in hold])
        train, valid = [], []
        for s in seqs:
            cut = int(round(len(s) * (1 - fraction)))
            train.append(s.slice(0, cut))
            if cut < len(s):
                valid.append(s.slice(cut))
        return train, valid

    def encode(self, seqs: list[Sequence]) -> tuple[list[np.ndarray], list[bool]]:
        return [self.vocab_.encode(s.tokens) for s in seqs], [s.complete for s in seqs]

    def fit(self, X, validation=None, format: str = "sessions", calibrate: bool = True,
            target_fpr: float | None = None, text_tokens: str = "chars", **kwargs):
        """Learn from normal sequences (paths, :class:`Sequence` list, or token lists).

        ``validation`` (sequences or paths) replaces the default hold-out split.
        With ``calibrate`` the detection thresholds are then set on the held-out
        normal data for ``target_fpr`` (see :mod:`seqrnn.detect`).
        """
        if target_fpr is not None and not 0.0 < target_fpr < 1.0:
            raise InputError(f"target false-positive rate must be in (0, 1), not {target_fpr}")
        seqs = as_sequences(X, format, text_tokens)
        if validation is not None:
            train, valid = seqs, as_sequences(validation, format, text_tokens)
        else:
            train, valid = self.split_validation(seqs, self._validation_fraction(), self._seed())
        if not any(len(s) for s in train):
            raise InputError("the training data holds no events")
        self.vocab_ = Vocabulary.build(train, min_count=self._min_count())
        self.format_ = format
        self.text_tokens_ = text_tokens
        t0 = time.perf_counter()
        tr_ids, tr_c = self.encode(train)
        va_ids, va_c = self.encode(valid)
        self._fit(tr_ids, tr_c, va_ids, va_c, **kwargs)
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_train_sequences_ = len(train)
        self.n_train_events_ = int(sum(len(s) for s in train))
        if calibrate:
            from ..detect import DEFAULT_TARGET_FPR
            from ..detect import calibrate as _calibrate

            _calibrate(self, train, valid, target_fpr=DEFAULT_TARGET_FPR if target_fpr is None else target_fpr)
        return self

    def _validation_fraction(self) -> float:
        return 0.1

    def _seed(self) -> int:
        return 0

    def _min_count(self) -> int:
        return 1

    def _read(self, X, format: str | None):
        """Input as sequences, read in the format (and text unit) the model was trained on by default."""
        return as_sequences(X, format or self.format_, getattr(self, "text_tokens_", "chars"))

    def _check_fitted(self):
        if not hasattr(self, "vocab_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() or seqrnn.load()")

    # --- using a fitted model --------------------------------------------------
    def score_events(self, X, format: str | None = None, topk: int = 5):
        """Per-event scores of each sequence (see :mod:`seqrnn.score`)."""
        from ..score import score_sequences

        self._check_fitted()
        return score_sequences(self, self._read(X, format), topk=topk)

    def evaluate(self, X, format: str | None = None) -> dict:
        """Loss, perplexity, accuracy and top-k accuracy (k = 1..10) of next-event prediction."""
        from ..score import evaluate

        self._check_fitted()
        return evaluate(self, self._read(X, format))

    def predict_next(self, X, k: int = 5, format: str | None = None):
        """The ``k`` most likely events at each position, next to the true ones."""
        return self.score_events(X, format, topk=k)

    def score_samples(self, X, format: str | None = None) -> np.ndarray:
        """Sequence anomaly scores, higher is more abnormal (PyOD's sign; scikit-learn's is the opposite)."""
        return self.decision_function(X, format)

    def decision_function(self, X, format: str | None = None) -> np.ndarray:
        from ..detect import Detector

        self._check_fitted()
        return Detector(self).decide(self._read(X, format)).scores

    def predict(self, X, format: str | None = None) -> np.ndarray:
        """``True`` for each anomalous sequence, by the calibrated decision rule."""
        from ..detect import Detector

        self._check_fitted()
        return Detector(self).decide(self._read(X, format)).anomalous

    # --- saving ------------------------------------------------------------------
    def save(self, model_dir: str) -> str:
        self._check_fitted()
        os.makedirs(model_dir, exist_ok=True)
        artifacts.save_tensors(os.path.join(model_dir, artifacts.WEIGHTS), self._tensors(),
                               {"kind": self.kind})
        if getattr(self, "calibration_", None) is not None:
            from ..detect import save_detector

            save_detector(self, model_dir)
        artifacts.write_json(os.path.join(model_dir, artifacts.CONFIG), self._config_dict())
        return model_dir

    def _config_dict(self) -> dict:
        return {
            "format": artifacts.FORMAT,
            "format_version": artifacts.FORMAT_VERSION,
            "kind": self.kind,
            "settings": self._settings(),
            "data_format": self.format_,
            "text_tokens": getattr(self, "text_tokens_", "chars"),
            "vocabulary": self.vocab_.to_dict(),
            "training": self._training_summary(),
            "calibration": getattr(self, "calibration_", None),
            "versions": artifacts.versions(),
        }

    def _training_summary(self) -> dict:
        return {
            "sequences": getattr(self, "n_train_sequences_", None),
            "events": getattr(self, "n_train_events_", None),
            "seconds": round(getattr(self, "fit_seconds_", 0.0), 3),
        }

    @classmethod
    def _from_config(cls, config: dict, model_dir: str):
        model = cls(**config.get("settings", {}))
        model.vocab_ = Vocabulary.from_dict(config["vocabulary"])
        model.format_ = config.get("data_format", "sessions")
        model.text_tokens_ = config.get("text_tokens", "chars")
        model.calibration_ = config.get("calibration")
        training = config.get("training") or {}
        model.n_train_sequences_ = training.get("sequences")
        model.n_train_events_ = training.get("events")
        model.fit_seconds_ = training.get("seconds", 0.0)
        model._loaded_training = training
        tensors = artifacts.load_tensors(os.path.join(model_dir, artifacts.WEIGHTS))
        model._load_tensors(tensors)
        from ..detect import load_detector

        load_detector(model, model_dir)
        return model



class BaselineModel(SequenceModel):
    """The settings every model fitted without a training loop shares (the baselines).

    Subclasses list their own settings in ``__init__`` (``train --model KIND``
    reads them from its signature), pass these three on, and add theirs to
    ``_settings``.
    """

    def __init__(self, seed: int = 0, validation: float = 0.1, min_count: int = 1):
        if not 0.0 <= validation < 1.0:
            raise InputError(f"validation fraction must be in [0, 1), not {validation}")
        self.seed, self.validation, self.min_count = seed, validation, min_count

    def _settings(self) -> dict:
        return {"seed": self.seed, "validation": self.validation, "min_count": self.min_count}

    def _validation_fraction(self) -> float:
        return self.validation

    def _seed(self) -> int:
        return self.seed

    def _min_count(self) -> int:
        return self.min_count

def load(model_dir: str) -> SequenceModel:
    """Load a model directory written by ``save`` or ``seqrnn train``; never unpickles."""
    from ..errors import ModelFileError
    from . import MODULES, model_class

    config = artifacts.read_config(model_dir)
    kind = config.get("kind")
    if kind in MODULES:
        model_class(kind)  # imports its module, which registers it
    if kind not in REGISTRY:
        raise ModelFileError(f"unknown model kind {kind!r}", model_dir)
    try:
        return REGISTRY[kind]._from_config(config, model_dir)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"model files do not fit together ({type(exc).__name__}: {exc})", model_dir) from None
