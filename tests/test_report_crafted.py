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


@pytest.mark.parametrize("doc,named", BAD_COMPARE, ids=[str(i) for i in range(len(BAD_COMPARE))])
def test_a_compare_output_edited_by_hand_is_refused_naming_the_key(capsys, tmp_path, doc, named):
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "report", folder, "-o", tmp_path / "c.html")
    assert code == 2, err
    assert err.startswith(f"seqrnn report: error: {folder / 'compare.json'}: ") and named in err, err
    assert err.count("\n") == 1 and not (tmp_path / "c.html").exists()


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


@pytest.mark.parametrize("doc,named", BAD_RUN, ids=[str(i) for i in range(len(BAD_RUN))])
def test_a_run_file_edited_by_hand_is_refused_naming_the_key(capsys, tmp_path, doc, named):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "report", folder, "-o", tmp_path / "r.html")
    assert code == 2, err
    assert err.startswith(f"seqrnn report: error: {folder / 'run.json'}: ") and named in err, err
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
