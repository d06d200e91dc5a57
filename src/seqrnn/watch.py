"""``seqrnn watch``: follow a raw log, parse each line with a saved parser, group it, and decide
with the model's state carried per session; one JSON alert per anomalous event or session.

- a template the parser never saw before (or one the model never saw) is an alert by itself; a line in
  no session is judged by nothing else, and only a template new to the parser is an alert there (parse
  and detect leave such lines out of every sequence);
- an event the model finds unlikely (the detector's rule) is an alert, as it is read;
- a session idle for ``idle`` seconds (or every open one at the end of the input) is closed and
  judged whole (the count profile and its end included): an alert when it is anomalous.

>>> w = Watcher(Detector.load("runs/hdfs"), Parser.load("parsed/parser.json"), IdGrouper(r"blk_-?\\d+"))  # doctest: +SKIP
>>> for alert in w.feed(1, line, "app.log"): print(alert)                                         # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from datetime import datetime, timezone

from .data.formats import Sequence
from .errors import InputError
from .parse.pipeline import too_slow, unreadable
from .parse.timelimit import RegexTimeout, watchdog
from .report import finding_dict, token_name
from .report.findings import END, END_TEMPLATE
from .score import event_scores

RECENT = 10  # raw lines of a session kept for an alert
NO_SESSION_LINES = 1000  # lines read, none of them in a session, before watch says its grouping may match nothing


class _Session:
    __slots__ = ("id", "state", "tokens", "where", "last")

    def __init__(self, sid: str, state):
        self.id, self.state, self.tokens, self.where, self.last = sid, state, [], [], time.monotonic()


class Watcher:
    """Decide on raw lines one at a time (see the module docstring). ``grouper`` None: one stream
    (a model trained on a stream). ``explain``: add templates, parameters and raw lines to alerts.
    ``on_malformed(file, line, why)``: told of each line that does not fit the log format (counted in
    ``malformed``, never fatal)."""

    def __init__(self, detector, parser, grouper=None, *, idle: float = 60.0, k: int | None = None,
                 explain: bool = True, on_malformed=None, on_note=None):
        if not (isinstance(idle, (int, float)) and math.isfinite(idle) and idle > 0):
            raise InputError(f"idle must be a finite number of seconds above 0, not {idle}", params="idle")
        model = detector.model
        if grouper is None and model.format_ == "sessions":
            raise InputError("the model was trained on sessions: watch needs a grouping (the parsed folder's, "
                             "or --session, --session-field, --session-lines, --window)", params="session")
        self.detector, self.model, self.parser, self.grouper = detector, model, parser, grouper
        self.idle, self.explain, self.on_malformed, self.on_note = idle, explain, on_malformed, on_note
        self.k = detector.topk if k is None else k
        self.known = set(model.vocab_.stoi)
        self.sessions: dict[str, _Session] = {}
        self.lines = self.malformed = self.alerts = self.ungrouped = self.grouped = 0
        self.first_miss = ""  # the first line in no session, and why
        # the templates the parser knew before the watch: a line in no session with one of them is left out,
        # as parse and detect leave it out of every sequence (not an alert for each line of the log outside
        # the sessions, whose templates the model never saw because they are in none)
        self.parser_known = parser.miner.drain.clusters_counter
        self.row = 0
        self.stream = _Session("stream", model.stream_start()) if grouper is None else None
        if self.stream is not None:  # it goes on for ever: its last lines alone, for --explain
            self.stream.where = deque(maxlen=RECENT)

    # --- one line ---------------------------------------------------------------------------------
    def feed(self, number: int, text: str, source: str) -> list[dict]:
        self.lines += 1
        why = "is not UTF-8 text" if text is None else unreadable(text)  # the tailer's lenient reading
        if why:
            self.malformed += 1
            if self.on_malformed is not None:
                self.on_malformed(source, number, why)
            return []
        if not text.strip():
            return []
        before = self.parser.miner.drain.clusters_counter
        why = "does not fit the log format"
        try:
            parsed = self.parser.parse(text)
        except RegexTimeout as exc:
            if exc.what != "log_format":
                raise too_slow(exc, self.parser, self.grouper, source, number) from None
            parsed, why = None, f"took over {exc.seconds:g} s to match the log format (too long a line)"
        if parsed is None:
            self.malformed += 1
            if self.on_malformed is not None:
                self.on_malformed(source, number, why)
            return []
        token = str(parsed.event)
        location = f"{source}:{number}"
        new_template = self.parser.miner.drain.clusters_counter > before and parsed.event > before
        alerts = []
        if self.grouper is None:
            keys = [None]
        else:
            try:
                keys = self.grouper.keys(text, parsed.fields, self.row)
            except RegexTimeout as exc:
                raise too_slow(exc, self.parser, self.grouper, source, number) from None
        if not keys:
            self.ungrouped += 1
            if not self.first_miss:
                self.first_miss = f"{location}: {self.grouper.miss(text, parsed.fields)}"
            if self.ungrouped == NO_SESSION_LINES and not self.grouped and self.on_note is not None:
                self.on_note(self.no_session_note())
        else:
            self.grouped += 1
        if (new_template or token not in self.known) and (keys or parsed.event > self.parser_known):
            # the session(s) the line joins, so that the alert says which one to look at
            alerts.append(self._alert("unseen template", keys[0] if len(keys) == 1 else None, token, location,
                                      text, parsed.parameters,
                                      reason="a template never seen before" if new_template
                                      else "a template the model never saw in training"))
            if len(keys) > 1:
                alerts[-1]["sessions"] = list(keys)
        self.row += 1
        for key in keys:
            s = self.stream if key is None else self.sessions.get(key)
            if s is None:
                s = self.sessions[key] = _Session(key, self.model.stream_start())
            s.last = time.monotonic()
            if s is not self.stream:  # a session is judged whole when it closes; the stream never does
                s.tokens.append(token)
            s.where.append((location, text if self.explain else None))  # the raw lines: for --explain
            f = self._step(s, token, source, number)
            if f.anomalous and token in self.known:
                alerts.append(self._event_alert(f, s, token, location, text, parsed.parameters))
        self.alerts += len(alerts)
        return alerts

    def no_session_note(self) -> str:
        """What to say when no line read has joined a session: the grouping likely matches nothing, and
        lines in no session are judged by nothing but their templates (a silent watch otherwise)."""
        return (f"none of the {self.ungrouped:,} lines read joined a session (the first, {self.first_miss}): "
                "lines in no session are not judged; check the grouping (--session)")

    def _step(self, s: _Session, token: str, source: str, number: int):
        ids = self.model.vocab_.encode([token])
        logp, s.state = self.model.stream_step(ids, s.state)
        seq = Sequence(s.id, [token], source, number, complete=False)
        return self.detector.decide([seq], [event_scores(seq, ids, logp, self.k)]).findings[0]

    # --- time passing -----------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[dict]:
        """Close and judge the sessions idle for ``idle`` seconds."""
        now = time.monotonic() if now is None else now
        idle = [sid for sid, s in self.sessions.items() if now - s.last >= self.idle]
        return [a for sid in idle for a in self._close(sid)]

    def close_all(self) -> list[dict]:
        return [a for sid in list(self.sessions) for a in self._close(sid)]

    def _close(self, sid: str) -> list[dict]:
        s = self.sessions.pop(sid)
        seq = Sequence(sid, s.tokens, s.where[0][0].rsplit(":", 1)[0], int(s.where[0][0].rsplit(":", 1)[1]),
                       complete=True)
        f = self.detector.decide([seq]).findings[0]
        if not f.anomalous:
            return []
        found = finding_dict(self.model, f, None, self.k)
        alert = {"alert": "anomalous session", "time": _now(), "session": sid, "score": found["score"],
                 "reason": found.get("reason"), "event": found.get("event"),
                 "location": s.where[min(found.get("position") or 0, len(s.where) - 1)][0],
                 "events": len(s.tokens)}
        if self.explain:
            p = found.get("position")
            alert["event_template"] = self._template(found.get("event") or "")
            alert["expected"] = found.get("expected")
            alert["expected_templates"] = [self._template(e) for e in found.get("expected", [])]
            lo = max(0, (p or 0) - RECENT // 2)
            alert["lines"] = [{"location": loc, "text": text} for loc, text in s.where[lo:lo + RECENT]]
        self.alerts += 1
        return [alert]

    # --- alerts -----------------------------------------------------------------------------------
    def _template(self, event: str) -> str | None:
        if event == END:
            return END_TEMPLATE
        return self.parser.template(int(event)) if event.isdigit() else None

    def _alert(self, kind, sid, token, location, text, params, reason) -> dict:
        a = {"alert": kind, "time": _now(), "session": sid, "location": location, "event": token, "reason": reason}
        if self.explain:
            a.update(template=self._template(token), parameters=params, line=text)
        return a

    def _event_alert(self, f, s: _Session, token, location, text, params) -> dict:
        sc = f.scores
        expected = [token_name(self.model, j) for j in sc.topk[0][: self.k]]
        a = self._alert("anomalous event", None if s.id == "stream" and self.grouper is None else s.id, token,
                        location, text, params, f.reason)
        a.update(probability=float(sc.prob[0]), rank=int(sc.rank[0]), expected=expected)
        if self.explain:
            a["expected_templates"] = [self._template(e) for e in expected]
            a["lines"] = [{"location": loc, "text": t} for loc, t in list(s.where)[-RECENT:]]
        return a


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def grouper_from(describe: dict | None, fields: list[str]):
    """The grouper a parsed folder's ``parse.json`` describes (``grouping``), or None."""
    from .parse.grouping import CountGrouper, FieldGrouper, IdGrouper, TimeGrouper

    if not describe:
        return None
    by = describe.get("by")
    if by == "id":
        return IdGrouper(describe["pattern"])
    if by == "field":
        return FieldGrouper(describe["field"], fields)
    if by == "lines":
        return CountGrouper(int(describe["lines"]))
    if by == "time":
        return TimeGrouper(describe["window"], describe["step"], describe["time_fields"], describe["time_format"],
                           fields)
    raise InputError(f"unknown grouping {by!r} in the parsed folder")


def watch(watcher: Watcher, path: str, out, *, poll: float = 0.1, from_end: bool = False,
          stop=None) -> dict:
    """Follow ``path`` (``"-"``: standard input, to its end) and write each alert as a JSON line on
    ``out``, flushed. ``stop()``, when given, ends the watch when it returns True. Returns counts
    and lines/s."""
    import json

    from .tail import Tailer

    tailer = Tailer(path, poll=poll, from_end=from_end, lenient=True)  # a bad line is counted, never fatal
    start = time.perf_counter()
    busy = 0.0
    last_tick = time.monotonic()

    def emit(alerts):
        for a in alerts:
            out.write(json.dumps(a) + "\n")
        if alerts:
            out.flush()

    try:
        with watchdog():  # a regex that backtracks for ever on a line is stopped (seqrnn.parse.timelimit)
            for item in tailer.lines(idle=True):
                if item is not None:
                    t0 = time.perf_counter()
                    emit(watcher.feed(item[0], item[1], tailer.name))
                    busy += time.perf_counter() - t0
                if time.monotonic() - last_tick >= min(1.0, watcher.idle):
                    emit(watcher.tick())
                    last_tick = time.monotonic()
                if stop is not None and stop():
                    break
    finally:
        emit(watcher.close_all())
    seconds = time.perf_counter() - start
    return {"lines": watcher.lines, "malformed": watcher.malformed, "ungrouped": watcher.ungrouped,
            "alerts": watcher.alerts,
            "seconds": round(seconds, 3), "lines_per_second": round(watcher.lines / busy) if busy > 0 else None}


def parser_folder(model_dir: str, parsed: str | None) -> str:
    """Where the parser of a watch lives: ``parsed``, or the copy ``train`` kept in the model directory."""
    folder = parsed or os.path.join(model_dir, "parser")
    if not os.path.isfile(os.path.join(folder, "parser.json")):
        if parsed is None:  # first whether MODEL is a model directory at all (a log or a parsed folder given)
            from .artifacts import read_config

            read_config(model_dir)
            raise InputError("the model keeps no parser: it was not trained on a folder of seqrnn parse; give "
                             "the folder whose events it was trained on with --parsed DIR, or train it on one",
                             model_dir)
        raise InputError("no parser state: give the parsed folder the model was trained on (--parsed DIR)",
                         folder, params="parsed")
    return folder
