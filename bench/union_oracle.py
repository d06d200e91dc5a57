"""What the views could reach on HDFS with cuts chosen on the test set itself: an upper bound, no rule.

Reads the views' values that ``bench/view_values_splits.py`` saved (``--dir``), computes the count view as
``--way`` says (``bench/count_view_splits.py``; default ``log/idf``, the Detector's), and for each split
searches the union of per-view cuts (unseen: its 5 largest normal values or none; surprise and count: their
60 largest) for the best F1 at the full HDFS prevalence on that split's own test sessions. A calibrated rule
cannot know those cuts; the gap between this and the rule is what the budget, not the views, costs. Writes
``bench/results/union_oracle.json`` (``--out=NAME``).

    python bench/union_oracle.py --dir=/tmp/vv hdfs hdfs-split7 ...
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_result  # noqa: E402
from count_view_splits import count_matrices, count_view, f1_at  # noqa: E402

from seqrnn.datasets import PREVALENCE_HDFS  # noqa: E402


def best_union(normal: dict, abnormal: dict) -> dict:
    """The best F1 at prevalence over unions of cuts at the normal sessions' largest values of each view."""
    cuts = {v: np.r_[np.inf, np.unique(normal[v])[::-1][:5 if v == "unseen" else 60]] for v in normal}
    fired_n = {v: [normal[v] > c for c in cuts[v]] for v in normal}
    fired_a = {v: [abnormal[v] > c for c in cuts[v]] for v in normal}
    best = {"f1_at_prevalence": 0.0}
    for i in range(len(cuts["unseen"])):
        for j in range(len(cuts["surprise"])):
            n = fired_n["unseen"][i] | fired_n["surprise"][j]
            a = fired_a["unseen"][i] | fired_a["surprise"][j]
            for k, (cn, ca) in enumerate(zip(fired_n["count"], fired_a["count"])):
                fp, recall = int((n | cn).sum()), float((a | ca).mean())
                f1 = f1_at(PREVALENCE_HDFS, fp / len(n), recall)
                if f1 > best["f1_at_prevalence"]:
                    best = {"f1_at_prevalence": round(f1, 4), "fp": fp, "recall": round(recall, 4),
                            "cuts": {"unseen": float(cuts["unseen"][i]), "surprise": float(cuts["surprise"][j]),
                                     "count": float(cuts["count"][k])}}
    return best


def main():
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    folder, way = options.get("dir", "/tmp/view_values"), options.get("way", "log/idf")
    rows = []
    for name in [a for a in sys.argv[1:] if not a.startswith("--")]:
        z = np.load(os.path.join(folder, name + ".npz"))
        count = count_view(*count_matrices(name, z["cal_ids"]), way)
        normal = {"unseen": z["normal_unseen"], "surprise": z["normal_surprise"], "count": count[1]}
        abnormal = {"unseen": z["abnormal_unseen"], "surprise": z["abnormal_surprise"], "count": count[2]}
        rows.append({"data": name, **best_union(normal, abnormal)})
        print(rows[-1], flush=True)
    f1 = np.array([r["f1_at_prevalence"] for r in rows])
    summary = {"splits": len(rows), "mean_f1": round(float(f1.mean()), 4), "lowest_f1": float(f1.min()),
               "at_098": int((f1 >= 0.98).sum()), "fp": sum(r["fp"] for r in rows)}
    print(summary)
    write_result(options.get("out", "union_oracle"), {"way": way, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
