"""Decide on each event as soon as it is read (``seqrnn detect --follow``).

Streams carry the model's state from event to event, so each decision costs
one step of the network. Sessions are decided line by line.

>>> follow(Detector.load("runs/hdfs"), "events.log", format="stream", out=open("found.jsonl", "w"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import sys

from .data.formats import (DEFAULT_MAX_LENGTH, Sequence, SessionIds, carriage_return, has_session_ids,
                           line_limit, parse_session_line)
from .errors import InputError
from .report import EVENT_FIELDS, finding_dict, plot_findings, token_name
from .score import event_scores
from .tail import RAW_LINE_LIMIT, Tailer, check_followable


def lines(path: str, poll: float = 0.2, max_bytes: int | None = None):
    """Yield ``(number, text)`` as lines arrive; a file is followed like ``tail -F`` (through rotation
    and truncation, complete lines only: see :class:`seqrnn.tail.Tailer`); a line longer than
    ``max_bytes`` (default ``tail.RAW_LINE_LIMIT``) is refused before it is held whole."""
    if path == "-" and sys.stdin is None:
        raise InputError("standard input is closed", "<stdin>")
    for number, text in Tailer(path, poll=poll, max_bytes=max_bytes).lines():
        if "\0" in text:
            raise InputError(f"NUL byte at column {text.index(chr(0)) + 1}: a binary file, not text",
                             "<stdin>" if path == "-" else path, number)
        if "\r" in text:  # only \n ends a line, as for detect without --follow
            raise carriage_return(text, "<stdin>" if path == "-" else path, number)
        yield number, text


def follow(detector, path: str, *, format: str | None = None, max_length: int = DEFAULT_MAX_LENGTH,
           only_anomalous: bool = False, k: int | None = None, templates: dict | None = None, out=None,
           events: str | None = None, plot: str | None = None) -> tuple[int, int]:
    """Read ``path`` (a file, followed as it grows, or ``"-"``: standard input, to its end) and decide
    on each session (``format`` ``"sessions"``) or each event (``"stream"``) as soon as it is read.

    Each decision is one JSON line on ``out`` (default: standard output), flushed, for the anomalous
    ones alone with ``only_anomalous``; ``k`` expected events are listed (default: the detector's
    ``topk``), with their text from ``templates`` (event -> template). ``events``: a CSV file that
    gets each scored event's row (the columns of :func:`seqrnn.report.write_event_table`) as it is
    decided. ``plot``: a folder that gets :func:`seqrnn.report.plot_findings`'s plots of everything
    read, when the input ends or on ``KeyboardInterrupt`` (raised again after). ``format`` defaults to
    the model's, ``max_length`` bounds a session line. Returns ``(anomalous, decided)``.
    """
    model = detector.model
    fmt = format or model.format_
    if fmt == "text":
        raise InputError("follow reads sessions or a stream of events, not text", params="follow")
    check_followable(path)
    name = "<stdin>" if path == "-" else path
    k = detector.topk if k is None else k
    out = sys.stdout if out is None else out
    found = _sessions(detector, path, name, max_length) if fmt == "sessions" else _stream(detector, path, name, k)
    table = open(events, "w", newline="", encoding="utf-8") if events else None
    seen = [] if plot else None
    anomalous = decided = 0
    try:
        if table is not None:
            rows = csv.writer(table)
            rows.writerow(EVENT_FIELDS)
            table.flush()
        for f in found:
            if f.anomalous or not only_anomalous:
                line = finding_dict(model, f, templates, k) if fmt == "sessions" else _event_dict(model, f, templates)
                out.write(json.dumps(line) + "\n")
                out.flush()
            if table is not None:
                first = decided if fmt == "stream" else 0  # a stream's events are numbered across the stream
                rows.writerows(_event_rows(model, f, k, first))
                table.flush()
            if seen is not None:
                seen.append(f)
            anomalous += f.anomalous
            decided += 1
    except KeyboardInterrupt:
        _plot(detector, plot, seen)
        raise
    finally:
        if table is not None:
            table.close()
    _plot(detector, plot, seen)
    return anomalous, decided


def _sessions(detector, path: str, name: str, max_length: int):
    """The decision on each session line of ``path``, as it is read."""
    ids = SessionIds(name)  # each line must agree with the first that had (or lacked) an id
    for number, text in lines(path, max_bytes=max(RAW_LINE_LIMIT, line_limit(max_length))):
        if not text.strip():
            continue
        with_id = ids.see(number, text)
        if with_id is None:  # an ambiguous line before any that settles it: read alone
            with_id = has_session_ids([text])
        sid, tokens = parse_session_line(text, with_id, number, name, max_length)
        yield detector.decide([Sequence(sid, tokens, name, number)]).findings[0]


def _stream(detector, path: str, name: str, k: int):
    """The decision on each event of the stream ``path``: a one-event finding, judged exactly as
    ``detect`` judges the events of a stream, the model's state carried from one to the next."""
    model = detector.model
    state = model.stream_start()
    for number, text in lines(path):
        token = text.strip()
        if not token:
            continue
        ids = model.vocab_.encode([token])
        logp, state = model.stream_step(ids, state)
        seq = Sequence("stream", [token], name, number, complete=False)
        yield detector.decide([seq], [event_scores(seq, ids, logp, k)]).findings[0]


def _event_dict(model, f, templates: dict | None) -> dict:
    """The JSON line of one event of a stream."""
    sc = f.scores
    token = sc.sequence.tokens[0]
    row = {"location": sc.sequence.location(0), "event": token, "anomalous": f.anomalous,
           "probability": float(sc.prob[0]), "rank": int(sc.rank[0]),
           "expected": [token_name(model, j) for j in sc.topk[0]]}
    if f.anomalous:
        row["reason"] = f.reason
    if templates is not None:
        row["event_template"] = templates.get(token)
    return row


def _event_rows(model, f, k: int, first: int = 0):
    """The rows of :data:`seqrnn.report.EVENT_FIELDS` for a finding's events, numbered from ``first``."""
    sc = f.scores
    seq = sc.sequence
    for p in range(len(sc)):
        event = seq.tokens[p] if p < len(seq) else token_name(model, sc.ids[p])  # unseen: its own name
        yield [seq.id, first + p, seq.location(p), event, f"{sc.prob[p]:.6g}", f"{sc.nll[p]:.6g}",
               int(sc.rank[p]), int(f.event_anomalous[p]), " ".join(token_name(model, j) for j in sc.topk[p][:k])]


def _plot(detector, folder: str | None, seen: list | None) -> None:
    if folder and seen:
        plot_findings(folder, seen, None if detector.top_g else detector.nll_cut)
