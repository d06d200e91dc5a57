"""Bad input of every kind gets exit 0 or 2 and one clear line, never a traceback or a silent wrong result.

Cases of issue 17 (sessions whose lines disagree about ids, NUL bytes, crafted
model directories, closed standard streams, seeds, temperatures and sizes
that cannot be allocated) and fuzz loops: random bytes and random token files
through every reader, random mutations of ``config.json`` and of the weights
files. The command line runs in-process (``seqrnn.cli.main``) so that hundreds
of cases take seconds; a few cases that need a real process (closed standard
streams) run one.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from conftest import toy_session_lines, write_toy_sessions
from seqrnn.cli import main

TINY = ["--hidden", "8", "--embedding-dim", "4", "--layers", "1", "--epochs", "1", "--threads", "1",
        "--batch-size", "16"]


def quiet_main(argv) -> tuple[int, str, str]:
    """``main(argv)`` with its output captured; any exception escaping it fails the test with its argv."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code
        except BaseException as exc:  # noqa: BLE001  a traceback is the failure this suite looks for
            raise AssertionError(f"seqrnn {' '.join(map(str, argv))} raised {type(exc).__name__}: {exc}") from exc
    return code, out.getvalue(), err.getvalue()


def refused(argv, *needles) -> str:
    """Run ``argv``; assert exit 2 with one error line holding every needle; return the line."""
    code, out, err = quiet_main(argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, out[:300], err[-500:])
    assert lines and lines[-1].startswith("seqrnn "), err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    write_toy_sessions(d / "toy.txt")
    (d / "stream.txt").write_text("\n".join(t for line in toy_session_lines(60) for t in line.split(",")[1].split())
                                  + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    """Trained model directories of several kinds: name -> path."""
    d = tmp_path_factory.mktemp("models")
    out = {}
    for kind in ("rnn", "markov", "nb", "hmm", "count"):
        extra = TINY if kind == "rnn" else (["--iterations", "3"] if kind == "hmm" else [])
        code, _, err = quiet_main(["train", data / "toy.txt", "--model", kind, "--model-dir", d / kind, *extra])
        assert code == 0, err
        out[kind] = d / kind
    return out


# ============================================================================ sessions: every line decides
def test_a_line_without_id_among_id_lines_is_refused_wherever_it_is(tmp_path, models):
    lines = toy_session_lines(80)
    for at in (3, 70):  # inside what used to be the 50-line sample, and after it
        bad = list(lines)
        bad[at - 1] = bad[at - 1].split(",", 1)[1]
        path = tmp_path / f"mixed{at}.txt"
        path.write_text("\n".join(bad) + "\n", encoding="utf-8")
        for command in ("detect", "evaluate"):
            refused([command, models["markov"], path], f"{path}:{at}:", "no 'id,' prefix", "line 1 has one")
        refused(["train", path, "--model", "markov", "--model-dir", tmp_path / "m"], f"{path}:{at}:")


def test_an_id_line_in_a_file_without_ids_is_refused(tmp_path, models):
    lines = [line.split(",", 1)[1] for line in toy_session_lines(20)]
    lines[9] = "blk_9," + lines[9]
    path = tmp_path / "plain.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused(["evaluate", models["markov"], path], f"{path}:10:", "starts with a session id ('blk_9,')", "line 1")


def test_reader_decides_each_file_and_ambiguous_lines_as_before(tmp_path):
    from seqrnn.data.formats import read_sessions

    a = tmp_path / "a.txt"
    a.write_text("s1,x\ns2,y\n", encoding="utf-8")  # one comma each: ids
    b = tmp_path / "b.txt"
    b.write_text("x,y,z\nx,y\n", encoding="utf-8")  # commas alone, and a second one: tokens
    c = tmp_path / "c.txt"
    c.write_text("s1,x\ns2,x y\n", encoding="utf-8")  # settled by its second line: ids
    assert [(s.id, s.tokens) for s in read_sessions([a])] == [("s1", ["x"]), ("s2", ["y"])]
    assert [(s.id, s.tokens) for s in read_sessions([b])] == [("1", ["x", "y", "z"]), ("2", ["x", "y"])]
    assert [(s.id, s.tokens) for s in read_sessions([c])] == [("s1", ["x"]), ("s2", ["x", "y"])]
    # Files are decided apart: one with ids, one without, read together.
    d = tmp_path / "d.txt"
    d.write_text("x y\n", encoding="utf-8")
    assert [s.id for s in read_sessions([c, d])] == ["s1", "s2", "1"]


def test_follow_refuses_a_line_that_disagrees(tmp_path, models):
    from seqrnn.detect import Detector
    from seqrnn.errors import InputError
    from seqrnn.follow import follow

    path = tmp_path / "f.txt"
    path.write_text("s1,a b c d\na b c d\n", encoding="utf-8")
    out = io.StringIO()
    # follow follows a file forever: the error comes on the second line, before any wait
    with pytest.raises(InputError, match=r":2: line has no 'id,' prefix, but line 1 has one"):
        follow(Detector.load(str(models["markov"])), str(path), out=out)
    assert out.getvalue().count("\n") == 1  # the first line was decided


@pytest.mark.parametrize("fmt,content,line", [
    ("sessions", b"s1,a b\ns2,a \x00b\n", 2),
    ("stream", b"a\nb\n\x00\n", 3),
    ("text", b"hello\nwor\x00ld\n", 2),
])
def test_nul_bytes_are_an_error_naming_file_and_line(tmp_path, fmt, content, line):
    from seqrnn.data.formats import read_sequences
    from seqrnn.errors import InputError

    path = tmp_path / "nul.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"{path}:{line}: NUL byte"):
        read_sequences(str(path), fmt)


def test_byte_order_mark_carriage_returns_and_huge_lines(tmp_path):
    from seqrnn.data.formats import MAX_EVENT_BYTES, read_sequences
    from seqrnn.errors import InputError

    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffs1,a b\r\ns2,b\r\n".encode("utf-8"))
    assert [(s.id, s.tokens) for s in read_sequences(str(bom))] == [("s1", ["a", "b"]), ("s2", ["b"])]
    mac = tmp_path / "mac.txt"
    mac.write_bytes(b"s1,a b\rs2,a b\r")
    with pytest.raises(InputError, match=rf"{mac}:1: carriage return at column 7"):
        read_sequences(str(mac))
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"a\n" + b"x" * (MAX_EVENT_BYTES + 10) + b"\n")
    with pytest.raises(InputError, match=rf"{huge}:2: line is longer than"):
        read_sequences(str(huge), "stream")
    with pytest.raises(InputError, match=rf"{huge}:2: line is longer than"):
        read_sequences(str(huge), "sessions", max_length=10)


def test_paths_that_are_not_files(tmp_path, models):
    (tmp_path / "empty").mkdir()
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    refused(["evaluate", models["markov"], tmp_path / "empty"], "folder holds no files")
    refused(["evaluate", models["markov"], loop], "no such file")
    refused(["evaluate", models["markov"], "/dev/null"], "not a regular file")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    refused(["evaluate", models["markov"], tmp_path / "blank.txt"], "empty or blank")


# ============================================================================ closed standard streams (subprocess)
def _seqrnn_shell(command: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(["bash", "-c", f"{sys.executable} -m seqrnn {command}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_standard_input_closed(tmp_path, models):
    r = _seqrnn_shell(f"evaluate {models['markov']} - <&-", tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "seqrnn evaluate: error: <stdin>: standard input is closed", r.stderr


def test_standard_output_closed(tmp_path, models, data):
    r = _seqrnn_shell(f"evaluate {models['markov']} {data / 'toy.txt'} >&-", tmp_path)
    assert r.returncode == 2 and "standard output is closed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = _seqrnn_shell(f"evaluate {models['markov']} {data / 'toy.txt'} --output {tmp_path / 'o.txt'} >&-", tmp_path)
    assert r.returncode == 0 and "loss" in (tmp_path / "o.txt").read_text(), r.stderr


# ============================================================================ flags checked up front
@pytest.mark.parametrize("flags,needle", [
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295"),
    (["--seed", str(2**64 + 1)], "--seed must be"),
    (["--hidden", str(10**9)], "more than this machine can give it"),
    (["--embedding-dim", str(10**9)], "more than this machine can give it"),
    (["--layers", "20000"], "--layers must be from 1 to 100"),
    (["--mapping", "many-to-one", "--window", str(10**9)], "more than this machine can give it"),
    (["--threads", "100000"], "--threads must be from 0"),
    (["--lr", "nan"], "--lr"),
    (["--minutes", "inf"], "--minutes must be a finite number"),
])
def test_train_flags_refused_before_training(tmp_path, data, flags, needle):
    refused(["train", data / "toy.txt", "--model-dir", tmp_path / "m", *TINY, *flags], needle)
    assert not (tmp_path / "m" / "model.safetensors").exists()


@pytest.mark.parametrize("flags,needle", [
    (["--model", "markov", "--order", "1000000"], "--order must be an integer from 0 to 100"),
    (["--model", "hmm", "--states", "1000000"], "more than this machine can give it"),
    (["--model", "hmm", "--seed", str(2**40)], "--seed must be"),
    (["--model", "nb", "--alpha", "inf"], "--alpha"),
    (["--model", "markov", "--min-count", "0"], "--min-count must be an integer >= 1"),
])
def test_baseline_flags_refused(tmp_path, data, flags, needle):
    refused(["train", data / "toy.txt", "--model-dir", tmp_path / "m", *flags], needle)


@pytest.mark.parametrize("flags,needle", [
    (["--temperature", "inf"], "--temperature must be a finite number >= 0"),
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "-1"], "--temperature"),
    (["--seed", "-1"], "--seed must be"),
    (["--seed", str(2**64)], "--seed must be"),
    (["--num-samples", str(10**9)], "more than this machine can give it"),
])
def test_generate_flags_refused(models, flags, needle):
    refused(["generate", models["rnn"], *flags], needle)


def test_compare_seed_is_checked(data, tmp_path):
    abn = tmp_path / "abn.txt"
    abn.write_text("s1,a x d\ns2,a b x\n", encoding="utf-8")
    for seed in ("-1", str(2**40)):
        refused(["compare", data / "toy.txt", "--normal", data / "toy.txt", "--abnormal", abn, "--models", "markov1",
                 "--seed", seed, "--output-dir", tmp_path / "out"], "--seed must be an integer from 0")


def test_greedy_generation_still_works(models):
    code, out, err = quiet_main(["generate", models["rnn"], "--temperature", "0", "--length", "3"])
    assert code == 0 and out.strip(), err


def test_reserved_names_in_the_input_are_unseen_events_not_padding(models, tmp_path):
    path = tmp_path / "pad.txt"
    path.write_text("s1,a <pad> b c d\n", encoding="utf-8")
    for kind in ("nb", "rnn"):
        code, out, err = quiet_main(["detect", models[kind], path])
        finding = json.loads(out.splitlines()[0])
        assert code == 0 and finding["anomalous"] and finding["reason"].startswith("unseen event"), (out, err)
        assert finding["position"] == 1 and math.isfinite(finding["score"])


def test_k_below_one_is_refused_and_pad_never_listed(models, data):
    refused(["predict", models["rnn"], data / "toy.txt", "-k", "-1"], "-k must be an integer >= 1")
    refused(["predict", models["rnn"], data / "toy.txt", "--limit", "-1"], "--limit must be >= 0")
    code, out, _ = quiet_main(["predict", models["rnn"], data / "toy.txt", "-k", "1000", "--limit", "1"])
    assert code == 0 and "<pad>" not in out and "<bos>" not in out


def test_prevalence_out_of_range_is_refused(models, data, tmp_path):
    abn = tmp_path / "abn.txt"
    abn.write_text("\n".join(line.replace("c", "x") for line in toy_session_lines(10, seed=3)) + "\n")
    for value in ("nan", "2", "0"):
        refused(["evaluate-detection", models["markov"], "--normal", data / "toy.txt", "--abnormal", abn,
                 "--prevalence", value], "--prevalence")


# ============================================================================ crafted model directories
def _copy(src, tmp_path, name="crafted"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _edit_config(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    for key, value in changes.items():
        node = cfg
        *parents, last = key.split("__")
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    (d / "config.json").write_text(json.dumps(cfg))


def test_a_config_that_does_not_fit_its_weights_builds_nothing(tmp_path, models, data, monkeypatch):
    from seqrnn.models import rnn_net

    def never(*a, **k):
        raise AssertionError("a network was built before the weights were checked")

    monkeypatch.setattr(rnn_net.RNNNet, "__init__", never)
    for setting, value, needle in (("hidden", 6000, "weights do not fit the config: rnn.weight_ih_l0 is F32 24x4, the config says F32 18000x4"),
                                   ("layers", 20000, "settings.layers must be from 1 to 100"),
                                   ("layers", 3, "the file lacks rnn.bias_hh_l1"),
                                   ("bidirectional", True, "the file lacks")):
        d = _copy(models["rnn"], tmp_path, f"{setting}{value}")
        _edit_config(d, **{f"settings__{setting}": value})
        for command in (["detect", d, data / "toy.txt"], ["info", d], ["generate", d]):
            refused(command, needle)


def test_sparse_huge_weights_file_is_not_read(tmp_path, models, data):
    d = _copy(models["rnn"], tmp_path)
    with open(d / "model.safetensors", "r+b") as fh:
        fh.truncate(2 << 30)  # sparse: no disk, but a read would take 2 GiB
    refused(["evaluate", d, data / "toy.txt"], "model.safetensors: weights file is truncated or not safetensors",
            "bytes after the last tensor")


def test_weights_larger_than_memory_are_refused(tmp_path, models, data, monkeypatch):
    from seqrnn import limits

    monkeypatch.setattr(limits, "available_memory", lambda: 1000)
    refused(["evaluate", models["rnn"], data / "toy.txt"], "loading this model would take",
            "more than this machine can give it")


def test_a_detector_file_describing_more_than_memory_is_not_read(tmp_path, models, data, monkeypatch):
    import struct

    from seqrnn import limits

    d = _copy(models["rnn"], tmp_path)
    n = 1_000_000 * 9 * 4  # a million count profiles: 36 MB described, none of it on disk (sparse)
    header = json.dumps({"count_profiles": {"dtype": "F32", "shape": [1_000_000, 9], "data_offsets": [0, n]},
                         "count_weights": {"dtype": "F32", "shape": [9], "data_offsets": [n, n + 36]}}).encode()
    with open(d / "detector.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + n + 36)
    monkeypatch.setattr(limits, "available_memory", lambda: 10_000_000)  # the model's 2 KB fit, 36 MB do not
    refused(["detect", d, data / "toy.txt"], "detector.safetensors: reading this file would take 34.3 MiB")


def test_nan_and_out_of_range_values_are_refused(tmp_path, models, data):
    from safetensors.numpy import load_file, save_file

    for i, (kind, name, change, needle) in enumerate((
            ("rnn", "head.bias", lambda a: np.full_like(a, np.nan), "head.bias holds NaN"),
            ("nb", "log_prior", lambda a: np.full_like(a, np.inf), "log_prior holds infinite values"),
            ("nb", "log_prior", lambda a: np.full_like(a, -np.inf), "log_prior holds log-probabilities of -inf"),
            ("count", "log_unigram", lambda a: np.full_like(a, -np.inf), "log_unigram holds log-probabilities"),
            ("hmm", "emissionprob", lambda a: np.where(np.arange(a.shape[1]) == 4, 0.0, a), "an event with probability 0"),
            ("markov", "pair_event1", lambda a: a + 1000, "pair_event1 holds events outside the vocabulary"),
            ("hmm", "transmat", lambda a: -a, "transmat holds probabilities below 0"),
            ("count", "profiles", lambda a: a - 100, "profiles holds negative"),
            ("rnn", "head.bias", lambda a: a.astype(np.float64), "head.bias is F64 9, the config says F32 9"))):
        d = _copy(models[kind], tmp_path, f"{i}-{kind}")
        t = load_file(str(d / "model.safetensors"))
        t[name] = change(t[name])
        save_file(t, str(d / "model.safetensors"))
        refused(["evaluate", d, data / "toy.txt"], needle)


WRONG_FIELDS = [
    ("format_version", "1"), ("format_version", None), ("kind", {}), ("kind", ["rnn"]), ("format", {}),
    ("settings", []), ("settings", "x"), ("settings__hidden", "8"), ("settings__hidden", 8.5),
    ("settings__hidden", True), ("settings__layers", -1), ("settings__cell", 5), ("settings__dropout", float("nan")),
    ("settings__mapping", None), ("settings__precision", "float16"), ("settings__window", 10**12), ("settings__seed", -1), ("data_format", 5),
    ("data_format", KeyError), ("text_tokens", []), ("vocabulary", None), ("vocabulary", []),
    ("vocabulary__tokens", "abc"), ("vocabulary__tokens", [1, 2, 3, 4, 5]), ("vocabulary__tokens", ["a", "a"]),
    ("vocabulary__tokens", ["<pad>", "b", "c", "d", "e"]), ("vocabulary__counts", ["x"]), ("training", "x"),
    ("training", [1]), ("training__seconds", "x"), ("training__seconds", None), ("training__epochs", {}),
    ("training__sequences", "x"), ("training__events", -1), ("training__fine_tuned_sequences", "x"),
    ("training__epochs", "x"), ("training__threads", 1.5),
]


@pytest.mark.parametrize("field,value", WRONG_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v in WRONG_FIELDS])
def test_wrong_typed_config_fields_are_one_line(tmp_path, models, data, field, value):
    d = _copy(models["rnn"], tmp_path)
    os.remove(d / "status.json")  # the schema's check, not status.json's hash of the file as it was written
    _edit_config(d, **{field: value})
    for command in (["detect", d, data / "toy.txt"], ["info", d]):
        line = refused(command)
        assert f"{d}{os.sep}config.json: " in line and field.split("__")[0] in line, line


def test_model_files_that_are_folders_or_loops(tmp_path, models, data):
    d = _copy(models["markov"], tmp_path, "dir")
    os.remove(d / "model.safetensors")
    os.mkdir(d / "model.safetensors")
    refused(["evaluate", d, data / "toy.txt"], "model.safetensors: not a regular file")
    d = _copy(models["markov"], tmp_path, "loop")
    os.remove(d / "config.json")
    os.symlink(d / "config.json", d / "config.json")
    refused(["evaluate", d, data / "toy.txt"], "config.json is missing")
    d = _copy(models["markov"], tmp_path, "bigjson")
    with open(d / "config.json", "r+b") as fh:
        fh.truncate(300 << 20)
    refused(["evaluate", d, data / "toy.txt"], "larger than any seqrnn writes")


def test_a_damaged_detector_hides_neither_the_model_nor_its_remedy(tmp_path, models, data):
    """A detector.json edited after training (status.json records another hash) or damaged (a folder of an
    earlier seqrnn, without status.json): info shows the model and why its detector is refused (exit 2),
    detect refuses, generate does not need it, and seqrnn calibrate, the remedy the message names, replaces it."""
    edited = _copy(models["markov"], tmp_path, "edited")
    cal = json.loads((edited / "detector.json").read_text())
    (edited / "detector.json").write_text(json.dumps({**cal, "target_fpr": 0.3}))  # valid, but not as written
    damaged = _copy(models["markov"], tmp_path, "damaged")
    os.remove(damaged / "status.json")
    (damaged / "detector.json").write_text("")
    for d, needle in ((edited, "detector.json changed after the directory was written"),
                      (damaged, "detector.json: detector file is truncated or not JSON")):
        code, out, err = quiet_main(["info", d])
        assert code == 2 and out.startswith("model      markov: order "), (code, out, err)
        assert "detection  refused: " in out and needle in out, out
        assert err.startswith("seqrnn info: error: the detector cannot be used: ") and needle in err, err
        code, out, _ = quiet_main(["info", d, "--json"])
        shown = json.loads(out)
        assert code == 2 and shown["calibration"] is None and needle in shown["detector_error"]
        assert shown["kind"] == "markov" and shown["vocabulary_size"] == 9
        line = refused(["detect", d, data / "toy.txt"], needle)
        assert d is damaged or "calibrate it again with seqrnn calibrate" in line, line
        assert quiet_main(["generate", d, "-n", "1", "--seed", "1"])[0] == 0
        code, _, err = quiet_main(["calibrate", d, data / "toy.txt"])
        assert code == 0 and "calibrating from scratch" in err, err
        code, out, _ = quiet_main(["info", d, "--json"])
        assert code == 0 and json.loads(out)["calibration"]["target_fpr"] == 0.003
    folder = _copy(models["rnn"], tmp_path, "folder")  # a training's folder (a checkpoint), status.json lost
    assert (folder / "checkpoint").is_dir()
    os.remove(folder / "status.json")
    os.remove(folder / "detector.json")
    os.mkdir(folder / "detector.json")
    code, out, err = quiet_main(["info", folder])
    assert code == 2 and out.startswith("model      rnn: ") and "detector.json: not a regular file" in err, err
    assert quiet_main(["generate", folder, "-n", "1", "--seed", "1"])[0] == 0


def test_detector_fields_are_named_and_one_sequence_is_one(tmp_path, models, data):
    d = _copy(models["markov"], tmp_path)
    os.remove(d / "status.json")  # the files as they are, not checked against their hashes
    cal = json.loads((d / "detector.json").read_text())
    (d / "detector.json").write_text(json.dumps({**cal, "target_fpr": "0.003"}))
    refused(["detect", d, data / "toy.txt"], "target_fpr must be a finite number, not '0.003'")
    (d / "detector.json").write_text(json.dumps({**cal, "feedback_floors": {"surprise": None}}))
    refused(["info", d], "feedback_floors.surprise must be a finite number, not None")
    (d / "detector.json").write_text(json.dumps(cal))
    (tmp_path / "one.txt").write_text(toy_session_lines(1)[0] + "\n")
    code, _, err = quiet_main(["calibrate", d, tmp_path / "one.txt"])
    assert code == 0 and err.startswith("added 1 normal sequence: "), err


# ============================================================================ fuzz loops
def _fuzz_file(rng: random.Random, path) -> None:
    kind = rng.randrange(6)
    if kind == 0:  # random bytes
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(200))))
    elif kind == 1:  # random printable tokens, mixed separators and ids
        lines = []
        for i in range(rng.randint(0, 12)):
            toks = [rng.choice(["a", "b", "c", "d", "e", "zz", "<pad>", "<eos>", "ä", "😀", "1,2"])
                    for _ in range(rng.randint(0, 8))]
            sep = rng.choice([" ", ",", "\t", " , "])
            prefix = rng.choice(["", f"s{i},", f"blk {i},", ","])
            lines.append(prefix + sep.join(toks))
        path.write_text(rng.choice(["\n", "\r\n", "\n\n"]).join(lines), encoding="utf-8")
    elif kind == 2:  # a valid file with one line broken
        lines = toy_session_lines(rng.randint(1, 30), seed=rng.randrange(100))
        i = rng.randrange(len(lines))
        lines[i] = rng.choice(["", lines[i].split(",", 1)[1], "\x00", "\ufeff" + lines[i], lines[i] + "\r",
                               "x" * rng.randrange(1, 3000), "\u2028".join(lines[i].split())])
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    elif kind == 3:  # invalid UTF-8 inside text
        path.write_bytes(b"s1,a b\n" + bytes([0xff, 0xfe, rng.randrange(256)]) + b"\ns2,a\n")
    elif kind == 4:  # empty
        path.write_bytes(b"")
    else:  # one long line of tokens
        path.write_text(" ".join(rng.choice("abcde") for _ in range(rng.randrange(1, 5000))), encoding="utf-8")


def _assert_clean(argv):
    code, out, err = quiet_main(argv)
    assert code in (0, 2), (argv, code, err[-500:])
    if code == 2:
        assert err.strip().splitlines()[-1].startswith("seqrnn "), err
    assert "NaN" not in out and "Infinity" not in out, (argv, out[:300])
    return code


def test_fuzz_random_inputs_through_every_reader(tmp_path, models):
    rng = random.Random(17)
    codes = []
    for i in range(200):
        path = tmp_path / f"in{i}.txt"
        _fuzz_file(rng, path)
        fmt = rng.choice(["sessions", "stream", "text", None])
        model = models[rng.choice(["markov", "count", "nb"])]
        command = rng.choice(["evaluate", "detect", "predict"])
        argv = [command, model, path] + (["--format", fmt] if fmt else [])
        codes.append(_assert_clean(argv))
    assert codes.count(0) > 20 and codes.count(2) > 20  # both accepted and refused inputs were seen


def _mutate(rng: random.Random, obj):
    values = [None, True, 0, -1, 1.5, 2**70, -(2**70), float("nan"), float("inf"), "", "x", "64", [], [1], {},
              {"a": 1}, 10**6, 6000]
    if isinstance(obj, dict) and obj:
        key = rng.choice(list(obj))
        r = rng.random()
        if r < 0.15:
            del obj[key]
        elif r < 0.6 or not isinstance(obj[key], (dict, list)) or not obj[key]:
            obj[key] = rng.choice(values)
        else:
            _mutate(rng, obj[key])
    elif isinstance(obj, list) and obj:
        obj[rng.randrange(len(obj))] = rng.choice(values)


def test_fuzz_config_mutations(tmp_path, models, data):
    rng = random.Random(1717)
    kinds = list(models)
    codes = []
    for i in range(140):
        kind = rng.choice(kinds)
        d = tmp_path / f"m{i}"
        shutil.copytree(models[kind], d)
        cfg = json.loads((d / "config.json").read_text())
        for _ in range(rng.randint(1, 3)):
            _mutate(rng, cfg)
        (d / "config.json").write_text(json.dumps(cfg))
        command = rng.choice([["evaluate", d, data / "toy.txt"], ["detect", d, data / "toy.txt"], ["info", d]])
        codes.append(_assert_clean(command))
        shutil.rmtree(d)
    assert codes.count(2) > 40


def test_fuzz_weights_and_detector_files(tmp_path, models, data):
    from safetensors.numpy import load_file, save_file

    rng = random.Random(4242)
    for i in range(70):
        kind = rng.choice(list(models))
        d = tmp_path / f"w{i}"
        shutil.copytree(models[kind], d)
        name = rng.choice(["model.safetensors", "detector.safetensors", "detector.json"])
        path = d / name
        if not path.exists():
            continue
        r = rng.randrange(5)
        if name.endswith(".json"):
            cal = json.loads(path.read_text())
            cal[rng.choice(list(cal))] = rng.choice([None, "x", -1, 1e300, float("nan"), [], {}, True])
            path.write_text(json.dumps(cal))
        elif r == 0:
            b = path.read_bytes()
            path.write_bytes(b[: rng.randrange(len(b))])
        elif r == 1:
            b = bytearray(path.read_bytes())
            for _ in range(3):
                b[rng.randrange(len(b))] = rng.randrange(256)
            path.write_bytes(bytes(b))
        else:
            t = load_file(str(path))
            key = rng.choice(list(t))
            a = t[key]
            t[key] = (np.full_like(a, np.nan) if r == 2 and a.dtype.kind == "f" else
                      np.zeros(tuple(s + 1 for s in a.shape), a.dtype) if r == 3 else a.astype(np.float64))
            save_file(t, str(path))
        _assert_clean(rng.choice([["detect", d, data / "toy.txt"], ["evaluate", d, data / "toy.txt"], ["info", d]]))
        shutil.rmtree(d)


@pytest.mark.slow
def test_fuzz_long(tmp_path, models, data):
    """The loops above, ten times longer (``pytest -m slow``)."""
    rng = random.Random(99)
    for i in range(2000):
        path = tmp_path / "in.txt"
        _fuzz_file(rng, path)
        _assert_clean([rng.choice(["evaluate", "detect"]), models[rng.choice(list(models))], path,
                       "--format", rng.choice(["sessions", "stream", "text"])])


def test_attacker_round_two_cases(tmp_path, capsys):
    """Found by a hostile pass after the merges: each is one line and exit 2 (or counted), not a traceback."""
    from seqrnn.cli import main
    from seqrnn.datasets import parse_hdfs_log_sample
    from seqrnn.errors import InputError
    from seqrnn.tail import Tailer

    parsed = parse_hdfs_log_sample(str(tmp_path / "parsed"))
    assert main(["encode", parsed, "-o", str(tmp_path / "sh")]) == 2  # was: every file read as sequences
    assert "a parsed folder" in capsys.readouterr().err
    raw = os.path.join(parsed, "raw", "hdfs_2k.log")
    for flags in (["--window", "nan"], ["--window", "10", "--step", "1e-300"], ["--window", "inf"]):
        assert main(["parse", raw, "-o", str(tmp_path / "p2"), "--time-format", "%y%m%d %H%M%S", *flags]) == 2
        assert "must be a finite number of seconds" in capsys.readouterr().err
    # watch's tailer counts a line that is not UTF-8 and goes on; detect --follow's refuses it at file:line
    assert Tailer("x.log", lenient=True)._decode(b"garbage \xff line\n", 2) is None
    with pytest.raises(InputError, match="not UTF-8"):
        Tailer("x.log")._decode(b"garbage \xff line\n", 2)
