"""Per-session statistics of the model's surprise other than its largest ``-log p``, on HDFS splits, saved for
offline study (which one separates anomalies from normal sessions at a low false-positive rate).

For each split (as in ``bench/view_values_splits.py``: HDFS splits, ``openstack``, ``order-N``), fits the default detector once (GRU, model seed 0),
its cross-fitting copies trained one after the other in this process so that their per-event values can be
kept, and writes ``DIR/NAME.npz`` with, for the calibration sessions (the copies' values), the final model's
held-out sessions and the split's normal and anomalous test sessions (the final model's values), each
statistic of :data:`STATS`, and the other views' values as ``bench/view_values_splits.py`` writes them.

    python bench/surprise_statistics.py --dir=/tmp/ss hdfs hdfs-split7 ...
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from view_values_splits import split  # noqa: E402

import seqrnn.crossfit as crossfit  # noqa: E402
import seqrnn.detect as detect  # noqa: E402
from seqrnn.models.rnn import RNNModel  # noqa: E402
from seqrnn.score import score_sequences  # noqa: E402


def _known(s):
    return s.nll[~s.unknown]


STATS = {
    "max": lambda x: x.max(),
    "top2": lambda x: np.sort(x)[-2:].sum(),
    "top3": lambda x: np.sort(x)[-3:].sum(),
    "sum": lambda x: x.sum(),
    "mean": lambda x: x.mean(),
    "over_p01": lambda x: float((x > np.log(100)).sum()),
    "over_p001": lambda x: float((x > np.log(1000)).sum()),
    "excess_p01": lambda x: float(np.clip(x - np.log(100), 0, None).sum()),
}


def statistics(scores) -> np.ndarray:
    out = np.zeros((len(scores), len(STATS)))
    for i, s in enumerate(scores):
        x = _known(s)
        if len(x):
            out[i] = [f(x) for f in STATS.values()]
    return out


def main():
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    out = options.get("dir", "/tmp/surprise_statistics")
    os.makedirs(out, exist_ok=True)
    kept = {}

    def fit_and_score(copy, train_ids, train_complete, score):
        copy._fit(train_ids, train_complete, [], [])
        scores = score_sequences(copy, score, topk=1) if score else []
        for s, sc in zip(score, scores):
            kept[s.id] = statistics([sc])[0]
        return crossfit.max_known_nll(scores) if score else np.zeros(0)

    crossfit._fit_and_score = fit_and_score
    crossfit.fold_processes = lambda model, folds: 1
    for name in [a for a in sys.argv[1:] if not a.startswith("--")]:
        t0 = time.perf_counter()
        kept.clear()
        train, normal, abnormal = split(name)
        det = detect.Detector(RNNModel(cell="gru", seed=0)).fit(train)
        tr, held = det.model.split(train)
        cal = det.calibration_
        arrays = {f"cal_{k}": v for k, v in cal.values.items()}
        arrays["cal_stats"] = np.array([kept[s.id] for s in tr + held])
        arrays["held_stats"] = statistics(score_sequences(det.model, held, topk=1))
        for part, seqs in (("normal", normal), ("abnormal", abnormal)):
            scores = score_sequences(det.model, seqs, topk=1)
            stats = det._statistics(seqs, detect._events_of(scores), True, scores)
            arrays.update({f"{part}_{k}": stats[k] for k in cal.values})
            arrays[f"{part}_stats"] = statistics(scores)
        np.savez(os.path.join(out, name + ".npz"), stat_names=np.array(list(STATS)),
                 cal_ids=np.array([s.id for s in tr + held]), surprise_scale=det.surprise_scale_, **arrays)
        print(name, f"{time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
