"""The recurrent next-event model: embedding -> stacked LSTM/GRU -> linear.

One network serves both mappings of the original project. Many-to-many
reads a whole sequence once and predicts the next event at every position;
many-to-one reads a window of ``window`` events and predicts the one after
it (DeepLog). Scoring is batched either way: one forward pass per distinct
sequence, or one batched pass over all windows.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict
from dataclasses import fields

import numpy as np

from ..config import LEGACY_SETTINGS, ModelConfig, TrainConfig, make_configs
from ..data.batching import Windows, inputs_targets, length_buckets, next_event_batches, pad
from ..data.vocab import BOS, PAD
from ..progress import human
from .base import SequenceModel, register
from ..runtime import scoring_threads
from .numpy_rnn import NumpyRNN, log_proba_batches

SCORE_TOKENS = 1 << 16  # padded events in one scoring batch
STREAM_CHUNK = 4096  # events per forward pass when scoring a long stream


def bits_per_event(validation: dict) -> dict:
    """The trainer's validation hook: the validation loss in bits per event."""
    return {"val_bits": validation["loss"] / math.log(2)}


@register
class RNNModel(SequenceModel):
    """A stacked LSTM/GRU next-event model.

    Parameters are those of :class:`~seqrnn.config.ModelConfig` and
    :class:`~seqrnn.config.TrainConfig`, on top of an optional ``preset``
    (``"deeplog"`` or ``"seed"``).

    >>> model = RNNModel(preset="deeplog", epochs=5).fit("train.txt")  # doctest: +SKIP
    """

    kind = "rnn"

    def __init__(self, preset: str | None = None, **settings):
        known = {f.name for f in fields(ModelConfig) + fields(TrainConfig)} | set(LEGACY_SETTINGS)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}")
        self.preset = preset
        self.model_config, self.train_config = make_configs(preset, **settings)

    # --- settings ---------------------------------------------------------------
    def _settings(self) -> dict:
        return {**asdict(self.model_config), **asdict(self.train_config)}

    def _validation_fraction(self) -> float:
        return self.train_config.validation_split

    def _seed(self) -> int:
        return self.train_config.seed

    def _min_count(self) -> int:
        return self.train_config.min_count

    def set_threads(self) -> None:
        if self.train_config.threads > 0:
            import torch

            torch.set_num_threads(self.train_config.threads)

    # --- fitting --------------------------------------------------------------
    def _fit(self, train, train_complete, valid, valid_complete, *, model_dir=None, resume=False, callbacks=(),
             verbose=0, batches=None):
        import torch

        from .. import distributed
        from ..runtime import resolve_device
        from ..train import Trainer
        from .rnn_net import next_event_loss

        mc, tc = self.model_config, self.train_config
        self.set_threads()
        self._check_memory(train, train_complete)
        device = resolve_device(tc.device)
        group = distributed.setup(device)  # torchrun's process group, or a group of one
        torch.manual_seed(tc.seed)
        self.net_ = self._make_net().to(device)
        if batches is None:
            train_b = self._batches(train, train_complete, training=True)
            valid_b = self._batches(valid, valid_complete, training=False) if valid else None
            if group.size > 1:  # each process trains its rows of every batch (seqrnn.distributed)
                train_b = distributed.RankBatches(train_b, group)
        else:  # shards: the training maker deals them to the processes itself
            train_b, valid_b = batches
        if group.size > 1 and valid_b is not None:
            valid_b = distributed.RankBatches(valid_b, group)
        on_best = (lambda: self._save_files(model_dir)) if model_dir and group.writer else None  # not yet finished
        loss = next_event_loss(distributed.wrap(self.net_, group), tc.topk, last_only=mc.mapping == "many-to-one")
        self.trainer_ = Trainer(self.net_, tc, loss, validation_metrics=bits_per_event, model_config=mc,
                                vocabulary=self.vocab_.itos, model_dir=model_dir, callbacks=callbacks,
                                verbose=verbose, on_best=on_best)
        self.trainer_.device = device
        if batches is None:  # a resume must validate on the same data (shards: their folder is checked)
            from ..train import validation_fingerprint

            given = getattr(self, "validation_unknown_", None) is not None
            source = (getattr(self, "_validation_source", "") or "(sequences given)") if given else ""
            self.trainer_.validation = validation_fingerprint(valid or [], valid_complete or [], source)
        self.compute_ = {"processes": group.size, "device": device.type, "threads": torch.get_num_threads()}
        self.history_ = self.trainer_.fit(train_b, valid_b, resume=resume)
        if group.size > 1:  # the trainer's loss held the DistributedDataParallel wrapper, and through it the
            # process group, for the model's lifetime: destroyed at interpreter exit, after the group was left,
            # a gloo thread still joinable aborted the process ('terminate called without an active exception')
            self.trainer_.loss = next_event_loss(self.net_, tc.topk, last_only=mc.mapping == "many-to-one")
        self.net_.to("cpu").eval()  # scoring and detection run on the CPU

    def fit(self, X, validation_data=None, *, format: str = "sessions", text_tokens: str = "chars",
            model_dir: str | None = None, resume: bool = False, callbacks=(), verbose: int = 0):
        """Train on normal sequences (paths, :class:`~seqrnn.data.formats.Sequence` list, or token lists).

        ``validation_data`` replaces the held-out split of ``X``. With
        ``model_dir`` the best epoch, ``history.csv`` and a checkpoint for
        ``resume`` are written there as training goes, and the finished
        model at the end. ``callbacks`` are :class:`~seqrnn.train.Callback`
        objects; ``verbose=1`` prints progress.
        """
        from .. import distributed, modeldir
        from ..data.shards import is_shards

        # one writer at a time, from before the data is read (torchrun's other ranks write nothing)
        writer = not (distributed.launched() and os.environ.get("RANK", "0") != "0")
        with modeldir.writing(model_dir if writer else None):
            if is_shards(X):
                return self._fit_shards(X, model_dir=model_dir, resume=resume, callbacks=callbacks, verbose=verbose)
            train, valid = self._prepare(X, validation_data, format, text_tokens)
            if verbose and self.validation_note():  # said before training, not after hours of it
                print(self.validation_note(), file=sys.stderr)
            t0 = time.perf_counter()
            self._fit(*self.encode(train), *self.encode(valid), model_dir=model_dir, resume=resume,
                      callbacks=callbacks, verbose=verbose)
            self._finish_fit(train, time.perf_counter() - t0)
            if model_dir and self.trainer_.group.writer:
                self.save(model_dir)
        return self

    def _fit_shards(self, folder, *, model_dir=None, resume=False, callbacks=(), verbose=0):
        """Train on a folder of shards (``seqrnn encode``), read shard by shard (seqrnn.data.shards)."""
        from .. import distributed
        from ..data.shards import ShardBatches, ShardSet
        from ..errors import InputError

        shards = ShardSet(folder)
        if not shards.events("train"):
            raise InputError("the training shards hold no events", folder)
        self.vocab_ = shards.vocabulary(self._min_count())
        self.format_, self.text_tokens_ = shards.data_format, shards.text_tokens
        self.validation_unknown_ = None  # the folder's held-out part, encoded with this vocabulary
        table = shards.remap(self.vocab_)
        group = distributed.current() if distributed.current().size > 1 else None
        if group is None and distributed.launched():
            from ..runtime import resolve_device

            group = distributed.setup(resolve_device(self.train_config.device))
        train_b = ShardBatches(shards, "train", table, lambda i, c: self._batches(i, c, training=True), group)
        valid_b = (ShardBatches(shards, "valid", table, lambda i, c: self._batches(i, c, training=False))
                   if shards.events("valid") else None)
        t0 = time.perf_counter()
        self._fit(None, None, None, None, model_dir=model_dir, resume=resume, callbacks=callbacks,
                  verbose=verbose, batches=(train_b, valid_b))
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_train_sequences_ = shards.meta["sequences"]["train"]
        self.n_train_events_ = shards.events("train")
        self.fine_tuned_sequences_ = 0  # a new training, as _finish_fit's
        if model_dir and self.trainer_.group.writer:
            self.save(model_dir)
        return self

    def training_summary(self) -> dict:
        out = super().training_summary()
        out.update(getattr(self, "compute_", {}))  # processes, device, threads
        history = getattr(self, "history_", None) or []
        if history:
            key = "val_loss" if "val_loss" in history[-1] else "loss"
            best = min(history, key=lambda r: r.get(key, float("inf")))
            # how far training went: with validations inside epochs (--eval-every) there are more rows
            out.update(epochs=history[-1].get("epoch", len(history)), best_epoch=best["epoch"],
                       best_val_loss=best.get("val_loss"),
                       best_loss=best["loss"])
        else:
            out.update(getattr(self, "_loaded_training", {}) or {})
        return out

    def _check_memory(self, train, train_complete) -> None:
        """Refuse settings whose training cannot fit in memory, before anything is allocated."""
        from ..schema import check_training_memory

        mc, tc = self.model_config, self.train_config
        if train is None:  # shards: read shard by shard, their lengths unknown here; a chunk's worth
            train, train_complete = [], [False]
        longest = max((len(a) for a in train), default=tc.chunk) + 1
        if mc.mapping == "many-to-one":
            tokens = 32 * tc.batch_size * mc.window
        elif all(train_complete):
            tokens = tc.batch_size * longest
        else:
            tokens = tc.batch_size * min(tc.chunk, longest)
        check_training_memory(self.kind, self._settings(), len(self.vocab_), tokens,
                              params=("hidden", "embedding_dim", "layers", "batch_size", "window", "chunk"))

    #: The cell of a saved config that names none: LSTM, the default when such a file was written, and
    #: what seqrnn.schema checks its weights against (the GRU default is for new models only).
    SAVED_CELL = "lstm"

    @classmethod
    def _from_config(cls, config: dict, model_dir: str):
        settings = config.get("settings")
        if isinstance(settings, dict) and "cell" not in settings:
            config = {**config, "settings": {**settings, "cell": cls.SAVED_CELL}}
        return super()._from_config(config, model_dir)

    # --- weights ------------------------------------------------------------------
    # A loaded model keeps its weights as numpy arrays and builds the torch network (importing torch)
    # only when something asks for ``net_``: scoring sessions needs none (seqrnn.models.numpy_rnn).
    _net = None
    _weights: dict | None = None

    @property
    def net_(self):
        if self._net is None and self._weights is not None:
            import torch

            net = self._make_net()
            net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self._weights.items()})
            self._net, self._weights = net.eval(), None
        if self._net is None:
            raise AttributeError("net_")
        return self._net

    @net_.setter
    def net_(self, net) -> None:
        self._net, self._weights = net, None

    def _tensors(self) -> dict:
        """The weights as they are now, numpy arrays: those loaded, or the torch network's (not built for it)."""
        if self._net is None and self._weights is not None:
            return dict(self._weights)
        return {k: v.detach().to("cpu").float().numpy() for k, v in self.net_.state_dict().items()}

    def _make_net(self):
        from .rnn_net import RNNNet

        return RNNNet(len(self.vocab_), self.model_config)

    def _batches(self, ids, complete, training: bool):
        mc, tc = self.model_config, self.train_config
        return next_event_batches(ids, complete, mapping=mc.mapping, window=mc.window, batch_size=tc.batch_size,
                                  chunk=tc.chunk, training=training)

    def _load_tensors(self, tensors: dict) -> None:
        # Their names and shapes were checked against the config (seqrnn.schema) before they came here.
        self._net, self._weights = None, {k: np.asarray(v) for k, v in tensors.items()}

    def n_parameters(self) -> int:
        return int(sum(v.size for v in self._tensors().values()))

    def describe(self) -> list[str]:
        mc = self.model_config
        if mc.mapping == "many-to-one":
            reads = f"many-to-one (window {mc.window}{', bidirectional' if mc.bidirectional else ''})"
        else:
            reads = mc.mapping
        t = self.training_summary()
        apart = " (validation apart)" if t.get("best_val_loss") is not None else ""  # the train/report counts differ
        return [f"model      {self.kind}: {mc.layers}x{mc.hidden} {mc.cell.upper()}, embedding {mc.embedding_dim}, "
                f"dropout {mc.dropout}{f', weight drop {mc.weight_drop}' if mc.weight_drop else ''}, "
                f"{self._reads(reads)}",
                f"parameters {self.n_parameters():,}",
                *self._describe_data(),
                f"training   {human(t.get('sequences'))} sequence{'' if t.get('sequences') == 1 else 's'}, "
                f"{human(t.get('events'))} events{apart}, "
                f"{human(t.get('epochs'))} epochs, {human(t.get('seconds'), '.1f')}s; best val_loss "
                f"{human(t.get('best_val_loss'), '.4f')} (epoch {human(t.get('best_epoch'))})"]

    def _reads(self, mapping: str) -> str:
        return mapping

    # --- scoring -------------------------------------------------------------------
    def log_proba(self, ids_list, complete):
        if self.model_config.mapping == "many-to-one":
            return self._log_proba_windows(ids_list, complete)
        out: list[np.ndarray | None] = [None] * len(ids_list)
        short = []  # scored together in length buckets; long ones piece by piece
        for i, (ids, c) in enumerate(zip(ids_list, complete)):
            if len(ids) > STREAM_CHUNK:
                out[i] = self._log_proba_long(ids, c)
            elif len(ids) or c:
                short.append(i)
            else:  # an empty unfinished sequence has no event to score
                out[i] = np.zeros((0, len(self.vocab_)), np.float32)
        if not short:
            return out
        pairs = {i: inputs_targets(ids_list[i], complete[i]) for i in short}
        lengths = np.array([len(pairs[i][0]) for i in short])
        batches = [[short[j] for j in batch] for batch in length_buckets(lengths, 4096, None, max_tokens=SCORE_TOKENS)]
        logps = log_proba_batches(self._numpy_net(), ((pad([pairs[i][0] for i in idx]),
                                                       np.array([len(pairs[i][0]) for i in idx])) for idx in batches),
                                  scoring_threads())
        for idx, logp in zip(batches, logps):
            for row, i in enumerate(idx):
                out[i] = logp[row, : len(pairs[i][1])]
        return out

    def _numpy_net(self):
        """The network as it is now, in numpy (seqrnn.models.numpy_rnn)."""
        return NumpyRNN(self._tensors(), self.model_config.cell, self.model_config.layers)

    def _log_proba_long(self, ids, complete):
        state = self.stream_start()
        parts = []
        for start in range(0, len(ids), STREAM_CHUNK):
            lp, state = self.stream_step(ids[start:start + STREAM_CHUNK], state)
            parts.append(lp)
        if complete:
            parts.append(self.stream_end(state))
        return np.concatenate(parts)

    def _log_proba_windows(self, ids_list, complete):
        import torch

        self.net_.eval()
        ws = Windows(ids_list, complete, self.model_config.window)
        chunks = []
        step = max(1, SCORE_TOKENS // ws.window)
        for start in range(0, len(ws), step):
            with torch.inference_mode():
                logits, _ = self.net_(torch.from_numpy(ws.x(slice(start, start + step))))
            chunks.append(torch.log_softmax(logits[:, -1].float(), dim=-1).numpy())
        logp = np.concatenate(chunks) if chunks else np.zeros((0, len(self.vocab_)), np.float32)
        bounds = np.cumsum([0] + ws.counts)
        return [logp[bounds[i]:bounds[i + 1]] for i in range(len(ws.counts))]

    # --- streaming: state carried from piece to piece --------------------------------
    def stream_start(self):
        if self.model_config.mapping == "many-to-one":
            hist = np.full(self.model_config.window, PAD, dtype=np.int64)
            hist[-1] = BOS
            return {"window": hist}
        return {"prev": BOS, "rnn": None}

    def stream_step(self, ids, state):
        """Log-probabilities of ``ids`` (each given all events before it), and the new state."""
        import torch

        with torch.inference_mode():
            return self._stream_step(np.asarray(ids, dtype=np.int64), state)

    def _stream_step(self, ids, state):
        import torch

        self.net_.eval()
        if len(ids) == 0:
            return np.zeros((0, len(self.vocab_)), np.float32), state
        if self.model_config.mapping == "many-to-one":
            w = self.model_config.window
            seq = np.concatenate((state["window"], ids))
            x = np.lib.stride_tricks.sliding_window_view(seq, w)[: len(ids)].copy()
            logits, _ = self.net_(torch.from_numpy(x))
            lp = torch.log_softmax(logits[:, -1].float(), dim=-1).numpy()
            return lp, {"window": seq[-w:].copy()}
        x = np.concatenate(([state["prev"]], ids[:-1]))
        logits, rnn_state = self.net_(torch.from_numpy(x)[None], state["rnn"])
        lp = torch.log_softmax(logits[0].float(), dim=-1).numpy()
        return lp, {"prev": int(ids[-1]), "rnn": rnn_state}
