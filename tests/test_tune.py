"""``seqrnn tune``: resumed studies, pruning, the best configuration, ``train --config``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import run_cli, toy_session_lines
from seqrnn.experiments import tune
from seqrnn.data.formats import read_sessions

# Tiny models, few epochs: every trial trains in a fraction of a second.
TINY_SPACE = {"layers": 1, "hidden": {"low": 8, "high": 16}, "embedding_dim": [4, 8], "batch_size": [16],
              "window": {"low": 2, "high": 4}, "epochs": 3,
              "mapping": ["many-to-many", "many-to-one"]}


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(TINY_SPACE))
    return path


def tune_cli(capsys, data, study, space_file, *more):
    return run_cli(capsys, "tune", data, "--study", study, "--space", space_file, "--threads", "1", *more)


def finished_trials(study_path):
    import optuna

    study = optuna.load_study(study_name="seqrnn", storage=tune.storage_url(str(study_path)))
    return [(t.number, t.state.name) for t in study.trials]


# ============================================================================ resume and report
def test_resumed_study_continues_its_trial_count(capsys, monkeypatch, toy_sessions, tmp_path, space_file):
    monkeypatch.setattr(tune, "importance", lambda study: None)  # fANOVA takes a second; tested below
    study = tmp_path / "runs" / "tune.db"
    code, out, err = tune_cli(capsys, toy_sessions, study, space_file, "--trials", "2")
    assert code == 0, err
    assert [n for n, _ in finished_trials(study)] == [0, 1]
    assert err.count("trial ") == 2 and "resuming" not in err

    # --trials counts the whole study: two more, numbered after the first run's
    code, out, err = tune_cli(capsys, toy_sessions, study, space_file, "--trials", "4")
    assert code == 0, err
    assert "resuming" in err and "2 trials finished" in err
    assert [n for n, _ in finished_trials(study)] == [0, 1, 2, 3]
    assert "trial   2" in err and "trial   3" in err and "trial   0" not in err
    assert [line.split()[0] for line in out.splitlines()[1:5]] == ["0", "1", "2", "3"]  # the table

    # a budget already met runs nothing more
    code, out, err = tune_cli(capsys, toy_sessions, study, space_file, "--trials", "3")
    assert code == 0 and len(finished_trials(study)) == 4 and "trial " not in err
    # and says so (it said only 'resuming STUDY: 4 trials finished', then the report)
    assert "4 trials finished; --trials 3 reached: nothing more to run (a larger --trials runs more)" in err


def test_report_table_best_file_importance_and_plots(tmp_path):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    # The value is the learning rate alone; the cell does not matter.
    study = tune.open_study(str(tmp_path / "r.db"))
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "cell": CategoricalDistribution(["lstm", "gru"])}
    for i, lr in enumerate([1e-3, 1e-2, 3e-4, 5e-2, 2e-3, 1e-4, 3e-2, 7e-3]):
        params = {"lr": lr, "cell": ["lstm", "gru"][i % 2]}
        study.add_trial(optuna.trial.create_trial(value=lr, params=params, distributions=dists, user_attrs={
            "settings": {**params, "hidden": 8}, "val_loss": lr, "epochs": 2}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, intermediate_values={1: 9.0}))

    rep = tune.report(study, str(tmp_path / "r.db"))
    assert [r["state"] for r in rep["trials"]] == ["complete"] * 8 + ["pruned"]
    assert rep["trials"][-1]["value"] == 9.0  # a pruned trial shows its last reported loss
    assert rep["best"]["trial"] == 5 and rep["best"]["value"] == 1e-4
    assert json.loads((tmp_path / "r.db.best.json").read_text())["settings"] == {"lr": 1e-4, "cell": "gru", "hidden": 8}
    assert rep["importance"]["lr"] > 0.9 and sum(rep["importance"].values()) == pytest.approx(1.0)
    for key in ("history_plot", "importance_plot"):
        with open(rep["files"][key], "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    text = tune.report_text(rep)
    assert "9 trials: 8 complete, 1 pruned" in text and "best: trial 5, val_loss 0.0001 (minimize)" in text


def test_report_text_shows_the_best_trials_weight_drop():
    best = {"trial": 0, "objective": "val_loss", "value": 1.0, "val_loss": 1.0, "epochs": 1,
            "settings": {"cell": "gru", "dropout": 0.1, "weight_drop": 0.25, "lr": 0.01}}
    rep = {"trials": [], "best": best, "direction": "minimize", "importance": {}, "files": {}}
    assert "dropout=0.1 weight_drop=0.25 lr=0.01" in tune.report_text(rep)
    best["settings"]["weight_drop"] = 0.0  # none: not shown, as info shows none
    assert "weight_drop" not in tune.report_text(rep)


def test_report_with_no_trial_completed_writes_no_best_file_and_no_empty_plot(capsys, tmp_path):
    """tune --report on a study whose trials all failed (or still run) wrote an empty history plot beside the
    study and said only 'no trial has finished yet'; it now writes no plot with nothing in it, and says why
    there is no best file."""
    import optuna

    path = tmp_path / "s.db"
    study = tune.open_study(str(path))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    code, out, err = run_cli(capsys, "tune", "--study", path, "--report")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]  # no best file, no empty plot
    assert "best: none: no trial has completed (1 failed), so no s.db.best.json was written" in out
    assert "plot" not in out
    code, out, err = run_cli(capsys, "tune", "--study", path, "--report", "--json")
    rep = json.loads(out)
    assert rep["best"] is None and rep["files"] == {} and "no trial has completed (1 failed)" in rep["no_best"]
    # a pruned trial that reported a loss is something to plot, but still no best settings
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, intermediate_values={1: 2.5}))
    code, out, err = run_cli(capsys, "tune", "--study", path, "--report")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db", "s.db.history.png"]
    assert "no trial has completed (1 failed, 1 pruned), so no s.db.best.json was written" in out


# ============================================================================ pruning
def _study_with_two_finished_trials(loss_per_epoch: float):
    """An in-memory study holding two finished trials that reported ``loss_per_epoch`` at epochs 1..3,
    and a median pruner that may prune from the first epoch once two trials have finished."""
    import optuna

    study = tune.open_study(None, pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(value=loss_per_epoch,
                                                  intermediate_values={e: loss_per_epoch for e in (1, 2, 3)}))
    return study


def _one_trial(study, toy_sessions, deadline=None):
    objective = tune.make_objective(read_sessions(str(toy_sessions)), tune.check_space(TINY_SPACE),
                                    {"seed": 0, "threads": 1}, deadline=deadline)
    study.optimize(objective, n_trials=1)
    return study.trials[-1]


def test_pruning_stops_a_trial_worse_than_the_median(toy_sessions):
    # Earlier trials reached a loss no 1-epoch model of this data can (0.001 nats):
    # the new trial is worse than their median at epoch 1 and is stopped there.
    trial = _one_trial(_study_with_two_finished_trials(0.001), toy_sessions)
    assert trial.state.name == "PRUNED"
    assert trial.user_attrs["epochs"] == 1 and trial.user_attrs["pruned_by"] == "median at epoch 1"
    assert list(trial.intermediate_values) == [1]
    assert trial.intermediate_values[1] > 0.001

    # Against a median it beats (100 nats) the same trial trains all its epochs.
    trial = _one_trial(_study_with_two_finished_trials(100.0), toy_sessions)
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["epochs"] == 3 and list(trial.intermediate_values) == [1, 2, 3]
    assert trial.value == pytest.approx(min(trial.intermediate_values.values()))


def test_time_budget_stops_the_running_trial(toy_sessions):
    trial = _one_trial(tune.open_study(None), toy_sessions, deadline=time.monotonic() - 1)
    assert trial.state.name == "PRUNED" and trial.user_attrs["pruned_by"] == "time budget at epoch 1"


def test_a_trial_that_ends_as_its_time_is_up_is_complete(toy_sessions):
    """Time up at the trial's last epoch: it trained every epoch it was to train, so it is complete (it was
    called pruned, and a search whose one trial ran its epochs in a minute and a bit had no best)."""
    study = tune.open_study(None)
    objective = tune.make_objective(read_sessions(str(toy_sessions)), tune.check_space(TINY_SPACE),
                                    {"seed": 0, "threads": 1, "epochs": 1}, deadline=time.monotonic() - 1)
    study.optimize(objective, n_trials=1)
    trial = study.trials[-1]
    assert trial.state.name == "COMPLETE" and trial.user_attrs["epochs"] == 1, trial.user_attrs
    assert "pruned_by" not in trial.user_attrs


# ============================================================================ the best configuration
def test_best_config_trains_to_the_trials_validation_loss(capsys, toy_sessions, tmp_path, space_file):
    study = tmp_path / "tune.db"
    code, out, err = tune_cli(capsys, toy_sessions, study, space_file, "--trials", "3", "--seed", "7")
    assert code == 0, err
    best = json.loads((tmp_path / "tune.db.best.json").read_text())
    assert best["objective"] == "val_loss" and best["settings"]["seed"] == 7
    assert best["value"] == best["val_loss"]

    code, out, err = run_cli(capsys, "train", toy_sessions, "--config", tmp_path / "tune.db.best.json",
                             "--model-dir", tmp_path / "best", "--quiet")
    assert code == 0, err
    training = json.loads((tmp_path / "best" / "config.json").read_text())["training"]
    assert training["epochs"] == best["epochs"]
    assert training["best_val_loss"] == pytest.approx(best["val_loss"], rel=1e-6, abs=1e-7)


def test_train_config_flags_override_and_unknown_keys_exit_2(capsys, toy_sessions, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"hidden": 12, "embedding-dim": 4, "layers": 1, "epochs": 3, "threads": 1}))
    code, out, err = run_cli(capsys, "train", toy_sessions, "--config", cfg, "--epochs", "1",
                             "--model-dir", tmp_path / "m", "--quiet")
    assert code == 0, err
    settings = json.loads((tmp_path / "m" / "config.json").read_text())["settings"]
    assert (settings["hidden"], settings["embedding_dim"], settings["epochs"]) == (12, 4, 1)

    cfg.write_text(json.dumps({"hiden": 12}))
    code, out, err = run_cli(capsys, "train", toy_sessions, "--config", cfg, "--model-dir", tmp_path / "m2")
    assert code == 2
    assert err.strip() == f"seqrnn train: error: {cfg}: unknown setting(s): hiden"
    cfg.write_text("[1, 2]")
    code, out, err = run_cli(capsys, "train", toy_sessions, "--config", cfg, "--model-dir", tmp_path / "m2")
    assert code == 2 and "one JSON object" in err


# ============================================================================ detection objective
def test_detection_objective_maximises_a_metric(capsys, toy_sessions, tmp_path, space_file):
    normal = tmp_path / "normal.txt"
    normal.write_text("\n".join(toy_session_lines(20, seed=1)) + "\n")
    abnormal = tmp_path / "abnormal.txt"
    abnormal.write_text("".join(f"x{i},a c b d d\n" for i in range(10)))
    study = tmp_path / "det.db"
    code, out, err = tune_cli(capsys, toy_sessions, study, space_file, "--trials", "2", "--normal", normal,
                              "--abnormal", abnormal, "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["objective"] == "pr_auc" and rep["direction"] == "maximize"
    assert all(0.0 <= r["value"] <= 1.0 for r in rep["trials"])
    assert rep["best"]["value"] == max(r["value"] for r in rep["trials"])

    # the same study cannot be continued for another objective
    code, out, err = tune_cli(capsys, toy_sessions, study, space_file, "--trials", "3")
    assert code == 2 and "searched for pr_auc, not val_loss" in err


# ============================================================================ bad input
@pytest.mark.parametrize("space, message", [
    ({"hiden": [8]}, "unknown setting(s): hiden"),
    ({"seed": [0, 1]}, "seed is kept fixed"),
    ({"lr": {"low": 0.1, "high": 0.01}}, "low <= high"),
    ({"hidden": {"low": 8}}, "a range is"),
    # values a model refuses, found before any trial runs (they failed only when the search drew them)
    ({"hidden": {"low": -5, "high": 10}}, "hidden must be >= 1, not -5"),
    ({"cell": ["lstm", "lstmx"]}, "cell must be one of ('lstm', 'gru'), not 'lstmx'"),
    ({"dropout": 1.2}, "dropout must be in [0, 1), not 1.2"),
    ({"lr": {"low": 1e-4, "high": 2000.0, "log": True}}, "lr must be > 0 and at most 1000"),
])
def test_bad_search_space_exits_2(capsys, toy_sessions, tmp_path, space, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    code, out, err = tune_cli(capsys, toy_sessions, tmp_path / "t.db", path, "--trials", "1")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert str(path) in err and not (tmp_path / "t.db").exists()  # the file named; no study begun


def test_missing_budget_or_study_exits_2(capsys, toy_sessions, tmp_path):
    code, out, err = run_cli(capsys, "tune", toy_sessions, "--study", tmp_path / "t.db")
    assert code == 2 and "--trials N and/or --minutes M" in err
    code, out, err = run_cli(capsys, "tune", "--study", tmp_path / "none.db", "--report")
    assert code == 2 and "no such study file" in err


def test_tune_help_imports_neither_torch_nor_optuna():
    code = ("import sys\nfrom seqrnn.cli import main\ntry:\n    main(['tune', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint('torch' in sys.modules, 'optuna' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--study FILE" in r.stdout and "--trials" in r.stdout
    assert r.stderr.strip() == "False False"


# ============================================================================ two processes, one study
@pytest.mark.slow
def test_two_processes_search_one_study(toy_sessions, tmp_path, space_file):
    study = tmp_path / "shared.db"
    cmd = [sys.executable, "-m", "seqrnn", "tune", str(toy_sessions), "--study", str(study), "--space",
           str(space_file), "--threads", "1", "--trials", "8"]
    tune.open_study(str(study))  # created first, so that neither process races to create the tables
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = finished_trials(study)
    assert [n for n, _ in trials] == list(range(len(trials)))
    assert 8 <= sum(s in ("COMPLETE", "PRUNED") for _, s in trials) <= 9  # one may finish after the other's last
    assert all(o[1].count("trial ") >= 1 for o in outs)  # both took part


def test_a_value_that_holds_beside_the_spaces_mapping_is_accepted():
    """bidirectional needs mapping many-to-one: a space that gives that mapping may search it (checked with
    each mapping the space gives); without it, refused before the study opens."""
    from seqrnn.errors import InputError

    for space in ({"mapping": ["many-to-one"], "bidirectional": True},
                  {"mapping": ["many-to-many", "many-to-one"], "bidirectional": [True, False]},
                  {"mapping": "many-to-one", "bidirectional": True}):
        assert tune.check_space(space)["bidirectional"] == space["bidirectional"]
    with pytest.raises(InputError, match="bidirectional needs mapping many-to-one"):
        tune.check_space({"mapping": ["many-to-many"], "bidirectional": [False, True]})
