"""Does averaging models help the order benchmark's ranking? Model seeds and their ensembles, on data seeds
other than the benchmark's.

For each data seed, trains the default ``RNNModel()`` with model seeds 0, 1 and 2 (one thread) and reports
the share of anomalies whose largest per-event surprise lies above an oracle cut at 0.3% and 0.1% of the
seed's normal test sessions: each model alone, the mean log-probability of models 0 and 1 (``geo01``) and of
all three (``geo012``), and the log of the mean probability of models 0 and 1 (``arith01``). Each model's
log-probabilities are read with its own vocabulary's ids. Writes ``bench/results/order_ensemble.json``.

    python bench/order_ensemble.py --seeds 2,3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_result  # noqa: E402
from order_recipes import scored  # noqa: E402

COMBOS = (("m0", [0], "geo"), ("m1", [1], "geo"), ("m2", [2], "geo"), ("geo01", [0, 1], "geo"),
          ("geo012", [0, 1, 2], "geo"), ("arith01", [0, 1], "arith"))


def true_log_probs(model, seqs):
    """Per sequence, the log-probability of each true event (its end included), in the model's own ids."""
    import numpy as np

    return [lp[np.arange(len(y)), y] for y, lp in scored(model, seqs)]


def session_stat(per_model, idx, how):
    import numpy as np

    out = []
    for j in range(len(per_model[0])):
        t = np.stack([per_model[i][j] for i in idx])
        v = t.mean(0) if how == "geo" else np.log(np.exp(t).mean(0))
        out.append((-v).max())
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="2,3", help="data seeds (the benchmark's own is 0: keep it out)")
    args = ap.parse_args()

    import numpy as np

    from seqrnn.data.formats import read_sessions
    from seqrnn.datasets import order
    from seqrnn.models.rnn import RNNModel

    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        paths = order.write(tempfile.mkdtemp(prefix="seqrnn-order-"), seed)
        train, normal, abnormal = (read_sessions(paths[k]) for k in ("train", "test_normal", "test_abnormal"))
        models = [RNNModel(seed=s, threads=1).fit(train) for s in (0, 1, 2)]
        per_normal = [true_log_probs(m, normal) for m in models]
        per_abnormal = [true_log_probs(m, abnormal) for m in models]
        res = {"data_seed": seed}
        for name, idx, how in COMBOS:
            s_n, s_a = session_stat(per_normal, idx, how), session_stat(per_abnormal, idx, how)
            res[name] = [round(float((s_a > np.quantile(s_n, 1 - q)).mean()), 4) for q in (0.003, 0.001)]
        print(json.dumps(res), flush=True)
        runs.append(res)
    write_result("order_ensemble", {"recall_at": [0.003, 0.001], "runs": runs})


if __name__ == "__main__":
    main()
