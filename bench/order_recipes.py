"""Training settings against the order benchmark's anomalies, on data seeds other than the benchmark's.

For each data seed and each JSON of settings (over the default ``RNNModel()``, model seed 0, one thread),
trains on the seed's training sessions and reports the validation loss and the share of anomalies whose
largest per-event surprise lies above an oracle cut at 0.3% and 0.1% of the seed's normal test sessions
(the model's ranking, without the calibration), overall and for each anomaly kind; ``--stats`` adds two
other per-session statistics (the largest gap to the model's first choice, and the largest surprise beyond
the prediction's entropy). Prints one JSON line per run and writes ``bench/results/order_recipes.json``.

    python bench/order_recipes.py --seeds 2,3 '{}' '{"lr": 0.006}' '{"hidden": 128}' [--stats]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_result  # noqa: E402


def scored(model, seqs):
    """Per sequence: its true events (the end included) in the model's own ids, and the model's float64
    log-probabilities at each position."""
    import numpy as np

    from seqrnn.data.vocab import with_end

    ids, complete = model.encode(seqs)
    for i, c, lp in zip(ids, complete, model.log_proba(ids, complete)):
        yield with_end(i, c), lp.astype(np.float64)


def session_stats(model, seqs, extra: bool):
    import numpy as np

    out = []
    for y, lp in scored(model, seqs):
        true = lp[np.arange(len(y)), y]
        row = [(-true).max()]
        if extra:
            entropy = -(np.exp(lp) * lp).sum(1)
            row += [(lp.max(1) - true).max(), (-true - entropy).max()]
        out.append(row)
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("settings", nargs="+", help="JSON settings over RNNModel()'s defaults ('{}': the defaults)")
    ap.add_argument("--seeds", default="2,3", help="data seeds (the benchmark's own is 0: keep it out)")
    ap.add_argument("--stats", action="store_true", help="also the gap and entropy statistics")
    ap.add_argument("--name", default="order_recipes")
    args = ap.parse_args()

    import numpy as np

    from seqrnn.data.formats import read_sessions
    from seqrnn.datasets import order
    from seqrnn.models.rnn import RNNModel

    names = ["nll"] + (["gap", "excess"] if args.stats else [])
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        paths = order.write(tempfile.mkdtemp(prefix="seqrnn-order-"), seed)
        train, normal, abnormal = (read_sessions(paths[k]) for k in ("train", "test_normal", "test_abnormal"))
        kinds = np.array([s.id.rsplit("-", 1)[0] for s in abnormal])
        for spec in args.settings:
            settings = {"seed": 0, "threads": 1, **json.loads(spec)}
            t0 = time.perf_counter()
            model = RNNModel(**settings).fit(train)
            res = {"data_seed": seed, "settings": json.loads(spec), "train_s": round(time.perf_counter() - t0, 1),
                   "epochs": len(model.history_),
                   "best_val_loss": round(min(h.get("val_loss", np.inf) for h in model.history_), 4)}
            s_normal, s_abnormal = session_stats(model, normal, args.stats), session_stats(model, abnormal, args.stats)
            for j, name in enumerate(names):
                for share in (0.003, 0.001):
                    cut = np.quantile(s_normal[:, j], 1 - share)
                    hit = s_abnormal[:, j] > cut
                    res[f"{name}_recall_at_{share}"] = round(float(hit.mean()), 4)
                    res[f"{name}_by_kind_at_{share}"] = {k: round(float(hit[kinds == k].mean()), 3) for k in order.KINDS}
            print(json.dumps(res), flush=True)
            runs.append(res)
    write_result(args.name, {"oracle": "cut at the share's quantile of the seed's normal test sessions", "runs": runs})


if __name__ == "__main__":
    main()
