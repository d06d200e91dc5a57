"""Out-of-sample scores of the training sequences themselves: cross-fitting.

A model is most confident on the sequences it trained on, so their scores
say little about new normal data. Cross-fitting splits the calibration
sequences into ``folds`` parts and trains one copy of the model (same
settings and vocabulary, another seed) on all parts but one; each sequence
is scored by the copy that never saw it. The final model, trained on all,
is what decides; the copies only calibrate it and are dropped.

A neural copy trains for the final model's best number of epochs
(``COPY_EPOCHS``), without early stopping (its held-out part is the
sequences it scores: choosing its epoch on them would bias their scores).
Two copies on halves cost about one more training of the final model.
Training them for half the epochs halves that cost but is not cautious: a
less trained copy finds rare normal events less surprising than the final
model does, so its cuts come out low (on HDFS twice the false positives).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .data.formats import Sequence

DEFAULT_FOLDS = 2  # two copies on halves
COPY_EPOCHS = 1.0  # a copy's epochs, as a share of the final model's best (0.5 was tried: see above)


def fold_model(model, fold: int, seconds: float | None = None):
    """An unfitted copy of ``model`` for fold ``fold``: its settings, another seed, its vocabulary."""
    settings = dict(model._settings())
    if hasattr(model, "train_config"):  # a neural model: the final model's best epoch count, no early stopping
        best = model.training_summary().get("best_epoch") or model.train_config.epochs
        settings.update(epochs=max(1, int(math.ceil(COPY_EPOCHS * best))), patience=0,
                        seed=model.train_config.seed + 1 + fold, minutes=(seconds / 60.0) if seconds else 0.0,
                        eval_every=0)
    elif "seed" in settings:
        settings["seed"] = int(settings["seed"]) + 1 + fold
    copy = type(model)(**settings)
    copy.vocab_, copy.format_, copy.text_tokens_ = model.vocab_, model.format_, model.text_tokens_
    return copy


def max_known_nll(scores) -> np.ndarray:
    """The surprise statistic of each scored sequence: its largest ``-log p`` over known events."""
    return np.array([float(s.nll[~s.unknown].max()) if (~s.unknown).any() else 0.0 for s in scores])


def cross_fitted_surprise(model, seqs: list[Sequence], folds: int = DEFAULT_FOLDS, seed: int = 0,
                          score_only: np.ndarray | None = None, time_budget: float | None = None,
                          verbose: int = 0) -> np.ndarray:
    """The surprise statistic of each of ``seqs`` from a copy of ``model`` that did not train on it.

    ``score_only``: a boolean mask of the sequences to score (the others only
    train; their entry is ``nan``). ``time_budget``: seconds for all copies
    together (each neural copy gets its share as ``minutes``).
    """
    from .score import score_sequences

    n = len(seqs)
    folds = max(2, min(folds, n))
    fold_of = np.empty(n, np.int64)
    fold_of[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    mask = np.ones(n, bool) if score_only is None else np.asarray(score_only, bool)
    out = np.full(n, np.nan)
    ids, complete = model.encode(seqs)
    bar = None
    if verbose:
        from tqdm import tqdm

        bar = tqdm(total=folds, desc="calibration: cross-fitting", unit="fold", leave=False)
    start = time.perf_counter()
    try:
        for k in range(folds):
            left = None if time_budget is None else max(1.0, (time_budget - (time.perf_counter() - start)))
            copy = fold_model(model, k, None if left is None else left / (folds - k))
            train = np.flatnonzero(fold_of != k)
            copy._fit([ids[i] for i in train], [complete[i] for i in train], [], [])
            score = np.flatnonzero((fold_of == k) & mask)
            if len(score):
                out[score] = max_known_nll(score_sequences(copy, [seqs[i] for i in score], topk=1))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out
