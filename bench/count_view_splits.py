"""How the count view compares counts, measured on the same fitted detectors: only the count view changes.

Reads the views' values that ``bench/view_values_splits.py`` saved (``--dir``), computes the count view again
for each way of comparing counts below (leave-one-out on the training sessions, nearest training profile
for the test sessions, as ``seqrnn.detect.Detector`` does), and decides each split with the detector's rule
(``seqrnn.conformal.Calibration``, the surprise cut checked by the held-out sessions) at ``--alpha``
(default 0.003, the default ``target_fpr``). The unseen and surprise views are the saved ones. Reports per
split and per way: false positives, the measured rate against the promise, recall and, on HDFS, F1 at the
full prevalence. Writes ``bench/results/count_view_splits.json`` (``--out=NAME``).

    python bench/view_values_splits.py --dir=/tmp/vv hdfs hdfs-split7 ... order-2 ... openstack
    python bench/count_view_splits.py --dir=/tmp/vv hdfs hdfs-split7 ... order-2 ... openstack

Ways (``transform/weights``): ``raw/std`` (raw counts, ``1 / (std + 0.1)``: the rule before square roots),
``sqrt/idf``, ``sqrt/std``, ``log/idf`` (``log(1 + c)``: the default now), ``raw/idf``.
"""
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_result  # noqa: E402
from view_values_splits import split  # noqa: E402

from seqrnn.datasets import PREVALENCE_HDFS  # noqa: E402
from seqrnn.detect import Detector  # noqa: E402
from seqrnn.data.vocab import UNK  # noqa: E402
from seqrnn.profiles import count_matrix, idf_weights, leave_one_out, nearest_to  # noqa: E402

WAYS = ("raw/std", "sqrt/idf", "sqrt/std", "log/idf", "raw/idf")


def count_matrices(name, cal_ids):
    """Event counts of the calibration sessions (in ``cal_ids`` order), the normal and the anomalous test
    sessions, over the training sessions' events (others are the unseen view's: ``UNK``, not counted)."""
    train, normal, abnormal = split(name)
    events = {}
    for s in train:
        for t in s.tokens:
            events.setdefault(t, UNK + 1 + len(events))

    def counts(seqs):
        return count_matrix([np.array([events.get(t, UNK) for t in s.tokens], np.int64) for s in seqs],
                            UNK + 1 + len(events))

    by_id = {s.id: s for s in train}
    return counts([by_id[i] for i in cal_ids]), counts(normal), counts(abnormal)


def count_view(cal, normal, abnormal, way):
    how, weighting = way.split("/")
    w = idf_weights(cal) if weighting == "idf" else (1.0 / (cal.std(0) + 0.1)).astype(np.float32)
    loo, unique = leave_one_out(cal, w, transform=how)  # as the Detector computes it (sqrt: benchmarks only)
    return loo, nearest_to(normal, unique, w, how)[0], nearest_to(abnormal, unique, w, how)[0]


def decide(z, alpha, count):
    values = {"unseen": z["cal_unseen"], "surprise": z["cal_surprise"], "count": count[0]}
    cal = Detector._held_out_checked(types.SimpleNamespace(target_fpr=alpha), values, z["own"])
    out = {}
    for part, c in (("normal", count[1]), ("abnormal", count[2])):
        fired = (z[f"{part}_unseen"] > cal.cut("unseen")) | (z[f"{part}_surprise"] > cal.cut("surprise")) \
            | (c > cal.cut("count"))
        out[part] = fired
    fpr, recall = float(out["normal"].mean()), float(out["abnormal"].mean())
    row = {"fp": int(out["normal"].sum()), "normal": len(out["normal"]), "fpr": round(fpr, 5),
           "promised": round(cal.promised_fpr, 5), "ratio": round(fpr / cal.promised_fpr, 2),
           "recall": round(recall, 4), "count_cut": round(cal.cut("count"), 4)}
    return row


def f1_at(prevalence, fpr, recall):
    precision = recall * prevalence / (recall * prevalence + fpr * (1 - prevalence)) if recall else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main():
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    folder, alpha = options.get("dir", "/tmp/view_values"), float(options.get("alpha", 0.003))
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = []
    for name in names:
        z = np.load(os.path.join(folder, name + ".npz"))
        matrices = count_matrices(name, z["cal_ids"])
        for way in WAYS:
            row = {"data": name, "way": way, **decide(z, alpha, count_view(*matrices, way))}
            if name.startswith("hdfs"):
                row["f1_at_prevalence"] = round(f1_at(PREVALENCE_HDFS, row["fpr"], row["recall"]), 4)
            rows.append(row)
            print(row, flush=True)
    summary = {}
    for way in WAYS:
        for kind in ("hdfs", "order", "openstack"):
            mine = [r for r in rows if r["way"] == way and r["data"].startswith(kind)]
            if not mine:
                continue
            s = {"splits": len(mine), "fp": sum(r["fp"] for r in mine), "largest_ratio": max(r["ratio"] for r in mine),
                 "mean_recall": round(float(np.mean([r["recall"] for r in mine])), 4),
                 "lowest_recall": min(r["recall"] for r in mine)}
            if kind == "hdfs":
                f1 = np.array([r["f1_at_prevalence"] for r in mine])
                s.update(mean_f1=round(float(f1.mean()), 4), lowest_f1=float(f1.min()), at_098=int((f1 >= 0.98).sum()))
            summary[f"{way} {kind}"] = s
            print(way, kind, s, flush=True)
    write_result(options.get("out", "count_view_splits"), {"alpha": alpha, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
