"""The ``seqrnn`` command line, run in-process through ``seqrnn.cli.main``
(which returns the exit code), plus subprocess checks of start-up.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys

import pytest

from conftest import run_cli
from seqrnn.cli import build_parser, main

TINY_FLAGS = ["--hidden", "16", "--embedding-dim", "8", "--layers", "1", "--epochs", "2", "--threads", "1",
              "--batch-size", "16"]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ============================================================================ start-up
def test_help_in_subprocess():
    r = subprocess.run([sys.executable, "-m", "seqrnn", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "usage: seqrnn" in r.stdout
    for command in ("train", "evaluate", "predict", "detect", "info"):
        assert command in r.stdout


def test_cli_import_does_not_import_torch():
    r = subprocess.run([sys.executable, "-c", "import seqrnn.cli, sys; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_no_help_imports_numpy_or_torch():
    # Every command's --help (and the subcommands' of classify) answers without numpy or torch.
    code = """
import argparse, contextlib, io, sys
from seqrnn.cli import build_parser, main

def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from commands(sub, prefix + (name,))

done = []
for argv in [()] + list(commands(build_parser())):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main([*argv, "--help"])
        except SystemExit:
            pass
    assert "usage: seqrnn" in out.getvalue(), argv
    heavy = sorted(m for m in ("numpy", "torch", "optuna", "matplotlib") if m in sys.modules)
    assert not heavy, (argv, heavy)
    done.append(" ".join(argv))
print(len(done))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 15  # seqrnn, its 11 commands and classify's 3


# ============================================================================ the workflow
def test_train_evaluate_predict_info_detect(capsys, toy_sessions, tmp_path):
    model_dir = tmp_path / "model"
    code, out, err = run_cli(capsys, "train", toy_sessions, "--model-dir", model_dir, *TINY_FLAGS, "--quiet",
                             "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["epochs"] == 2 and summary["last"]["epoch"] == 2
    assert summary["calibration"]["nll_threshold"] > 0
    assert {"config.json", "model.safetensors", "history.csv"} <= set(os.listdir(model_dir))

    # evaluate --json
    code, out, err = run_cli(capsys, "evaluate", model_dir, toy_sessions, "--json")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["sequences"] == 60
    topk = [ev["topk_accuracy"][str(k)] for k in range(1, 11)]
    assert all(a <= b for a, b in zip(topk, topk[1:]))
    assert ev["accuracy"] == topk[0]
    code, out, err = run_cli(capsys, "evaluate", model_dir, toy_sessions)  # the same, for a person
    assert code == 0, err
    shown = dict(line.strip().split(": ") for line in out.strip().splitlines())
    assert shown["sequences"] == "60" and shown["loss"] == f"{ev['loss']:.4f}"
    assert shown["accuracy"] == shown["top-1 accuracy"] == f"{topk[0]:.4f}"

    # predict --json --limit 2: one JSON object per sequence, the first two
    code, out, err = run_cli(capsys, "predict", model_dir, toy_sessions, "--json", "--limit", "2")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["id"] for r in rows] == ["s0", "s1"]
    first_tokens = toy_sessions.read_text().splitlines()[0].split(",", 1)[1].split()
    assert rows[0]["true"] == first_tokens + ["<end>"]
    assert len(rows[0]["predicted"]) == len(rows[0]["probability"]) == len(first_tokens) + 1
    assert all(len(p) == 3 for p in rows[0]["predicted"])  # -k 3 by default
    assert all(0.0 <= p <= 1.0 for p in rows[0]["probability"])

    # info --json
    code, out, err = run_cli(capsys, "info", model_dir, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["kind"] == "rnn"
    assert info["settings"]["hidden"] == 16 and info["settings"]["layers"] == 1
    assert info["events"] == 5 and info["vocabulary_size"] == 9  # a b c d e + 4 reserved
    assert info["data_format"] == "sessions"
    assert info["training"]["epochs"] == 2
    # 1x16 GRU (the default cell) on 8-dim embeddings, vocabulary 9
    assert info["parameters"] == 9 * 8 + 3 * 16 * (8 + 16 + 2) + 16 * 9 + 9

    # detect: JSON lines, one per input sequence, in input order
    probe = tmp_path / "probe.txt"
    lines = toy_sessions.read_text().splitlines()[:5] + ["odd1,a b zzz c d", "odd2,a b b c d"]
    probe.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(capsys, "detect", model_dir, probe)
    assert code == 0, err
    found = [json.loads(line) for line in out.strip().splitlines()]
    assert [f["id"] for f in found] == ["s0", "s1", "s2", "s3", "s4", "odd1", "odd2"]
    for f in found:
        assert isinstance(f["anomalous"], bool) and isinstance(f["score"], float)
    odd = found[5]
    assert odd["anomalous"] is True and odd["score"] > 1.0
    assert odd["event"] == "zzz" and odd["position"] == 2
    assert odd["location"] == f"{probe}:6"
    assert "unseen" in odd["reason"]
    assert "sequences anomalous" in err

    # --output writes the same lines to a file
    out_file = tmp_path / "found.jsonl"
    code, out, err = run_cli(capsys, "detect", model_dir, probe, "--output", out_file)
    assert code == 0 and out == ""
    assert [json.loads(x)["id"] for x in out_file.read_text().splitlines()] == [f["id"] for f in found]


# ============================================================================ bad input
@pytest.fixture
def model_dir(tmp_path, toy_sessions, capsys):
    d = tmp_path / "model"
    code, _, err = run_cli(capsys, "train", toy_sessions, "-m", d, *TINY_FLAGS, "--epochs", "1", "-q")
    assert code == 0, err
    return d


def test_missing_path(capsys, tmp_path):
    missing = tmp_path / "nope.txt"
    code, out, err = run_cli(capsys, "train", missing, "-m", tmp_path / "m", *TINY_FLAGS, "-q")
    assert code == 2
    assert str(missing) in one_error_line(err)
    assert not (tmp_path / "m").exists()


def test_empty_file(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out, err = run_cli(capsys, "train", empty, "-m", tmp_path / "m", *TINY_FLAGS, "-q")
    assert code == 2
    assert str(empty) in one_error_line(err)


def test_non_utf8_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"s1,a b c d\ns2,a b c d\ns3,a \xfe c d\n")
    code, out, err = run_cli(capsys, "train", bad, "-m", tmp_path / "m", *TINY_FLAGS, "-q")
    assert code == 2
    assert f"{bad}:3:" in one_error_line(err)


def test_non_utf8_on_evaluate(capsys, tmp_path, model_dir):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"s1,a b c d\ns2,a b c d\ns3,a \xfe c d\n")
    code, out, err = run_cli(capsys, "evaluate", model_dir, bad)
    assert code == 2 and out == ""
    assert f"{bad}:3:" in one_error_line(err)


def test_unknown_format(capsys, toy_sessions, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", str(toy_sessions), "-m", str(tmp_path / "m"), "--format", "xml"])
    assert exc.value.code == 2
    assert "xml" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict", "detect"])
def test_model_dir_does_not_exist(capsys, toy_sessions, tmp_path, command):
    absent = tmp_path / "no-model"
    code, out, err = run_cli(capsys, command, absent, toy_sessions)
    assert code == 2
    assert str(absent) in one_error_line(err)


def test_info_model_dir_does_not_exist(capsys, tmp_path):
    absent = tmp_path / "no-model"
    code, out, err = run_cli(capsys, "info", absent)
    assert code == 2
    assert str(absent) in one_error_line(err)


def test_session_too_long(capsys, tmp_path, model_dir):
    long = tmp_path / "long.txt"
    long.write_text("s1,a b c d\ns2," + "b " * 50 + "\n")
    code, out, err = run_cli(capsys, "evaluate", model_dir, long, "--max-length", "20")
    assert code == 2
    assert f"{long}:2:" in one_error_line(err)


# ============================================================================ errors: parameters and flags
def test_error_names_the_flag_on_the_command_line_and_the_parameter_in_python(capsys, toy_sessions, tmp_path):
    from seqrnn.errors import InputError
    from seqrnn.models.rnn import RNNModel

    with pytest.raises(InputError) as exc:
        RNNModel(embedding_dim=0)
    assert str(exc.value) == "embedding_dim must be >= 1, not 0"
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--embedding-dim", "0", "-q")
    assert code == 2
    assert one_error_line(err) == "seqrnn train: error: --embedding-dim must be >= 1, not 0"

    # several parameters in one message; a flag whose dest is not its name (--validation-split)
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--bidirectional", "-q")
    assert code == 2 and one_error_line(err).startswith("seqrnn train: error: --bidirectional needs --mapping "
                                                        "many-to-one")
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--validation-split", "1.5")
    assert code == 2 and "--validation-split (a fraction) must be in [0, 1), not 1.5" in err

    # a command that passes a flag to a parameter of another name (SampleCallback's every)
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", *TINY_FLAGS, "--sample-every",
                             "-1", "-q")
    assert code == 2 and one_error_line(err) == "seqrnn train: error: --sample-every must be >= 1, not -1"

    # experiments: compare's repeat
    code, out, err = run_cli(capsys, "compare", toy_sessions, "--normal", toy_sessions, "--abnormal", toy_sessions,
                             "--repeat", "0", "-q")
    assert code == 2 and one_error_line(err) == "seqrnn compare: error: --repeat must be at least 1, not 0"


def test_error_keeps_the_file_and_line_and_renames_whole_words_only():
    from seqrnn.errors import InputError

    exc = InputError("session too long (use format stream, or a larger max_length; max_length_x stays)",
                     "/data/max_length/format.txt", 3, params=("format", "max_length"))
    assert str(exc).startswith("/data/max_length/format.txt:3: session too long (use format stream")
    renamed = exc.renamed({"format": "--format", "max_length": "--max-length", "other": "--other"})
    assert renamed == ("/data/max_length/format.txt:3: session too long (use --format stream, or a larger "
                       "--max-length; max_length_x stays)")
    assert InputError("top_k must be >= 0", params="top_k").renamed({}) == "top_k must be >= 0"


def test_session_too_long_names_the_flags(capsys, tmp_path, model_dir):
    from seqrnn.data.formats import read_sessions
    from seqrnn.errors import InputError

    long = tmp_path / "long.txt"
    long.write_text("s1,a b c d\ns2," + "b " * 50 + "\n")
    with pytest.raises(InputError, match=r"use format stream for one long sequence, or a larger max_length\)"):
        read_sessions(str(long), max_length=20)
    code, out, err = run_cli(capsys, "evaluate", model_dir, long, "--max-length", "20")
    assert code == 2
    assert one_error_line(err).endswith("(use --format stream for one long sequence, or a larger --max-length)")


# ============================================================================ settings: flags reach the model
def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _setting_flags(kind: str) -> tuple[list[str], dict]:
    """A value for every setting flag of ``train`` that model ``kind`` takes: flags, dest -> value."""
    from seqrnn.cli.train import accepted_settings
    from seqrnn.models import model_class

    parser = _subparser("train")
    accepted = accepted_settings(model_class(kind))
    flags, values = [], {}
    for action in parser._actions:
        dest = action.dest
        if dest not in parser.get_default("settings") or dest not in accepted:
            continue
        if action.choices:
            value = list(action.choices)[-1] if dest != "preset" else "deeplog"
        elif action.nargs == 0:  # a switch
            value = True
        elif dest == "threads":
            value = 1
        elif dest == "device":
            value = "cpu"
        else:
            value = {int: 2, float: 0.25}[action.type]
        values[dest] = value
        flags += [action.option_strings[0]] + ([] if value is True else [str(value)])
    return flags, values


@pytest.mark.parametrize("kind", ["rnn", "markov", "nb", "hmm", "count"])
def test_every_setting_flag_reaches_the_model(capsys, toy_sessions, tmp_path, kind):
    import seqrnn

    flags, values = _setting_flags(kind)
    assert len(values) >= {"rnn": 25, "markov": 4}.get(kind, 4)
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / kind, "--model", kind, *flags, "-q")
    assert code == 0, err
    settings = seqrnn.load(str(tmp_path / kind))._settings()
    values.pop("preset", None)  # a preset is a starting point, every setting here overrides it
    assert {k: settings[k] for k in values} == values


def test_a_setting_the_model_does_not_take_is_refused(capsys, toy_sessions, tmp_path):
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--model", "markov",
                             "--hidden", "8", "--embedding-dim", "4")
    assert code == 2
    assert one_error_line(err) == "seqrnn train: error: --embedding-dim, --hidden do not apply to --model markov"
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--order", "2")
    assert code == 2 and "--order does not apply to --model rnn" in err
    code, out, err = run_cli(capsys, "train", toy_sessions, "-m", tmp_path / "m", "--model", "nb", "--resume")
    assert code == 2 and "--resume does not apply to --model nb" in err
    assert not (tmp_path / "m").exists()


# ============================================================================ detect --follow
class Typist:
    """Standard input that gives its lines one at a time and, before each read, notes what the
    watched files hold then: a line decided is in them before the next line is read."""

    def __init__(self, lines, watch=(), interrupt=False):
        self.buffer = self
        self.lines, self.watch, self.interrupt = list(lines), list(watch), interrupt
        self.seen: list[list[str]] = []

    def readline(self, size: int = -1) -> bytes:  # whole lines (the test's are short)
        self.seen.append([p.read_text() if p.exists() else "" for p in self.watch])
        if self.lines:
            return (self.lines.pop(0) + "\n").encode()
        if self.interrupt:
            raise KeyboardInterrupt
        return b""


PROBE = ["p1,a b c d", "p2,a b b c e d", "p3,a zzz c d", "p4,a b c"]
PLOTS = ("probability.png", "nll.png", "histogram.png")


@pytest.fixture
def stream_dir(tmp_path, toy_sessions, capsys):
    stream = tmp_path / "stream.txt"
    stream.write_text("".join(t + "\n" for line in toy_sessions.read_text().splitlines()
                              for t in line.split(",")[1].split()))
    d = tmp_path / "stream-model"
    code, _, err = run_cli(capsys, "train", stream, "--format", "stream", "-m", d, *TINY_FLAGS, "--epochs", "1",
                           "-q")
    assert code == 0, err
    return d


def _stdin(lines) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO("".join(line + "\n" for line in lines).encode()))


def _csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_follow_takes_parameters_and_matches_detect(capsys, monkeypatch, tmp_path, model_dir):
    from seqrnn.detect import Detector
    from seqrnn.follow import follow

    detector = Detector.load(str(model_dir), topk=3)
    monkeypatch.setattr(sys, "stdin", Typist(PROBE))
    out = io.StringIO()
    anomalous, decided = follow(detector, "-", format="sessions", out=out, events=str(tmp_path / "f.csv"),
                                plot=str(tmp_path / "plots"))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert decided == 4 and [r["id"] for r in rows] == ["p1", "p2", "p3", "p4"]
    assert anomalous == sum(r["anomalous"] for r in rows) and rows[2]["event"] == "zzz"
    assert all(len(r.get("expected", [])) <= 3 for r in rows)  # k: the detector's topk
    assert all((tmp_path / "plots" / name).stat().st_size > 0 for name in PLOTS)

    # the same lines, the same table as detect's, read at once
    monkeypatch.setattr(sys, "stdin", _stdin(PROBE))
    code, batch, err = run_cli(capsys, "detect", model_dir, "-", "-k", "3", "--events", tmp_path / "b.csv")
    assert code == 0, err
    assert [json.loads(line) for line in batch.splitlines()] == rows
    assert _csv(tmp_path / "f.csv") == _csv(tmp_path / "b.csv")

    # only the anomalous ones, and the text format refused by parameter name
    monkeypatch.setattr(sys, "stdin", Typist(PROBE))
    out = io.StringIO()
    follow(detector, "-", only_anomalous=True, out=out)
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [r["id"] for r in rows
                                                                               if r["anomalous"]]
    from seqrnn.errors import InputError

    with pytest.raises(InputError, match="^follow reads sessions or a stream of events, not text$"):
        follow(detector, "-", format="text")


def test_follow_writes_output_and_events_line_by_line(capsys, monkeypatch, tmp_path, model_dir):
    found, events, plots = tmp_path / "found.jsonl", tmp_path / "events.csv", tmp_path / "plots"
    typist = Typist(PROBE, watch=[found, events])
    monkeypatch.setattr(sys, "stdin", typist)
    code, out, err = run_cli(capsys, "detect", model_dir, "-", "--follow", "--output", found, "--events", events,
                             "--plot", plots)
    assert code == 0, err
    assert out == "" and "of 4 sequences anomalous" in err
    assert "false-positive rate promised by the calibration" in err and f"full output: {found} (one JSON" in err
    assert [json.loads(line)["id"] for line in found.read_text().splitlines()] == ["p1", "p2", "p3", "p4"]
    table = _csv(events)
    lengths = [len(line.split(",")[1].split()) + 1 for line in PROBE]  # the events and the end
    assert len(table) == 1 + sum(lengths)
    # before reading line i + 1, the i lines before it were in both files
    for i, (jsonl, csv_text) in enumerate(typist.seen[1:]):
        assert len(jsonl.splitlines()) == i + 1
        assert len(csv_text.splitlines()) == 1 + sum(lengths[: i + 1])
    assert all((plots / name).stat().st_size > 0 for name in PLOTS)


def test_follow_interrupted_writes_plots_and_exits_130(capsys, monkeypatch, tmp_path, model_dir):
    found, plots = tmp_path / "found.jsonl", tmp_path / "plots"
    monkeypatch.setattr(sys, "stdin", Typist(PROBE[:2], interrupt=True))
    code, out, err = run_cli(capsys, "detect", model_dir, "-", "--follow", "-o", found, "--plot", plots)
    assert code == 130 and "interrupted" in err
    assert len(found.read_text().splitlines()) == 2
    assert all((plots / name).stat().st_size > 0 for name in PLOTS)


def test_follow_stream_events_table_matches_detect(capsys, monkeypatch, tmp_path, stream_dir):
    tokens = ["a", "b", "b", "c", "zzz", "d", "a"]
    monkeypatch.setattr(sys, "stdin", Typist(tokens))
    code, out, err = run_cli(capsys, "detect", stream_dir, "-", "--follow", "--events", tmp_path / "f.csv",
                             "--plot", tmp_path / "plots")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in rows] == tokens and rows[4]["anomalous"] is True
    assert "of 7 events anomalous" in err
    assert all((tmp_path / "plots" / name).stat().st_size > 0 for name in PLOTS)
    monkeypatch.setattr(sys, "stdin", _stdin(tokens))
    code, out, err = run_cli(capsys, "detect", stream_dir, "-", "--format", "stream", "--events", tmp_path / "b.csv")
    assert code == 0, err
    follow_table, batch_table = _csv(tmp_path / "f.csv"), _csv(tmp_path / "b.csv")
    assert len(follow_table) == len(batch_table) == 1 + len(tokens)
    for f, b in zip(follow_table, batch_table):
        # id, position, location, event, (probability, nll: one step at a time), rank, anomalous, expected
        assert f[:4] + f[6:] == b[:4] + b[6:]
    for f, b in zip(follow_table[1:], batch_table[1:]):
        assert float(f[4]) == pytest.approx(float(b[4]), rel=1e-4)


def test_an_output_that_is_an_input_or_a_model_file_is_refused_before_it_is_replaced(capsys, toy_sessions,
                                                                                     tmp_path):
    """--output is written whole at the end: naming an input replaced the data read with the results, and
    generate --output MODEL/config.json replaced the model's config (only detect refused it)."""
    model = tmp_path / "m"
    assert run_cli(capsys, "train", toy_sessions, "--model", "markov", "--model-dir", model)[0] == 0
    data = tmp_path / "data"
    data.write_bytes(toy_sessions.read_bytes())
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "part").write_bytes(toy_sessions.read_bytes())
    said = "is one of the inputs: writing it would replace the data read"
    for argv, output in ((("evaluate", model, data), data), (("predict", model, data), data),
                         (("evaluate-detection", model, "--normal", data, "--abnormal", toy_sessions), data),
                         (("evaluate", model, folder), folder / "part"),
                         (("report", model, "--normal", toy_sessions, "--abnormal", data), data)):
        code, out, err = run_cli(capsys, *argv, "--output", output)
        assert (code, err) == (2, f"seqrnn {argv[0]}: error: --output {output} {said}\n")
    config = (model / "config.json").read_bytes()
    code, out, err = run_cli(capsys, "generate", model, "--output", model / "config.json")
    assert (code, err) == (2, f"seqrnn generate: error: --output {model / 'config.json'} is a file of {model}, "
                              "which the command reads: writing it would damage it\n")
    assert (model / "config.json").read_bytes() == config
    assert data.read_bytes() == toy_sessions.read_bytes() == (folder / "part").read_bytes()
    assert run_cli(capsys, "evaluate", model, data, "--output", tmp_path / "new.txt")[0] == 0  # elsewhere: written
    assert run_cli(capsys, "evaluate", model, data, "--output", tmp_path / "new.txt")[0] == 0  # and replaced
    for _ in range(2):  # a report kept in the model directory is no file the report reads: written again
        assert run_cli(capsys, "report", model, "-o", model / "report.html")[0] == 0


def test_a_plot_folder_that_is_a_file_is_refused_before_the_work(capsys, toy_sessions, tmp_path, monkeypatch):
    """evaluate-detection --plot FILE decided every sequence, then failed to write the plots ('File exists'),
    printing no metrics."""
    model = tmp_path / "m"
    assert run_cli(capsys, "train", toy_sessions, "--model", "markov", "--model-dir", model)[0] == 0
    taken = tmp_path / "taken"
    taken.write_text("x\n")
    from seqrnn.detect import Detector

    monkeypatch.setattr(Detector, "decide", lambda *a, **k: pytest.fail("decided before the --plot check"))
    for plot in (taken, taken / "sub"):
        for argv in (("evaluate-detection", model, "--normal", toy_sessions, "--abnormal", toy_sessions),
                     ("detect", model, toy_sessions)):
            code, out, err = run_cli(capsys, *argv, "--plot", plot)
            assert (code, err) == (2, f"seqrnn {argv[0]}: error: --plot {plot} names the folder of the plots, but "
                                      f"{taken} is a file\n")


def test_an_atomic_write_to_a_pipe_or_device_writes_into_it_never_replaces_it(capsys, toy_sessions, tmp_path):
    """report -o /dev/null renamed its temporary file over /dev/null (as root: /dev/null became a regular
    file, for every process of the machine). Shown here on a FIFO: written through, still a FIFO after."""
    import stat
    import threading

    from seqrnn.artifacts import atomic_write_text

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []

    def drain():
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    for write in (lambda: atomic_write_text(str(fifo), "hello\n"),
                  lambda: run_cli(capsys, "train", toy_sessions, "--model", "markov", "--model-dir", tmp_path / "m")
                  and run_cli(capsys, "report", tmp_path / "m", "-o", fifo)):
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        write()
        reader.join(timeout=20)
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got[0] == b"hello\n" and got[1].startswith(b"<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pipe")] == []


def test_data_given_where_the_model_goes_is_named_as_such(capsys, toy_sessions, tmp_path):
    # A file given as MODEL (the arguments swapped) was 'no such model directory', though it exists; a parsed
    # folder or seqrnn encode's shards 'not a seqrnn model directory (config.json is missing)'; watch with
    # its arguments swapped looked for 'LOG/parser' and asked for --parsed.
    code, out, err = run_cli(capsys, "train", toy_sessions, "--model", "markov", "--model-dir", tmp_path / "m")
    assert code == 0, err
    code, _, err = run_cli(capsys, "detect", toy_sessions, tmp_path / "m")
    assert code == 2 and one_error_line(err) == (
        f"seqrnn detect: error: {toy_sessions}: is a file, not a model directory (the folder a training wrote "
        "with --model-dir; it comes before the data)")
    code, _, err = run_cli(capsys, "watch", toy_sessions, tmp_path / "m")
    assert code == 2 and "is a file, not a model directory" in one_error_line(err)
    log = tmp_path / "app.log"
    log.write_text("".join(f"2024-01-0{1 + i % 9} 10:00:0{i % 10} INFO job {i} started\n" for i in range(20)))
    code, _, err = run_cli(capsys, "parse", log, "--out", tmp_path / "parsed", "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "encode", toy_sessions, "--output", tmp_path / "shards")
    assert code == 0, err
    for folder, writer in (("parsed", "seqrnn parse"), ("shards", "seqrnn encode")):
        for argv in (("info", tmp_path / folder), ("detect", tmp_path / folder, toy_sessions),
                     ("watch", tmp_path / folder, log)):
            code, _, err = run_cli(capsys, *argv)
            assert code == 2 and one_error_line(err) == (
                f"seqrnn {argv[0]}: error: {tmp_path / folder}: is a folder written by {writer}, not a model "
                f"directory: train a model on it (seqrnn train {tmp_path / folder} --model-dir DIR) and give DIR"), err
    code, _, err = run_cli(capsys, "info", tmp_path / "nothere")
    assert code == 2 and one_error_line(err).endswith("nothere: no such model directory")


def test_an_unknown_flag_is_named_by_its_command(capsys):
    # 'seqrnn detect MODEL X --target-fpr 0.01' said 'seqrnn: error: unrecognized arguments: ...' under the
    # top level's usage (COMMAND ...), not which command refused it nor that command's flags
    for argv, command in ((["detect", "m", "x", "--target-fpr", "0.01"], "detect"),
                          (["classify", "predict", "m", "x", "--bogus"], "classify predict")):
        from seqrnn.cli import main

        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith(f"usage: seqrnn {command} ")
        unknown = " ".join(argv[argv.index("x") + 1:])
        assert err.strip().splitlines()[-1] == f"seqrnn {command}: error: unrecognized arguments: {unknown}"


def test_report_takes_threads_as_every_command_that_computes(capsys, toy_sessions, tmp_path):
    # README: '--threads N on every command that computes'; report scores the data it is given, but refused
    # the flag ('unrecognized arguments: --threads 1')
    code, _, err = run_cli(capsys, "train", toy_sessions, "--model", "markov", "--model-dir", tmp_path / "m")
    assert code == 0, err
    code, _, err = run_cli(capsys, "report", tmp_path / "m", toy_sessions, "-o", tmp_path / "r.html",
                           "--threads", "1")
    assert code == 0 and (tmp_path / "r.html").is_file(), err


def test_info_and_calibrate_on_a_model_trained_without_calibration(capsys, toy_sessions, tmp_path):
    # info said 'detector.json is missing ... (so a training that was stopped leaves none: resume it with
    # --resume, or calibrate it again ...)' of a training that finished with --no-calibration, and calibrate
    # printed all of that, its advice to run seqrnn calibrate included, before calibrating
    m = tmp_path / "m"
    code, _, err = run_cli(capsys, "train", toy_sessions, "--model-dir", m, *TINY_FLAGS, "--no-calibration")
    assert code == 0, err
    code, out, err = run_cli(capsys, "info", m)
    assert code == 0 and (f"detection  none: {m}: the model has no detector (its training finished, its "
                          f"calibration did not, or train --no-calibration skipped it): calibrate it with "
                          f"seqrnn calibrate {m} NORMAL...") in out
    assert "--resume" not in out
    code, _, err = run_cli(capsys, "calibrate", m, toy_sessions)
    assert code == 0 and err.splitlines()[0] == "no detector to add to; calibrating from scratch on the sequences given"


def test_a_baseline_trained_with_no_calibration_has_no_detector(capsys, toy_sessions, tmp_path):
    # train --model markov --no-calibration calibrated all the same (the flag was read by the neural path alone)
    m = tmp_path / "m"
    code, out, err = run_cli(capsys, "train", toy_sessions, "--model", "markov", "--model-dir", m,
                             "--no-calibration", "--json")
    assert code == 0 and json.loads(out)["calibration"] is None, err
    assert not (m / "detector.json").exists()
    code, _, err = run_cli(capsys, "detect", m, toy_sessions)
    assert code == 2 and "the model has no detector" in one_error_line(err)
    code, _, err = run_cli(capsys, "calibrate", m, toy_sessions)
    assert code == 0 and (m / "detector.json").is_file(), err
    # trained again without calibration over a complete one: the earlier detector goes, as for an RNN
    code, out, err = run_cli(capsys, "train", toy_sessions, "--model", "markov", "--order", "2", "--model-dir", m,
                             "--no-calibration")
    assert code == 0 and not (m / "detector.json").exists() and not (m / "detector.safetensors").exists(), err
    assert json.loads((m / "status.json").read_text())["state"] == "model"
    code, _, err = run_cli(capsys, "detect", m, toy_sessions)
    assert code == 2 and "the model has no detector" in one_error_line(err)
