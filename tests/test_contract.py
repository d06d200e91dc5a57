"""The one model contract: settings in ``__init__``, data in ``fit``, every kind the same way.

A misspelled setting or ``fit`` keyword must fail loudly (``TypeError``), not
be swallowed; every kind fits, describes itself, saves and loads through
``seqrnn.load``; and no model module knows about decisions.
"""

from __future__ import annotations

import ast
import os

import pytest

import seqrnn
from seqrnn.models import MODULES, model_class

pytest.importorskip("torch")

SMALL = {"rnn": dict(hidden=8, embedding_dim=4, layers=1, epochs=1, threads=1),
         "context": dict(hidden=8, embedding_dim=4, layers=1, epochs=1, threads=1),
         "hmm": dict(states=2, iterations=3)}
NEXT_EVENT_KINDS = sorted(k for k in MODULES if k != "classifier")


def data():
    return [["a", "b", "c"], ["a", "b", "b", "c"], ["a", "c"], ["a", "b", "c"], ["b", "c"]] * 4


@pytest.mark.parametrize("kind", NEXT_EVENT_KINDS)
def test_unknown_setting_is_a_type_error(kind):
    with pytest.raises(TypeError, match="unexpected keyword argument 'hiden'"):
        model_class(kind)(hiden=8)


@pytest.mark.parametrize("kind", NEXT_EVENT_KINDS)
def test_misspelled_fit_keyword_is_a_type_error(kind, tmp_path):
    model = model_class(kind)(**SMALL.get(kind, {}))
    with pytest.raises(TypeError, match="resuem|model_dri"):
        model.fit(data(), resuem=True) if kind in ("rnn", "context") else model.fit(data(), model_dri="d")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("kind", ["markov", "nb", "hmm", "count"])
def test_training_options_of_the_neural_models_are_refused_by_the_others(kind):
    with pytest.raises(TypeError, match="model_dir"):
        model_class(kind)(**SMALL.get(kind, {})).fit(data(), model_dir="somewhere")


@pytest.mark.parametrize("kind", NEXT_EVENT_KINDS)
def test_every_kind_keeps_the_contract(kind, tmp_path):
    model = model_class(kind)(**SMALL.get(kind, {}))
    assert not model.is_fitted()
    assert model.fit(data()) is model and model.is_fitted()
    lines = model.describe()
    assert lines and all(isinstance(line, str) for line in lines) and kind in lines[0]
    assert (model.n_parameters() is None) == (kind not in ("rnn", "context"))
    detector = seqrnn.Detector(model).fit(data())
    detector.save(model.save(str(tmp_path / kind)))
    again = seqrnn.Detector.load(str(tmp_path / kind))
    assert type(again.model) is type(model) and again.calibration == detector.calibration
    test = [["a", "b", "c"], ["c", "b", "a", "a", "a"], ["a", "zz", "c"]]
    assert again.decision_function(test).tolist() == pytest.approx(detector.decision_function(test).tolist())
    assert again.predict(test)[2]  # an unseen event, whatever the model


def test_detector_settings_are_keywords_and_checked():
    model = model_class("markov")()
    with pytest.raises(TypeError):
        seqrnn.Detector(model, 0.01)  # the rate is a keyword
    with pytest.raises(seqrnn.InputError, match="target_fpr"):
        seqrnn.Detector(model, target_fpr=1.5)
    with pytest.raises(RuntimeError, match="not fitted"):
        seqrnn.Detector(model).predict([["a"]])


def test_models_know_nothing_of_decisions():
    """No module under models/ imports the Detector's module."""
    folder = os.path.dirname(seqrnn.models.__file__)
    for name in os.listdir(folder):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").endswith("detect"), f"models/{name} imports {node.module}"


def test_command_modules_import_no_other_command_module():
    from seqrnn.cli import COMMANDS

    folder = os.path.dirname(seqrnn.cli.__file__)
    commands = {c.replace("-", "_") for c in COMMANDS}
    for name in commands:
        tree = ast.parse(open(os.path.join(folder, name + ".py"), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert node.module not in commands, f"cli/{name}.py imports cli/{node.module}.py"


@pytest.mark.parametrize("change", [
    {"calibrated_views": "count"}, {"calibrated_views": [1, 2]}, {"calibrated_views": ["unseen", "bogus"]},
    {"target_fpr": 2}, {"unit": "day"}, {"format": "something-else"}, None])
def test_crafted_detector_files_are_refused(change, tmp_path):
    import json

    model = model_class("count")()
    seqrnn.Detector(model).fit(data()).save(model.save(str(tmp_path)))
    path = tmp_path / "detector.json"
    if change is None:
        path.write_text("{not json", encoding="utf-8")
    else:
        path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **change}), encoding="utf-8")
    (tmp_path / "status.json").unlink()  # else refused as "changed after written", whatever the values
    with pytest.raises(seqrnn.ModelFileError):
        seqrnn.Detector.load(str(tmp_path))


def test_a_model_without_detector_files_is_refused_by_detect(tmp_path, capsys):
    from seqrnn.cli import main

    model = model_class("markov")().fit(data())
    model.save(str(tmp_path))  # as a training stopped before calibration leaves it
    (tmp_path / "in.txt").write_text("a b c\n", encoding="utf-8")
    assert main(["detect", str(tmp_path), str(tmp_path / "in.txt")]) == 2
    err = capsys.readouterr().err
    assert "the model has no detector" in err and "seqrnn calibrate" in err


def test_detector_files_of_another_model_are_refused(tmp_path):
    """Detector files copied from another model, or left by an earlier training, are not used."""
    import shutil

    a = model_class("markov")().fit(data())
    seqrnn.Detector(a).fit(data()).save(a.save(str(tmp_path / "a")))
    b = model_class("markov")().fit(data()[::-1] + [["c", "a"]] * 3)  # same kind, other counts
    b.save(str(tmp_path / "b"))
    for name in ("detector.json",):
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    with pytest.raises(seqrnn.ModelFileError, match="learned for another model"):
        seqrnn.Detector.load(str(tmp_path / "b"))
    seqrnn.Detector.load(str(tmp_path / "a"))  # its own model: fine


@pytest.mark.parametrize("tensors", [
    {"count_profiles": "nan"}, {"count_profiles": "empty"}, {"count_profiles": "bool"}, {"count_weights": "negative"}])
def test_crafted_count_profiles_are_refused(tensors, tmp_path):
    import numpy as np
    from safetensors.numpy import load_file, save_file

    model = model_class("rnn")(**SMALL["rnn"]).fit(data())
    seqrnn.Detector(model).fit(data()).save(model.save(str(tmp_path)))
    t = load_file(str(tmp_path / "detector.safetensors"))
    name, how = next(iter(tensors.items()))
    t[name] = {"nan": lambda a: np.full_like(a, np.nan), "empty": lambda a: a[:0],
               "bool": lambda a: a > 0, "negative": lambda a: -a - 1}[how](t[name])
    save_file(t, str(tmp_path / "detector.safetensors"))
    (tmp_path / "status.json").unlink()  # crafted as an earlier seqrnn's directory (else: "changed after written")
    with pytest.raises(seqrnn.ModelFileError, match="detector files do not fit"):
        seqrnn.Detector.load(str(tmp_path))


@pytest.mark.parametrize("count", [None, {}])
def test_a_calibrated_count_view_without_its_profiles_is_refused(count, tmp_path):
    """detector.json's count null beside a calibrated count view: its profiles would go unread, the view
    silently off and the calibration (info, detect's promise) a TypeError."""
    import json

    model = model_class("rnn")(**SMALL["rnn"]).fit(data())
    seqrnn.Detector(model).fit(data()).save(model.save(str(tmp_path)))
    path = tmp_path / "detector.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert "count" in saved["calibrated_views"] and saved["count"]
    path.write_text(json.dumps({**saved, "count": count}), encoding="utf-8")
    (tmp_path / "status.json").unlink()  # crafted as an earlier seqrnn's directory (else: "changed after written")
    with pytest.raises(seqrnn.ModelFileError, match="count is null"):
        seqrnn.Detector.load(str(tmp_path))


@pytest.mark.parametrize("change", [{"format_version": 99}, {"format_version": 1}, {"target_fpr": True},
                                    {"target_fpr": "0.1"}, {"folds": 1}, {"accepted_tokens": [3]},
                                    {"calibrated_views": ["unseen", "count"]}])
def test_detector_json_values_are_checked(change, tmp_path):
    import json

    model = model_class("markov")().fit(data())
    seqrnn.Detector(model).fit(data()).save(model.save(str(tmp_path)))
    path = tmp_path / "detector.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **change}), encoding="utf-8")
    (tmp_path / "status.json").unlink()  # else refused as "changed after written", whatever the values
    with pytest.raises(seqrnn.ModelFileError, match="detector"):
        seqrnn.Detector.load(str(tmp_path))


def test_bad_decision_options_are_the_users_not_the_files(tmp_path, capsys):
    from seqrnn.cli import main

    model = model_class("markov")().fit(data())
    seqrnn.Detector(model).fit(data()).save(model.save(str(tmp_path)))
    (tmp_path / "in.txt").write_text("a b c\n", encoding="utf-8")
    for flags, shown in ((["--threshold", "2"], "--threshold is a probability"), (["--top-g", "0"], "--top-g"),
                         (["-k", "0"], "-k"),
                         # both rules: --threshold was ignored, its cut shown beside top-g's decision
                         (["--top-g", "3", "--threshold", "0.1"], "--top-g and --threshold are two rules")):
        assert main(["detect", str(tmp_path), str(tmp_path / "in.txt"), *flags]) == 2
        err = capsys.readouterr().err
        assert shown in err and "do not fit" not in err, err
