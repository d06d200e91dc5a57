"""What the user reads as data: JSON findings, the per-event table, templates."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ..data.formats import iter_lines
from ..data.vocab import EOS
from ..errors import InputError


def load_templates(path: str) -> dict[str, str]:
    """Event id -> template text: the one reader of template files (a parsed folder's too, see
    :func:`seqrnn.parse.folder.read_templates`).

    Three layouts: one template per line, event ``N`` on line ``N`` (as in the
    HDFS data here), a CSV with ``EventId`` and ``EventTemplate`` columns
    (loghub's ``*_templates.csv``), or one with ``id`` and ``template`` columns
    (the ``templates.csv`` of a ``seqrnn parse`` folder). A CSV row without
    both columns is refused, naming its line.
    """
    lines = [t for _, t in iter_lines(path)]
    if not lines:
        raise InputError("template file is empty", path)
    try:
        header = next(csv.reader([lines[0]]))
        if header == ["id", "template", "count"]:  # seqrnn parse's: its ids and counts checked
            from ..parse.folder import read_templates_file

            return read_templates_file(path)
        for id_column, text_column in (("EventId", "EventTemplate"), ("id", "template")):  # loghub's; others
            if id_column in header and text_column in header:
                i, j = header.index(id_column), header.index(text_column)
                rows = csv.reader(io.StringIO("\n".join(lines[1:])))
                out = {}
                start = 1  # the line (of the rows) the next row starts on
                for row in rows:
                    if any("\n" in cell for cell in row):  # a quote left open ran over the lines after it
                        raise InputError("a quote opened here is never closed (it runs over the lines after it)",
                                         path, start + 1)
                    start = rows.line_num + 1
                    if not row:
                        continue
                    if len(row) <= max(i, j):
                        raise InputError(f"expected the {id_column} and {text_column} columns of the header",
                                         path, rows.line_num + 1)
                    out[row[i]] = row[j]
                return out
    except csv.Error as exc:
        raise InputError(f"not a template file (CSV: {exc})", path) from None
    return {str(i): t for i, t in enumerate(lines, start=1)}


END = "<end>"  # the end of a sequence, named as an event (``event``, ``expected``)
END_TEMPLATE = "<end of sequence>"  # its template text: the end has no log line


def token_name(model, i: int) -> str:
    return END if i == EOS else model.vocab_.itos[int(i)]


def template_of(templates: dict, event: str) -> str | None:
    """The template text of ``event`` (None where ``templates`` has none); the end's is :data:`END_TEMPLATE`."""
    return END_TEMPLATE if event == END else templates.get(event)


MAX_LISTED = 1000  # anomalous events listed per stream in the JSON output


def finding_dict(model, f, templates: dict | None = None, k: int = 5) -> dict:
    """One JSON object per input sequence."""
    sc = f.scores
    seq = sc.sequence
    out = {"id": seq.id, "anomalous": f.anomalous, "score": round(f.score, 6), "length": len(seq),
           "p_value": round(float(getattr(f, "p_value", 1.0)), 8)}
    if f.anomalous and f.position is not None:
        p = f.position
        is_end = p >= len(seq)
        event = END if is_end else seq.tokens[p]
        view = getattr(f, "view", None)
        out.update(view=view, position=p, location=seq.location(p), event=event, reason=f.reason)
        # What the model expected is the explanation of an event view only (not of unusual counts).
        expected = None
        if view in (None, "unseen", "surprise"):
            expected = [token_name(model, j) for j in sc.topk[p][:k]]
            out.update(probability=float(sc.prob[p]), rank=int(sc.rank[p]), expected=expected)
        if templates is not None:
            out["event_template"] = template_of(templates, event)
            if expected is not None:
                out["expected_templates"] = [template_of(templates, e) for e in expected]
        if f.count_deviations:
            out["count_deviations"] = f.count_deviations[:5]
        flagged = np.flatnonzero(f.event_anomalous)
        out["anomalous_events"] = int(len(flagged))
        if len(seq) > 0 and not seq.complete:
            # A stream is one long sequence: list each anomalous event, not only the first.
            out["events"] = [{"position": int(q), "location": seq.location(q), "event": seq.tokens[q],
                              "probability": float(sc.prob[q]),
                              "expected": [token_name(model, j) for j in sc.topk[q][:k]]}
                             for q in flagged[:MAX_LISTED]]
    out["views"] = {name: {key: (round(x, 6) if isinstance(x, float) and math.isfinite(x) else
                                 x if not isinstance(x, float) else None) for key, x in v.items()}
                    if isinstance(v, dict) else round(v, 6) for name, v in f.views.items()}
    return out


EVENT_FIELDS = ("id", "position", "location", "event", "probability", "nll", "rank", "anomalous", "expected")


def write_event_table(path: str, model, findings, k: int = 5) -> None:
    """The per-event table: one row per scored event (the original's probability files); it appears whole
    or not at all (:func:`seqrnn.artifacts.atomic_file`)."""
    from ..artifacts import atomic_file

    with atomic_file(path) as fh:
        w = csv.writer(fh)
        w.writerow(EVENT_FIELDS)
        for f in findings:
            sc = f.scores
            seq = sc.sequence
            for p in range(len(sc)):
                event = seq.tokens[p] if p < len(seq) else token_name(model, sc.ids[p])  # unseen: its own name
                w.writerow([seq.id, p, seq.location(p), event,
                            f"{sc.prob[p]:.6g}", f"{sc.nll[p]:.6g}", int(sc.rank[p]), int(f.event_anomalous[p]),
                            " ".join(token_name(model, j) for j in sc.topk[p][:k])])


def fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)
