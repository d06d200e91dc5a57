"""Raw log lines of any length: parse and watch neither hold a huge line whole nor pay for it quadratically.

Before: the template miner's one-word-sibling keys held each position's prefix and suffix (n^2 references
for a line of n tokens: a 20,000-token line took 3 GB, a 1 MB line of 340,000 tokens was killed by the
kernel after 24 GB), and the readers held a line whole, however long.
"""

import io
import sys
import threading
import time

import pytest
from conftest import run_cli
from test_parse import FMT, hdfs_like

import seqrnn.tail as tail
from seqrnn.errors import InputError


def test_sibling_keys_are_small_for_a_long_template():
    from seqrnn.parse.miner import Miner, MinerSettings

    miner = Miner(MinerSettings())
    tokens = ["start"] + ["word"] * 20_000
    keys = miner._keys(tuple(tokens))
    assert len(keys) == 20_001
    assert all(len(k) == 4 and all(type(x) is int for x in k) for k in keys)
    # Templates that differ in one word share that position's key, and only that one.
    a, b = miner._keys(("VM", "Paused", "now")), miner._keys(("VM", "Resumed", "now"))
    assert [x == y for x, y in zip(a, b)] == [False, True, False]
    assert miner._keys(("VM", "Paused")) != miner._keys(("VM", "Paused", "now"))[:2]


def test_word_values_still_merge_one_word_siblings():
    from seqrnn.parse.miner import Miner, MinerSettings

    miner = Miner(MinerSettings(word_values=3))
    first = [miner.add(["user", name, "logged", "in"])[0] for name in ("alice", "bob")]
    assert first == [1, 2]  # two words: two events
    assert miner.add(["user", "carol", "logged", "in"])[0] == 1  # the third makes the position a variable
    assert [miner.event(c) for c in (1, 2, 3)] == [1, 1, 1]
    assert miner.add(["user", "dave", "logged", "in"])[0] == 1
    assert miner.add(["user", "dave", "logged", "out"])[0] != 1


def test_parse_skips_a_line_over_the_limit_and_numbers_the_rest(tmp_path, capsys):
    lines = hdfs_like(30)
    huge = lines[5].replace(": ", ": " + "ab " * (tail.RAW_LINE_LIMIT // 3 + 10), 1)
    log = tmp_path / "big.log"
    log.write_text("\n".join(lines[:10] + [huge] + lines[10:]) + "\n")
    code, out, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--out", tmp_path / "p")
    assert code == 0, err
    assert f"{log}:11: is longer than 1,048,576 bytes" in err and "1 malformed" in err
    rows = (tmp_path / "p" / "lines.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[1]) for r in rows] == list(range(1, 11)) + list(range(12, len(lines) + 2))
    assert (tmp_path / "p" / "malformed.csv").read_text().splitlines()[1] == \
        f"{log},11,\"is longer than 1,048,576 bytes (not a log message: skipped unread)\""


def test_parse_of_a_huge_line_alone_is_refused_quickly(tmp_path, capsys):
    """A file of one 20 MB line: refused as 'no line fits', naming it, without holding it."""
    log = tmp_path / "one.log"
    with open(log, "w") as fh:
        for _ in range(20):
            fh.write("x " * (1 << 19))
    start = time.perf_counter()
    code, out, err = run_cli(capsys, "parse", log, "--log-format", FMT, "--out", tmp_path / "p")
    assert time.perf_counter() - start < 30
    assert code == 2 and f"{log}:1: " in err and "longer than" in err, err


def _grow(path, pieces, pause=0.05):
    def write():
        for piece in pieces:
            time.sleep(pause)
            with open(path, "ab") as fh:
                fh.write(piece)

    t = threading.Thread(target=write)
    t.start()
    return t


def _take(gen, n, timeout=20.0):
    out, end = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        item = next(gen)
        if item is not None:
            out.append(item)
    return out


def test_tailer_gives_up_a_growing_line_over_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(tail, "RAW_LINE_LIMIT", 1000)
    path = tmp_path / "a.log"
    path.write_bytes(b"one\n")
    writer = _grow(path, [b"x" * 600, b"x" * 600, b"x" * 600, b"\ntwo\n"])
    got = _take(tail.Tailer(str(path), poll=0.01, lenient=True).lines(idle=True), 3)
    writer.join()
    assert got[0] == (1, "one") and got[1] == (2, tail.TOO_LONG) and got[1][1] is tail.TOO_LONG
    assert got[2] == (3, "two")
    path.write_bytes(b"one\n" + b"x" * 1500 + b"\n")
    with pytest.raises(InputError, match=rf"{path}:2: line is longer than 1,000 bytes"):
        list(_take(tail.Tailer(str(path), poll=0.01).lines(idle=True), 3, timeout=2))


def test_tailer_waits_on_a_progress_bar_once_lines_have_ended(tmp_path):
    """A carriage return in the line being written, after lines that ended with \\n, is a redrawn
    progress bar, not a file of old Mac line ends: the tailer waits for its end (watch then counts the
    line as malformed) instead of stopping."""
    path = tmp_path / "a.log"
    path.write_bytes(b"start\n")
    writer = _grow(path, [b"10%\r", b"50%\r", b"100%", b"\ndone\n"])
    got = _take(tail.Tailer(str(path), poll=0.01, lenient=True).lines(idle=True), 3)
    writer.join()
    assert got == [(1, "start"), (2, "10%\r50%\r100%"), (3, "done")]


def test_watch_counts_a_huge_line_and_goes_on(tmp_path, capsys, monkeypatch):
    from test_watch import _trained

    model = _trained(capsys, tmp_path)
    lines = hdfs_like(4, base=900)
    data = "\n".join(lines[:2] + ["y" * (tail.RAW_LINE_LIMIT + 5)] + lines[2:]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    code, out, err = run_cli(capsys, "watch", model, "-")
    assert code == 0, err
    assert "<stdin>:3: is longer than 1,048,576 bytes" in err and "1 malformed" in err


def test_tailer_from_the_end_in_a_line_over_the_limit_gives_it_up(tmp_path):
    """Started at a file's end while a line over the limit was being written, the tailer kept the last
    piece it read of that line alone and gave it, ended, as a line of its own ('xxy')."""
    path = tmp_path / "a.log"
    path.write_bytes(b"old\n" + b"x" * 20)
    lines = tail.Tailer(str(path), poll=0.01, lenient=True, max_bytes=8, from_end=True).lines(idle=True)
    assert next(lines) is None
    with open(path, "ab") as fh:
        fh.write(b"y\nnew\n")
    got = _take(lines, 2)
    assert got == [(2, tail.TOO_LONG), (3, "new")] and got[0][1] is tail.TOO_LONG
    path.write_bytes(b"old\n" + b"x" * 5)  # a short line being written is read on when it ends, as before
    lines = tail.Tailer(str(path), poll=0.01, lenient=True, max_bytes=8, from_end=True).lines(idle=True)
    assert next(lines) is None
    with open(path, "ab") as fh:
        fh.write(b"y\n")
    assert _take(lines, 1) == [(2, "xxxxxy")]


def _rotate_at_the_next_stat(monkeypatch, path, rest: bytes, new: bytes):
    """The writer adds ``rest`` to ``path`` and rotates it (a new file of ``new``) between the tailer's
    read at the end of the file and its look at the path."""
    real, done = tail.os.stat, []

    def stat(p, *a, **k):
        if not done and str(p) == str(path):
            done.append(1)
            with open(path, "ab") as fh:
                fh.write(rest)
            path.rename(str(path) + ".1")
            path.write_bytes(new)
        return real(p, *a, **k)
    monkeypatch.setattr(tail.os, "stat", stat)


def test_tailer_numbers_the_rotated_file_s_last_lines_after_a_line_over_the_limit(tmp_path, monkeypatch):
    """The rotated file's last lines were numbered one too far where the line over the limit given up on
    ended there (its end was counted as a line again: 'line3' said to be line 4), and an error named a
    line counted from the end of what had been read (line 1 for line 2)."""
    path = tmp_path / "a.log"
    path.write_bytes(b"short\n" + b"x" * 20)
    lines = tail.Tailer(str(path), poll=0.01, lenient=True, max_bytes=8).lines(idle=True)
    assert _take(lines, 2) == [(1, "short"), (2, tail.TOO_LONG)]
    _rotate_at_the_next_stat(monkeypatch, path, b"yyy\nline3\n", b"new1\n")
    assert _take(lines, 2) == [(3, "line3"), (1, "new1")]
    monkeypatch.undo()
    path.write_bytes(b"short\n")
    lines = tail.Tailer(str(path), poll=0.01, max_bytes=8).lines(idle=True)
    assert _take(lines, 1) == [(1, "short")]
    _rotate_at_the_next_stat(monkeypatch, path, b"z" * 20 + b"\n", b"new1\n")
    with pytest.raises(InputError, match=rf"{path}:2: line is longer than 8 bytes"):
        _take(lines, 1)
