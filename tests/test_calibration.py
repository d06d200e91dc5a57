"""Out-of-sample calibration, one false-positive budget, p-values, feedback, the order benchmark.

Small generated data: sessions of the order benchmark (:mod:`seqrnn.datasets.order`)
judged with fast models (Markov chains, a memorising model), so every test runs in
a second or two.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from seqrnn.conformal import Calibration, places
from seqrnn.data.formats import Sequence
from seqrnn.data.vocab import with_end
from seqrnn.datasets import order
from seqrnn.detect import Detector
from seqrnn.models.base import SequenceModel, register
from seqrnn.models.markov import MarkovModel
from seqrnn.profiles import count_matrix


def sessions(token_lists, prefix="s"):
    return [Sequence(f"{prefix}{i}", list(t), "<test>", i + 1, complete=True) for i, t in enumerate(token_lists)]


# --- the conformal core ---------------------------------------------------------------------------
def test_places_and_the_promise_follow_from_n_and_alpha():
    assert places(0.003, 2791, 3) == 5  # floor(8.38) - 3 calibration sequences may lie beyond the 3 views' cuts
    assert places(0.001, 2791, 3) == 0
    assert places(0.003, 19, 1) == 0  # 19 sequences cannot back 0.003: only the largest value cuts
    cal = Calibration({"a": np.arange(19.0)}, alpha=0.003)
    assert (cal.k, cal.beyond, cal.promised_fpr) == (1, 0, pytest.approx(1 / 20))  # never below V/(n+1)
    assert cal.cut("a") == 18.0
    two = Calibration({"a": np.arange(19.0), "b": np.zeros(19)}, alpha=0.003)
    assert two.promised_fpr == pytest.approx(2 / 20)


def test_views_share_the_places_and_outliers_in_several_views_count_once():
    rng = np.random.default_rng(2)
    n = 2791
    a, b = rng.exponential(1.0, n), rng.exponential(1.0, n)
    a[:3] = b[:3] = 100.0 + np.arange(3)  # three normal outliers, extreme in both views
    cal = Calibration({"a": a, "b": b, "c": np.zeros(n)}, alpha=0.003)
    # five places: the three shared outliers and one more in each of a and b; the cuts come down past the outliers
    assert cal.beyond <= places(0.003, n, 3) == 5
    assert cal.k == 5 and cal.cut("a") < 20 and cal.cut("b") < 20
    assert cal.cut("c") == 0.0  # a view without spread fires on anything above it
    assert cal.promised_fpr == pytest.approx((cal.beyond + 3) / (n + 1)) and cal.promised_fpr <= 0.003
    # the same outliers in different sequences of each view use twice the places: fewer ranks each
    b2 = b.copy()
    b2[:3], b2[3:6] = b[3:6], 100.0 + np.arange(3)
    other = Calibration({"a": a, "b": b2, "c": np.zeros(n)}, alpha=0.003)
    assert other.k < cal.k and float(np.sort(a)[n - other.k]) > 20  # equal ranks: both cuts on outliers
    # so one view takes the places past its outliers (view_ranks), the other keeps its cut on its own
    assert min(other.cut("a"), other.cut("b")) < 20 < max(other.cut("a"), other.cut("b"))
    assert other.beyond <= 5


def test_fused_p_values_are_uniform_and_keep_the_promise_on_exchangeable_data():
    # three views of different scales and shapes; calibration and test drawn alike
    rng = np.random.default_rng(0)

    def draw(n):
        return {"a": rng.exponential(1.0, n), "b": rng.normal(10, 3, n), "c": rng.lognormal(0, 1, n)}

    cal = Calibration(draw(999), alpha=0.05)
    p = cal.fused_p_value(draw(20000))
    assert stats.kstest(p, "uniform").statistic < 0.03  # conformal p-values of the fused statistic
    # the promise holds on average over calibration sets (the conformal guarantee is marginal: one set's k-th
    # largest value may sit low or high by about 1/sqrt(k))
    for alpha in (0.01, 0.05, 0.2):
        fprs, promises = [], []
        for _ in range(20):
            c = Calibration(draw(999), alpha)
            fprs.append((c.fused(draw(4000)) > c.fused_cut).mean())
            promises.append(c.promised_fpr)
            assert c.promised_fpr <= alpha
        assert np.mean(fprs) <= np.mean(promises) * 1.1 + 0.001, (alpha, np.mean(fprs), np.mean(promises))
        assert np.mean(fprs) >= np.mean(promises) * 0.75, (alpha, np.mean(fprs))  # the budget is used, not wasted


def test_view_cuts_agree_with_the_fused_decision_and_p_value():
    rng = np.random.default_rng(1)
    cal = Calibration({"a": rng.exponential(1.0, 500), "b": rng.normal(0, 1, 500)}, alpha=0.02)
    new = {"a": rng.exponential(1.3, 3000), "b": rng.normal(0, 1.3, 3000)}
    fused = cal.fused(new) > cal.fused_cut
    by_view = (new["a"] > cal.cut("a")) | (new["b"] > cal.cut("b"))
    assert (fused == by_view).all()
    assert ((cal.fused_p_value(new) <= cal.promised_fpr) == by_view).all()
    assert 0 < fused.sum() < 3000


def _outlier_view(rng, n, outliers=(74.0, 12.8, 12.0, 8.4)):
    """A count-like view: mostly 0 (sessions that repeat), a thin tail below 1.5 and a few far outliers."""
    b = np.where(rng.random(n) < 0.012, rng.uniform(0.5, 1.5, n), 0.0)
    b[:len(outliers)] = outliers
    return b


def test_a_view_whose_top_values_are_outliers_gets_ranks_past_them():
    rng = np.random.default_rng(4)
    n = 2791
    values = {"unseen": np.r_[1.0, np.zeros(n - 1)], "surprise": rng.exponential(1.0, n) + 5,
              "count": _outlier_view(rng, n)}
    cal = Calibration(values, alpha=0.003)
    # equal ranks would hold the count cut on its outliers (the third largest, 12.0): the view gets ranks down
    # to the first value past the gap, the others fewer, and the union still fits the places
    assert cal.k >= 3 and float(np.sort(values["count"])[n - cal.k]) >= 8.4
    assert cal.ranks["count"] > cal.k and cal.cut("count") < 1.5
    assert cal.ranks["surprise"] <= cal.k and cal.ranks["unseen"] <= cal.k
    assert cal.beyond <= places(0.003, n, 3)
    assert cal.promised_fpr == pytest.approx((cal.beyond + 3) / (n + 1)) and cal.promised_fpr <= 0.003
    # the decision, the score and the p-value still agree: a view fires exactly when F passes the shared cut
    new = {"unseen": (rng.random(5000) < 0.001).astype(float), "surprise": rng.exponential(1.2, 5000) + 5,
           "count": np.r_[rng.uniform(0, 13, 2000), _outlier_view(rng, 3000, ())]}
    by_view = np.any([new[k] > cal.cut(k) for k in new], axis=0)
    assert ((cal.fused(new) > cal.fused_cut) == by_view).all()
    assert ((cal.fused_p_value(new) <= cal.promised_fpr) == by_view).all()
    assert 0 < by_view.sum() < 5000
    # p-values and F keep their order within the view given more ranks
    c = np.sort(new["count"])
    f = cal.fused({"count": c})
    assert (np.diff(f) >= 0).all() and (np.diff(cal.fused_p_value({"count": c})) <= 0).all()


def test_no_extra_ranks_without_a_gap_nor_beyond_the_places():
    rng = np.random.default_rng(5)
    n = 2791
    surprise = rng.exponential(1.0, n) + 5
    close = Calibration({"surprise": surprise, "count": _outlier_view(rng, n, (3.0, 2.6, 2.2, 1.9))}, alpha=0.003)
    assert set(close.ranks.values()) == {close.k}  # the cut falls by less than GAP: equal ranks
    # twelve far outliers: past them is beyond the places, so the view keeps the shared ranks
    many = Calibration({"surprise": surprise, "count": _outlier_view(rng, n, tuple(range(20, 32)))}, alpha=0.003)
    assert set(many.ranks.values()) == {many.k} and many.cut("count") >= 20


def test_a_view_is_not_blinded_to_give_another_ranks():
    # three places; the count view's top values 74, 30, 20 sit far above its tail (1.0 and below), and one
    # session holds an unseen event. Equal ranks: 2 (the count cut 30). Past the count gap fits the places
    # only with the unseen view at one rank, where its cut is 1: an anomaly with one unseen event would no
    # longer fire (a split of HDFS, seed 808: recall 0.946 against 1.000). So the ranks stay equal.
    rng = np.random.default_rng(7)
    n = 2791
    alpha = (3 + 3 + 0.5) / (n + 1)
    count = _outlier_view(rng, n, (74.0, 30.0, 20.0))
    count[3:] = np.minimum(count[3:], 1.0)
    surprise = rng.exponential(1.0, n) + 5
    unseen = np.zeros(n)
    unseen[100] = 1.0
    cal = Calibration({"unseen": unseen, "surprise": surprise, "count": count}, alpha)
    assert places(alpha, n, 3) == 3 and cal.k == 2
    assert set(cal.ranks.values()) == {2} and cal.cut("unseen") == 0.0 and cal.cut("count") == 30.0
    # the unseen event in a count outlier spends no place of its own: the count view gets past its gap,
    # the unseen cut stays at 0
    unseen[100], unseen[0] = 0.0, 1.0
    moved = Calibration({"unseen": unseen, "surprise": surprise, "count": count}, alpha)
    assert moved.cut("unseen") == 0.0 and moved.cut("count") <= 1.0 and moved.beyond <= 3
    assert moved.ranks["count"] > moved.k


def test_the_promise_holds_with_ranks_past_outliers_on_exchangeable_data():
    # the count-like view has far outliers at a rate of 0.0015: most calibration sets hold some, and the view
    # then cuts past them; over calibration sets the rate on new data stays within the promise
    rng = np.random.default_rng(6)

    def draw(n):
        b = np.where(rng.random(n) < 0.012, rng.uniform(0.5, 1.5, n), 0.0)
        far = rng.random(n) < 0.0015
        b[far] = rng.uniform(8, 80, far.sum())
        return {"unseen": (rng.random(n) < 0.0004).astype(float), "surprise": rng.exponential(1.0, n), "count": b}

    fprs, promises, moved = [], [], 0
    for _ in range(30):
        c = Calibration(draw(2791), 0.003)
        moved += c.ranks["count"] > c.k
        new = draw(20000)
        fprs.append(np.any([new[k] > c.cut(k) for k in new], axis=0).mean())
        promises.append(c.promised_fpr)
    assert moved >= 10  # the rule was exercised
    assert np.mean(fprs) <= np.mean(promises) * 1.1, (np.mean(fprs), np.mean(promises))


# --- the Detector on generated sessions -----------------------------------------------------------
@pytest.fixture(scope="module")
def bench():
    return order.make(seed=3, train=800, normal=1500, abnormal=30)


@pytest.fixture(scope="module")
def markov_detector(bench):
    return Detector(MarkovModel(order=2), target_fpr=0.05).fit(sessions(bench["train"]))


class NoiseModel(SequenceModel):
    """A fixed model whose probabilities are pseudo-random per session content: its scores of normal sessions
    are exchangeable and continuous, whoever trained it (its copies score exactly alike)."""

    kind = "noise-test"
    count_profile = False

    def _fit(self, train, train_complete, valid, valid_complete):
        pass

    def log_proba(self, ids_list, complete):
        V = len(self.vocab_)
        out = []
        for a, c in zip(ids_list, complete):
            rng = np.random.default_rng(abs(hash(tuple(a.tolist()))) % (2 ** 32))
            out.append(np.log(rng.dirichlet(np.ones(V), size=len(a) + bool(c))))
        return out


register(NoiseModel)


def test_detector_p_values_on_exchangeable_sessions():
    rng = np.random.default_rng(5)
    draw = lambda n, p: sessions([list(rng.choice(list("abcd"), size=rng.integers(5, 15))) for _ in range(n)], p)  # noqa: E731
    det = Detector(NoiseModel(), target_fpr=0.05).fit(draw(1000, "n"))
    # 48 places (floor(50.05) - 2 views); the unseen view never leaves its zeros: the surprise view takes them all
    assert set(det.calibration_.values) == {"unseen", "surprise"} and det.calibration_.k == 49
    d = det.decide(draw(3000, "t"))
    surprise = np.array([f.views["surprise"]["p_value"] for f in d.findings])
    assert stats.kstest(surprise, "uniform").statistic < 0.04  # each view's p-value: uniform
    # fused: the surprise view's p-value and one more place for the other view (a union of two); at or below
    # the floor the final model's own held-out sessions set (it decides), never beyond the cut
    floor = det.calibration_.floors.get("surprise", -np.inf)
    value = np.array([f.views["surprise"]["value"] for f in d.findings])
    above = value > floor
    np.testing.assert_allclose(d.p_values[above], np.minimum(1, surprise + 1 / 1001)[above], rtol=1e-6)
    assert (d.p_values[~above] > det.promised_fpr).all()
    assert d.p_values.min() >= 2 / 1001  # never below what 1,000 sequences back with two views
    # the unseen view never fires here: the rate is the surprise view's, at most 49/1001 (less where the floor
    # raised its cut), within the promise (U + 2)/1001
    assert 0.02 <= det.promised_fpr <= 50 / 1001
    assert abs(d.anomalous.mean() - (det.promised_fpr - 1 / 1001)) < 0.012
    assert ((d.p_values <= det.promised_fpr) == d.anomalous).all()


def test_rate_within_promise_on_generated_sessions(markov_detector, bench):
    d = markov_detector.decide(sessions(bench["test_normal"], "t"))
    promise = markov_detector.promised_fpr
    assert 0.03 <= promise <= 0.05  # (U + V) / (n + 1) within the target, most of it used
    assert 0.01 <= d.anomalous.mean() <= 2 * promise
    assert (d.p_values[d.anomalous] <= promise).all() and (d.p_values[~d.anomalous] > promise).all()
    cal = markov_detector.calibration
    assert cal["calibration_sequences"] == 800 and cal["promised_fpr"] == promise


class MemoModel(SequenceModel):
    """Gives the events of a session it trained on probability 0.9; anything else is uniform."""

    kind = "memo-test"

    def _fit(self, train, train_complete, valid, valid_complete):
        self.memory_ = {tuple(a.tolist()) for a in train}

    def log_proba(self, ids_list, complete):
        V = len(self.vocab_)
        out = []
        for a, c in zip(ids_list, complete):
            y = with_end(a, c)
            lp = np.full((len(y), V), math.log(1.0 / V))
            if tuple(a.tolist()) in self.memory_:
                lp[:] = math.log(0.1 / (V - 1))
                lp[np.arange(len(y)), y] = math.log(0.9)
            out.append(lp)
        return out


register(MemoModel)


def test_no_training_sequence_is_calibrated_on_its_own_score(bench):
    seqs = sessions(bench["train"][:200])
    model = MemoModel().fit(seqs)
    assert model.memory_  # it trained on (its split of) them: it knows them
    scores = model.score_events(seqs[:5])
    assert all(np.allclose(s.prob, 0.9) for s in scores if tuple(model.vocab_.encode(s.sequence.tokens)) in
               model.memory_)
    det = Detector(model, target_fpr=0.1).fit(seqs)
    surprise = det.calibration_.values["surprise"]
    assert len(surprise) == 200
    # every calibration sequence was scored by a copy that never saw it: uniform, never 0.9
    np.testing.assert_allclose(surprise, math.log(len(model.vocab_)))


def test_target_below_what_n_can_back_is_not_promised(bench):
    det = Detector(MarkovModel(order=1), target_fpr=0.001).fit(sessions(bench["train"][:49]))
    assert det.calibration_.n == 49
    V = len(det.calibration_.values)
    assert det.promised_fpr == pytest.approx(V / 50)  # each view at its largest value: V/(n+1), not 0.001
    assert f"{V}/(n+1)" in det.promise_text()


def test_the_promise_names_each_views_rank_when_they_differ(markov_detector):
    det = markov_detector.with_target_fpr(0.003)
    n = 2791
    rng = np.random.default_rng(4)
    values = {"unseen": np.r_[1.0, np.zeros(n - 1)], "surprise": rng.exponential(1.0, n) + 5,
              "count": _outlier_view(rng, n)}
    det._set_calibration(Calibration(values, 0.003))
    text = det.promise_text()
    assert "each view's cut one of its largest values: the unseen view's 2nd, the surprise view's 2nd, the count " \
           "view's 5th (past its outliers))" in text, text
    equal = markov_detector.with_target_fpr(0.003)  # order data: no view has a gap, one rank for all
    assert set(equal.calibration_.ranks.values()) == {equal.calibration_.k}
    assert f"each view's cut its {equal.calibration_.k}" in equal.promise_text()
    assert "one of its largest values" not in equal.promise_text()


def test_explanation_comes_from_the_view_that_fired(markov_detector, bench):
    normal = bench["train"][0]
    extra = normal + normal  # every count doubled, ordinary n-grams
    unseen = normal[:3] + ["never-seen"] + normal[3:]
    d = markov_detector.decide(sessions([extra, unseen]))
    f_count, f_unseen = d.findings
    assert f_count.anomalous and f_count.view == "count"
    assert f_count.reason.startswith("unusual event counts")
    # the events beyond the nearest normal profile's counts are the ones marked
    surplus = sum(max(0, d["count"] - d["normal"]) for d in f_count.count_deviations)
    assert surplus > 0 and f_count.event_anomalous.sum() == surplus
    assert f_unseen.anomalous and f_unseen.view == "unseen" and f_unseen.position == 3
    for f in d.findings:
        assert set(f.views) == {"unseen", "surprise", "count"}
        assert set(f.views["count"]) == {"value", "threshold", "p_value", "fired"}


def test_outliers_text_puts_each_session_on_its_own_aligned_line():
    """What train, calibrate and info print about the sessions beyond the cuts: a line saying what they
    are, then one line per session (id, file:line, views), at most ``most``, the rest counted."""
    det = Detector(MarkovModel())
    assert det.outliers_text() == ""
    det.training_outliers_ = [
        {"index": 9, "id": "blk_-1625647765770525379", "at": "data/train:1279", "views": ["surprise", "count"]},
        {"index": 2, "id": "blk_33", "at": "data/train:37", "views": ["count"]},
        {"index": 4, "id": "blk_5", "at": "data/train:5", "views": ["unseen"]}]
    lines = det.outliers_text(most=2, indent="    ").split("\n")
    assert lines[0].startswith("3 training sessions are beyond the cuts and spend the false-positive budget")
    assert lines[1:] == ["    blk_-1625647765770525379  data/train:1279  beyond the surprise and count cuts",
                         "    blk_33                    data/train:37    beyond the count cut",
                         "    and 1 more (seqrnn info --json lists them all)"]
    # sessions of a file without ids are numbered by line: the location alone, not the number twice
    det.training_outliers_ = [{"index": 0, "id": "12", "at": "plain:12", "views": ["count"]}]
    text = det.outliers_text()
    assert text.split("\n")[0].startswith("1 training session is beyond the cuts and spends")
    assert text.split("\n")[1] == "  plain:12  beyond the count cut"


def test_outliers_among_training_sessions_shield_no_anomaly_like_them(bench):
    """Asked for (leave_out_outliers): a normal-labelled training session that is itself an outlier
    (contamination: in HDFS, sessions whose counts match a failure's) is beyond the count cut, so it is no
    count profile: anomalies like it are judged against the normal profiles, not hidden by it."""
    base = bench["train"][0]
    odd = base + [base[1]] * 12  # one event repeated twelve times more than in any normal session
    det = Detector(MarkovModel(order=2), target_fpr=0.05, leave_out_outliers=True).fit(
        sessions(bench["train"] + [odd]))
    assert det.calibration["count"]["left_out"] >= 1  # the calibration finds it beyond a cut...
    assert det.calibration["count"]["leave_out_outliers"] is True
    odd_id = f"s{len(bench['train'])}"
    assert odd_id in [o["id"] for o in det.calibration["training_outliers"]]  # ...says so...
    assert odd_id in det.outliers_text()
    row = count_matrix(det.model.encode(sessions([odd]))[0], len(det.model.vocab_))[0]
    assert not (det.count_profiles_ == row).all(1).any()  # ...so it is no profile
    like = sessions([odd + [base[1]], odd[:-1]], "a")  # anomalies a step from it
    for f in det.decide(like).findings:
        assert f.views["count"]["fired"], f.views["count"]
    # the normal sessions keep their profiles: a copy of one is no anomaly for the count view
    assert not det.decide(sessions([bench["train"][5]], "c")).findings[0].views["count"]["fired"]


def test_by_default_every_training_session_is_a_count_profile(bench):
    """The default: an outlier among the training sessions is still named and spends the budget, but it
    stays a profile, so its twins in new data (a rare normal pattern seen once in training) do not fire
    the count view; left out, they all would, and the calibration counted it once (on an HDFS split of our
    own, three test twins of one such session: docs/calibration.md)."""
    base = bench["train"][0]
    odd = base + [base[1]] * 12
    train = sessions(bench["train"] + [odd])
    det = Detector(MarkovModel(order=2), target_fpr=0.05).fit(train)
    odd_id = f"s{len(bench['train'])}"
    assert det.leave_out_outliers is False and det.calibration["count"]["left_out"] == 0
    assert det.calibration["count"]["leave_out_outliers"] is False
    assert odd_id in [o["id"] for o in det.calibration["training_outliers"]]  # named all the same
    row = count_matrix(det.model.encode(sessions([odd]))[0], len(det.model.vocab_))[0]
    assert (det.count_profiles_ == row).all(1).any()  # a profile
    twins = det.decide(sessions([odd, odd, odd], "t")).findings
    assert not any(f.views["count"]["fired"] for f in twins)
    left = Detector(MarkovModel(order=2), target_fpr=0.05, leave_out_outliers=True).fit(train)
    assert all(f.views["count"]["fired"] for f in left.decide(sessions([odd, odd, odd], "t")).findings)
    # the note on the training outliers says what a profile does, and what to do about it
    assert "hide anomalies like them" in det.outliers_text() and "--leave-out-outliers" in det.outliers_text()
    assert "hide anomalies" not in left.outliers_text() and odd_id in left.outliers_text()
    import copy

    one = copy.copy(det)
    one.training_outliers_ = det.training_outliers_[:1]  # one session: 'it', not 'they'
    assert "as a count profile it hides anomalies like it (where" in one.outliers_text()
    # and says how many it left out of the profiles (it said nothing of it)
    n = left.calibration["count"]["left_out"]
    assert n >= 1 and (f"{n} of the training sessions (those beyond the first cuts) "
                       f"{'is' if n == 1 else 'are'} left out of the count profiles (--leave-out-outliers)"
                       ) in left.outliers_text()
    with pytest.raises(ValueError, match="leave_out_outliers"):
        Detector(MarkovModel(), leave_out_outliers="yes")


def test_leave_out_outliers_is_taken_with_the_count_view_off_at_decision_time(bench):
    """Detector(use_counts=False, leave_out_outliers=True).fit was refused ('the count view is off
    (use_counts=False): there are no count profiles'), though use_counts only sets what decide uses: the
    calibration keeps the count view and its profiles (saved, and used by a detect without --no-counts),
    and leaves the outliers out of them as with the count view on."""
    base = bench["train"][0]
    odd = base + [base[1]] * 12
    train = sessions(bench["train"] + [odd])
    on = Detector(MarkovModel(order=2), target_fpr=0.05, leave_out_outliers=True).fit(train)
    off = Detector(MarkovModel(order=2), target_fpr=0.05, leave_out_outliers=True, use_counts=False).fit(train)
    assert off.calibration["count"]["left_out"] == on.calibration["count"]["left_out"] >= 1
    np.testing.assert_array_equal(off.count_profiles_, on.count_profiles_)
    assert off.use_counts is False and "count" not in off.decide(sessions([odd], "t")).findings[0].views


def test_leave_out_outliers_is_refused_where_it_would_change_nothing(bench, tmp_path, capsys):
    """The flag acts on the count profiles of a calibration cross-fitted on the training sessions. A count
    baseline (its own count view), held-out validation data, a stream or --no-calibration left it without
    effect, saying nothing; it is now refused, by the CLI before the training."""
    from conftest import run_cli

    from seqrnn.errors import InputError
    from seqrnn.models.counts import CountModel

    train = sessions(bench["train"])
    with pytest.raises(InputError, match="own views and keeps no count profiles"):
        Detector(CountModel(), leave_out_outliers=True).fit(train)
    with pytest.raises(InputError, match="with validation data"):
        Detector(MarkovModel(), leave_out_outliers=True).fit(train[:40], validation_data=train[40:])
    model = MarkovModel(order=2)
    with pytest.raises(InputError, match="a stream or a text has no count profiles"):
        Detector(model, leave_out_outliers=True).fit([[t for s in bench["train"] for t in s]], format="stream")
    assert not model.is_fitted()  # refused before the training
    data = tmp_path / "t.txt"
    data.write_text("\n".join(" ".join(map(str, s)) for s in bench["train"]) + "\n")
    stream = tmp_path / "s.txt"
    stream.write_text("\n".join(str(t) for s in bench["train"][:20] for t in s) + "\n")
    small = ["--epochs", "1", "--hidden", "8"]
    for extra, why in ((["--model", "count"], "a count model judges counts with its own views"),
                       (["--validation", str(data), *small], "with validation data"),
                       ([str(stream), "--format", "stream", *small], "it applies to sessions; a stream or a text"),
                       (["--no-calibration", *small], "--no-calibration trains no detector")):
        inputs = [] if "stream" in extra else [data]
        code, out, err = run_cli(capsys, "train", *inputs, "-m", tmp_path / "m", "--leave-out-outliers", *extra)
        assert code == 2 and f"--leave-out-outliers does not apply: {why}" in err, (extra, err)
        assert not (tmp_path / "m" / "config.json").exists()
    code, out, err = run_cli(capsys, "train", data, "-m", tmp_path / "m", "--model", "markov", "--leave-out-outliers")
    assert code == 0, err
    code, out, err = run_cli(capsys, "calibrate", tmp_path / "m", data, "--refit", "--leave-out-outliers",
                             "--validation", data)
    assert code == 2 and "--leave-out-outliers does not apply: with validation data" in err, err



@pytest.fixture(scope="module")
def outlier_detector(bench):
    """A detector whose training holds one odd session with a hostile id (escape sequences, 10,000
    characters)."""
    base = bench["train"][0]
    seqs = sessions(bench["train"] + [base + [base[1]] * 12])
    seqs[-1].id = "\x1b[2J\x1b]0;owned\x07" + "x" * 10_000
    return Detector(MarkovModel(order=2), target_fpr=0.05).fit(seqs)


def test_outliers_are_shown_escaped_and_short(outlier_detector):
    det = outlier_detector
    assert det.calibration["training_outliers"][0]["id"].startswith("\x1b[2J")  # kept as it is...
    text = det.outliers_text()
    assert "\\x1b[2J\\x1b]0;owned\\x07xxx" in text  # ...shown escaped: no escape reaches a terminal
    lines = text.split("\n")  # a line that says what they are, then one per session
    assert all(c.isprintable() for line in lines for c in line) and all(len(line) < 200 for line in lines)


def test_training_outliers_follow_the_cuts_in_force(outlier_detector):
    """Each named outlier is beyond a cut of the detector in force, with the views it is beyond: also after
    with_target_fpr (the list was kept as learned for the old cuts)."""
    def check(det):
        cal = det.calibration_
        for o in det.training_outliers_:
            assert o["views"] == [k for k, v in cal.values.items() if v[o["index"]] > cal.cut(k)] != []
        return [o["index"] for o in det.training_outliers_]

    learned = check(outlier_detector)
    assert len(learned) >= 2
    tight = outlier_detector.with_target_fpr(0.005)
    fewer = check(tight)
    assert 1 <= len(fewer) < len(learned) and set(fewer) <= set(learned)
    assert check(outlier_detector) == learned  # the original is left as it was


def test_training_outliers_and_left_out_are_checked_on_load(outlier_detector, tmp_path):
    from seqrnn.errors import ModelFileError

    det = outlier_detector
    folder = det.save(det.model.save(str(tmp_path / "m")))
    path = tmp_path / "m" / "detector.json"
    saved = json.loads(path.read_text())
    assert Detector.load(folder, det.model).training_outliers_ == det.training_outliers_
    (tmp_path / "m" / "status.json").unlink()  # the files as they are, not checked against their hashes

    def load(change):
        data = json.loads(json.dumps(saved))
        change(data)
        path.write_text(json.dumps(data))
        return Detector.load(folder, det.model)

    first = saved["training_outliers"][0]
    for change in (lambda d: d["training_outliers"].append(dict(first)),  # a session named twice
                   lambda d: d["training_outliers"][0].update(views=["\x1b[31m"]),  # no view of the detector
                   lambda d: d["count"].update(left_out=saved["calibration_sequences"] + 1)):
        with pytest.raises(ModelFileError):
            load(change)
    inside = next(i for i in range(saved["calibration_sequences"])
                  if i not in {o["index"] for o in saved["training_outliers"]})
    loaded = load(lambda d: d["training_outliers"].append(dict(first, index=inside)))
    assert inside not in [o["index"] for o in loaded.training_outliers_]  # no longer beyond a cut: not named
    loaded = load(lambda d: (d.pop("training_outliers"), d["count"].pop("left_out")))  # an older file
    assert loaded.training_outliers_ == [] and loaded.calibration["count"]["left_out"] == 0
    assert Detector.load(folder, det.model).leave_out_outliers is det.leave_out_outliers is False
    # files before the option always left the outliers out of the profiles: they read as such
    assert load(lambda d: d["count"].pop("leave_out_outliers")).leave_out_outliers is True
    with pytest.raises(ModelFileError, match="leave_out_outliers"):
        load(lambda d: d["count"].update(leave_out_outliers=1))


def test_left_out_rows_are_nobodys_nearest_profile():
    from seqrnn.profiles import leave_one_out

    counts = np.array([[0, 1], [0, 2], [0, 10], [0, 11]], np.float32)
    w = np.ones(2, np.float32)
    d, unique = leave_one_out(counts, w)
    np.testing.assert_allclose(d, [1, 1, 1, 1])
    d, unique = leave_one_out(counts, w, outside=np.array([False, False, False, True]))
    np.testing.assert_allclose(d, [1, 1, 8, 1])  # row 2 lost its neighbour; row 3 is judged by the others
    assert len(unique) == 3 and not (unique == counts[3]).all(1).any()
    d, _ = leave_one_out(counts, w, outside=np.array([True, True, True, False]))  # one left: none left out
    np.testing.assert_allclose(d, [1, 1, 1, 1])


def test_sessions_of_the_same_events_share_a_decision_not_an_identity(markov_detector, bench):
    odd = bench["train"][0] + bench["train"][0]
    seqs = sessions([odd, bench["train"][1], odd], "d")
    d = markov_detector.decide(seqs)
    a, _, b = d.findings
    assert a.anomalous and b.anomalous and (a.score, a.reason, a.view, a.views) == (b.score, b.reason, b.view, b.views)
    assert (a.scores.sequence.id, b.scores.sequence.id) == ("d0", "d2")
    assert (a.scores.sequence.line, b.scores.sequence.line) == (1, 3)
    assert a.event_anomalous is not b.event_anomalous
    np.testing.assert_array_equal(a.event_anomalous, b.event_anomalous)
    a.views["surprise"]["note"] = "seen"  # what a caller changes in one finding is that finding's
    a.count_deviations.append({"event": "x"})
    assert "note" not in b.views["surprise"] and {"event": "x"} not in b.count_deviations


# --- feedback -----------------------------------------------------------------------------------------
def test_feedback_stops_a_confirmed_false_positive(bench):
    det = Detector(MarkovModel(order=2), target_fpr=0.01).fit(sessions(bench["train"]))
    # normal sessions the detector flags: its false positives
    test = sessions(bench["test_normal"], "t")
    d = det.decide(test)
    fps = [s for s, f in zip(test, d.findings) if f.anomalous]
    assert fps, "no false positive to give back"
    n = det.calibration_.n
    confirmed = fps[:1]
    det.add_normal(confirmed)
    assert det.calibration_.n == n + 1
    assert not det.decide(confirmed).findings[0].anomalous
    # an unseen token confirmed as normal is known from then on
    odd = sessions([bench["train"][1][:4] + ["new-event"] + bench["train"][1][4:]])
    assert det.decide(odd).findings[0].view == "unseen"
    det.add_normal(odd)
    assert not det.decide(odd).findings[0].anomalous
    assert "new-event" in det.calibration["accepted_tokens"]


def test_a_floor_holds_its_value_scored_again_with_rounding():
    """A given-back sequence scored again in another batch differs in its last float32 bits: its floor
    holds a little above the value it was given, so that it does not fire again."""
    rng = np.random.default_rng(0)
    values = rng.exponential(1.0, 500)
    given = 30.0  # far beyond every calibration value: a false positive given back
    cal = Calibration({"surprise": values}, 0.01, {"surprise": given})
    again = np.nextafter(np.float32(given), np.float32(np.inf)).astype(np.float64)  # one float32 step up
    assert again > given and cal.cut("surprise") >= again
    assert cal.fused_p_value({"surprise": np.array([again])})[0] > cal.promised_fpr
    assert cal.fused_p_value({"surprise": np.array([given * 1.001])})[0] <= cal.promised_fpr  # beyond: fires


@pytest.mark.parametrize("m,p", [(400, 5 / 4001), (279, 5 / 2792), (279, 1 / 2792), (50, 0.1), (30, 0.5),
                                 (20_000, 0.05), (10**6, 1e-3), (1, 0.5), (1, 1e-9)])  # (1 - p) ** m underflows
def test_chance_allowance_is_the_binomial_tail_at_its_level(m, p):
    from seqrnn.detect import HELD_OUT_LEVEL, chance_allowance

    a = chance_allowance(m, p)
    assert stats.binom.sf(a, m, p) <= HELD_OUT_LEVEL < stats.binom.sf(a - 1, m, p)  # the fewest that holds
    assert chance_allowance(0, p) == 0 and chance_allowance(m, 0.0) == 0 and chance_allowance(m, 1.0) == m


def test_surprise_scale_brings_the_copies_tail_to_the_final_models():
    """The copies' surprise of the held-out sessions is 1.25 times the final model's (each sorted on its own,
    the top tenth): their values come down by that factor; too few sessions, or nonsense, leave them alone."""
    from seqrnn.detect import SCALE_RANGE, surprise_scale

    rng = np.random.default_rng(0)
    own = rng.gamma(4.0, 1.0, 300)
    copies = 1.25 * rng.permutation(own)  # the same sessions, paired in another order: sorted on its own
    assert surprise_scale(copies, own) == pytest.approx(0.8)
    assert surprise_scale(np.r_[copies, np.nan], np.r_[own, 50.0]) == pytest.approx(0.8)  # not scored: skipped
    assert surprise_scale(copies[:10], own[:10]) == 1.0  # too few to say
    assert surprise_scale(np.zeros(300), own) == 1.0
    assert surprise_scale(100 * copies, own) == SCALE_RANGE[0] and surprise_scale(copies / 100, own) == SCALE_RANGE[1]


def test_surprise_scale_compares_the_same_sessions_when_the_copies_score_a_subset():
    """Under max_events the copies score a random subset of the held-out sessions (nan for the others), the
    final model all of them: both tops must be the subset's, or the final model's top tenth of all the
    sessions (the more extreme) stands against the copies' of fewer, and the scale comes out too large."""
    from seqrnn.detect import surprise_scale

    rng = np.random.default_rng(2)
    own = rng.gamma(4.0, 1.0, 300)
    copies = 1.25 * own
    copies[rng.permutation(300)[:210]] = np.nan  # 90 of 300 scored
    assert surprise_scale(copies, own) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        surprise_scale(copies[:100], own)


def test_the_scale_pairs_each_held_out_session_with_its_copys_value(monkeypatch):
    """Detector.fit hands surprise_scale the copies' and the final model's values of the same held-out
    sessions in the same order (with max_events, the copies' of a subset): they go together."""
    import seqrnn.detect as detect_module

    seen = {}
    real = detect_module.surprise_scale
    monkeypatch.setattr(detect_module, "surprise_scale", lambda c, o: seen.update(c=c, o=o) or real(c, o))
    seqs = sessions(order.make(seed=3, train=400, normal=1, abnormal=1)["train"])
    model = MarkovModel(order=2).fit(seqs)
    det = Detector(model).fit(seqs, max_events=sum(len(s) for s in seqs) // 2)
    c, o = seen["c"], seen["o"]
    both = np.isfinite(c)
    assert len(c) == len(o) == len(model.split(seqs)[1]) and 10 < both.sum() < len(c)
    assert np.corrcoef(c[both], o[both])[0, 1] > 0.5  # 0.72 (sorted apart: about 0)
    assert det.surprise_scale_ == real(c, o)


def test_no_scale_from_sessions_the_final_model_trained_on(monkeypatch):
    """A model trained on all of X (its validation data given apart), calibrated on X alone (calibrate --refit
    without --validation-file): X's split-off sessions are no held-out sessions of the final model (it scores
    them in sample, lower), so they set no scale; a model that held them out gets one."""
    import seqrnn.detect as detect_module

    monkeypatch.setattr(detect_module, "surprise_scale", lambda copies, own: 0.75)
    data = order.make(seed=3, train=300, normal=60, abnormal=1)
    seqs, valid = sessions(data["train"]), sessions(data["test_normal"], "v")
    trained_on_all = MarkovModel(order=2).fit(seqs, validation_data=valid)
    assert Detector(trained_on_all).fit(seqs).surprise_scale_ == 1.0
    assert Detector(MarkovModel(order=2).fit(seqs)).fit(seqs).surprise_scale_ == 0.75


def test_held_out_check_raises_the_cut_on_evidence_not_on_one_odd_session():
    """The final model's held-out sessions raise the surprise cut only when more of them lie beyond it than
    chance gives: one odd session among 400 leaves it where the calibration put it, six raise it."""
    rng = np.random.default_rng(1)
    values = {"surprise": rng.exponential(1.0, 4000)}
    det = Detector(MarkovModel(order=1), target_fpr=0.003)
    cut = Calibration(values, 0.003).cut("surprise")
    own = np.sort(np.r_[rng.exponential(1.0, 399) * 0.5, 3 * cut])  # well inside, but one far beyond
    assert det._held_out_checked(values, own).cut("surprise") == cut
    from seqrnn.detect import chance_allowance

    cal = Calibration(values, 0.003)
    allowed = chance_allowance(400, cal.k / (cal.n + 1))
    assert allowed == 3  # k = 12 of 4,000: 1.2 of 400 expected beyond, more than 3 in 3.4% of draws
    own = np.sort(np.r_[rng.exponential(1.0, 394) * 0.5, cut * np.linspace(1.5, 2.0, 6)])
    raised = det._held_out_checked(values, own)
    assert raised.cut("surprise") > cut * 1.5  # the six are evidence: raised to leave three beyond
    assert (own > raised.cut("surprise")).sum() == allowed


def test_a_stream_calibration_keeps_no_scale_of_an_earlier_fit(monkeypatch):
    """A Detector fitted on sessions (a scale), then on a stream (the final model's own values): the stream's
    calibration says no scale, not the sessions'."""
    import seqrnn.detect as detect_module

    monkeypatch.setattr(detect_module, "surprise_scale", lambda copies, own: 0.75)
    seqs = sessions(order.make(seed=3, train=200, normal=1, abnormal=1)["train"])
    det = Detector(MarkovModel(order=2).fit(seqs)).fit(seqs)
    assert det.calibration["surprise_scale"] == 0.75
    stream = [Sequence("stream", [t for s in seqs for t in s.tokens], "<test>", 1, complete=False)]
    assert det.fit(stream).unit_ == "event" and det.calibration["surprise_scale"] == 1.0


def test_cli_refuses_a_crafted_surprise_scale(tmp_path, bench, capsys):
    """detector.json's surprise_scale of another type or no positive finite number: detect says so (naming
    it) and exits 2; info shows the model, the reason its detector is refused, and exits 2; no traceback."""
    from seqrnn.cli import main

    train = tmp_path / "train"
    train.write_text("".join(f"n{i},{' '.join(s)}\n" for i, s in enumerate(bench["train"][:200])))
    model = str(tmp_path / "m")
    assert main(["train", str(train), "--model", "markov", "--order", "2", "-m", model, "-q"]) == 0
    (tmp_path / "m" / "status.json").unlink()  # the files as they are, not checked against their hashes
    path = tmp_path / "m" / "detector.json"
    saved = json.loads(path.read_text())
    for bad in (True, "0.75", "NaN", None, {"value": 1.0}, [1.0], -1.0, 0, "NaN-literal", "1e999"):
        raw = {"NaN-literal": "NaN", "1e999": "1e999"}.get(bad) if isinstance(bad, str) else None
        if raw in ("NaN", "1e999"):  # JSON that Python reads as nan and inf
            path.write_text(json.dumps({**saved, "surprise_scale": 0.5}).replace('"surprise_scale": 0.5',
                                                                              f'"surprise_scale": {raw}'))
        else:
            path.write_text(json.dumps({**saved, "surprise_scale": bad}))
        capsys.readouterr()
        assert main(["info", model]) == 2  # info describes the model, says why its detector is refused
        out, err = capsys.readouterr()
        assert "detection  refused: " in out and "surprise_scale must be" in out, bad
        assert err.startswith("seqrnn info: error: the detector cannot be used: ") and "Traceback" not in err
        assert main(["info", model, "--json"]) == 2
        shown = json.loads(capsys.readouterr().out)
        assert shown["calibration"] is None and "surprise_scale must be" in shown["detector_error"], bad
        assert main(["detect", model, str(train), "-o", str(tmp_path / "out.jsonl")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("seqrnn detect: error: ") and "surprise_scale must be" in err, (bad, err)
    path.write_text(json.dumps({**saved, "surprise_scale": 1.5}))  # informative: any positive number loads
    assert main(["info", model, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["calibration"]["surprise_scale"] == 1.5 and shown["detector_error"] is None
    path.unlink()  # no detector at all is a state, not an error: shown, exit 0
    assert main(["info", model]) == 0
    out = capsys.readouterr().out
    assert "detection  none: " in out and "detector.json is missing" in out


def test_cli_calibrate_feedback_and_no_detector(tmp_path, bench, capsys):
    from seqrnn.cli import main

    train = tmp_path / "train"
    train.write_text("".join(f"n{i},{' '.join(s)}\n" for i, s in enumerate(bench["train"][:300])))
    odd = tmp_path / "odd"
    odd.write_text(f"x1,{' '.join(bench['train'][5] + ['tick'] * 15)}\n")
    model = str(tmp_path / "m")
    assert main(["train", str(train), "--model", "markov", "--order", "2", "-m", model, "-q"]) == 0
    assert main(["info", model, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["promised_fpr"] == pytest.approx(3 / 301)  # 300 sequences back no less than 3 views / 301
    assert info["calibration_sequences"] == 300
    out = tmp_path / "out.jsonl"
    assert main(["detect", model, str(odd), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["anomalous"] is True
    assert "promised by the calibration: 0.01 " in capsys.readouterr().err
    assert main(["calibrate", model, str(odd), "-q"]) == 0
    assert main(["detect", model, str(odd), "-o", str(out)]) == 0
    assert json.loads(out.read_text())["anomalous"] is False
    assert main(["info", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration_sequences"] == 301
    # --refit: calibrated from scratch on the sequences given (a directory without a detector is calibrated
    # the same way: tests/test_lifecycle.py)
    assert main(["calibrate", model, str(train), "-q", "--refit"]) == 0
    assert main(["info", model, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["calibration_sequences"] == 300 and info["calibration"]["count"]["leave_out_outliers"] is False
    # leaving the outliers out of the profiles is a choice of a calibration from scratch, kept in the files
    assert main(["calibrate", model, str(odd), "--leave-out-outliers"]) == 2
    assert "give --refit" in capsys.readouterr().err
    assert main(["calibrate", model, str(train), "-q", "--refit", "--leave-out-outliers"]) == 0
    assert main(["info", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"]["count"]["leave_out_outliers"] is True
    assert main(["train", str(train), "--model", "markov", "-m", str(tmp_path / "m2"), "-q",
                 "--leave-out-outliers"]) == 0
    assert main(["info", str(tmp_path / "m2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"]["count"]["leave_out_outliers"] is True


# --- the order benchmark ----------------------------------------------------------------------------
def test_order_anomalies_keep_counts_and_ngrams():
    data = order.make(seed=1, train=600, normal=5, abnormal=30)
    seen = set().union(*(order.ngrams(s, 4) for s in data["train"]))
    assert all(order.violation(s) is None for s in data["train"] + data["test_normal"])
    kinds = [k for k, _ in data["test_abnormal"]]
    assert set(kinds) == set(order.KINDS)
    for kind, s in data["test_abnormal"]:
        assert order.violation(s) == kind
        assert order.ngrams(s, 4) <= seen
        # one event moved: the counts of some normal session of the same tasks
        assert sum(t.endswith(".open") for t in s) == sum(t.endswith(".close") for t in s)


# --- cross-fitting in worker processes ------------------------------------------------------------------
def test_folds_in_worker_processes_give_the_values_of_one_process(bench):
    """The copies train on one thread wherever they run: two worker processes give exactly the values of
    the folds trained one after the other here, and torch's thread count is left as it was."""
    import torch

    from seqrnn.crossfit import cross_fitted_surprise, fold_processes
    from seqrnn.models.rnn import RNNModel

    seqs = sessions(bench["train"][:120])
    model = RNNModel(hidden=8, embedding_dim=4, layers=1, epochs=2, batch_size=16, seed=0).fit(seqs)
    assert fold_processes(model, 2) == 1  # a short training: worker processes are not worth starting
    before = torch.get_num_threads()
    here = cross_fitted_surprise(model, seqs, processes=1)
    assert torch.get_num_threads() == before
    workers = cross_fitted_surprise(model, seqs, processes=2)
    assert np.isfinite(here).all() and len(set(np.round(here, 6))) > 10
    np.testing.assert_array_equal(workers, here)


@pytest.fixture()
def small_rnn(bench):
    from seqrnn.models.rnn import RNNModel

    seqs = sessions(bench["train"][:120])
    return RNNModel(hidden=8, embedding_dim=4, layers=1, epochs=2, batch_size=16, seed=0).fit(seqs), seqs


def test_the_copies_scale_is_applied_saved_and_checked_on_load(small_rnn, tmp_path, monkeypatch):
    """The copies' surprise values are multiplied by the scale the held-out sessions give (here forced to
    0.75): the calibration holds them so, says the scale, and a saved detector gives it back; a scale that
    is no positive number is refused on load."""
    import seqrnn.detect as detect_module
    from seqrnn.errors import ModelFileError

    model, seqs = small_rnn
    plain = Detector(model).fit(seqs)
    monkeypatch.setattr(detect_module, "surprise_scale", lambda copies, own: 0.75)
    scaled = Detector(model).fit(seqs)
    np.testing.assert_allclose(scaled.calibration_.values["surprise"], 0.75 * plain.calibration_.values["surprise"])
    assert plain.calibration["surprise_scale"] != 0.75 and scaled.calibration["surprise_scale"] == 0.75
    folder = scaled.save(model.save(str(tmp_path / "m")))
    assert Detector.load(folder, model).calibration["surprise_scale"] == 0.75
    path = tmp_path / "m" / "detector.json"
    for bad in (-1.0, 0, "0.75", None):
        path.write_text(json.dumps({**json.loads(path.read_text()), "surprise_scale": bad}))
        with pytest.raises(ModelFileError):
            Detector.load(folder, model)


def test_no_scale_after_fine_tuning_on_the_sessions_it_would_take_for_held_out(bench, tmp_path, monkeypatch):
    """calibrate --refit --fine-tune: the network has trained on every session given, the held-out part
    included, so those sessions no longer tell its scale (in sample, they would pull the cut down): the
    copies' values stay as they are. The model remembers it was fine-tuned, also once saved and loaded."""
    import seqrnn
    import seqrnn.detect as detect_module
    from seqrnn.feedback import fine_tune
    from seqrnn.models.rnn import RNNModel

    seqs = sessions(bench["train"][:120])
    model = RNNModel(hidden=8, embedding_dim=4, layers=1, epochs=2, batch_size=16, seed=0).fit(seqs)
    monkeypatch.setattr(detect_module, "surprise_scale", lambda copies, own: 0.75)
    assert Detector(model).fit(seqs).calibration["surprise_scale"] == 0.75
    fine_tune(model, seqs, epochs=1)
    assert model.fine_tuned_sequences_ == 120
    assert Detector(model).fit(seqs).calibration["surprise_scale"] == 1.0
    loaded = seqrnn.load(model.save(str(tmp_path / "m")))
    assert loaded.fine_tuned_sequences_ == 120
    assert Detector(loaded).fit(seqs).calibration["surprise_scale"] == 1.0
    assert RNNModel(hidden=8, embedding_dim=4, layers=1, epochs=1, seed=0).fit(seqs).fine_tuned_sequences_ == 0


def test_the_cross_fitting_bar_shows_on_a_terminal_only(small_rnn, capsys, monkeypatch):
    """verbose cross-fitting draws its bar only where standard error is a terminal: a log file or pipe gets
    no carriage returns (it got the tqdm bar's redraws)."""
    import sys

    from seqrnn.crossfit import cross_fitted_surprise

    model, seqs = small_rnn
    cross_fitted_surprise(model, seqs, processes=1, verbose=True)
    assert "cross-fitting" not in capsys.readouterr().err  # captured: not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    cross_fitted_surprise(model, seqs, processes=1, verbose=True)
    assert "calibration: cross-fitting" in capsys.readouterr().err


@pytest.fixture()
def deadline():
    """A wait without end fails the test (after 60 s) instead of hanging the suite."""
    import signal

    def late(signum, frame):
        raise TimeoutError("still waiting after 60 s")

    previous = signal.signal(signal.SIGALRM, late)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _in_a_worker(what):
    """A stand-in for one fold's work that fails in the worker processes only (the test's process runs it
    as it is)."""
    import os

    from seqrnn import crossfit

    parent, original = os.getpid(), crossfit._fit_and_score

    def fold(*args):
        if os.getpid() != parent:
            what()
        return original(*args)

    fold.__module__, fold.__qualname__ = crossfit.__name__, "_fit_and_score"  # pickled by name, as the original
    return fold


@pytest.mark.parametrize("failure", ["killed", "diverged"])
def test_a_fold_that_fails_in_its_worker_is_one_clear_error_not_a_wait(small_rnn, deadline, monkeypatch, failure):
    """A worker killed (by the kernel when memory runs out) or an error that does not come back through
    pickle (TrainingDiverged takes other arguments) hung the pool for ever; now each is one SeqrnnError,
    and no worker is left."""
    import multiprocessing
    import os
    import signal

    from seqrnn import crossfit
    from seqrnn.errors import SeqrnnError
    from seqrnn.train import TrainingDiverged

    def fail():
        if failure == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        raise TrainingDiverged(float("nan"), 1, 3, None, None)

    model, seqs = small_rnn
    monkeypatch.setattr(crossfit, "_fit_and_score", _in_a_worker(fail))
    with pytest.raises(SeqrnnError) as caught:
        crossfit.cross_fitted_surprise(model, seqs, processes=2)
    if failure == "killed":
        assert "killed by signal 9" in str(caught.value) and "--threads 1" in str(caught.value)
    else:
        assert str(caught.value).startswith("training diverged: the loss became nan in epoch 1")
    assert multiprocessing.active_children() == []
    # an error that pickles whole comes back as itself
    monkeypatch.setattr(crossfit, "_fit_and_score", _in_a_worker(lambda: (_ for _ in ()).throw(MemoryError())))
    with pytest.raises(MemoryError):
        crossfit.cross_fitted_surprise(model, seqs, processes=2)
    assert multiprocessing.active_children() == []


@pytest.mark.slow  # about 4 s: a Python process and two workers that import torch
def test_fold_workers_end_with_their_parent_even_after_kill_9(tmp_path):
    """A parent killed by SIGKILL (or by the kernel) cannot stop its workers: they end with it
    (PR_SET_PDEATHSIG) instead of training on for nothing."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(f"""
import os, time
from seqrnn import crossfit

def fold(*args):
    open(os.path.join({str(tmp_path)!r}, str(os.getpid())), "w").close()
    time.sleep(60)

fold.__module__, fold.__qualname__ = "seqrnn.crossfit", "_fit_and_score"
crossfit._fit_and_score = fold
crossfit._in_workers([(), ()], 2, lambda k, values: None)
""")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        workers = []
        for _ in range(300):
            workers = [int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()]
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    for _ in range(50):
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.1)
    left = [p for p in workers if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert left == []
