"""The layers every recurrent network here starts with: an event embedding and a stacked LSTM/GRU.

Each function builds one module, so a network that calls them in the order
it used to build its layers gets the same parameter names (its attribute
names) and, for a given seed, the same initial weights.
"""

from __future__ import annotations

from torch import nn

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
