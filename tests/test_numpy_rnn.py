"""The numpy forward (seqrnn.models.numpy_rnn) gives torch's log-probabilities, and detection loads
and scores sessions without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seqrnn.config import ModelConfig
from seqrnn.data.batching import pad
from seqrnn.models.numpy_rnn import NumpyRNN, log_proba_batches
from seqrnn.models.rnn_net import RNNNet

V = 13


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 3])
def test_numpy_forward_matches_torch(cell, layers):
    torch.manual_seed(0)
    net = RNNNet(V, ModelConfig(cell=cell, layers=layers, hidden=24, embedding_dim=7)).eval()
    with torch.no_grad():  # biases away from zero, so that a bias misplaced shows
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    rng = np.random.default_rng(1)
    lengths = np.array([9, 1, 17, 4, 17, 12])  # unsorted, ties, a single event
    x = pad([rng.integers(2, V, n) for n in lengths])  # padded with PAD beyond each length
    with torch.inference_mode():
        want = torch.log_softmax(net(torch.from_numpy(x))[0], dim=-1).numpy()
    tensors = {k: v.numpy() for k, v in net.state_dict().items()}
    got = NumpyRNN(tensors, cell, layers).log_proba(x, lengths)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(got[row, :n], want[row, :n], atol=2e-5)
        assert not got[row, n:].any()  # nothing computed beyond a row's length
    # batches shared among threads come back in order, with the same values
    two = log_proba_batches(NumpyRNN(tensors, cell, layers), [(x, lengths), (x[:2, :9], lengths[:2])], threads=2)
    np.testing.assert_array_equal(two[0], got)
    np.testing.assert_allclose(two[1][0, :9], want[0, :9], atol=2e-5)


def test_detect_scores_sessions_without_torch(tmp_path):
    """A many-to-many model scores sessions in numpy: loading it and detecting never imports torch."""
    rng = np.random.default_rng(0)
    train = [" ".join(map(str, [1, 2] + list(rng.integers(3, 6, 4)) + [9])) for _ in range(60)]
    path = tmp_path / "train.txt"
    path.write_text("\n".join(train) + "\n")
    out = subprocess.run([sys.executable, "-m", "seqrnn", "train", str(path), "-m", str(tmp_path / "m"),
                          "--hidden", "8", "--embedding-dim", "4", "--epochs", "1", "--layers", "1",
                          "--threads", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    code = ("import sys\nfrom seqrnn.detect import Detector\n"
            f"d = Detector.load({str(tmp_path / 'm')!r})\n"
            f"f = d.decide(d.model.read([{str(path)!r}]))\n"
            "print(len(f.findings), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["60", "False"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_overflowing_weights_give_non_finite_values_without_warnings(cell):
    """Crafted weights that overflow float32 (finite in the file, so the loader's check lets them through)
    give what torch gives (infinities or NaNs included), with no RuntimeWarning lines on standard error:
    the scorer refuses values that are not finite in one line (seqrnn.score)."""
    import warnings

    net = RNNNet(V, ModelConfig(cell=cell, layers=2, hidden=8, embedding_dim=4)).eval()
    tensors = {k: (v.numpy() * 1e30).astype(np.float32) for k, v in net.state_dict().items()}
    assert all(np.isfinite(t).all() for t in tensors.values())
    x, lengths = pad([np.arange(2, 9), np.arange(3, 6)]), np.array([7, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning fails the test
        got = log_proba_batches(NumpyRNN(tensors, cell, 2), [(x, lengths), (x, lengths)], threads=2)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    with torch.inference_mode():
        want = torch.log_softmax(net(torch.from_numpy(x))[0], dim=-1).numpy()
    for row, n in enumerate(lengths):  # the same values, infinities and NaNs where torch has them
        np.testing.assert_allclose(got[0][row, :n], want[row, :n], rtol=1e-4)
        np.testing.assert_array_equal(got[1][row, :n], got[0][row, :n])


def test_a_saved_config_without_cell_loads_as_the_lstm_it_was(tmp_path):
    """Settings that name no cell were written when the LSTM was the default, and the loader's weight
    check reads them so; the model loads as that LSTM, not as a GRU of the new default (which scored
    LSTM weights as a GRU: a numpy broadcast error, a traceback)."""
    import json
    import os

    import seqrnn
    from seqrnn import RNNModel
    from conftest import TINY_SETTINGS, toy_session_lines

    seqs = [line.split(",")[1].split() for line in toy_session_lines(30)]
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 1, "cell": "lstm", "layers": 2}).fit(seqs)
    model.save(str(tmp_path / "m"))
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    del cfg["settings"]["cell"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    if (tmp_path / "m" / "status.json").exists():  # a directory from before status.json: no hashes
        os.remove(tmp_path / "m" / "status.json")
    loaded = seqrnn.load(str(tmp_path / "m"))
    assert loaded.model_config.cell == "lstm"
    ids, complete = model.encode(model.read(seqs[:5]))
    for a, b in zip(loaded.log_proba(ids, complete), model.log_proba(ids, complete)):
        np.testing.assert_array_equal(a, b)
