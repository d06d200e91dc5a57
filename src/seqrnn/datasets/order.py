"""An order benchmark with known truth: interleaved concurrent tasks.

A session is a log of tasks of ``types`` kinds (``A``, ``B``, ...) running
at once. Each task opens (``A.open``), works at least once (``A.work``) and
closes (``A.close``); the tasks of one kind interleave with each other and
with the other kinds' tasks and ``tick`` events, and the events name no
task, as log templates do. The grammar is a set of counters:

* at most ``capacity`` tasks of a kind are open at once;
* a task closes only after it opened and worked;
* a kind works only while one of its tasks is open.

Each anomaly is a normal session with one event moved, so that exactly one
rule breaks somewhere:

``overflow``
    an ``open`` moved earlier: more tasks of a kind open at once than the
    system allows;
``early-close``
    a ``close`` moved earlier, before a task of its kind opened and worked
    (a task closed before it opens);
``stray-work``
    a ``work`` moved to where no task of its kind is open (phases out of order).

Moving an event keeps every event count, and an anomaly is kept only if
every n-gram of it up to ``ngram_order`` (with the session's start and end)
occurs in the training sessions: count vectors and n-gram models up to that
order see nothing unusual, and only a model that keeps track of the order
over a long range can tell. ``python -m seqrnn.datasets.order OUT_DIR``
writes ``train``, ``test_normal`` and ``test_abnormal`` (sessions format;
an anomaly's id names its kind).
"""

from __future__ import annotations

import os
import sys

import numpy as np

KINDS = ("overflow", "early-close", "stray-work")
TICK = "tick"


def _names(types: int) -> list[str]:
    return [chr(ord("A") + t) for t in range(types)]


def session(rng, types: int = 2, capacity: int = 3, tasks: tuple[int, int] = (3, 6), tick: float = 0.15) -> list[str]:
    """One normal session: every kind runs ``tasks`` (low, high) tasks, at most ``capacity`` at once."""
    names = _names(types)
    left = {k: int(rng.integers(tasks[0], tasks[1] + 1)) for k in names}
    depth = {k: 0 for k in names}
    worked = {k: 0 for k in names}  # open tasks that have worked (ready to close)
    out = []
    while any(left.values()) or any(depth.values()):
        actions = []
        for k in names:
            if left[k] and depth[k] < capacity:
                actions.append((k, "open"))
            if depth[k]:
                actions.append((k, "work"))
            if worked[k]:
                actions.append((k, "close"))
        if rng.random() < tick:
            out.append(TICK)
            continue
        k, what = actions[int(rng.integers(len(actions)))]
        if what == "open":
            left[k] -= 1
            depth[k] += 1
        elif what == "work":
            worked[k] = min(depth[k], worked[k] + 1)
        else:
            depth[k] -= 1
            worked[k] -= 1
        out.append(f"{k}.{what}")
    return out


def violation(tokens: list[str], capacity: int = 3) -> str | None:
    """The first rule ``tokens`` break (a kind of :data:`KINDS`), or ``None`` for a normal session."""
    depth: dict[str, int] = {}
    worked: dict[str, int] = {}
    for t in tokens:
        if t == TICK:
            continue
        k, what = t.split(".")
        d, w = depth.get(k, 0), worked.get(k, 0)
        if what == "open":
            if d >= capacity:
                return "overflow"
            depth[k] = d + 1
        elif what == "work":
            if d == 0:
                return "stray-work"
            worked[k] = min(d, w + 1)
        else:
            if w == 0:
                return "early-close"
            depth[k], worked[k] = d - 1, w - 1
    if any(depth.values()):
        return "unfinished"
    return None


def ngrams(tokens: list[str], order: int) -> set:
    padded = ["<s>"] + tokens + ["</s>"]
    return {tuple(padded[i:i + n]) for n in range(1, order + 1) for i in range(len(padded) - n + 1)}


def anomaly(rng, normal: list[str], kind: str, seen: set, order: int, capacity: int = 3,
            tries: int = 200) -> list[str] | None:
    """``normal`` with one event moved so that it breaks rule ``kind``, every n-gram up to ``order`` in
    ``seen``; ``None`` if no such move was found in ``tries``."""
    what = {"overflow": "open", "early-close": "close", "stray-work": "work"}[kind]
    where = [i for i, t in enumerate(normal) if t.endswith("." + what)]
    if not where:
        return None
    for _ in range(tries):
        i = where[int(rng.integers(len(where)))]
        rest = normal[:i] + normal[i + 1:]
        j = int(rng.integers(len(rest) + 1))
        if j == i:
            continue
        cand = rest[:j] + [normal[i]] + rest[j:]
        if violation(cand, capacity) == kind and ngrams(cand, order) <= seen:
            return cand
    return None


def make(seed: int = 0, train: int = 4000, normal: int = 2000, abnormal: int = 600, types: int = 2,
         capacity: int = 3, ngram_order: int = 4) -> dict:
    """The benchmark: ``{"train", "test_normal": [tokens], "test_abnormal": [(kind, tokens)]}``."""
    rng = np.random.default_rng(seed)
    gen = lambda: session(rng, types, capacity)  # noqa: E731
    tr = [gen() for _ in range(train)]
    te = [gen() for _ in range(normal)]
    seen = set().union(*(ngrams(s, ngram_order) for s in tr))
    ab = []
    while len(ab) < abnormal:
        kind = KINDS[len(ab) % len(KINDS)]
        cand = anomaly(rng, gen(), kind, seen, ngram_order, capacity)
        if cand is not None:
            ab.append((kind, cand))
    return {"train": tr, "test_normal": te, "test_abnormal": ab}


def write(folder: str, seed: int = 0, **sizes) -> dict[str, str]:
    """Write the benchmark as session files in ``folder``; name -> path."""
    data = make(seed, **sizes)
    os.makedirs(folder, exist_ok=True)
    rows = {"train": [(f"n{i}", s) for i, s in enumerate(data["train"])],
            "test_normal": [(f"t{i}", s) for i, s in enumerate(data["test_normal"])],
            "test_abnormal": [(f"{k}-{i}", s) for i, (k, s) in enumerate(data["test_abnormal"])]}
    paths = {}
    for name, items in rows.items():
        paths[name] = os.path.join(folder, name)
        with open(paths[name], "w", encoding="utf-8") as fh:
            fh.writelines(f"{sid},{' '.join(s)}\n" for sid, s in items)
    return paths


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: python -m seqrnn.datasets.order OUT_DIR [SEED]")
    for name, path in write(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 0).items():
        print(f"{name}: {path}")
