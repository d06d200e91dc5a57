"""``seqrnn predict`` and ``evaluate`` on events the model never saw: shown as they were read."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_SETTINGS, run_cli, write_toy_sessions


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from seqrnn.models.rnn import RNNModel

    root = tmp_path_factory.mktemp("pred")
    train = write_toy_sessions(root / "train", n=40, seed=1)
    RNNModel(**{**TINY_SETTINGS, "epochs": 1}).fit(str(train), model_dir=str(root / "model"), verbose=0)
    return root / "model"


def test_predict_shows_an_unseen_event_as_it_was_read(capsys, model, tmp_path):
    """The true event of an unseen token was printed as '<unk>' (an input token named '<unk>' read the same),
    so the line did not say which event of the input it was; now the token as read, marked unseen."""
    data = tmp_path / "d"
    data.write_text("q1,a zz <unk> b\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "predict", model, data, "--json")
    assert code == 0, err
    row = json.loads(out)
    assert row["true"] == ["a", "zz", "<unk>", "b", "<end>"] and row["unseen"] == [1, 2]
    code, out, err = run_cli(capsys, "predict", model, data)
    assert code == 0, err
    lines = out.splitlines()[2:]
    assert lines[1].split()[1] == "zz" and lines[1].endswith("<- never seen in training")
    assert lines[2].split()[1] == "<unk>" and lines[2].endswith("<- never seen in training")
    assert "never seen" not in lines[0] + lines[3]
