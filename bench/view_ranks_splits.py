"""Equal ranks against view ranks (``seqrnn.conformal.view_ranks``) on HDFS splits, the same fitted model.

For each split (``hdfs``: the shared one; ``hdfs-splitN``: train + test_normal pooled, reshuffled with seed
N, cut in halves of the same sizes; abnormal = test_abnormal), fits the default detector once (GRU, model
seed 0, one thread), then calibrates it twice on the same cross-fitted values: every view at the shared
``k`` (the rule before view ranks) and with view ranks (the default). Each decides the split's normal and
anomalous test sessions. Reports, per rule: the ranks, cuts, promise, false positives (by view), recall and
F1 at the full HDFS prevalence. Writes ``bench/results/view_ranks_splits.json`` (``--out=NAME``: another
name; rows of splits not named now are kept).

    python bench/view_ranks_splits.py hdfs hdfs-split42 hdfs-split303 ...

docs/calibration.md says which splits informed the rule and which were measured once after it was fixed.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, kept_rows, write_result  # noqa: E402

import seqrnn.conformal as conformal  # noqa: E402
import seqrnn.detect as detect  # noqa: E402
from seqrnn.data.formats import read_sessions  # noqa: E402
from seqrnn.datasets import PREVALENCE_HDFS  # noqa: E402
from seqrnn.metrics import detection_metrics  # noqa: E402
from seqrnn.models.rnn import RNNModel  # noqa: E402


def split(name):
    train = read_sessions(data_path("hdfs", "train"))
    normal = read_sessions(data_path("hdfs", "test_normal"))
    if name.startswith("hdfs-split"):
        pool = train + normal
        order = np.random.default_rng(int(name[len("hdfs-split"):])).permutation(len(pool))
        train, normal = [pool[i] for i in order[:len(train)]], [pool[i] for i in order[len(train):]]
    return train, normal, read_sessions(data_path("hdfs", "test_abnormal"))


def measure(det, normal, abnormal):
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    d = det.decide(normal + abnormal)
    m = detection_metrics(y, d.anomalous, d.scores, PREVALENCE_HDFS)
    cal = det.calibration_
    fp_by_view = {k: int(sum(bool(f.views.get(k, {}).get("fired")) for f, a in zip(d.findings, y) if not a))
                  for k in cal.values}
    return {"k": cal.k, "view_ranks": dict(cal.ranks), "cuts": {k: round(cal.cut(k), 4) for k in cal.values},
            "promised": cal.promised_fpr, "fp": int(d.anomalous[~y].sum()), "fpr": m["fpr"],
            "fp_by_view": fp_by_view, "recall": m["recall"], "f1_at_prevalence": m["f1_at_prevalence"]}


def main():
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    out_name = options.get("out", "view_ranks_splits")
    view_ranks = conformal.view_ranks
    cached = {}
    cross_fit = detect.cross_fitted_surprise

    def once(*args, **kwargs):  # the copies train once per split; both rules calibrate on their values
        if "values" not in cached:
            cached["values"] = cross_fit(*args, **kwargs)
        return cached["values"].copy()

    detect.cross_fitted_surprise = once
    rows = []
    for name in [a for a in sys.argv[1:] if not a.startswith("--")]:
        cached.clear()
        train, normal, abnormal = split(name)
        conformal.view_ranks = view_ranks
        det = detect.Detector(RNNModel(cell="gru", seed=0, threads=1)).fit(train)
        row = {"data": name, "view_ranks": measure(det, normal, abnormal)}
        tr, held = det.model.split(train)
        conformal.view_ranks = lambda values, alpha, k: {v: k for v in values}  # every view at k
        det._calibrate_sessions(tr, held, tr + held, None, None, 0)
        row["equal_ranks"] = measure(det, normal, abnormal)
        conformal.view_ranks = view_ranks
        print(json.dumps(row), flush=True)
        rows.append(row)
    all_rows = kept_rows(out_name, rows)
    f1 = {rule: [r[rule]["f1_at_prevalence"] for r in all_rows] for rule in ("equal_ranks", "view_ranks")}
    write_result(out_name, {
        "settings": {"cell": "gru", "seed": 0, "threads": 1, "target_fpr": detect.DEFAULT_TARGET_FPR,
                     "gap": conformal.GAP},
        "summary": {rule: {"mean_f1": float(np.mean(v)), "min_f1": float(np.min(v)), "splits": len(v)}
                    for rule, v in f1.items()},
        "rows": all_rows})


if __name__ == "__main__":
    main()
