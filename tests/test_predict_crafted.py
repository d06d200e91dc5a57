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


@pytest.mark.parametrize("command", ["evaluate", "evaluate-detection"])
def test_evaluations_of_input_the_model_cannot_read_say_so(capsys, model, tmp_path, command):
    """Given text or another numbering, evaluate printed a loss and evaluate-detection metrics with no word
    that nearly every event was unknown to the model (detect's summary says it); now both say it."""
    from seqrnn.detect import Detector

    Detector(seqrnn_load(model)).fit(str(model.parent / "train")).save(str(model))
    other = tmp_path / "other"
    other.write_text("q1,x y z a\nq2,x x y\n", encoding="utf-8")
    known = tmp_path / "known"
    known.write_text("k1,a b c d\n", encoding="utf-8")
    known2 = tmp_path / "known2"
    known2.write_text("k2,a b c d\n", encoding="utf-8")
    other2 = tmp_path / "other2"
    other2.write_text("q3,x y z a\nq4,x x y\n", encoding="utf-8")
    argv = {"evaluate": [model, other], "evaluate-detection": [model, "--normal", other, "--abnormal", other2]}
    code, out, err = run_cli(capsys, command, *argv[command])
    assert code == 0 and out, err
    assert "note: 86% of the events read are unknown to the model (it was trained on sessions" in err, err  # 6 of 7
    argv = {"evaluate": [model, known], "evaluate-detection": [model, "--normal", known, "--abnormal", known2]}
    code, out, err = run_cli(capsys, command, *argv[command])
    assert code == 0 and "unknown to the model" not in err, err


def seqrnn_load(path):
    from seqrnn.models.base import load

    return load(str(path))


def test_predict_limit_counts_positions_of_text_and_streams_sequences_of_sessions(capsys, model, tmp_path):
    """--limit counted sequences, and a text file (or a stream) is one sequence, so predict listed every
    character of a text; for text and streams it now counts the positions shown (default 100)."""
    import random

    from seqrnn.data.formats import read_sequences

    rng = random.Random(0)
    text = tmp_path / "t.txt"
    text.write_text("".join(rng.choice(["the cat ", "a dog ", "sat on ", "the mat\n"]) for _ in range(60)))
    stream = tmp_path / "s.txt"
    stream.write_text("".join(rng.choice("abcd") + "\n" for _ in range(300)))
    for data, fmt in ((text, "text"), (stream, "stream")):
        code, _, err = run_cli(capsys, "train", data, "--format", fmt, "--model", "markov", "-m", tmp_path / fmt, "-q")
        assert code == 0, err
        code, out, err = run_cli(capsys, "predict", tmp_path / fmt, data, "--limit", "7")
        assert code == 0, err
        rows = out.splitlines()[2:]
        assert [r.split()[0] for r in rows] == [str(p) for p in range(7)], out
        code, out, err = run_cli(capsys, "predict", tmp_path / fmt, data)  # the default: 100 positions
        assert code == 0 and len(out.splitlines()) == 2 + 100, err
        code, out, err = run_cli(capsys, "predict", tmp_path / fmt, data, "--limit", "3", "--json")
        assert code == 0 and len(json.loads(out)["true"]) == 3, err
        code, out, err = run_cli(capsys, "predict", tmp_path / fmt, data, "--limit", "0", "--json")
        assert code == 0 and len(json.loads(out)["true"]) == len(read_sequences([str(data)], fmt)[0]) >= 300, err
    assert json.loads(out)["true"][:3] == stream.read_text().split()[:3]
    # two streams read apart: the positions are counted across them
    other = tmp_path / "s2.txt"
    other.write_text("a\nb\nc\n")
    code, out, err = run_cli(capsys, "predict", tmp_path / "stream", other, other, "--separate-files", "--limit", "5",
                             "--json")
    assert code == 0, err
    assert [len(json.loads(r)["true"]) for r in out.splitlines()] == [3, 2]
    # sessions: --limit still counts sequences
    sessions = tmp_path / "sessions"
    sessions.write_text("".join(f"q{i},a b c\n" for i in range(9)))
    code, out, err = run_cli(capsys, "predict", model, sessions, "--limit", "2", "--json")
    assert code == 0 and [json.loads(r)["id"] for r in out.splitlines()] == ["q0", "q1"], err
