"""Bad and crafted inputs found by an attacker pass (issue 17's standard): one clear message naming the
file and line, exit 2, never a hang, a traceback or a silently empty result.

- regular expressions that backtrack for ever (``--session``, the log format on a long line);
- a parse that groups nothing (a time format or log format that fits no line);
- float flags that are not finite;
- crafted shards and parsed folders (read without unpickling anything);
- a lock file whose text names a process that does not hold it.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from conftest import run_cli
from test_parse import FMT, hdfs_like, write

from seqrnn.errors import InputError
from seqrnn.parse import timelimit
from seqrnn.parse.folder import read_parsed
from seqrnn.parse.logformat import LogFormat


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setattr(timelimit, "LIMIT", 0.3)  # a catastrophic match is stopped sooner


# --- regular expressions that would not end ---------------------------------------------------------
def test_catastrophic_session_regex_is_stopped_naming_it_and_the_line(capsys, tmp_path, short_limit):
    log = write(tmp_path / "a.log", ["ok line", "a" * 27 + "!"])  # (a+)+$ on it: 2^27 steps unbounded
    code, out, err = run_cli(capsys, "parse", log, "--session", "(a+)+$", "--out", tmp_path / "p", "--quiet")
    assert code == 2
    assert f"{log}:2: --session pattern '(a+)+$' took over 0.3 s on this line" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(InputError, match="the parse writing this folder failed"):  # not read as loose files
        read_parsed(str(tmp_path / "p"))


def test_a_long_line_that_does_not_fit_the_log_format_is_malformed_not_a_hang(capsys, tmp_path, short_limit):
    lines = hdfs_like(2)
    lines.insert(1, " ".join(["w"] * 150))  # five fields to place among 150 words: ~150^4 tries unbounded
    log = write(tmp_path / "x.log", lines)
    code, out, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--session", r"blk_-?\d+",
                             "--out", tmp_path / "p")
    assert code == 0, err
    assert f"{log}:2: took over 0.3 s to match the log format (too long a line), skipped" in err
    info = json.loads((tmp_path / "p" / "parse.json").read_text())
    assert info["malformed"] == 1 and info["events"] == 7 and info["sessions"] == 2


def test_the_fast_log_format_match_is_the_backtracking_one():
    """The atomic form, tried first, gives the fields the backtracking regex gives whenever it matches."""
    rng = random.Random(0)
    specs = [FMT, r"<Date> <Time> \[<ADDR>\] <Content>", "<Level> [<Comp>] <Content>", "<A>: <B>: <Content>",
             "<A><B> <Content>", "x <Content> y", "<Date>,<Time> - <Content>"]
    alphabet = ["a", "b", " ", "  ", ":", ": ", "[", "]", ",", "-", "x", "y", "\t"]
    checked = fitted = 0
    for spec in specs:
        f = LogFormat(spec)
        for _ in range(400):
            line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
            m = f.regex.match(line)
            assert f.match(line) == (m.groupdict() if m else None), (spec, line)
            checked += 1
            fitted += m is not None
    assert checked == 2800 and 200 < fitted < 2600  # both kinds of line were met
    slow = LogFormat("<A> <B> <Content>")  # the fast form's first space run takes both spaces: it refuses
    assert slow.fast.match("a  b") is None and slow.match("a  b") == {"A": "a", "B": "", "Content": "b"}


def test_a_field_without_its_closing_bracket_is_refused():
    for spec in ("<Date> <Time> <Level> <Component: <Content>", "<Date> <Content> <Time", "<Date> Time> <Content>"):
        with pytest.raises(InputError, match="a field without its closing '>' or opening '<'"):
            LogFormat(spec)
    assert LogFormat("<Date> -> <Content>").match("d -> m")["Content"] == "m"  # an arrow is text


# --- a parse that groups nothing --------------------------------------------------------------------
def test_a_parse_that_fits_or_groups_no_line_says_why_and_exits_2(capsys, tmp_path):
    log = write(tmp_path / "x.log", hdfs_like(3))
    code, out, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--window", "60", "--time-format",
                             "%Y-%m-%d %H:%M:%S", "--out", tmp_path / "t", "--quiet")
    assert code == 2
    assert (f"{log}:1: no line joined a session (of 10 lines parsed); the first: its time '081109 203600' "
            "(fields Date Time) does not fit the time format '%Y-%m-%d %H:%M:%S': '081109 203600 143 INFO") in err
    with pytest.raises(InputError, match="the parse writing this folder failed"):
        read_parsed(str(tmp_path / "t"))
    code, out, err = run_cli(capsys, "parse", log, "--log-format", "xyz <Content>", "--out", tmp_path / "f",
                             "--quiet")
    assert code == 2 and f"{log}:1: no line fits the log format 'xyz <Content>' (10 of 10 lines tried" in err
    assert "the first: does not fit the log format: '081109 203600 143 INFO" in err
    code, out, err = run_cli(capsys, "parse", log, "--session", r"nomatch\d", "--out", tmp_path / "s", "--quiet")
    assert code == 2 and f"{log}:1: no line joined a session" in err
    assert "no match of the session pattern 'nomatch\\\\d'" in err
    code, out, err = run_cli(capsys, "parse", log, "--log-format", "<Date> <Content> <Time", "--out",
                             tmp_path / "u", "--quiet")
    assert code == 2 and "has '<Time', a field without its closing '>'" in err
    blank = write(tmp_path / "blank.log", ["", "  ", ""])
    code, out, err = run_cli(capsys, "parse", blank, "--out", tmp_path / "b", "--quiet")
    assert code == 2 and f"{blank}: nothing to parse: the input is empty or holds only blank lines" in err
    gaps = write(tmp_path / "gaps.log", ["x 1", "", "y 2"])  # blank lines are no events, whatever the format
    assert run_cli(capsys, "parse", gaps, "--out", tmp_path / "g", "--quiet")[0] == 0
    assert (tmp_path / "g" / "lines.csv").read_text().split() == ["file,line", "0,1", "0,3"]


def test_a_parse_where_some_lines_join_no_session_counts_them_in_the_summary(capsys, tmp_path):
    lines = hdfs_like(4)
    lines[5:] = [line.replace("081109", "2008-11-09", 1) for line in lines[5:]]
    log = write(tmp_path / "x.log", lines)
    code, out, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--window", "60", "--time-format",
                             "%y%m%d %H%M%S", "--out", tmp_path / "p")
    assert code == 0, err
    assert f"(8 lines in none, the first {log}:6: its time '2008-11-09 203801'" in err
    info = json.loads((tmp_path / "p" / "parse.json").read_text())
    assert info["ungrouped"] == 8 and info["sessions"] == 3 and info["events"] == 13


# --- float flags ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0"])
def test_watch_refuses_an_idle_time_that_is_not_a_finite_positive_number(capsys, tmp_path, value):
    with pytest.raises(SystemExit) as exc:
        run_cli(capsys, "watch", tmp_path / "m", "-", f"--idle={value}")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"argument --idle: must be a finite number of seconds above 0, not {value}" in err


def test_watcher_refuses_an_idle_time_that_is_not_finite():
    from seqrnn.watch import Watcher

    for idle in (float("nan"), float("inf"), 0):
        with pytest.raises(InputError, match=re.escape(f"idle must be a finite number of seconds above 0, not {idle}")):
            Watcher(None, None, idle=idle)


# --- crafted shards -----------------------------------------------------------------------------------
def _shards(tmp_path, capsys):
    from conftest import write_toy_sessions

    data = write_toy_sessions(tmp_path / "t.txt", n=200)
    assert run_cli(capsys, "encode", data, "-o", tmp_path / "sh", "--shard-events", "300", "--quiet")[0] == 0
    return tmp_path / "sh"


def _crafted(src, dst, array=None, change=None, meta=None, **save):
    import shutil

    import numpy as np

    shutil.copytree(src, dst)
    if array is not None:
        path = dst / f"train-00001.{array}.npy"
        np.save(path, change(np.load(path)), **save)
    if meta is not None:
        m = json.loads((dst / "shards.json").read_text())
        meta(m)
        (dst / "shards.json").write_text(json.dumps(m))
    return dst


def _at(a, i, v):
    a = a.copy()
    a[i] = v
    return a


SHARD_CASES = {  # name: (what to craft, the message)
    "token out of range": (dict(array="tokens", change=lambda t: _at(t, 7, 99)),
                           "train-00001.tokens.npy: token id 99 at position 7 is outside the 5 tokens"),
    "negative token": (dict(array="tokens", change=lambda t: _at(t, 3, -3)),
                       "train-00001.tokens.npy: token id -3 at position 3 is outside"),
    "float tokens": (dict(array="tokens", change=lambda t: t + 0.5),
                     "train-00001.tokens.npy: holds float64 values of shape"),
    "offsets going down": (dict(array="offsets", change=lambda o: _at(o, 4, o[3] - 1)),
                           "train-00001.offsets.npy: offset 4 ("),
    "negative offset": (dict(array="offsets", change=lambda o: _at(o, 2, -5)),
                        "train-00001.offsets.npy: offset 2 (-5) is below the one before it"),
    "offset past the end": (dict(array="offsets", change=lambda o: _at(o, -1, o[-1] + 50)),
                            "train-00001.offsets.npy: the last offset is"),
    "unsigned offsets going down": (dict(array="offsets", change=lambda o: _at(o, 4, o[3] - 1).astype("uint64")),
                                    "train-00001.offsets.npy: offset 4 ("),
    "pickled offsets": (dict(array="offsets", change=lambda o: o.astype(object), allow_pickle=True),
                        "train-00001.offsets.npy: holds Python objects (pickled data), not numbers: refused unread"),
    "flags of another length": (dict(array="complete", change=lambda c: c[:-3]),
                                "train-00001.complete.npy: holds 54 values where shards.json says 57"),
    "counts of another length": (dict(meta=lambda m: m.__setitem__("counts", m["counts"][:-2])),
                                 "shards.json: bad counts (a count for each token)"),
    "a shard name that is a path": (dict(meta=lambda m: m["shards"]["train"][0].__setitem__("name", "../../x")),
                                    "shards.json: bad shard entry {'name': '../../x'"),
    "totals that lie": (dict(meta=lambda m: m["shards"]["train"][0].__setitem__("sequences", 3)),
                        "shards.json: bad sequences of train"),
}


def test_crafted_shards_are_refused_naming_the_file_without_unpickling(tmp_path, capsys, monkeypatch):
    import pickle

    from seqrnn.data.shards import ShardSet

    sh = _shards(tmp_path, capsys)
    assert [len(s.arrays()[1]) for s in ShardSet(sh).parts["train"]][:2] == [56, 58]  # what the cases change
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    for name, (craft, message) in SHARD_CASES.items():
        bad = _crafted(sh, tmp_path / name.replace(" ", "_"), **craft)
        with pytest.raises(InputError) as exc:
            for shard in ShardSet(bad).parts["train"]:
                shard.arrays()
        assert message in str(exc.value), (name, str(exc.value))
    code, out, err = run_cli(capsys, "train", tmp_path / "token_out_of_range", "-m", tmp_path / "m", "--hidden", "8",
                             "--layers", "1", "--embedding-dim", "4", "--epochs", "1", "--threads", "1", "-q")
    assert code == 2 and "token id 99 at position 7 is outside the 5 tokens of shards.json" in err
    assert len(err.strip().splitlines()) == 1


# --- crafted parsed folders -------------------------------------------------------------------------
def _edit_line(i, value):
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[i] = value
        return b"\n".join(lines)
    return edit


FOLDER_CASES = {  # name: (file, change of its bytes, the message)
    "huge row": ("sessions.index", _edit_line(2, b"blk_x,1 2 99999999999999999999999999"),
                 "sessions.index:3: row 99999999999999999999999999 is out of range"),
    "rows not in log order": ("sessions.index", _edit_line(2, b"blk_x,3 2"),
                              "sessions.index:3: rows must increase"),
    "bytes in parameters": ("parameters", lambda b: b[:40] + b"\xff\xfe\x87" + b[40:],
                            "parameters:1: not UTF-8 text"),
    "bytes in the index": ("sessions.index", lambda b: b[:10] + b"\xc3\x28" + b[10:],
                           "sessions.index:1: not UTF-8 text"),
    # an id longer than the csv module reads is read (parse writes 'id,rows', not CSV); its rows are checked
    "a long id without rows": ("sessions.index", lambda b: b + b'"' + b"x" * 200_000 + b'",\n',
                               "sessions.index:49: a session of no rows"),
    "negative line number": ("lines.csv", _edit_line(3, b"0,-5"),
                             "lines.csv:4: line number '-5' is not a whole number"),
    "line number 0": ("lines.csv", _edit_line(3, b"0,0"), "lines.csv:4: line number 0 is out of range"),
    "huge line number": ("lines.csv", _edit_line(3, b"0,99999999999999999999999"),
                         "lines.csv:4: line number 99999999999999999999999 is out of range"),
    "file index past the list": ("lines.csv", _edit_line(3, b"1,4"), "lines.csv:4: file index 1 out of range"),
    "event id that is a word": ("events", _edit_line(3, b"abc"), "events:4: event id 'abc' is not a whole number"),
    "template id that is a word": ("templates.csv", _edit_line(1, b"x,Receiving block <*>,12"),
                                   "templates.csv:2: template id 'x' is not a whole number"),
    "template count that is a word": ("templates.csv", _edit_line(1, b"1,Receiving block <*>,many"),
                                      "templates.csv:2: count 'many' is not a whole number"),
    "template id twice": ("templates.csv", _edit_line(2, b"1,other,3"), "templates.csv:3: template id 1 given twice"),
    "grouping of another shape": ("parse.json", lambda b: b.replace(b'"by": "id"', b'"by": "time"'),
                                  "parse.json: bad grouping: a grouping by time with a missing or wrong window"),
}


def test_crafted_parsed_folders_are_refused_naming_file_and_line(capsys, tmp_path):
    import shutil

    from seqrnn.parse.explain import Explainer
    from seqrnn.parse.folder import read_parsed, read_templates

    lines = []
    for rep in range(12):
        lines.extend(hdfs_like(4, base=10 * rep))
    write(tmp_path / "x.log", lines)
    assert run_cli(capsys, "parse", tmp_path / "x.log", "--log-format", FMT, "--session", r"blk_-?\d+", "--out",
                   tmp_path / "p", "--quiet")[0] == 0
    assert len(read_parsed(str(tmp_path / "p"))) == 48 and Explainer(str(tmp_path / "p")).parameters
    for name, (file, change, message) in FOLDER_CASES.items():
        bad = tmp_path / name.replace(" ", "_")
        shutil.copytree(tmp_path / "p", bad)
        (bad / file).write_bytes(change((bad / file).read_bytes()))
        with pytest.raises(InputError) as exc:
            read_parsed(str(bad))
            Explainer(str(bad))
            read_templates(str(bad))  # what detect and report read of the folder's templates.csv
        assert f"{bad}/{message}" in str(exc.value), (name, str(exc.value))
    assert run_cli(capsys, "train", tmp_path / "p", "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0
    code, out, err = run_cli(capsys, "detect", tmp_path / "m", tmp_path / "bytes_in_parameters", "--explain")
    assert code == 2 and err.strip() == (f"seqrnn detect: error: {tmp_path / 'bytes_in_parameters'}/parameters:1: "
                                         "not UTF-8 text (not written by seqrnn parse)")


# --- a lock file whose text is stale ------------------------------------------------------------------
@pytest.mark.parametrize("text", [{"pid": 999_999_999, "command": "seqrnn train", "since": "2026-01-01 00:00:00"},
                                  {"pid": 1, "host": "another-machine", "command": "seqrnn train",
                                   "since": "2026-01-01 00:00:00"}])
def test_a_lock_file_copied_over_a_held_one_is_named_stale_and_the_real_holder_given(capsys, tmp_path, toy_sessions,
                                                                                     text):
    import os

    from test_lifecycle import hold_lock, train

    d = tmp_path / "m"
    proc = hold_lock(d)
    try:
        with open(d / ".lock", "r+", encoding="utf-8") as fh:  # cp from another run: same file, new text
            fh.truncate(0)
            fh.write(json.dumps(text))
        code, out, err = train(capsys, toy_sessions, d, "--epochs", "1")
    finally:
        proc.kill()
        proc.wait()
    assert code == 2
    assert f"is being written by process {proc.pid} (its lock file names process {text['pid']}" in err
    why = "on host another-machine, another machine" if "host" in text else "which is not running on this machine"
    assert why in err and "a stale text, copied with the directory?" in err
    assert f"remove {d / '.lock'} only once no process holds it" in err
    assert train(capsys, toy_sessions, d, "--epochs", "1")[0] == 0  # the holder gone, the lock is free
    written = json.loads((d / ".lock").read_text())
    assert written["pid"] == os.getpid() and written["host"] and written["start"]


def test_watch_stops_a_catastrophic_session_regex_naming_it_and_counts_a_slow_line_as_malformed(capsys, tmp_path,
                                                                                             short_limit):
    from test_watch import _trained

    from seqrnn.detect import Detector
    from seqrnn.parse.grouping import IdGrouper
    from seqrnn.parse.parser import Parser
    from seqrnn.watch import Watcher

    model = _trained(capsys, tmp_path)
    bad = []
    w = Watcher(Detector.load(str(model)), Parser.load(str(model / "parser" / "parser.json")),
                IdGrouper(r"(a+)+$|blk_-?\d+"), on_malformed=lambda *a: bad.append(a))
    with timelimit.watchdog():
        w.feed(1, hdfs_like(1)[0], "x.log")
        w.feed(2, " ".join(["w"] * 150), "x.log")
        assert bad == [("x.log", 2, "took over 0.3 s to match the log format (too long a line)")]
        message = "x.log:3: session pattern '(a+)+$|blk_-?\\\\d+' took over 0.3 s"
        with pytest.raises(InputError, match=re.escape(message)):
            w.feed(3, "081109 203600 143 INFO dfs.DataNode: block blk_1 " + "a" * 27 + "!", "x.log")


def test_a_template_file_in_parses_layout_is_checked_and_a_bad_csv_field_is_one_error(tmp_path):
    from seqrnn.report import load_templates

    good = write(tmp_path / "good.csv", ["id,template,count", "1,Receiving block <*>,3", '2,"a, b",1'])
    assert load_templates(str(good)) == {"1": "Receiving block <*>", "2": "a, b"}
    words = write(tmp_path / "words.csv", ["id,template,count", "abc,foo,1"])
    with pytest.raises(InputError, match=re.escape(f"{words}:2: template id 'abc' is not a whole number")):
        load_templates(str(words))
    huge = write(tmp_path / "huge.csv", ["EventId,EventTemplate", 'E1,"' + "x" * 200_000 + '"'])
    with pytest.raises(InputError, match=re.escape(f"{huge}: not a template file (CSV: field larger than")):
        load_templates(str(huge))
    loghub = write(tmp_path / "loghub.csv", ["EventId,EventTemplate", "E1,Receiving <*>"])
    assert load_templates(str(loghub)) == {"E1": "Receiving <*>"}  # other ids stay as they are


# --- a parse or encode stopped half-way ---------------------------------------------------------------
@pytest.mark.parametrize("earlier", [False, True])
def test_a_parse_killed_half_way_leaves_a_folder_that_is_refused(capsys, tmp_path, monkeypatch, earlier):
    """A parse stopped after its events and sessions are written but before its summary: the folder is
    neither taken as complete (an earlier parse's parse.json beside the new events) nor read as files of
    sequences (lines.csv, parameters); reading it says the parse did not finish."""
    from seqrnn.parse import pipeline

    out = tmp_path / "p"
    if earlier:
        log = write(tmp_path / "a.log", hdfs_like(4))
        assert run_cli(capsys, "parse", log, "--log-format", FMT, "--session", r"blk_-?\d+", "--out", out,
                       "--quiet")[0] == 0
    big = write(tmp_path / "b.log", [line for rep in range(3) for line in hdfs_like(4, base=10 * rep)])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill -9 at this point: nothing after it runs

    monkeypatch.setattr(pipeline, "write_templates", killed)
    code, out_, err = run_cli(capsys, "parse", big, "--log-format", FMT, "--session", r"blk_-?\d+", "--out", out,
                              "--quiet")
    assert code == 130
    assert len((out / "events").read_text().split()) == 39  # the new events are there, the summary is not
    code, _, err = run_cli(capsys, "train", out, "--model", "markov", "--model-dir", tmp_path / "m")
    assert code == 2 and not (tmp_path / "m" / "config.json").exists()
    assert err.strip() == (f"seqrnn train: error: {out / 'parse.json'}: the parse writing this folder did not "
                           "finish (it was stopped, or is still running): parse the log again")
    monkeypatch.undo()
    assert run_cli(capsys, "parse", big, "--log-format", FMT, "--session", r"blk_-?\d+", "--out", out,
                   "--quiet")[0] == 0  # parsed again: read as usual
    assert run_cli(capsys, "train", out, "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0


def test_an_output_folder_that_is_a_file_is_named_as_such(capsys, tmp_path):
    """parse --out FILE and encode --output FILE said 'FILE: File exists'."""
    log = write(tmp_path / "a.log", hdfs_like(2))
    taken = write(tmp_path / "taken", ["x"])
    code, _, err = run_cli(capsys, "parse", log, "--out", taken, "--quiet")
    assert (code, err) == (2, f"seqrnn parse: error: {taken}: is a file, not a folder (--out names the parsed "
                              "folder to write)\n")
    sessions = write(tmp_path / "s.txt", ["s1,a b c", "s2,a c"])
    code, _, err = run_cli(capsys, "encode", sessions, "--output", taken, "--quiet")
    assert (code, err) == (2, f"seqrnn encode: error: {taken}: is a file, not a folder (--output names the shards "
                              "folder to write)\n")
    assert taken.read_text() == "x\n"


def test_a_parser_state_nested_without_end_is_refused_not_a_traceback(capsys, tmp_path):
    """parse --resume (and watch) on a parser.json of 200,000 nested brackets: a RecursionError traceback."""
    log = write(tmp_path / "a.log", hdfs_like(2))
    assert run_cli(capsys, "parse", log, "--log-format", FMT, "--out", tmp_path / "p", "--quiet")[0] == 0
    (tmp_path / "p" / "parser.json").write_text("[" * 200_000 + "]" * 200_000)
    code, out, err = run_cli(capsys, "parse", log, "--resume", tmp_path / "p", "--out", tmp_path / "q")
    assert (code, err) == (2, f"seqrnn parse: error: {tmp_path / 'p' / 'parser.json'}: parser state nested too "
                              "deep (not a parser state written by seqrnn parse)\n")


def test_a_status_file_nested_without_end_is_refused_not_a_traceback(capsys, tmp_path):
    """A status.json of 200,000 nested brackets: every command reading the model ended in a traceback."""
    sessions = write(tmp_path / "s.txt", ["s1,a b c", "s2,a c b", "s3,a b c"])
    assert run_cli(capsys, "train", sessions, "--model", "markov", "--model-dir", tmp_path / "m")[0] == 0
    (tmp_path / "m" / "status.json").write_text("[" * 200_000 + "]" * 200_000)
    for argv in (("info", tmp_path / "m"), ("evaluate", tmp_path / "m", sessions)):
        code, out, err = run_cli(capsys, *argv)
        assert (code, err) == (2, f"seqrnn {argv[0]}: error: {tmp_path / 'm' / 'status.json'}: status.json is "
                                  "truncated or not JSON\n")


def test_a_weights_header_nested_without_end_is_refused_not_a_traceback(capsys, tmp_path):
    """A model.safetensors whose JSON header is 200,000 nested brackets: a RecursionError traceback."""
    import struct

    sessions = write(tmp_path / "s.txt", ["s1,a b c", "s2,a c b", "s3,a b c"] * 10)
    assert run_cli(capsys, "train", sessions, "--model-dir", tmp_path / "m", "--epochs", "1", "--hidden", "4",
                   "--layers", "1", "--threads", "1", "--no-calibration", "-q")[0] == 0
    header = b"[" * 200_000 + b"]" * 200_000
    (tmp_path / "m" / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    code, out, err = run_cli(capsys, "info", tmp_path / "m")
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert f"{tmp_path / 'm' / 'model.safetensors'}: weights file is truncated or not safetensors" in err


def test_a_refused_parse_over_a_parsed_folder_leaves_it_refused_not_read_as_loose_files(capsys, tmp_path):
    """A parse refused (no line joined a session) over an earlier parsed folder removed its parse.json, after
    replacing lines.csv and parameters: train then read events, lines.csv, parameters... as files of
    sequences and trained on them."""
    log = write(tmp_path / "a.log", hdfs_like(4))
    out = tmp_path / "p"
    assert run_cli(capsys, "parse", log, "--log-format", FMT, "--session", r"blk_-?\d+", "--out", out,
                   "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--session", r"nomatch\d", "--out", out,
                           "--quiet")
    assert code == 2 and "no line joined a session" in err
    code, _, err = run_cli(capsys, "train", out, "--model", "markov", "--model-dir", tmp_path / "m")
    assert code == 2 and not (tmp_path / "m" / "config.json").exists()
    assert err.startswith(f"seqrnn train: error: {out / 'parse.json'}: the parse writing this folder failed "
                          f"({log}:1: no line joined a session") and err.endswith("): parse again\n")


def test_a_templates_file_without_an_event_of_the_folder_is_refused(capsys, tmp_path):
    """A templates.csv missing a row (edited, or from another parse) was taken: detect printed null as the
    template of that event, the folder otherwise read as whole."""
    log = write(tmp_path / "a.log", hdfs_like(4))
    out = tmp_path / "p"
    assert run_cli(capsys, "parse", log, "--log-format", FMT, "--session", r"blk_-?\d+", "--out", out,
                   "--quiet")[0] == 0
    rows = (out / "templates.csv").read_text().splitlines()
    gone = rows[2].split(",")[0]
    (out / "templates.csv").write_text("\n".join(rows[:2] + rows[3:]) + "\n")
    events = (out / "events").read_text().split()
    with pytest.raises(InputError) as err:
        read_parsed(str(out))
    assert str(err.value) == (f"{out / 'templates.csv'}: event id {gone} (events, line {events.index(gone) + 1}) "
                              "has no row here: the folder is damaged (parse the log again)")


def test_a_file_name_holding_a_line_break_keeps_the_message_on_one_line(capsys, tmp_path):
    """'seqrnn parse' of 'a<newline>b.log' printed its malformed-line message over two lines."""
    log = tmp_path / "a\nb.log"
    log.write_text("xyz\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "parse", log, "--log-format", "<Date> <Content>", "--out", tmp_path / "p",
                             "--quiet")
    last = err.split("seqrnn parse: error: ")[1]  # (after the malformed lines' notes)
    assert code == 2 and last.count("\n") == 1 and last.startswith(f"{str(log)!r}:1: no line fits")
