"""Training throughput: target events per second and share of the matmul peak.

For the deeplog and seed presets, in both mappings, trains on the HDFS
training sessions and reports the median events/s over the epochs after
the first (the first warms up), with the FLOP rate that implies as a share
of this machine's float32 matrix-multiply peak, measured in the same run.

    python bench/train_throughput.py [--epochs 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, matmul_peak_gflops, median, write_result  # noqa: E402


def flops_per_event(mc, vocab_size: int, mapping: str) -> float:
    """Training FLOPs per target event: forward matmuls x3 (forward + backward)."""
    gates = 4 if mc.cell == "lstm" else 3
    inp = mc.embedding_dim
    fwd = 0
    for _ in range(mc.layers):
        fwd += 2 * gates * mc.hidden * (inp + mc.hidden)
        inp = mc.hidden
    steps = mc.window if mapping == "many-to-one" else 1  # a window re-reads `window` events per target
    return 3 * (fwd * steps + 2 * mc.hidden * vocab_size)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (medians reported)")
    ap.add_argument("--presets", default="deeplog,seed")
    args = ap.parse_args()

    from seqrnn.data.formats import read_sessions
    from seqrnn.models.rnn import RNNModel

    train = read_sessions(data_path("hdfs", "train"))
    peak = matmul_peak_gflops()
    rows = []
    for preset in args.presets.split(","):
        for mapping in ("many-to-many", "many-to-one"):
            rates = []
            # The seed preset re-reads 40 events per target in many-to-one: a few hundred sessions suffice.
            data = train[:200] if (preset == "seed" and mapping == "many-to-one") else train
            for r in range(args.repeat):
                epochs = args.epochs if preset == "deeplog" else max(2, args.epochs // 2)
                m = RNNModel(preset, mapping=mapping, epochs=epochs, patience=0, seed=r)
                m.fit(data)
                rates += [h["events_per_second"] for h in m.history_[1:]]
            ev = median(rates)
            fpe = flops_per_event(m.model_config, len(m.vocab_), mapping)
            gflops = ev * fpe / 1e9
            rows.append({"preset": preset, "mapping": mapping, "events_per_second": round(ev),
                         "gflops": round(gflops, 1), "fraction_of_peak": round(gflops / peak, 3),
                         "flops_per_event": fpe, "epoch_rates": [round(x) for x in rates]})
            print(rows[-1], file=sys.stderr)
    name = "train_throughput" if args.presets == "deeplog,seed" else f"train_throughput_{args.presets}"
    write_result(name, {"matmul_peak_gflops": round(peak, 1), "repeat": args.repeat, "runs": rows})


if __name__ == "__main__":
    main()
