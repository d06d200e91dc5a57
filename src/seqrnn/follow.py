"""``seqrnn detect --follow``: decide on each event as soon as it is read.

Streams carry the model's state from event to event, so each decision costs
one step of the network. Sessions are decided line by line.
"""

from __future__ import annotations

import json
import os
import sys
import time

from .data.formats import Sequence, has_session_ids, parse_session_line
from .errors import InputError
from .report import finding_dict, token_name
from .score import event_scores


def lines(path: str, poll: float = 0.2):
    """Yield ``(number, text)`` as lines arrive; a file is followed like ``tail -f``."""
    if path == "-":
        fh, follow_file = sys.stdin.buffer, False
    else:
        fh, follow_file = open(path, "rb"), True
    number = 0
    pending = b""
    while True:
        raw = fh.readline()
        if not raw:
            if not follow_file:
                break
            time.sleep(poll)
            continue
        if not raw.endswith(b"\n") and follow_file:
            pending += raw  # a line still being written
            continue
        raw, pending = pending + raw, b""
        number += 1
        try:
            yield number, raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InputError("line is not UTF-8 text", path, number) from None


def follow(model, detector, args, templates) -> int:
    if len(args.inputs) != 1:
        raise InputError("--follow reads one input (a file or '-')")
    path = args.inputs[0]
    if path != "-" and not os.path.isfile(path):
        raise InputError("no such file", path)
    name = "<stdin>" if path == "-" else path
    fmt = args.format or model.format_
    if fmt == "text":
        raise InputError("--follow reads sessions or a stream of events, not text")
    out = sys.stdout
    if fmt == "sessions":
        with_id = None
        for number, text in lines(path):
            if not text.strip():
                continue
            if with_id is None:
                with_id = has_session_ids([text])
            sid, tokens = parse_session_line(text, with_id, number, name, args.max_length)
            f = detector.decide([Sequence(sid, tokens, name, number)]).findings[0]
            if f.anomalous or not args.only_anomalous:
                out.write(json.dumps(finding_dict(model, f, templates, args.k)) + "\n")
                out.flush()
        return 0
    state = model.stream_start()
    for number, text in lines(path):
        token = text.strip()
        if not token:
            continue
        ids = model.vocab_.encode([token])
        logp, state = model.stream_step(ids, state)
        # One event scored and judged exactly as `detect` judges the events of a stream.
        sc = event_scores(Sequence("stream", [token], name, number, complete=False), ids, logp, args.k)
        anomalous = bool(detector.event_flags(sc)[0])
        if anomalous or not args.only_anomalous:
            row = {"location": f"{name}:{number}", "event": token, "anomalous": anomalous,
                   "probability": float(sc.prob[0]), "rank": int(sc.rank[0]),
                   "expected": [token_name(model, j) for j in sc.topk[0]]}
            if anomalous:
                row["reason"] = detector.event_reason(sc, 0)
            if templates is not None:
                row["event_template"] = templates.get(token)
            out.write(json.dumps(row) + "\n")
            out.flush()
    return 0
