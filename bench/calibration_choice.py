"""How many calibration ranks each view keeps, chosen on HDFS training data only (issue 12).

The training sessions are shuffled (seed 0) and cut in halves; a deeplog model and its Detector learn on
one half, and the other half (normal sessions the model never saw) measures the false-positive rate
against the promise, for each MIN_RANKS; then the halves swap. Also printed: each view's largest
calibration value and its cut, and the gap between the two largest (a lone outlier). No test file is read.

    python bench/calibration_choice.py [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", default="hdfs")
    args = ap.parse_args()

    import numpy as np

    from seqrnn import conformal
    from seqrnn.data.formats import read_sessions
    from seqrnn.detect import Detector
    from seqrnn.models.rnn import RNNModel

    train = read_sessions(data_path(args.dataset, "train"))
    order = np.random.default_rng(0).permutation(len(train))
    halves = [[train[i] for i in order[: len(train) // 2]], [train[i] for i in order[len(train) // 2:]]]
    rows = []
    for h in (0, 1):
        fit, held = halves[h], halves[1 - h]
        model = RNNModel("deeplog", seed=0, threads=args.threads)
        detector = Detector(model).fit(fit)
        values = detector.calibration_.values
        for name, v in values.items():
            a = np.sort(v)
            print(f"half {h} view {name}: top values {a[-3:].round(3).tolist()}", flush=True)
        for ranks in (1, 2, 3):
            conformal.MIN_RANKS = ranks
            detector._set_calibration(conformal.Calibration(values, detector.target_fpr))
            cal = detector.calibration_
            d = detector.decide(held)
            fired = {k: int(sum(bool(f.views.get(k, {}).get("fired")) for f in d.findings)) for k in values}
            row = {"fit_half": h, "min_ranks": ranks, "n": cal.n, "views": len(values),
                   "promised": cal.promised_fpr, "held_out": len(held), "fp": int(d.anomalous.sum()),
                   "fpr": float(d.anomalous.mean()), "fired_by_view": fired,
                   "cuts": {k: cal.cut(k) for k in values}, "view_max": {k: float(v.max()) for k, v in values.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    conformal.MIN_RANKS = 2
    write_result("calibration_choice", {"notes": "HDFS train only, halves of a seed-0 shuffle; deeplog, seed 0, "
                                                 "target_fpr 0.001 (default); single runs",
                                        "rows": rows})


if __name__ == "__main__":
    main()
