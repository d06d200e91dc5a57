"""Training speed of the text model at each size the sizing rule considers (seqrnn.budget).

For each size, trains on tinyshakespeare for ``--seconds`` and records the
training characters/s (validation excluded), with this machine's
matrix-multiply rate (``probe_gflops``) measured in the same run; the
``chars_per_second`` of seqrnn.budget's table are these figures at 2 threads.

    python bench/text_sizing.py [--seconds 20] [--threads 2] [--sizes 2x256,2x384,2x512] [--batch-size 64] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, write_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="2x128,2x256,2x384,2x512")
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru"])
    ap.add_argument("--name", help="the result's name in bench/results (default: text_sizing_<threads>t)")
    args = ap.parse_args()

    import torch

    from seqrnn.budget import flops_per_token, probe_gflops
    from seqrnn.models.rnn import RNNModel

    torch.set_num_threads(args.threads)
    path = data_path("text", "tinyshakespeare.txt")
    gflops = probe_gflops(seconds=1.0)
    rows = []
    for size in args.sizes.split(","):
        layers, hidden = (int(v) for v in size.split("x"))
        m = RNNModel("text", cell=args.cell, layers=layers, hidden=hidden, chunk=args.chunk, batch_size=args.batch_size,
                     minutes=args.seconds / 60, eval_every=0, epochs=1, validation_split=0.01,
                     threads=args.threads)
        m.fit(path, format="text")
        rate = m.history_[0]["events_per_second"]
        fpt = flops_per_token(layers, hidden, 64, len(m.vocab_), args.cell)
        rows.append({"size": size, "chars_per_second": round(rate), "gflops": round(rate * fpt / 1e9, 1),
                     "share_of_probe": round(rate * fpt / 1e9 / gflops, 3)})
        print(rows[-1], file=sys.stderr, flush=True)
    write_result(args.name or f"text_sizing_{args.threads}t", {"probe_gflops": round(gflops, 1), "seconds": args.seconds,
                                                   "chunk": args.chunk, "batch_size": args.batch_size, "cell": args.cell,
                                                   "runs": rows})


if __name__ == "__main__":
    main()
