"""The fast paths of ``detect`` give what the plain ones gave: the batched per-event scores, the session
line check, the vocabulary's encoding, the count matrix, the maximum surprise, the JSON lines."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from seqrnn import score as score_module
from seqrnn.artifacts import finite_json
from seqrnn.crossfit import max_known_nll
from seqrnn.data.formats import COMMAS, ONE_COMMA, WITH_ID, WITHOUT_ID, Sequence, session_line_kind
from seqrnn.data.vocab import EOS, SPECIALS, UNK, Vocabulary
from seqrnn.profiles import count_matrix
from seqrnn.report.findings import finding_dict
from seqrnn.report.lines import FindingLines
from seqrnn.score import EventScores, event_scores, event_scores_batch


def _random_case(rng, n_seqs=12, vocab=9):
    """Sequences of random ids (an unseen one among them, an empty unfinished one, an empty session, a
    stream), with random normalised log-probabilities, ties included."""
    seqs, ids_list, logps = [], [], []
    for i in range(n_seqs):
        complete = i % 4 != 1
        n = 0 if i in (1, 2) else int(rng.integers(1, 7))
        ids = rng.integers(4, vocab, n)
        if i == 3:
            ids[0] = UNK
        rows = len(ids) + complete
        logits = rng.normal(size=(rows, vocab)).round(1)  # rounded: equal values, the sort's ties
        lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        seqs.append(Sequence(f"s{i}", [f"t{j}" for j in ids], "<test>", i + 1, complete=complete))
        ids_list.append(ids)
        logps.append(lp.astype(np.float32))
    return seqs, ids_list, logps


def _same_scores(a: EventScores, b: EventScores) -> None:
    assert a.sequence is b.sequence
    for name in ("ids", "prob", "nll", "rank", "topk", "topk_prob"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("topk", [0, 1, 3, 50])
@pytest.mark.parametrize("cells", [1, 40, 1 << 22])  # one block per sequence, several blocks, one block
def test_event_scores_batch_equals_per_sequence(topk, cells, monkeypatch):
    monkeypatch.setattr(score_module, "BATCH_CELLS", cells)
    rng = np.random.default_rng(topk)
    seqs, ids_list, logps = _random_case(rng)
    batch = event_scores_batch(seqs, ids_list, logps, topk)
    assert len(batch) == len(seqs)
    for s, ids, lp, b in zip(seqs, ids_list, logps, batch):
        _same_scores(event_scores(s, ids, lp, topk), b)
    assert batch[3].unknown[0] and batch[3].rank[0] == 9  # the unseen event ranks last
    assert len(batch[1]) == 0 and len(batch[2]) == 1  # empty: unfinished, no rows; a session, its end
    assert batch[2].ids.tolist() == [EOS]


def test_event_scores_batch_of_nothing():
    assert event_scores_batch([], [], [], 5) == []


@pytest.mark.parametrize("line, kind", [
    ("blk_1,5 22 7", WITH_ID), ("blk_1,5\t22", WITH_ID), ("  blk_1 , 5 22  ", WITH_ID),
    ("blk_1,5\u200322", WITH_ID),  # an em space between tokens
    ("a b,5 22", WITHOUT_ID), ("a\tb,5 22", WITHOUT_ID), ("a\u00a0b,5 22", WITHOUT_ID),
    ("5 22 7", WITHOUT_ID), (",5 22", WITHOUT_ID), ("\t,5 22", WITHOUT_ID),
    ("s1,a", ONE_COMMA), ("s1,\ta\t", ONE_COMMA), ("s1,", ONE_COMMA),
    ("a,b,c", COMMAS), ("a, b,c ", COMMAS),
])
def test_session_line_kind(line, kind):
    assert session_line_kind(line) == kind


def test_session_line_kind_agrees_with_a_character_scan():
    """The kind as the character-by-character rule said it, on random lines of spaces, tabs, commas."""
    def by_characters(text):
        head, sep, rest = text.strip().partition(",")
        head = head.strip()
        if not sep or not head or any(c.isspace() for c in head):
            return WITHOUT_ID
        rest = rest.strip()
        if any(c.isspace() for c in rest):
            return WITH_ID
        return COMMAS if "," in rest else ONE_COMMA

    rng = random.Random(0)
    for _ in range(3000):
        line = "".join(rng.choice("ab,, \t\u3000\x0b") for _ in range(rng.randint(0, 9)))
        assert session_line_kind(line) == by_characters(line), repr(line)


def test_vocabulary_encode():
    v = Vocabulary(["a", "b"])
    ids = v.encode(["a", "x", "b", *SPECIALS, "a"])
    assert ids.dtype == np.int64
    assert ids.tolist() == [4, UNK, 5, UNK, UNK, UNK, UNK, 4]  # a reserved name is unseen, not padding
    assert v.encode([]).dtype == np.int64 and v.encode([]).shape == (0,)
    assert v.encode(["b", "b"]).tolist() == [5, 5]


def test_count_matrix_equals_counting_each_row():
    rng = np.random.default_rng(1)
    ids_list = [rng.integers(0, 7, n) for n in (0, 5, 1, 12, 0)]
    expected = np.zeros((5, 7), np.float32)
    for i, ids in enumerate(ids_list):
        np.add.at(expected[i], ids, 1.0)
    expected[:, UNK] = 0
    got = count_matrix(ids_list, 7)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert count_matrix([], 7).shape == (0, 7)
    with pytest.raises(IndexError):
        count_matrix([np.array([2, 7])], 7)  # an id beyond the vocabulary does not count in the next row


def test_max_known_nll_of_shared_and_own_arrays():
    seq = Sequence("s", ["a"], "<t>", 1)
    a = EventScores(seq, np.array([4, UNK, EOS]), np.ones(3), np.array([1.0, 9.0, 2.0]), np.ones(3, int),
                    np.zeros((3, 1), int), np.ones((3, 1)))
    b = EventScores(seq, np.array([UNK]), np.ones(1), np.array([5.0]), np.ones(1, int), np.zeros((1, 1), int),
                    np.ones((1, 1)))
    c = EventScores(seq, a.ids, a.prob, np.array([3.0, 0.0, 0.5]), a.rank, a.topk, a.topk_prob)  # own nll
    assert max_known_nll([a, b, a, c, b]).tolist() == [2.0, 0.0, 2.0, 3.0, 0.0]
    assert max_known_nll([]).shape == (0,)


# --- the JSON lines ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def markov_detector():
    from seqrnn.detect import Detector
    from seqrnn.models.markov import MarkovModel

    rng = random.Random(0)
    train = []
    for i in range(80):
        tokens = ["a"] + ["b"] * rng.randint(1, 3) + ["c"] + (["e"] if rng.random() < 0.3 else []) + ["d"]
        train.append(Sequence(f"t{i}", tokens, "<train>", i + 1))
    return Detector(MarkovModel(order=1, validation_split=0.0)).fit(train)


def _sessions():
    """Sessions that repeat, anomalous ones among them (unseen events, unusual counts, wrong order, an early
    end), and a stream."""
    kinds = ["a b c d", "a b b c d", "a b c e d", "a x c d", "a b b b b b b c d", "d c b a", "a b", "a b y d",
             "a b x d"]
    rng = random.Random(1)
    out = []
    for n in range(60):
        tokens = rng.choice(kinds).split()
        out.append(Sequence(f"id{n}", tokens, f"file{n % 3}", n + 1, complete=True,
                            lines=np.arange(10 * n, 10 * n + len(tokens))))
    out.append(Sequence("stream", "a b c d d d x a".split(), "stream.txt", 1, complete=False))
    return out


@pytest.mark.parametrize("templates", [None, {"a": "Alpha <*>", "b": "Beta"}])
def test_finding_lines_equal_finding_dict(markov_detector, templates):
    model = markov_detector.model
    findings = markov_detector.decide(_sessions()).findings
    assert sum(f.anomalous for f in findings) >= 10 and not all(f.anomalous for f in findings)
    assert {f.view for f in findings} >= {None, "unseen", "count"}
    line = FindingLines(model, templates, 3, "model")
    for f in findings:
        assert line(f) == finite_json(finding_dict(model, f, templates, 3), "model")
    assert len(line._done) < 20  # the repeats reuse the text of the first


def test_finding_lines_see_a_copy_changed(markov_detector):
    """A copy of a finding that a caller changed gets its own line, not the first one's."""
    model = markov_detector.model
    findings = markov_detector.decide(_sessions()).findings
    line = FindingLines(model, None, 5, "model")
    first = next(i for i, f in enumerate(findings) if f.anomalous and f.view == "count")
    tokens = findings[first].scores.sequence.tokens
    copies = [i for i, f in enumerate(findings) if i > first and f.scores.sequence.tokens == tokens]
    assert len(copies) >= 2
    assert line(findings[first])
    findings[copies[0]].views["count"]["value"] = 1234.5
    findings[copies[1]].count_deviations[0]["count"] = 99
    for i in [first] + copies:
        text = line(findings[i])
        assert text == finite_json(finding_dict(model, findings[i], None, 5), "model")
    assert json.loads(line(findings[copies[0]]))["views"]["count"]["value"] == 1234.5
    assert json.loads(line(findings[copies[1]]))["count_deviations"][0]["count"] == 99
    assert json.loads(line(findings[copies[1]]))["id"] == findings[copies[1]].scores.sequence.id



def test_detect_leaves_the_collector_unfrozen_after_an_error(tmp_path):
    """detect freezes the collector while it works; a bad input (an error part-way) unfreezes it too."""
    import gc

    from seqrnn.cli import main

    train = tmp_path / "train.txt"
    train.write_text("\n".join("a b c d" if i % 2 else "a c b d" for i in range(40)) + "\n")
    assert main(["train", str(train), "-m", str(tmp_path / "m"), "--model", "markov"]) == 0
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a b \xff\xfe c\n")
    before = gc.get_freeze_count()
    assert main(["detect", str(tmp_path / "m"), str(bad)]) == 2
    assert gc.get_freeze_count() == before
    assert main(["detect", str(tmp_path / "m"), str(train)]) == 0
    assert gc.get_freeze_count() == before
    gc.freeze()  # a caller's own frozen objects stay frozen (unfreezing is all or nothing)
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0 and main(["detect", str(tmp_path / "m"), str(train)]) == 0
        assert 0 < gc.get_freeze_count() <= frozen  # still frozen (some may have died), none frozen here
    finally:
        gc.unfreeze()


# --- scoring a large vocabulary: the log p held at once is bounded ----------------------------------
def _wide_case():
    """Sessions over 40 events, repeats among them, a long session and a long stream."""
    rng = random.Random(2)
    words = [f"w{i}" for i in range(40)]
    train = [Sequence(f"t{i}", rng.choices(words, k=rng.randint(1, 12)), "<train>", i + 1) for i in range(150)]
    test = [Sequence(f"s{i}", rng.choices(words, k=rng.randint(0, 12)), "<test>", i + 1) for i in range(30)]
    test += test[:5] + [Sequence("long", rng.choices(words + ["new"], k=300), "<test>", 40),
                        Sequence("stream", rng.choices(words, k=250), "<test>", 41, complete=False)]
    return train, test


@pytest.mark.parametrize("kind", ["markov", "hmm", "rnn", "context"])
def test_scoring_asks_for_a_bounded_share_of_log_p_and_gives_the_same_scores(kind, monkeypatch):
    """A vocabulary of words or raw ids over many events made detect, evaluate and calibration hold every
    event's distribution at once (the Markov chain on tinyshakespeare's words: out of memory past 8 GB)."""
    from seqrnn.models import model_class
    from seqrnn.score import evaluate, score_sequences

    train, test = _wide_case()
    settings = ({"order": 2} if kind == "markov" else {"states": 4, "iterations": 3} if kind == "hmm"
                else dict(hidden=8, embedding_dim=4, layers=1, epochs=1, seed=0, threads=1))
    model = model_class(kind)(**settings).fit(train)
    whole = score_sequences(model, test, topk=3)
    whole_eval = evaluate(model, test)
    seen = []
    for name in ("log_proba", "stream_step"):
        method = getattr(model, name)

        def spy(ids, *rest, _method=method, _name=name):
            out = _method(ids, *rest)
            lps = out if _name == "log_proba" else [out[0]]
            seen.append(sum(lp.size for lp in lps))
            return out
        monkeypatch.setattr(model, name, spy)
    V = len(model.vocab_)
    monkeypatch.setattr(score_module, "SCORE_CELLS", 20 * V)
    monkeypatch.setattr(score_module, "PIECE_EVENTS", 7)
    pieces = score_sequences(model, test, topk=3)
    again = evaluate(model, test)
    assert again.pop("loss") == pytest.approx(whole_eval.pop("loss"), rel=1e-5)
    assert again.pop("perplexity") == pytest.approx(whole_eval.pop("perplexity"), rel=1e-5)
    assert again == whole_eval
    if kind != "context":  # no stream: its long sequences are asked for whole, the rest in groups
        assert max(seen) <= 20 * V
    assert len(seen) > 10
    assert [s.sequence for s in pieces] == test and pieces[5] is not pieces[30] and pieces[0].ids is pieces[30].ids
    for a, b in zip(whole, pieces):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.nll, b.nll, rtol=1e-5, atol=1e-5)
        if kind in ("markov", "hmm"):  # the same numpy code on rows: the same values
            _same_scores(_with(a, b.sequence), b)


def _with(scores, seq):
    from seqrnn.score import _with_sequence

    return _with_sequence(scores, seq)


def test_the_expected_events_keep_no_ranking_of_the_whole_vocabulary_alive(markov_detector):
    """EventScores.topk was a slice of each row's argsort over the vocabulary: every scored event kept V
    integers alive (500 sessions over 19,000 events: 1.5 GB still held after scoring)."""
    from seqrnn.score import score_sequences

    model = markov_detector.model
    for topk in (2, 1, 0):
        scores = score_sequences(model, _sessions(), topk=topk)
        held = {id(b): b for b in (sc.topk if sc.topk.base is None else sc.topk.base for sc in scores)}
        assert sum(b.size for b in held.values()) <= sum(len(sc) for sc in scores) * max(topk, 1)


@pytest.mark.parametrize("V", [5, 40, 300])
def test_top_events_are_the_first_of_the_stable_sort(V):
    from seqrnn.score import top_events

    rng = np.random.default_rng(V)
    lp = rng.normal(size=(200, V)).round(1)  # ties, at the k-th value too
    lp[:, :3] = -np.inf
    lp[::7] = -1.0  # rows of one value
    lp[::11, V // 2:] = -np.inf
    for k in sorted({1, 2, 3, 4, V // 8, V // 8 + 1, V - 3, V}):
        top = top_events(lp, k)
        np.testing.assert_array_equal(top, np.argsort(-lp, axis=1, kind="stable")[:, :k], err_msg=str(k))
        assert (top if top.base is None else top.base).size == top.size


# --- the count view over a large vocabulary -----------------------------------------------------------
def _sparse_counts(rng, n, V, common=()):
    ids = [np.r_[rng.integers(4, V, rng.integers(3, 25)), list(common)].astype(np.int64) for _ in range(n)]
    counts = count_matrix(ids, V)
    return np.unique(counts, axis=0), (1.0 / (counts.std(0) + 0.1)).astype(np.float32)


@pytest.mark.parametrize("common", [(), (5, 6, 7)])
def test_nearest_on_the_events_held_equals_every_event_compared(common, monkeypatch):
    from seqrnn import profiles

    rng = np.random.default_rng(len(common))
    ref, w = _sparse_counts(rng, 300, 400, common)
    queries = np.r_[_sparse_counts(rng, 50, 400, common)[0], ref[:5], np.zeros((1, 400), np.float32)]
    for p, r, self_ in ((ref, ref, True), (queries, ref, False)):
        monkeypatch.setattr(profiles, "SPARSE_VOCABULARY", 10**9)
        d0, a0 = profiles.nearest(p, r, w, exclude_self=self_)
        monkeypatch.setattr(profiles, "SPARSE_VOCABULARY", 256)
        monkeypatch.setattr(profiles, "NEAREST_CELLS", 5000)  # blocks of one and of several profiles
        d1, a1 = profiles.nearest(p, r, w, exclude_self=self_)
        np.testing.assert_allclose(d1, d0, rtol=1e-5)
        assert (d0[a1 != a0] == np.sort(d0)[0]).all() or (a1 == a0).all()  # ties aside, the same nearest


def test_the_count_view_over_thousands_of_events_compares_the_events_sessions_hold():
    """Every pair of sessions was compared on every event of the vocabulary: sessions x sessions x
    vocabulary (4,000 sessions of parsed templates over 1,000 events: 5 s; 40,000: about 8 minutes, at
    every training and detection). 900 sessions over 6,000 events took 4 s, now well under a second."""
    import time

    from seqrnn.profiles import leave_one_out

    rng = np.random.default_rng(0)
    counts, w = _sparse_counts(rng, 900, 6000, (5, 6))
    t = time.perf_counter()
    loo, unique = leave_one_out(counts, w)
    assert time.perf_counter() - t < 1.5
    assert len(unique) == 900 and (loo > 0).all()


@pytest.mark.parametrize("V", [12, 5000])
def test_count_matrix_counts_the_cells_that_occur(V):
    """Over a large vocabulary the matrix was filled from a count of every cell (8 bytes a cell beside its
    4): 20,000 sessions of 20 events over 20,000 took 10 s and 4.6 GB, now 0.1 s and the matrix's 1.6 GB."""
    rng = np.random.default_rng(V)
    ids_list = [rng.integers(0, V, rng.integers(0, 30)) for _ in range(300)]
    expected = np.zeros((300, V), np.float32)
    for r, ids in enumerate(ids_list):
        np.add.at(expected[r], ids, 1)
    expected[:, UNK] = 0
    got = count_matrix(ids_list, V)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_count_matrix_larger_than_memory_is_refused_before_it_is_allocated(monkeypatch):
    from seqrnn import limits
    from seqrnn.errors import InputError

    monkeypatch.setattr(limits, "available_memory", lambda: 1 << 20)
    with pytest.raises(InputError, match="event counts of 1,000 sessions over 5,000 events"):
        count_matrix([np.array([4, 5])] * 1000, 5000)
    assert count_matrix([np.array([4, 5])] * 10, 5000).shape == (10, 5000)


def test_a_sequence_read_in_pieces_is_prepared_once_not_once_a_piece(monkeypatch):
    """Each piece of a long sequence re-made its true events (the whole sequence copied) and summed the
    pieces before it: the square of the pieces (400,000 events in pieces of 64: 1.7 s, linear now: 1.0 s)."""
    from seqrnn.models.markov import MarkovModel
    from seqrnn.score import score_sequences

    train, test = _wide_case()
    model = MarkovModel(order=1).fit(train)
    monkeypatch.setattr(score_module, "SCORE_CELLS", 20 * len(model.vocab_))
    monkeypatch.setattr(score_module, "PIECE_EVENTS", 7)
    made = []
    real = score_module.with_end
    monkeypatch.setattr(score_module, "with_end", lambda ids, c: made.append(len(ids)) or real(ids, c))
    long = [s for s in test if len(s) > 100]
    scores = score_sequences(model, long, topk=1)
    assert [len(s) for s in scores] == [301, 250] and made.count(300) == 1 and made.count(250) == 1


@pytest.mark.parametrize("kind", ["markov", "hmm", "count"])
def test_scores_at_the_piece_and_group_edges_equal_each_sequence_scored_whole(kind, monkeypatch):
    """Sequences of PIECE_EVENTS events and one either side, twice and three times that, empty ones, ones
    of unseen events only, sessions and unfinished ones, with groups of log p just below, at and above a
    piece's, against the plain computation: each sequence's log p asked for whole, its scores from it;
    k from none to more than the vocabulary."""
    from seqrnn.models import model_class
    from seqrnn.score import evaluate, score_sequences

    rng = random.Random(3)
    words = [f"w{i}" for i in range(20)]
    train = [Sequence(f"t{i}", rng.choices(words, k=rng.randint(1, 12)), "<train>", i + 1) for i in range(80)]
    settings = {"order": 2} if kind == "markov" else {"states": 3, "iterations": 2} if kind == "hmm" else {}
    model = model_class(kind)(**settings).fit(train)
    V = len(model.vocab_)
    P = 3
    test = [Sequence(f"{w}{n}{c}", rng.choices(words, k=n) if w == "s" else ["new"] * n, "<test>", 1, complete=c)
            for n in (0, 1, P - 1, P, P + 1, 2 * P, 2 * P + 1, 3 * P - 1) for c in (True, False) for w in "su"]
    ids_list, complete = model.encode(test)
    for topk in (0, 1, 2, 5, V + 3):
        plain = [event_scores(s, ids, model.log_proba([ids], [c])[0], topk)
                 for s, ids, c in zip(test, ids_list, complete)]
        for rows in (1, P, P + 1, P + 2):
            monkeypatch.setattr(score_module, "SCORE_CELLS", rows * V - (rows == P + 2))
            monkeypatch.setattr(score_module, "PIECE_EVENTS", P)
            monkeypatch.setattr(score_module, "BATCH_CELLS", max(1, rows * V // 2))
            for a, b in zip(plain, score_sequences(model, test, topk=topk)):
                _same_scores(a, b)
        monkeypatch.undo()
    assert evaluate(model, test)["events"] == sum(len(s) for s in plain)


@pytest.mark.parametrize("V", [256, 257, 300])
def test_nearest_at_the_sparse_vocabulary_edge_equals_the_plain_distance(V, monkeypatch):
    """Either side of SPARSE_VOCABULARY, in blocks of one and of several profiles: each profile's weighted L1
    distance to its nearest reference (itself left out with exclude_self), computed pair by pair; an empty
    profile (a session of unseen events only) and a profile that is a reference's twin among them."""
    from seqrnn import profiles

    rng = np.random.default_rng(V)
    ref, w = _sparse_counts(rng, 60, V, (5,))
    queries = np.r_[_sparse_counts(rng, 20, V)[0], ref[:3], np.zeros((1, V), np.float32)]
    for cells in (10, 1 << 24):
        monkeypatch.setattr(profiles, "NEAREST_CELLS", cells)
        for p, self_ in ((ref, True), (queries, False)):
            plain = np.array([[np.inf if self_ and i == j else float((np.abs(a - b) * w).sum())
                               for j, b in enumerate(ref)] for i, a in enumerate(p)])
            d, arg = profiles.nearest(p, ref, w, exclude_self=self_)
            np.testing.assert_allclose(d, plain.min(1), rtol=1e-5)
            np.testing.assert_allclose(plain[np.arange(len(p)), arg], plain.min(1), rtol=1e-5)
    assert (profiles.nearest(ref[:3], ref, w)[0] == 0).all()  # a twin is at 0, not at a rounding of it


@pytest.mark.parametrize("transform", ["raw", "log"])
@pytest.mark.parametrize("V", [40, 400])
def test_a_reference_made_ready_once_compares_as_nearest_to(transform, V):
    """The detector makes its count profiles ready once (transformed, their weighted totals) rather than at
    every decide (53 ms a session over 5,000 profiles of 2,000 events, now 10 ms): the same distances and
    indices as every profile compared on every event."""
    from seqrnn.profiles import Reference, transformed

    rng = np.random.default_rng(V)
    ref, w = _sparse_counts(rng, 200, V, (5, 6))
    queries = np.r_[_sparse_counts(rng, 30, V, (5,))[0], ref[:3]]
    ready = Reference(ref, w, transform)
    assert (ready.totals is not None) == (V > 256)
    for rows in (queries, queries[:1], queries[-1:]):
        dense = (np.abs(transformed(rows, transform)[:, None, :].astype(np.float64)
                        - transformed(ref, transform)[None, :, :]) * w).sum(-1)  # brute force, every event
        d1, a1 = ready.nearest(rows)
        np.testing.assert_allclose(d1, dense.min(1), rtol=1e-5)
        np.testing.assert_allclose(dense[np.arange(len(rows)), a1], dense.min(1), rtol=1e-5)  # a nearest one
    assert (ready.nearest(queries[-3:])[0] == 0).all()


def test_the_detector_makes_its_profiles_ready_again_when_they_change():
    from seqrnn.detect import Detector
    from seqrnn.profiles import idf_weights

    det = Detector.__new__(Detector)
    rng = np.random.default_rng(1)
    ref, _ = _sparse_counts(rng, 50, 30)
    det.count_profiles_, det.count_weights_, det.count_transform_ = ref, idf_weights(ref), "log"
    first = det._count_reference()
    assert det._count_reference() is first  # made once
    det.count_profiles_ = np.unique(np.r_[ref, np.ones((1, 30), np.float32)], axis=0)  # feedback adds a profile
    again = det._count_reference()
    assert again is not first and again.counts is det.count_profiles_
    det.count_transform_ = "raw"
    assert det._count_reference().transform == "raw"
