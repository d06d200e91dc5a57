"""Each per-session statistic of the surprise (``bench/surprise_statistics.py``) in place of its largest
``-log p``, decided with the Detector's rule, on the values saved there (``--dir``).

For each statistic (and ``none``: no surprise view at all), the unseen and count views as the Detector has
them now (the count view computed again, ``bench/count_view_splits.py``), the surprise view's calibration
values those of the cross-fitted copies (continuous statistics times the copies' scale), the held-out check
on the final model's held-out sessions, at ``--alpha`` (0.003). Reports per statistic, over HDFS splits: mean
and lowest F1 at the full prevalence, splits at 0.98, false positives, the largest ratio of the measured rate
to the promise; over order data: false positives, the largest ratio and each seed's recall. Writes
``bench/results/surprise_statistic_rules.json`` (``--out=NAME``).

    python bench/surprise_statistics.py --dir=/tmp/ss order-2 ... hdfs hdfs-split7 ...
    python bench/surprise_statistic_rules.py --dir=/tmp/ss order-2 ... hdfs hdfs-split7 ...
"""
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_result  # noqa: E402
from count_view_splits import count_matrices, count_view, f1_at  # noqa: E402

from seqrnn.datasets import PREVALENCE_HDFS  # noqa: E402
from seqrnn.detect import Detector  # noqa: E402


def decide(z, j, count, alpha):
    """Normal and anomalous test sessions fired, and the promise, with statistic ``j`` (None: no surprise)."""
    values = {"unseen": z["cal_unseen"], "count": count[0]}
    own = None
    if j is not None:
        counted = str(z["stat_names"][j]).startswith("over")  # counts of events: no scale
        values["surprise"] = z["cal_stats"][:, j] * (1.0 if counted else float(z["surprise_scale"]))
        own = np.sort(z["held_stats"][:, j])
    cal = Detector._held_out_checked(types.SimpleNamespace(target_fpr=alpha), values, own)
    fired = {}
    for part, c in (("normal", count[1]), ("abnormal", count[2])):
        f = (z[f"{part}_unseen"] > cal.cut("unseen")) | (c > cal.cut("count"))
        if j is not None:
            f |= z[f"{part}_stats"][:, j] > cal.cut("surprise")
        fired[part] = f
    return fired, cal.promised_fpr


def main():
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    folder, alpha = options.get("dir", "/tmp/surprise_statistics"), float(options.get("alpha", 0.003))
    rows = []
    for name in [a for a in sys.argv[1:] if not a.startswith("--")]:
        z = np.load(os.path.join(folder, name + ".npz"))
        count = count_view(*count_matrices(name, z["cal_ids"]), "log/idf")
        names = [str(s) for s in z["stat_names"]]
        for j, stat in [(j, s) for j, s in enumerate(names)] + [(None, "none")]:
            fired, promised = decide(z, j, count, alpha)
            fpr, recall = float(fired["normal"].mean()), float(fired["abnormal"].mean())
            row = {"data": name, "statistic": stat, "fp": int(fired["normal"].sum()), "fpr": round(fpr, 5),
                   "promised": round(promised, 5), "ratio": round(fpr / promised, 2), "recall": round(recall, 4)}
            if name.startswith("hdfs"):
                row["f1_at_prevalence"] = round(f1_at(PREVALENCE_HDFS, fpr, recall), 4)
            rows.append(row)
    summary = {}
    for stat in dict.fromkeys(r["statistic"] for r in rows):
        hdfs = [r for r in rows if r["statistic"] == stat and r["data"].startswith("hdfs")]
        order = [r for r in rows if r["statistic"] == stat and r["data"].startswith("order")]
        s = {}
        if hdfs:
            f1 = np.array([r["f1_at_prevalence"] for r in hdfs])
            s["hdfs"] = {"splits": len(hdfs), "mean_f1": round(float(f1.mean()), 4), "lowest_f1": float(f1.min()),
                         "at_098": int((f1 >= 0.98).sum()), "fp": sum(r["fp"] for r in hdfs),
                         "largest_ratio": max(r["ratio"] for r in hdfs)}
        if order:
            s["order"] = {"seeds": len(order), "fp": sum(r["fp"] for r in order),
                          "largest_ratio": max(r["ratio"] for r in order),
                          "recall": {r["data"]: r["recall"] for r in order},
                          "mean_recall": round(float(np.mean([r["recall"] for r in order])), 4)}
        summary[stat] = s
        print(stat, s, flush=True)
    write_result(options.get("out", "surprise_statistic_rules"), {"alpha": alpha, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
