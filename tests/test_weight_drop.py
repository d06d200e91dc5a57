"""Weight drop (``weight_drop``): DropConnect on the recurrent weights while training, none in evaluation."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from seqrnn.config import ModelConfig
from seqrnn.models.context import ContextNet
from seqrnn.models.nets import recurrent, run_recurrent
from seqrnn.models.rnn_net import RNNNet


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_drops_a_share_of_the_recurrent_weights_and_evaluation_none(cell):
    torch.manual_seed(0)
    rnn = recurrent(cell, 4, 32, 2, 0.0)
    x = torch.randn(3, 7, 4)
    plain, _ = rnn(x)
    rnn.eval()
    same, _ = run_recurrent(rnn, x, None, 0.5)
    assert torch.equal(same, plain)  # evaluation: the weights as they are
    rnn.train()
    a, _ = run_recurrent(rnn, x, None, 0.5)
    b, _ = run_recurrent(rnn, x, None, 0.5)
    assert not torch.allclose(a, plain) and not torch.allclose(a, b)  # a new mask each call
    a.sum().backward()
    for name, w in rnn.named_parameters():
        zero = float((w.grad == 0).float().mean())
        if name.startswith("weight_hh"):
            assert 0.4 < zero < 0.6, (name, zero)  # the dropped half gets no gradient
        else:
            assert zero < 0.05, (name, zero)
    # The module's own weights are untouched and used again after a dropped call.
    again, _ = rnn(x)
    assert torch.equal(again, plain)


def test_no_weight_drop_is_the_plain_forward_pass():
    torch.manual_seed(1)
    rnn = recurrent("lstm", 4, 8, 2, 0.0)
    x = torch.randn(2, 5, 4)
    state = (torch.randn(2, 2, 8), torch.randn(2, 2, 8))
    want, (h, c) = rnn(x, state)
    got, (h2, c2) = run_recurrent(rnn, x, state, 0.0)
    assert torch.equal(got, want) and torch.equal(h, h2) and torch.equal(c, c2)


@pytest.mark.parametrize("net", [RNNNet, ContextNet])
def test_the_nets_drop_weights_only_while_training(net):
    torch.manual_seed(2)
    n = net(9, ModelConfig(cell="lstm", layers=2, hidden=16, embedding_dim=4, weight_drop=0.6))
    x = torch.randint(1, 9, (3, 6))
    n.eval()
    e1, e2 = n(x)[0], n(x)[0]
    assert torch.equal(e1, e2)
    n.train()
    assert not torch.allclose(n(x)[0], e1)


def test_weight_drop_must_be_a_fraction_below_one():
    from seqrnn.models.rnn import RNNModel

    with pytest.raises(ValueError, match=r"weight_drop must be in \[0, 1\), not 1.0"):
        RNNModel("text", weight_drop=1.0)


def test_a_model_trained_with_weight_drop_saves_loads_and_says_so(tmp_path):
    import seqrnn
    from seqrnn.models.rnn import RNNModel

    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 60)
    m = RNNModel("text", layers=1, hidden=16, embedding_dim=8, chunk=20, batch_size=4, epochs=2, weight_drop=0.3,
                 threads=1, seed=0)
    m.fit(str(text), format="text")
    m.save(str(tmp_path / "m"))
    back = seqrnn.load(str(tmp_path / "m"))
    assert back.model_config.weight_drop == 0.3
    assert "weight drop 0.3" in back.describe()[0]
    ids = [m.vocab_.encode(list("the lazy dog"))]
    a, b = m.log_proba(ids, [False]), back.log_proba(ids, [False])
    assert all(torch.allclose(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(a, b))


def test_a_crafted_weight_drop_in_a_model_folder_is_refused(tmp_path, capsys):
    from conftest import run_cli

    from seqrnn.models.rnn import RNNModel

    text = tmp_path / "t.txt"
    text.write_text("abcabcabd\n" * 30)
    m = RNNModel("text", layers=1, hidden=8, embedding_dim=4, chunk=10, batch_size=2, epochs=1, threads=1)
    m.fit(str(text), format="text")
    m.save(str(tmp_path / "m"))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["settings"]["weight_drop"] = 7
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    code, _, err = run_cli(capsys, "info", tmp_path / "m")
    assert code == 2 and "config.json" in err and "settings.weight_drop" in err, err


def test_a_weight_drop_in_a_classifiers_folder_is_a_setting_it_does_not_take(tmp_path, capsys):
    from conftest import run_cli, write_toy_sessions

    normal = write_toy_sessions(tmp_path / "n.txt")
    abnormal = tmp_path / "a.txt"
    abnormal.write_text(normal.read_text().replace(" c", " e e c"))
    code, _, err = run_cli(capsys, "classify", "train", "--normal", normal, "--abnormal", abnormal, "-m",
                           tmp_path / "m", "--layers", "1", "--hidden", "8", "--epochs", "1", "--threads", "1")
    assert code == 0, err
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["settings"]["weight_drop"] = "x"  # was checked as if the classifier had one: "must be a finite number"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    code, _, err = run_cli(capsys, "info", tmp_path / "m")
    assert code == 2 and "unexpected keyword argument(s) weight_drop" in err and len(err.splitlines()) == 1, err
