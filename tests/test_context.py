"""Bidirectional next-event models never see the event they score.

The context (cloze) model reads the events before and after position t; the
bidirectional many-to-one model reads a window before the target. Changing the
event at t must leave the whole distribution of row t unchanged, and a
bidirectional many-to-many model, which would read its target, is refused.
"""

from __future__ import annotations

import json
import numpy as np
import pytest

from conftest import TINY_SETTINGS, toy_session_lines

torch = pytest.importorskip("torch")
import seqrnn  # noqa: E402
from seqrnn.errors import InputError  # noqa: E402
from seqrnn.models.context import ContextModel  # noqa: E402
from seqrnn.models.rnn import RNNModel  # noqa: E402


def toy_tokens(n=60, seed=0):
    return [line.split(",", 1)[1].split() for line in toy_session_lines(n, seed)]


@pytest.fixture(scope="module")
def context_model():
    return ContextModel(**{**TINY_SETTINGS, "epochs": 8}).fit(toy_tokens())


@pytest.fixture(scope="module")
def bidir_window_model():
    return RNNModel(**{**TINY_SETTINGS, "mapping": "many-to-one", "window": 4, "bidirectional": True}).fit(toy_tokens())


def assert_no_leak(model, ids: np.ndarray, complete: bool):
    """Every substitution at every position t leaves row t equal, and changes some other row."""
    base = model.log_proba([ids], [complete])[0]
    real = np.arange(4, len(model.vocab_))  # the real events (ids 0-3 are reserved)
    others_changed = 0
    for t in range(len(ids)):
        variants = []
        for e in real:
            if e == ids[t]:
                continue
            v = ids.copy()
            v[t] = e
            variants.append(v)
        rows = model.log_proba(variants, [complete] * len(variants))
        for r in rows:
            np.testing.assert_allclose(r[t], base[t], rtol=0, atol=1e-6)
            others_changed += not np.allclose(np.delete(r, t, 0), np.delete(base, t, 0))
    assert others_changed > 0  # the model does read its inputs: the test can fail


class TestNoLeak:
    def test_context_model_row_t_ignores_event_t(self, context_model):
        ids = context_model.vocab_.encode("a b b c e d".split())
        assert_no_leak(context_model, ids, complete=True)
        assert_no_leak(context_model, ids, complete=False)

    def test_bidirectional_window_row_t_ignores_event_t(self, bidir_window_model):
        ids = bidir_window_model.vocab_.encode("a b b b c e d".split())
        assert_no_leak(bidir_window_model, ids, complete=True)

    def test_context_uses_both_sides(self, context_model):
        ids = context_model.vocab_.encode("a b b c e d".split())
        base = context_model.log_proba([ids], [True])[0]
        later, earlier = ids.copy(), ids.copy()
        later[4] = context_model.vocab_.stoi["a"]
        earlier[0] = context_model.vocab_.stoi["d"]
        # row 2 depends on an event after it and on one before it
        assert not np.allclose(context_model.log_proba([later], [True])[0][2], base[2])
        assert not np.allclose(context_model.log_proba([earlier], [True])[0][2], base[2])

    def test_end_row_reads_only_the_events_before(self, context_model):
        ids = context_model.vocab_.encode("a b c d".split())
        lp = context_model.log_proba([ids], [True])[0]
        assert lp.shape == (len(ids) + 1, len(context_model.vocab_))
        # the end row equals the last row of an unfinished sequence one event longer, whatever that event is
        for e in ("a", "b", "e"):
            longer = np.r_[ids, context_model.vocab_.stoi[e]]
            np.testing.assert_allclose(context_model.log_proba([longer], [False])[0][-1], lp[-1], atol=1e-6)


class TestContextModel:
    def test_learns_the_toy_grammar(self, context_model):
        # A cloze model sees both sides, so it is at least as sure as the grammar's next-event entropy allows.
        seqs = toy_tokens(40, seed=1)
        ev = context_model.evaluate(seqs)
        assert ev["events"] == sum(len(s) + 1 for s in seqs)
        assert ev["topk_accuracy"]["2"] > 0.9

    def test_batched_equals_one_by_one(self, context_model):
        seqs = [context_model.vocab_.encode(s) for s in toy_tokens(12, seed=2)]
        complete = [i % 2 == 0 for i in range(len(seqs))]
        together = context_model.log_proba(seqs, complete)
        for s, c, lp in zip(seqs, complete, together):
            np.testing.assert_allclose(context_model.log_proba([s], [c])[0], lp, atol=1e-5)
            assert len(lp) == len(s) + c

    def test_empty_sequences(self, context_model):
        empty = np.zeros(0, np.int64)
        assert context_model.log_proba([empty], [False])[0].shape == (0, len(context_model.vocab_))
        assert context_model.log_proba([empty], [True])[0].shape == (1, len(context_model.vocab_))

    def test_long_unfinished_sequence_in_pieces(self, context_model, monkeypatch):
        import seqrnn.models.context as ctx

        ids = context_model.vocab_.encode([t for s in toy_tokens(30) for t in s])
        whole = context_model.log_proba([ids], [False])[0]
        monkeypatch.setattr(ctx, "PIECE", 40)
        monkeypatch.setattr(ctx, "OVERLAP", 30)
        pieces = context_model.log_proba([ids], [False])[0]
        assert pieces.shape == whole.shape
        # 30 events of context either side: the same scores within a small tolerance
        np.testing.assert_allclose(pieces, whole, atol=1e-2)

    def test_save_load_detect(self, context_model, tmp_path):
        detector = seqrnn.Detector(context_model).fit(toy_tokens())
        detector.save(context_model.save(tmp_path / "m"))
        loaded = seqrnn.Detector.load(str(tmp_path / "m"))
        assert type(loaded.model) is ContextModel
        seqs = toy_tokens(10, seed=3)
        np.testing.assert_array_equal(loaded.decision_function(seqs), detector.decision_function(seqs))
        wrong = [["a", "d", "b", "c", "c", "c"]]
        assert loaded.predict(wrong)[0]

    def test_stream_refused(self, context_model):
        with pytest.raises(InputError, match="cannot judge a stream"):
            context_model.stream_start()

    def test_mapping_refused(self):
        with pytest.raises(InputError, match="context model"):
            ContextModel(mapping="many-to-one")


class TestBidirectionalFlag:
    def test_many_to_many_refused(self):
        with pytest.raises(InputError, match="sees the event it predicts"):
            RNNModel(bidirectional=True)

    def test_many_to_one_round_trip(self, bidir_window_model, tmp_path):
        bidir_window_model.save(tmp_path / "b")
        loaded = seqrnn.load(str(tmp_path / "b"))
        assert loaded.model_config.bidirectional
        ids = loaded.vocab_.encode("a b c d".split())
        np.testing.assert_array_equal(loaded.log_proba([ids], [True])[0],
                                      bidir_window_model.log_proba([ids], [True])[0])

    def test_cli(self, tmp_path, capsys):
        from seqrnn.cli import main

        data = tmp_path / "toy.txt"
        data.write_text("\n".join(toy_session_lines(40)) + "\n")
        base = ["train", str(data), "--epochs", "1", "--hidden", "8", "--layers", "1", "--threads", "1", "-q"]
        assert main(base + ["--model-dir", str(tmp_path / "x"), "--bidirectional"]) == 2
        assert "many-to-one" in capsys.readouterr().err
        assert main(base + ["--model-dir", str(tmp_path / "c"), "--model", "context"]) == 0
        assert json.loads((tmp_path / "c" / "config.json").read_text())["kind"] == "context"
        assert main(["detect", str(tmp_path / "c"), str(data), "--format", "stream", "--follow"]) == 2
        assert "cannot judge a stream" in capsys.readouterr().err
        assert main(["detect", str(tmp_path / "c"), str(data), "--output", str(tmp_path / "d.jsonl")]) == 0
        assert len((tmp_path / "d.jsonl").read_text().splitlines()) == 40
        capsys.readouterr()
        assert main(["info", str(tmp_path / "c")]) == 0
        out = capsys.readouterr().out
        assert "context: 1x8 GRU" in out and "before and after" in out and "parameters" in out
