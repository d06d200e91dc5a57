"""The order benchmark (seqrnn.datasets.order): anomalies that keep every event count and every n-gram
up to order 4, found only by a model that follows the order over a long range.

Generates the data (seed 0: 4,000 training sessions, 2,000 normal and 600 anomalous test sessions) and
runs ``seqrnn compare`` on it with the RNN and every baseline, each through the same calibration (target
false-positive rate 0.001). Writes ``bench/results/order_benchmark.json`` (the table and each anomaly
kind's recall per model) and ``order_benchmark.md`` (``order_benchmark_seedN.*`` for another data seed).
The row of the default cell (``seqrnn train`` without a preset) is marked "default".

    python bench/order_benchmark.py [--models lstm,markov3,...] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, write_result  # noqa: E402

MODELS = "lstm,gru,markov1,markov3,nb,hmm,unseen,length,count,count-idf,combined,combined-idf"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--seed", type=int, default=0, help="the data's seed (the models use seed 0)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np

    from seqrnn.data.formats import read_sessions
    from seqrnn.datasets import order
    from seqrnn.experiments.compare import markdown_table, run_once

    folder = tempfile.mkdtemp(prefix="seqrnn-order-")
    paths = order.write(folder, args.seed)
    train, normal, abnormal = (read_sessions(paths[k]) for k in ("train", "test_normal", "test_abnormal"))
    kinds = np.array([s.id.rsplit("-", 1)[0] for s in abnormal])
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    rows = run_once(names, train, normal, abnormal, 0, len(abnormal) / (len(normal) + len(abnormal)),
                    {"threads": args.threads}, None, lambda line: print(line, file=sys.stderr, flush=True))
    table = {}
    for row, v in rows.items():
        m = dict(v["metrics"])
        flagged = v["anomalous"][len(normal):]
        m["recall_by_kind"] = {k: float(flagged[kinds == k].mean()) for k in order.KINDS}
        table[row] = m
    result = {"table": {r: {k: {"mean": m[k], "std": 0.0} for k in m if k != "recall_by_kind"}
                        for r, m in table.items()}, "repeat": 1}
    result["best"] = max(table, key=lambda r: table[r]["f1_at_prevalence"])
    from seqrnn.config import ModelConfig

    default = ModelConfig().cell  # seqrnn train's cell without a preset
    md = (markdown_table(result).replace(f"| {default} |", f"| {default} (default) |", 1)
          .replace(f"| **{default}** (best) |", f"| **{default}** (best, default) |", 1))
    print(md)
    name = "order_benchmark" + (f"_seed{args.seed}" if args.seed else "")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".md"), "w") as fh:
        fh.write(md + "\n")
    write_result(name, {"data_seed": args.seed, "default_cell": default, "sessions": {"train": len(train), "test_normal":
                 len(normal), "test_abnormal": len(abnormal)}, "best": result["best"], "rows": table})


if __name__ == "__main__":
    main()
