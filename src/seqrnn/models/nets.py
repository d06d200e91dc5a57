"""The layers every recurrent network here starts with: an event embedding and a stacked LSTM/GRU.

Each function builds one module, so a network that calls them in the order
it used to build its layers gets the same parameter names (its attribute
names) and, for a given seed, the same initial weights.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..data.vocab import PAD

CELL_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU}


def embedding(vocab_size: int, dim: int) -> nn.Embedding:
    """Event ids -> ``dim``-vectors; the padding id maps to zeros and gets no gradient."""
    return nn.Embedding(vocab_size, dim, padding_idx=PAD)


def recurrent(cell: str, input_size: int, hidden: int, layers: int, dropout: float,
              bidirectional: bool = False) -> nn.LSTM | nn.GRU:
    """A batch-first stack of ``layers`` LSTM or GRU layers, ``dropout`` between them (none with one layer)."""
    if cell not in CELL_MODULES:
        raise ValueError(f"cell must be one of {tuple(CELL_MODULES)}, not {cell!r}")
    return CELL_MODULES[cell](input_size, hidden, num_layers=layers, batch_first=True,
                              dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional)


def run_recurrent(rnn: nn.LSTM | nn.GRU, x, state=None, weight_drop: float = 0.0):
    """``rnn(x, state)``; while training with ``weight_drop`` > 0, through its recurrent (hidden-to-hidden)
    weights with that fraction dropped and the rest scaled up (DropConnect, as AWD-LSTM's weight drop):
    one mask for the whole batch and every step of it. Evaluation uses the weights as they are."""
    if not (rnn.training and weight_drop > 0):
        return rnn(x, state)
    dropped = {n: F.dropout(w, weight_drop, training=True) for n, w in rnn.named_parameters()
               if n.startswith("weight_hh")}
    return functional_call(rnn, dropped, (x, state))
