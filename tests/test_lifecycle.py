"""The life of a model directory: complete or refused, one writer, signals, kill -9, diverged training.

Each test trains a tiny model on the toy sessions (a second or less); the
signal and kill -9 cases run ``seqrnn train`` in a subprocess (a few
seconds each, most of it importing PyTorch).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import seqrnn
from conftest import TINY_SETTINGS, run_cli, write_toy_sessions
from seqrnn import modeldir
from seqrnn.errors import ModelFileError
from seqrnn.models.rnn import RNNModel
from seqrnn.train import Callback

TINY_FLAGS = ["--hidden", "16", "--embedding-dim", "8", "--layers", "1", "--batch-size", "16", "--seed", "0",
              "--threads", "1", "-q"]
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def status(d) -> dict:
    return json.loads((d / "status.json").read_text(encoding="utf-8"))


def train(capsys, data, d, *extra):
    return run_cli(capsys, "train", data, "-m", d, *TINY_FLAGS, *extra)


@pytest.fixture
def trained(tmp_path, toy_sessions, capsys):
    d = tmp_path / "m"
    code, _, err = train(capsys, toy_sessions, d, "--epochs", "2")
    assert code == 0, err
    return d


class StopAt(Callback):
    def __init__(self, epoch, exc=KeyboardInterrupt):
        self.epoch, self.exc = epoch, exc

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.epoch:
            raise self.exc


def interrupt_cli_training(monkeypatch, epoch: int = 1, exc=KeyboardInterrupt):
    """Make the next in-process ``seqrnn train`` stop at the end of ``epoch`` as Ctrl-C (or ``exc``) would."""
    real = RNNModel.fit

    def fit(self, X, validation_data=None, *, model_dir=None, **kwargs):  # model_dir: seqrnn train asks
        return real(self, X, validation_data, model_dir=model_dir, **{**kwargs, "callbacks": [StopAt(epoch, exc)]})

    monkeypatch.setattr(RNNModel, "fit", fit)


def refused_by_every_reader(capsys, d, data, *words):
    """detect, evaluate, predict, evaluate-detection, generate and info all exit 2 with one line naming ``words``."""
    for argv in (["detect", d, data], ["evaluate", d, data], ["predict", d, data], ["generate", d],
                 ["evaluate-detection", d, "--normal", data, "--abnormal", data], ["info", d]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and all(w in lines[0] for w in words), (argv, err)


# --- complete or refused ------------------------------------------------------------------------
def test_a_finished_training_is_complete_with_the_hash_of_every_file(trained, toy_sessions, capsys):
    s = status(trained)
    assert s["state"] == "complete"
    assert sorted(s["files"]) == ["config.json", "detector.json", "detector.safetensors", "model.safetensors"]
    import hashlib

    for name, digest in s["files"].items():
        assert hashlib.sha256((trained / name).read_bytes()).hexdigest() == digest
    code, out, _ = run_cli(capsys, "detect", trained, toy_sessions)
    assert code == 0 and len(out.splitlines()) == 60
    assert os.listdir(trained / "checkpoint") == ["checkpoint.safetensors"]  # one file: one atomic unit


def test_ctrl_c_leaves_a_directory_every_reader_refuses_until_resumed(tmp_path, toy_sessions, capsys, monkeypatch):
    d = tmp_path / "m"
    interrupt_cli_training(monkeypatch, epoch=1)
    code, _, err = train(capsys, toy_sessions, d, "--epochs", "3")
    assert code == 130 and "continue with --resume" in err
    assert status(d)["state"] == "stopped" and (d / "model.safetensors").exists()  # the best epoch so far
    refused_by_every_reader(capsys, d, toy_sessions, "did not finish", "--resume", "interrupted")
    with pytest.raises(ModelFileError, match="did not finish"):
        seqrnn.load(str(d))
    monkeypatch.undo()
    code, _, err = train(capsys, toy_sessions, d, "--epochs", "3", "--resume")
    assert code == 0, err
    assert status(d)["state"] == "complete"
    code, out, _ = run_cli(capsys, "detect", d, toy_sessions)
    assert code == 0 and len(out.splitlines()) == 60


def test_a_training_that_ended_before_calibration_asks_for_calibrate(tmp_path, toy_sessions, capsys):
    d = str(tmp_path / "m")
    RNNModel(**{**TINY_SETTINGS, "epochs": 1}).fit(str(toy_sessions), model_dir=d)  # no detector yet
    assert status(tmp_path / "m")["state"] == "model"
    code, out, _ = run_cli(capsys, "evaluate", d, toy_sessions, "--json")
    assert code == 0 and json.loads(out)["events"] > 0  # the model is finished: evaluate, predict use it
    for argv in (["detect", d, toy_sessions], ["evaluate-detection", d, "--normal", toy_sessions, "--abnormal",
                                                 toy_sessions]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "seqrnn calibrate" in err and "no detector" in err
    model = seqrnn.load(d)
    seqrnn.Detector(model).fit(str(toy_sessions)).save(d)
    assert status(tmp_path / "m")["state"] == "complete"
    assert run_cli(capsys, "detect", d, toy_sessions)[0] == 0


def test_a_failed_training_says_so_and_why(tmp_path, toy_sessions, capsys):
    d = tmp_path / "m"
    with pytest.raises(RuntimeError):
        RNNModel(**TINY_SETTINGS).fit(str(toy_sessions), model_dir=str(d), callbacks=[StopAt(1, RuntimeError("disk"))])
    assert status(d)["state"] == "stopped" and status(d)["reason"] == "disk"
    code, _, err = run_cli(capsys, "predict", d, toy_sessions)
    assert code == 2 and "did not finish (disk)" in err


def test_a_file_changed_after_training_is_refused(trained, tmp_path, toy_sessions, capsys):
    """Weights copied in from another run (same shapes, other numbers) are never mixed in silently."""
    other = tmp_path / "other"
    assert train(capsys, toy_sessions, other, "--epochs", "1", "--seed", "5")[0] == 0
    shutil.copy(other / "model.safetensors", trained / "model.safetensors")
    code, _, err = run_cli(capsys, "evaluate", trained, toy_sessions)
    assert code == 2 and "model.safetensors changed after the directory was written" in err
    code, _, err = run_cli(capsys, "detect", trained, toy_sessions)
    assert code == 2  # (the detector's own check, learned for other weights, may speak first)
    with pytest.raises(ModelFileError, match="changed after"):
        seqrnn.load(str(trained))


def test_directories_of_an_earlier_seqrnn_still_load_when_complete(trained, tmp_path, toy_sessions, capsys):
    """No status.json: complete when the detector was learned for these weights (or no training wrote it)."""
    (trained / "status.json").unlink()
    code, out, _ = run_cli(capsys, "detect", trained, toy_sessions)
    assert code == 0 and len(out.splitlines()) == 60
    # a training stopped by an earlier seqrnn: weights of a new training beside the old detector
    stopped = tmp_path / "stopped"
    shutil.copytree(trained, stopped)
    other = tmp_path / "other"
    assert train(capsys, toy_sessions, other, "--epochs", "1", "--seed", "5")[0] == 0
    shutil.copy(other / "model.safetensors", stopped / "model.safetensors")
    refused_by_every_reader(capsys, stopped, toy_sessions, "did not finish")
    # and one that never got a detector
    for name in ("detector.json", "detector.safetensors"):
        (stopped / name).unlink()
    code, _, err = run_cli(capsys, "evaluate", stopped, toy_sessions)
    assert code == 2 and "--resume" in err
    # a baseline saved by model.save (no checkpoint): a finished model
    markov = seqrnn.models.model_class("markov")().fit(str(toy_sessions))
    markov.save(str(tmp_path / "markov"))
    (tmp_path / "markov" / "status.json").unlink()
    assert run_cli(capsys, "evaluate", tmp_path / "markov", toy_sessions)[0] == 0


def test_a_reader_never_mixes_files_of_two_writes(trained, monkeypatch):
    """A writer that begins while a reader loads: the reader starts again and sees it (never half of each)."""
    real = modeldir._changed_files
    calls = []

    def writer_begins(model_dir, st, **kw):
        calls.append(1)
        if len(calls) == 1:  # what another process's train would do, between the reader's two looks
            modeldir._write_status(str(trained), {"state": "training", "pid": 999999})
        return real(model_dir, st, **kw)

    monkeypatch.setattr(modeldir, "_changed_files", writer_begins)
    with pytest.raises(ModelFileError, match="process 999999 ended without finishing"):
        seqrnn.load(str(trained))
    assert len(calls) == 1  # the second look refused at once: nothing was loaded from the new state


def test_a_hand_edited_status_without_a_process_is_not_called_process_none(trained):
    for state, says in (("training", "its process ended without finishing"), ("writing", "(writing, its process)")):
        modeldir._write_status(str(trained), {"state": state})
        with pytest.raises(ModelFileError) as err:
            seqrnn.load(str(trained))
        assert says in str(err.value) and "None" not in str(err.value)


# --- one writer ------------------------------------------------------------------------------------
HOLD = """
import sys, time
sys.path.insert(0, {src!r})
from seqrnn import modeldir
with modeldir.writing({d!r}):
    modeldir.begin({d!r}, "training")
    print("holding", flush=True)
    time.sleep(60)
"""


def hold_lock(d):
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(src=SRC, d=str(d))], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_dies_with_it(tmp_path, toy_sessions, capsys):
    d = tmp_path / "m"
    proc = hold_lock(d)
    try:
        code, out, err = train(capsys, toy_sessions, d, "--epochs", "1")
        assert code == 2 and f"--model-dir {d} is being written by process {proc.pid}" in err, err
        code, _, err = run_cli(capsys, "detect", d, toy_sessions)
        assert code == 2 and f"is being written by process {proc.pid}" in err
    finally:
        proc.kill()  # kill -9: the kernel drops the lock with the process
        proc.wait()
    code, _, err = run_cli(capsys, "detect", d, toy_sessions)
    assert code == 2 and f"process {proc.pid} ended without finishing" in err
    assert train(capsys, toy_sessions, d, "--epochs", "1")[0] == 0
    assert status(d)["state"] == "complete"


def test_writers_in_one_process_nest_and_the_python_api_takes_the_lock(tmp_path, toy_sessions):
    d = tmp_path / "m"
    proc = hold_lock(d)
    try:
        with pytest.raises(seqrnn.InputError, match=f"process {proc.pid}"):
            RNNModel(**TINY_SETTINGS).fit(str(toy_sessions), model_dir=str(d))
        with pytest.raises(seqrnn.InputError, match=f"process {proc.pid}"):
            seqrnn.models.model_class("markov")().fit(str(toy_sessions)).save(str(d))
    finally:
        proc.kill()
        proc.wait()
    with modeldir.writing(str(d)), modeldir.writing(str(d)):  # re-entrant
        assert modeldir.holder(str(d)).endswith("(this one)")
    assert modeldir.holder(str(d)) is None


def test_model_dir_that_is_a_file_is_refused_before_training(tmp_path, toy_sessions, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = train(capsys, toy_sessions, f, "--epochs", "50")
    assert code == 2 and "--model-dir" in err and "is a file" in err
    assert f.read_text() == "x"


def test_a_failed_start_leaves_no_directory_behind(tmp_path, capsys):
    code, _, err = train(capsys, tmp_path / "missing.txt", tmp_path / "m")
    assert code == 2 and not (tmp_path / "m").exists()


# --- diverged training ---------------------------------------------------------------------------
def test_lr_inf_is_refused_before_training(tmp_path, toy_sessions, capsys):
    code, out, err = train(capsys, toy_sessions, tmp_path / "m", "--lr", "inf", "--epochs", "3")
    assert code == 2 and "--lr must be a finite number" in err


def test_an_overflowing_lr_is_refused_not_a_traceback(tmp_path, toy_sessions, capsys):
    # torch's Adam raises "value cannot be converted to type float without overflow" at 1e38
    code, out, err = train(capsys, toy_sessions, tmp_path / "m", "--lr", "1e38", "--epochs", "1")
    assert code == 2 and "--lr" in err and "Traceback" not in err


def test_a_diverged_cli_training_exits_2_and_every_reader_refuses(tmp_path, toy_sessions, capsys, monkeypatch):
    break_the_lr_after_epoch_1(monkeypatch)  # the learning rate becomes infinite after epoch 1
    d = tmp_path / "m"
    code, out, err = train(capsys, toy_sessions, d, "--epochs", "3")
    assert code == 2 and out == ""
    assert "training diverged" in err.strip().splitlines()[-1]
    assert status(d)["state"] == "diverged"
    refused_by_every_reader(capsys, d, toy_sessions, "diverged")


class BreakTheLr(Callback):
    """At the end of ``epoch`` the learning rate becomes infinite: the next step ruins the weights."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.epoch:
            for group in trainer.optimizer.param_groups:
                group["lr"] = float("inf")


def test_divergence_keeps_the_last_good_checkpoint_and_resume_finishes(tmp_path, toy_sessions, capsys, monkeypatch):
    from seqrnn.train import TrainingDiverged, read_checkpoint

    d = tmp_path / "m"
    with pytest.raises(TrainingDiverged) as err:
        RNNModel(**{**TINY_SETTINGS, "epochs": 4}).fit(str(toy_sessions), model_dir=str(d),
                                                        callbacks=[BreakTheLr(2)])
    assert err.value.epoch == 3 and err.value.checkpoint_epoch == 2
    assert "last good checkpoint (epoch 2)" in str(err.value)
    state, arrays = read_checkpoint(str(d / "checkpoint" / "checkpoint.safetensors"))
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]] == [1, 2]
    assert all(np.isfinite(a).all() for k, a in arrays.items() if k.startswith("net."))
    assert status(d)["state"] == "diverged"
    code, _, err = run_cli(capsys, "detect", d, toy_sessions)
    assert code == 2 and "diverged" in err
    # resumed with a sane rate (a new --lr applies): finishes, and nothing is NaN
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 4}).fit(str(toy_sessions), model_dir=str(d), resume=True)
    assert [r["epoch"] for r in model.history_] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) for r in model.history_)


def test_nan_weights_of_an_earlier_seqrnn_are_refused_and_no_nan_reaches_json(trained, toy_sessions, capsys):
    from safetensors.numpy import load_file, save_file

    w = load_file(str(trained / "model.safetensors"))
    w["head.bias"][:] = np.nan
    save_file(w, str(trained / "model.safetensors"))
    (trained / "status.json").unlink()  # as an earlier seqrnn left a diverged training: "saved"
    for argv in (["evaluate", trained, toy_sessions, "--json"], ["predict", trained, toy_sessions, "--json"],
                 ["info", trained, "--json"], ["generate", trained]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and "NaN" in err and out == "", argv
    code, out, err = run_cli(capsys, "detect", trained, toy_sessions)  # its detector was learned for other weights
    assert code == 2 and out == ""


def test_finite_json_refuses_nan():
    from seqrnn.artifacts import finite_json

    assert finite_json({"a": 1.5}) == '{"a": 1.5}'
    with pytest.raises(ModelFileError, match="not a finite number"):
        finite_json({"score": float("nan")}, "runs/x")
    with pytest.raises(ModelFileError):
        finite_json([float("inf")])


def break_the_lr_after_epoch_1(monkeypatch):
    import seqrnn.train as training

    real_init = training.Trainer.__init__

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        self.callbacks = list(self.callbacks) + [BreakTheLr(1)]

    monkeypatch.setattr(training.Trainer, "__init__", init)


def test_a_diverged_classifier_is_refused_and_its_threshold_never_nan(tmp_path, capsys, monkeypatch):
    from test_classify import write_labelled

    normal, abnormal = write_labelled(tmp_path, 80, seed=3)
    d = tmp_path / "c"
    code, _, err = run_cli(capsys, "classify", "train", "--normal", normal, "--abnormal", abnormal, "-m", d,
                           "--hidden", "8", "--epochs", "2", "--threads", "1", "--lr", "inf", "-q")
    assert code == 2 and "--lr must be a finite number" in err  # refused before training
    # a NaN threshold written by an earlier seqrnn is refused
    code, _, err = run_cli(capsys, "classify", "train", "--normal", normal, "--abnormal", abnormal, "-m", d,
                           "--hidden", "8", "--embedding-dim", "8", "--attention", "8", "--epochs", "1",
                           "--threads", "1", "-q")
    assert code == 0, err
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "threshold": float("nan")}))
    (d / "status.json").unlink()
    code, out, err = run_cli(capsys, "classify", "predict", d, normal)
    assert code == 2 and "nan" in err.lower() and out == ""


# --- smaller -----------------------------------------------------------------------------------------
def test_min_count_that_empties_the_vocabulary_is_refused(tmp_path, toy_sessions, capsys):
    code, _, err = train(capsys, toy_sessions, tmp_path / "m", "--min-count", "100000")
    assert code == 2 and "--min-count 100000 leaves no event in the vocabulary" in err
    assert not (tmp_path / "m").exists()
    code, _, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--model", "markov", "--min-count",
                           "100000")
    assert code == 2 and "--min-count 100000 leaves no event" in err


def test_classify_min_count_and_resume_without_checkpoint(tmp_path, capsys):
    from test_classify import write_labelled

    normal, abnormal = write_labelled(tmp_path, 80, seed=3)
    base = ["classify", "train", "--normal", normal, "--abnormal", abnormal, "--hidden", "8", "--embedding-dim",
            "8", "--attention", "8", "--epochs", "1", "--threads", "1", "-q"]
    code, _, err = run_cli(capsys, *base, "-m", tmp_path / "a", "--min-count", "100000")
    assert code == 2 and "--min-count 100000 leaves no event" in err
    code, _, err = run_cli(capsys, *base, "-m", tmp_path / "b", "--resume")
    assert code == 0 and "no checkpoint in" in err and "training from the start" in err


def test_train_resume_without_checkpoint_says_so(tmp_path, toy_sessions, capsys):
    code, _, err = train(capsys, toy_sessions, tmp_path / "m", "--epochs", "1", "--resume")
    assert code == 0 and f"no checkpoint in {tmp_path / 'm' / 'checkpoint'}" in err


def test_a_checkpoint_of_an_earlier_seqrnn_resumes(tmp_path, toy_sessions):
    """The pair an earlier seqrnn wrote (state.json + state.safetensors) is still read, then replaced."""
    from safetensors.numpy import save_file

    from seqrnn.train import read_checkpoint

    d = tmp_path / "m"
    RNNModel(**{**TINY_SETTINGS, "epochs": 2}).fit(str(toy_sessions), model_dir=str(d))
    path = d / "checkpoint" / "checkpoint.safetensors"
    state, arrays = read_checkpoint(str(path))
    save_file(arrays, str(d / "checkpoint" / "state.safetensors"))
    (d / "checkpoint" / "state.json").write_text(json.dumps(state))
    path.unlink()
    resumed = RNNModel(**{**TINY_SETTINGS, "epochs": 3}).fit(str(toy_sessions), model_dir=str(d), resume=True)
    straight = RNNModel(**{**TINY_SETTINGS, "epochs": 3}).fit(str(toy_sessions))
    assert [r["loss"] for r in resumed.history_] == [r["loss"] for r in straight.history_]
    assert os.listdir(d / "checkpoint") == ["checkpoint.safetensors"]


def test_a_damaged_checkpoint_file_is_one_line(tmp_path, toy_sessions, capsys):
    d = tmp_path / "m"
    assert train(capsys, toy_sessions, d, "--epochs", "1")[0] == 0
    path = d / "checkpoint" / "checkpoint.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    code, _, err = train(capsys, toy_sessions, d, "--epochs", "2", "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "checkpoint" in err


def test_stale_temporary_files_of_a_killed_writer_are_removed(trained, toy_sessions, capsys):
    (trained / ".config.json.abc123").write_text("half")
    (trained / "checkpoint" / ".checkpoint.safetensors.xyz").write_text("half")
    (trained / "notes.txt").write_text("mine")
    assert train(capsys, toy_sessions, trained, "--epochs", "1")[0] == 0
    assert not (trained / ".config.json.abc123").exists()
    assert not (trained / "checkpoint" / ".checkpoint.safetensors.xyz").exists()
    assert (trained / "notes.txt").read_text() == "mine"


# --- signals and kill -9, in a subprocess -----------------------------------------------------------------
def _default_sigint():
    # a test run started in the background by a shell inherits SIGINT ignored, and Python keeps it so:
    # the child gets the default disposition, as from a terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(d, data, epochs=100000):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "seqrnn", "train", str(data), "-m", str(d), *TINY_FLAGS,
                             "--epochs", str(epochs), "--patience", "0"],  # no early stop: it runs until signalled
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    checkpoint = d / "checkpoint" / "checkpoint.safetensors"
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_save_the_checkpoint_and_exit(sig, code, tmp_path, capsys):
    data = write_toy_sessions(tmp_path / "toy.txt")
    d = tmp_path / "m"
    proc = start_training(d, data)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"interrupted: checkpoint saved in {d / 'checkpoint'}; continue with --resume" in err
    assert "Traceback" not in err
    st = status(d)
    assert st["state"] == "stopped" and st["checkpoint"] is True
    assert ("SIGTERM" if sig == signal.SIGTERM else "Ctrl-C") in st["reason"]
    code_, _, err = run_cli(capsys, "detect", d, data)
    assert code_ == 2 and "--resume" in err


def test_kill_9_leaves_a_refused_directory_that_resumes(tmp_path, capsys):
    data = write_toy_sessions(tmp_path / "toy.txt")
    d = tmp_path / "m"
    proc = start_training(d, data)
    time.sleep(0.3)
    proc.kill()
    proc.communicate()
    assert status(d)["state"] == "training"
    refused_by_every_reader(capsys, d, data, f"process {proc.pid} ended without finishing", "--resume")
    code, _, err = train(capsys, data, d, "--epochs", "1", "--resume")  # the checkpoint is past epoch 1
    assert code == 0, err
    assert status(d)["state"] == "complete"
    code, out, _ = run_cli(capsys, "detect", d, data)
    assert code == 0 and len(out.splitlines()) == 60


def test_calibrate_finishes_a_model_trained_without_calibration(tmp_path, toy_sessions, capsys):
    d = tmp_path / "m"
    code, _, err = train(capsys, toy_sessions, d, "--epochs", "2", "--no-calibration")
    assert code == 0, err
    assert status(d)["state"] == "model"
    code, _, err = run_cli(capsys, "detect", d, toy_sessions)
    assert code == 2 and "seqrnn calibrate" in err
    code, _, err = run_cli(capsys, "calibrate", d, toy_sessions, "-q")
    assert code == 0, err
    assert status(d)["state"] == "complete"
    code, out, err = run_cli(capsys, "detect", d, toy_sessions)
    assert code == 0, err
    assert len(out.splitlines()) == 60


def test_calibrate_refuses_a_stopped_training(tmp_path, toy_sessions, capsys):
    d = tmp_path / "m"
    train(capsys, toy_sessions, d, "--epochs", "1")
    modeldir.begin(str(d), "training")  # as if a training were stopped in the middle
    code, _, err = run_cli(capsys, "calibrate", d, toy_sessions)
    assert code == 2 and "--resume" in err


def test_written_files_get_the_mode_open_would_give_them(tmp_path):
    from seqrnn.artifacts import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(str(tmp_path / "report.html"), "<p>x</p>")
    finally:
        os.umask(old)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o644


def test_a_new_training_into_a_model_directory_drops_the_earlier_detector(capsys, tmp_path):
    """train --no-calibration into a directory holding a complete model kept the earlier detector and recorded
    the directory 'complete' with it; detect then said the training 'did not finish'. The new training drops
    it: the directory holds a model without a detector, and detect says to calibrate it."""
    data = write_toy_sessions(tmp_path / "toy.txt", n=40)
    d = tmp_path / "m"
    assert train(capsys, data, d, "--epochs", "1")[0] == 0
    assert status(d)["state"] == "complete"
    code, out, err = train(capsys, data, d, "--epochs", "1", "--hidden", "8", "--no-calibration")
    assert code == 0, err
    assert status(d)["state"] == "model" and not (d / "detector.json").exists()
    assert not (d / "detector.safetensors").exists()
    code, out, err = run_cli(capsys, "detect", d, data)
    assert code == 2 and "did not finish" not in err and f"seqrnn calibrate {d}" in err
