"""Detection: per-event scores, the decision rule, metrics, reports and ``detect --follow``.

The first part uses a hand-made first-order model whose next-event table is
written out below, so that every probability, rank and decision can be
checked against a number computed by hand. The rest uses tiny recurrent
models (8 units, one epoch, one thread) where only the structure of the
answer is known.
"""

from __future__ import annotations

import csv
import json
import math
import os
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest

import seqrnn
from seqrnn.data.formats import Sequence, as_sequences
from seqrnn.data.vocab import BOS, EOS, PAD, UNK, Vocabulary
from seqrnn.data.formats import split_validation
from seqrnn.detect import Detector
from seqrnn.metrics import detection_metrics, pr_auc, roc_auc
from seqrnn.models.base import SequenceModel
from seqrnn.score import score_sequences

# ----------------------------------------------------------------------------------------------
# A first-order model with a known table
# ----------------------------------------------------------------------------------------------
# Vocabulary(['a', 'b', 'c']): <pad>=0 <unk>=1 <bos>=2 <eos>=3 a=4 b=5 c=6
A, B, C = 4, 5, 6
#        pad   unk   bos   eos    a     b     c        (next event)
TABLE = {
    PAD: [1 / 7] * 7,  # never a previous event
    UNK: [.01, .01, .01, .25, .24, .24, .24],
    BOS: [.01, .01, .01, .02, .60, .25, .10],
    EOS: [1 / 7] * 7,  # never a previous event
    A: [.01, .30, .01, .07, .12, .40, .09],  # <unk> is likely here, but it is never a prediction
    B: [.01, .01, .01, .50, .05, .02, .40],
    C: [.01, .01, .01, .001, .20, .10, .669],  # a session hardly ever ends after c
}
P = np.array([TABLE[i] for i in range(7)], dtype=np.float64)
LOGP = np.log(P)
NLL_THRESHOLD = -math.log(0.01)


class TableModel(SequenceModel):
    """p(next | previous) read from :data:`P`; the previous event of the first one is <bos>."""

    kind = "table-test"

    def __init__(self):
        self.vocab_ = Vocabulary(["a", "b", "c"])
        self.format_, self.text_tokens_ = "sessions", "chars"

    def log_proba(self, ids_list, complete):
        out = []
        for ids, c in zip(ids_list, complete):
            prev = np.concatenate(([BOS], ids)) if c else np.concatenate(([BOS], ids[:-1]))[: len(ids)]
            out.append(LOGP[prev.astype(np.int64)])
        return out

    def stream_start(self):
        return BOS

    def stream_step(self, ids, state):
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, 7)), state
        prev = np.concatenate(([state], ids[:-1]))
        return LOGP[prev], int(ids[-1])


def session(tokens, sid="s"):
    return Sequence(sid, list(tokens), "<test>", 1, complete=True)


@pytest.fixture(scope="module")
def table():
    return TableModel()


@pytest.fixture(scope="module")
def table_detector(table):
    """The table's detector with a fixed probability threshold of 0.01 (the surprise view's rule, outside the
    budget), calibrated on one held-out session (no count view: one training session)."""
    held_out = [session(["a", "b", "c", "b"])]
    return Detector(table, threshold=0.01).fit(held_out, validation_data=held_out)


def test_table_scores_are_the_table(table):
    sc = table.score_events([["a", "b", "c", "b"]], topk=2)[0]
    # targets a b c b <eos>, each given the one before it (<bos> first)
    assert sc.ids.tolist() == [A, B, C, B, EOS]
    expected_p = [P[BOS, A], P[A, B], P[B, C], P[C, B], P[B, EOS]]
    np.testing.assert_allclose(sc.prob, [.60, .40, .40, .10, .50], rtol=1e-12)
    np.testing.assert_allclose(sc.prob, expected_p, rtol=1e-12)
    np.testing.assert_allclose(sc.nll, -np.log(expected_p), rtol=1e-12)
    assert sc.rank.tolist() == [1, 1, 2, 3, 1]
    assert sc.topk.tolist() == [[A, B], [B, A], [EOS, C], [C, A], [EOS, C]]
    np.testing.assert_allclose(sc.topk_prob, [[.60, .25], [.40, .12], [.50, .40], [.669, .20], [.50, .40]],
                               rtol=1e-12)
    assert not sc.unknown.any()
    assert len(sc) == 5


def test_reserved_ids_never_ranked_or_expected(table):
    # After 'a' the table gives <unk> 0.30, more than a (0.12), c (0.09), <eos> (0.07):
    # it must not push them down a rank, nor appear among the expected events.
    sc = score_sequences(table, [session(["a", "a"]), session(["a", "c"]), session(["a"])], topk=10)
    assert sc[0].rank[1] == 2  # a after a: only b (0.40) is ahead
    assert sc[1].rank[1] == 3  # c after a: b, a ahead
    assert sc[2].rank[1] == 4  # <eos> after a: b, a, c ahead
    # only the four predictable events (a b c <eos>) can be expected: k is capped at 4
    assert sc[0].topk.shape == (3, 4)
    for s in sc:
        assert not np.isin(s.topk, [PAD, UNK, BOS]).any()
    assert sc[0].topk[1].tolist() == [B, A, C, EOS]


def test_incomplete_sequence_has_no_end_row(table):
    seq = Sequence("x", ["a", "b", "c"], "<test>", 1, complete=False)
    sc = score_sequences(table, [seq])[0]
    assert sc.ids.tolist() == [A, B, C]
    np.testing.assert_allclose(sc.prob, [.60, .40, .40])


def test_identical_sequences_scored_once_but_keep_their_own_identity(table):
    calls = []
    orig = table.log_proba

    def counting(ids_list, complete):
        calls.append(len(ids_list))
        return orig(ids_list, complete)

    table.log_proba = counting
    try:
        seqs = [session(["a", "b"], "x"), session(["a", "b"], "y"), session(["b"], "z")]
        sc = score_sequences(table, seqs)
    finally:
        del table.log_proba
    assert calls == [2]
    assert [s.sequence.id for s in sc] == ["x", "y", "z"]
    np.testing.assert_array_equal(sc[0].prob, sc[1].prob)


def test_calibrated_threshold_decisions(table_detector):
    det = table_detector
    assert det.nll_cut == pytest.approx(NLL_THRESHOLD)
    # one calibration session: judged event by event, on its five events
    assert det.unit_ == "event"
    assert det.calibration_.values["surprise"].tolist() == pytest.approx(-np.log([.6, .4, .4, .1, .5]))
    assert det.count_threshold_ is None
    d = det.decide([session(["a", "b", "c", "b"], "ok")])
    f = d.findings[0]
    assert not f.anomalous
    assert f.position is None and f.reason == ""
    assert f.views["surprise"]["value"] == pytest.approx(-math.log(.10))
    assert f.score == pytest.approx(-math.log(.10) / NLL_THRESHOLD)  # 0.5
    assert f.score == pytest.approx(0.5)
    assert d.scores.tolist() == pytest.approx([0.5])
    assert d.anomalous.tolist() == [False]
    # same through the scikit-learn style methods
    assert det.decision_function([["a", "b", "c", "b"]]).tolist() == pytest.approx([0.5])
    assert det.predict([["a", "b", "c", "b"]]).tolist() == [False]


def test_explicit_probability_threshold(table_detector):
    f = table_detector.with_options(threshold=0.2).decide([session(["a", "b", "c", "b"])]).findings[0]
    # probabilities .6 .4 .4 .1 .5: only the fourth event (b after c, p=0.1) is below 0.2
    assert f.anomalous
    assert f.event_anomalous.tolist() == [False, False, False, True, False]
    assert f.position == 3
    assert f.reason.startswith("unlikely event")
    assert "p=0.1" in f.reason
    assert f.score == pytest.approx(-math.log(.1) / -math.log(.2))


def test_unlikely_reason_tells_the_probability_from_the_cut(table_detector):
    """A probability just below the cut read 'unlikely event: p=0.0027 < 0.0027' (seqrnn watch on OpenStack):
    both to two digits. Now as many digits as tell them apart."""
    f = table_detector.with_options(threshold=0.101).decide([session(["a", "b", "c", "b"])]).findings[0]
    assert f.anomalous and f.position == 3 and f.reason == "unlikely event: p=0.1 < 0.101"
    f = table_detector.with_options(threshold=0.2).decide([session(["a", "b", "c", "b"])]).findings[0]
    assert f.reason == "unlikely event: p=0.1 < 0.2"  # two digits where they do


def test_unseen_event_flagged_at_its_position(table_detector):
    f = table_detector.decide([session(["a", "x", "b"])]).findings[0]
    sc = f.scores
    assert sc.ids.tolist() == [A, UNK, B, EOS]
    assert sc.unknown.tolist() == [False, True, False, False]
    assert sc.rank[1] == 7  # an unseen event ranks below every known one (V = 7)
    assert f.anomalous
    assert f.position == 1
    assert "unseen" in f.reason
    assert f.event_anomalous.tolist() == [False, True, False, False]
    assert f.view == "unseen" and f.score > 1
    # the surprise view ignores the unseen event itself: max over a, b, <eos>
    assert f.views["surprise"]["value"] == pytest.approx(-math.log(.24))


def test_a_stream_is_explained_by_its_unseen_event_as_a_session_is(table_detector):
    """A stream (no grouping: an OpenStack log parsed into one stream) with an injected error message
    and rarer known events before it: detect's summary said 'by reason: unlikely event 1' at the first
    rare event and never named the unseen message; the README's rule (an unseen event first) held only
    for sessions."""
    stream = Sequence("stream", ["a", "b", "c", "b", "x", "a"], "<test>", 1, complete=False)
    f = table_detector.with_options(threshold=0.2).decide([stream]).findings[0]
    assert f.anomalous and f.event_anomalous.tolist() == [False, False, False, True, True, False]
    assert (f.view, f.position) == ("unseen", 4) and "unseen" in f.reason
    # without an unseen event, the first unlikely one explains, as before
    f = table_detector.with_options(threshold=0.2).decide([Sequence("stream", ["a", "b", "c", "b"], "<test>", 1,
                                                                    complete=False)]).findings[0]
    assert (f.view, f.position) == ("surprise", 3) and f.reason.startswith("unlikely event")


def test_truncated_session_ended_early(table, table_detector):
    seq = session(["a", "b", "c"])
    f = table_detector.decide([seq]).findings[0]
    assert f.anomalous
    assert f.position == len(seq) == 3
    assert f.scores.ids[f.position] == EOS
    assert "ended early" in f.reason
    assert f.scores.prob[3] == pytest.approx(0.001)
    assert f.score == pytest.approx(-math.log(0.001) / NLL_THRESHOLD)  # 1.5
    # the JSON report points at the end
    from seqrnn.report import finding_dict

    d = finding_dict(table, f, k=5)
    assert d["event"] == "<end>"
    assert d["position"] == 3
    assert d["expected"] == ["c", "a", "b", "<end>"]
    assert d["probability"] == pytest.approx(0.001)


@pytest.mark.parametrize("g, anomalous, position", [(1, True, 2), (2, True, 3), (3, False, None), (4, False, None)])
def test_top_g_rule(table_detector, g, anomalous, position):
    # ranks of a b c b <eos> are 1 1 2 3 1
    f = table_detector.with_options(top_g=g).decide([session(["a", "b", "c", "b"])]).findings[0]
    assert f.event_anomalous.tolist() == [r > g for r in [1, 1, 2, 3, 1]]
    assert f.anomalous is anomalous
    assert f.position == position
    if anomalous:
        assert f.reason == f"unexpected event: rank {[1, 1, 2, 3, 1][position]}, not in the top {g}"
    assert f.score == pytest.approx(3 / (g + 0.5))


def test_one_fixed_rule_at_a_time(table_detector):
    """top_g and threshold each replace the surprise cut: with_options swaps one for the other; both at once
    are refused (top-g decided alone while the finding showed the threshold's cut)."""
    from seqrnn.errors import InputError

    top = table_detector.with_options(top_g=2)
    assert (top.top_g, top.threshold) == (2, None)
    back = top.with_options(threshold=0.2)
    assert (back.top_g, back.threshold) == (None, 0.2)
    assert top.with_options(use_counts=False).top_g == 2  # other options keep the rule
    with pytest.raises(InputError, match="top_g and threshold"):
        table_detector.with_options(top_g=2, threshold=0.2)
    with pytest.raises(InputError, match="top_g and threshold"):
        Detector(table_detector.model, top_g=2, threshold=0.2)


def test_table_stream_steps_match_log_proba(table):
    ids = table.vocab_.encode(list("abcbbacx"))
    whole = table.log_proba([ids], [False])[0]
    state = table.stream_start()
    parts = []
    for start in range(0, len(ids), 3):
        lp, state = table.stream_step(ids[start:start + 3], state)
        parts.append(lp)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


# ----------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------
def test_roc_auc_hand_values():
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 1], [0.2, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    # 3 of the 4 (positive, negative) pairs are ordered right
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # pairs: (0.5 > 0.1) 1, (0.5 = 0.5) 1/2, (0.9 > both) 2  ->  3.5 / 4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2]))


def test_pr_auc_hand_values():
    # descending: 0.8(+) 0.4(-) 0.35(+) 0.1(-): precision at the hits 1 and 2/3, recall steps 1/2 each
    assert pr_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert pr_auc([0, 1, 1], [0.1, 0.7, 0.9]) == pytest.approx(1.0)
    # a tie is one threshold: {0.5: +,-} gives precision 1/2 at recall 1/2, then 2/3 at recall 1
    assert pr_auc([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # all scores tied: precision = prevalence
    assert pr_auc([1, 0, 0, 0], [1, 1, 1, 1]) == pytest.approx(0.25)
    assert math.isnan(pr_auc([0, 0], [0.1, 0.2]))


def test_detection_metrics_hand_values():
    y = [0, 0, 0, 1, 1, 1, 0, 1]
    p = [0, 1, 0, 1, 1, 0, 0, 1]
    s = [0.1, 0.7, 0.2, 0.9, 0.8, 0.3, 0.15, 0.95]
    m = detection_metrics(y, p, s, prevalence=0.03)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 1, 3)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75)
    assert m["fpr"] == pytest.approx(0.25)
    # negatives 0.1 0.7 0.2 0.15, positives 0.9 0.8 0.3 0.95: only 0.3 < 0.7 is a wrong pair
    assert m["roc_auc"] == pytest.approx(15 / 16)
    # by hand at 3% anomalies: precision = r*q / (r*q + fpr*(1-q))
    r, fpr, q = 0.75, 0.25, 0.03
    prec = r * q / (r * q + fpr * (1 - q))
    assert m["prevalence"] == 0.03
    assert m["precision_at_prevalence"] == pytest.approx(prec)
    assert m["f1_at_prevalence"] == pytest.approx(2 * prec * r / (prec + r))
    assert m["f1_at_prevalence"] == pytest.approx(0.15254, abs=1e-5)  # 0.0225/0.265 = 0.0849; 2pr/(p+r)


def test_detection_metrics_degenerate():
    m = detection_metrics([0, 1], [False, False], [0.0, 0.0])
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (0, 0, 1, 1)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0 and m["fpr"] == 0.0
    assert "f1_at_prevalence" not in m


# ----------------------------------------------------------------------------------------------
# Tiny recurrent models
# ----------------------------------------------------------------------------------------------
TINY = dict(hidden=8, embedding_dim=4, layers=1, epochs=1, threads=1, seed=0)


def interleavings():
    """Every arrangement of 'a' x3 and 'b' x3 (20 of them)."""
    from itertools import combinations

    out = []
    for pos in combinations(range(6), 3):
        out.append(["a" if i in pos else "b" for i in range(6)])
    return out


@pytest.fixture(scope="module")
def count_model():
    from seqrnn.models.rnn import RNNModel

    seqs = [Sequence(f"t{i}", toks, "<train>", i + 1) for i, toks in enumerate(interleavings() * 2)]
    model = RNNModel(**TINY).fit(seqs, format="sessions")
    return model


def count_training():
    return [Sequence(f"t{i}", t, "<train>", i + 1) for i, t in enumerate(interleavings() * 2)]


@pytest.fixture(scope="module")
def count_detector(count_model):
    return Detector(count_model).fit(count_training())


@pytest.fixture(scope="module")
def count_model_dir(count_model, count_detector, tmp_path_factory):
    return count_detector.save(count_model.save(str(tmp_path_factory.mktemp("count_model"))))


def test_calibration_of_count_profiles(count_detector):
    cal = count_detector.calibration
    assert cal["count"] is not None
    # every training session has the same counts: one profile, and a leave-one-out distance of 0
    assert cal["count"]["profiles"] == 1
    assert cal["count"]["threshold"] == 0.0  # every leave-one-out distance is 0: any other count fires
    vocab = count_detector.model.vocab_
    assert count_detector.count_profiles_.shape == (1, len(vocab))
    prof = dict(zip(vocab.itos, count_detector.count_profiles_[0].tolist()))
    assert prof["a"] == 3 and prof["b"] == 3 and prof["<eos>"] == 0
    assert cal["calibration_sequences"] == 40 and cal["nll_threshold"] == cal["cuts"]["surprise"]
    # with sessions the model held out, those are the calibration sequences
    train, held_out = split_validation(count_training(), 0.1, 0)
    assert Detector(count_detector.model).fit(train, validation_data=held_out).calibration["calibration_sequences"] \
        == len(held_out) == 4



def test_count_view_flags_unseen_counts(count_detector):
    seqs = as_sequences([["a"] * 5 + ["b"] * 3, ["b", "a", "b", "a", "b", "a"], ["a", "a", "a", "b", "b"]])
    d = count_detector.decide(seqs)
    surplus, same, missing = d.findings
    assert surplus.anomalous
    assert surplus.reason.startswith("unusual event counts")
    assert "a x5 (normal x3)" in surplus.reason
    assert surplus.count_deviations[0] == {"event": "a", "count": 5, "normal": 3}
    assert [c["event"] for c in surplus.count_deviations] == ["a"]
    assert surplus.position == 3  # the first 'a' beyond the normal three
    # log(1 + c) compared; every training session holds a and b: idf weight 1 + log(41 / 41) = 1
    assert surplus.views["count"]["value"] == pytest.approx(math.log(6 / 4), rel=1e-6)
    assert count_detector.calibration["count"]["transform"] == "log"
    assert surplus.views["count"]["fired"]

    assert same.views["count"]["value"] == 0
    assert not same.views["count"]["fired"]
    assert same.count_deviations == []
    assert not same.anomalous or not same.reason.startswith("unusual event counts")

    assert missing.anomalous
    assert missing.count_deviations == [{"event": "b", "count": 2, "normal": 3}]
    assert missing.position == len(seqs[2])  # a missing event is pointed at the end

    # without the count view nothing about counts is said
    d2 = count_detector.with_options(use_counts=False).decide(seqs)
    assert all("count" not in f.views for f in d2.findings)


def test_save_load_keeps_calibration_and_profiles(count_detector, count_model_dir):
    loaded = Detector.load(count_model_dir)
    assert loaded.calibration == count_detector.calibration
    np.testing.assert_array_equal(loaded.count_profiles_, count_detector.count_profiles_)
    np.testing.assert_array_equal(loaded.count_weights_, count_detector.count_weights_)
    seqs = as_sequences([["a"] * 5 + ["b"] * 3, ["b", "a", "b", "a", "b", "a"], ["a", "x", "b"], ["a", "b"]])
    before, after = count_detector.decide(seqs), loaded.decide(seqs)
    np.testing.assert_array_equal(before.scores, after.scores)
    np.testing.assert_array_equal(before.anomalous, after.anomalous)
    assert [f.reason for f in before.findings] == [f.reason for f in after.findings]


def test_count_distances_on_a_log_scale_with_idf_weights():
    """log(1 + c): one more of an event seen 30 times is nearer than one of an event never seen; idf weighs an
    event few sessions hold above one every session holds; the explanation lists the farther event first."""
    from types import SimpleNamespace

    from seqrnn.profiles import deviations, idf_weights, nearest_to

    train = np.array([[30, 0, 2], [30, 0, 2], [30, 1, 2], [29, 0, 2]], np.float32)  # event 1 in one of four
    w = idf_weights(train)
    assert w[0] == pytest.approx(1.0) and w[2] == pytest.approx(1.0)
    assert w[1] == pytest.approx(1.0 + math.log(5 / 2))
    ref = np.array([[30, 0, 2]], np.float32)
    more_common, new_rare = np.array([[31, 0, 2]], np.float32), np.array([[30, 1, 2]], np.float32)
    d_common = nearest_to(more_common, ref, w, "log")[0][0]
    d_rare = nearest_to(new_rare, ref, w, "log")[0][0]
    assert d_common == pytest.approx(math.log(32 / 31), rel=1e-5)
    assert d_rare == pytest.approx((1.0 + math.log(5 / 2)) * math.log(2), rel=1e-5)
    assert nearest_to(more_common, ref, w, "raw")[0][0] == pytest.approx(1.0)  # raw: one more is one more
    vocab = SimpleNamespace(itos=["a", "b", "c"])
    both = np.array([31, 1, 2], np.float32)
    assert [d["event"] for d in deviations(both, ref[0], np.ones(3, np.float32), vocab, "log")] == ["b", "a"]
    assert [d["event"] for d in deviations(both, ref[0], np.ones(3, np.float32), vocab, "raw")] == ["a", "b"]


def test_count_transform_of_saved_files(count_detector, count_model_dir, tmp_path):
    """A detector file of format 2 (before log counts: no count.transform) compares raw counts with its own
    weights; from format 3 the transform is required (a file without it would be read on another scale than
    its cut's), and one the code does not know is refused with a message that names it."""
    import json
    import shutil

    from seqrnn.errors import ModelFileError

    folder = tmp_path / "m"
    shutil.copytree(count_model_dir, folder)
    (folder / "status.json").unlink()  # the files as edited, not checked against their hashes
    path = folder / "detector.json"
    saved = json.loads(path.read_text())
    assert saved["format_version"] == 3 and saved["count"]["transform"] == "log"
    old = {**saved, "format_version": 2, "count": {k: v for k, v in saved["count"].items() if k != "transform"}}
    path.write_text(json.dumps(old))
    raw = Detector.load(str(folder))
    assert raw.calibration["count"]["transform"] == "raw"
    assert "(L1 on raw counts)" in raw.describe()  # what seqrnn info prints: the scale its cut is on
    assert "(idf-weighted L1 on log(1 + count))" in count_detector.describe()
    seqs = as_sequences([["a"] * 5 + ["b"] * 3])
    assert raw.decide(seqs).findings[0].views["count"]["value"] == pytest.approx(2.0)  # |5 - 3| x weight 1
    assert count_detector.decide(seqs).findings[0].views["count"]["value"] == pytest.approx(math.log(6 / 4),
                                                                                              rel=1e-6)
    path.write_text(json.dumps({**old, "count": {**old["count"], "transform": "log"}}))
    with pytest.raises(ModelFileError, match="count.transform 'log' in a detector file of format version 2"):
        Detector.load(str(folder))
    path.write_text(json.dumps({**saved, "count": {k: v for k, v in saved["count"].items() if k != "transform"}}))
    with pytest.raises(ModelFileError, match="count.transform is missing"):
        Detector.load(str(folder))
    for bad in ("cube", 2, "sqrt", "LOG", ["log"]):
        path.write_text(json.dumps({**saved, "count": {**saved["count"], "transform": bad}}))
        with pytest.raises(ModelFileError, match="count.transform must be one of raw, log"):
            Detector.load(str(folder))
    path.write_text(json.dumps({**saved, "format_version": 1}))
    with pytest.raises(ModelFileError, match="earlier seqrnn"):
        Detector.load(str(folder))


def stream_tokens(n=400, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        out += ["x", "y", "z"] if rng.random() < 0.8 else ["x", "z"]
    return out[:n]


@pytest.fixture(scope="module")
def stream_model():
    from seqrnn.models.rnn import RNNModel

    return RNNModel(chunk=20, **TINY).fit([stream_tokens()], format="stream")


@pytest.fixture(scope="module")
def stream_model_dir(stream_model, tmp_path_factory):
    folder = stream_model.save(str(tmp_path_factory.mktemp("stream_model")))
    return Detector(stream_model).fit([stream_tokens()], format="stream").save(folder)


def test_stream_model_calibration_has_no_count_view(stream_model):
    assert stream_model.format_ == "stream"
    detector = Detector(stream_model).fit([stream_tokens()], format="stream")
    assert detector.calibration["count"] is None and detector.count_profiles_ is None
    assert detector.unit_ == "event"
    assert detector.calibration_.n == 40  # the events of the last tenth of the stream


def test_stream_scoring_in_chunks_equals_one_piece(stream_model):
    toks = stream_tokens(23, seed=7)
    toks[11] = "never-seen"
    ids = stream_model.vocab_.encode(toks)
    assert (ids == UNK).sum() == 1
    whole = stream_model.log_proba([ids], [False])[0]
    assert whole.shape == (23, len(stream_model.vocab_))
    state = stream_model.stream_start()
    parts = []
    for start in range(0, len(ids), 5):
        lp, state = stream_model.stream_step(ids[start:start + 5], state)
        parts.append(lp)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_long_sequence_path_equals_batched_path(stream_model, monkeypatch):
    # log_proba reads sequences longer than STREAM_CHUNK piece by piece, ending with stream_end.
    import seqrnn.models.rnn as rnn

    ids = stream_model.vocab_.encode(stream_tokens(20, seed=3))
    short = stream_model.log_proba([ids, ids], [True, False])
    monkeypatch.setattr(rnn, "STREAM_CHUNK", 6)
    long = stream_model.log_proba([ids, ids], [True, False])
    assert short[0].shape == (21, len(stream_model.vocab_)) and short[1].shape == (20, len(stream_model.vocab_))
    np.testing.assert_allclose(long[0], short[0], atol=1e-5)
    np.testing.assert_allclose(long[1], short[1], atol=1e-5)
    np.testing.assert_allclose(short[0][:20], short[1], atol=1e-5)


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------
SESSION_LINES = ["s1,a a a b b b", "s2,a a a a a b b b", "s3,a b a b a b", "s4,a x b a b a b", "s5,b b b a a a"]


@pytest.fixture
def session_files(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(SESSION_LINES) + "\n", encoding="utf-8")
    tpl = tmp_path / "templates.csv"
    tpl.write_text("EventId,EventTemplate\na,Alpha <*> happened\nb,Beta done\n", encoding="utf-8")
    normal = tmp_path / "normal.txt"
    normal.write_text("n1,a a a b b b\nn2,a b a b a b\nn3,b b a a b a\n", encoding="utf-8")
    abnormal = tmp_path / "abnormal.txt"
    abnormal.write_text("x1,a a a a a b b b\nx2,a x b a b a b\n", encoding="utf-8")
    return inp, tpl, normal, abnormal


def test_cli_detect_outputs(count_model_dir, session_files, tmp_path, capsys):
    from seqrnn.cli import main

    inp, tpl, _, _ = session_files
    out, ev, plots = tmp_path / "out.jsonl", tmp_path / "ev.csv", tmp_path / "plots"
    rc = main(["detect", count_model_dir, str(inp), "--output", str(out), "--events", str(ev),
               "--plot", str(plots), "--templates", str(tpl)])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["s1", "s2", "s3", "s4", "s5"]
    assert [r["length"] for r in rows] == [6, 8, 6, 7, 6]
    by = {r["id"]: r for r in rows}
    assert by["s2"]["anomalous"] is True
    assert by["s2"]["reason"].startswith("unusual event counts")
    assert by["s2"]["event"] == "a" and by["s2"]["position"] == 3
    assert by["s2"]["event_template"] == "Alpha <*> happened"
    assert by["s2"]["count_deviations"][0]["event"] == "a"
    assert by["s2"]["location"] == f"{inp}:2"
    assert by["s4"]["anomalous"] is True
    assert "unseen" in by["s4"]["reason"]
    assert by["s4"]["position"] == 1 and by["s4"]["event"] == "x"
    assert by["s4"]["event_template"] is None
    for sid in ("s1", "s3", "s5"):
        assert by[sid]["views"]["count"]["value"] == 0
    assert "5 sequences" in capsys.readouterr().err

    with open(ev, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["id", "position", "location", "event", "probability", "nll", "rank", "anomalous",
                        "expected"]
    body = table[1:]
    assert len(body) == sum(len(line.split(",")[1].split()) + 1 for line in SESSION_LINES)  # n + 1 per session
    assert [r[0] for r in body] == [sid for line, sid in zip(SESSION_LINES, ["s1", "s2", "s3", "s4", "s5"])
                                    for _ in range(len(line.split(",")[1].split()) + 1)]
    s4 = [r for r in body if r[0] == "s4"]
    assert [int(r[1]) for r in s4] == list(range(8))
    assert [r[3] for i, r in enumerate(s4) if i != 1] == ["a", "b", "a", "b", "a", "b", "<end>"]
    assert s4[1][7] == "1"  # the unseen event is marked anomalous
    assert s4[1][6] == str(len(seqrnn.load(count_model_dir).vocab_))  # and ranked last
    for r in body:
        p, nll = float(r[4]), float(r[5])
        assert nll == pytest.approx(-math.log(p), rel=1e-4, abs=1e-5)
        assert r[7] in ("0", "1")
        assert int(r[6]) >= 1

    for name in ("probability.png", "nll.png", "histogram.png"):
        assert (plots / name).stat().st_size > 0


def test_cli_evaluate_detection_json(count_model_dir, session_files, capsys):
    from seqrnn.cli import main

    _, _, normal, abnormal = session_files
    rc = main(["evaluate-detection", count_model_dir, "--normal", str(normal), "--abnormal", str(abnormal),
               "--json", "--prevalence", "0.03"])
    assert rc == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "fpr", "roc_auc", "pr_auc",
                "prevalence", "precision_at_prevalence", "f1_at_prevalence"):
        assert key in m
    assert m["tp"] + m["fn"] == 2 and m["fp"] + m["tn"] == 3
    assert m["prevalence"] == 0.03
    # both anomalies (unseen event, unusual counts) are caught; normal counts score far lower
    assert m["tp"] == 2
    assert m["roc_auc"] == 1.0
    r, fpr, q = m["recall"], m["fpr"], 0.03
    prec = r * q / (r * q + fpr * (1 - q)) if r * q + fpr * (1 - q) else 0.0
    assert m["f1_at_prevalence"] == pytest.approx(2 * prec * r / (prec + r) if prec + r else 0.0)


def test_cli_evaluate_detection_decides_in_blocks_as_detect(count_model_dir, session_files, capsys, monkeypatch):
    """evaluate-detection decided every input at once (its scores and count matrix: events x vocabulary
    for all of them); it now decides in detect's blocks, the same metrics."""
    from seqrnn import progress
    from seqrnn.cli import main
    from seqrnn.detect import Detector

    _, _, normal, abnormal = session_files
    argv = ["evaluate-detection", count_model_dir, "--normal", str(normal), "--abnormal", str(abnormal), "--json"]
    assert main(argv) == 0
    whole = json.loads(capsys.readouterr().out)
    sizes = []
    decide = Detector.decide
    monkeypatch.setattr(Detector, "decide", lambda self, seqs, scores=None: sizes.append(len(seqs)) or
                        decide(self, seqs, scores))
    desc, enabled, _, floats = progress.decide.__defaults__
    monkeypatch.setattr(progress.decide, "__defaults__", (desc, enabled, 2, floats))  # blocks of 2 sequences
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == whole
    assert sizes and max(sizes) <= 2 and sum(sizes) == 5


class LineReader:
    """Read a pipe's lines on a thread so that a read can time out."""

    def __init__(self, fh):
        self.q: queue.Queue = queue.Queue()
        self.t = threading.Thread(target=self._run, args=(fh,), daemon=True)
        self.t.start()

    def _run(self, fh):
        for line in fh:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout} s")


def test_cli_follow_stream_stdin(stream_model_dir):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "seqrnn", "detect", stream_model_dir, "-", "--format", "stream",
                             "--follow"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1, env=env)
    try:
        reader = LineReader(proc.stdout)
        rows = []
        for i, token in enumerate(["x", "y", "z", "x"]):
            proc.stdin.write(token + "\n")
            proc.stdin.flush()
            line = reader.get(60 if i == 0 else 20)  # the first read also waits for start-up
            assert line is not None, proc.stderr.read()
            rows.append(json.loads(line))
            assert rows[-1]["event"] == token
            assert rows[-1]["location"] == f"<stdin>:{i + 1}"
        proc.stdin.write("never-seen-token\n")
        proc.stdin.flush()
        row = json.loads(reader.get(20))
        assert row["event"] == "never-seen-token"
        assert row["anomalous"] is True
        assert "unseen" in row["reason"]
        proc.stdin.close()
        assert reader.get(20) is None  # end of output
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _follow_in_process(model_dir, text, monkeypatch, capsys, *extra):
    import io

    from seqrnn.cli import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["detect", model_dir, "-", "--follow", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_follow_stream_matches_batch_scores(stream_model, stream_model_dir, monkeypatch, capsys):
    toks = ["x", "y", "z", "x", "z", "x", "y"]
    rows = _follow_in_process(stream_model_dir, "\n".join(toks) + "\n", monkeypatch, capsys, "--format", "stream")
    assert [r["event"] for r in rows] == toks
    sc = stream_model.score_events([Sequence("s", toks, "<stdin>", 1, complete=False)])[0]
    np.testing.assert_allclose([r["probability"] for r in rows], sc.prob, rtol=1e-4)
    assert [r["rank"] for r in rows] == sc.rank.tolist()


def test_follow_stream_expected_lists_no_reserved_tokens(stream_model_dir, monkeypatch, capsys):
    # The stream has three events; with -k 5 only those three (and <end>) can be expected,
    # as in the batch report (score.event_scores caps k at the predictable events).
    rows = _follow_in_process(stream_model_dir, "x\ny\n", monkeypatch, capsys, "--format", "stream")
    for r in rows:
        assert not {"<pad>", "<unk>", "<bos>"} & set(r["expected"]), r["expected"]


def test_follow_sessions_matches_batch_detect(count_model_dir, monkeypatch, capsys):
    from seqrnn.report import finding_dict

    rows = _follow_in_process(count_model_dir, "\n".join(SESSION_LINES) + "\n", monkeypatch, capsys)
    assert [r["id"] for r in rows] == ["s1", "s2", "s3", "s4", "s5"]
    model = seqrnn.load(count_model_dir)
    seqs = [Sequence(line.split(",")[0], line.split(",")[1].split(), "<stdin>", i + 1)
            for i, line in enumerate(SESSION_LINES)]
    batch = [finding_dict(model, f) for f in Detector.load(count_model_dir, model).decide(seqs).findings]
    assert [r["anomalous"] for r in rows] == [b["anomalous"] for b in batch]
    assert [r["score"] for r in rows] == pytest.approx([b["score"] for b in batch])


def test_events_csv_names_the_unseen_event(count_model_dir, session_files, tmp_path):
    # The JSON finding says event 'x' for s4's unseen event; the per-event table should say
    # which event it was too, not the placeholder '<unk>'.
    from seqrnn.cli import main

    inp, _, _, _ = session_files
    ev = tmp_path / "ev.csv"
    assert main(["detect", count_model_dir, str(inp), "--output", str(tmp_path / "o.jsonl"), "--events", str(ev)]) == 0
    with open(ev, newline="", encoding="utf-8") as fh:
        s4 = [r for r in csv.DictReader(fh) if r["id"] == "s4"]
    assert [r["event"] for r in s4] == ["a", "x", "b", "a", "b", "a", "b", "<end>"]


def test_empty_stream_scores_to_no_rows(stream_model):
    seq = Sequence("empty", [], "<test>", 1, complete=False)
    sc = stream_model.score_events([seq])[0]
    assert len(sc) == 0
    f = Detector(stream_model).fit([stream_tokens()], format="stream").decide([seq]).findings[0]
    assert not f.anomalous
