"""The supervised sequence classifier: a toy rule learnt exactly, attention that
explains, threshold choice, class weighting, model files and the command line."""

from __future__ import annotations

import csv
import json
import os
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from seqrnn.models.classifier import (  # noqa: E402
    AttentionClassifierNet,
    ClassifierConfig,
    LabelledLoss,
    SequenceClassifier,
    choose_threshold,
    load_classifier,
)
from seqrnn.cli import main  # noqa: E402
from seqrnn.data.vocab import PAD  # noqa: E402
from seqrnn.errors import InputError, ModelFileError  # noqa: E402
from seqrnn.train import Callback, TrainingInterrupted, read_checkpoint  # noqa: E402

SMALL = dict(hidden=16, embedding_dim=8, attention=16, epochs=12, schedule="constant", batch_size=32, seed=0, threads=1,
             patience=0, dropout=0.0)


def b_then_a(n: int, seed: int):
    """Random sequences over a..e, half of them containing an ``a`` somewhere after a ``b``."""
    rng = random.Random(seed)
    X, y = [], []
    while len(X) < n:
        s = [rng.choice("abcde") for _ in range(rng.randint(2, 12))]
        label = any(s[i] == "b" and "a" in s[i + 1:] for i in range(len(s)))
        if label != (len(X) % 2 == 1):
            continue
        X.append(s)
        y.append(label)
    return X, np.array(y)


@pytest.fixture(scope="module")
def clf():
    X, y = b_then_a(600, seed=0)
    return SequenceClassifier(**SMALL).fit(X, y)


class TestLearning:
    def test_learns_a_after_b_exactly(self, clf):
        X, y = b_then_a(400, seed=1)  # held out
        assert (clf.predict(X) == y).all()
        # the order matters, not the letters: "a b" is normal, "b a" anomalous
        assert list(clf.predict([list("cabd"), list("cbad"), list("ab"), list("ba")])) == [False, True, False, True]

    def test_history_and_validation(self, clf):
        assert clf.history_[-1]["val_f1"] == 1.0
        assert clf.history_[-1]["loss"] < clf.history_[0]["loss"]
        assert clf.validation_["normal"] == 60 and clf.validation_["anomalous"] == 60
        assert clf.validation_["normal_for_threshold"] == 300  # and the 240 training normals

    def test_class_weight_is_the_class_ratio(self):
        X, y = b_then_a(80, seed=3)
        keep = np.r_[np.flatnonzero(~y), np.flatnonzero(y)[:10]]  # 40 normal, 10 anomalous
        c = SequenceClassifier(**{**SMALL, "epochs": 1}).fit([X[i] for i in keep], y[keep])
        assert c.pos_weight_ == pytest.approx(32 / 8)  # the training split: 80% of each class

    def test_trains_with_the_trainers_schedule_to_zero(self):
        X, y = b_then_a(120, seed=5)
        c = SequenceClassifier(**{**SMALL, "epochs": 4, "schedule": "cosine"}).fit(X, y)
        assert c.train_config.lr_floor == 0.0  # the classifier's default; the next-event models end at a tenth
        lrs = [r["lr"] for r in c.history_]
        assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.05 * c.train_config.lr
        assert [r["step"] for r in c.history_] == [c.trainer_.step // 4 * k for k in (1, 2, 3, 4)]


class TestAttention:
    def test_sums_to_one_over_events_zero_on_padding(self):
        torch.manual_seed(0)
        net = AttentionClassifierNet(10, ClassifierConfig(hidden=8, embedding_dim=4, attention=8)).eval()
        x = torch.tensor([[4, 5, 6, 7, 8], [4, 5, PAD, PAD, PAD], [9, PAD, PAD, PAD, PAD]])
        logits, w = net(x)
        assert logits.shape == (3,)
        np.testing.assert_allclose(w.sum(1).detach().numpy(), 1.0, atol=1e-6)
        assert (w[x == PAD] == 0).all()
        assert (w[x != PAD] > 0).all()
        # padding changes nothing: the short row alone gives the same logit and weights
        l1, w1 = net(x[1:2, :2])
        np.testing.assert_allclose(l1.detach().numpy(), logits[1:2].detach().numpy(), atol=1e-6)
        np.testing.assert_allclose(w1.detach().numpy(), w[1:2, :2].detach().numpy(), atol=1e-6)

    def test_explain_one_weight_per_event(self, clf):
        preds = clf.explain([list("cbad"), list("cd"), []])
        assert [len(p.attention) for p in preds] == [4, 2, 0]
        for p in preds[:2]:
            assert p.attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert preds[0].anomalous and not preds[1].anomalous


class TestThreshold:
    def test_perfect_separation_takes_the_middle_of_the_gap(self):
        s = np.array([-3.0, -2.0, 1.0, 2.0])
        t, f1 = choose_threshold(s, np.array([0, 0, 1, 1], bool))
        assert t == pytest.approx(-0.5) and f1 == 1.0

    def test_prevalence_prefers_fewer_false_positives(self):
        # one normal scores above two anomalies: plain F1 accepts that false positive, a rare-anomaly F1 does not
        s = np.array([0.0, 0.1, 0.2, 5.0, 1.0, 1.5, 6.0, 7.0, 8.0])
        y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1], bool)
        t_plain, _ = choose_threshold(s, y)
        t_rare, _ = choose_threshold(s, y, prevalence=0.01)
        assert t_plain < 1.0 and 5.0 < t_rare < 6.0


class TestFiles:
    def test_save_load_round_trip(self, clf, tmp_path):
        clf.save(str(tmp_path / "c"))
        loaded = load_classifier(str(tmp_path / "c"))
        X, _ = b_then_a(50, seed=4)
        np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))
        assert loaded.threshold_ == clf.threshold_
        for a, b in zip(loaded.explain(X), clf.explain(X)):
            np.testing.assert_array_equal(a.attention, b.attention)
        assert sorted(os.listdir(tmp_path / "c")) == [".lock", "config.json", "history.csv", "model.safetensors",
                                                      "status.json"]

    def test_a_next_event_model_is_not_a_classifier(self, tmp_path):
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "config.json").write_text(json.dumps({"format": "seqrnn-model"}))
        with pytest.raises(ModelFileError, match="use seqrnn detect"):
            load_classifier(str(tmp_path / "m"))

    def test_a_classifier_does_not_detect(self, tmp_path):
        from seqrnn.detect import Detector

        with pytest.raises(InputError, match="use seqrnn classify"):
            Detector(SequenceClassifier())

    def test_bad_settings(self):
        with pytest.raises(InputError, match="validation_split"):
            SequenceClassifier(validation_split=0.0)
        with pytest.raises(InputError, match="two normal and two anomalous"):
            SequenceClassifier().fit([["a"], ["b"], ["c"]], [False, False, True])

    def test_unknown_keywords_are_type_errors(self):
        with pytest.raises(TypeError, match="window"):
            SequenceClassifier(window=3)
        with pytest.raises(TypeError, match="validation"):
            SequenceClassifier(validation=0.2)  # now validation_split
        X, y = b_then_a(20, seed=6)
        with pytest.raises(TypeError, match="resuem"):
            SequenceClassifier(**SMALL).fit(X, y, resuem=True)
        with pytest.raises(TypeError):
            SequenceClassifier(**SMALL).fit(X, y, "sessions")  # keywords only after X and y

    def test_seqrnn_load_reads_a_classifier(self, clf, tmp_path):
        import seqrnn

        clf.save(str(tmp_path / "c"))
        config = json.loads((tmp_path / "c" / "config.json").read_text())
        assert config["format"] == "seqrnn-model" and config["kind"] == "classifier"
        loaded = seqrnn.load(str(tmp_path / "c"))
        assert isinstance(loaded, SequenceClassifier)
        X, _ = b_then_a(50, seed=4)
        np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
        assert loaded._settings() == clf._settings()
        assert loaded.n_parameters() == clf.n_parameters()
        lines = loaded.describe()
        assert lines[0].startswith("model      classifier: 1x16 bidirectional LSTM")
        assert any(line.startswith("threshold") and "F1" in line for line in lines)

    def test_next_event_commands_refuse_a_classifier(self, clf, tmp_path, capsys):
        clf.save(str(tmp_path / "c"))
        data = tmp_path / "x.txt"
        data.write_text("a b c\n", encoding="utf-8")
        for command in (["detect"], ["evaluate"], ["predict"]):
            assert main([*command, str(tmp_path / "c"), str(data)]) == 2
            assert "use seqrnn classify predict or evaluate" in capsys.readouterr().err
        assert main(["generate", str(tmp_path / "c")]) == 2
        assert "use seqrnn classify" in capsys.readouterr().err
        assert main(["info", str(tmp_path / "c")]) == 0
        assert "model      classifier" in capsys.readouterr().out

    def test_an_older_classifier_directory_still_loads(self, clf, tmp_path):
        """Written before seqrnn.load read classifiers: its own format name, and ``validation`` for the split."""
        clf.save(str(tmp_path / "c"))
        path = tmp_path / "c" / "config.json"
        config = json.loads(path.read_text())
        settings = config["settings"]
        settings["validation"] = settings.pop("validation_split")
        path.write_text(json.dumps({**config, "format": "seqrnn-classifier"}))
        (tmp_path / "c" / "status.json").unlink()  # written before status.json
        loaded = load_classifier(str(tmp_path / "c"))
        assert loaded.config.validation_split == clf.config.validation_split
        X, _ = b_then_a(50, seed=4)
        np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))


class TestCommandLine:
    def test_train_predict_evaluate(self, tmp_path, capsys):
        X, y = b_then_a(200, seed=5)
        normal, abnormal = tmp_path / "normal", tmp_path / "abnormal"
        normal.write_text("".join(f"n{i}," + " ".join(s) + "\n" for i, (s, v) in enumerate(zip(X, y)) if not v))
        abnormal.write_text("".join(f"x{i}," + " ".join(s) + "\n" for i, (s, v) in enumerate(zip(X, y)) if v))
        model = str(tmp_path / "clf")
        args = ["classify", "train", "--normal", str(normal), "--abnormal", str(abnormal), "--model-dir", model,
                "--hidden", "16", "--embedding-dim", "8", "--attention", "16", "--epochs", "3", "--batch-size",
                "32", "--threads", "1", "--dropout", "0", "--patience", "0", "--json"]
        assert main(args) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["validation"]["normal"] == 20 and summary["train"] == {"normal": 80, "anomalous": 80}
        out = tmp_path / "out.jsonl"
        assert main(["classify", "predict", model, str(abnormal), "--output", str(out)]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 100
        found = sum(r["anomalous"] for r in rows)
        first = rows[0]
        assert first["location"] == f"{abnormal}:1" and first["id"].startswith("x")
        assert len(first["attention"]) == first["length"]
        assert sum(first["attention"]) == pytest.approx(1.0, abs=1e-3)
        assert "p(anomalous)" in first["reason"] and first["top_events"][0]["weight"] == max(first["attention"])
        assert main(["classify", "evaluate", model, "--normal", str(normal), "--abnormal", str(abnormal),
                     "--prevalence", "0.03", "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out)
        assert metrics["tp"] == found and metrics["tp"] + metrics["fn"] == 100 and metrics["fp"] + metrics["tn"] == 100
        assert main(["classify", "predict", str(tmp_path / "nope"), str(normal)]) == 2
        assert "no such model directory" in capsys.readouterr().err


class StopAt(Callback):
    """Ctrl-C at the end of epoch ``epoch``."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_writes_a_checkpoint_and_keeps_the_best_epoch(tmp_path):
    X, y = b_then_a(120, seed=5)
    model_dir = str(tmp_path / "c")
    clf = SequenceClassifier(**{**SMALL, "epochs": 10})
    with pytest.raises(TrainingInterrupted) as err:
        clf.fit(X, y, model_dir=model_dir, callbacks=[StopAt(2)])
    assert err.value.checkpoint == os.path.join(model_dir, "checkpoint")
    state, _ = read_checkpoint(str(tmp_path / "c" / "checkpoint" / "checkpoint.safetensors"))
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]] == [1, 2]
    # the best epoch so far is the fitted and saved classifier
    assert len(clf.history_) == 2
    loaded = load_classifier(model_dir)
    np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))


def test_ctrl_c_in_the_first_epoch_leaves_nothing_fitted(monkeypatch):
    X, y = b_then_a(120, seed=5)

    def interrupt(self, batch, state):
        raise KeyboardInterrupt

    monkeypatch.setattr(LabelledLoss, "loss", interrupt)
    clf = SequenceClassifier(**SMALL)
    with pytest.raises(TrainingInterrupted) as err:
        clf.fit(X, y)
    assert err.value.checkpoint is None  # no model_dir, no checkpoint
    assert not hasattr(clf, "threshold_")


def write_labelled(tmp_path, n: int, seed: int) -> tuple[str, str]:
    X, y = b_then_a(n, seed=seed)
    normal, abnormal = tmp_path / "normal", tmp_path / "abnormal"
    normal.write_text("".join(f"n{i}," + " ".join(s) + "\n" for i, (s, v) in enumerate(zip(X, y)) if not v))
    abnormal.write_text("".join(f"x{i}," + " ".join(s) + "\n" for i, (s, v) in enumerate(zip(X, y)) if v))
    return str(normal), str(abnormal)


def test_classify_train_resumes_after_ctrl_c_as_if_never_stopped(tmp_path, monkeypatch, capsys):
    """Interrupted after epoch 2 of 4 and resumed: the weights, history and threshold of one straight run."""
    from seqrnn.artifacts import load_tensors

    normal, abnormal = write_labelled(tmp_path, 160, seed=7)

    def train(model_dir, *extra):
        return main(["classify", "train", "--normal", normal, "--abnormal", abnormal, "--model-dir", model_dir,
                     "--hidden", "16", "--embedding-dim", "8", "--attention", "16", "--epochs", "4",
                     "--batch-size", "16", "--threads", "1", "--dropout", "0.2", "--quiet", *extra])

    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert train(straight) == 0
    real_fit = SequenceClassifier.fit

    def fit_with_ctrl_c(self, X, y, **kwargs):
        return real_fit(self, X, y, **{**kwargs, "callbacks": [StopAt(2)]})

    monkeypatch.setattr(SequenceClassifier, "fit", fit_with_ctrl_c)
    capsys.readouterr()
    assert train(resumed) == 130
    err = capsys.readouterr().err
    assert f"interrupted: checkpoint saved in {os.path.join(resumed, 'checkpoint')}; continue with --resume" in err
    monkeypatch.undo()
    assert train(resumed, "--resume") == 0

    a = load_tensors(os.path.join(straight, "model.safetensors"))
    b = load_tensors(os.path.join(resumed, "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    def history(model_dir):
        with open(os.path.join(model_dir, "history.csv"), encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [{k: r[k] for k in ("epoch", "loss", "val_loss", "val_f1", "val_auc", "lr", "step")} for r in rows]

    assert [r["epoch"] for r in history(resumed)] == ["1", "2", "3", "4"]
    assert history(resumed) == history(straight)
    ca, cb = (json.loads(open(os.path.join(d, "config.json")).read()) for d in (straight, resumed))
    assert ca["threshold"] == cb["threshold"] and ca["validation"] == cb["validation"]


@pytest.mark.parametrize("edit", ["list", "epoch", "history", "best_loss", "opt_scalars", "tensor"])
def test_a_damaged_checkpoint_is_refused_in_one_line(edit, tmp_path, capsys):
    """classify train --resume on a tampered checkpoint: exit 2 and one line, never a traceback."""
    from safetensors.numpy import save_file

    X, y = b_then_a(60, seed=5)
    normal, abnormal = tmp_path / "n.txt", tmp_path / "a.txt"
    normal.write_text("\n".join(" ".join(s) for s, lab in zip(X, y) if not lab) + "\n", encoding="utf-8")
    abnormal.write_text("\n".join(" ".join(s) for s, lab in zip(X, y) if lab) + "\n", encoding="utf-8")
    args = ["classify", "train", "--normal", str(normal), "--abnormal", str(abnormal), "-m", str(tmp_path / "c"),
            "--epochs", "2", "--hidden", "8", "--threads", "1", "-q"]
    assert main(args) == 0
    path = str(tmp_path / "c" / "checkpoint" / "checkpoint.safetensors")
    state, tensors = read_checkpoint(path)
    if edit == "tensor":
        del tensors["rng.torch"]
    else:
        state = [] if edit == "list" else {**state, edit: {"epoch": "x", "history": "abc", "best_loss": "abc"}.get(
            edit, None)}
    save_file(tensors, path, metadata={"seqrnn_checkpoint": json.dumps(state)})
    capsys.readouterr()
    assert main(args + ["--resume", "--epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint" in err[0], err
