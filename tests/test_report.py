"""The report: its figures, the HTML page, the summary ``detect`` ends with, ``seqrnn report``."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from conftest import run_cli, write_toy_sessions


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tiny model directory with its detector, normal test sessions, and anomalous ones (an unseen
    event, a wrong order, a repeat count far from normal), and a templates file."""
    from seqrnn.detect import Detector
    from seqrnn.models.rnn import RNNModel

    from conftest import TINY_SETTINGS

    root = tmp_path_factory.mktemp("toy")
    train = write_toy_sessions(root / "train", n=120, seed=1)
    write_toy_sessions(root / "normal", n=20, seed=2)
    abnormal = root / "abnormal"
    abnormal.write_text("x1,a b c z d\nx2,a d c b\nx3,a " + "b " * 30 + "c d\nx4,b a c d\n", encoding="utf-8")
    (root / "templates.csv").write_text("EventId,EventTemplate\na,open <*>\nb,read block <*>\nc,close <*>\n"
                                        "d,done\ne,retry <*>\n", encoding="utf-8")
    model_dir = root / "model"
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 4}).fit(str(train), model_dir=str(model_dir), verbose=0)
    Detector(model).fit(str(train)).save(str(model_dir))
    return root


def decisions_of(toy):
    from seqrnn.data.formats import read_sessions
    from seqrnn.detect import Detector

    detector = Detector.load(str(toy / "model"))
    seqs = read_sessions(str(toy / "normal")) + read_sessions(str(toy / "abnormal"))
    return detector, seqs, detector.decide(seqs)


# --- names and pieces --------------------------------------------------------------------------------
def test_public_names_stay_importable_without_matplotlib():
    import subprocess
    import sys

    code = ("import sys; from seqrnn.report import EVENT_FIELDS, MAX_LISTED, PLOT_STYLE, figure, finding_dict, fmt, "
            "load_templates, plot_curves, plot_findings, pyplot, token_name, write_event_table; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_precision_at_prevalence_and_average_precision_match_the_metrics():
    from seqrnn.metrics import detection_metrics, pr_auc
    from seqrnn.report.plots import average_precision, curve_points, pr_at_prevalence

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, bool), np.ones(100, bool)]
    s = np.r_[rng.normal(0, 1, 300), rng.normal(1.5, 1, 100)]
    fpr, tpr, precision, share = curve_points(y, s)
    assert share == 0.25
    assert average_precision(tpr, precision) == pytest.approx(pr_auc(y, s), abs=1e-12)
    # At another prevalence the same (recall, FPR) pair gives the metrics' precision_at_prevalence.
    pred = s > 1.0
    m = detection_metrics(y, pred, s, 0.01)
    r, f = m["recall"], m["fpr"]
    assert pr_at_prevalence(np.array([r]), np.array([f]), 0.01)[0] == pytest.approx(m["precision_at_prevalence"])
    _, _, p_low, _ = curve_points(y, s, 0.01)
    assert (p_low[1:] <= precision[1:] + 1e-12).all() and p_low[1:].mean() < precision[1:].mean() - 0.2


def test_roc_pr_figure_states_its_areas(tmp_path):
    from seqrnn.metrics import roc_auc
    from seqrnn.report.plots import plot_roc_pr

    y = np.r_[np.zeros(50, bool), np.ones(10, bool)]
    s = np.r_[np.linspace(0, 1, 50), np.linspace(0.8, 2, 10)]
    out = plot_roc_pr(tmp_path / "c.png", y, s, s > 1, prevalence=0.05)
    assert out["roc_auc"] == pytest.approx(roc_auc(y, s)) and out["prevalence"] == 0.05
    assert 0 < out["average_precision"] < 1
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_pick_examples_takes_each_reason_in_turn_and_each_sequence_once(toy):
    from seqrnn.report.plots import pick_examples
    from seqrnn.report.summary import reason_kind

    _, _, d = decisions_of(toy)
    chosen = pick_examples(d.findings, 3)
    kinds = [reason_kind(f.reason) for f in chosen]
    anomalous_kinds = {reason_kind(f.reason) for f in d.findings if f.anomalous}
    assert all(f.anomalous for f in chosen)
    assert len(set(kinds)) == min(3, len(anomalous_kinds))
    assert len({tuple(f.scores.sequence.tokens) for f in chosen}) == len(chosen)


# --- the summary detect ends with ------------------------------------------------------------------
def test_promise_reads_either_layout_of_the_calibration():
    from seqrnn.report.summary import promise, promise_text

    old = promise({"target_fpr": 0.001, "held_out_sequences": 279})
    new = promise({"promised_fpr": 0.002, "calibration_sequences": 5000, "target_fpr": 0.001})
    nested = promise({"surprise": {"promised_fpr": 0.01, "calibration_sequences": 40}})
    assert old == {"fpr": 0.001, "promised": False, "sequences": 279, "unit": "sequences"}
    assert new == {"fpr": 0.002, "promised": True, "sequences": 5000, "unit": "sequences"}
    assert nested == {"fpr": 0.01, "promised": True, "sequences": 40, "unit": "sequences"}
    assert "promised by the calibration: 0.002" in promise_text(new) and "5,000" in promise_text(new)
    assert "targeted" in promise_text(old)
    assert promise({})["fpr"] is None
    # a stream is judged event by event: so is its promise
    stream = promise_text(promise({"promised_fpr": 0.003, "calibration_sequences": 22169, "unit": "event"}))
    assert "1,000 normal events flagged" in stream and "22,169 normal events" in stream
    assert "sequences" not in stream


def test_detection_summary_counts_reasons_and_lists_the_worst(toy):
    from seqrnn.report import load_templates
    from seqrnn.report.summary import detection_summary, reason_kind

    detector, seqs, d = decisions_of(toy)
    templates = load_templates(str(toy / "templates.csv"))
    text = detection_summary(detector.model, detector, d.findings, templates, {"findings": "out.jsonl"}, top=2)
    lines = text.splitlines()
    n_anom = int(d.anomalous.sum())
    assert lines[0].startswith(f"{n_anom} of {len(seqs)} sequences anomalous")
    kinds = {}
    for f in d.findings:
        if f.anomalous:
            kinds[reason_kind(f.reason)] = kinds.get(reason_kind(f.reason), 0) + 1
    assert lines[1] == "  by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    assert "promised by the calibration: 0.0" in text
    worst = sorted((f for f in d.findings if f.anomalous), key=lambda f: -f.score)[:2]
    listed = [ln for ln in lines if re.match(r"\s+\d+\.\d\d  ", ln)]
    assert [ln.split()[1] for ln in listed] == [f.scores.sequence.id for f in worst]
    assert "'read block <*>'" in text or "'open <*>'" in text or "'done'" in text  # template text shown
    assert lines[-1].startswith("  full output: out.jsonl")


def test_detection_summary_of_a_stream_counts_its_anomalous_events():
    """A log parsed without grouping is one stream: the summary said '1 of 1 sequences anomalous (100.0%)'
    beside a promise per event ('about 4.98 in 1,000 normal events flagged') and never how many events of
    the stream were anomalous (9 of 2,008 on OpenStack_2k), the count that promise is about."""
    from test_detect import TableModel, session

    from seqrnn.data.formats import Sequence
    from seqrnn.detect import Detector
    from seqrnn.report.summary import detection_summary

    held_out = [session(["a", "b", "c", "b"])]
    detector = Detector(TableModel(), threshold=0.2).fit(held_out, validation_data=held_out)
    stream = Sequence("stream", ["a", "b", "c", "b", "x", "a"], "<test>", 1, complete=False)
    lines = detection_summary(detector.model, detector, detector.decide([stream]).findings).splitlines()
    assert lines[:2] == ["1 of 1 sequences anomalous (100.0%)", "  anomalous events: 2 of 6 (33.33%) in the stream"]
    sessions = detection_summary(detector.model, detector, detector.decide(held_out).findings)
    assert "anomalous events" not in sessions


def test_unknown_note_counts_the_input_events_not_the_ends():
    """Another system's log parsed into sessions of one line each (HDFS_2k through an OpenStack model):
    every event was unknown, yet with each session's end counted as an event read (always known) the share
    was 50% and the note, for more than half, was not given (or said '50%' where none was known)."""
    from test_detect import TableModel, session

    from seqrnn.report.summary import unknown_note
    from seqrnn.score import score_sequences

    table = TableModel()
    one_line = [session(["x"], f"s{i}") for i in range(20)]
    findings = [type("F", (), {"scores": sc})() for sc in score_sequences(table, one_line)]
    assert unknown_note(table, findings).startswith("  note: 100% of the events read are unknown to the model")
    known = [type("F", (), {"scores": sc})() for sc in score_sequences(table, [session(["a", "x"])] * 3)]
    assert unknown_note(table, known) == ""  # half of them: not most


def test_detection_summary_shows_a_uuid_session_id_whole():
    """OpenStack sessions are instances named by UUID (36 characters): the summary cut them at 28
    ('b562ef10-ba2d-48ae-bf4a-186…'), an id no one can paste into grep or the next command."""
    from test_detect import TableModel, session

    from seqrnn.detect import Detector
    from seqrnn.report.summary import detection_summary

    held_out = [session(["a", "b", "c", "b"])]
    detector = Detector(TableModel(), threshold=0.2).fit(held_out, validation_data=held_out)
    uuid = "b562ef10-ba2d-48ae-bf4a-18666cba4a51"
    text = detection_summary(detector.model, detector, detector.decide([session(["a", "x"], uuid)]).findings)
    assert f"  {uuid}  unseen event" in text, text
    longer = "x" * 50
    text = detection_summary(detector.model, detector, detector.decide([session(["a", "x"], longer)]).findings)
    assert "x" * 35 + "…  unseen event" in text, text


def test_detect_ends_with_the_summary(capsys, toy, tmp_path):
    out = tmp_path / "found.jsonl"
    code, stdout, err = run_cli(capsys, "detect", toy / "model", toy / "normal", toy / "abnormal", "-o", out,
                                "--templates", toy / "templates.csv")
    assert code == 0 and stdout == ""
    assert "sequences anomalous" in err and "by reason:" in err and "highest scores" in err
    assert f"full output: {out}" in err and "false-positive rate promised by the calibration" in err
    assert "judged event by event" not in err  # sessions: the promise is theirs


def test_a_stream_judged_by_a_session_calibration_is_told_the_promise_is_per_session(capsys, toy, tmp_path):
    events = tmp_path / "events.log"
    events.write_text("a\nb\nc\nd\na\nb\nz\nc\nd\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", events, "--format", "stream", "-o", tmp_path / "s.jsonl")
    assert code == 0 and "false-positive rate promised by the calibration" in err
    assert ("  a stream is judged event by event against cuts calibrated on whole sessions: that rate is per "
            "session, not per event of a stream") in err.splitlines()


def test_the_summary_says_a_fixed_rule_is_outside_the_promise(capsys, toy, tmp_path):
    for flags, rule in ((("--top-g", "3"), "--top-g 3"), (("--threshold", "0.01"), "--threshold 0.01"), ((), None)):
        code, _, err = run_cli(capsys, "detect", toy / "model", toy / "abnormal", "-o", tmp_path / "f.jsonl", *flags)
        assert code == 0 and "false-positive rate promised by the calibration" in err
        said = [ln for ln in err.splitlines() if "is outside the budget" in ln]
        if rule is None:
            assert said == []
        else:
            assert said == [f"  {rule} replaces the surprise view's calibrated cut: that rule is outside the budget, "
                            "so the rate above does not bound its false positives"]


def test_the_summary_quotes_text_events_that_are_blank():
    from seqrnn.report.summary import readable_event

    assert [readable_event(e) for e in ("22", "E5", "?", " ", "\n", "")] == ["22", "E5", "?", "' '", "'\\n'", "''"]


def test_detect_plots_ids_and_events_with_dollar_signs_as_text(capsys, toy, tmp_path):
    """Panel titles hold ids and reasons from the data: '$x^$' is text, not TeX that fails to parse."""
    (tmp_path / "s").write_text("a$x^$,a b c $\\frac{ d\nb$,a " + "b " * 30 + "c d\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "-o", tmp_path / "found.jsonl",
                           "--plot", tmp_path / "plots")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["histogram.png", "nll.png", "probability.png"]


def test_decisions_in_blocks_equal_one_call(toy):
    from seqrnn.progress import decide

    detector, seqs, d = decisions_of(toy)
    by_events = len(detector.model.vocab_) * 40  # blocks of about 40 events' log-probabilities
    for blocks in (decide(detector, seqs, enabled=False, chunk=7), decide(detector, seqs, enabled=False,
                                                                          floats=by_events)):
        assert len(blocks.findings) == len(seqs)
        assert np.array_equal(blocks.anomalous, d.anomalous) and np.allclose(blocks.scores, d.scores)
        assert [f.reason for f in blocks.findings] == [f.reason for f in d.findings]


def test_blocks_hold_a_bounded_number_of_sequences_and_events():
    from seqrnn.progress import _blocks

    seqs = [[0] * n for n in (3, 3, 3, 50, 1, 1, 3)]  # each counted with its end: 4 4 4 51 2 2 4
    assert _blocks(seqs, 100, 9) == [(0, 2), (2, 3), (3, 4), (4, 7)]  # the long one alone
    assert _blocks(seqs, 2, 1000) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert _blocks(seqs, 100, 1000) == [(0, 7)]
    assert _blocks([], 100, 1000) == [(0, 0)]


# --- the HTML page ---------------------------------------------------------------------------------
def images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)]


def test_report_of_a_model_with_labelled_data(capsys, toy, tmp_path):
    out = tmp_path / "r" / "report.html"
    code, _, err = run_cli(capsys, "report", toy / "model", "--normal", toy / "normal", "--abnormal",
                           toy / "abnormal", "--train", toy / "train", "--prevalence", "0.05", "-o", out)
    assert code == 0 and f"report: {out}" in err
    html = out.read_text(encoding="utf-8")
    assert "default-src 'none'" in html and "<script" not in html
    assert re.findall(r'\b(?:src|href)="([^"#d][^"]*)"', html) == []  # data: URIs and anchors only
    pngs = images(html)
    assert len(pngs) == html.count("<img ") >= 6 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    for heading in ("At a glance", "Data", "Model", "Training", "Detection", "Anomalous sequences"):
        assert f">{heading}</h2>" in html
    assert "F1 at prevalence 0.05" in html and "false-positive rate promised" in html
    # template text from the templates.csv beside the data, found without --templates
    assert "read block &lt;*&gt;" in html
    assert "never seen in training" in html  # x1's unseen event z
    # the reasons table keeps the anomalies found apart from the false alarms, and agrees with the metrics
    plain = re.sub(r"<(t[hdr])\b[^>]*>", r"<\1>", html)

    def rows_after(marker: str) -> list[list[str]]:
        table = plain.split(marker, 1)[1].split("</table>", 1)[0]
        cells = [re.findall(r"<t[hd]>(.*?)</t[hd]>", r) for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
        return [[int(c.replace(",", "")) if c.replace(",", "").isdigit() else c for c in row] for row in cells]

    head, *reasons = rows_after("Why sequences were flagged</h3>")
    assert head == ["reason", "anomalous test (found)", "normal test (false alarms)"] and reasons
    found, false_alarms = rows_after("<th>found</th>")[0][:2]  # the metrics table after its first header
    assert sum(r[1] for r in reasons) == found > 0 and sum(r[2] for r in reasons) == false_alarms


def test_report_without_data_and_of_a_compare_output(capsys, toy, tmp_path):
    from seqrnn.data.formats import read_sessions
    from seqrnn.experiments.compare import compare, write_outputs

    code, _, _ = run_cli(capsys, "report", toy / "model", "-o", tmp_path / "m.html")
    html = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert code == 0 and ">Training</h2>" in html and ">Detection</h2>" not in html

    result = compare(["markov1", "count"], read_sessions(str(toy / "train")), read_sessions(str(toy / "normal")),
                     read_sessions(str(toy / "abnormal")))
    write_outputs(result, str(tmp_path / "cmp"))
    code, _, _ = run_cli(capsys, "report", tmp_path / "cmp", "-o", tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert code == 0 and "<td>markov1</td>" in html and "<td>count</td>" in html and len(images(html)) == 1


def test_report_refuses_what_it_cannot_read(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "report", tmp_path / "empty", "-o", tmp_path / "x.html")
    assert code == 2 and str(tmp_path / "empty") in err and "not a model directory" in err
    (tmp_path / "f.txt").write_text("hello\n")
    code, _, err = run_cli(capsys, "report", tmp_path / "f.txt")
    assert code == 2 and "tune study" in err
    code, _, err = run_cli(capsys, "report", tmp_path / "nothing")
    assert code == 2 and "no such file" in err
    assert not (tmp_path / "x.html").exists()


def test_report_refuses_a_model_whose_detector_is_refused(capsys, toy, tmp_path):
    """A detector file that is there and refused is an error, as for detect (the page never leaves detection
    out in silence); no detector file at all is a model shown without detection."""
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(toy / "model", model)
    cal = json.loads((model / "detector.json").read_text())
    (model / "detector.json").write_text(json.dumps({**cal, "target_fpr": 0.3}))
    code, _, err = run_cli(capsys, "report", model, toy / "normal", "-o", tmp_path / "r.html")
    assert code == 2 and err.startswith(f"seqrnn report: error: {model}: detector.json changed after"), err
    assert not (tmp_path / "r.html").exists()
    (model / "detector.json").unlink()
    code, _, err = run_cli(capsys, "report", model, toy / "normal", "-o", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert code == 0 and ">Training</h2>" in html and ">Detection</h2>" not in html, err


def test_report_of_a_tune_study(capsys, tmp_path):
    optuna = pytest.importorskip("optuna")
    from seqrnn.experiments.tune import quiet_optuna

    quiet_optuna(False)
    path = tmp_path / "s.db"
    study = optuna.create_study(study_name="seqrnn", storage=f"sqlite:///{path}", direction="minimize")
    study.set_user_attr("objective", "val_loss")
    for i, v in enumerate((0.9, 0.5, 0.7)):
        t = study.ask()
        t.suggest_int("hidden", 8, 64)
        t.set_user_attr("settings", {"hidden": 8 + i})
        t.set_user_attr("epochs", 2)
        study.tell(t, v)
    code, _, err = run_cli(capsys, "report", path, "-o", tmp_path / "t.html")
    html = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert code == 0 and ">Hyper-parameter search</h2>" in html and "trial 1" in html
    assert html.count("<td>complete</td>") == 3 and len(images(html)) >= 1


# --- the demo ------------------------------------------------------------------------------------------
def test_demo_runs_its_steps_in_order_and_a_new_step_slots_in(tmp_path):
    from seqrnn.demo import STEPS, Step, run_demo

    assert [s.name for s in STEPS] == ["data", "parse", "train", "calibrate", "detect", "compare", "report"]
    seen = []

    def parse(run):
        seen.append(sorted(run.files))
        return "parsed"

    summary = run_demo(str(tmp_path / "run"), steps=[STEPS[0], Step("parse", "parse raw logs", parse)], quiet=True)
    assert seen == [["hdfs_templates.csv", "hdfs_test_abnormal", "hdfs_test_normal", "hdfs_train"]]
    assert list(summary["seconds"]) == ["data", "parse", "total"]
    assert (tmp_path / "run" / "data" / "hdfs_train").stat().st_size > 100_000


def test_the_demo_parses_the_shipped_raw_log_into_block_sessions(tmp_path):
    from seqrnn.data.formats import read_sequences
    from seqrnn.demo import STEPS, run_demo

    run_demo(str(tmp_path / "run"), steps=[s for s in STEPS if s.name == "parse"], quiet=True)
    parsed = tmp_path / "run" / "data" / "parsed"
    sessions = read_sequences([str(parsed)], "sessions")
    assert len(sessions) > 1000 and all(s.id.startswith("blk_") for s in sessions)
    assert sum(1 for _ in open(parsed / "templates.csv")) - 1 >= 10  # a header line, then the templates


def test_demo_refuses_bad_flags_before_training(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "d", "--baselines", "markov1,nope")
    assert code == 2 and "unknown model 'nope'" in err
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "d", "--epochs", "0")
    assert code == 2 and "--epochs" in err
    assert not (tmp_path / "d").exists()


def test_report_of_a_text_model_shows_its_curve_and_samples(capsys, tmp_path):
    from seqrnn.models.rnn import RNNModel

    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log. " * 40, encoding="utf-8")
    RNNModel(hidden=16, embedding_dim=8, layers=1, batch_size=4, chunk=10, seed=0, threads=1, epochs=2).fit(
        str(text), format="text", model_dir=str(tmp_path / "m"), verbose=0)
    code, _, _ = run_cli(capsys, "report", tmp_path / "m", "-o", tmp_path / "t.html")
    html = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert code == 0 and ">Training</h2>" in html and ">Detection</h2>" not in html
    samples = re.findall(r"<h3>temperature ([0-9.]+)</h3><pre>(.*?)</pre>", html, re.S)
    assert [t for t, _ in samples] == ["0.2", "0.5", "1.0", "1.2"]
    assert all(len(s) >= 250 and set(s) <= set("the catsondmlg.") for _, s in samples)


def test_templates_of_a_parsed_folder_are_read_by_id(tmp_path):
    from seqrnn.parse.folder import read_templates
    from seqrnn.report import load_templates

    (tmp_path / "templates.csv").write_text('id,template,count\n1,PacketResponder <*> terminating,3\n'
                                            '2,"Receiving block <*>, size <*>",5\n')
    assert load_templates(str(tmp_path / "templates.csv")) == {
        "1": "PacketResponder <*> terminating", "2": "Receiving block <*>, size <*>"}
    assert load_templates(str(tmp_path / "templates.csv")) == read_templates(str(tmp_path))
