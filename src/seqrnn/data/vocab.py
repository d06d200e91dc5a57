"""The vocabulary: string tokens to integer ids and back.

Ids 0-3 are reserved: padding, unknown (a token never seen in training),
begin and end of sequence. Real tokens follow, most frequent first, so the
ids are the same for the same training data whatever order it came in.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


def with_end(ids: np.ndarray, complete: bool) -> np.ndarray:
    """The events a model predicts in a sequence: a finished session ends with ``<eos>``, an event
    like any other (one that stops too early is found there); an unfinished one has no end yet."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.concatenate((ids, [EOS])) if complete else ids


class Vocabulary:
    def __init__(self, tokens: Iterable[str] = (), counts: Iterable[int] | None = None):
        self.itos: list[str] = list(SPECIALS) + list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be distinct and must not be reserved names")
        self.counts = list(counts) if counts is not None else []

    @classmethod
    def build(cls, sequences, min_count: int = 1, max_size: int | None = None) -> "Vocabulary":
        counter: Counter = Counter()
        for s in sequences:
            counter.update(s.tokens)
        for special in SPECIALS:
            counter.pop(special, None)
        items = sorted(((t, c) for t, c in counter.items() if c >= min_count), key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            items = items[: max(0, max_size - len(SPECIALS))]
        return cls([t for t, _ in items], [c for _, c in items])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> np.ndarray:
        get = self.stoi.get
        found = [get(t, UNK) for t in tokens]
        ids = np.array(found, dtype=np.int64)
        if found and min(found) < len(SPECIALS):
            # A reserved name in the input ("<pad>") is a token never seen in training, not padding.
            ids[ids < len(SPECIALS)] = UNK
        return ids

    def decode(self, ids) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def to_dict(self) -> dict:
        return {"tokens": self.itos[len(SPECIALS):], "counts": self.counts}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(d["tokens"], d.get("counts"))
