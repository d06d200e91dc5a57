"""Supervised classification of whole sequences: normal or anomalous.

When labelled anomalies exist, a bidirectional LSTM/GRU reads each sequence
(its backward pass is legitimate here: the label is of the whole sequence,
not of an event in it), attention pooling weighs its events, and a linear
layer gives the logit of "anomalous" (the Keras imdb_bidirectional_lstm
example's task; LogRobust's model for logs).

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

The model directory holds ``config.json`` (settings, vocabulary, threshold,
validation metrics), ``model.safetensors`` and ``history.csv``; nothing is
pickled.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import artifacts
from ..config import CELLS, OPTIMIZERS
from ..data.batching import length_buckets, pad
from ..data.formats import Sequence, as_sequences
from ..data.vocab import EOS, PAD, Vocabulary
from ..metrics import choose_threshold, roc_auc
from ..errors import InputError, ModelFileError
from ..train import make_optimizer

FORMAT = "seqrnn-classifier"
FORMAT_VERSION = 1
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_f1", "val_auc", "seconds")
SCORE_TOKENS = 1 << 16  # padded events in one scoring batch


@dataclass
class ClassifierConfig:
    cell: str = "lstm"
    layers: int = 1
    hidden: int = 64  # units per direction
    embedding_dim: int = 32
    attention: int = 64  # units of the attention scorer
    dropout: float = 0.1
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 40
    schedule: str = "cosine"  # learning rate: "cosine" decays it to zero over the epochs; "constant"
    patience: int = 0  # epochs without a better validation loss before stopping; 0 never stops
    clip: float = 1.0
    validation: float = 0.2  # share of each class held out to choose the epoch and the threshold
    prevalence: float | None = None  # share of anomalies the threshold is tuned for (None: plain F1)
    threshold_on: str = "validation+normal"  # or "validation": the held-out split alone
    seed: int = 0
    threads: int = 0
    min_count: int = 1

    def check(self) -> None:
        checks = [
            (self.cell in CELLS, f"cell must be one of {CELLS}"),
            (self.schedule in ("cosine", "constant"), "schedule must be cosine or constant"),
            (self.threshold_on in ("validation", "validation+normal"),
             "threshold-on must be validation or validation+normal"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (min(self.layers, self.hidden, self.embedding_dim, self.attention) >= 1,
             "layers, hidden, embedding-dim and attention must be >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.lr > 0 and self.weight_decay >= 0 and self.clip >= 0, "lr must be > 0, weight-decay and clip >= 0"),
            (self.batch_size >= 1 and self.epochs >= 1 and self.patience >= 0,
             "batch-size and epochs must be >= 1, patience >= 0"),
            (0.0 < self.validation < 1.0, "validation fraction must be in (0, 1): the threshold is chosen on it"),
            (self.prevalence is None or 0.0 < self.prevalence < 1.0, "prevalence must be in (0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(msg)


class AttentionClassifierNet(nn.Module):
    """Embedding -> bidirectional LSTM/GRU -> attention pooling -> one logit."""

    def __init__(self, vocab_size: int, c: ClassifierConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, c.embedding_dim, padding_idx=PAD)
        rnn = nn.LSTM if c.cell == "lstm" else nn.GRU
        self.rnn = rnn(c.embedding_dim, c.hidden, num_layers=c.layers, batch_first=True, bidirectional=True,
                       dropout=c.dropout if c.layers > 1 else 0.0)
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
    index: dict = {}
    for r, label in zip(rows, y):
        key = (r.tobytes(), bool(label))
        if key in index:
            index[key][2] += 1.0
        else:
            index[key] = [r, bool(label), 1.0]
    items = list(index.values())
    return ([it[0] for it in items], np.array([it[1] for it in items], bool),
            np.array([it[2] for it in items], np.float32))


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


@dataclass
class Prediction:
    """The decision about one sequence, and the attention over its events."""

    sequence: Sequence
    logit: float
    probability: float
    anomalous: bool
    attention: np.ndarray  # one weight per event (empty for an empty sequence)


class SequenceClassifier:
    """A bidirectional RNN with attention pooling that labels whole sequences.

    scikit-learn style: ``fit(X, y)`` returns ``self`` (``y``: ``True`` for
    anomalous); ``decision_function`` gives logits, higher is more
    anomalous; ``predict`` compares them with ``threshold_``;
    ``predict_proba`` gives the probability of anomalous.

    >>> clf = SequenceClassifier(prevalence=0.03).fit(seqs, labels)  # doctest: +SKIP
    """

    text_tokens_ = "chars"  # the unit of a token when reading text

    def __init__(self, **settings):
        names = {f.name for f in fields(ClassifierConfig)}
        unknown = set(settings) - names
        if unknown:
            raise InputError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        self.config = ClassifierConfig(**{k: v for k, v in settings.items() if v is not None})
        self.config.check()

    # --- data ------------------------------------------------------------------------
    def _rows(self, seqs: list[Sequence]) -> list[np.ndarray]:
        # An empty sequence is read as a lone end marker, so that every row has an event to attend to.
        return [self.vocab_.encode(s.tokens) if len(s) else np.array([EOS], np.int64) for s in seqs]

    def _batches(self, rows, rng=None):
        lengths = np.array([len(r) for r in rows])
        return length_buckets(lengths, self.config.batch_size, rng, max_tokens=self.config.batch_size * 256)

    # --- fitting ---------------------------------------------------------------------
    def fit(self, X, y, format: str = "sessions", model_dir: str | None = None, verbose: int = 0,
            text_tokens: str = "chars"):
        """Learn from sequences ``X`` (paths, :class:`Sequence` list or token lists) and labels ``y``."""
        c = self.config
        seqs = as_sequences(X, format, text_tokens)
        y = np.asarray(y, bool)
        if len(y) != len(seqs):
            raise InputError(f"{len(seqs)} sequences but {len(y)} labels")
        if y.sum() < 2 or (~y).sum() < 2:
            raise InputError("the classifier needs at least two normal and two anomalous sequences")
        tr, va = stratified_split(y, c.validation, c.seed)
        train_seqs = [seqs[i] for i in tr]
        self.vocab_ = Vocabulary.build(train_seqs, min_count=c.min_count)
        self.format_ = format
        self.text_tokens_ = text_tokens
        if c.threads > 0:
            torch.set_num_threads(c.threads)
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        t0 = time.perf_counter()
        rows = self._rows(seqs)
        x_tr, y_tr = [rows[i] for i in tr], y[tr]
        x_va, y_va = [rows[i] for i in va], y[va]
        self.pos_weight_ = float((~y_tr).sum() / max(1, y_tr.sum()))
        self.n_train_ = {"normal": int((~y_tr).sum()), "anomalous": int(y_tr.sum())}
        # Logs repeat themselves (HDFS: one distinct session in four): train on each distinct
        # (sequence, label) once, weighted by how often it occurs; the same loss, fewer steps.
        x_tr, y_tr, w_tr = _distinct(x_tr, y_tr)
        self.net_ = AttentionClassifierNet(len(self.vocab_), c)
        opt = make_optimizer(self.net_.parameters(), c)
        # A decaying rate settles the weights: at a constant 3e-3 the loss on HDFS jumps now and then.
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, c.epochs) if c.schedule == "cosine" else None
        pos_weight = torch.tensor(self.pos_weight_)
        self.history_, best, bad = [], math.inf, 0
        best_state = None
        self.interrupted_ = False
        try:
            for epoch in range(1, c.epochs + 1):
                e0 = time.perf_counter()
                train_loss = self._train_epoch(x_tr, y_tr, w_tr, opt, pos_weight, rng)
                if sched is not None:
                    sched.step()
                s_va = self._logits(x_va)
                val_loss = float(F.binary_cross_entropy_with_logits(
                    torch.from_numpy(s_va), torch.from_numpy(y_va.astype(np.float32)), pos_weight=pos_weight))
                _, val_f1 = choose_threshold(s_va, y_va, c.prevalence)
                logs = {"epoch": epoch, "loss": train_loss, "val_loss": val_loss, "val_f1": val_f1,
                        "val_auc": roc_auc(y_va, s_va), "seconds": time.perf_counter() - e0}
                self.history_.append(logs)
                if verbose:
                    print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in logs.items()), file=sys.stderr, flush=True)
                if val_loss < best - 1e-6:
                    best, bad = val_loss, 0
                    best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
                else:
                    bad += 1
                    if c.patience and bad >= c.patience:
                        break
        except KeyboardInterrupt:  # Ctrl-C: keep the best epoch so far, calibrate and save it
            if best_state is None:
                raise
            self.interrupted_ = True
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()
        s_va = self._logits(x_va)
        s_th, y_th = s_va, y_va
        if c.threshold_on == "validation+normal":
            # A false-positive rate of 1e-3 cannot be seen on a few hundred held-out normal sessions;
            # the training split's normal sessions add many more. Their scores are fitted (optimistic),
            # so the ones that still score high are normal patterns the network does not separate.
            s_tn = self._logits([rows[i] for i in tr if not y[i]])
            s_th, y_th = np.r_[s_va, s_tn], np.r_[y_va, np.zeros(len(s_tn), bool)]
        self.threshold_, val_f1 = choose_threshold(s_th, y_th, c.prevalence)
        self.validation_ = {"normal": int((~y_va).sum()), "anomalous": int(y_va.sum()),
                            "threshold_on": c.threshold_on, "normal_for_threshold": int((~y_th).sum()),
                            "f1" if c.prevalence is None else "f1_at_prevalence": val_f1,
                            "fpr": float((s_va[~y_va] > self.threshold_).mean()),
                            "recall": float((s_va[y_va] > self.threshold_).mean())}
        self.fit_seconds_ = time.perf_counter() - t0
        if model_dir:
            self.save(model_dir)
        return self

    def _train_epoch(self, x, y, w, opt, pos_weight, rng) -> float:
        """One pass over the distinct training rows; the count-weighted mean loss."""
        self.net_.train()
        total, n = 0.0, 0.0
        for idx in self._batches(x, rng):
            logits, _ = self.net_(torch.from_numpy(pad([x[i] for i in idx])))
            wb = torch.from_numpy(w[idx])
            loss = (wb * F.binary_cross_entropy_with_logits(logits, torch.from_numpy(y[idx].astype(np.float32)),
                                                            pos_weight=pos_weight, reduction="none")).sum()
            opt.zero_grad(set_to_none=True)
            (loss / float(wb.sum())).backward()
            if self.config.clip > 0:
                torch.nn.utils.clip_grad_norm_(self.net_.parameters(), self.config.clip)
            opt.step()
            total += float(loss.detach())
            n += float(wb.sum())
        return total / max(n, 1.0)

    # --- using a fitted model -----------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "net_"):
            raise RuntimeError("SequenceClassifier is not fitted yet: call fit() or load_classifier()")

    @torch.inference_mode()
    def _forward(self, rows):
        """Logits and per-row attention weights; each distinct row is computed once."""
        self.net_.eval()
        keys = [r.tobytes() for r in rows]
        first: dict = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        distinct = list(first.values())
        d_rows = [rows[i] for i in distinct]
        lengths = np.array([len(r) for r in d_rows])
        logits = np.zeros(len(d_rows), np.float64)
        att: list[np.ndarray | None] = [None] * len(d_rows)
        for batch in length_buckets(lengths, 4096, None, max_tokens=SCORE_TOKENS):
            lg, w = self.net_(torch.from_numpy(pad([d_rows[j] for j in batch])))
            w = w.numpy()
            for r, j in enumerate(batch):
                logits[j] = float(lg[r])
                att[j] = w[r, : lengths[j]]
        where = {keys[i]: j for j, i in enumerate(distinct)}
        return np.array([logits[where[k]] for k in keys]), [att[where[k]] for k in keys]

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
        return [Prediction(s, float(z), float(1 / (1 + math.exp(-z))), bool(z > self.threshold_),
                           a if len(s) else np.zeros(0, np.float32)) for s, z, a in zip(seqs, logits, att)]

    # --- saving -----------------------------------------------------------------------
    def save(self, model_dir: str) -> str:
        self._check_fitted()
        os.makedirs(model_dir, exist_ok=True)
        artifacts.save_tensors(os.path.join(model_dir, artifacts.WEIGHTS), dict(self.net_.state_dict()),
                               {"kind": "classifier"})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        w.writeheader()
        for row in getattr(self, "history_", []):
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        artifacts.atomic_write_text(os.path.join(model_dir, artifacts.HISTORY), buf.getvalue())
        # The config last: it names a complete set of files.
        artifacts.write_json(os.path.join(model_dir, artifacts.CONFIG), {
            "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "classifier",
            "settings": asdict(self.config), "data_format": self.format_,
            "text_tokens": self.text_tokens_, "vocabulary": self.vocab_.to_dict(),
            "threshold": self.threshold_, "pos_weight": self.pos_weight_, "validation": self.validation_,
            "training": {**getattr(self, "n_train_", {}), "epochs": len(getattr(self, "history_", [])),
                         "seconds": round(getattr(self, "fit_seconds_", 0.0), 3)},
            "versions": artifacts.versions()})
        return model_dir

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net_.parameters())


def load_classifier(model_dir: str) -> SequenceClassifier:
    """Load a classifier directory written by ``save``; never unpickles."""
    config = artifacts.read_config(model_dir, FORMAT, FORMAT_VERSION)
    try:
        clf = SequenceClassifier(**config["settings"])
        clf.vocab_ = Vocabulary.from_dict(config["vocabulary"])
        clf.format_ = config.get("data_format", "sessions")
        clf.text_tokens_ = config.get("text_tokens", "chars")
        clf.threshold_ = float(config["threshold"])
        clf.pos_weight_ = float(config.get("pos_weight", 1.0))
        clf.validation_ = config.get("validation", {})
        clf.training_ = config.get("training", {})
        clf.net_ = AttentionClassifierNet(len(clf.vocab_), clf.config)
        tensors = artifacts.load_tensors(os.path.join(model_dir, artifacts.WEIGHTS))
        clf.net_.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"model files do not fit together ({type(exc).__name__}: {exc})", model_dir) from None
    clf.net_.eval()
    return clf
