"""Does the count-profile view keep its rate on new sessions? Its cut against many normal test sessions.

For each data seed (``seqrnn.datasets.order``, 4,000 training sessions), the count view's calibration
values are the leave-one-out distances of the training sessions (``seqrnn.profiles.leave_one_out``, as
``seqrnn.detect`` compares counts: ``log(1 + c)``, idf weights; the results of 2026-11 were measured with
the rule before, raw counts over the column's standard deviation plus 0.1); a cut at the
``k``-th largest of them fires on a new exchangeable session with probability at most ``k / (n + 1)`` on
average over draws of the training sessions. Measured on ``--normal`` (20,000) new normal sessions of the
same generator: the share beyond the cut, per seed, and its mean over seeds. No network is trained.

    python bench/order_count_tail.py [--seeds 2-15] [--normal 20000] [--k 5]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="2-15", help="data seeds, FIRST-LAST or a comma list")
    ap.add_argument("--normal", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=5, help="the cut: the k-th largest calibration value")
    args = ap.parse_args()
    if "-" in args.seeds:
        lo, hi = (int(v) for v in args.seeds.split("-"))
        seeds = list(range(lo, hi + 1))
    else:
        seeds = [int(v) for v in args.seeds.split(",")]

    from seqrnn.data.vocab import UNK
    from seqrnn.datasets import order
    from seqrnn.detect import COUNT_TRANSFORM
    from seqrnn.profiles import count_matrix, idf_weights, leave_one_out, nearest_to

    rows = []
    for seed in seeds:
        data = order.make(seed, normal=args.normal, abnormal=3)
        tokens = sorted({t for s in data["train"] for t in s})
        index = {t: UNK + 1 + i for i, t in enumerate(tokens)}
        size = UNK + 1 + len(tokens)

        def counts(sessions):
            return count_matrix([np.array([index.get(t, UNK) for t in s], np.int64) for s in sessions], size)

        train, test = counts(data["train"]), counts(data["test_normal"])
        weights = idf_weights(train)
        loo, profiles = leave_one_out(train, weights, transform=COUNT_TRANSFORM)
        cut = float(np.sort(loo)[len(loo) - args.k])
        distance = nearest_to(test, profiles, weights, COUNT_TRANSFORM)[0]
        rows.append({"data_seed": seed, "cut": round(cut, 4), "calibration_beyond": int((loo > cut).sum()),
                     "test_share_beyond": float((distance > cut).mean())})
        print(rows[-1], file=sys.stderr, flush=True)
    shares = [r["test_share_beyond"] for r in rows]
    write_result("order_count_tail", {
        "normal_per_seed": args.normal, "k": args.k, "calibration_sessions": 4000,
        "bound_on_average": args.k / 4001, "mean_share": float(np.mean(shares)),
        "min_share": min(shares), "max_share": max(shares), "rows": rows})


if __name__ == "__main__":
    main()
