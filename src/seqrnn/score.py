"""Per-event scores: for every position, how likely the event that came was.

Any model's ``log_proba`` gives, for each position, a distribution over the
vocabulary given the events before it. From it this module derives, per
event: the probability of the true event, its rank among all events (1 is
the model's first guess), its negative log probability and the top-k events
the model expected. Identical sequences are scored once (HDFS has about 5%
distinct sessions) and the model is asked for all distinct sequences at
once, so that it can batch them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.distinct import distinct, sequence_keys
from .data.formats import Sequence
from .data.vocab import BOS, PAD, UNK, with_end

NOT_PREDICTED = (PAD, UNK, BOS)  # never offered as an expected event


@dataclass
class EventScores:
    """The scores of one sequence; arrays have one row per scored event.

    A finished session of ``n`` events has ``n + 1`` rows: the last is its
    end (``EOS``), scored like any event.
    """

    sequence: Sequence
    ids: np.ndarray  # the true event at each position (EOS last for sessions)
    prob: np.ndarray
    nll: np.ndarray
    rank: np.ndarray  # 1 = the most likely event
    topk: np.ndarray  # (rows, k) ids of the events expected, most likely first
    topk_prob: np.ndarray

    @property
    def unknown(self) -> np.ndarray:
        return self.ids == UNK

    def __len__(self) -> int:
        return len(self.ids)


def true_log_proba_and_rank(logp: np.ndarray, y: np.ndarray):
    """Log-probability of each true event and its rank among the events a model can expect."""
    lp = logp.astype(np.float64, copy=True)
    lp[:, list(NOT_PREDICTED)] = -np.inf
    true_lp = logp[np.arange(len(y)), y].astype(np.float64)
    rank = (lp > true_lp[:, None]).sum(1) + 1
    rank[y == UNK] = lp.shape[1]  # an unseen event ranks below every known one
    return true_lp, rank, lp


def top_events(lp: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` most likely events of each row, most likely first, ties in id order: the first ``k`` of the
    rows' stable ``argsort(-lp)``, in an array of its own (a slice of that sort would keep every event's
    rank alive) and without sorting the whole vocabulary when ``k`` is much smaller."""
    n, V = lp.shape
    if k <= 0:
        return np.zeros((n, 0), np.intp)
    if k == 1:
        return np.argmax(lp, axis=1)[:, None]  # the first of the largest
    if 8 * k > V:
        return np.argsort(-lp, axis=1, kind="stable")[:, :k].copy()
    part = np.argpartition(-lp, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(lp, part, 1)
    top = np.take_along_axis(part, np.lexsort((part, -vals)), 1)
    kth = vals.min(1, keepdims=True)
    ties = (lp == kth).sum(1) != (vals == kth).sum(1)  # the k-th value is shared beyond the k: ids decide
    if ties.any():
        top[ties] = np.argsort(-lp[ties], axis=1, kind="stable")[:, :k]
    return top


def row_scores(y: np.ndarray, logp: np.ndarray, topk: int):
    """``(prob, nll, rank, top, top_prob)`` of rows ``logp`` whose true events are ``y``, computed in blocks
    of at most about :data:`BATCH_CELLS` values (each block takes copies of its rows: a row's scores are
    its own)."""
    V = logp.shape[1]
    k = min(topk, V - len(NOT_PREDICTED))
    step = max(1, BATCH_CELLS // max(V, 1))
    parts = []
    for s in range(0, len(y), step) if len(y) > step else (0,):
        true_lp, rank, lp = true_log_proba_and_rank(logp[s:s + step], y[s:s + step])
        top = top_events(lp, k)
        parts.append((np.exp(true_lp), -true_lp, rank, top, np.exp(np.take_along_axis(lp, top, 1))))
    return tuple(np.concatenate(a) for a in zip(*parts)) if len(parts) > 1 else parts[0]


def event_scores(seq: Sequence, ids: np.ndarray, logp: np.ndarray, topk: int) -> EventScores:
    y = with_end(ids, seq.complete)
    return EventScores(seq, y, *row_scores(y, logp, topk))


BATCH_CELLS = 1 << 20  # rows x vocabulary scored at once by event_scores_batch (its memory: about 30 MB)


def event_scores_batch(seqs: list[Sequence], ids_list: list[np.ndarray], logps: list[np.ndarray],
                       topk: int) -> list[EventScores]:
    """:func:`event_scores` of each sequence, the same values, computed on the rows of many sequences at once
    (one ``argsort`` for a block of sequences rather than one per sequence); each block holds at most about
    :data:`BATCH_CELLS` values of ``log p``, a longer sequence is a block of its own."""
    out: list[EventScores] = []
    start = 0
    while start < len(seqs):
        end, cells = start, 0
        while end < len(seqs) and (end == start or cells + logps[end].size <= BATCH_CELLS):
            cells += logps[end].size
            end += 1
        if end - start == 1:
            out.append(event_scores(seqs[start], ids_list[start], logps[start], topk))
        else:
            out += _event_scores_block(seqs[start:end], ids_list[start:end], logps[start:end], topk)
        start = end
    return out


def _event_scores_block(seqs, ids_list, logps, topk: int) -> list[EventScores]:
    ys = [with_end(ids, seq.complete) for seq, ids in zip(seqs, ids_list)]
    true_lp, rank, lp = true_log_proba_and_rank(np.concatenate(logps), np.concatenate(ys))
    k = min(topk, lp.shape[1] - len(NOT_PREDICTED))
    top = top_events(lp, k)
    top_prob = np.exp(np.take_along_axis(lp, top, 1))
    prob, nll = np.exp(true_lp), -true_lp
    out, a = [], 0
    for seq, y in zip(seqs, ys):
        b = a + len(y)
        out.append(EventScores(seq, y, prob[a:b], nll[a:b], rank[a:b], top[a:b], top_prob[a:b]))
        a = b
    return out


#: Values of ``log p`` (rows x vocabulary) that scoring asks a model for at once (128 MiB of float32): the
#: distinct sequences are asked for in groups of at most this many, and a sequence longer than that alone is
#: read piece by piece as a stream (:data:`PIECE_EVENTS` events a piece), so that a large vocabulary (words,
#: raw ids) over many events takes memory for its per-event scores, not for every event's distribution.
SCORE_CELLS = 1 << 25
PIECE_EVENTS = 4096


def log_proba_groups(model, ids_list: list[np.ndarray], complete: list[bool]):
    """Yield ``(whole, [(i, logp), ...])``: the ``log_proba`` of the sequences, in order, about
    :data:`SCORE_CELLS` values at a time. ``whole``: each ``logp`` is all rows of sequence ``i``; else one
    piece of one sequence's rows (its pieces come in order, one after the other). A model that cannot be read
    as a stream (``streams`` false) is asked for a long sequence whole."""
    V = max(len(model.vocab_), 1)
    group: list[int] = []
    cells = 0
    for i, (ids, c) in enumerate(zip(ids_list, complete)):
        n = (len(ids) + bool(c)) * V
        if group and cells + n > SCORE_CELLS:
            yield True, list(zip(group, model.log_proba([ids_list[g] for g in group],
                                                        [complete[g] for g in group])))
            group, cells = [], 0
        if n > SCORE_CELLS and model.streams:
            step = max(1, min(PIECE_EVENTS, SCORE_CELLS // V))
            state = model.stream_start()
            for start in range(0, len(ids), step):
                lp, state = model.stream_step(ids[start:start + step], state)
                yield False, [(i, lp)]
            if c:
                yield False, [(i, model.stream_end(state))]
            continue
        group.append(i)
        cells += n
    if group:
        yield True, list(zip(group, model.log_proba([ids_list[g] for g in group], [complete[g] for g in group])))


def _scores_of_distinct(model, seqs: list[Sequence], ids_list: list[np.ndarray], complete: list[bool], topk: int):
    """``(first, inverse, scored)``: :func:`~seqrnn.data.distinct.distinct` of the sequences and the
    :class:`EventScores` of each distinct one (of ``seqs[first[j]]``), computed with at most about
    :data:`SCORE_CELLS` values of ``log p`` held at once."""
    first, inverse = distinct(sequence_keys(ids_list, complete))
    d_seqs = [seqs[i] for i in first]
    d_ids = [ids_list[i] for i in first]
    scored: list[EventScores | None] = [None] * len(first)
    pieces: list = []  # the row scores of the sequence being read in pieces, and how many rows they hold
    done = 0
    for whole, group in log_proba_groups(model, d_ids, [complete[i] for i in first]):
        if whole:
            idx = [j for j, _ in group]
            for j, sc in zip(idx, event_scores_batch([d_seqs[j] for j in idx], [d_ids[j] for j in idx],
                                                     [lp for _, lp in group], topk)):
                scored[j] = sc
            continue
        (j, lp), = group
        if done == 0:  # the first piece of a sequence: its true events, once
            y = with_end(d_ids[j], d_seqs[j].complete)
        pieces.append(row_scores(y[done:done + len(lp)], lp, topk))
        done += len(lp)
        if done == len(y):
            scored[j] = EventScores(d_seqs[j], y, *(np.concatenate(a) for a in zip(*pieces)))
            pieces, done = [], 0
    return first, inverse, scored


def score_sequences(model, seqs: list[Sequence], topk: int = 5) -> list[EventScores]:
    """Per-event scores of each sequence; identical sequences share their arrays."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 0:
        from .errors import InputError

        raise InputError(f"topk must be an integer >= 0, not {topk!r}", params="topk")
    ids_list, complete = model.encode(seqs)
    first, inverse, scored = _scores_of_distinct(model, seqs, ids_list, complete, topk)
    return [scored[j] if scored[j].sequence is s else _with_sequence(scored[j], s) for s, j in zip(seqs, inverse)]


def _with_sequence(scores: EventScores, seq: Sequence) -> EventScores:
    """``dataclasses.replace(scores, sequence=seq)``, without its cost per call: the arrays are shared."""
    out = object.__new__(EventScores)
    out.__dict__.update(scores.__dict__)
    out.sequence = seq
    return out


def evaluate(model, seqs: list[Sequence], ks=range(1, 11)) -> dict:
    """Next-event loss (nats), perplexity, accuracy and top-k accuracy over all scored events."""
    ids_list, complete = model.encode(seqs)
    first, inverse, scored = _scores_of_distinct(model, seqs, ids_list, complete, 0)
    nll_sum, n, unknown = 0.0, 0, 0
    hits = np.zeros(max(ks) + 1)
    for j in inverse:
        sc = scored[j]
        nll_sum += float(sc.nll.sum())
        n += len(sc.ids)
        unknown += int((sc.ids == UNK).sum())
        r = sc.rank[(sc.ids != UNK) & (sc.rank <= max(ks))]  # an unseen event is no hit, whatever its rank
        hits += np.bincount(r, minlength=len(hits))
    cum = np.cumsum(hits)
    loss = nll_sum / max(n, 1)
    return {
        "sequences": len(seqs), "distinct_sequences": len(first), "events": n, "unknown_events": unknown,
        "loss": loss, "perplexity": float(np.exp(loss)), "accuracy": float(cum[1] / max(n, 1)),
        "topk_accuracy": {str(k): float(cum[k] / max(n, 1)) for k in ks},
    }
