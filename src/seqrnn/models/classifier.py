"""Supervised classification of whole sequences: normal or anomalous.

When labelled anomalies exist, a bidirectional LSTM/GRU reads each sequence
(its backward pass is legitimate here: the label is of the whole sequence,
not of an event in it), attention pooling weighs its events, and a linear
layer gives the logit of "anomalous" (the Keras imdb_bidirectional_lstm
example's task; LogRobust's model for logs).

* Training: :class:`seqrnn.train.Trainer`, like every neural model (its
  optimisers, schedules, early stopping on the validation loss, best epoch,
  checkpoints, ``resume``, Ctrl-C), on each distinct (sequence, label) once,
  weighted by how often it occurs.
* Class weighting: the loss weighs anomalous sequences by
  ``n_normal / n_anomalous`` of the training split (``pos_weight``), so
  neither class dominates whatever the mix.
* Threshold: chosen to maximise F1, at a given prevalence of anomalies when
  ``prevalence`` is set (the precision the recall and false-positive rate
  would give at that share of anomalies), else plain F1; among equally good
  thresholds, the middle of the widest gap in logit. It is measured on the
  held-out validation split (stratified, seeded; it also picks the epoch)
  together with the training split's normal sequences
  (``threshold_on="validation+normal"``; ``"validation"`` uses the split
  alone): at a 3% prevalence a false-positive rate of 1e-3 matters, and a
  few hundred held-out normal sequences cannot show it.
* Explanation: the attention weights over the events of each sequence; they
  sum to one over its events, and padding gets none.

The model directory holds ``config.json`` (``"kind": "classifier"``:
settings, vocabulary, threshold, validation metrics), ``model.safetensors``,
``history.csv`` and ``checkpoint/``; :func:`seqrnn.load` reads it, and
nothing is pickled.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import artifacts
from ..config import CELLS, ModelConfig, TrainConfig, validate
from ..data.batching import LabelledBatches, length_buckets, pad
from ..data.formats import Sequence, as_sequences
from ..data.vocab import EOS, PAD, Vocabulary
from ..errors import InputError, ModelFileError
from ..metrics import choose_threshold, roc_auc
from ..progress import human
from ..schema import check_model
from ..data.distinct import distinct
from .base import SavedModel, load_checked_tensors, register
from .nets import embedding, recurrent

LEGACY_FORMAT = "seqrnn-classifier"  # the "format" of classifier directories before seqrnn.load read them
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_f1", "val_auc", "lr", "events", "events_per_second", "seconds",
                  "step", "time")
SCORE_TOKENS = 1 << 16  # padded events in one scoring batch
# The TrainConfig settings that apply to the classifier (not chunk or topk, which are next-event
# settings, nor validation: the classifier's held-out share is its validation_split) ...
TRAIN_SETTINGS = ("optimizer", "lr", "weight_decay", "batch_size", "epochs", "clip", "patience", "schedule",
                  "lr_floor", "warmup", "eval_every", "minutes", "seed", "threads", "min_count")
# ... and its defaults where they differ from TrainConfig's: a rate decaying to zero settles the
# weights (at a constant 3e-3 the loss on HDFS jumps now and then; decayed to a tenth, two seeds
# of four gave 2-3 more false positives in bench/classify_hdfs.py), and the best epoch is kept anyway.
TRAIN_DEFAULTS = dict(epochs=40, patience=0, schedule="cosine", lr_floor=0.0)


@dataclass
class ClassifierConfig:
    """The classifier's own settings (its training settings are a :class:`~seqrnn.config.TrainConfig`)."""

    cell: str = "lstm"
    layers: int = 1
    hidden: int = 64  # units per direction
    embedding_dim: int = 32
    attention: int = 64  # units of the attention scorer
    dropout: float = 0.1
    validation_split: float = 0.2  # share of each class held out to choose the epoch and the threshold
    prevalence: float | None = None  # share of anomalies the threshold is tuned for (None: plain F1)
    threshold_on: str = "validation+normal"  # or "validation": the held-out split alone

    def check(self) -> None:
        checks = [
            (self.cell in CELLS, f"cell must be one of {CELLS}, not {self.cell!r}", ("cell",)),
            (self.threshold_on in ("validation", "validation+normal"),
             f"threshold_on must be validation or validation+normal, not {self.threshold_on!r}", ("threshold_on",)),
            *((getattr(self, n) >= 1, f"{n} must be >= 1, not {getattr(self, n)}", (n,))
              for n in ("layers", "hidden", "embedding_dim", "attention")),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), not {self.dropout}", ("dropout",)),
            (0.0 < self.validation_split < 1.0,
             "validation_split must be in (0, 1): the epoch and the threshold are chosen on it",
             ("validation_split",)),
            (self.prevalence is None or 0.0 < self.prevalence < 1.0, "prevalence must be in (0, 1)", ("prevalence",)),
        ]
        for ok, msg, params in checks:
            if not ok:
                raise InputError(msg, params=params)


SETTINGS = (*(f.name for f in fields(ClassifierConfig)), *TRAIN_SETTINGS)


class AttentionClassifierNet(nn.Module):
    """Embedding -> bidirectional LSTM/GRU -> attention pooling -> one logit."""

    def __init__(self, vocab_size: int, c: ClassifierConfig):
        super().__init__()
        self.embed = embedding(vocab_size, c.embedding_dim)
        self.rnn = recurrent(c.cell, c.embedding_dim, c.hidden, c.layers, c.dropout, bidirectional=True)
        self.drop = nn.Dropout(c.dropout)
        self.att = nn.Sequential(nn.Linear(2 * c.hidden, c.attention), nn.Tanh(), nn.Linear(c.attention, 1))
        self.out = nn.Linear(2 * c.hidden, 1)

    def forward(self, x: torch.Tensor):
        """Logits (B,) and attention weights (B, T): zero on padding, summing to one over the events."""
        mask = x != PAD
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.drop(self.embed(x)), lengths, batch_first=True,
                                                   enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        scores = self.att(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = (weights.unsqueeze(-1) * h).sum(1)
        return self.out(self.drop(pooled)).squeeze(-1), weights


def _distinct(rows, y):
    """Each distinct (row, label) once, with its number of occurrences as a float32 weight."""
    first, inverse = distinct((r.tobytes(), bool(label)) for r, label in zip(rows, y))
    return ([rows[i] for i in first], np.array([bool(y[i]) for i in first], bool),
            np.bincount(inverse, minlength=len(first)).astype(np.float32))


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation items, ``fraction`` of each class held out at random."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for label in (False, True):
        idx = rng.permutation(np.flatnonzero(y == label))
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        valid.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def sigmoid(z: float) -> float:
    """The probability of logit ``z``, for any finite ``z`` (``math.exp`` overflows past about 709)."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)  # underflows to 0 where it must
    return e / (1.0 + e)


@dataclass
class Prediction:
    """The decision about one sequence, and the attention over its events."""

    sequence: Sequence
    logit: float
    probability: float
    anomalous: bool
    attention: np.ndarray  # one weight per event (empty for an empty sequence)


class LabelledLoss:
    """The trainer's hooks for the classifier: the count- and class-weighted loss of a batch, and
    F1 (at the prevalence) and ROC-AUC over each validation pass."""

    def __init__(self, net: nn.Module, pos_weight: float, prevalence: float | None):
        self.net, self.pos_weight, self.prevalence = net, torch.tensor(pos_weight), prevalence
        self.seen: list[tuple] = []  # the current validation pass's logits, labels and weights

    def loss(self, batch, state):
        x, y, w = batch
        logits, _ = self.net(x)
        bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight, reduction="none")
        if not self.net.training:  # a validation pass: F1 and ROC-AUC are measured at its end
            self.seen.append((logits.numpy().astype(np.float64), y.numpy() > 0.5, w.numpy()))
        return (w * bce).sum(), float(w.sum()), {}, None

    def validation_metrics(self, summary: dict) -> dict:
        scores, labels, weights = (np.concatenate(a) for a in zip(*self.seen))
        self.seen = []
        # Each distinct row stands for as many sequences as its weight counts.
        counts = weights.astype(np.int64)
        scores, labels = np.repeat(scores, counts), np.repeat(labels, counts)
        _, f1 = choose_threshold(scores, labels, self.prevalence)
        return {"val_f1": f1, "val_auc": roc_auc(labels, scores)}


@register
class SequenceClassifier(SavedModel):
    """A bidirectional RNN with attention pooling that labels whole sequences.

    scikit-learn style: settings in the constructor (the fields of
    :class:`ClassifierConfig` and the training settings in
    :data:`TRAIN_SETTINGS`; an unknown one is a ``TypeError``), data in
    ``fit(X, y)``, which returns ``self`` (``y``: ``True`` for anomalous);
    ``decision_function`` gives logits, higher is more anomalous;
    ``predict`` compares them with ``threshold_``; ``predict_proba`` gives
    the probability of anomalous.

    >>> clf = SequenceClassifier(prevalence=0.03).fit(seqs, labels)  # doctest: +SKIP
    """

    kind = "classifier"
    text_tokens_ = "chars"  # the unit of a token when reading text

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"SequenceClassifier got unexpected keyword argument(s) {', '.join(unknown)}; "
                            f"its settings are {', '.join(SETTINGS)}")
        given = {k: v for k, v in settings.items() if v is not None}
        own = {f.name for f in fields(ClassifierConfig)}
        self.config = ClassifierConfig(**{k: v for k, v in given.items() if k in own})
        self.train_config = TrainConfig(**{**TRAIN_DEFAULTS, **{k: v for k, v in given.items() if k not in own}})
        self.config.check()
        validate(ModelConfig(), self.train_config)  # the training settings' checks (the model's are above)

    def _settings(self) -> dict:
        """Every setting, as the constructor takes them."""
        return {**asdict(self.config), **{k: getattr(self.train_config, k) for k in TRAIN_SETTINGS}}

    # --- data ------------------------------------------------------------------------
    def _rows(self, seqs: list[Sequence]) -> list[np.ndarray]:
        # An empty sequence is read as a lone end marker, so that every row has an event to attend to.
        return [self.vocab_.encode(s.tokens) if len(s) else np.array([EOS], np.int64) for s in seqs]

    # --- fitting ---------------------------------------------------------------------
    def fit(self, X, y, *, format: str = "sessions", text_tokens: str = "chars", model_dir: str | None = None,
            resume: bool = False, callbacks=(), verbose: int = 0):
        """Learn from sequences ``X`` (paths, :class:`Sequence` list or token lists) and labels ``y``.

        With ``model_dir`` the history and a checkpoint for ``resume`` are
        written there as training goes, and the classifier at the end.
        ``callbacks`` are :class:`~seqrnn.train.Callback` objects;
        ``verbose=1`` prints progress. Ctrl-C raises
        :class:`~seqrnn.train.TrainingInterrupted` once the checkpoint is
        written; the best epoch so far is then the fitted (and saved)
        classifier.
        """
        from .. import modeldir

        with modeldir.writing(model_dir):  # one writer at a time, from before the data is read
            return self._fit(X, y, format, text_tokens, model_dir, resume, callbacks, verbose)

    def _fit(self, X, y, format, text_tokens, model_dir, resume, callbacks, verbose):
        from ..train import Trainer, TrainingInterrupted
        from .base import check_vocabulary

        c, tc = self.config, self.train_config
        seqs = as_sequences(X, format, text_tokens)
        y = np.asarray(y, bool)
        if len(y) != len(seqs):
            raise InputError(f"{len(seqs)} sequences but {len(y)} labels")
        if y.sum() < 2 or (~y).sum() < 2:
            raise InputError("the classifier needs at least two normal and two anomalous sequences")
        tr, va = stratified_split(y, c.validation_split, tc.seed)
        self.vocab_ = Vocabulary.build([seqs[i] for i in tr], min_count=tc.min_count)
        check_vocabulary(self.vocab_, [seqs[i] for i in tr], tc.min_count)
        self.format_ = format
        self.text_tokens_ = text_tokens
        if tc.threads > 0:
            torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)
        t0 = time.perf_counter()
        rows = self._rows(seqs)
        y_tr = y[tr]
        self.pos_weight_ = float((~y_tr).sum() / max(1, y_tr.sum()))
        self.n_train_ = {"normal": int((~y_tr).sum()), "anomalous": int(y_tr.sum())}
        from ..schema import check_training_memory

        check_training_memory(self.kind, self._settings(), len(self.vocab_),
                              tc.batch_size * (max((len(r) for r in rows), default=0) + 1),
                              params=("hidden", "embedding_dim", "layers", "attention", "batch_size"))
        self.net_ = AttentionClassifierNet(len(self.vocab_), c)
        # Logs repeat themselves (HDFS: one distinct session in four): train on each distinct
        # (sequence, label) once, weighted by how often it occurs; the same loss, fewer steps.
        train_b = LabelledBatches(*_distinct([rows[i] for i in tr], y_tr), tc.batch_size)
        valid_b = LabelledBatches(*_distinct([rows[i] for i in va], y[va]), tc.batch_size)
        hooks = LabelledLoss(self.net_, self.pos_weight_, c.prevalence)
        # A resumed run must be the same run; the threshold's settings may change.
        same_run = {k: v for k, v in asdict(c).items() if k not in ("prevalence", "threshold_on")}
        self.trainer_ = Trainer(self.net_, tc, hooks.loss, validation_metrics=hooks.validation_metrics,
                                model_config=same_run, vocabulary=self.vocab_.itos, model_dir=model_dir,
                                callbacks=callbacks, verbose=verbose, history_fields=HISTORY_FIELDS)
        try:
            self.history_ = self.trainer_.fit(train_b, valid_b, resume=resume)
        except TrainingInterrupted:
            if self.trainer_.best_state is not None:  # the best epoch so far is a classifier: finish it
                self.history_ = self.trainer_.history
                self.net_.load_state_dict(self.trainer_.best_state)
                self._finish(rows, y, tr, va, t0, model_dir)
            raise
        self._finish(rows, y, tr, va, t0, model_dir)
        return self

    def _finish(self, rows, y, tr, va, t0: float, model_dir: str | None) -> None:
        """Choose the threshold with the trained network, and save."""
        c = self.config
        self.net_.eval()
        y_va = y[va]
        s_va = self._logits([rows[i] for i in va])
        s_th, y_th = s_va, y_va
        if c.threshold_on == "validation+normal":
            # A false-positive rate of 1e-3 cannot be seen on a few hundred held-out normal sessions;
            # the training split's normal sessions add many more. Their scores are fitted (optimistic),
            # so the ones that still score high are normal patterns the network does not separate.
            s_tn = self._logits([rows[i] for i in tr if not y[i]])
            s_th, y_th = np.r_[s_va, s_tn], np.r_[y_va, np.zeros(len(s_tn), bool)]
        if not np.isfinite(s_th).all():  # the Trainer stops a diverged loss; weights may still overflow
            raise InputError("the classifier's scores are not finite (NaN or infinite): its training "
                             "diverged; train again with a lower lr", params="lr")
        self.threshold_, val_f1 = choose_threshold(s_th, y_th, c.prevalence)
        self.validation_ = {"normal": int((~y_va).sum()), "anomalous": int(y_va.sum()),
                            "threshold_on": c.threshold_on, "normal_for_threshold": int((~y_th).sum()),
                            "f1" if c.prevalence is None else "f1_at_prevalence": val_f1,
                            "fpr": float((s_va[~y_va] > self.threshold_).mean()),
                            "recall": float((s_va[y_va] > self.threshold_).mean())}
        self.fit_seconds_ = time.perf_counter() - t0
        if model_dir:
            self.save(model_dir)

    # --- using a fitted model -----------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise RuntimeError("SequenceClassifier is not fitted yet: call fit() or seqrnn.load()")

    @torch.inference_mode()
    def _forward(self, rows):
        """Logits and per-row attention weights; each distinct row is computed once."""
        self.net_.eval()
        first, inverse = distinct(r.tobytes() for r in rows)
        d_rows = [rows[i] for i in first]
        lengths = np.array([len(r) for r in d_rows])
        logits = np.zeros(len(d_rows), np.float64)
        att: list[np.ndarray | None] = [None] * len(d_rows)
        for batch in length_buckets(lengths, 4096, None, max_tokens=SCORE_TOKENS):
            lg, w = self.net_(torch.from_numpy(pad([d_rows[j] for j in batch])))
            w = w.numpy()
            for r, j in enumerate(batch):
                logits[j] = float(lg[r])
                att[j] = w[r, : lengths[j]]
        return logits[inverse], [att[j] for j in inverse]

    def _logits(self, rows) -> np.ndarray:
        return self._forward(rows)[0] if rows else np.zeros(0)

    def _read(self, X, format):
        return as_sequences(X, format or self.format_, self.text_tokens_)

    def decision_function(self, X, format: str | None = None) -> np.ndarray:
        """Logit of "anomalous" for each sequence; higher is more anomalous."""
        self._check_fitted()
        return self._logits(self._rows(self._read(X, format)))

    def predict_proba(self, X, format: str | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision_function(X, format)))

    def predict(self, X, format: str | None = None) -> np.ndarray:
        return self.decision_function(X, format) > self.threshold_

    def explain(self, X, format: str | None = None) -> list[Prediction]:
        """The decision and the attention over the events, for each sequence."""
        self._check_fitted()
        seqs = self._read(X, format)
        if not seqs:
            return []
        logits, att = self._forward(self._rows(seqs))
        return [Prediction(s, float(z), sigmoid(float(z)), bool(z > self.threshold_),
                           a if len(s) else np.zeros(0, np.float32)) for s, z, a in zip(seqs, logits, att)]

    # --- describing -------------------------------------------------------------------
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net_.parameters())

    def _training_summary(self) -> dict:
        history = getattr(self, "history_", None)
        if history is None:  # loaded: as it was saved
            return dict(getattr(self, "training_", {}))
        out = {**getattr(self, "n_train_", {}), "epochs": len(history),
               "seconds": round(getattr(self, "fit_seconds_", 0.0), 3)}
        if history:
            best = min(history, key=lambda r: r.get("val_loss", math.inf))
            out.update(best_epoch=best["epoch"], best_val_loss=best.get("val_loss"))
        return out

    def describe(self) -> list[str]:
        """Human lines for ``seqrnn info``: architecture, parameters, vocabulary, training, threshold."""
        self._check_fitted()
        c, tr, v = self.config, self._training_summary(), getattr(self, "validation_", {}) or {}
        lines = [f"model      classifier: {c.layers}x{c.hidden} bidirectional {c.cell.upper()}, embedding "
                 f"{c.embedding_dim}, attention pooling ({c.attention} units), dropout {c.dropout}",
                 f"parameters {self.n_parameters():,}",
                 f"vocabulary {human(len(self.vocab_) - 4)} events (+4 reserved), format {self.format_}"]
        best = (f"; best val_loss {tr['best_val_loss']:.4g} (epoch {tr.get('best_epoch')})"
                if tr.get("best_val_loss") is not None else "")
        lines.append(f"training   {human(tr.get('normal'))} normal and {human(tr.get('anomalous'))} anomalous "
                     f"sequences, {tr.get('epochs')} epochs, {tr.get('seconds')}s{best}")
        p = sigmoid(self.threshold_)
        f1 = (f"F1 at prevalence {c.prevalence} {v['f1_at_prevalence']:.4f}" if "f1_at_prevalence" in v
              else f"F1 {v['f1']:.4f}" if "f1" in v else "F1 unknown")
        rates = (f" (recall {v['recall']:.4f}, FPR {v['fpr']:.4f})" if "recall" in v and "fpr" in v else "")
        lines.append(f"threshold  p(anomalous) > {p:.3g} (logit {self.threshold_:.4g}), chosen on "
                     f"{v.get('threshold_on', c.threshold_on)}; validation {f1}{rates}")
        return lines

    # --- saving (save: SavedModel's) --------------------------------------------------
    def _save_files(self, model_dir: str) -> None:
        from ..train import write_history

        os.makedirs(model_dir, exist_ok=True)
        artifacts.save_tensors(os.path.join(model_dir, artifacts.WEIGHTS), dict(self.net_.state_dict()),
                               {"kind": self.kind})
        if getattr(self, "history_", None) is not None:
            write_history(os.path.join(model_dir, artifacts.HISTORY), self.history_, HISTORY_FIELDS)
        # The config last: it names a complete set of files.
        artifacts.write_json(os.path.join(model_dir, artifacts.CONFIG), {
            **self._config_head(), "threshold": self.threshold_, "pos_weight": self.pos_weight_,
            "validation": self.validation_, "training": self._training_summary(), "versions": artifacts.versions()})

    @classmethod
    def _from_config(cls, config: dict, model_dir: str) -> "SequenceClassifier":
        """The fitted classifier of a directory whose ``config.json`` is ``config`` (weights from safetensors)."""
        settings = dict(config["settings"])
        if "validation" in settings:  # written before the setting was named validation_split
            settings["validation_split"] = settings.pop("validation")
        clf = cls(**settings)
        clf.vocab_ = Vocabulary.from_dict(config["vocabulary"])
        clf.format_ = config.get("data_format", "sessions")
        clf.text_tokens_ = config.get("text_tokens", "chars")
        clf.threshold_ = float(config["threshold"])
        if not math.isfinite(clf.threshold_):
            raise ValueError(f"the threshold is {clf.threshold_} (a training that diverged): train again")
        clf.pos_weight_ = float(config.get("pos_weight", 1.0))
        clf.validation_ = config.get("validation", {})
        clf.training_ = config.get("training", {})
        clf.net_ = AttentionClassifierNet(len(clf.vocab_), clf.config)
        tensors = load_checked_tensors(config, model_dir)
        clf.net_.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
        clf.net_.eval()
        return clf


def load_classifier(model_dir: str) -> SequenceClassifier:
    """Load a classifier directory (as :func:`seqrnn.load` does, and older ones too); never unpickles.
    A directory whose training or save did not finish is refused (:mod:`seqrnn.modeldir`)."""
    from .. import modeldir

    return modeldir.read(model_dir, lambda: _load_classifier(model_dir))


def _load_classifier(model_dir: str) -> SequenceClassifier:
    try:
        config = artifacts.read_config(model_dir)
    except ModelFileError as first:
        try:
            config = artifacts.read_config(model_dir, LEGACY_FORMAT)
        except ModelFileError:
            raise first from None
    if config.get("kind") != SequenceClassifier.kind:
        raise ModelFileError(f"not a classifier (kind {config.get('kind')!r}: "
                             f"{artifacts.KINDS[artifacts.FORMAT]})", model_dir)
    check_model(config, model_dir, os.path.join(model_dir, artifacts.WEIGHTS))
    try:
        return SequenceClassifier._from_config(config, model_dir)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, OverflowError) as exc:
        raise ModelFileError(f"model files do not fit together ({type(exc).__name__}: {exc})", model_dir) from None
