"""The JSON lines ``detect`` writes, one per finding, built once per distinct finding.

Sessions with the same events share one decision (:meth:`seqrnn.detect.Detector.decide` computes it
once and gives each session a copy); their JSON objects differ only in the session's own ``id`` and
``location``. :class:`FindingLines` serialises the rest once, with both fields as placeholders, and fills
them in for each session: the same text as ``finite_json(finding_dict(...))``, byte for byte.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _json_string  # what json.dumps writes for a str

import numpy as np

from ..artifacts import finite_json
from .findings import finding_dict

_ID, _LOCATION = "\x00seqrnn id\x00", "\x00seqrnn location\x00"  # never in a JSON text: \u0000 there


class FindingLines:
    """``lines(f)``: the JSON line of finding ``f`` (without its newline), ``finite_json`` of
    :func:`~seqrnn.report.findings.finding_dict` of it.

    A finished session whose decision is a copy of one already written (the same events, and the same
    objects for every value the line shows) reuses that one's text. Streams and unfinished sequences
    (their line lists events with their own locations) are written in full.
    """

    def __init__(self, model, templates: dict | None = None, k: int = 5, model_dir: str | None = None):
        self.model, self.templates, self.k, self.model_dir = model, templates, k, model_dir
        self._done: dict[tuple, tuple] = {}  # key -> (text parts, the objects the key names by id)

    def full(self, f) -> dict:
        return finding_dict(self.model, f, self.templates, self.k)

    def __call__(self, f) -> str:
        seq = f.scores.sequence
        key = self._key(f) if seq.complete and isinstance(seq.id, str) else None
        if key is None:
            return finite_json(self.full(f), self.model_dir)
        entry = self._done.get(key[0])
        if entry is None:
            found = self.full(f)
            if not isinstance(found.get("location", ""), str):
                return finite_json(found, self.model_dir)
            entry = self._done[key[0]] = (self._parts(found), key[1])
        parts = entry[0]
        if len(parts) == 2:
            return parts[0] + _json_string(seq.id) + parts[1]
        return parts[0] + _json_string(seq.id) + parts[1] + _json_string(seq.location(f.position)) + parts[2]

    def _parts(self, found: dict) -> tuple[str, ...]:
        """The text of ``found`` split where its ``id`` and ``location`` go."""
        template = dict(found, id=_ID)
        if "location" in found:
            template["location"] = _LOCATION
        text = finite_json(template, self.model_dir)
        head, _, rest = text.partition(_json_string(_ID))
        if "location" not in found:
            return head, rest
        middle, _, tail = rest.partition(_json_string(_LOCATION))
        return head, middle, tail

    @staticmethod
    def _key(f):
        """``(key, objects)``: what the line of ``f`` is made of, apart from its id and location: its length
        and the event at its position by value, every other value by identity (``objects`` keeps them alive,
        so that an id is never reused while the key is held); None where a value is not of the expected
        shape."""
        sc = f.scores
        seq = sc.sequence
        p = f.position
        objects = [sc.prob, sc.rank, sc.topk, f.anomalous, f.score, p, f.view, f.reason, f.p_value]
        names = []
        for name, v in f.views.items():
            if isinstance(v, dict):
                names += (name, len(v))
                names += v
                objects += v.values()
            else:
                names += (name, -1)
                objects.append(v)
        for d in f.count_deviations[:5]:
            if not isinstance(d, dict):
                return None
            names.append(len(d))
            names += d
            objects += d.values()
        event = seq.tokens[p] if f.anomalous and p is not None and p < len(seq) else None
        key = (len(seq), event, int(np.count_nonzero(f.event_anomalous)), tuple(names), tuple(map(id, objects)))
        return key, objects
