"""The training loop of every neural model: optimiser, schedule, history, callbacks, checkpoints.

The model supplies the network, the batches (:mod:`seqrnn.data.batching`)
and a loss hook that turns one batch into a summed loss; the loop is the
same for all. Shaped like Keras ``fit``: a validation set, a per-epoch
history (also written as ``history.csv``), early stopping on the validation
loss, the best weights kept, a progress bar with events/s. Beyond it:
``resume`` continues from the last epoch's checkpoint (weights, optimiser,
random state, one file), and Ctrl-C (or SIGTERM, from the command line)
writes that checkpoint before it stops. A loss or weight that becomes NaN or
infinite stops training (:class:`TrainingDiverged`), the last checkpoint kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from typing import Callable

import numpy as np
import torch

from . import artifacts, distributed, modeldir
from .config import COSINE_FLOOR, TrainConfig  # noqa: F401  (COSINE_FLOOR: lr_floor's default)
from .data.batching import BatchMaker
from .errors import Interrupted, SeqrnnError

HISTORY_FIELDS = ("epoch", "loss", "accuracy", "topk_accuracy", "val_loss", "val_accuracy",
                  "val_topk_accuracy", "val_bits", "lr", "events", "events_per_second", "seconds",
                  "step", "time")
WSD_DECAY = 0.3  # the share of training at the end over which the "wsd" schedule decays


# loss(batch, state) -> (summed loss, count, summed metrics, state for the next batch); see Trainer.
LossHook = Callable[[tuple, object], "tuple[torch.Tensor, float, dict, object]"]


class TrainingInterrupted(Interrupted):
    """Raised after Ctrl-C (or SIGTERM: ``signal`` 15), once the checkpoint has been written."""

    def __init__(self, checkpoint: str | None, signal: int = 2):
        self.checkpoint = checkpoint
        self.signal = signal  # the command line's exit status: 128 + it (130 for Ctrl-C, 143 for SIGTERM)
        super().__init__("training interrupted" + (f"; checkpoint in {checkpoint}" if checkpoint else ""))


class TrainingDiverged(SeqrnnError):
    """The loss (or a weight) became NaN or infinite: training stops, the last good checkpoint is kept."""

    stopped_state = "diverged"  # what status.json says of the model directory

    def __init__(self, value: float, epoch: int, step: int, checkpoint_epoch: int | None, folder: str | None):
        self.value, self.epoch, self.checkpoint_epoch = value, epoch, checkpoint_epoch
        where = f"the loss became {value} in epoch {epoch} (step {step})"
        if folder and checkpoint_epoch:
            then = (f"; the last good checkpoint (epoch {checkpoint_epoch}) is kept in {folder}: continue from it "
                    "with --resume and a lower --lr, or set --clip")
        else:
            then = "; no epoch finished with finite weights: train again with a lower --lr, or set --clip"
        super().__init__(f"training diverged: {where}{then}")


class Callback:
    """Hooks called by :class:`Trainer`; set ``trainer.stop_training = True`` to stop."""

    def on_epoch_end(self, trainer: "Trainer", logs: dict) -> None:
        pass


class LambdaCallback(Callback):
    def __init__(self, on_epoch_end: Callable[["Trainer", dict], None]):
        self._fn = on_epoch_end

    def on_epoch_end(self, trainer, logs):
        self._fn(trainer, logs)


def make_optimizer(params, tc: TrainConfig) -> torch.optim.Optimizer:
    if tc.optimizer == "adam":
        return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    if tc.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.SGD(params, lr=tc.lr, momentum=0.9, weight_decay=tc.weight_decay)


def lr_factor(tc: TrainConfig, step: int, progress: float) -> float:
    """The learning rate's multiplier at optimizer ``step``, ``progress`` (0..1) into training.

    Linear warm-up over ``tc.warmup`` steps, then constant, or a cosine decay
    from 1 to ``tc.lr_floor`` (by default :data:`COSINE_FLOOR`, a tenth) as
    ``progress`` goes from 0 to 1 ("cosine"),
    or held at 1 and then the same decay over the last :data:`WSD_DECAY` of
    training ("wsd": warm-up, stable, decay), which keeps the rate high for
    longer when the budget is a fixed time.
    """
    if step < tc.warmup:
        return (step + 1) / tc.warmup
    p = min(max(progress, 0.0), 1.0)
    if tc.schedule == "wsd":
        p = max(0.0, (p - (1 - WSD_DECAY)) / WSD_DECAY)
    elif tc.schedule != "cosine":
        return 1.0
    return tc.lr_floor + (1 - tc.lr_floor) * 0.5 * (1 + math.cos(math.pi * p))


def detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def write_history(path: str, rows: list[dict], fields=HISTORY_FIELDS) -> None:
    """``history.csv``: one row per epoch (or validation period), the columns ``fields``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    artifacts.atomic_write_text(path, buf.getvalue())


def _tensors(batch: tuple, device: torch.device | None = None) -> tuple:
    """A batch maker's numpy arrays as tensors (sharing their memory); flags pass as they are. On a GPU
    ``device``, copied there from pinned memory without waiting (the copy overlaps the computation)."""
    out = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in batch)
    if device is None or device.type == "cpu":
        return out
    return tuple(a.pin_memory().to(device, non_blocking=True) if torch.is_tensor(a) else a for a in out)


def autocast(device: torch.device | None, precision: str = "auto", training: bool = True):
    """The products of a pass in bfloat16 (the recurrent and linear layers; the loss in float32): on a GPU
    unless ``precision`` is float32; on a CPU only the training passes of ``precision`` bfloat16 (its
    validation stays float32, as the model will be scored); otherwise nothing."""
    import contextlib

    on_gpu = device is not None and device.type == "cuda"
    if precision == "float32" or not (on_gpu or (precision == "bfloat16" and training)):
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if on_gpu else "cpu", dtype=torch.bfloat16)


class Trainer:
    """Trains one network on batches, through a loss hook; knows nothing of what the network models.

    ``loss(batch, state)`` turns one batch (a batch maker's tuple, its numpy
    arrays made tensors) into ``(summed_loss, count, metrics, new_state)``:
    the loss summed over the ``count`` events (or weighted items) of the
    batch, a dict of metrics summed over them too (the history reports each
    divided by the count, with ``val_`` in front for validation), and the
    state the next batch of the same pass receives (``None`` at the start of
    every pass; the trainer detaches it). The trainer steps the optimiser on
    ``summed_loss / count``.

    ``validation_metrics(summary)``, if given, is called after each
    validation pass with that pass's ``{"loss": .., metric: ..}`` and
    returns extra history fields (``{"val_f1": ..}``).

    ``model_config`` (a dataclass or dict) and ``vocabulary`` are written in
    the checkpoint; resuming with others is refused.
    """

    def __init__(self, net: torch.nn.Module, tc: TrainConfig, loss: LossHook, *,
                 validation_metrics: Callable[[dict], dict] | None = None, model_config=None,
                 vocabulary: list[str] | None = None, model_dir: str | None = None, callbacks=(), verbose: int = 1,
                 on_best: Callable[[], None] | None = None, history_fields: tuple[str, ...] = HISTORY_FIELDS):
        self.net, self.tc = net, tc
        self.loss = loss
        self.validation_metrics = validation_metrics
        self.model_config = (asdict(model_config) if is_dataclass(model_config) else dict(model_config or {}))
        self.model_dir = model_dir
        self.callbacks = list(callbacks)
        self.verbose = verbose
        self.on_best = on_best
        self.history_fields = history_fields
        self.optimizer = make_optimizer(net.parameters(), tc)
        self.history: list[dict] = []
        self.best_loss = math.inf
        self.best_state: dict | None = None
        self.bad_epochs = 0
        self.epoch = 0
        self.step = 0  # optimizer steps taken, for the schedule and --eval-every
        self.total_steps = 0  # planned steps (epochs x batches), set by fit
        self.started = time.perf_counter()
        self.stop_training = False
        self.rng = np.random.default_rng(tc.seed)
        self.vocabulary = vocabulary
        # What the run validates on (set by the caller: validation_fingerprint); a resume with other
        # validation data would compare its losses with the best one of other data: refused.
        self.validation: dict | None = None
        # --minutes bounds training and its last validation; reserve_seconds (set by the caller) more
        # of it is kept for the work after fit (the CLI's calibration and saving).
        self.reserve_seconds = 0.0
        self.val_seconds: float | None = None  # the last validation's duration
        self._val_events, self._val_guess = 0, 0.0
        self.checkpoint_epoch: int | None = None  # the epoch of the last checkpoint written or read
        self.group = distributed.current()  # the processes training together (one, unless torchrun started more)
        self.device: torch.device | None = None  # where batches go (None: where they are, the CPU)

    # --- checkpoints -------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> str | None:
        return os.path.join(self.model_dir, artifacts.CHECKPOINT) if self.model_dir else None

    def save_checkpoint(self) -> str | None:
        folder = self.checkpoint_dir
        if folder is None or not self.group.writer:
            return folder
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        if self.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in self.best_state.items()})
        opt = self.optimizer.state_dict()
        scalars = {}
        for pid, st in opt["state"].items():
            for name, val in st.items():
                if torch.is_tensor(val):
                    tensors[f"opt.{pid}.{name}"] = val
                else:
                    scalars[f"{pid}.{name}"] = val
        tensors["rng.torch"] = torch.get_rng_state()
        state = {
            "epoch": self.epoch, "step": self.step, "history": self.history, "best_loss": self.best_loss,
            "bad_epochs": self.bad_epochs, "param_groups": opt["param_groups"], "opt_scalars": scalars,
            "numpy_rng": self.rng.bit_generator.state,
            "model_config": self.model_config, "train_config": asdict(self.tc), "vocabulary": self.vocabulary,
        }
        if self.validation is not None:
            state["validation"] = self.validation
        os.makedirs(folder, exist_ok=True)
        # One file, renamed into place: weights, optimiser and state of the same epoch, or the old one whole.
        artifacts.save_tensors(os.path.join(folder, CHECKPOINT_FILE), tensors,
                               {"seqrnn_checkpoint": json.dumps(state, default=_json_default)})
        for old in LEGACY_CHECKPOINT:  # an earlier seqrnn's pair, now out of date
            if os.path.exists(os.path.join(folder, old)):
                os.unlink(os.path.join(folder, old))
        self.checkpoint_epoch = self.epoch
        return folder

    def load_checkpoint(self) -> bool:
        folder = self.checkpoint_dir
        if folder is None:
            return False
        from .errors import InputError, ModelFileError

        path = os.path.join(folder, CHECKPOINT_FILE)
        if os.path.isfile(path):
            state, tensors = read_checkpoint(path)
        elif os.path.isfile(os.path.join(folder, "state.json")):  # written by an earlier seqrnn
            state = artifacts.read_json(os.path.join(folder, "state.json"), ModelFileError, "checkpoint")
            tensors = None
        else:
            return False
        try:
            self._restore(folder, state, tensors)
        except (InputError, ModelFileError):
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            # A damaged checkpoint: the same network and optimiser must come back, or none.
            raise ModelFileError(f"checkpoint is damaged ({type(exc).__name__}: {str(exc)[:200]}); train "
                                 "without resume to start again", folder) from None
        return True

    def _restore(self, folder: str, state: dict, arrays: dict | None = None) -> None:
        from .errors import InputError

        number = (int, float)
        if not isinstance(state, dict) or not all(
                isinstance(state.get(k), t) and not isinstance(state.get(k), bool) for k, t in (
                    ("epoch", int), ("step", int), ("bad_epochs", int), ("history", list),
                    ("opt_scalars", dict), ("param_groups", list), ("numpy_rng", dict))) \
                or state["epoch"] < 0 or not (state.get("best_loss") is None or isinstance(state["best_loss"], number)) \
                or not all(isinstance(row, dict) for row in state["history"]):
            raise ValueError("state.json is not a checkpoint's state")
        # Resuming continues the same run: the network, optimiser and vocabulary must match.
        saved = {**state.get("model_config", {}), "optimizer": state.get("train_config", {}).get("optimizer")}
        current = {**self.model_config, "optimizer": self.tc.optimizer}
        changed = sorted(k for k in current if saved.get(k) != current[k])
        if state.get("vocabulary") != self.vocabulary:
            changed.append("vocabulary (the training data)")
        saved_valid = state.get("validation")  # absent in an earlier seqrnn's checkpoint: not checked
        if isinstance(saved_valid, dict) and self.validation is not None \
                and saved_valid.get("sha256") != self.validation.get("sha256"):
            raise InputError(f"the checkpoint's run validated on {_validation_text(saved_valid)}, this one on "
                             f"{_validation_text(self.validation)}: its best epoch was chosen on other data; resume "
                             "with the same --validation (or none, if it had none), or train without --resume to "
                             "start again", folder, params=("validation_file", "resume"))
        if changed:
            raise InputError(f"the checkpoint was trained with other {', '.join(changed)}; "
                             "resume with the same data and settings, or train without resume", folder,
                             params=(*changed, "resume"))
        if arrays is None:
            arrays = artifacts.load_tensors(os.path.join(folder, "state.safetensors"))
        tensors = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        self.best_state = best or None
        opt_state: dict = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = v
        for k, v in state["opt_scalars"].items():
            pid, name = k.split(".", 1)
            opt_state.setdefault(int(pid), {})[name] = v
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
        for group in self.optimizer.param_groups:  # a new --lr or --weight-decay applies from here on
            group["lr"], group["weight_decay"] = self.tc.lr, self.tc.weight_decay
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
        self.rng.bit_generator.state = state["numpy_rng"]
        self.epoch = state["epoch"]
        self.step = state.get("step", 0)
        self.history = state["history"]
        self.best_loss = state["best_loss"] if state["best_loss"] is not None else math.inf
        self.bad_epochs = state["bad_epochs"]
        self.checkpoint_epoch = self.epoch

    def write_history(self) -> None:
        if self.model_dir and self.group.writer:
            write_history(os.path.join(self.model_dir, artifacts.HISTORY), self.history, self.history_fields)

    # --- the loop ----------------------------------------------------------------
    def run_epoch(self, data: BatchMaker, train: bool, deadline: float | None = None, bar=None,
                  valid: BatchMaker | None = None) -> dict:
        """One pass over ``data``; in training, every ``eval_every`` steps a validation closes a period."""
        net = self.net
        net.train(train)
        total_loss, n, sums = 0.0, 0, {}
        state = None
        t0 = time.perf_counter()
        grad = torch.enable_grad() if train else torch.inference_mode()
        n_batches = data.n_batches() if train else 0
        batches = 0
        scheduled = self.tc.schedule != "constant" or self.tc.warmup > 0

        def summary(seconds: float) -> dict:
            keys = sorted(sums)  # the group's sums: every process trained (or validated) its part
            tot, events, *vals = self.group.sum([total_loss, n, *(sums[k] for k in keys)])
            events = int(events)
            return {"loss": tot / max(events, 1), **{k: v / max(events, 1) for k, v in zip(keys, vals)},
                    "events": events, "seconds": seconds}

        with grad:
            for i, batch in enumerate(data.epoch(self.rng if train else None)):
                if train and scheduled:
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.tc.lr * lr_factor(self.tc, self.step, self._progress())
                with autocast(self.device, self.tc.precision, train):
                    loss, count, metrics, new_state = self.loss(_tensors(batch, self.device), state)
                value = float(loss.detach())
                if not math.isfinite(value):  # stop before the step: NaN weights are never saved
                    self._diverged(value)
                if train:
                    self.optimizer.zero_grad(set_to_none=True)
                    (loss * self.group.loss_scale(count)).backward()
                    if self.tc.clip > 0:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), self.tc.clip)
                    self.optimizer.step()
                    self.step += 1
                batches = i + 1
                state = detach(new_state)
                total_loss += value
                n += count
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0) + v
                if bar is not None:
                    bar.update(count)
                    bar.set_postfix_str(f"loss {total_loss / max(n, 1):.4f}", refresh=False)
                if deadline is not None and self.group.any(time.perf_counter() > deadline - self._final_validation(
                        n / max(time.perf_counter() - t0, 1e-9) if train else 0.0)):
                    self.stop_training = True
                    break
                if train and self.tc.eval_every and self.step % self.tc.eval_every == 0 and i + 1 < n_batches:
                    # A validation inside the epoch: one long text makes a long epoch.
                    self._end_period(summary(time.perf_counter() - t0), valid,
                                     round(self.epoch + (i + 1) / n_batches, 3))
                    total_loss, n, sums = 0.0, 0, {k: 0 for k in sums}
                    t0 = time.perf_counter()
                    net.train(True)  # validation and callbacks may have switched dropout off
                    if self.stop_training:
                        break
        return {**summary(time.perf_counter() - t0), "batches": batches}

    def fit(self, train: BatchMaker, valid: BatchMaker | None, resume: bool = False) -> list[dict]:
        resumed = False
        if resume:
            resumed = self.load_checkpoint()
            if resumed:
                if self.verbose:
                    print(f"resuming after epoch {self.epoch} from {self.checkpoint_dir}", file=sys.stderr)
            else:
                print(f"--resume: no checkpoint in {self.checkpoint_dir or '(no model directory)'}; training from "
                      "the start", file=sys.stderr)
        if self.group.writer:
            modeldir.begin(self.model_dir, "training")  # readers refuse the directory until it is finished
            modeldir.drop_detector(self.model_dir)  # an earlier one was learned for the weights this replaces
            if not resumed:  # a new training: an earlier run's checkpoint and history are not this one's
                modeldir.drop_training(self.model_dir)
        start = self.started = time.perf_counter()
        deadline = start + self.tc.minutes * 60 - self.reserve_seconds if self.tc.minutes > 0 else None
        self._val_events = len(valid) if valid is not None else 0
        self.total_steps = self.tc.epochs * train.n_batches()
        try:
            while self.epoch < self.tc.epochs and not self.stop_training:
                self._one_epoch(train, valid, deadline)
        except KeyboardInterrupt as exc:
            with deferred_signals():  # a second Ctrl-C or SIGTERM does not cut the checkpoint short
                folder = self.save_checkpoint()
                self.write_history()
            raise TrainingInterrupted(folder, getattr(exc, "signum", 2)) from None
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        return self.history

    def _one_epoch(self, train: BatchMaker, valid: BatchMaker | None, deadline: float | None) -> None:
        bar = None
        if self.verbose and sys.stderr.isatty() and self.group.writer:
            from tqdm import tqdm

            bar = tqdm(total=len(train), unit="ev", unit_scale=True, leave=False, dynamic_ncols=True,
                       desc=f"epoch {self.epoch + 1}/{self.tc.epochs}", file=sys.stderr)
        try:
            logs = self.run_epoch(train, True, deadline, bar, valid)
        finally:
            if bar is not None:
                bar.close()
        done, planned = logs.pop("batches"), train.n_batches()
        # An epoch cut short (--minutes, or early stopping inside it) is logged as the fraction it reached.
        label = self.epoch + 1 if done >= planned else round(self.epoch + done / max(planned, 1), 3)
        self.epoch += 1
        if logs["events"] or not self.tc.eval_every:
            self._end_period(logs, valid, label)
        else:
            self.save_checkpoint()

    def _progress(self) -> float:
        """How far training is, 0..1: by steps of the planned epochs, or by --minutes if sooner."""
        p = self.step / max(self.total_steps, 1)
        if self.tc.minutes > 0:
            budget = self.tc.minutes * 60 - self.reserve_seconds - self._final_validation(0.0)
            p = max(p, (time.perf_counter() - self.started) / max(budget, 1e-9))
        return p

    def _final_validation(self, train_rate: float) -> float:
        """Seconds the validation after the last step will take: the last one's with a quarter more
        for a machine that slows down, or before the first, a guess from the training rate (events/s;
        reading an event is about a third of training on it)."""
        if self.val_seconds is not None:
            return 1.25 * self.val_seconds
        if train_rate > 0 and self._val_events:
            self._val_guess = self._val_events / (3 * train_rate)
        return self._val_guess

    def _end_period(self, logs: dict, valid: BatchMaker | None, epoch: float) -> None:
        """Validate, keep the best weights, log a history row, call the callbacks, checkpoint."""
        logs = {"epoch": epoch, **logs,
                "events_per_second": logs["events"] / max(logs["seconds"], 1e-9),
                "lr": self.optimizer.param_groups[0]["lr"], "step": self.step,
                "time": time.perf_counter() - self.started}
        if valid is not None and len(valid):
            t0 = time.perf_counter()
            bar = None
            if self.verbose and sys.stderr.isatty():
                from tqdm import tqdm

                bar = tqdm(total=len(valid), unit="ev", unit_scale=True, leave=False, dynamic_ncols=True,
                           desc="validating", file=sys.stderr)
            try:
                v = self.run_epoch(valid, False, bar=bar)
            finally:
                if bar is not None:
                    bar.close()
            self.val_seconds = time.perf_counter() - t0
            for key in ("events", "seconds", "batches"):
                del v[key]
            logs.update({f"val_{k}": x for k, x in v.items()})
            if self.validation_metrics is not None:
                logs.update(self.validation_metrics(v))
            monitor = v["loss"]
        else:
            monitor = logs["loss"]
        if not math.isfinite(monitor) or not all(bool(torch.isfinite(p).all()) for p in self.net.parameters()):
            self._diverged(monitor if not math.isfinite(monitor) else float("nan"), math.ceil(epoch))
        self.history.append(logs)
        if monitor < self.best_loss - 1e-6:
            self.best_loss = monitor
            self.bad_epochs = 0
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            if self.on_best is not None and self.group.writer:
                self.on_best()
        else:
            self.bad_epochs += 1
            if self.tc.patience and self.bad_epochs >= self.tc.patience:
                self.stop_training = True
        if self.verbose and self.group.writer:
            print(format_logs(logs, self.tc), file=sys.stderr, flush=True)
        for cb in self.callbacks:
            cb.on_epoch_end(self, logs)
        self.write_history()
        self.save_checkpoint()

    def _diverged(self, value: float, epoch: int | None = None) -> None:
        """Stop: the last checkpoint (of the last epoch that ended finite) is kept as it is."""
        self.write_history()
        raise TrainingDiverged(value, epoch or self.epoch + 1, self.step, self.checkpoint_epoch,
                               self.checkpoint_dir if self.checkpoint_epoch else None)


CHECKPOINT_FILE = "checkpoint.safetensors"  # in checkpoint/: tensors, and the state as JSON in its metadata
LEGACY_CHECKPOINT = ("state.safetensors", "state.json")  # the pair an earlier seqrnn wrote


def validation_fingerprint(valid: list[np.ndarray], complete: list[bool], source: str = "") -> dict:
    """What a run validates on, for the checkpoint: ``source`` (a file, or "" for a split of the training
    data), the counts, and a hash of the encoded sequences and their ends."""
    h = hashlib.sha256()
    for ids, done in zip(valid, complete):
        h.update(np.asarray(ids, dtype=np.int64).tobytes())
        h.update(b"\x01" if done else b"\x00")
        h.update(b"|")
    return {"source": source, "sequences": len(valid), "events": int(sum(len(v) for v in valid)),
            "sha256": h.hexdigest()}


def _validation_text(v: dict) -> str:
    n = v.get("events")
    if not v.get("sequences"):
        return "no validation data"
    source = str(v.get("source") or "")
    where = ("the validation sequences given" if source.startswith("(") else f"--validation {source}") if source \
        else "a split of the training data"
    return f"{where} ({n:,} events)" if isinstance(n, int) else where


def read_checkpoint(path: str) -> tuple[object, dict]:
    """The state (parsed JSON) and the arrays of a checkpoint file; a damaged one is a ModelFileError."""
    from .errors import ModelFileError

    arrays = artifacts.load_tensors(path)
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(min(n, 100_000_000)))
        state = json.loads(header["__metadata__"]["seqrnn_checkpoint"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelFileError("checkpoint is damaged (no training state in it); train without resume to start "
                             "again", path) from None
    return state, arrays


class deferred_signals:
    """Within the block SIGINT and SIGTERM are ignored: a training that is stopping writes its
    checkpoint whole (the file is atomic either way; this keeps the new one)."""

    def __enter__(self):
        import signal
        import threading

        self.saved = None
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        import signal

        for s, handler in (self.saved or {}).items():
            signal.signal(s, handler)
        return False


BOOKKEEPING = ("epoch", "lr", "events", "events_per_second", "seconds", "step", "time")


def format_logs(logs: dict, tc: TrainConfig) -> str:
    """One history row as a line: the losses and metrics, then the speed."""
    short = {"accuracy": "acc", "topk_accuracy": f"top{tc.topk}", "val_topk_accuracy": f"val_top{tc.topk}"}
    # Under a time budget (--minutes) the epochs are a cap that is rarely reached: the time is the measure.
    parts = [f"epoch {logs['epoch']:>3}" + (f"/{tc.epochs}" if not tc.minutes else "")]
    if tc.minutes and "time" in logs:
        parts.append(f"{logs['time']:.0f}s of {tc.minutes * 60:.0f}s of training")
    parts += [f"{short.get(k, k)} {v:.4f}" for k, v in logs.items()
              if k not in BOOKKEEPING and isinstance(v, (int, float))]
    parts += [f"{logs['events_per_second']:,.0f} ev/s", f"{logs['seconds']:.1f}s"]
    return "  ".join(parts)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if torch.is_tensor(o):
        return o.item()
    raise TypeError(type(o))
