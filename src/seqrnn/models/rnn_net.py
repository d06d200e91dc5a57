"""The recurrent next-event network and its training loss (torch): embedding -> stacked LSTM/GRU -> linear.

:class:`~seqrnn.models.rnn.RNNModel` trains it; scoring sessions on the CPU
runs the same weights in numpy (:mod:`seqrnn.models.numpy_rnn`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..data.vocab import PAD
from .nets import embedding, recurrent, run_recurrent


class RNNNet(nn.Module):
    def __init__(self, vocab_size: int, mc: ModelConfig):
        super().__init__()
        self.embed = embedding(vocab_size, mc.embedding_dim)
        self.bidirectional = mc.bidirectional
        self.rnn = recurrent(mc.cell, mc.embedding_dim, mc.hidden, mc.layers, mc.dropout, mc.bidirectional)
        self.drop = nn.Dropout(mc.dropout)
        self.weight_drop = mc.weight_drop
        self.head = nn.Linear(mc.hidden * (2 if mc.bidirectional else 1), vocab_size)

    def forward(self, x: torch.Tensor, state=None):
        out, state = run_recurrent(self.rnn, self.drop(self.embed(x)), state, self.weight_drop)
        if self.bidirectional:
            # Many-to-one window encoder: the forward pass at the window's end, the backward pass at its
            # start (each has read the whole window); the target lies after the window, unseen.
            h = out.shape[-1] // 2
            out = torch.cat((out[:, -1:, :h], out[:, :1, h:]), dim=-1)
        return self.head(self.drop(out)), state


def next_event_loss(net: nn.Module, topk: int, last_only: bool = False):
    """The trainer's loss hook for next-event networks: ``(x, y, carry)`` batches -> summed cross-entropy.

    Its metrics count the targets predicted first (``accuracy``) and within
    the ``topk`` most likely (``topk_accuracy``). The recurrent state runs on
    into the next batch where the batch says so (a stream's chunks).
    ``last_only``: the logits of the last position alone are scored (a
    many-to-one window predicts the event after it).
    """

    def loss(batch, state):
        x, y, carry = batch
        logits, new_state = net(x, state if carry else None)
        if last_only:
            logits = logits[:, -1:, :]
        flat = logits.reshape(-1, logits.shape[-1])
        target = y.reshape(-1)
        mask = target != PAD
        summed = F.cross_entropy(flat, target, ignore_index=PAD, reduction="sum")
        with torch.no_grad():
            true_logit = flat.gather(1, target[:, None])
            rank = (flat > true_logit).sum(1)  # 0: the true event has the highest logit
            metrics = {"accuracy": int(((rank == 0) & mask).sum()),
                       "topk_accuracy": int(((rank < topk) & mask).sum())}
        return summed, int(mask.sum()), metrics, new_state if carry else None

    return loss
