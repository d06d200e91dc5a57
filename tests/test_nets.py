"""The networks build their embedding and RNN through models/nets.py without changing a weight.

Each net is compared with the same layers built directly with torch.nn, in
the order the net builds them: the same seed must give the same parameter
names and the same initial weights, so saved models load and runs repeat.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from seqrnn.config import ModelConfig
from seqrnn.data.vocab import PAD
from seqrnn.models.context import ContextNet
from seqrnn.models.nets import embedding, recurrent
from seqrnn.models.rnn_net import RNNNet

V = 11
CONFIGS = [ModelConfig(cell=cell, layers=layers, hidden=8, embedding_dim=5, dropout=0.3, bidirectional=bi)
           for cell in ("lstm", "gru") for layers in (1, 2) for bi in (False, True)]


def _rnn(mc: ModelConfig, bidirectional: bool) -> nn.Module:
    cls = nn.LSTM if mc.cell == "lstm" else nn.GRU
    return cls(mc.embedding_dim, mc.hidden, num_layers=mc.layers, batch_first=True,
               dropout=mc.dropout if mc.layers > 1 else 0.0, bidirectional=bidirectional)


def _rnn_net_reference(mc: ModelConfig) -> dict:
    m = nn.Module()
    m.embed = nn.Embedding(V, mc.embedding_dim, padding_idx=PAD)
    m.rnn = _rnn(mc, mc.bidirectional)
    m.head = nn.Linear(mc.hidden * (2 if mc.bidirectional else 1), V)
    return m.state_dict()


def _context_net_reference(mc: ModelConfig) -> dict:
    m = nn.Module()
    m.embed = nn.Embedding(V, mc.embedding_dim, padding_idx=PAD)
    m.fwd = _rnn(mc, False)
    m.bwd = _rnn(mc, False)
    m.head = nn.Linear(2 * mc.hidden, V)
    return m.state_dict()


@pytest.mark.parametrize("net,reference", [(RNNNet, _rnn_net_reference), (ContextNet, _context_net_reference)],
                         ids=["RNNNet", "ContextNet"])
@pytest.mark.parametrize("mc", CONFIGS, ids=lambda mc: f"{mc.cell}-{mc.layers}-bi{int(mc.bidirectional)}")
def test_nets_keep_their_names_and_initial_weights(net, reference, mc):
    torch.manual_seed(3)
    want = reference(mc)
    torch.manual_seed(3)
    got = net(V, mc).state_dict()
    assert list(got) == list(want)
    for k, w in want.items():
        assert torch.equal(got[k], w), k


def test_helpers():
    e = embedding(V, 4)
    assert e.padding_idx == PAD and not e.weight[PAD].any()
    r = recurrent("gru", 4, 6, 1, 0.5, bidirectional=True)
    assert isinstance(r, nn.GRU) and r.batch_first and r.bidirectional and r.dropout == 0.0
    assert recurrent("lstm", 4, 6, 2, 0.5).dropout == 0.5
    with pytest.raises(ValueError, match="cell"):
        recurrent("rnn", 4, 6, 1, 0.0)
