"""The summary a person reads at the end of ``detect``: how many, why, the worst ten, the promise, where
the full output went. Also what the report and the demo say about a detector's calibration."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ..progress import human
from ..data.vocab import EOS, UNK
from .findings import token_name

TOP = 10
ID_WIDTH = 36  # characters of a session id shown whole: a UUID (OpenStack's instances), longer ones shortened
MIN_TEMPLATE = 8  # characters of a shortened template worth showing


def printable(text) -> str:
    """``text`` from the data or a model (an id, an event, a template, a reason naming events) for a
    terminal: control and other unprintable characters escaped (``\\x1b``), so that no escape sequence
    in a log reaches the terminal the summary is printed on."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def reason_kind(reason: str) -> str:
    """``unusual event counts: 3 x5 (normal x4)`` -> ``unusual event counts``: the reason without its numbers."""
    return reason.split(":", 1)[0].strip() or "other"


def counts_by_reason(findings) -> Counter:
    return Counter(printable(reason_kind(f.reason)) for f in findings if f.anomalous)


def _find(cal: dict, *keys):
    """The first of ``keys`` in ``cal`` or one level down (the calibration's layout may grow)."""
    for key in keys:
        if key in cal and cal[key] is not None:
            return cal[key]
    for value in cal.values():
        if isinstance(value, dict):
            for key in keys:
                if value.get(key) is not None:
                    return value[key]
    return None


def promise(detector) -> dict:
    """What the detector's calibration promises: ``fpr`` (promised, or else targeted), ``promised`` (whether
    the calibration states it as a promise) and ``sequences`` (how many normal sequences it was learned on,
    when known). Read defensively: calibrations of other versions name these differently."""
    try:
        cal = detector.calibration if not isinstance(detector, dict) else detector
    except Exception:  # noqa: BLE001 - an unfitted detector promises nothing
        return {"fpr": None, "promised": False, "sequences": None}
    promised = _find(cal, "promised_fpr")
    fpr = promised if promised is not None else _find(cal, "target_fpr")
    return {"fpr": fpr, "promised": promised is not None,
            "sequences": _find(cal, "calibration_sequences", "held_out_sequences"),
            "unit": "events" if cal.get("unit") == "event" else "sequences"}


def promise_text(p: dict) -> str:
    if p["fpr"] is None:
        return "no false-positive rate stated by the calibration"
    what = "promised" if p["promised"] else "targeted"
    unit = p.get("unit", "sequences")  # a stream's calibration is per event
    on = f", calibrated on {p['sequences']:,} normal {unit} scored out of sample" \
        if isinstance(p.get("sequences"), int) else ""
    return (f"false-positive rate {what} by the calibration: {p['fpr']:.2g} "
            f"(about {p['fpr'] * 1000:.3g} in 1,000 normal {unit} flagged{on})")


def event_text(model, finding, templates: dict | None, room: int | None = None) -> str:
    """``event 3 '<*>Served block<*>'`` for the event that decided, with its template where known; within
    ``room`` characters the template is shortened (``'<*>Serv…'``), or left out where too little is left."""
    if finding.position is None:
        return ""
    sc = finding.scores
    seq = sc.sequence
    p = finding.position
    event = seq.tokens[p] if p < len(seq) else token_name(model, sc.ids[p])
    text = f"event {readable_event(event)}"
    template = templates.get(event) if templates else None
    if template:
        template = printable(template)
        quoted = f" '{template}'"
        if room is not None and len(text) + len(quoted) > room:
            keep = room - len(text) - len(" '…'")
            quoted = f" '{template[:keep]}…'" if keep >= MIN_TEMPLATE else ""
        text += quoted
    return text


UNKNOWN_NOTE_SHARE = 0.5  # more of the events read unknown to the model than this: likely the wrong input


def unknown_note(model, findings) -> str:
    """A line when most events read are unknown to the model (a session model given text, another event
    numbering, an unparsed log): each such event is flagged, and the input, not the system, is the likely cause."""
    unknown = total = 0
    counted: dict[int, int] = {}  # identical sessions share their ids array (score_sequences): counted once
    for f in findings:
        ids = f.scores.ids
        n = counted.get(id(ids))
        if n is None:
            n = counted[id(ids)] = int((ids == UNK).sum())
        unknown += n
        # the input's events, not the ends the model scores after them (always known): sessions of one
        # unknown event each (another system's log, parsed into one-line sessions) read as 50% unknown
        total += int(np.count_nonzero(ids != EOS))
    return unknown_share_note(model, unknown, total)


def unknown_share_note(model, unknown: int, total: int, events: str = "the events read",
                       check: str = "the input") -> str:
    """:func:`unknown_note` from the counts: ``unknown`` of ``total`` events read (the ends not counted);
    ``events`` and ``check`` name what was read (``train --validation`` names its file)."""
    if not total or unknown <= UNKNOWN_NOTE_SHARE * total:
        return ""
    vocab = getattr(model, "vocab_", None)
    known = f" of {human(len(vocab) - 4)} distinct events" if vocab is not None else ""
    fmt = getattr(model, "format_", None)
    trained = f" (it was trained on {fmt}{known})" if fmt else ""
    return (f"  note: {unknown / total:.0%} of {events} are unknown to the model{trained}: check that "
            f"{check} is what it was trained on (--format, the event numbering, a raw log not yet parsed)")


SINGLE_EVENT_MIN = 10  # sequences read, at least, before a file of one-event sessions is remarked on


def single_event_sessions(lengths) -> int:
    """How many of the sessions of ``lengths`` (finished ones') hold a single event (or none) where they are
    most of at least :data:`SINGLE_EVENT_MIN`; else 0."""
    lengths = sorted(lengths)
    if len(lengths) < SINGLE_EVENT_MIN or lengths[len(lengths) // 2] > 1:
        return 0
    return sum(length <= 1 for length in lengths)


def single_event_note(model, findings) -> str:
    """A note when most sessions read hold a single event and the model trained on longer ones: a file of
    one event per line read as sessions (``--format stream`` forgotten) flags every line by its counts."""
    lengths = [len(f.scores.sequence) for f in findings if f.scores.sequence.complete]
    single = single_event_sessions(lengths)
    if not single:
        return ""
    n, events = getattr(model, "n_train_sequences_", None), getattr(model, "n_train_events_", None)
    if not n or not events or events / n < 2:
        return ""  # a model of single-event sessions: nothing unusual
    return (f"  note: {human(single)} of {human(len(lengths))} sequences hold a single event, where the model's "
            f"training sessions held {events / n:.1f} on average: a file of one event per line is read as one "
            "sequence with --format stream")


def detection_summary(model, detector, findings, templates: dict | None = None, outputs: dict | None = None,
                      top: int = TOP, width: int = 120) -> str:
    """The lines ``detect`` ends with. ``outputs``: what went where (``{"findings": path or None, ...}``)."""
    findings = list(findings)
    n = len(findings)
    anomalous = [f for f in findings if f.anomalous]
    share = f" ({len(anomalous) / n:.1%})" if n else ""
    lines = [f"{human(len(anomalous))} of {human(n)} sequences anomalous{share}"]
    streams = [f for f in findings if not f.scores.sequence.complete and len(f.scores.sequence)]
    if streams:  # a stream is one sequence: the count its per-event promise is about is that of its events
        flagged = sum(int(np.count_nonzero(f.event_anomalous)) for f in streams)
        total = sum(len(f.scores.sequence) for f in streams)
        lines.append(f"  anomalous events: {human(flagged)} of {human(total)} ({flagged / total:.2%}) in "
                     f"{'the stream' if len(streams) == 1 else f'the {human(len(streams))} streams'}")
    by = counts_by_reason(findings)
    if by:
        lines.append("  by reason: " + ", ".join(f"{k} {human(v)}" for k, v in by.most_common()))
    p = promise(detector)
    lines.append("  " + promise_text(p))
    if p["fpr"] is not None and p.get("unit") == "sequences" and any(not f.scores.sequence.complete
                                                                      for f in findings):
        lines.append("  a stream is judged event by event against cuts calibrated on whole sessions: that rate is "
                     "per session, not per event of a stream")
    unknown = unknown_note(model, findings)
    if unknown:
        lines.append(unknown)
    single = "" if unknown else single_event_note(model, findings)  # unknown events: --format is not the remedy
    if single:
        lines.append(single)
    rule = _fixed_rule(detector)
    if rule:
        lines.append(f"  {rule} replaces the surprise view's calibrated cut: that rule is outside the budget, so "
                     "the rate above does not bound its false positives")
    worst = sorted(anomalous, key=lambda f: -f.score)[:top]
    if worst:
        lines.append(f"  {'highest scores' if len(worst) > 1 else 'the anomalous sequence'} (score: above 1 is "
                     "anomalous):")
        ids = [printable(f.scores.sequence.id) for f in worst]
        idw = min(ID_WIDTH, max(len(sid) for sid in ids))
        for f, sid in zip(worst, ids):
            sid = sid if len(sid) <= idw else sid[: idw - 1] + "…"
            head = f"  {f.score:>9.2f}  {sid:<{idw}}  "
            lines.append(_clip(head + printable(f.reason), width))
            if f.position is not None:
                at = f" (at {printable(os.path.basename(f.scores.sequence.location(f.position)))})"  # always whole
                what = event_text(model, f, templates, room=width - len(head) - len(at))
                lines.append(" " * len(head) + what + at)
    outputs = outputs or {}
    where = outputs.get("findings") or "standard output"
    lines.append(f"  full output: {where} (one JSON line per sequence"
                 f"{', anomalous only' if outputs.get('only_anomalous') else ''})")
    if outputs.get("events"):
        lines.append(f"  per-event table: {outputs['events']}")
    if outputs.get("plot"):
        lines.append(f"  plots: {outputs['plot']}")
    return "\n".join(lines)


def _fixed_rule(detector) -> str | None:
    """``--top-g 9`` or ``--threshold 0.001`` when detect replaced the calibrated cut with a fixed rule."""
    if getattr(detector, "top_g", None) is not None:
        return f"--top-g {detector.top_g}"
    if getattr(detector, "threshold", None) is not None:
        return f"--threshold {detector.threshold:g}"
    return None


def readable_event(event: str) -> str:
    """An event as a person can read it: a text's space, newline or empty token quoted (``' '``, ``'\\n'``);
    otherwise as :func:`printable` shows it (a control character escaped)."""
    event = str(event)
    if not event or any(c.isspace() for c in event):
        return repr(event)  # repr escapes whatever else it holds
    return printable(event)


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"
