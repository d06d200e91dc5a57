"""The ``seqrnn`` command line, run in-process through ``seqrnn.cli.main``
(which returns the exit code), plus two subprocess checks of start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from seqrnn.cli import main

TINY_FLAGS = ["--hidden", "16", "--embedding-dim", "8", "--layers", "1", "--epochs", "2", "--threads", "1",
              "--batch-size", "16"]


def run_cli(capsys, *argv: str):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


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
    # 1x16 LSTM on 8-dim embeddings, vocabulary 9
    assert info["parameters"] == 9 * 8 + 4 * 16 * (8 + 16 + 2) + 16 * 9 + 9

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
