"""One tailer for detect --follow and watch: rotation, truncation, partial lines; seqrnn watch."""

from __future__ import annotations

import io
import json
import os
import threading
import time

from conftest import run_cli
from test_parse import FMT, hdfs_like, write

from seqrnn.tail import Tailer


def take(gen, n: int, idles: int = 300) -> list:
    """The next ``n`` lines of a Tailer's ``lines(idle=True)`` (fewer if it stays idle ``idles`` polls)."""
    out = []
    while len(out) < n and idles:
        item = next(gen)
        if item is None:
            idles -= 1
        else:
            out.append(item)
    return out


def test_tailer_survives_rotation_and_truncation_with_true_line_numbers(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\ntwo\n")
    gen = Tailer(str(path), poll=0.01).lines(idle=True)
    assert take(gen, 2) == [(1, "one"), (2, "two")]
    with open(path, "a") as fh:  # a line being written is not a line yet
        fh.write("thr")
        fh.flush()
        assert take(gen, 1, idles=5) == []
        fh.write("ee\n")
    assert take(gen, 1) == [(3, "three")]
    # truncated (copytruncate) and written again: read from the start, numbered from 1
    path.write_text("")
    assert take(gen, 1, idles=5) == []
    with open(path, "a") as fh:
        fh.write("after truncation\n")
    assert take(gen, 1) == [(1, "after truncation")]
    # rotated: the old file's last line (written after the move) first, then the new file from line 1
    with open(path, "a") as fh:
        os.rename(path, tmp_path / "app.log.1")
        fh.write("last of the old file\n")
    path.write_text("first of the new file\nsecond\n")
    assert take(gen, 3) == [(2, "last of the old file"), (1, "first of the new file"), (2, "second")]
    gen.close()


def test_detect_follow_reads_through_rotation(tmp_path):
    from seqrnn.follow import lines

    path = tmp_path / "events.log"
    path.write_text("a\nb\n")
    got = []

    def writer():
        time.sleep(0.2)
        os.rename(path, tmp_path / "events.log.1")
        path.write_text("c\n")

    t = threading.Thread(target=writer)
    t.start()
    for item in lines(str(path), poll=0.02):
        got.append(item)
        if len(got) == 3:
            break
    t.join()
    assert got == [(1, "a"), (2, "b"), (1, "c")]


def _trained(capsys, tmp_path):
    lines = []
    for rep in range(12):
        lines.extend(hdfs_like(4, base=10 * rep))
    write(tmp_path / "train.log", lines)
    assert run_cli(capsys, "parse", tmp_path / "train.log", "--log-format", FMT, "--session", r"blk_-?\d+",
                   "--out", tmp_path / "p", "--quiet")[0] == 0
    assert run_cli(capsys, "train", tmp_path / "p", "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0
    return tmp_path / "m"


UNSEEN = "081109 203700 35 WARN dfs.DataNode: Unexpected error trying to delete block blk_-2000"


def test_watcher_alerts_unseen_templates_and_closes_idle_sessions(capsys, tmp_path):
    from seqrnn.detect import Detector
    from seqrnn.parse.grouping import IdGrouper
    from seqrnn.parse.parser import Parser
    from seqrnn.watch import Watcher

    model = _trained(capsys, tmp_path)
    bad = []
    w = Watcher(Detector.load(str(model)), Parser.load(str(model / "parser" / "parser.json")),
                IdGrouper(r"blk_-?\d+"), idle=5, on_malformed=lambda *a: bad.append(a))
    normal = hdfs_like(2, base=500)
    assert [a for i, line in enumerate(normal[:3]) for a in w.feed(i + 1, line, "x.log")] == []
    alerts = w.feed(4, UNSEEN, "x.log")
    assert [a["alert"] for a in alerts] == ["unseen template"]
    assert alerts[0]["location"] == "x.log:4" and alerts[0]["template"] == "Unexpected error trying to delete block <*>"
    assert alerts[0]["parameters"] == ["blk_-2000"] and alerts[0]["line"] == UNSEEN
    assert alerts[0]["session"] == "blk_-2000"  # the session the line joins, to look at
    assert w.feed(5, "not a log line", "x.log") == [] and bad == [("x.log", 5, "does not fit the log format")]
    assert w.tick(time.monotonic()) == []  # nothing idle yet
    closed = w.tick(time.monotonic() + 10)
    assert {a["session"] for a in closed} == {"blk_-2000"} and closed[0]["alert"] == "anomalous session"
    assert closed[0]["events"] == 1 and not w.sessions  # the normal session closed quietly


def test_watch_follows_a_file_through_rotation_and_truncation_alerting_within_a_second(capsys, tmp_path):
    from seqrnn.detect import Detector
    from seqrnn.parse.parser import Parser
    from seqrnn.watch import Watcher, watch

    model = _trained(capsys, tmp_path)
    log = tmp_path / "live.log"
    log.write_text("\n".join(hdfs_like(2, base=700)) + "\n")
    out = io.StringIO()
    w = Watcher(Detector.load(str(model)), Parser.load(str(model / "parser" / "parser.json")),
                __import__("seqrnn.parse.grouping", fromlist=["IdGrouper"]).IdGrouper(r"blk_-?\d+"), idle=30)
    written = {}

    def alerts():
        return [json.loads(line) for line in out.getvalue().splitlines()]

    def writer():
        time.sleep(0.3)
        os.rename(log, tmp_path / "live.log.1")  # rotation
        log.write_text("")
        time.sleep(0.3)
        with open(log, "a") as fh:
            fh.write(UNSEEN + "\n")
        written["rotated"] = time.monotonic()
        while not any(a["location"] == f"{log}:1" for a in alerts()):
            time.sleep(0.01)
        written["rotated_seen"] = time.monotonic()
        log.write_text("")  # truncation
        time.sleep(0.3)
        with open(log, "a") as fh:
            fh.write(UNSEEN.replace("Unexpected error", "Odd failure") + "\n")
        written["truncated"] = time.monotonic()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    seen = {}

    def stop():
        got = [a for a in alerts() if a["alert"] == "unseen template"]
        for a in got:
            seen.setdefault(a["template"], time.monotonic())
        return len(got) >= 2 or time.monotonic() > deadline

    summary = watch(w, str(log), out, poll=0.02, stop=stop)
    t.join(timeout=5)
    unseen = [a for a in alerts() if a["alert"] == "unseen template"]
    assert [a["location"] for a in unseen] == [f"{log}:1", f"{log}:1"]
    assert [a["template"] for a in unseen] == ["Unexpected error trying to delete block <*>",
                                               "Odd failure trying to delete block <*>"]
    assert seen[unseen[0]["template"]] - written["rotated"] < 1.0
    assert seen[unseen[1]["template"]] - written["truncated"] < 1.0
    assert summary["lines"] == len(hdfs_like(2)) + 2 and summary["malformed"] == 0
    # the sessions still open at the end were judged: the unseen one is anomalous
    assert any(a["alert"] == "anomalous session" and a["session"] == "blk_-2000" for a in alerts())


def test_watch_command_on_standard_input(capsys, monkeypatch, tmp_path):
    import sys

    model = _trained(capsys, tmp_path)
    text = "\n".join(hdfs_like(2, base=900) + [UNSEEN, "garbage"]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run_cli(capsys, "watch", model, "-", "--explain")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["alert"] == "unseen template" and rows[0]["location"] == "<stdin>:8"
    assert any(r["alert"] == "anomalous session" and r["lines"][0]["text"] == UNSEEN for r in rows)
    assert "<stdin>:9: does not fit the log format, skipped" in err and "1 malformed" in err and "lines/s" in err


def test_tailer_from_the_end_keeps_the_file_line_numbers(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\ntwo\nthr")
    gen = Tailer(str(path), poll=0.01, from_end=True).lines(idle=True)
    assert take(gen, 1, idles=3) == []
    with open(path, "a") as fh:
        fh.write("ee\nfour\n")
    assert take(gen, 2) == [(3, "three"), (4, "four")]
    gen.close()


def test_a_line_holding_a_nul_byte_is_malformed_for_parse_and_watch_alike(capsys, monkeypatch, tmp_path):
    """parse made a template of a line with a NUL byte (templates.csv held the NUL) where watch skipped the
    same line as 'is not UTF-8 text': a model then never matched its own training lines while watching."""
    import sys

    lines = hdfs_like(2)
    lines[1] = lines[1].replace("NameSystem", "Name\0System")
    log = tmp_path / "nul.log"
    log.write_bytes(("\n".join(lines) + "\n").encode())
    code, out, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--session", r"blk_-?\d+", "--out",
                             tmp_path / "p")
    assert code == 0, err
    assert f"{log}:2: holds a NUL byte (binary data, not text), skipped" in err and "1 malformed" in err
    assert "\0" not in (tmp_path / "p" / "templates.csv").read_text()
    model = _trained(capsys, tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(log.read_bytes())))
    code, out, err = run_cli(capsys, "watch", model, "-")
    assert code == 0, err
    assert "<stdin>:2: holds a NUL byte (binary data, not text), skipped" in err and "1 malformed" in err


def test_following_a_folder_or_a_pipe_says_what_it_is_not_no_such_file(tmp_path):
    import pytest

    from seqrnn.errors import InputError

    os.mkfifo(tmp_path / "pipe")
    for path in (tmp_path, tmp_path / "pipe"):
        with pytest.raises(InputError) as err:
            next(Tailer(str(path)).lines())
        assert str(err.value) == (f"{path}: not a regular file (a folder, a pipe or a device): follow a file, or "
                                  "read standard input with '-'")
    with pytest.raises(InputError, match="no such file"):
        next(Tailer(str(tmp_path / "absent.log")).lines())


def test_parse_and_watch_with_standard_input_closed_say_so(capsys, monkeypatch, tmp_path):
    """'seqrnn parse - <&-' and 'seqrnn watch MODEL - <&-' ended in a traceback (sys.stdin is None)."""
    import sys

    model = _trained(capsys, tmp_path)
    monkeypatch.setattr(sys, "stdin", None)
    code, out, err = run_cli(capsys, "parse", "-", "--out", tmp_path / "p")
    assert (code, err) == (2, "seqrnn parse: error: <stdin>: standard input is closed\n")
    code, out, err = run_cli(capsys, "watch", model, "-")
    assert (code, err) == (2, "seqrnn watch: error: <stdin>: standard input is closed\n")


def test_detect_follow_on_a_folder_says_what_it_is_not_no_such_file(capsys, tmp_path):
    model = _trained(capsys, tmp_path)
    code, out, err = run_cli(capsys, "detect", model, tmp_path / "p", "--follow")  # the parsed folder
    assert (code, err) == (2, f"seqrnn detect: error: {tmp_path / 'p'}: not a regular file (a folder, a pipe or a "
                              "device): follow a file, or read standard input with '-'\n")


def test_watch_on_a_file_of_old_mac_line_ends_is_refused_not_waited_on(capsys, tmp_path):
    """watch (whose tailer counts a bad line and goes on) waited for ever for the first '\\n' of a file of
    lone-CR line ends, saying nothing; it now refuses the file at its first line, as detect --follow does."""
    import signal

    model = _trained(capsys, tmp_path)
    log = tmp_path / "mac.log"
    log.write_bytes(("\r".join(hdfs_like(2, base=900)) + "\r").encode())
    column = hdfs_like(2, base=900)[0].__len__() + 1

    def give_up(signum, frame):  # the old behaviour: still waiting after 10 s (watch ends with 130)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(10)
    try:
        code, out, err = run_cli(capsys, "watch", model, log)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert (code, out) == (2, "")
    assert err == (f"seqrnn watch: error: {log}:1: carriage return at column {column} inside a line (a file with "
                   "old Mac line endings? lines end with \\n: convert it with tr '\\r' '\\n')\n")


def test_watch_with_a_model_not_trained_on_a_parsed_folder_says_so(capsys, tmp_path):
    # it said 'MODEL/parser: no parser state: give the --parsed folder the model was trained on', naming a
    # folder the user never made, of a model that was trained on no parsed folder at all
    (tmp_path / "s").write_text("a b c\na b b c\na c\n" * 5)
    (tmp_path / "app.log").write_text("x\n")
    assert run_cli(capsys, "train", tmp_path / "s", "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0
    code, out, err = run_cli(capsys, "watch", tmp_path / "m", tmp_path / "app.log")
    assert code == 2 and err.strip() == (
        f"seqrnn watch: error: {tmp_path / 'm'}: the model keeps no parser: it was not trained on a folder of "
        "seqrnn parse; give the folder whose events it was trained on with --parsed DIR, or train it on one")


def test_watching_a_stream_keeps_no_line_it_has_judged(capsys, tmp_path):
    """The stream (no grouping) never closes, yet every line's event, location and raw text were kept:
    watch's memory grew with the log it followed (400 bytes a line: 300,000 lines of HDFS took 351 MB,
    100,000 took 270 MB). It keeps the last lines for --explain alone; sessions keep their lines' text
    only for --explain."""
    from seqrnn.detect import Detector
    from seqrnn.parse.grouping import IdGrouper
    from seqrnn.parse.parser import Parser
    from seqrnn.watch import RECENT, Watcher

    lines = [line for rep in range(6) for line in hdfs_like(4, base=10 * rep)]
    write(tmp_path / "train.log", lines)
    assert run_cli(capsys, "parse", tmp_path / "train.log", "--log-format", FMT, "--out", tmp_path / "p",
                   "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "train", tmp_path / "p", "--format", "stream", "--model", "markov",
                           "-m", tmp_path / "m")
    assert code == 0, err
    for explain in (False, True):
        w = Watcher(Detector.load(str(tmp_path / "m")), Parser.load(str(tmp_path / "p" / "parser.json")), None,
                    explain=explain)
        for i, line in enumerate(lines * 3 + [UNSEEN]):
            w.feed(i + 1, line, "x.log")
        assert not w.stream.tokens and len(w.stream.where) == RECENT
        assert (w.stream.where[-1][1] == UNSEEN) is explain
    w = Watcher(Detector.load(str(tmp_path / "m")), Parser.load(str(tmp_path / "p" / "parser.json")),
                IdGrouper(r"blk_-?\d+"), explain=False)
    for i, line in enumerate(lines):
        w.feed(i + 1, line, "x.log")
    assert w.sessions and all(text is None for s in w.sessions.values() for _, text in s.where)


def test_watch_leaves_lines_in_no_session_out_as_detect_does_alerting_only_new_templates(capsys, monkeypatch, tmp_path):
    """OpenStack: most lines (API requests) name no instance. parse and detect leave them out of every
    session; watch alerted 'a template the model never saw in training' on each of them (1,465 alerts on
    the very log the model was trained on)."""
    import sys

    outside = "081109 203500 12 INFO dfs.FSNamesystem: Roll Edit Log from 10.250.1.{}"
    lines = []
    for rep in range(12):
        lines.extend(hdfs_like(4, base=10 * rep) + [outside.format(rep)])
    write(tmp_path / "train.log", lines)
    assert run_cli(capsys, "parse", tmp_path / "train.log", "--log-format", FMT, "--session", r"blk_-?\d+",
                   "--out", tmp_path / "p", "--quiet")[0] == 0
    assert run_cli(capsys, "train", tmp_path / "p", "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0
    new_outside = "081109 203501 12 WARN dfs.FSNamesystem: Safe mode is ON"
    text = "\n".join(hdfs_like(2, base=900) + [outside.format(99), new_outside, new_outside]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run_cli(capsys, "watch", tmp_path / "m", "-")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["alert"], r["location"], r["session"]) for r in rows] == [
        ("unseen template", "<stdin>:9", None), ("unseen template", "<stdin>:10", None)]  # new to the parser
    assert "3 in no session" in err


def test_watch_whose_grouping_matches_nothing_says_so(capsys, monkeypatch, tmp_path):
    """Lines in no session are not judged (above): a --session that matches nothing ('instance:([0-9a-f-]+)',
    the space forgotten, on OpenStack) made a watch that says nothing, for ever. It is said once 1,000 lines
    have joined no session, or at the end of the input."""
    import sys

    from seqrnn.detect import Detector
    from seqrnn.parse.grouping import IdGrouper
    from seqrnn.parse.parser import Parser
    from seqrnn.watch import NO_SESSION_LINES, Watcher

    model = _trained(capsys, tmp_path)
    text = "\n".join(hdfs_like(2, base=900)) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run_cli(capsys, "watch", model, "-", "--session", r"blk:(\d+)")
    assert code == 0 and out == "", err
    assert ("note: none of the 7 lines read joined a session (the first, <stdin>:1: no match of the session "
            r"pattern 'blk:(\\d+)', or only empty ones): lines in no session are not judged; check the grouping "
            "(--session)") in err, err
    notes = []
    w = Watcher(Detector.load(str(model)), Parser.load(str(model / "parser" / "parser.json")), IdGrouper(r"blk:(\d+)"),
                on_note=notes.append)
    line = hdfs_like(1)[0]
    for i in range(NO_SESSION_LINES + 5):
        w.feed(i + 1, line, "x.log")
    assert len(notes) == 1 and notes[0].startswith(f"none of the {NO_SESSION_LINES:,} lines read joined a session")
    text = "\n".join(hdfs_like(2, base=900)) + "\n"  # the folder's grouping: no note
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = run_cli(capsys, "watch", model, "-")
    assert code == 0 and "note:" not in err, err
