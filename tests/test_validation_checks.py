"""Validation data that cannot judge training is said so, never silently used (review12)."""
from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")
from seqrnn.cli import main  # noqa: E402


def labelled(tmp_path, n_normal: int, n_abnormal: int) -> tuple[str, str]:
    rng = random.Random(3)
    normal, abnormal = tmp_path / "normal", tmp_path / "abnormal"
    normal.write_text("".join(f"n{i}," + " ".join(rng.choice("cde") for _ in range(5)) + "\n"
                              for i in range(n_normal)))
    abnormal.write_text("".join(f"x{i},b " + " ".join(rng.choice("cde") for _ in range(4)) + " a\n"
                                for i in range(n_abnormal)))
    return str(normal), str(abnormal)


CLF = ["--hidden", "16", "--embedding-dim", "8", "--attention", "16", "--epochs", "1", "--threads", "1"]


def test_classify_train_says_how_few_anomalous_sequences_validate(tmp_path, capsys):
    normal, abnormal = labelled(tmp_path, 60, 10)  # a 20% stratified split: 2 anomalous validate
    model = str(tmp_path / "c")
    assert main(["classify", "train", "--normal", normal, "--abnormal", abnormal, "-m", model, *CLF]) == 0
    err = capsys.readouterr().err
    assert "validation holds 12 normal and 2 anomalous sequences" in err
    assert "warning: only 2 anomalous sequences in the validation split" in err
    assert main(["classify", "train", "--normal", normal, "--abnormal", abnormal, "-m", model, *CLF,
                 "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["validation"]["anomalous"] == 2
    assert "only 2 anomalous" in summary["warnings"][0] and "only 2 anomalous" in err


def test_classify_train_with_enough_of_each_class_warns_nothing(tmp_path, capsys):
    normal, abnormal = labelled(tmp_path, 60, 60)
    assert main(["classify", "train", "--normal", normal, "--abnormal", abnormal, "-m", str(tmp_path / "c"),
                 *CLF, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["warnings"] == [] and "warning" not in err


def sessions(path, events: str, n: int = 40) -> str:
    rng = random.Random(7)
    path.write_text("".join(f"s{i}," + " ".join(rng.choice(events.split()) for _ in range(8)) + "\n"
                            for i in range(n)))
    return str(path)


RNN = ["--epochs", "1", "--hidden", "16", "--embedding-dim", "8", "--threads", "1", "--no-calibration"]


def test_train_warns_when_the_validation_file_is_mostly_unknown_events(tmp_path, capsys):
    data = sessions(tmp_path / "train", "1 2 3 4 5")
    other = sessions(tmp_path / "valid", "101 102 103 4", n=10)  # another event numbering: 3 of 4 unknown
    assert main(["train", data, "--validation", other, "-m", str(tmp_path / "m"), *RNN, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "of the validation events are unknown to the model" in err and other in err
    summary = json.loads(out)
    assert summary["validation_unknown"]["events"] == 80 and summary["validation_unknown"]["unknown"] > 40
    assert "unknown to the model" in summary["warnings"][0]
    same = sessions(tmp_path / "valid2", "1 2 3 4 5", n=10)
    assert main(["train", data, "--validation", same, "-m", str(tmp_path / "m2"), *RNN, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "unknown to the model" not in err and json.loads(out)["warnings"] == []
    assert json.loads(out)["validation_unknown"] == {"events": 80, "unknown": 0}


def test_resume_with_other_validation_data_is_refused(tmp_path, capsys):
    data = sessions(tmp_path / "train", "1 2 3 4 5")
    valid = sessions(tmp_path / "valid", "1 2 3 4 5", n=10)
    other = tmp_path / "other"
    other.write_text(open(valid).read().replace("s0,", "s0,5 "))  # one event more
    model = str(tmp_path / "m")
    assert main(["train", data, "--validation", valid, "-m", model, *RNN]) == 0
    capsys.readouterr()
    for given in (["--validation", str(other)], []):  # another file, or a split of the training data instead
        assert main(["train", data, *given, "-m", model, *RNN, "--epochs", "2", "--resume"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "checkpoint" in err and "validat" in err, err
        assert "--validation" in err and "without --resume" in err
    assert main(["train", data, "--validation", valid, "-m", model, *RNN, "--epochs", "2", "--resume"]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().err


def test_two_studies_in_one_file_write_their_reports_under_their_own_names(tmp_path, capsys):
    import optuna
    from optuna.distributions import FloatDistribution

    from seqrnn.experiments import tune

    path = str(tmp_path / "s.db")
    for name, lr in (("seqrnn", 1e-3), ("wide", 2e-2)):
        study = tune.open_study(path, name)
        study.add_trial(optuna.trial.create_trial(
            value=lr, params={"lr": lr}, distributions={"lr": FloatDistribution(1e-4, 1e-1, log=True)},
            user_attrs={"settings": {"lr": lr}, "val_loss": lr, "epochs": 1}))
    assert main(["tune", "--study", path, "--report"]) == 0
    assert "best: s.db.best.json" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert main(["tune", "--study", path, "--study-name", "wide", "--report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"]["best"] == path + ".wide.best.json"
    best = json.loads((tmp_path / "s.db.best.json").read_text())["settings"]  # the default name: as before
    wide = json.loads((tmp_path / "s.db.wide.best.json").read_text())["settings"]
    assert best == {"lr": 1e-3} and wide == {"lr": 2e-2}
    assert (tmp_path / "s.db.wide.history.png").exists() and (tmp_path / "s.db.history.png").exists()
    assert main(["tune", "--study", path, "--study-name", "a/../x y", "--report"]) == 2  # no such study
