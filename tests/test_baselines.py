"""The baselines: Markov chain, Naive Bayes, HMM and the sequence-level detectors.

Each is checked against numbers computed another way (by hand, by a direct
implementation of its formula, by brute force), and all of them against the
one model interface: save/load, streams, the Detector.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from seqrnn.data.formats import Sequence
from seqrnn.data.vocab import BOS, EOS, PAD, UNK, Vocabulary
from seqrnn.detect import Detector
from seqrnn.models import load
from seqrnn.models.counts import CombinedModel, CountModel, LengthModel, UnseenModel
from seqrnn.models.hmm import FLOOR, HMMModel
from seqrnn.models.markov import MarkovModel
from seqrnn.models.naive_bayes import NaiveBayesModel


def seqs(*texts, complete=True):
    return [Sequence(f"s{i}", t.split(), complete=complete) for i, t in enumerate(texts)]


def lp_of(model, text, complete=True):
    ids = model.vocab_.encode(text.split())
    return model.log_proba([ids], [complete])[0]


# --- Markov chain ---------------------------------------------------------------------
def test_markov_first_order_equals_hand_counts():
    # Training events with their one-event history (<bos> first, <eos> last):
    #   a b, a b: bos->a, a->b, b->eos (twice);  a c: bos->a, a->c, c->eos
    m = MarkovModel(order=1, validation_split=0.0).fit(seqs("a b", "a b", "a c"))
    a, b, c = (m.vocab_.stoi[t] for t in "abc")
    u = 1 / 5  # uniform floor over <unk>, <eos>, a, b, c
    # unigram: a 3, b 2, c 1, eos 3 (9 events, 4 distinct): Witten-Bell with the floor
    p0 = {a: (3 + 4 * u) / 13, b: (2 + 4 * u) / 13, c: (1 + 4 * u) / 13, EOS: (3 + 4 * u) / 13, UNK: 4 * u / 13}
    # after a: b twice, c once (3 events, 2 distinct)
    p_after_a = {w: ((2 if w == b else 1 if w == c else 0) + 2 * p0[w]) / 5 for w in p0}
    # after bos: a three times (1 distinct)
    p_after_bos = {w: ((3 if w == a else 0) + p0[w]) / 4 for w in p0}
    # after b: eos twice (1 distinct)
    p_after_b = {w: ((2 if w == EOS else 0) + p0[w]) / 3 for w in p0}
    p = np.exp(lp_of(m, "a b"))
    assert p.shape == (3, len(m.vocab_))
    for row, expected in zip(p, (p_after_bos, p_after_a, p_after_b)):
        for w, v in expected.items():
            assert row[w] == pytest.approx(v, rel=1e-6)
        assert row[PAD] == 0 and row[BOS] == 0
        assert row.sum() == pytest.approx(1.0, abs=1e-6)
    # a history never seen (<unk>) backs off to the unigram entirely
    p = np.exp(lp_of(m, "z a"))
    assert p[1, a] == pytest.approx(p0[a], rel=1e-6)


def test_markov_higher_order_backs_off_and_streams_agree():
    train = seqs("a b c d", "a b b c d", "a c b d", "b b c", "a b c d")
    m = MarkovModel(order=3, validation_split=0.0).fit(train)
    lp = lp_of(m, "a b c d a a b", complete=False)
    assert np.allclose(np.exp(lp).sum(1), 1, atol=1e-5)
    assert np.isfinite(lp[:, [UNK, EOS] + list(range(4, len(m.vocab_)))]).all()  # every event possible
    # the stream read in pieces gives the same rows as the whole sequence
    ids = m.vocab_.encode("a b c d a a b".split())
    state, parts = m.stream_start(), []
    for piece in (ids[:2], ids[2:3], ids[3:]):
        out, state = m.stream_step(piece, state)
        parts.append(out)
    assert np.allclose(np.concatenate(parts), lp, atol=1e-6)
    # a frequent trigram context predicts its own continuation best
    p = np.exp(lp_of(m, "a b c"))
    assert p[3].argmax() == m.vocab_.stoi["d"]


def test_markov_distributions_in_blocks_equal_one_pass(monkeypatch):
    import seqrnn.models.markov as markov

    m = MarkovModel(order=2, validation_split=0.0).fit(seqs("a b c d", "a c b d", "b b c", "d a"))
    test = m.encode(seqs("a b c d a b", "d d a b c"))
    whole = m.log_proba(*test)
    monkeypatch.setattr(markov, "DENSE_LIMIT", len(m.vocab_) * 2)  # two histories per block
    for x, y in zip(whole, m.log_proba(*test)):
        assert np.array_equal(x, y)


# --- Naive Bayes ------------------------------------------------------------------------------
def direct_naive_bayes(train_ids, test_ids, V, window, alpha):
    """The formula, position by position, with dictionaries."""
    support = [i for i in range(V) if i not in (PAD, BOS)]
    prior, cond = Counter(), Counter()
    for s in train_ids:
        padded = [BOS] * window + list(s)
        for t, y in enumerate(list(s) + [EOS]):
            prior[y] += 1
            for o in range(window):
                cond[(o, padded[t + o], y)] += 1
    n = sum(prior.values())
    padded = [BOS] * window + list(test_ids)
    rows = []
    for t in range(len(test_ids) + 1):
        joint = {}
        for y in support:
            v = math.log((prior[y] + alpha) / (n + alpha * len(support)))
            for o in range(window):
                v += math.log((cond[(o, padded[t + o], y)] + alpha) / (prior[y] + alpha * V))
            joint[y] = v
        z = math.log(sum(math.exp(v) for v in joint.values()))
        rows.append({y: v - z for y, v in joint.items()})
    return rows


def test_naive_bayes_equals_direct_formula_on_random_data():
    rng = np.random.default_rng(3)
    alphabet = list("abcdef")
    train = [Sequence(f"s{i}", list(rng.choice(alphabet, rng.integers(1, 9)))) for i in range(40)]
    m = NaiveBayesModel(window=3, alpha=0.5, validation_split=0.0).fit(train)
    V = len(m.vocab_)
    train_ids = [m.vocab_.encode(s.tokens) for s in train]
    for _ in range(5):
        test = list(rng.choice(alphabet + ["zz"], rng.integers(0, 7)))
        ids = m.vocab_.encode(test)
        got = m.log_proba([ids], [True])[0]
        want = direct_naive_bayes(train_ids, ids, V, 3, 0.5)
        for row, expected in zip(got, want):
            for y, v in expected.items():
                assert row[y] == pytest.approx(v, abs=1e-4)
            assert row[PAD] == -np.inf and row[BOS] == -np.inf


# --- HMM -----------------------------------------------------------------------------------------
def tiny_hmm():
    m = HMMModel(states=2)
    m.vocab_ = Vocabulary(["a", "b"])  # ids 4, 5; V = 6
    emit = np.zeros((2, 6))
    emit[0, [4, 5, EOS]] = [0.7, 0.2, 0.1]
    emit[1, [4, 5, EOS]] = [0.1, 0.5, 0.4]
    m.set_matrices([0.6, 0.4], [[0.8, 0.2], [0.3, 0.7]], emit)
    return m


def brute_force_predictive(m, ids):
    """P(x_t | x_<t) = P(x_<=t) / P(x_<t), each summed over every path of hidden states."""
    pi, A, B = m.startprob_, m.transmat_, m.emissionprob_

    def joint(xs):
        total = 0.0
        for path in itertools.product(range(len(pi)), repeat=len(xs)):
            p = pi[path[0]] * B[path[0], xs[0]]
            for t in range(1, len(xs)):
                p *= A[path[t - 1], path[t]] * B[path[t], xs[t]]
            total += p
        return total

    rows = []
    for t in range(len(ids)):
        prev = joint(ids[:t]) if t else 1.0
        rows.append([joint(list(ids[:t]) + [v]) / prev for v in range(B.shape[1])])
    return np.array(rows)


def test_hmm_predictive_matches_brute_force_forward():
    m = tiny_hmm()
    assert m.emissionprob_[0, 4] == pytest.approx(0.7 * (1 - FLOOR) + FLOOR / 4)
    ids = m.vocab_.encode("a b b a".split())
    lp = m.log_proba([ids], [True])[0]
    p = np.exp(lp)
    assert np.allclose(p.sum(1), 1, atol=1e-6)
    assert np.allclose(p, brute_force_predictive(m, list(ids) + [EOS]), atol=1e-6)
    # the per-event scores sum to the sequence log-likelihood; streams agree
    state = m.stream_start()
    a, state = m.stream_step(ids[:1], state)
    b, _ = m.stream_step(ids[1:], state)
    assert np.allclose(np.concatenate((a, b)), lp[:4], atol=1e-6)


def test_hmm_fits_toy_sessions(toy_sessions):
    m = HMMModel(states=5, iterations=30).fit(str(toy_sessions))  # fewer states: EM may stop in a poor optimum
    p = np.exp(lp_of(m, "a b b c d"))
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert p[0, m.vocab_.stoi["a"]] > 0.9  # every toy session starts with a
    detector = Detector(m).fit(str(toy_sessions))
    assert detector.predict(seqs("a b c d"))[0] == False  # noqa: E712
    assert detector.predict(seqs("d c b a"))[0] == True  # noqa: E712


# --- sequence-level detectors -----------------------------------------------------------------------
NORMAL = ["a b c", "a b b c", "a c", "a b c", "a b b c", "a c", "a b c"]


@pytest.mark.parametrize("idf", [False, True])
def test_count_vector_flags_unseen_counts_and_passes_seen_ones(idf):
    detector = Detector(CountModel(idf=idf, validation_split=0.0)).fit(seqs(*NORMAL))
    cal = detector.calibration
    assert cal["nll_threshold"] is None and cal["count"] is None and set(cal["views"]) == {"count"}  # its own view only
    d = detector.decide(seqs("a b b c", "c b b a", "a b b b b c", "a b"))
    assert d.anomalous.tolist() == [False, False, True, True]  # order is not its business; counts are
    f = d.findings[2]
    assert f.reason.startswith("unusual event counts: b x4 (normal x2)")
    assert f.views["count"]["fired"] and d.findings[0].views["count"]["value"] == 0
    assert d.scores[2] > d.scores[3] > 1 > d.scores[0]


def test_unseen_and_length_and_combined():
    unseen = Detector(UnseenModel(validation_split=0.0)).fit(seqs(*NORMAL))
    assert unseen.decide(seqs("a b c", "a b b b b b c", "a z c")).anomalous.tolist() == [False, False, True]
    length = Detector(LengthModel(validation_split=0.0)).fit(seqs(*NORMAL))
    d = length.decide(seqs("c c c", "a b b b b b c"))
    assert d.anomalous.tolist() == [False, True]
    assert d.findings[1].reason == "unusual length: 7 events (nearest normal 4)"
    both = Detector(CombinedModel(validation_split=0.0)).fit(seqs(*NORMAL))
    assert both.predict(seqs("a b c", "a a b c", "a b b b b b c", "a z c")).tolist() == [False, True, True, True]


def test_sequence_level_unigram_is_for_evaluate_not_for_deciding():
    m = CountModel(validation_split=0.0).fit(seqs(*NORMAL))
    p = np.exp(lp_of(m, "a b"))
    assert np.allclose(p[0], p[2]) and p[0].sum() == pytest.approx(1, abs=1e-6)
    # b: 7 of 28 target events (7 <eos> included), add-one over 5 predictable ids
    assert p[0, m.vocab_.stoi["b"]] == pytest.approx(8 / 33, rel=1e-5)
    # the rarest event in the unigram does not make a session anomalous
    assert not Detector(m).fit(seqs(*NORMAL)).predict(seqs("a c"))[0]


# --- every kind: save and load, the CLI ----------------------------------------------------------------
KINDS = [MarkovModel(order=2), NaiveBayesModel(window=4), HMMModel(states=2, iterations=5), UnseenModel(),
         LengthModel(), CountModel(idf=True), CombinedModel()]


@pytest.mark.parametrize("model", KINDS, ids=lambda m: m.kind)
def test_save_load_round_trip(model, toy_sessions, tmp_path):
    model.fit(str(toy_sessions))
    Detector(model).fit(str(toy_sessions)).save(model.save(str(tmp_path / "m")))
    again = load(str(tmp_path / "m"))
    assert type(again) is type(model) and again._settings() == model._settings()
    test = seqs("a b c d", "a b b b b b c e d", "a x c d", "d c b a")
    for x, y in zip(model.log_proba(*model.encode(test)), again.log_proba(*again.encode(test))):
        assert np.array_equal(x, y)
    before, after = Detector.load(str(tmp_path / "m"), model), Detector.load(str(tmp_path / "m"))
    assert after.model is not model and after.calibration == before.calibration
    assert np.array_equal(before.decision_function(test), after.decision_function(test))


def test_train_baseline_from_the_cli(toy_sessions, tmp_path, capsys):
    from seqrnn.cli import main

    out = str(tmp_path / "mk")
    assert main(["train", str(toy_sessions), "--model", "markov", "--order", "2", "-m", out, "-q"]) == 0
    assert load(out).order == 2
    assert main(["info", out]) == 0
    assert "markov: order 2" in capsys.readouterr().out
    assert main(["detect", out, str(toy_sessions), "-o", str(tmp_path / "d.jsonl")]) == 0
    assert main(["train", str(toy_sessions), "--model", "nb", "--hidden", "8", "-m", out]) == 2
    assert "--hidden does not apply to --model nb" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs", [dict(order=-1), dict(order=1.5)])
def test_bad_settings_are_input_errors(kwargs):
    from seqrnn.errors import InputError

    with pytest.raises(InputError):
        MarkovModel(**kwargs)
    with pytest.raises(InputError):
        NaiveBayesModel(alpha=0)


def test_loading_a_baseline_does_not_import_torch(toy_sessions, tmp_path):
    import subprocess
    import sys

    model = MarkovModel(order=2).fit(toy_sessions)
    Detector(model).fit(toy_sessions).save(model.save(str(tmp_path / "m")))
    code = ("import sys, seqrnn; d = seqrnn.Detector.load(sys.argv[1]); "
            "print(type(d.model).__name__, len(d.predict(['a b c'.split()])), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["MarkovModel", "1", "False"]
