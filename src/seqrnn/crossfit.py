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
import os
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
    out = np.zeros(len(scores))
    done: dict[tuple, float] = {}  # identical sequences share their arrays (score_sequences): one computation
    for i, s in enumerate(scores):
        key = (id(s.nll), id(s.ids))
        value = done.get(key)
        if value is None:
            known = ~s.unknown
            value = done[key] = float(s.nll[known].max()) if known.any() else 0.0
        out[i] = value
    return out


def _fit_and_score(copy, train_ids: list, train_complete: list, score: list[Sequence]) -> np.ndarray:
    """One fold: train ``copy`` on its part, return the surprise of the sequences ``score`` it did not see."""
    from .score import score_sequences

    copy._fit(train_ids, train_complete, [], [])
    return max_known_nll(score_sequences(copy, score, topk=1)) if score else np.zeros(0)


def _quiet_worker(parent: int) -> None:
    """A fold's worker process, forked: one torch thread before anything runs (as torch's DataLoader workers
    do: the parent's OpenMP threads are not the child's), Ctrl-C is the parent's to handle (it stops the
    workers), and it ends with its parent (``parent``: the parent's process id), even one killed by
    SIGKILL: it would otherwise train on for nothing, then fail to hand its values back."""
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent stops workers so; saving on SIGTERM is its own
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    import torch

    torch.set_num_threads(1)


def _worker(send, parent: int, args: tuple) -> None:
    """A worker process: one fold (:func:`_fit_and_score`), its values or its error sent back on ``send``.
    An error that would not come back whole through pickle (one whose class takes other arguments) comes
    back as a :class:`~seqrnn.errors.SeqrnnError` with its message."""
    import pickle

    _quiet_worker(parent)
    try:
        message = (True, _fit_and_score(*args))
    except BaseException as exc:  # noqa: BLE001 (every error goes back to the parent, which raises it)
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001
            from .errors import SeqrnnError

            exc = SeqrnnError(f"{exc} ({type(exc).__name__}, in a cross-fitting copy)")
        message = (False, exc)
    send.send(message)
    send.close()


def _in_workers(jobs: list[tuple], processes: int, done) -> None:
    """Call ``done(k, values)`` for each of ``jobs`` (:func:`_fit_and_score`'s arguments) as it finishes, each
    in its own forked process, ``processes`` at a time. A job's error is raised here; a worker that dies
    without an answer (killed: by the kernel when memory runs out, say) is an error too, never a wait
    without end; whatever ends this early (an error, Ctrl-C, SIGTERM) stops the workers still running."""
    import multiprocessing
    from multiprocessing.connection import wait

    from .errors import SeqrnnError

    context = multiprocessing.get_context("fork")
    waiting, running = list(range(len(jobs))), {}  # running: receiving end -> (job, process)
    try:
        while waiting or running:
            while waiting and len(running) < processes:
                k = waiting.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_worker, args=(send, os.getpid(), jobs[k]), daemon=True,
                                          name=f"seqrnn-crossfit-{k}")
                process.start()
                send.close()  # the worker holds the only sending end: its death is the end of the pipe
                running[receive] = (k, process)
            for receive in wait(list(running)):
                k, process = running.pop(receive)
                try:
                    ok, value = receive.recv()
                except EOFError:
                    process.join()
                    code = process.exitcode
                    how = f"was killed by signal {-code}" if code is not None and code < 0 else \
                        f"ended with status {code}"
                    hint = " (the kernel does so when memory runs out)" if code == -9 else ""
                    raise SeqrnnError(f"calibration: the process training cross-fitting copy {k + 1} of "
                                      f"{len(jobs)} {how}{hint} before handing its values back; train with "
                                      "--threads 1 to train the copies one after the other") from None
                finally:
                    receive.close()
                process.join()
                if not ok:
                    raise value
                done(k, value)
    finally:
        for receive, (_, process) in running.items():
            process.terminate()
        for receive, (_, process) in running.items():
            process.join()
            receive.close()


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
    if verbose:  # on a terminal only: a log file gets no carriage-return clutter
        from .progress import bar as progress_bar

        bar = progress_bar(folds, "calibration: cross-fitting", unit="fold")

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
            # each worker takes a share of the time left: the folds run `processes` at a time
            seconds = None if time_budget is None else max(1.0, time_budget * processes / folds)
            jobs = [job(k, seconds) for k in range(folds)]

            def done(k: int, values: np.ndarray) -> None:
                out[jobs[k][0]] = values
                if bar is not None:
                    bar.update(1)

            _in_workers([args for _, args in jobs], processes, done)
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
