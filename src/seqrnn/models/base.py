"""The one interface every next-event model keeps, neural or not, and ``load``.

A model learns, from normal sequences, a distribution over the next event.
What a subclass must implement is small:

* ``__init__`` stores its settings (an unknown keyword is a ``TypeError``),
  ``_settings()`` gives them back as JSON;
* ``_fit(train, train_complete, valid, valid_complete)`` on encoded sequences;
* ``log_proba(ids_list, complete_list)``: for each sequence of ``n`` events
  the ``(n, V)`` (or ``(n + 1, V)`` for a finished session, the end being an
  event too) log-probabilities of every vocabulary entry at each position,
  given only the events before it;
* ``stream_start()`` / ``stream_step(ids, state)``: the same for a stream
  read in pieces, with the model's state carried from piece to piece;
* ``_tensors()`` / ``_load_tensors()`` for the weights, if any.

The optional parts are declared here with their defaults: ``event_view``,
``count_profile``, ``sequence_views``, ``sequence_view_reason``,
``view_floor``, ``views``, ``stream_end``, ``n_parameters`` and ``describe``.

Everything else (scores, evaluation, predictions, saving) is written once,
here and in :mod:`seqrnn.score`. Models score; they know nothing of
decisions: thresholds, calibration and their files belong to
:class:`seqrnn.detect.Detector`.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .. import artifacts
from ..config import LEGACY_SETTINGS
from ..data.formats import Sequence, as_sequences, split_validation
from ..data.vocab import EOS, UNK, Vocabulary
from ..errors import InputError
from ..progress import human

REGISTRY: dict[str, type] = {}


def register(cls):
    REGISTRY[cls.kind] = cls
    return cls


class SavedModel:
    """Saving a model directory, the same for every kind (next-event models and the classifier): the
    files of ``_save_files`` under the directory's write lock, then the finished directory recorded
    (:mod:`seqrnn.modeldir`); ``_config_head`` the fields every ``config.json`` starts with."""

    def save(self, model_dir: str) -> str:
        """Write the weights, then ``config.json`` that names them (each file atomically), under the
        directory's write lock, and record the finished directory (:mod:`seqrnn.modeldir`)."""
        from .. import modeldir

        self._check_fitted()
        ends_training = modeldir.training_now(model_dir)  # (the checkpoint and history are of these weights)
        with modeldir.saving(model_dir):
            if not ends_training:  # a model saved over another: that one's training files go
                modeldir.drop_training(model_dir, history=modeldir.saved_kind(model_dir) != self.kind)
            self._save_files(model_dir)
        return model_dir

    def _save_files(self, model_dir: str) -> None:
        raise NotImplementedError

    def _config_head(self) -> dict:
        return {
            "format": artifacts.FORMAT,
            "format_version": artifacts.FORMAT_VERSION,
            "kind": self.kind,
            "settings": self._settings(),
            "data_format": self.format_,
            "text_tokens": self.text_tokens_,
            "vocabulary": self.vocab_.to_dict(),
        }


class SequenceModel(SavedModel):
    kind = "base"

    # --- optional parts, with their defaults ------------------------------------------
    #: The model's next-event probabilities are a view of the Detector (surprise).
    event_view = True
    #: The Detector's count-profile view applies to this model's sessions.
    count_profile = True
    #: Distances of the model's own sequence views below this are no evidence (their threshold's floor).
    view_floor = 0.0
    #: The names of the model's own sequence views (see :meth:`sequence_views`).
    views: tuple[str, ...] = ()
    #: ``stream_step`` scores a sequence piece by piece (a long one is scored so, its memory bounded).
    streams = True

    def sequence_views(self, ids_list: list[np.ndarray], leave_one_out: bool = False) -> dict[str, np.ndarray]:
        """The model's own sequence-level views: name -> distance of each finished session (events
        without ``<eos>``) to what training showed; with ``leave_one_out`` the sessions are the
        training sessions, each compared with the others. Default: none."""
        return {}

    def sequence_view_reason(self, name: str, scores) -> tuple[int, str, list]:
        """Where and why view ``name`` fired on a session: position, reason, count deviations."""
        raise NotImplementedError(f"{type(self).__name__} has no sequence view {name!r}")

    def stream_end(self, state) -> np.ndarray:
        """The distribution after the last event read (where ``<eos>`` is scored)."""
        lp, _ = self.stream_step(np.array([EOS]), state)
        return lp

    def n_parameters(self) -> int | None:
        """Trained parameters (weights) of a neural model; ``None`` for the others."""
        return None

    def describe(self) -> list[str]:
        """Lines that describe the fitted model to a person (``seqrnn info``)."""
        lines = [f"model      {self.kind}: " + ", ".join(f"{k} {v}" for k, v in self._settings().items())]
        lines += self._describe_data()
        t = self.training_summary()
        apart = " (validation apart)" if self._settings().get("validation_split") else ""
        lines.append(f"training   {human(t.get('sequences'))} sequences, {human(t.get('events'))} events{apart}, "
                     f"{t.get('seconds')}s")
        return lines

    def _describe_data(self) -> list[str]:
        return [f"vocabulary {human(len(self.vocab_) - 4)} events (+4 reserved), format {self.format_}"]

    # --- what subclasses provide ------------------------------------------------
    def _fit(self, train: list[np.ndarray], train_complete: list[bool],
             valid: list[np.ndarray], valid_complete: list[bool]) -> None:
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

    def _validation_fraction(self) -> float:
        return 0.1

    def _seed(self) -> int:
        return 0

    def _min_count(self) -> int:
        return 1

    # --- fitting -------------------------------------------------------------
    def split(self, seqs: list[Sequence]) -> tuple[list[Sequence], list[Sequence]]:
        """The model's training and held-out parts of ``seqs`` (its validation fraction and seed)."""
        return split_validation(seqs, self._validation_fraction(), self._seed())

    def encode(self, seqs: list[Sequence]) -> tuple[list[np.ndarray], list[bool]]:
        return [self.vocab_.encode(s.tokens) for s in seqs], [s.complete for s in seqs]

    def fit(self, X, validation_data=None, *, format: str = "sessions", text_tokens: str = "chars"):
        """Learn from normal sequences (paths, :class:`Sequence` list, or token lists).

        ``validation_data`` (sequences or paths) replaces the held-out split
        of ``X``. Returns ``self``; the thresholds of detection are learned
        by :class:`seqrnn.detect.Detector`.
        """
        train, valid = self._prepare(X, validation_data, format, text_tokens)
        t0 = time.perf_counter()
        self._fit(*self.encode(train), *self.encode(valid))
        self._finish_fit(train, time.perf_counter() - t0)
        return self

    def _prepare(self, X, validation_data, format: str, text_tokens: str):
        """Read, split and build the vocabulary: the training and held-out sequences."""
        seqs = as_sequences(X, format, text_tokens)
        if validation_data is not None:
            train, valid = seqs, as_sequences(validation_data, format, text_tokens)
        else:
            train, valid = self.split(seqs)
        if not any(len(s) for s in train):
            raise InputError("the training data holds no events")
        self.vocab_ = Vocabulary.build(train, min_count=self._min_count())
        check_vocabulary(self.vocab_, train, self._min_count())
        self.format_ = format
        self.text_tokens_ = text_tokens
        self.validation_unknown_, self._validation_source = None, ""
        if validation_data is not None:  # another numbering, or text for sessions, validates on unknown events
            unknown = sum(int((self.vocab_.encode(s.tokens) == UNK).sum()) for s in valid)
            self.validation_unknown_ = {"events": int(sum(len(s) for s in valid)), "unknown": unknown}
            self._validation_source = next((s.source for s in valid if s.source), "")
        return train, valid

    def validation_note(self) -> str:
        """A line when most events of the given validation data are unknown to the vocabulary ("" if not)."""
        from ..report.summary import unknown_share_note

        counts = getattr(self, "validation_unknown_", None)
        if not counts:
            return ""
        source = getattr(self, "_validation_source", "")
        return unknown_share_note(self, counts["unknown"], counts["events"], "the validation events",
                                  f"the validation file {source}" if source else "the validation data").strip()

    def _finish_fit(self, train: list[Sequence], seconds: float) -> None:
        self.fit_seconds_ = seconds
        self.n_train_sequences_ = len(train)
        self.n_train_events_ = int(sum(len(s) for s in train))
        self.fine_tuned_sequences_ = 0

    def is_fitted(self) -> bool:
        return hasattr(self, "vocab_")

    def _check_fitted(self):
        if not self.is_fitted():
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() or seqrnn.load()")

    def read(self, X, format: str | None = None) -> list[Sequence]:
        """Input as sequences, read in the format (and text unit) the model was trained on by default."""
        self._check_fitted()
        return as_sequences(X, format or self.format_, self.text_tokens_)

    # --- using a fitted model --------------------------------------------------
    def score_events(self, X, format: str | None = None, topk: int = 5):
        """Per-event scores of each sequence (see :mod:`seqrnn.score`)."""
        from ..score import score_sequences

        return score_sequences(self, self.read(X, format), topk=topk)

    def evaluate(self, X, format: str | None = None) -> dict:
        """Loss, perplexity, accuracy and top-k accuracy (k = 1..10) of next-event prediction."""
        from ..score import evaluate

        return evaluate(self, self.read(X, format))

    def predict_next(self, X, k: int = 5, format: str | None = None):
        """The ``k`` most likely events at each position, next to the true ones."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be an integer >= 1, not {k!r}", params="k")
        return self.score_events(X, format, topk=k)

    # --- saving (save: SavedModel's) ----------------------------------------------
    def _save_files(self, model_dir: str) -> None:
        """The model's files alone (a training's best epoch so far: not yet a finished directory)."""
        os.makedirs(model_dir, exist_ok=True)
        artifacts.save_tensors(os.path.join(model_dir, artifacts.WEIGHTS), self._tensors(), {"kind": self.kind})
        artifacts.write_json(os.path.join(model_dir, artifacts.CONFIG), self._config_dict())

    def _config_dict(self) -> dict:
        return {**self._config_head(), "training": self.training_summary(), "versions": artifacts.versions()}

    def training_summary(self) -> dict:
        """What training saw and how long it took (``config.json``'s ``training``)."""
        return {
            "sequences": getattr(self, "n_train_sequences_", None),
            "events": getattr(self, "n_train_events_", None),
            "seconds": round(getattr(self, "fit_seconds_", 0.0), 3),
            # sequences given to seqrnn calibrate --fine-tune since: the model has trained on them too
            "fine_tuned_sequences": getattr(self, "fine_tuned_sequences_", 0),
        }

    @classmethod
    def _from_config(cls, config: dict, model_dir: str):
        settings = {LEGACY_SETTINGS.get(k, k): v for k, v in (config.get("settings") or {}).items()}
        model = cls(**settings)
        model.vocab_ = Vocabulary.from_dict(config["vocabulary"])
        model.format_ = config.get("data_format", "sessions")
        model.text_tokens_ = config.get("text_tokens", "chars")
        training = config.get("training") or {}
        model.n_train_sequences_ = training.get("sequences")
        model.n_train_events_ = training.get("events")
        model.fit_seconds_ = training.get("seconds", 0.0)
        tuned = training.get("fine_tuned_sequences", 0)
        model.fine_tuned_sequences_ = tuned if type(tuned) is int and tuned > 0 else 0
        model._loaded_training = training
        model._load_tensors(load_checked_tensors(config, model_dir))
        return model


class BaselineModel(SequenceModel):
    """The settings every model fitted without a training loop shares (the baselines).

    Subclasses list their own settings in ``__init__`` (``train --model KIND``
    reads them from its signature), pass these three on, and add theirs to
    ``_settings``.
    """

    def __init__(self, seed: int = 0, validation_split: float = 0.1, min_count: int = 1):
        from ..limits import check_seed

        check_seed(seed)
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise InputError(f"min_count must be an integer >= 1, not {min_count!r}", params="min_count")
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise InputError(f"validation_split (a fraction) must be in [0, 1), not {validation_split}",
                             params="validation_split")
        self.seed, self.validation_split, self.min_count = seed, validation_split, min_count

    def _settings(self) -> dict:
        return {"seed": self.seed, "validation_split": self.validation_split, "min_count": self.min_count}

    def _validation_fraction(self) -> float:
        return self.validation_split

    def _seed(self) -> int:
        return self.seed

    def _min_count(self) -> int:
        return self.min_count


def check_vocabulary(vocab: Vocabulary, train: list[Sequence], min_count: int) -> None:
    """Refuse a ``min_count`` that leaves no event in the vocabulary (nothing to learn)."""
    from collections import Counter

    from ..data.vocab import SPECIALS

    if len(vocab) > len(SPECIALS):
        return

    most = max(Counter(t for s in train for t in s.tokens).values(), default=0)
    if most == 0:
        raise InputError("the training data holds no events (every sequence is empty): nothing to learn")
    raise InputError(f"min_count {min_count} leaves no event in the vocabulary (the most frequent event occurs "
                     f"{most} times in the training data)", params="min_count")


def load_checked_tensors(config: dict, model_dir: str) -> dict:
    """The weights of a model directory (mapped, not read whole), with their values checked
    (:func:`seqrnn.schema.check_values`)."""
    from ..schema import RESERVED, check_values

    path = os.path.join(model_dir, artifacts.WEIGHTS)
    tensors = artifacts.load_tensors(path)
    check_values(config["kind"], tensors, len(config["vocabulary"]["tokens"]) + len(RESERVED), path)
    return tensors


def load(model_dir: str):
    """Load a model directory written by ``save`` or ``seqrnn train`` (any kind, the classifier
    included); never unpickles. A directory whose training or save did not finish is refused
    (:mod:`seqrnn.modeldir`)."""
    from .. import modeldir

    return modeldir.read(model_dir, lambda: _load(model_dir))


def _load(model_dir: str):
    from ..errors import ModelFileError
    from ..schema import check_model
    from . import MODULES, model_class

    config = artifacts.read_config(model_dir, (artifacts.FORMAT, "seqrnn-classifier"))  # the latter: before 0.2
    kind = config.get("kind")
    kind = kind if isinstance(kind, str) else repr(kind)[:60]
    if kind in MODULES:
        model_class(kind)  # imports its module, which registers it
    if kind not in REGISTRY:
        raise ModelFileError(f"kind: unknown model kind {kind!r:.60}", os.path.join(model_dir, artifacts.CONFIG))
    check_model(config, model_dir, os.path.join(model_dir, artifacts.WEIGHTS))  # before anything is built
    try:
        return REGISTRY[kind]._from_config(config, model_dir)
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError("not enough memory to load the model", model_dir) from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"model files do not fit together ({type(exc).__name__}: {exc})", model_dir) from None


def load_next_event_model(model_dir: str) -> SequenceModel:
    """:func:`load` for the commands that need a next-event model (detect, evaluate, predict, generate)."""
    from ..errors import ModelFileError

    model = load(model_dir)
    if not isinstance(model, SequenceModel):
        raise ModelFileError(f"a {model.kind} model, which does not predict the next event: use seqrnn "
                             f"{'classify predict or evaluate' if model.kind == 'classifier' else 'info'}", model_dir)
    return model
