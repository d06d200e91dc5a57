"""Identical inputs computed once: the first occurrence of each distinct key, and where each key went.

HDFS has about 5% distinct sessions, so scoring, evaluation and the
classifier compute each distinct sequence once and spread the result back.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np


def distinct(keys: Iterable[Hashable]) -> tuple[list[int], np.ndarray]:
    """``(first, inverse)``: ``first[j]`` is the position of the first occurrence of the ``j``-th
    distinct key (in order of first appearance); ``inverse[i]`` (int64) the ``j`` of key ``i``.

    ``[results[j] for j in inverse]`` spreads per-distinct results back to every key, and
    ``np.bincount(inverse)`` counts each distinct key's occurrences.

    >>> distinct(["a", "b", "a", "c", "b"])
    ([0, 1, 3], array([0, 1, 0, 2, 1]))
    """
    index: dict = {}
    first: list[int] = []
    inverse: list[int] = []
    for i, key in enumerate(keys):
        j = index.setdefault(key, len(first))
        if j == len(first):
            first.append(i)
        inverse.append(j)
    return first, np.array(inverse, dtype=np.int64)


def sequence_keys(ids_list: Iterable[np.ndarray], complete: Iterable[bool]) -> list[tuple[bytes, bool]]:
    """One hashable key per encoded sequence: its ids and whether it is a finished session."""
    return [(a.tobytes(), bool(c)) for a, c in zip(ids_list, complete)]
