"""``seqrnn compare``: every model trained, judged and written as CSV, JSON, Markdown and a ROC plot."""

from __future__ import annotations

import csv
import json

import pytest

from seqrnn.cli import main
from seqrnn.experiments.compare import model_spec

from conftest import write_toy_sessions


@pytest.fixture
def toy_split(tmp_path):
    train = write_toy_sessions(tmp_path / "train", n=60, seed=0)
    normal = write_toy_sessions(tmp_path / "normal", n=20, seed=1)
    abnormal = tmp_path / "abnormal"
    # wrong order, a repeat too many, an unseen event, a session that ends early
    abnormal.write_text("x0,a c b d\nx1,a b b b b b c d\nx2,a b q c d\nx3,a b\nx4,d a b c\n", encoding="utf-8")
    return train, normal, abnormal


def test_compare_writes_table_csv_json_md_and_roc(toy_split, tmp_path, capsys):
    train, normal, abnormal = toy_split
    out = tmp_path / "cmp"
    rc = main(["compare", str(train), "--normal", str(normal), "--abnormal", str(abnormal),
               "--models", "lstm,markov1,nb2,count", "--repeat", "2", "--seed", "5", "--epochs", "1",
               "--threads", "1", "--output-dir", str(out), "-q"])
    assert rc == 0
    table = capsys.readouterr().out
    assert table.startswith("| model | precision | recall | F1 | FPR | promised FPR | ROC-AUC |")
    assert table.count("(best)") == 1
    assert "| lstm --no-counts |" in table and " ± " in table
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [r["model"] for r in rows] == ["lstm", "lstm --no-counts", "markov1", "markov1 --no-counts",
                                         "nb2", "nb2 --no-counts", "count"]
    result = json.load(open(out / "compare.json"))
    assert result["repeat"] == 2 and len(result["runs"]) == 2 and result["seed"] == 5
    best = max(result["table"], key=lambda r: result["table"][r]["f1_at_prevalence"]["mean"])
    assert result["best"] == best and f"**{best}** (best)" in table
    # 60 calibration sessions back no less than V / 61 for a model's V views (1 to 4)
    assert all(round(v["promised_fpr"]["mean"] * 61, 6) in (1, 2, 3, 4) for v in result["table"].values())
    assert result["sequences"] == {"train": 60, "normal": 20, "abnormal": 5}
    count = result["table"]["count"]
    assert count["recall"]["mean"] >= 0.4  # the repeat and the early end are count anomalies
    for run in result["runs"]:
        assert set(run) == {r["model"] for r in rows}
        assert run["markov1"]["tp"] + run["markov1"]["fn"] == 5
    assert (out / "compare.md").read_text().strip() == table.strip()
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_rejects_unknown_models_before_training(toy_split, capsys):
    train, normal, abnormal = toy_split
    assert main(["compare", str(train), "--normal", str(normal), "--abnormal", str(abnormal),
                 "--models", "markov1,transformer", "-q"]) == 2
    assert "unknown model 'transformer'" in capsys.readouterr().err


def test_model_names():
    assert model_spec("markov3") == ("markov", {"order": 3})
    assert model_spec("nb") == ("nb", {})
    assert model_spec("hmm4") == ("hmm", {"states": 4})
    assert model_spec("count-idf") == ("count", {"idf": True})
    assert model_spec("gru") == ("rnn", {"cell": "gru"})


def test_compare_without_models_is_refused_not_a_traceback(toy_split, capsys):
    train, normal, abnormal = toy_split
    for models in ("", " , "):
        assert main(["compare", str(train), "--normal", str(normal), "--abnormal", str(abnormal),
                     "--models", models, "-q"]) == 2
        assert capsys.readouterr().err == "seqrnn compare: error: --models: name at least one model\n"


def test_an_output_dir_that_is_a_file_is_refused_before_training(toy_split, tmp_path, capsys, monkeypatch):
    from seqrnn.experiments import compare as experiment

    train, normal, abnormal = toy_split
    taken = tmp_path / "taken"
    taken.write_text("x\n")
    trained = []
    monkeypatch.setattr(experiment, "run_once", lambda *a, **k: trained.append(1) or {})
    assert main(["compare", str(train), "--normal", str(normal), "--abnormal", str(abnormal),
                 "--models", "markov1", "--output-dir", str(taken), "-q"]) == 2
    assert capsys.readouterr().err == (f"seqrnn compare: error: {taken}: is a file, not a folder (--output-dir "
                                       "names the folder of the results)\n")
    assert not trained and taken.read_text() == "x\n"


def test_a_model_named_twice_is_refused(toy_split, capsys):
    """--models markov1,markov1 trained it twice and kept one row (the second run's)."""
    train, normal, abnormal = toy_split
    assert main(["compare", str(train), "--normal", str(normal), "--abnormal", str(abnormal),
                 "--models", "markov1,nb,markov1", "-q"]) == 2
    assert capsys.readouterr().err == "seqrnn compare: error: --models: markov1 named twice\n"
