"""Edge cases of the training lifecycle, ``tune``, text models and line ends (an adversarial review):
each test here failed before the fix it names."""

from __future__ import annotations

import pytest
from conftest import run_cli, write_toy_sessions


# ============================================================================ outputs appear whole
def test_compare_csv_is_written_atomically(tmp_path):
    """A compare stopped while writing compare.csv left it cut short (it was written in place); now the
    previous file stays as it was and no temporary file is left."""
    from seqrnn.experiments.compare import METRICS, write_outputs

    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("previous\n", encoding="utf-8")
    good = {k: {"mean": 0.5, "std": 0.0} for k in METRICS}
    bad = {k: {"mean": "not a number", "std": 0.0} for k in METRICS}  # fails half-way through the file
    with pytest.raises(ValueError):
        write_outputs({"table": {"lstm": good, "markov1": bad}}, str(out))
    assert (out / "compare.csv").read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv"]


def test_plots_and_the_event_table_are_written_atomically(tmp_path, monkeypatch):
    """A PNG (--plot, roc.png, a tune study's plots) and detect's --events table were written in place:
    stopped half-way, they were left cut short over the previous file. Now the previous file stays."""
    import matplotlib.figure

    from seqrnn.report import write_event_table
    from seqrnn.report.plots import figure

    png = tmp_path / "plot.png"
    png.write_bytes(b"previous")

    def broken_savefig(self, target, **kwargs):
        target.write(b"\x89PNG half") if hasattr(target, "write") else open(target, "wb").write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(KeyboardInterrupt):
        with figure(str(png)) as ax:
            ax.plot([0, 1])
    assert png.read_bytes() == b"previous"

    class Broken:
        @property
        def scores(self):
            raise KeyboardInterrupt

    table = tmp_path / "events.csv"
    table.write_text("previous\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        write_event_table(str(table), None, [Broken()])
    assert table.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "plot.png"]


# ============================================================================ seqrnn tune's flags
@pytest.mark.parametrize("flags, message", [
    (("--trials", "0"), "--trials must be an integer >= 1, not 0"),
    (("--trials", "-3"), "--trials must be an integer >= 1, not -3"),
    (("--minutes", "0"), "--minutes must be a finite number > 0, not 0"),  # ran without end
    (("--minutes", "-1"), "--minutes must be a finite number > 0, not -1"),
    (("--minutes", "nan"), "--minutes must be a finite number > 0, not nan"),  # a traceback inside Optuna
    (("--minutes", "inf", "--trials", "1"), "--minutes must be a finite number > 0, not inf"),
    (("--trials", "1", "--seed", "-1"), "--seed must be an integer from 0 to 4294967295, not -1"),  # traceback
    (("--trials", "1", "--seed", str(2**64)), "--seed must be an integer from 0 to 4294967295"),
])
def test_tune_refuses_budgets_and_seeds_it_cannot_use(capsys, tmp_path, flags, message):
    """--trials 0 or -3 and --minutes -1 searched nothing and said nothing (exit 0); --minutes 0 searched
    without end; --minutes nan and a seed outside 0..2**32-1 ended in tracebacks."""
    data = write_toy_sessions(tmp_path / "train")
    code, out, err = run_cli(capsys, "tune", data, "--study", tmp_path / "t.db", *flags)
    assert code == 2 and f"seqrnn tune: error: {message}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.db").exists()


def test_tune_largest_seed_resumes_a_study(tmp_path):
    """The sampler's seed is the seed plus the trials in the study: from the largest seed a resumed
    study asked numpy for a seed past 2**32-1 (a traceback). It wraps around now."""
    from seqrnn.experiments import tune
    from seqrnn.limits import MAX_SEED

    path = str(tmp_path / "t.db")
    tune.open_study(path, seed=MAX_SEED).enqueue_trial({"hidden": 16})
    study = tune.open_study(path, seed=MAX_SEED)
    assert len(study.trials) == 1 and study.sampler._rng.rng.randint(10) in range(10)


@pytest.mark.parametrize("kind", ["folder", "text", "model"])
def test_tune_study_that_is_not_a_sqlite_file_is_refused(capsys, tmp_path, kind):
    """--study naming a folder or a file that is not SQLite (a data file, model weights) ended in a
    SQLAlchemy traceback; it is refused naming the file, which is left as it was."""
    data = write_toy_sessions(tmp_path / "train")
    study = tmp_path / "study"
    if kind == "folder":
        study.mkdir()
    else:
        study.write_bytes(b"s1,a b c\n" if kind == "text" else b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    before = None if kind == "folder" else study.read_bytes()
    for more in (("--trials", "1"), ("--report",)):
        code, out, err = run_cli(capsys, "tune", data, "--study", study, *more)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"seqrnn tune: error: {study}: " in err
        assert ("a folder, not a study file" if kind == "folder" else "not a study file (SQLite)") in err
    assert before is None or study.read_bytes() == before


# ============================================================================ training into a used folder
def test_another_kind_of_model_saved_over_a_trained_one_leaves_no_training_files(capsys, tmp_path, tiny_settings):
    """`train --model markov` into a folder that held a trained RNN left the RNN's history.csv (report and
    info showed its curves for the Markov chain) and its checkpoint (`train --resume` then resumed the RNN
    the Markov chain had replaced). A model saved outside a training now drops the checkpoint, and the
    history of another kind of model."""
    data = write_toy_sessions(tmp_path / "train")
    model = tmp_path / "m"
    flags = ("--hidden", "16", "--embedding-dim", "8", "--layers", "1", "--epochs", "2", "--threads", "1", "-q")
    assert run_cli(capsys, "train", data, "-m", model, *flags)[0] == 0
    assert (model / "history.csv").exists() and (model / "checkpoint").is_dir()
    assert run_cli(capsys, "train", data, "-m", model, "--model", "markov", "-q")[0] == 0
    assert not (model / "history.csv").exists() and not (model / "checkpoint").exists()
    code, out, err = run_cli(capsys, "train", data, "-m", model, *flags, "--resume")
    assert code == 0 and "no checkpoint" in err and "resuming after" not in err


def test_a_new_training_drops_an_earlier_runs_checkpoint_and_history(tmp_path, tiny_settings, capsys):
    """A new training (not --resume) into a trained folder left the earlier run's checkpoint and history
    until its own first epoch ended: killed before, `--resume` then resumed the earlier run (its weights,
    reached with another learning rate) as if it were this one. They go when the new training begins."""
    from seqrnn import RNNModel
    from seqrnn.train import LambdaCallback

    data = write_toy_sessions(tmp_path / "train")
    model_dir = str(tmp_path / "m")
    RNNModel(**{**tiny_settings, "epochs": 2, "lr": 0.05}).fit(str(data), model_dir=model_dir)

    def killed(trainer, logs):  # stands for kill -9 before the first epoch's checkpoint
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        RNNModel(**{**tiny_settings, "epochs": 4}).fit(str(data), model_dir=model_dir,
                                                       callbacks=[LambdaCallback(killed)])
    assert not (tmp_path / "m" / "history.csv").exists()
    assert not (tmp_path / "m" / "checkpoint" / "checkpoint.safetensors").exists()
    capsys.readouterr()
    resumed = RNNModel(**{**tiny_settings, "epochs": 4}).fit(str(data), model_dir=model_dir, resume=True)
    assert "no checkpoint" in capsys.readouterr().err
    assert [row["epoch"] for row in resumed.history_] == [1, 2, 3, 4]


# ============================================================================ a carriage return is no line end
CR_TEXT = "carriage return at column"


def test_text_with_old_mac_line_ends_is_refused_like_the_line_formats(tmp_path):
    """The sessions and stream readers refuse a carriage return inside a line (a file of old Mac line
    ends is one line), but text read the whole file as one line with '\\r' characters: a model trained on
    it learned '\\r', and detect pointed every event at line 1. Every reader now refuses it, naming the
    file and line; CRLF line ends are read as before."""
    from seqrnn.data.formats import read_text
    from seqrnn.errors import InputError

    mac = tmp_path / "mac.txt"
    mac.write_bytes(b"the fox\rthe dog\r")
    for tokens in ("chars", "words"):
        with pytest.raises(InputError, match=rf"{mac}:1: {CR_TEXT} 8 inside a line"):
            read_text(str(mac), tokens)
    dos = tmp_path / "dos.txt"
    dos.write_bytes(b"the fox\r\nthe dog\r\n")
    seq = read_text(str(dos))[0]
    assert "".join(seq.tokens) == "the fox\nthe dog\n" and seq.lines.tolist() == [1] * 8 + [2] * 8


def test_parse_and_watch_take_a_line_holding_a_carriage_return_as_malformed(capsys, monkeypatch, tmp_path):
    """parse read a log of old Mac line ends as one line: one event for the whole file, exit 0. A line
    holding a carriage return is now malformed for parse and watch alike (as a NUL byte is), so such a
    log is refused as 'no line fits', naming its first line."""
    import io
    import sys

    from test_parse import FMT, hdfs_like
    from test_watch import _trained

    lines = hdfs_like(2)
    mac = tmp_path / "mac.log"
    mac.write_bytes(("\r".join(lines) + "\r").encode())
    code, out, err = run_cli(capsys, "parse", mac, "--log-format", FMT, "--out", tmp_path / "p1")
    assert code == 2 and f"{mac}:1: " in err and "carriage return" in err, err
    mixed = tmp_path / "mixed.log"
    mixed.write_bytes(("\n".join(lines[:1] + [lines[1].replace(" ", "\r", 1)] + lines[2:]) + "\n").encode())
    code, out, err = run_cli(capsys, "parse", mixed, "--log-format", FMT, "--out", tmp_path / "p2")
    assert code == 0 and f"{mixed}:2: holds a carriage return inside the line" in err and "1 malformed" in err
    model = _trained(capsys, tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(mixed.read_bytes())))
    code, out, err = run_cli(capsys, "watch", model, "-")
    assert code == 0 and "<stdin>:2: holds a carriage return inside the line" in err and "1 malformed" in err


def test_detect_follow_refuses_a_carriage_return_inside_a_line(capsys, monkeypatch, tmp_path, tiny_settings):
    """detect --follow read standard input of old Mac line ends as one session of every token (exit 0);
    it refuses it now as detect without --follow does."""
    import io
    import sys

    data = write_toy_sessions(tmp_path / "train")
    flags = ("--hidden", "16", "--embedding-dim", "8", "--layers", "1", "--epochs", "1", "--threads", "1", "-q")
    assert run_cli(capsys, "train", data, "-m", tmp_path / "m", *flags)[0] == 0
    mac = data.read_bytes().replace(b"\n", b"\r")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(mac)))
    code, out, err = run_cli(capsys, "detect", tmp_path / "m", "-", "--follow")
    assert code == 2 and f"<stdin>:1: {CR_TEXT}" in err and out == "", err


def test_tailer_splits_a_rotated_files_last_lines_at_newlines_only(tmp_path, monkeypatch):
    """The lines a rotated file got before its move were split at any line end Python knows (a lone CR,
    form feeds...), so their numbers went astray; only b'\\n' ends a line, as everywhere else. They are
    read as every line is: a line longer than the limit is given up (lenient), not held whole."""
    import os

    import seqrnn.tail as tail

    monkeypatch.setattr(tail, "RAW_LINE_LIMIT", 100)
    path = tmp_path / "a.log"
    path.write_bytes(b"one\n")
    gen = tail.Tailer(str(path), poll=0.01, lenient=True).lines(idle=True)
    assert next(gen) == (1, "one")
    with open(path, "ab") as fh:
        fh.write(b"par")  # the line being written as the file moves
        fh.flush()
        assert next(gen) is None
        os.rename(path, tmp_path / "a.log.1")
        fh.write(b"tial\rx\nc\x0cd\n" + b"y" * 250 + b"\nend\n")
    path.write_bytes(b"new\n")
    got = [x for x in (next(gen) for _ in range(20)) if x is not None][:5]
    assert got == [(2, "partial\rx"), (3, "c\x0cd"), (4, tail.TOO_LONG), (5, "end"), (1, "new")]
    assert got[2][1] is tail.TOO_LONG


# ============================================================================ a reader of the log that goes away
def test_training_survives_the_reader_of_its_progress_going_away(capsys, monkeypatch, tmp_path):
    """`seqrnn train ... 2>&1 | head -3`: once head exited, the next progress line raised BrokenPipeError,
    which stopped the training (status 'stopped: [Errno 32] Broken pipe') and exited 0. Standard error is
    diagnostics: writes to a closed pipe are dropped now, and the training finishes."""
    import json
    import sys

    class Head:  # takes three lines, then its reader is gone
        def __init__(self):
            self.lines = []

        def write(self, text):
            if len(self.lines) >= 3:
                raise BrokenPipeError(32, "Broken pipe")
            self.lines.append(text)
            return len(text)

        def flush(self):
            if len(self.lines) >= 3:
                raise BrokenPipeError(32, "Broken pipe")

        def isatty(self):
            return False

    from seqrnn.cli import main

    data = write_toy_sessions(tmp_path / "train")
    monkeypatch.setattr(sys, "stderr", Head())
    code = main(["train", str(data), "-m", str(tmp_path / "m"), "--hidden", "16", "--embedding-dim", "8",
                 "--layers", "1", "--epochs", "4", "--threads", "1"])
    assert code == 0
    assert json.loads((tmp_path / "m" / "status.json").read_text())["state"] == "complete"


@pytest.mark.parametrize("stderr", ["closed", "read-only"])
def test_training_with_standard_error_closed_finishes(monkeypatch, tmp_path, stderr):
    """`seqrnn train ... 2>&-` stopped at its first progress line ('NoneType' object has no attribute
    'isatty', exit 1, the directory 'stopped'); a descriptor that cannot be written (EBADF) did the same.
    Diagnostics are dropped now and the training finishes."""
    import json
    import sys

    class ReadOnly:
        def write(self, text):
            raise OSError(9, "Bad file descriptor")

        def flush(self):
            pass

        def isatty(self):
            return False

    from seqrnn.cli import main

    data = write_toy_sessions(tmp_path / "train")
    monkeypatch.setattr(sys, "stderr", None if stderr == "closed" else ReadOnly())
    code = main(["train", str(data), "-m", str(tmp_path / "m"), "--hidden", "16", "--embedding-dim", "8",
                 "--layers", "1", "--epochs", "2", "--threads", "1"])
    assert code == 0
    assert json.loads((tmp_path / "m" / "status.json").read_text())["state"] == "complete"


# ============================================================================ signals after the training
def test_sigterm_during_the_calibration_of_train_says_how_to_finish(capsys, monkeypatch, tmp_path):
    """SIGTERM (or Ctrl-C) while train calibrated its detector stopped the training of a cross-fitting
    copy, whose TrainingInterrupted ended the command in a traceback (exit 1). Now: exit 143, one line
    saying the model is saved and how to learn its detector (seqrnn calibrate); the directory holds the
    finished model, which detect refuses until then."""
    import json

    from seqrnn.crossfit import cross_fitted_surprise  # noqa: F401  (the copy's training is where it stops)
    from seqrnn.detect import Detector
    from seqrnn.train import TrainingInterrupted

    def stopped(self, *args, **kwargs):
        raise TrainingInterrupted(None, 15)

    monkeypatch.setattr(Detector, "fit", stopped)
    data = write_toy_sessions(tmp_path / "train")
    code, out, err = run_cli(capsys, "train", data, "-m", tmp_path / "m", "--hidden", "16", "--embedding-dim",
                             "8", "--layers", "1", "--epochs", "1", "--threads", "1")
    assert code == 143 and "Traceback" not in err
    assert f"interrupted while calibrating: the model is saved in {tmp_path / 'm'}" in err
    assert f"seqrnn calibrate {tmp_path / 'm'} {data}" in err
    assert json.loads((tmp_path / "m" / "status.json").read_text())["state"] == "model"


def test_an_interrupted_calibration_elsewhere_exits_like_ctrl_c(capsys, monkeypatch, tmp_path):
    """The same TrainingInterrupted from `seqrnn calibrate` (or compare) was a traceback; main turns it
    into 'interrupted' and 128 + the signal."""
    import argparse

    from seqrnn.cli import main
    from seqrnn.train import TrainingInterrupted

    def stopped(args):  # a command whose calibration's cross-fitting copy was stopped by Ctrl-C
        raise TrainingInterrupted(None, 2)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args",
                        lambda self, argv=None: (argparse.Namespace(command="calibrate", func=stopped), []))
    code = main(["calibrate", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 130 and err.strip() == "interrupted"


# ============================================================================ the directory lock
def test_a_lock_file_that_is_a_symbolic_link_is_refused_not_followed(capsys, tmp_path):
    """A model directory whose .lock is a symbolic link (copied or unpacked with it) made every writer
    truncate and overwrite the link's target with its lock text (any file the user can write). The lock
    is opened without following links now; such a directory is refused naming the link (exit 2)."""
    data = write_toy_sessions(tmp_path / "train")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    model = tmp_path / "m"
    model.mkdir()
    (model / ".lock").symlink_to(victim)
    code, out, err = run_cli(capsys, "train", data, "-m", model, "--model", "markov", "-q")
    assert code == 2 and f"{model / '.lock'}: is a symbolic link" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == "precious\n" and sorted(p.name for p in model.iterdir()) == [".lock"]


# ============================================================================ text: flags that did nothing
def test_tokens_words_without_format_text_is_refused(capsys, tmp_path):
    """`train novel.txt --tokens words` (no --format text) read the novel as sessions, one per line,
    and trained on them without a word: --tokens applies to text only. It is refused now, saying to add
    --format text; with a text model's default format it applies as before."""
    text = tmp_path / "novel.txt"
    text.write_text("the fox jumps over the dog\n" * 30)
    code, out, err = run_cli(capsys, "train", text, "-m", tmp_path / "m", "--tokens", "words", "--model", "markov")
    assert code == 2 and "--tokens words applies to --format text" in err and not (tmp_path / "m").exists()
    code, out, err = run_cli(capsys, "train", text, "-m", tmp_path / "w", "--format", "text", "--tokens", "words",
                             "--model", "markov", "-q")
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "w", text, "--tokens", "words", "--json")
    assert code == 0, err


def test_tune_stopped_by_sigterm_exits_143(capsys, monkeypatch, tmp_path):
    """tune stopped by SIGTERM printed its report but exited 130, Ctrl-C's status; now 128 + the signal."""
    from seqrnn.errors import Terminated
    from seqrnn.experiments import tune

    def terminated(*args, **kwargs):
        raise Terminated(15)

    monkeypatch.setattr(tune, "search", terminated)
    data = write_toy_sessions(tmp_path / "train")
    code, out, err = run_cli(capsys, "tune", data, "--study", tmp_path / "t.db", "--trials", "1")
    assert code == 143 and "interrupted: the study in" in err and "0 trials" in out


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks for a trial by hand
def test_a_trial_killed_with_its_process_is_failed_when_the_search_resumes(tmp_path, monkeypatch):
    """tune killed by kill -9 left its trial 'running' for ever: the report counted it running, and the
    next search took it for another process searching now, so its sampler's seed took the process id
    (a resumed search no longer drew the same trials). Trials now beat a heartbeat; one whose heartbeat
    stopped is failed when a search opens the study."""
    import time

    from seqrnn.experiments import tune

    monkeypatch.setattr(tune, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(tune, "STALE_SECONDS", 1)
    path = str(tmp_path / "t.db")
    study = tune.open_study(path)
    trial = study.ask()  # its process dies here, its heartbeat with it
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(2.2)
    assert [t.state.name for t in tune.open_study(path, create=False).trials] == ["RUNNING"]  # a report: as is
    study = tune.open_study(path, seed=7)
    assert [t.state.name for t in study.trials] == ["FAIL"]
    import optuna

    expected = optuna.samplers.TPESampler(seed=7 + 1)  # the seed plus the trials: no process id in it
    assert study.sampler._rng.rng.randint(2**31) == expected._rng.rng.randint(2**31)


# ============================================================================ a folder that is not ours
@pytest.mark.parametrize("files", [{"config.json": '{"my": "settings"}\n'},  # another tool's settings
                                   {"model.safetensors": "weights of another framework"},  # a Hugging Face folder
                                   {"history.csv": "date,amount\n"}])
def test_training_into_a_folder_of_other_files_with_our_names_is_refused(capsys, tmp_path, files):
    """`train -m FOLDER` replaced a config.json, model.safetensors or history.csv that seqrnn did not write
    (another tool's settings, another framework's model folder) without a word: lost work. A folder that
    holds one of the model directory's file names, and is not a seqrnn model directory, is refused now,
    naming the file; other files (notes, a report) stay beside a model as before."""
    data = write_toy_sessions(tmp_path / "train")
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "notes.txt").write_text("mine\n")
    code, out, err = run_cli(capsys, "train", data, "-m", folder, "--model", "markov", "-q")
    name = next(iter(files))
    assert code == 2 and f"{folder / name}: seqrnn did not write this file" in err, err
    assert {p.name: p.read_text() for p in folder.iterdir()} == {**files, "notes.txt": "mine\n"}
    (folder / name).unlink()
    assert run_cli(capsys, "train", data, "-m", folder, "--model", "markov", "-q")[0] == 0
    assert (folder / "notes.txt").read_text() == "mine\n"
    assert run_cli(capsys, "train", data, "-m", folder, "--model", "markov", "-q")[0] == 0  # ours now


def test_training_into_its_own_input_folder_is_refused(capsys, tmp_path):
    """`train data/ -m data/` wrote the model files among the data: the next training read them as data
    (detector.safetensors:1: byte 0x98 is not UTF-8 text). It is refused at once now."""
    data = tmp_path / "data"
    data.mkdir()
    write_toy_sessions(data / "train")
    code, out, err = run_cli(capsys, "train", data, "-m", data, "--model", "markov", "-q")
    assert code == 2 and "is also an input folder" in err, err
    assert sorted(p.name for p in data.iterdir()) == ["train"]


def test_following_a_file_of_old_mac_line_ends_is_refused_not_waited_on(tmp_path):
    """detect --follow on a file of lone-CR line ends waited for ever for its first '\\n', saying nothing;
    the tailer now refuses such a line as soon as it holds a carriage return followed by more text."""
    from seqrnn.errors import InputError
    from seqrnn.tail import Tailer

    path = tmp_path / "mac.txt"
    path.write_bytes(b"s1,a b\rs2,a b\r")
    with pytest.raises(InputError, match=rf"{path}:1: carriage return at column 7 inside a line"):
        next(Tailer(str(path), poll=0.01).lines())
    path.write_bytes(b"s1,a b\r")  # perhaps the first half of \r\n: wait for the rest
    gen = Tailer(str(path), poll=0.01).lines(idle=True)
    assert next(gen) is None
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert next(gen) == (1, "s1,a b")


def test_a_model_retrained_on_other_data_drops_the_earlier_parser(capsys, tmp_path):
    """A model directory trained on a parsed folder keeps its parser (MODEL/parser, what watch parses new
    lines with). Trained again on other data, it kept that parser: watch then parsed lines into event ids
    of the earlier parse, which the new model reads as other events, without a word. The parser copy
    goes when the new training data is not one parsed folder."""
    from test_watch import _trained

    model = _trained(capsys, tmp_path)
    assert (model / "parser" / "parser.json").is_file()
    data = write_toy_sessions(tmp_path / "other")
    assert run_cli(capsys, "train", data, "-m", model, "--model", "markov", "-q")[0] == 0
    assert not (model / "parser").exists()
    code, out, err = run_cli(capsys, "watch", model, tmp_path / "train.log")
    assert code == 2 and "parser" in err, err


def test_a_directory_of_an_earlier_seqrnn_is_ours_to_write(capsys, tmp_path):
    """The check for foreign files takes a directory without status.json (an earlier seqrnn's) as ours when
    its config.json is of a seqrnn format: a next-event model's or a classifier's."""
    import json

    from seqrnn.modeldir import refuse_foreign

    for fmt in ("seqrnn-model", "seqrnn-classifier"):
        folder = tmp_path / fmt
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"format": fmt, "format_version": 1}))
        (folder / "model.safetensors").write_bytes(b"old weights")
        refuse_foreign(str(folder))  # no error


def test_a_study_resumed_on_other_data_is_refused(capsys, tmp_path):
    """A study resumed with other data, format or text unit (characters, then words) mixed the trials'
    validation losses (nats per character beside nats per word) and called the lowest the best, in the
    best file train --config reads. The study records what it searches on and refuses another."""
    import json

    data = write_toy_sessions(tmp_path / "train")
    other = write_toy_sessions(tmp_path / "other", seed=3)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"hidden": 8, "layers": 1, "embedding_dim": 4, "epochs": 1, "batch_size": [16]}))
    study = tmp_path / "t.db"
    base = ("--study", study, "--space", space, "--threads", "1")
    assert run_cli(capsys, "tune", data, *base, "--trials", "1")[0] == 0
    for more in ((data, "--format", "text"), (data, "--format", "text", "--tokens", "words"), (other,)):
        code, out, err = run_cli(capsys, "tune", *more, *base, "--trials", "2")
        assert code == 2 and f"{study}: the study searched on" in err and "use another --study" in err, err
    code, out, err = run_cli(capsys, "tune", data, *base, "--trials", "2")
    assert code == 0 and "2 trials: 2 complete" in out, err


@pytest.mark.parametrize("argv, says", [
    (["train", "DATA", "-m", ""], "the model directory is an empty path"),
    (["info", ""], "the model directory is an empty path"),
    (["encode", "DATA", "-o", ""], "--output is an empty path"),
    (["parse", "DATA", "--out", ""], "--out is an empty path"),
    (["demo", "-o", ""], "--output-dir is an empty path"),
    (["report", ""], "DIR is an empty path"),
    (["tune", "DATA", "--study", "", "--trials", "1"], "--study is an empty path"),
])
def test_an_empty_path_is_named_as_such(capsys, tmp_path, argv, says):
    """An empty string for a path to write said only 'No such file or directory' (review10's note)."""
    from seqrnn.cli import main

    data = tmp_path / "data"
    data.write_text("a b c\n")
    assert main([str(data) if a == "DATA" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err
