"""Scale: the runtime policy, shards, data-parallel training across processes (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli, write_toy_sessions

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
HERE = os.path.dirname(os.path.abspath(__file__))


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "SEQRNN_RUNTIME")}
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env


# --- the runtime policy ---------------------------------------------------------------------------
def _omp_env_after_import(**extra) -> list[str]:
    code = ("import os, sys, seqrnn; assert 'torch' not in sys.modules; "
            "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_NUM_THREADS'))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(**extra), capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_sets_spin_and_threads_before_torch_loads():
    from seqrnn import runtime

    spin, threads = _omp_env_after_import()
    assert spin == runtime.SPINCOUNT
    assert 1 <= int(threads) <= runtime.cores()


def test_user_settings_and_the_off_switch_are_respected():
    assert _omp_env_after_import(GOMP_SPINCOUNT="7", OMP_NUM_THREADS="3") == ["7", "3"]
    assert _omp_env_after_import(SEQRNN_RUNTIME="default") == ["None", "None"]
    # A wait policy chosen by the user: no spin count of ours beside it.
    assert _omp_env_after_import(OMP_WAIT_POLICY="PASSIVE")[0] == "None"


def test_default_threads_leave_out_busy_cores(monkeypatch):
    from seqrnn import runtime

    monkeypatch.setattr(runtime, "cores", lambda: 8)
    monkeypatch.setattr(runtime, "running_now", lambda: 0)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0, 0))
    assert runtime.default_threads() == 5
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 0, 0))
    assert runtime.default_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0, 0))
    monkeypatch.setattr(runtime, "running_now", lambda: 3)  # started together with three others
    assert runtime.default_threads() == 5
    env = {}
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as if torch were not loaded yet
    assert runtime.configure(env) == {"GOMP_SPINCOUNT": runtime.SPINCOUNT, "OMP_NUM_THREADS": "5"}


@pytest.mark.parametrize("command", [["demo"], ["detect", "M", "x"], ["evaluate", "M", "x"], ["predict", "M", "x"],
                                     ["generate", "M"], ["evaluate-detection", "M", "--normal", "x", "--abnormal", "y"],
                                     ["classify", "predict", "M", "x"], ["train", "x", "-m", "M"]])
def test_every_computing_command_takes_threads(command):
    from seqrnn.cli import build_parser

    assert build_parser().parse_args([*command, "--threads", "3"]).threads == 3


def test_threads_flag_sets_torch_threads(tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        data = write_toy_sessions(tmp_path / "t.txt")
        code, out, _ = run_cli(capsys, "train", data, "-m", tmp_path / "m", "--hidden", "8", "--layers", "1",
                               "--embedding-dim", "4", "--epochs", "1", "--quiet", "--threads", "1")
        assert code == 0 and torch.get_num_threads() == 1
        code, out, _ = run_cli(capsys, "info", tmp_path / "m", "--json")
        training = json.loads(out)["training"]
        assert training["processes"] == 1 and training["device"] == "cpu" and training["threads"] == 1
    finally:
        torch.set_num_threads(before)


# --- shards ---------------------------------------------------------------------------------------
def test_encode_writes_shards_and_the_training_vocabulary(tmp_path, capsys):
    from seqrnn.data.formats import read_sessions
    from seqrnn.data.shards import ShardSet
    from seqrnn.data.vocab import Vocabulary

    data = write_toy_sessions(tmp_path / "t.txt", n=200)
    code, _, _ = run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--shard-events", "300", "--quiet")
    assert code == 0
    shards = ShardSet(tmp_path / "sh")
    seqs = read_sessions(str(data))
    assert shards.meta["sequences"]["train"] + shards.meta["sequences"]["valid"] == 200
    assert shards.events("train") + shards.events("valid") == sum(len(s) for s in seqs)
    assert len(shards.parts["train"]) >= 3
    assert 0 < shards.meta["sequences"]["valid"] < 50
    train = shards.sequences("train")
    assert shards.vocabulary().to_dict() == Vocabulary.build(train).to_dict()
    # Tokens come back as they were, in input order.
    by_tokens = [s.tokens for s in seqs]
    assert all(s.tokens in by_tokens for s in train)
    code, _, err = run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--quiet")
    assert code == 2 and "not empty" in err


def test_shard_batches_train_every_event_once_per_epoch(tmp_path, capsys):
    from seqrnn.data.batching import next_event_batches
    from seqrnn.data.shards import ShardBatches, ShardSet

    data = write_toy_sessions(tmp_path / "t.txt", n=200)
    run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--shard-events", "250", "--quiet")
    shards = ShardSet(tmp_path / "sh")
    vocab = shards.vocabulary()
    make = lambda i, c: next_event_batches(i, c, batch_size=8)  # noqa: E731
    sb = ShardBatches(shards, "train", shards.remap(vocab), make)
    targets = sum(int((y != 0).sum()) for _, y, _ in sb.epoch(np.random.default_rng(0)))
    assert targets == len(sb) == shards.events("train") + shards.meta["sequences"]["train"]
    assert sb.n_batches() == sum(1 for _ in sb.epoch(None))


def test_train_on_shards_and_detect(tmp_path, capsys):
    data = write_toy_sessions(tmp_path / "t.txt", n=200)
    run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--shard-events", "300", "--quiet")
    code, out, err = run_cli(capsys, "train", tmp_path / "sh", "-m", tmp_path / "m", "--hidden", "16", "--layers", "1",
                             "--embedding-dim", "8", "--epochs", "4", "--batch-size", "8", "--threads", "1", "--json")
    assert code == 0, err
    last = json.loads(out)["last"]
    assert last["val_loss"] < 1.2  # the toy grammar is learnt (a uniform guess: ln 9 = 2.2)
    code, out, err = run_cli(capsys, "detect", tmp_path / "m", data)
    assert code == 0 and len(out.splitlines()) == 200


def run_two_ranks(argv: list[str]) -> None:
    """``argv`` as two processes with the environment torchrun gives them (without its launcher); each exits 0."""
    port = _free_port()
    procs = [subprocess.Popen(argv, env=_env(OMP_NUM_THREADS="1", RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                             LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)),
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data-parallel training across processes --------------------------------------------------------
def test_two_process_ddp_equals_one_process_with_the_same_global_batch(tmp_path):
    """torchrun, 2 CPU processes (gloo): identical weights on both after every step, and the loss of one
    process training on the same global batches."""
    from seqrnn.models.rnn import RNNModel

    sys.path.insert(0, HERE)
    from ddp_worker import SETTINGS

    data = write_toy_sessions(tmp_path / "t.txt", n=60)
    # The environment torchrun gives its processes (without the launcher's own start-up).
    run_two_ranks([sys.executable, os.path.join(HERE, "ddp_worker.py"), str(data), str(tmp_path)])
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]["digests"]) == 3 * 4  # 3 epochs of 54 sessions in batches of 16
    assert ranks[0]["digests"] == ranks[1]["digests"]
    assert ranks[0]["training"]["processes"] == 2
    # No DistributedDataParallel wrapper outlives the training: one kept (by the trainer's loss) was destroyed
    # at interpreter exit, after the group was left, and gloo aborted the process now and then (exit -6).
    assert [r["wrappers_alive"] for r in ranks] == [0, 0]
    one = RNNModel(**SETTINGS).fit(str(data))
    for got, want in zip(ranks[0]["history"], one.history_, strict=True):
        assert got["events"] == want["events"]
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-4)


@pytest.mark.slow
def test_torchrun_train_command_matches_one_process(tmp_path):
    """The command of the issue, ``torchrun --standalone --nproc-per-node 2 -m seqrnn train DATA ...``: one
    model directory (rank 0's), the processes recorded, the validation loss of one process."""
    data = write_toy_sessions(tmp_path / "t.txt", n=120)
    common = ["train", str(data), "--format", "sessions", "--epochs", "3", "--hidden", "16", "--layers", "1",
              "--embedding-dim", "8", "--batch-size", "16", "--device", "cpu", "--json"]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "seqrnn", *common, "--model-dir", str(tmp_path / "two")],
                         env=_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "seqrnn", *common, "--model-dir", str(tmp_path / "one")],
                         env=_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    info = json.loads(subprocess.run([sys.executable, "-m", "seqrnn", "info", str(tmp_path / "two"), "--json"],
                                     env=_env(), capture_output=True, text=True).stdout)
    assert info["training"]["processes"] == 2
    got = (tmp_path / "two" / "history.csv").read_text().splitlines()
    want = (tmp_path / "one" / "history.csv").read_text().splitlines()
    assert len(got) == len(want) == 4
    col = got[0].split(",").index("val_loss")
    for g, w in zip(got[1:], want[1:]):
        assert float(g.split(",")[col]) == pytest.approx(float(w.split(",")[col]), rel=1e-4)


@pytest.mark.slow
def test_parallel_detection_writes_one_file_in_input_order(tmp_path, capsys):
    data = write_toy_sessions(tmp_path / "t.txt", n=40)
    code, _, err = run_cli(capsys, "train", data, "-m", tmp_path / "m", "--hidden", "8", "--layers", "1",
                           "--embedding-dim", "4", "--epochs", "1", "--threads", "1", "--quiet")
    assert code == 0, err
    run_cli(capsys, "detect", tmp_path / "m", data, "-o", tmp_path / "one.jsonl")
    run_two_ranks([sys.executable, "-m", "seqrnn", "detect", str(tmp_path / "m"), str(data),
                   "-o", str(tmp_path / "two.jsonl")])
    assert (tmp_path / "two.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
    assert not list(tmp_path.glob("two.jsonl.part*"))


def test_a_shards_folder_given_where_text_is_read_says_what_it_is(tmp_path, capsys):
    """Only seqrnn train reads a shards folder (alone, for a neural model); elsewhere its .npy files were read
    as text: 'train-00000.complete.npy:1: byte 0x93 at column 1 is not UTF-8 text'."""
    data = write_toy_sessions(tmp_path / "t.txt", n=40)
    assert run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--quiet")[0] == 0
    said = (f"{tmp_path / 'sh'}: a shards folder (seqrnn encode) is read by seqrnn train alone, as its only input, "
            "for a neural model; give other commands the files it was encoded from")
    for argv in (("train", tmp_path / "sh", data, "-m", tmp_path / "m"),
                 ("train", tmp_path / "sh", "--model", "markov", "-m", tmp_path / "m"),
                 ("encode", tmp_path / "sh", "-o", tmp_path / "sh2"),
                 ("parse", tmp_path / "sh", "-o", tmp_path / "p")):
        code, out, err = run_cli(capsys, *argv)
        assert (code, err) == (2, f"seqrnn {argv[0]}: error: {said}\n")


def test_an_encode_stopped_before_its_index_leaves_a_folder_that_is_refused(tmp_path, capsys, monkeypatch):
    """An encode killed after some shards but before shards.json: the folder was read as text files."""
    from seqrnn.data import shards

    data = write_toy_sessions(tmp_path / "t.txt", n=200)

    def killed(self):
        raise KeyboardInterrupt  # as a kill -9 after the shards were flushed, before the index

    monkeypatch.setattr(shards.ShardWriter, "close", killed)
    code, _, _ = run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--shard-events", "300", "--quiet")
    assert code == 130 and any(f.endswith(".npy") for f in os.listdir(tmp_path / "sh"))
    code, _, err = run_cli(capsys, "train", tmp_path / "sh", "-m", tmp_path / "m", "--epochs", "1")
    assert (code, err) == (2, f"seqrnn train: error: {tmp_path / 'sh'}: the seqrnn encode writing this shards folder "
                              "did not finish (no shards.json: it was stopped, failed, or is still running): encode "
                              "again into a new folder\n")


def test_train_on_shards_refuses_another_format_than_the_encoded_one(tmp_path, capsys):
    """--format text on session shards trained the text preset on sessions, calibrated as text, silently."""
    data = write_toy_sessions(tmp_path / "t.txt", n=40)
    assert run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--quiet")[0] == 0
    for flags, said in ((("--format", "text"), "--format text"), (("--format", "stream"), "--format stream"),
                        (("--tokens", "words"), "--format sessions and --tokens words")):
        code, _, err = run_cli(capsys, "train", tmp_path / "sh", "-m", tmp_path / "m", "--epochs", "1", *flags)
        assert (code, err) == (2, f"seqrnn train: error: {tmp_path / 'sh'}: the shards folder holds sessions, as "
                                  f"seqrnn encode read them: {said} do not apply (encode the files again to read "
                                  "them otherwise)\n")
        assert not (tmp_path / "m" / "config.json").exists()


def test_after_the_group_is_left_a_fit_trains_alone(monkeypatch):
    """Under torchrun, train leaves the process group before rank 0 calibrates; the calibration's copies
    then fit in this process alone. They joined a new group instead (the other ranks gone: a gloo error,
    'Connection reset by peer', and train failed under torchrun)."""
    from seqrnn import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "_left", False)
    distributed.finish()  # no group joined here: only the mark that this process trains alone now
    assert distributed.setup() is distributed.LOCAL
