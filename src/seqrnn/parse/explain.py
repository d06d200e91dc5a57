"""The way back from an anomalous event to the log: its parameters and raw lines.

``Explainer(folder).explain(finding_dict, sequence)`` is what ``detect
--explain`` adds to a finding under ``explain``: the event's ``parameters``
(the variable parts of its raw line) and the raw ``lines`` of the session
around it (``location`` ``file:line``, ``event``, ``anomalous``, ``text``).
The templates of the event and of the expected ones are the finding's own
``event_template`` and ``expected_templates`` (a parsed folder brings its
templates), not repeated here.
"""

from __future__ import annotations

import os

from ..errors import InputError
from ..tail import TOO_LONG, read_lines
from .folder import read_info, read_locations, read_parameters
from .pipeline import HEAD_BYTES

AROUND = 5  # raw lines shown before and after the anomalous event


class Explainer:
    def __init__(self, folder: str):
        info = read_info(folder)
        self.sources = [f["path"] for f in info["files"]]
        self.paths = [f.get("abspath") or f["path"] for f in info["files"]]
        self.heads = [(f.get("head_bytes"), f.get("head_sha256")) for f in info["files"]]
        self.changed: set[int] = set()  # files that no longer begin as when parsed: their lines are not shown
        files, lines = read_locations(folder, len(self.sources))
        self.row = {(int(f), int(n)): i for i, (f, n) in enumerate(zip(files, lines))}
        self.parameters = read_parameters(folder)
        if len(self.parameters) != len(files):
            raise InputError(f"{len(self.parameters):,} lines for the {len(files):,} rows of lines.csv",
                             os.path.join(folder, "parameters"))
        self._text: dict[tuple[int, int], str] = {}

    def raw_lines(self, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """Text of the raw lines ``(file index, line)`` (those that can still be read)."""
        need: dict[int, set[int]] = {}
        for f, n in wanted:
            if (f, n) not in self._text:
                need.setdefault(f, set()).add(n)
        for f, numbers in need.items():
            path = self.paths[f]
            if not path or not os.path.isfile(path) or not self._same(f, path):
                continue
            last = max(numbers)
            with open(path, "rb") as fh:
                # a line over tail.RAW_LINE_LIMIT is skipped unread whole: parse skipped it, so it is none shown
                for number, raw in read_lines(fh, True, path):
                    if number in numbers and raw is not TOO_LONG:
                        self._text[(f, number)] = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if number >= last:
                        break
        return {k: self._text[k] for k in wanted if k in self._text}

    def prefetch(self, found_seqs) -> None:
        """Read at once (one pass over each log) the raw lines that :meth:`explain` will show for each
        ``(finding dict, sequence)``, after :meth:`forget` drops those read before: explaining finding after
        finding read each log again from its start, the time of every anomaly times the log's lines."""
        self.forget()
        self.raw_lines([k for found, seq in found_seqs for k in self._keys(found, seq)])

    def forget(self) -> None:
        self._text.clear()

    def _keys(self, found: dict, seq) -> list[tuple[int, int]]:
        """``(file index, line)`` of the raw lines shown around the finding's position."""
        p = found.get("position")
        if p is None or seq.lines is None:
            return []
        files = seq.files if seq.files is not None else [0] * len(seq.lines)
        lo, hi = max(0, p - AROUND), min(len(seq), p + AROUND + 1)
        return [(int(files[q]), int(seq.lines[q])) for q in range(lo, hi)]

    def _same(self, f: int, path: str) -> bool:
        """Whether file ``f`` still begins as it did when parsed; a rotated, truncated or replaced log is
        remembered in :attr:`changed`. Without a well-formed record of its head (at least one byte: a file
        that had none had no line) nothing of it is read: a hand-made ``parse.json`` naming another file
        (``~/.aws/credentials``) with no head, or an empty one, whose hash every file matches, would
        otherwise have its lines copied into detect's output and the report."""
        size, digest = self.heads[f]
        if not (type(size) is int and 1 <= size <= HEAD_BYTES and isinstance(digest, str) and len(digest) == 64):
            self.changed.add(f)
            return False
        import hashlib

        with open(path, "rb") as fh:
            same = hashlib.sha256(fh.read(size)).hexdigest() == digest
        if not same:
            self.changed.add(f)
        return same

    def explain(self, found: dict, seq, flagged=None) -> dict:
        """What to add to ``found`` (a finding's JSON dict) of ``seq`` (a sequence of the folder).
        ``flagged``: the finding's anomalous events (``event_anomalous``), each line's ``anomalous``; without
        it, the line of the finding's position alone."""
        out: dict = {}
        p = found.get("position")
        if p is None or seq.lines is None:
            return out
        files = seq.files if seq.files is not None else [0] * len(seq.lines)
        if p < len(seq):
            row = self.row.get((int(files[p]), int(seq.lines[p])))
            out["parameters"] = self.parameters[row] if row is not None and row < len(self.parameters) else []
        lo = max(0, p - AROUND)
        keys = self._keys(found, seq)
        text = self.raw_lines(keys)
        out["lines"] = [{"location": f"{self.sources[f]}:{n}", "event": seq.tokens[q],
                         "anomalous": q == p or (flagged is not None and q < len(flagged) and bool(flagged[q])),
                         "text": text.get((f, n))} for q, (f, n) in zip(range(lo, lo + len(keys)), keys)]
        changed = sorted({self.sources[f] for f, _ in keys if f in self.changed})
        if changed:  # why their text is null: the lines there now are other lines
            out["changed_since_parse"] = changed
        return out
