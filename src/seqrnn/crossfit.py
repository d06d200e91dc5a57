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
Two copies on halves cost about one more training of the final model, or
about half of one where two cores are free: they then train at once, each
in a forked process on one thread (:func:`fold_processes`).
Training them for half the epochs halves that cost but is not cautious: a
less trained copy finds rare normal events less surprising than the final
model does, so its cuts come out low (on HDFS twice the false positives).
"""

from __future__ import annotations

import math
import sys
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
                        eval_every=0, threads=1)
    elif "seed" in settings:
        settings["seed"] = int(settings["seed"]) + 1 + fold
    copy = type(model)(**settings)
    copy.vocab_, copy.format_, copy.text_tokens_ = model.vocab_, model.format_, model.text_tokens_
    return copy


def max_known_nll(scores) -> np.ndarray:
    """The surprise statistic of each scored sequence: its largest ``-log p`` over known events."""
    return np.array([float(s.nll[~s.unknown].max()) if (~s.unknown).any() else 0.0 for s in scores])


def _fit_and_score(copy, train_ids: list, train_complete: list, score: list[Sequence]) -> np.ndarray:
    """One fold: train ``copy`` on its part, return the surprise of the sequences ``score`` it did not see."""
    from .score import score_sequences

    copy._fit(train_ids, train_complete, [], [])
    return max_known_nll(score_sequences(copy, score, topk=1)) if score else np.zeros(0)


def _quiet_worker() -> None:
    """A fold's worker process, forked: one torch thread before anything runs (as torch's DataLoader workers
    do: the parent's OpenMP threads are not the child's), and Ctrl-C is the parent's to handle (it stops the
    workers)."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool stops workers so; saving on SIGTERM is the parent's
    torch.set_num_threads(1)


PARALLEL_SECONDS = 8.0  # a final training this long (or longer) makes worker processes worth their start-up


def fold_processes(model, folds: int) -> int:
    """How many folds to train at once, each in its own forked process on one thread: on Linux (where a
    fork costs nothing and imports nothing again), as many as torch's threads (the cores
    :mod:`seqrnn.runtime` found free), for a neural model on the CPU whose training took
    :data:`PARALLEL_SECONDS` or more; else 1, here."""
    if not sys.platform.startswith("linux") or not hasattr(model, "train_config") or \
            model.training_summary().get("seconds", 0.0) < PARALLEL_SECONDS:
        return 1
    import torch

    if model.training_summary().get("device", "cpu") != "cpu" or \
            (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1
    return max(1, min(folds, torch.get_num_threads()))


def cross_fitted_surprise(model, seqs: list[Sequence], folds: int = DEFAULT_FOLDS, seed: int = 0,
                          score_only: np.ndarray | None = None, time_budget: float | None = None,
                          verbose: int = 0, processes: int | None = None) -> np.ndarray:
    """The surprise statistic of each of ``seqs`` from a copy of ``model`` that did not train on it.

    ``score_only``: a boolean mask of the sequences to score (the others only
    train; their entry is ``nan``). ``time_budget``: seconds for all copies
    together (each neural copy gets its share as ``minutes``). ``processes``:
    folds trained at once (default :func:`fold_processes`; more than one is
    Linux only). A neural copy trains on one thread wherever it runs, so the
    values do not depend on it.
    """
    n = len(seqs)
    folds = max(2, min(folds, n))
    fold_of = np.empty(n, np.int64)
    fold_of[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    mask = np.ones(n, bool) if score_only is None else np.asarray(score_only, bool)
    out = np.full(n, np.nan)
    ids, complete = model.encode(seqs)
    processes = fold_processes(model, folds) if processes is None else max(1, min(processes, folds))
    if not sys.platform.startswith("linux"):
        processes = 1
    bar = None
    if verbose:
        from tqdm import tqdm

        bar = tqdm(total=folds, desc="calibration: cross-fitting", unit="fold", leave=False)

    def job(k: int, seconds: float | None):
        train = np.flatnonzero(fold_of != k)
        score = np.flatnonzero((fold_of == k) & mask)
        return score, (fold_model(model, k, seconds), [ids[i] for i in train], [complete[i] for i in train],
                       [seqs[i] for i in score])

    start = time.perf_counter()
    threads = None
    if hasattr(model, "train_config"):
        import torch

        threads = torch.get_num_threads()
    try:
        if processes > 1:
            import multiprocessing

            # each worker takes a share of the time left: the folds run `processes` at a time
            seconds = None if time_budget is None else max(1.0, time_budget * processes / folds)
            with multiprocessing.get_context("fork").Pool(processes, initializer=_quiet_worker) as pool:
                try:
                    running = []
                    for k in range(folds):
                        score, args = job(k, seconds)
                        running.append((score, pool.apply_async(_fit_and_score, args)))
                    for score, result in running:
                        out[score] = result.get()
                        if bar is not None:
                            bar.update(1)
                except BaseException:
                    pool.terminate()
                    raise
        else:
            for k in range(folds):
                left = None if time_budget is None else max(1.0, (time_budget - (time.perf_counter() - start)))
                score, args = job(k, None if left is None else left / (folds - k))
                out[score] = _fit_and_score(*args)
                if bar is not None:
                    bar.update(1)
    finally:
        if threads is not None:  # a copy trains on one thread: torch's setting is the process's
            import torch

            torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    return out
