"""What a person reads: the demo's run folder, report's output path, detect's summary and JSON, counts."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, write_toy_sessions


# --- seqrnn demo -o DIR --------------------------------------------------------------------------------
def test_demo_refuses_a_folder_of_other_files_and_reuses_a_previous_run(capsys, tmp_path):
    from seqrnn.demo import STEPS, run_demo

    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me\n")
    (mine / "data" / "precious").write_text("keep me too\n")
    code, _, err = run_cli(capsys, "demo", "-o", mine, "--baselines", "none")
    assert code == 2 and f"{mine}: folder is not empty and not a previous demo run" in err
    assert "notes.txt" in err and "data/precious" in err and "Traceback" not in err
    assert sorted(p.name for p in mine.rglob("*")) == ["data", "notes.txt", "precious"]  # nothing written
    (tmp_path / "model-only" / "model").mkdir(parents=True)  # a user's model folder alone: not a demo's
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "model-only")
    assert code == 2 and "it has no data/ or run.json" in err
    (tmp_path / "a-file").write_text("x")
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "a-file")
    assert code == 2 and "a-file: not a folder" in err

    run = tmp_path / "run"
    run.mkdir()  # empty: used as it is, without a word about reuse
    run_demo(str(run), steps=[STEPS[0]])
    assert "previous demo run" not in capsys.readouterr().err
    run_demo(str(run), steps=[STEPS[0]])  # its own data/: a previous run, reused
    assert f"{run} holds a previous demo run: reusing it, its files are overwritten" in capsys.readouterr().err


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A markov model directory with its detector, trained on toy sessions (a b.. c [e] d)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from seqrnn.cli import main

    root = tmp_path_factory.mktemp("toy")
    write_toy_sessions(root / "train", n=120, seed=1)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["train", str(root / "train"), "--model", "markov", "--model-dir", str(root / "model")]) == 0
    return root


# --- seqrnn report -o DIR ------------------------------------------------------------------------------
def test_report_into_an_existing_folder_writes_report_html_there(capsys, toy, tmp_path):
    code, _, err = run_cli(capsys, "report", toy / "model", "-o", tmp_path)
    assert code == 0 and (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"report: {tmp_path / 'report.html'} (" in err
    (tmp_path / "sub" / "report.html").mkdir(parents=True)  # the file's place taken by a folder
    code, _, err = run_cli(capsys, "report", toy / "model", "-o", tmp_path / "sub")
    assert code == 2 and err.strip() == f"seqrnn report: error: {tmp_path / 'sub' / 'report.html'}: Is a directory"


def test_an_atomic_write_names_the_path_asked_for_not_its_temporary_file(tmp_path):
    from seqrnn.artifacts import atomic_write_text

    with pytest.raises(IsADirectoryError) as exc:
        atomic_write_text(str(tmp_path), "x")
    assert exc.value.filename == str(tmp_path) and list(tmp_path.iterdir()) == []  # no temporary file left


# --- detect's summary ------------------------------------------------------------------------------------
def test_the_summary_shortens_a_long_template_never_the_file_line_pointer(capsys, toy, tmp_path):
    name = "sessions_of_the_night_shift_" + "x" * 12
    (tmp_path / name).write_text("x1,a b c z d\n", encoding="utf-8")
    long = "Unexpected error trying to delete block <*> BlockInfo not found in volumeMap " * 3
    (tmp_path / "t.csv").write_text(f"id,template\nz,{long}\na,open <*>\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / name, "--templates", tmp_path / "t.csv",
                           "--output", tmp_path / "found.jsonl")
    assert code == 0, err
    [line] = [ln for ln in err.splitlines() if "(at " in ln]
    assert line.endswith(f" (at {name}:1)") and len(line) <= 120  # the pointer whole, within the width
    assert f"event z '{long[:30]}" in line and "…' (at" in line  # the template shortened instead
    (tmp_path / "t.csv").write_text("id,template\nz,Unexpected error\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / name, "--templates", tmp_path / "t.csv",
                           "--output", tmp_path / "found.jsonl")
    assert f"event z 'Unexpected error' (at {name}:1)" in err  # a short one whole


def test_the_summary_escapes_control_characters_of_ids_events_and_templates(capsys, toy, tmp_path):
    """A log's escape sequences (in a session id, an event, a template) never reach the terminal: the summary
    shows them escaped; the JSON keeps the data as it is."""
    sid, event = "x\x1b[2J\x1b]0;owned\x07", "z\x1b[31m"
    (tmp_path / "s").write_text(f"{sid},a b c {event} d\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text(f"id,template\n\"{event}\",red \x1b[1mbold\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "--templates", tmp_path / "t.csv")
    assert code == 0, err
    assert json.loads(out)["id"] == sid and json.loads(out)["event"] == event
    assert "\x1b" not in err and "\x07" not in err
    assert "x\\x1b[2J\\x1b]0;owned\\x07" in err and "event z\\x1b[31m 'red \\x1b[1mbold'" in err


def test_predicts_table_escapes_control_characters_of_an_id_and_its_file(capsys, toy, tmp_path):
    """predict's table goes to a terminal too: a session id (or file name) holding an escape sequence is shown
    escaped; --json keeps it as it is."""
    sid = "x\x1b[2J\x1b]0;owned\x07"
    path = tmp_path / "s\x1b[31m"
    path.write_text(f"{sid},a b c d\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "predict", toy / "model", path)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert out.startswith("== x\\x1b[2J\\x1b]0;owned\\x07 (") and "s\\x1b[31m:1)" in out.splitlines()[0]
    code, out, err = run_cli(capsys, "predict", toy / "model", path, "--json")
    assert code == 0 and json.loads(out)["id"] == sid


def test_detect_says_when_most_events_are_unknown_to_the_model(capsys, toy, tmp_path):
    """A session model given text (or another numbering, a raw log) flags everything as unseen events: the
    summary says the input is the likely cause, naming what the model trained on; its own kind of data does
    not get the note."""
    (tmp_path / "t.txt").write_text("xyz quux\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "t.txt", "--format", "text")
    assert code == 0, err
    assert "note: 100% of the events read are unknown to the model (it was trained on sessions of " in err
    write_toy_sessions(tmp_path / "s", n=20, seed=2)
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s")
    assert code == 0 and "unknown to the model" not in err


def test_detect_says_when_a_file_of_one_event_per_line_was_read_as_sessions(capsys, toy, tmp_path):
    """--format stream forgotten: every line of a file of events is a session of one event, each flagged by
    its counts, and the summary said nothing of why (no event is unknown). It now names --format stream;
    the same events read as a stream, or a model of one-event sessions, get no such note."""
    from conftest import toy_session_lines

    events = [tok for line in toy_session_lines(5, seed=3) for tok in line.split(",", 1)[1].split()]
    (tmp_path / "events.log").write_text("\n".join(events) + "\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "events.log")
    assert code == 0, err
    assert (f"note: {len(events)} of {len(events)} sequences hold a single event, where the model's training "
            "sessions held ") in err
    assert "a file of one event per line is read as one sequence with --format stream" in err
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "events.log", "--format", "stream")
    assert code == 0 and "single event" not in err
    # one-line sessions of events the model never saw (another system's parsed log): the unknown-events
    # note is the one that applies, not --format stream
    (tmp_path / "other.log").write_text("\n".join(f"e{i}" for i in range(30)) + "\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "other.log")
    assert code == 0 and "100% of the events read are unknown to the model" in err and "single event" not in err
    code, _, err = run_cli(capsys, "train", tmp_path / "events.log", "--model", "markov", "--model-dir",
                           tmp_path / "m1")
    assert code == 0, err
    code, _, err = run_cli(capsys, "detect", tmp_path / "m1", tmp_path / "events.log")
    assert code == 0 and "single event" not in err
    code, _, err = run_cli(capsys, "train", tmp_path / "events.log", "--model-dir", tmp_path / "m2", "--hidden",
                           "4", "--embedding-dim", "2", "--layers", "1", "--epochs", "1", "--threads", "1",
                           "--no-calibration")
    assert code == 0 and "or read a file of one event per line as one sequence with --format stream" in err


def test_trains_single_event_note_fits_its_input(capsys, tmp_path):
    """A parsed folder of one-event sessions is told to train on its events (--format stream); a file, to
    read its lines as one sequence."""
    from seqrnn.cli.train import _warn_short_sessions
    from seqrnn.data.formats import Sequence

    seqs = [Sequence(f"s{i}", ["a"]) for i in range(12)]
    (tmp_path / "parsed").mkdir()
    (tmp_path / "parsed" / "parse.json").write_text("{}")
    _warn_short_sessions(seqs, [str(tmp_path / "parsed")])
    assert "or train on the folder's events as one sequence with --format stream" in capsys.readouterr().err
    _warn_short_sessions(seqs, [str(tmp_path / "events.log")])
    assert "or read a file of one event per line as one sequence with --format stream" in capsys.readouterr().err


def test_detects_output_file_appears_whole_or_not_at_all(capsys, toy, tmp_path, monkeypatch):
    """-o FILE is written under a temporary name and renamed when done: a run that fails (or is killed) while
    writing leaves the previous file as it was and no temporary file; /dev/null is written as it is."""
    from seqrnn.report.lines import FindingLines

    write_toy_sessions(tmp_path / "s", n=30, seed=3)
    out = tmp_path / "out" / "decisions.jsonl"
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "-o", out)
    assert code == 0, err
    whole = out.read_text()
    assert len(whole.splitlines()) == 30
    calls = []
    real = FindingLines.__call__

    def fails_on_the_third(self, finding):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, finding)

    monkeypatch.setattr(FindingLines, "__call__", fails_on_the_third)
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "-o", out)  # Ctrl-C while writing
    assert code == 130 and len(calls) == 3 and out.read_text() == whole  # the previous decisions, not two lines of new ones
    assert sorted(p.name for p in out.parent.iterdir()) == ["decisions.jsonl"]
    monkeypatch.setattr(FindingLines, "__call__", real)
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "-o", "/dev/null")
    assert code == 0, err
    link = tmp_path / "link.jsonl"
    link.symlink_to(out)
    out.write_text("old\n")
    code, _, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "-o", link)
    assert code == 0 and link.is_symlink() and out.read_text() == whole  # written through the link


def test_detect_never_writes_over_its_input_or_one_output_over_the_other(capsys, toy, tmp_path):
    data = tmp_path / "s"
    data.write_text("x1,a b c d\nx2,a b z d\n", encoding="utf-8")
    for flags, shown in ((["-o", data], "--output"), (["--events", tmp_path / "." / "s"], "--events"),
                         (["-o", data, "--follow"], "--output")):
        code, _, err = run_cli(capsys, "detect", toy / "model", data, *flags)
        assert code == 2 and f"{shown} " in err and "is one of the inputs" in err, err
        assert data.read_text(encoding="utf-8") == "x1,a b c d\nx2,a b z d\n"  # the data is still there
    code, _, err = run_cli(capsys, "detect", toy / "model", data, "-o", tmp_path / "x", "--events", tmp_path / "x")
    assert code == 2 and "--output and --events are the same file" in err and not (tmp_path / "x").exists()
    assert run_cli(capsys, "detect", toy / "model", data, "-o", tmp_path / "x", "--events", tmp_path / "y")[0] == 0


# --- detect's JSON ---------------------------------------------------------------------------------------
def test_the_end_of_a_sequence_has_a_readable_template(capsys, toy, tmp_path):
    (tmp_path / "s").write_text("x1,a b c d d\nx2,a b c\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text("id,template\na,open <*>\nb,read <*>\nc,close <*>\nd,done\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "detect", toy / "model", tmp_path / "s", "--templates", tmp_path / "t.csv")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(r["anomalous"] for r in rows)
    pairs = [(e, t) for r in rows for e, t in [(r["event"], r["event_template"]),
                                                *zip(r.get("expected", []), r.get("expected_templates", []))]]
    assert ("<end>", "<end of sequence>") in pairs and ("d", "done") in pairs
    assert all(t is not None for e, t in pairs if e != "e")  # only an event without a template has none


# --- counts in text a person reads -----------------------------------------------------------------------
def test_human_separates_thousands_and_marks_what_is_missing():
    from seqrnn.progress import human

    assert [human(v) for v in (7, 2098, 1234567, None, True)] == ["7", "2,098", "1,234,567", "-", "True"]
    assert human(12.345, ".1f") == "12.3" and human("n/a") == "n/a"


def test_counts_read_with_thousands_separated_in_train_info_detect_and_follow(capsys, monkeypatch, tmp_path):
    import io
    import sys
    from types import SimpleNamespace

    write_toy_sessions(tmp_path / "train", n=1200, seed=3)
    (tmp_path / "odd").write_text("".join(f"y{i},a z d\n" for i in range(1100)), encoding="utf-8")
    code, _, err = run_cli(capsys, "train", tmp_path / "train", "--model", "markov", "--model-dir", tmp_path / "m")
    assert code == 0 and "saved" in err, err
    code, out, _ = run_cli(capsys, "info", tmp_path / "m")
    assert code == 0 and "training   1,080 sequences, " in out  # 10% held out for validation
    events = int(out.split("sequences, ")[1].split(" events")[0].replace(",", ""))
    assert events > 1000 and f"sequences, {events:,} events (validation apart)" in out
    code, out, err = run_cli(capsys, "detect", tmp_path / "m", tmp_path / "odd", "--only-anomalous")
    assert code == 0 and err.splitlines()[:2] == ["1,100 of 1,100 sequences anomalous (100.0%)",
                                                  "  by reason: unseen event 1,100"]
    assert json.loads(out.splitlines()[0])["length"] == 3  # JSON keeps plain numbers
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO((tmp_path / "odd").read_bytes())))
    code, _, err = run_cli(capsys, "detect", tmp_path / "m", "-", "--follow", "--output", tmp_path / "f.jsonl")
    assert code == 0 and "\n1,100 of 1,100 sequences anomalous\n" in "\n" + err  # then the promise, the output


# --- one reader of template files, one save --------------------------------------------------------------
def test_a_parsed_folders_templates_are_read_by_the_one_template_reader(tmp_path):
    from seqrnn.errors import InputError
    from seqrnn.parse.folder import read_templates
    from seqrnn.report import load_templates

    (tmp_path / "templates.csv").write_bytes(b'\xef\xbb\xbfid,template,count\n1,"open <*>, then read",3\n2,close,1\n')
    assert read_templates(str(tmp_path)) == load_templates(str(tmp_path / "templates.csv")) == {
        "1": "open <*>, then read", "2": "close"}
    (tmp_path / "templates.csv").write_bytes(b"id,template,count\n1,open,3\n2,clos\xe9,1\n")
    with pytest.raises(InputError, match=r"templates.csv:3: .*not UTF-8"):  # was a UnicodeDecodeError
        read_templates(str(tmp_path))
    (tmp_path / "templates.csv").write_text("id,template,count\n1,open,3\n2\n")
    with pytest.raises(InputError, match=r"templates.csv:3: expected id,template,count"):
        read_templates(str(tmp_path))


def test_every_model_kind_saves_through_one_save():
    from seqrnn.models.base import SavedModel, SequenceModel
    from seqrnn.models.classifier import SequenceClassifier

    assert SequenceClassifier.save is SequenceModel.save is SavedModel.save
