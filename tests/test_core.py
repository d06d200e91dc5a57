"""Behaviour of the core: input formats, vocabulary, input errors, the RNN model,
its model directory, reproducibility, resume, mappings and stream scoring.

All data is generated and tiny; models are one layer of 16 units trained for a
few epochs, so the file runs in seconds.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import time

import numpy as np
import pytest

import seqrnn
from seqrnn.data.formats import Sequence, read_sequences
from seqrnn.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary
from seqrnn.errors import InputError, ModelFileError

# conftest.py sits in this folder, which pytest puts on sys.path (rootdir conftest, no package).
from conftest import TINY_SETTINGS, toy_session_lines, write_toy_sessions

torch = pytest.importorskip("torch")
from seqrnn.models.rnn import RNNModel  # noqa: E402
from seqrnn.train import Callback, TrainingInterrupted, read_checkpoint  # noqa: E402


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def toy_stream_tokens(n_sessions: int = 60) -> list[str]:
    """The toy sessions joined end to end: one long stream of events."""
    return [t for line in toy_session_lines(n_sessions) for t in line.split(",", 1)[1].split()]


def tiny(**overrides) -> RNNModel:
    return RNNModel(**{**TINY_SETTINGS, **overrides})


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.net_.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def stream_in_chunks(model, ids: np.ndarray, size: int, complete: bool = False) -> np.ndarray:
    state = model.stream_start()
    parts = []
    for start in range(0, len(ids), size):
        lp, state = model.stream_step(ids[start:start + size], state)
        assert lp.shape == (len(ids[start:start + size]), len(model.vocab_))
        parts.append(lp)
    if complete:
        parts.append(model.stream_end(state))
    return np.concatenate(parts)


# ============================================================================ formats
class TestSessionsFormat:
    def test_id_prefix_kept(self, tmp_path):
        path = write(tmp_path / "s.txt", "blk_-160,5 5 22 11\nblk_7,E22 E5\n\n   \nblk_9,E1 E1 E1\n")
        seqs = read_sequences(str(path), "sessions")
        assert [s.id for s in seqs] == ["blk_-160", "blk_7", "blk_9"]
        assert [s.tokens for s in seqs] == [["5", "5", "22", "11"], ["E22", "E5"], ["E1", "E1", "E1"]]
        assert [s.line for s in seqs] == [1, 2, 5]  # blank lines 3-4 skipped, numbering kept
        assert all(s.complete for s in seqs)
        assert all(s.source == str(path) for s in seqs)
        assert seqs[2].location(0) == f"{path}:5"

    def test_without_prefix_space_separated(self, tmp_path):
        path = write(tmp_path / "s.txt", "a b c\n\nd  e\n")
        seqs = read_sequences(str(path), "sessions")
        assert [s.tokens for s in seqs] == [["a", "b", "c"], ["d", "e"]]
        assert [s.id for s in seqs] == ["1", "3"]  # the line number is the id
        assert [len(s) for s in seqs] == [3, 2]

    def test_comma_separated_tokens(self, tmp_path):
        path = write(tmp_path / "s.txt", "5,5,22,11\nE1,E2\r\n")
        seqs = read_sequences(str(path), "sessions")
        assert [s.tokens for s in seqs] == [["5", "5", "22", "11"], ["E1", "E2"]]
        assert [s.id for s in seqs] == ["1", "2"]

    def test_several_files_in_name_order(self, tmp_path):
        write(tmp_path / "b.txt", "s2,x y\n")
        write(tmp_path / "a.txt", "s1,x z\n")
        seqs = read_sequences(str(tmp_path), "sessions")
        assert [s.id for s in seqs] == ["s1", "s2"]
        assert [os.path.basename(s.source) for s in seqs] == ["a.txt", "b.txt"]

    def test_toy_fixture(self, toy_sessions):
        seqs = read_sequences(str(toy_sessions))
        assert len(seqs) == 60
        assert [s.id for s in seqs] == [f"s{i}" for i in range(60)]
        assert all(s.tokens[0] == "a" and s.tokens[-1] == "d" for s in seqs)


class TestStreamFormat:
    @pytest.fixture
    def two_files(self, tmp_path):
        folder = tmp_path / "logs"
        folder.mkdir()
        # b written first: the order must come from the names, not the creation order
        b = write(folder / "b.log", "x\ny\n")
        a = write(folder / "a.log", "E1\n\nE2\n  E3  \n")
        return folder, a, b

    def test_one_sequence_in_name_order(self, two_files):
        folder, a, b = two_files
        for spec in (str(folder), str(folder / "*.log")):
            (seq,) = read_sequences(spec, "stream")
            assert seq.tokens == ["E1", "E2", "E3", "x", "y"]
            assert seq.complete is False
            np.testing.assert_array_equal(seq.lines, [1, 3, 4, 1, 2])
            assert seq.line == 1

    def test_separate_files(self, two_files):
        folder, a, b = two_files
        seqs = read_sequences(str(folder), "stream", separate_files=True)
        assert [s.tokens for s in seqs] == [["E1", "E2", "E3"], ["x", "y"]]
        assert [s.source for s in seqs] == [str(a), str(b)]
        assert not any(s.complete for s in seqs)
        np.testing.assert_array_equal(seqs[0].lines, [1, 3, 4])
        np.testing.assert_array_equal(seqs[1].lines, [1, 2])
        assert seqs[0].location(1) == f"{a}:3"
        assert seqs[0].location(2) == f"{a}:4"
        assert seqs[1].location(1) == f"{b}:2"

    def test_joined_stream_location_names_the_right_file(self, two_files):
        """An event of the second file must point at that file, not at the first."""
        folder, a, b = two_files
        (seq,) = read_sequences(str(folder), "stream")
        assert seq.location(2).endswith(":4") and str(a) in seq.location(2)
        # event 4 ("y") is line 2 of b.log
        assert seq.location(4) == f"{b}:2"

    def test_single_file_location(self, tmp_path):
        path = write(tmp_path / "one.log", "\nA\nB\n\nC\n")
        (seq,) = read_sequences(str(path), "stream")
        assert [seq.location(i) for i in range(3)] == [f"{path}:2", f"{path}:3", f"{path}:5"]


class TestTextFormat:
    def test_chars(self, tmp_path):
        path = write(tmp_path / "t.txt", "ab\ncd\n")
        (seq,) = read_sequences(str(path), "text")
        assert seq.tokens == ["a", "b", "\n", "c", "d", "\n"]
        assert seq.complete is False

    def test_words(self, tmp_path):
        path = write(tmp_path / "t.txt", "hello  world\n\nfoo\n")
        (seq,) = read_sequences(str(path), "text", text_tokens="words")
        assert seq.tokens == ["hello", "world", "foo"]

    def test_bad_token_kind(self, tmp_path):
        path = write(tmp_path / "t.txt", "ab\n")
        with pytest.raises(InputError, match="chars or words"):
            read_sequences(str(path), "text", text_tokens="bytes")


# ============================================================================ vocabulary
class TestVocabulary:
    def seqs(self):
        return [Sequence("1", ["x", "y", "x", "z"]), Sequence("2", ["y", "x", "w"])]

    def test_reserved_ids(self):
        assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
        v = Vocabulary.build(self.seqs())
        assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] == list(SPECIALS)
        assert [v.stoi[s] for s in SPECIALS] == [0, 1, 2, 3]

    def test_ordered_by_frequency(self):
        v = Vocabulary.build(self.seqs())
        # x: 3, y: 2, then w and z once each (ties broken by name)
        assert v.itos[4:] == ["x", "y", "w", "z"]
        assert v.counts == [3, 2, 1, 1]
        assert len(v) == 8
        # the same data in another order gives the same ids
        assert Vocabulary.build(self.seqs()[::-1]).itos == v.itos

    def test_unseen_token_is_unk(self):
        v = Vocabulary.build(self.seqs())
        ids = v.encode(["x", "never-seen", "z"])
        assert ids.dtype == np.int64
        np.testing.assert_array_equal(ids, [4, UNK, 7])
        assert v.decode(ids) == ["x", "<unk>", "z"]

    def test_min_count(self):
        v = Vocabulary.build(self.seqs(), min_count=2)
        assert v.itos[4:] == ["x", "y"]
        np.testing.assert_array_equal(v.encode(["w"]), [UNK])

    def test_dict_round_trip(self):
        v = Vocabulary.build(self.seqs())
        d = json.loads(json.dumps(v.to_dict()))
        w = Vocabulary.from_dict(d)
        assert w.itos == v.itos and w.stoi == v.stoi and w.counts == v.counts
        np.testing.assert_array_equal(w.encode(["z", "y", "q"]), v.encode(["z", "y", "q"]))


# ============================================================================ input errors
class TestInputErrors:
    @pytest.mark.parametrize("fmt", ["sessions", "stream", "text"])
    @pytest.mark.parametrize("content", ["", "\n  \n\t\n"], ids=["empty", "blank"])
    def test_empty_or_blank_file(self, tmp_path, fmt, content):
        path = write(tmp_path / "empty.txt", content)
        with pytest.raises(InputError) as err:
            read_sequences(str(path), fmt)
        assert str(path) in str(err.value)
        assert err.value.path == str(path)

    @pytest.mark.parametrize("fmt", ["sessions", "stream", "text"])
    def test_non_utf8_names_line(self, tmp_path, fmt):
        path = write(tmp_path / "bad.txt", b"a\nb\nc\xff\nd\n")
        with pytest.raises(InputError) as err:
            read_sequences(str(path), fmt)
        assert f"{path}:3:" in str(err.value)
        assert err.value.line == 3
        assert "0xff" in str(err.value)

    def test_session_longer_than_max_length(self, tmp_path):
        path = write(tmp_path / "long.txt", "a b\n" + "a " * 150 + "\nc\n")
        with pytest.raises(InputError) as err:
            read_sequences(str(path), "sessions", max_length=100)
        assert f"{path}:2:" in str(err.value)
        # at the limit it is fine
        ok = write(tmp_path / "ok.txt", "a " * 100 + "\n")
        assert len(read_sequences(str(ok), "sessions", max_length=100)[0]) == 100

    def test_ten_million_token_line_fails_fast(self, tmp_path):
        path = tmp_path / "huge.txt"
        path.write_text("1 " * 10_000_000 + "\n", encoding="ascii")
        for kwargs in ({}, {"max_length": 100}):
            t0 = time.perf_counter()
            with pytest.raises(InputError) as err:
                read_sequences(str(path), "sessions", **kwargs)
            assert time.perf_counter() - t0 < 5.0
            assert f"{path}:1:" in str(err.value)

    def test_missing_path(self, tmp_path):
        missing = str(tmp_path / "nope.txt")
        for fmt in ("sessions", "stream", "text"):
            with pytest.raises(InputError) as err:
                read_sequences(missing, fmt)
            assert missing in str(err.value)
        with pytest.raises(InputError, match="no file matches"):
            read_sequences(str(tmp_path / "*.nothing"), "sessions")

    def test_stream_line_with_several_tokens(self, tmp_path):
        path = write(tmp_path / "s.log", "E1\nE2\nE3 E4\n")
        with pytest.raises(InputError) as err:
            read_sequences(str(path), "stream")
        assert f"{path}:3:" in str(err.value)

    def test_unknown_format(self, tmp_path, toy_sessions):
        with pytest.raises(InputError, match="unknown format"):
            read_sequences(str(toy_sessions), "xml")

    def test_input_error_is_value_error(self):
        assert issubclass(InputError, ValueError)


# ============================================================================ the model
@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    return write_toy_sessions(tmp_path_factory.mktemp("toy") / "train.txt")


@pytest.fixture(scope="module")
def fitted(toy_path, tmp_path_factory):
    """A tiny many-to-many LSTM fitted on the toy sessions and saved."""
    model = tiny().fit(str(toy_path))
    model_dir = str(tmp_path_factory.mktemp("model") / "m")
    seqrnn.Detector(model).fit(str(toy_path)).save(model.save(model_dir))
    return model, model_dir


@pytest.fixture(scope="module")
def fitted_m2o(toy_path):
    return tiny(mapping="many-to-one", window=3).fit(str(toy_path))


class TestModelFiles:
    def test_save_load_identical(self, fitted, toy_path, monkeypatch):
        model, model_dir = fitted

        def no_pickle(*a, **k):
            raise AssertionError("load must not unpickle")

        monkeypatch.setattr(pickle, "load", no_pickle)
        monkeypatch.setattr(pickle, "loads", no_pickle)
        monkeypatch.setattr(torch, "load", no_pickle)
        loaded = seqrnn.load(model_dir)
        detector = seqrnn.Detector.load(model_dir)
        monkeypatch.undo()

        assert isinstance(loaded, RNNModel)
        assert loaded.vocab_.itos == model.vocab_.itos
        assert loaded.format_ == "sessions"
        assert loaded.model_config == model.model_config and loaded.train_config == model.train_config
        seqs = read_sequences(str(toy_path))
        original = seqrnn.Detector(model).fit(seqs)
        assert detector.calibration == original.calibration
        ids, complete = model.encode(seqs)
        for a, b in zip(model.log_proba(ids, complete), loaded.log_proba(ids, complete)):
            np.testing.assert_array_equal(a, b)
        assert model.evaluate(seqs) == loaded.evaluate(seqs)
        np.testing.assert_array_equal(original.decision_function(seqs), detector.decision_function(seqs))

    def test_directory_holds_no_pickle(self, fitted):
        _, model_dir = fitted
        names = set(os.listdir(model_dir))
        assert {"config.json", "model.safetensors", "detector.json", "detector.safetensors"} <= names
        assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin"))]
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        assert config["format"] == "seqrnn-model"
        assert config["kind"] == "rnn"
        assert config["settings"]["hidden"] == 16

    @pytest.fixture
    def copy_dir(self, fitted, tmp_path):
        dst = tmp_path / "copy"
        shutil.copytree(fitted[1], dst)
        return dst

    def test_truncated_weights(self, copy_dir):
        w = copy_dir / "model.safetensors"
        data = w.read_bytes()
        w.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFileError) as err:
            seqrnn.load(str(copy_dir))
        assert "model.safetensors" in str(err.value)

    def test_missing_weights(self, copy_dir):
        (copy_dir / "model.safetensors").unlink()
        with pytest.raises(ModelFileError, match="missing"):
            seqrnn.load(str(copy_dir))

    def test_missing_config(self, copy_dir):
        (copy_dir / "config.json").unlink()
        with pytest.raises(ModelFileError, match="config.json"):
            seqrnn.load(str(copy_dir))

    def test_foreign_config(self, copy_dir):
        (copy_dir / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 16}))
        with pytest.raises(ModelFileError, match="seqrnn-model"):
            seqrnn.load(str(copy_dir))

    def test_truncated_config(self, copy_dir):
        text = (copy_dir / "config.json").read_text()
        (copy_dir / "config.json").write_text(text[: len(text) // 2])
        with pytest.raises(ModelFileError):
            seqrnn.load(str(copy_dir))

    def test_no_such_directory(self, tmp_path):
        with pytest.raises(ModelFileError, match="no such model directory"):
            seqrnn.load(str(tmp_path / "absent"))

    def test_weights_of_another_shape(self, copy_dir, fitted, toy_path, tmp_path):
        other = tiny(hidden=8).fit(str(toy_path))
        other.save(str(tmp_path / "other"))
        shutil.copy(tmp_path / "other" / "model.safetensors", copy_dir / "model.safetensors")
        with pytest.raises(ModelFileError, match="do not fit"):
            seqrnn.load(str(copy_dir))


class TestReproducibility:
    def test_same_seed_same_weights(self, toy_path):
        a = tiny(epochs=2).fit(str(toy_path))
        b = tiny(epochs=2).fit(str(toy_path))
        assert_same_weights(weights(a), weights(b))
        assert [r["loss"] for r in a.history_] == [r["loss"] for r in b.history_]

    def test_other_seed_other_weights(self, toy_path):
        a = tiny(epochs=2).fit(str(toy_path))
        c = tiny(epochs=2, seed=1).fit(str(toy_path))
        wa, wc = weights(a), weights(c)
        assert wa.keys() == wc.keys()
        assert any(not torch.equal(wa[k], wc[k]) for k in wa)

    def test_training_lowers_the_loss(self, fitted):
        model, _ = fitted
        h = model.history_
        assert [r["epoch"] for r in h] == [1, 2, 3]
        assert h[-1]["loss"] < h[0]["loss"]
        assert h[-1]["val_loss"] < h[0]["val_loss"]


class TestResume:
    def test_resume_continues(self, toy_path, tmp_path):
        model_dir = str(tmp_path / "m")
        first = tiny(epochs=2).fit(str(toy_path), model_dir=model_dir)
        assert [r["epoch"] for r in first.history_] == [1, 2]
        assert os.path.isfile(os.path.join(model_dir, "checkpoint", "checkpoint.safetensors"))
        assert os.path.isfile(os.path.join(model_dir, "history.csv"))

        second = tiny(epochs=4).fit(str(toy_path), model_dir=model_dir, resume=True)
        assert [r["epoch"] for r in second.history_] == [1, 2, 3, 4]
        assert second.history_[:2] == first.history_
        with open(os.path.join(model_dir, "history.csv"), encoding="utf-8") as fh:
            assert len(fh.read().strip().splitlines()) == 1 + 4
        assert seqrnn.load(model_dir).training_summary()["epochs"] == 4

    def test_resume_matches_uninterrupted_run(self, toy_path, tmp_path):
        """Resuming from epoch 2 gives exactly the weights of four epochs in one go."""
        model_dir = str(tmp_path / "m")
        tiny(epochs=2).fit(str(toy_path), model_dir=model_dir)
        resumed = tiny(epochs=4).fit(str(toy_path), model_dir=model_dir, resume=True)
        straight = tiny(epochs=4).fit(str(toy_path))
        assert [r["loss"] for r in resumed.history_] == [r["loss"] for r in straight.history_]
        assert [r["val_loss"] for r in resumed.history_] == [r["val_loss"] for r in straight.history_]
        assert_same_weights(weights(resumed), weights(straight))

    def test_resume_without_checkpoint_starts_fresh(self, toy_path, tmp_path):
        model = tiny(epochs=2).fit(str(toy_path), model_dir=str(tmp_path / "new"), resume=True)
        assert [r["epoch"] for r in model.history_] == [1, 2]

    def test_keyboard_interrupt_leaves_checkpoint(self, toy_path, tmp_path):
        model_dir = str(tmp_path / "m")

        class StopAtTwo(Callback):
            def on_epoch_end(self, trainer, logs):
                if logs["epoch"] == 2:
                    raise KeyboardInterrupt

        with pytest.raises(TrainingInterrupted) as err:
            tiny(epochs=4).fit(str(toy_path), model_dir=model_dir, callbacks=[StopAtTwo()])
        checkpoint = os.path.join(model_dir, "checkpoint")
        assert err.value.checkpoint == checkpoint
        state, _ = read_checkpoint(os.path.join(checkpoint, "checkpoint.safetensors"))
        assert state["epoch"] == 2
        assert [r["epoch"] for r in state["history"]] == [1, 2]
        # the best epoch so far is on disk, but the directory is refused until the training finishes
        with pytest.raises(ModelFileError, match="did not finish"):
            seqrnn.load(model_dir)

        resumed = tiny(epochs=4).fit(str(toy_path), model_dir=model_dir, resume=True)
        assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4]
        assert resumed.history_[:2] == state["history"]

    def test_stop_training_from_callback(self, toy_path):
        seen = []

        class Stop(Callback):
            def on_epoch_end(self, trainer, logs):
                seen.append(logs["epoch"])
                trainer.stop_training = logs["epoch"] >= 1

        model = tiny(epochs=3).fit(str(toy_path), callbacks=[Stop()])
        assert seen == [1] and len(model.history_) == 1


# ============================================================================ mappings and cells
class TestMappings:
    def test_many_to_one(self, fitted_m2o, toy_path):
        model = fitted_m2o
        assert model.model_config.mapping == "many-to-one" and model.model_config.window == 3
        assert len(model.history_) == 3
        seqs = read_sequences(str(toy_path))
        ids, complete = model.encode(seqs)
        out = model.log_proba(ids, complete)
        assert len(out) == len(seqs)
        for a, lp in zip(ids, out):
            assert lp.shape == (len(a) + 1, len(model.vocab_))  # one row per event plus the end
            np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)
        r = model.evaluate(seqs)
        assert r["events"] == sum(len(s) + 1 for s in seqs)
        assert math.isfinite(r["loss"])

    def test_many_to_one_round_trip(self, fitted_m2o, toy_path, tmp_path):
        fitted_m2o.save(str(tmp_path / "m2o"))
        loaded = seqrnn.load(str(tmp_path / "m2o"))
        assert loaded.model_config.mapping == "many-to-one"
        seqs = read_sequences(str(toy_path))[:10]
        ids, c = fitted_m2o.encode(seqs)
        for a, b in zip(fitted_m2o.log_proba(ids, c), loaded.log_proba(ids, c)):
            np.testing.assert_array_equal(a, b)

    def test_many_to_many_stream(self, tmp_path):
        tokens = toy_stream_tokens(60)
        path = write(tmp_path / "stream.log", "\n".join(tokens) + "\n")
        model = tiny(chunk=8).fit(str(path), format="stream")
        assert model.format_ == "stream"
        assert [r["epoch"] for r in model.history_] == [1, 2, 3]
        assert all("val_loss" in r for r in model.history_)  # last tenth held out
        assert seqrnn.Detector(model).fit(str(path), format="stream").count_threshold_ is None  # no profiles
        seqs = read_sequences(str(path), "stream")
        (lp,) = model.log_proba(*model.encode(seqs))
        assert lp.shape == (len(tokens), len(model.vocab_))  # no end row: a stream goes on
        r = model.evaluate(seqs)
        assert r["events"] == len(tokens) and r["sequences"] == 1
        assert model.history_[-1]["loss"] < model.history_[0]["loss"]  # it learns

    def test_gru(self, toy_path, tmp_path):
        model = tiny(cell="gru").fit(str(toy_path))
        assert isinstance(model.net_.rnn, torch.nn.GRU)
        model.save(str(tmp_path / "gru"))
        loaded = seqrnn.load(str(tmp_path / "gru"))
        assert isinstance(loaded.net_.rnn, torch.nn.GRU)
        seqs = read_sequences(str(toy_path))
        assert model.evaluate(seqs) == loaded.evaluate(seqs)
        ids = model.vocab_.encode(toy_stream_tokens(20))
        np.testing.assert_allclose(stream_in_chunks(model, ids, 7), model.log_proba([ids], [False])[0],
                                   atol=1e-5)


# ============================================================================ evaluation
class TestEvaluate:
    def test_metrics(self, fitted, toy_path):
        model, _ = fitted
        seqs = read_sequences(str(toy_path))
        r = model.evaluate(seqs)
        topk = r["topk_accuracy"]
        assert list(topk) == [str(k) for k in range(1, 11)]
        values = [topk[str(k)] for k in range(1, 11)]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert all(a <= b for a, b in zip(values, values[1:]))
        # six events can be predicted (a b c d e and the end): top-6 always hits
        assert values[5] == 1.0
        assert r["accuracy"] == values[0]
        assert math.isclose(r["perplexity"], math.exp(r["loss"]), rel_tol=1e-12)
        assert r["sequences"] == 60 and r["events"] == sum(len(s) + 1 for s in seqs)
        assert r["unknown_events"] == 0
        # the loss is the mean negative log-probability of the true events
        ids, complete = model.encode(seqs)
        nll = [-lp[np.arange(len(a) + 1), np.r_[a, EOS]] for a, lp in zip(ids, model.log_proba(ids, complete))]
        assert math.isclose(r["loss"], float(np.concatenate(nll).astype(np.float64).mean()), rel_tol=1e-6)

    def test_unseen_event_counted(self, fitted):
        model, _ = fitted
        r = model.evaluate([["a", "b", "zzz", "d"]])
        assert r["unknown_events"] == 1 and r["events"] == 5

    def test_unseen_event_is_anomalous(self, fitted):
        model, model_dir = fitted
        detector = seqrnn.Detector.load(model_dir, model)
        flags = detector.predict([["a", "b", "c", "d"], ["a", "b", "zzz", "c", "d"]])
        assert flags.tolist()[1] is True
        scores = detector.decision_function([["a", "b", "zzz", "c", "d"]])
        assert scores[0] > 1.0


# ============================================================================ stream scoring
class TestStreamScoring:
    def test_many_to_many_chunks_equal_one_piece(self, fitted):
        model, _ = fitted
        ids = model.vocab_.encode(toy_stream_tokens(40))
        assert len(ids) > 200
        whole = model.log_proba([ids], [False])[0]
        assert whole.shape == (len(ids), len(model.vocab_))
        np.testing.assert_allclose(stream_in_chunks(model, ids, 7), whole, atol=1e-5)
        # a finished sequence: the end row too
        whole_c = model.log_proba([ids], [True])[0]
        np.testing.assert_allclose(stream_in_chunks(model, ids, 7, complete=True), whole_c, atol=1e-5)

    def test_many_to_one_chunks_equal_one_piece(self, fitted_m2o):
        model = fitted_m2o
        ids = model.vocab_.encode(toy_stream_tokens(40))
        whole = model.log_proba([ids], [False])[0]
        assert whole.shape == (len(ids), len(model.vocab_))
        np.testing.assert_allclose(stream_in_chunks(model, ids, 7), whole, atol=1e-5)
        whole_c = model.log_proba([ids], [True])[0]
        np.testing.assert_allclose(stream_in_chunks(model, ids, 7, complete=True), whole_c, atol=1e-5)

    def test_long_sequence_path_equals_batched_path(self, fitted, monkeypatch):
        """Sequences longer than STREAM_CHUNK are scored piecewise; the result must not change."""
        import seqrnn.models.rnn as rnn

        model, _ = fitted
        ids = model.vocab_.encode(toy_stream_tokens(30))
        short = model.vocab_.encode(["a", "b", "c", "d"])
        batched = model.log_proba([ids, short], [True, True])
        monkeypatch.setattr(rnn, "STREAM_CHUNK", 16)
        piecewise = model.log_proba([ids, short], [True, True])
        for a, b in zip(batched, piecewise):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-5)

    def test_batched_scoring_independent_of_batch(self, fitted, toy_path):
        """Padding must not leak: a sequence scores the same alone or in a padded batch."""
        model, _ = fitted
        seqs = read_sequences(str(toy_path))
        ids, complete = model.encode(seqs)
        together = model.log_proba(ids, complete)
        for i in (0, 7, 33):
            np.testing.assert_allclose(model.log_proba([ids[i]], [True])[0], together[i], atol=1e-5)


# --- regressions found in review ----------------------------------------------------------------
def test_topk_accuracy_counts_no_event_ranked_beyond_k():
    """An event ranked 11th or lower is no top-10 hit (top-10 used to be 1.0 always)."""
    from seqrnn.score import evaluate
    from seqrnn.data.formats import as_sequences
    from seqrnn.data.vocab import Vocabulary

    class Fixed:
        vocab_ = Vocabulary([f"t{i}" for i in range(30)])

        def encode(self, seqs):
            return [self.vocab_.encode(s.tokens) for s in seqs], [s.complete for s in seqs]

        def log_proba(self, ids_list, complete):
            V = len(self.vocab_)
            # t0 most likely, then t1, ...: the rank of t{i} is i + 1 (the end least likely)
            row = np.linspace(0.0, -5.0, V)
            row[3] = -50.0
            row -= np.log(np.exp(row).sum())
            return [np.tile(row, (len(a) + c, 1)) for a, c in zip(ids_list, complete)]

    seqs = as_sequences([["t0", "t29"]], "stream")  # ranks 1 and 30, no end
    r = evaluate(Fixed(), seqs)
    assert r["topk_accuracy"]["1"] == 0.5
    assert r["topk_accuracy"]["10"] == 0.5


def test_vocabulary_comes_from_the_training_split_only(tiny_settings):
    model = RNNModel(**{**tiny_settings, "epochs": 1}).fit(
        [["a", "b", "c"]] * 6, validation_data=[["a", "zz", "c"]] * 2)
    assert "zz" not in model.vocab_.stoi
    scores = model.score_events([["a", "zz", "c"]], format="sessions")[0]
    assert bool(scores.unknown[1])


def test_resume_with_other_model_flags_is_refused(tmp_path, tiny_settings):
    from seqrnn.errors import InputError

    data = [["a", "b", "c"]] * 8
    RNNModel(**{**tiny_settings, "epochs": 1}).fit(data, model_dir=str(tmp_path))
    with pytest.raises(InputError, match="hidden"):
        RNNModel(**{**tiny_settings, "epochs": 2, "hidden": 4}).fit(data, model_dir=str(tmp_path), resume=True)


def test_detector_rejects_thresholds_outside_0_1(tiny_settings):
    from seqrnn.detect import Detector
    from seqrnn.errors import InputError

    model = RNNModel(**{**tiny_settings, "epochs": 1}).fit([["a", "b"]] * 6)
    for bad in (-1.0, 0.0, 1.0, 2.0):
        with pytest.raises(InputError):
            Detector(model, threshold=bad)
    with pytest.raises(InputError):
        Detector(model, top_g=0)


def test_windows_gather_what_sliding_windows_give():
    from seqrnn.data.batching import Windows, inputs_targets
    from seqrnn.data.vocab import PAD

    rng = np.random.default_rng(0)
    seqs = [rng.integers(4, 9, size=n) for n in (0, 1, 3, 12, 7)]
    complete = [True, False, True, False, True]
    w = 4
    ws = Windows(seqs, complete, w)
    expect_x, expect_y = [], []
    for ids, c in zip(seqs, complete):
        x, y = inputs_targets(ids, c)
        padded = np.r_[[PAD] * (w - 1), x]
        expect_x += [padded[t:t + w] for t in range(len(y))]  # the window ends with the event before y[t]
        expect_y += list(y)
    assert ws.counts == [len(inputs_targets(a, c)[1]) for a, c in zip(seqs, complete)]
    np.testing.assert_array_equal(ws.x(np.arange(len(ws))), np.array(expect_x))
    np.testing.assert_array_equal(ws.x(slice(2, 9)), np.array(expect_x[2:9]))
    np.testing.assert_array_equal(ws.y, expect_y)
