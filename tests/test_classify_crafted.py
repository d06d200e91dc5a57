"""``seqrnn classify`` on extreme values and odd inputs: never a traceback."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("z,p", [(0.0, 0.5), (2.0, 1 / (1 + np.exp(-2.0))), (-40.0, np.exp(-40.0) / (1 + np.exp(-40.0))),
                                 (-1e5, 0.0), (1e5, 1.0), (-800.0, 0.0), (800.0, 1.0)])
def test_sigmoid_is_exact_and_never_overflows(z, p):
    from seqrnn.models.classifier import sigmoid

    assert sigmoid(z) == pytest.approx(p, rel=1e-12, abs=0)


def test_a_prediction_line_with_a_far_negative_threshold_is_written(tmp_path):
    """A threshold of logit -1e5 (finite, so the schema takes it; a hand-edited or extreme model) overflowed
    math.exp in the reason text: a traceback from classify predict."""
    from types import SimpleNamespace

    from seqrnn.cli.classify import prediction_dict
    from seqrnn.data.formats import Sequence

    seq = Sequence("s1", ["a", "b"], "f.txt", 1)
    p = SimpleNamespace(sequence=seq, probability=0.25, anomalous=True, attention=np.array([0.6, 0.4]))
    out = prediction_dict(p, -1e5, None)
    assert out["reason"].startswith("classified anomalous: p(anomalous)=0.25 > 0;"), out["reason"]


def test_a_prediction_names_the_events_never_seen_in_training():
    """A sequence of events the classifier never saw was labelled (here normal) without a word: they are all
    read as one 'unknown' event, so the label says little. The line now counts them and the reason says so."""
    from types import SimpleNamespace

    from seqrnn.cli.classify import prediction_dict
    from seqrnn.data.formats import Sequence
    from seqrnn.data.vocab import Vocabulary

    vocab = Vocabulary(["a", "b"])
    seq = Sequence("s1", ["zz", "a", "<pad>", "b"], "f.txt", 1)
    p = SimpleNamespace(sequence=seq, probability=0.25, anomalous=False, attention=np.array([0.4, 0.3, 0.2, 0.1]))
    out = prediction_dict(p, 0.0, None, vocab=vocab)
    assert out["unknown_events"] == 2 and "2 of 4 events never seen in training" in out["reason"]
    assert [t.get("unseen", False) for t in out["top_events"]] == [True, False, True]
    known = prediction_dict(SimpleNamespace(**{**vars(p), "sequence": Sequence("s2", ["a", "b"], "f.txt", 2),
                                               "attention": np.array([0.5, 0.5])}), 0.0, None, vocab=vocab)
    assert known["unknown_events"] == 0 and "never seen" not in known["reason"]
    assert all("unseen" not in t for t in known["top_events"])


@pytest.mark.parametrize("command", ["classify", "train"])
def test_training_on_empty_sessions_only_says_so(capsys, tmp_path, command):
    """Sessions that are all empty were refused as '--min-count 1 leaves no event in the vocabulary (the most
    frequent event occurs 0 times)', pointing at a flag the user never gave."""
    from conftest import run_cli

    (tmp_path / "n").write_text("s1,\ns2,\ns3,\n")
    (tmp_path / "a").write_text("x1,\nx2,\nx3,\n")
    argv = {"classify": ["classify", "train", "--normal", tmp_path / "n", "--abnormal", tmp_path / "a"],
            "train": ["train", tmp_path / "n"]}[command]
    code, _, err = run_cli(capsys, *argv, "--model-dir", tmp_path / "m", "--epochs", "1")
    assert code == 2 and "the training data holds no events" in err and "min-count" not in err, err


@pytest.mark.parametrize("command", ["classify-train", "classify-evaluate", "evaluate-detection", "report"])
def test_one_file_given_as_both_normal_and_abnormal_is_refused(capsys, tmp_path, command):
    """The same file as --normal and --abnormal (a slip of the shell's history) trained or scored every
    sequence under both labels, and printed metrics of 0.5; now refused naming it."""
    from conftest import run_cli

    data = tmp_path / "d"
    data.write_text("s1,a b\ns2,b a\n")
    if command == "evaluate-detection":  # the model is checked first
        assert run_cli(capsys, "train", data, "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0
    alias = tmp_path / "sub" / ".." / "d"
    (tmp_path / "sub").mkdir()
    argv = {"classify-train": ["classify", "train", "--model-dir", tmp_path / "m"],
            "classify-evaluate": ["classify", "evaluate", tmp_path / "m"],
            "evaluate-detection": ["evaluate-detection", tmp_path / "m"],
            "report": ["report", tmp_path / "m", "-o", tmp_path / "r.html"]}[command]
    code, _, err = run_cli(capsys, *argv, "--normal", data, "--abnormal", tmp_path / "x", alias)
    assert code == 2 and f"{alias}: given as both --normal and --abnormal" in err, err
