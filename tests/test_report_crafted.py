"""``seqrnn report`` on inputs edited by hand or broken: one line naming the file, exit 2, never a traceback;
data from the inputs never runs as script in the page."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

# compare.json edited by hand: each one a file no compare writes, each refused naming the file and the key
BAD_COMPARE = [
    ([], "an object"),
    ({"table": 5}, '"table"'),
    ({"table": {"m": 5}}, '"table" / "m"'),
    ({"table": {"m": {"f1": "x"}}}, '"table" / "m" / "f1"'),
    ({"table": {"m": {"f1": {"mean": "x"}}}}, '"table" / "m" / "f1" / "mean"'),
    ({"table": {"m": {"f1": {"mean": 1, "std": "s"}}}, "repeat": 2}, '"std"'),
    ({"table": {"m": {"f1": {"mean": True}}}}, '"mean"'),
    ({"sequences": {"train": "many"}}, '"sequences" / "train"'),
    ({"sequences": {"train": 1e400}}, '"sequences" / "train"'),
    ({"sequences": 3}, '"sequences"'),
    ({"prevalence": "a"}, '"prevalence"'),
    ({"repeat": "2"}, '"repeat"'),
    ({"repeat": 0}, '"repeat"'),
]


def test_a_compare_output_with_missing_keys_nan_and_markup_is_shown_escaped(capsys, tmp_path):
    """What compare writes may lack a key (older versions) or hold NaN (a metric without both labels):
    shown as a dash; model names are data and never markup."""
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(
        '{"table": {"<script>alert(1)</script>": {"f1": {"mean": NaN, "std": null}, "recall": {"mean": 0.5}}},'
        ' "sequences": {"train": 7}}')
    code, _, err = run_cli(capsys, "report", folder, "-o", tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert code == 0, err
    assert "<script" not in html and "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in html
    assert "same 7 normal sequences" in html and '<td class="n">0.5000</td>' in html


BAD_RUN = [
    ({"model": "m", "train": "data/hdfs_train"}, '"train"'),
    ({"model": "m", "train": [5]}, '"train"'),
    ({"model": "m", "compare": 5}, '"compare"'),
    ({"model": "m", "templates": 5}, '"templates"'),
    ({"model": "m", "prevalence": "x"}, '"prevalence"'),
    ({"model": "m", "prevalence": 7}, '"prevalence"'),
    ({"model": "m", "title": ["t"]}, '"title"'),
    ({"model": "m", "normal": ["n"]}, '"normal" and "abnormal"'),
]


EDITED = [("compare.json", doc, named) for doc, named in BAD_COMPARE] + [("run.json", doc, named)
                                                                          for doc, named in BAD_RUN]


@pytest.mark.parametrize("name,doc,named", EDITED, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(EDITED)])
def test_a_compare_or_run_file_edited_by_hand_is_refused_naming_the_key(capsys, tmp_path, name, doc, named):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / name).write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "report", folder, "-o", tmp_path / "r.html")
    assert code == 2, err
    assert err.startswith(f"seqrnn report: error: {folder / name}: ") and named in err, err
    assert err.count("\n") == 1 and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("content", [b"SQLite format 3\x00", b"SQLite format 3\x00" + b"\x00garbage" * 20])
def test_a_truncated_study_file_is_refused(capsys, tmp_path, content):
    pytest.importorskip("optuna")
    path = tmp_path / "s.db"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "report", path, "-o", tmp_path / "t.html")
    assert code == 2 and err.startswith(f"seqrnn report: error: {path}: ") and "study" in err, err
    assert err.count("\n") == 1 and not (tmp_path / "t.html").exists()


def test_a_pipe_given_as_dir_is_named_as_what_it_is(capsys, tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "report", fifo, "-o", tmp_path / "t.html")
    assert code == 2 and "not a file or folder" in err and "no such" not in err, err


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny classifier directory, its normal and anomalous sessions (anomalous: an event d the normal
    ones lack)."""
    from seqrnn.models.classifier import SequenceClassifier

    root = tmp_path_factory.mktemp("clf")
    normal = root / "normal"
    normal.write_text("".join(f"n{i},a b c {'b ' * (i % 3)}c\n" for i in range(40)))
    abnormal = root / "abnormal"
    abnormal.write_text("".join(f"x{i},a d {'b ' * (i % 3)}c\n" for i in range(20)))
    from seqrnn.data.formats import read_sessions

    seqs = read_sessions(str(normal)) + read_sessions(str(abnormal))
    y = [False] * 40 + [True] * 20
    SequenceClassifier(hidden=8, embedding_dim=8, attention=8, epochs=3, seed=0).fit(
        seqs, y, model_dir=str(root / "model"), verbose=0)
    return root


def test_report_of_a_classifier_judges_the_labelled_data_given(capsys, classifier, tmp_path):
    """The data given to judge a classifier was read and left out of the page without a word; now its
    metrics are shown, computed as classify evaluate computes them."""
    import re

    from seqrnn.metrics import detection_metrics
    from seqrnn.models.classifier import load_classifier

    root = classifier
    code, _, err = run_cli(capsys, "report", root / "model", "--normal", root / "normal", "--abnormal",
                           root / "abnormal", "-o", tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert code == 0, err
    assert ">Classification</h2>" in html and "<script" not in html
    clf = load_classifier(str(root / "model"))
    from seqrnn.data.formats import read_sessions

    seqs = read_sessions(str(root / "normal")) + read_sessions(str(root / "abnormal"))
    scores = clf.decision_function(seqs)
    y = [False] * 40 + [True] * 20
    m = detection_metrics(y, scores > clf.threshold_, scores)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html.split(">Classification</h2>", 1)[1])
    assert cells[:4] == [f"{m['tp']:,}", f"{m['fp']:,}", f"{m['fn']:,}", f"{m['tn']:,}"], cells[:6]


def test_report_of_a_model_without_detector_says_the_data_was_not_judged(capsys, toy_model_without_detector,
                                                                          tmp_path):
    model, normal = toy_model_without_detector
    code, _, err = run_cli(capsys, "report", model, normal, "-o", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert code == 0 and "not judged" in html and "seqrnn calibrate" in html, err
    assert "not judged" in err and "seqrnn calibrate" in err


@pytest.fixture
def toy_model_without_detector(tmp_path):
    from conftest import TINY_SETTINGS, write_toy_sessions

    from seqrnn.models.rnn import RNNModel

    train = write_toy_sessions(tmp_path / "train", n=40, seed=1)
    RNNModel(**{**TINY_SETTINGS, "epochs": 1}).fit(str(train), model_dir=str(tmp_path / "model"), verbose=0)
    return tmp_path / "model", train


def test_ids_events_templates_and_title_holding_markup_are_text_on_the_page(capsys, tmp_path):
    """Session ids, events, template text and the title come from the user's files: each is escaped, so no
    element or attribute of the page comes from data."""
    import re

    from conftest import TINY_SETTINGS, write_toy_sessions

    from seqrnn.detect import Detector
    from seqrnn.models.rnn import RNNModel

    train = write_toy_sessions(tmp_path / "train", n=40, seed=1)
    model = RNNModel(**{**TINY_SETTINGS, "epochs": 1}).fit(str(train), model_dir=str(tmp_path / "m"), verbose=0)
    Detector(model).fit(str(train)).save(str(tmp_path / "m"))
    data = tmp_path / "evil"
    data.write_text('<img/src=x/onerror=alert(1)>,a <script>alert(2)</script> b </td></tr><b>x</b> c\n'
                    '"><svg/onload=alert(3)>,a b c $x^{$ d\n', encoding="utf-8")
    templates = tmp_path / "t.csv"
    templates.write_text('EventId,EventTemplate\na,<script>alert(4)</script>\nb,"<img src=y onerror=alert(5)>"\n',
                         encoding="utf-8")
    code, _, err = run_cli(capsys, "report", tmp_path / "m", data, "--templates", templates, "--title",
                           "<script>alert(6)</script>", "-o", tmp_path / "e.html")
    html = (tmp_path / "e.html").read_text(encoding="utf-8")
    assert code == 0, err
    assert "&lt;script&gt;alert(6)&lt;/script&gt;" in html and "&lt;img/src=x/onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html and "&quot;&gt;&lt;svg/onload=alert(3)&gt;" in html
    tags = set(re.findall(r"<([a-zA-Z0-9]+)", html))
    assert not tags & {"script", "svg", "b", "iframe", "object"}, tags
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img src="([^"]*)"', html))
    assert len(re.findall(r"<img\b", html)) == len(re.findall(r'<img src="data:image/png;base64,', html))
    assert not re.search(r"<[^>]*\son[a-z]+=", html)  # no event handler attribute in any tag


@pytest.mark.parametrize("flags", [["--normal", "N", "--abnormal", "A"], ["N"], ["--train", "N"],
                                   ["--prevalence", "0.1"], ["--templates", "N"]])
def test_data_given_with_a_compare_output_is_refused_not_ignored(capsys, tmp_path, flags):
    """The data flags apply to a model directory; with a compare output (or a tune study, or a demo run,
    which names its own data) they were read past and left out of the page without a word."""
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps({"table": {}}))
    (tmp_path / "N").write_text("s1,a b\n")
    (tmp_path / "A").write_text("x1,b a\n")
    argv = [str(tmp_path / f) if f in ("N", "A") else f for f in flags]
    code, _, err = run_cli(capsys, "report", folder, *argv, "-o", tmp_path / "c.html")
    verb = "apply" if "--normal" in flags else "applies"
    assert code == 2 and f"{verb} to a model directory" in err and "compare output" in err, err
    assert not (tmp_path / "c.html").exists()


@pytest.mark.parametrize("rows,line", [("1,1e308\n2,-1e308\n", 2), ("1,0.5\n2,nan\n", 3), ("1,0.5\n2,<b>\n", 3)])
def test_a_history_with_values_no_training_writes_is_refused_naming_the_line(capsys, tmp_path, rows, line):
    """A loss of 1e308 then -1e308 (finite) made matplotlib's axis overflow: a traceback."""
    from seqrnn.errors import SeqrnnError
    from seqrnn.report.page import read_history

    (tmp_path / "history.csv").write_text("epoch,loss\n" + rows)
    with pytest.raises(SeqrnnError) as info:
        read_history(str(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / 'history.csv'}:{line}: history.csv is damaged"), str(info.value)


def test_an_output_under_a_file_says_which_part_is_a_file(capsys, tmp_path):
    """-o FILE/x.html said only 'FILE: File exists'."""
    (tmp_path / "f.txt").write_text("x\n")
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps({"table": {}}))
    code, _, err = run_cli(capsys, "report", folder, "-o", tmp_path / "f.txt" / "sub" / "x.html")
    assert code == 2 and err == (f"seqrnn report: error: {tmp_path / 'f.txt' / 'sub' / 'x.html'}: cannot be "
                                 f"written: {tmp_path / 'f.txt'} is a file, not a folder\n"), err


def test_classify_predict_output_under_a_file_says_which_part_is_a_file(capsys, classifier, tmp_path):
    (tmp_path / "f.txt").write_text("x\n")
    out = tmp_path / "f.txt" / "x.jsonl"
    code, _, err = run_cli(capsys, "classify", "predict", classifier / "model", classifier / "normal", "-o", out)
    assert code == 2 and f"{out}: cannot be written: {tmp_path / 'f.txt'} is a file, not a folder" in err, err


def test_a_templates_file_with_an_unclosed_quote_is_refused_naming_its_line(tmp_path):
    """A quote left open swallowed every row after it into one template: event 5 got three lines of text and
    events 6 and 7 none, without a word."""
    from seqrnn.errors import InputError
    from seqrnn.report import load_templates

    path = tmp_path / "t.csv"
    path.write_text('EventId,EventTemplate\n4,fine\n5,"unterminated\n6,ok\n7,ok too\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_templates(str(path))
    assert str(info.value).startswith(f"{path}:3: ") and "quote" in str(info.value), str(info.value)
    path.write_text('EventId,EventTemplate\n4,"a ""quoted"" word, and a comma"\n5,x "y" z\n', encoding="utf-8")
    assert load_templates(str(path)) == {"4": 'a "quoted" word, and a comma', "5": 'x "y" z'}


def test_classify_predict_output_appears_whole_or_not_at_all(capsys, classifier, tmp_path, monkeypatch):
    """classify predict wrote its --output in place: a run that failed half-way left part of a new file over
    the previous one (the README promises every --output appears whole)."""
    import seqrnn.cli.classify as cli

    out = tmp_path / "p.jsonl"
    out.write_text("previous\n")
    real, calls = cli.prediction_dict, []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cli, "prediction_dict", failing)
    code, _, _ = run_cli(capsys, "classify", "predict", classifier / "model", classifier / "normal", "-o", out)
    assert code == 130 and out.read_text() == "previous\n" and [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]
    monkeypatch.setattr(cli, "prediction_dict", real)
    code, _, err = run_cli(capsys, "classify", "predict", classifier / "model", classifier / "normal", "-o", out)
    assert code == 0 and len(out.read_text().splitlines()) == 40, err
