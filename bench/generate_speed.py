"""Single-sample generation speed: the dedicated per-token step against the general forward pass.

A 2x512 LSTM over tinyshakespeare's 65 characters (the speed does not depend
on the weights, so they are left untrained) draws ``--length`` characters at
temperature 0.8, one sample, through ``seqrnn.generate.generate`` (the
prompt read once, then :class:`~seqrnn.generate.RecurrentStep` per token),
and through the general forward pass one token at a time (the way
generation stepped before, written out here as the baseline). Medians of
``--repeat`` runs, in the same process.

    python bench/generate_speed.py [--threads 2] [--length 2000] [--repeat 3] [--hidden 512]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--length", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--cell", default="lstm")
    args = ap.parse_args()

    import numpy as np
    import torch

    from seqrnn.config import ModelConfig
    from seqrnn.data.vocab import BOS
    from seqrnn.generate import _generate_rnn, pick
    from seqrnn.models.rnn import RNNNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = RNNNet(69, ModelConfig(cell=args.cell, layers=args.layers, hidden=args.hidden, embedding_dim=64)).eval()
    prompt = np.array([10, 11, 12, 13, 14, 15], dtype=np.int64)

    def opts():
        return dict(temperature=0.8, top_k=0, top_p=1.0, generator=torch.Generator().manual_seed(0),
                    allow_eos=False)

    def dedicated():
        with torch.inference_mode():
            _generate_rnn(net, prompt, 1, args.length, opts())

    def general():  # the general forward pass per token, as generation stepped before
        o = opts()
        with torch.inference_mode():
            logits, state = net(torch.from_numpy(np.concatenate(([BOS], prompt)))[None])
            logits = logits[:, -1]
            for _ in range(args.length):
                nxt = pick(logits, **o)
                torch.log_softmax(logits, -1).gather(1, nxt[:, None])
                out, state = net(nxt[:, None], state)
                logits = out[:, -1]

    rates = {"dedicated_step": [], "general_forward": []}
    for _ in range(args.repeat):
        for name, fn in (("dedicated_step", dedicated), ("general_forward", general)):
            t0 = time.perf_counter()
            fn()
            rates[name].append(args.length / (time.perf_counter() - t0))
    result = {"model": f"{args.layers}x{args.hidden} {args.cell}", "length": args.length, "repeat": args.repeat,
              **{f"{k}_chars_per_second": round(median(v), 1) for k, v in rates.items()},
              "runs": {k: [round(x, 1) for x in v] for k, v in rates.items()}}
    result["speedup"] = round(result["dedicated_step_chars_per_second"]
                              / result["general_forward_chars_per_second"], 2)
    print(result, file=sys.stderr)
    write_result(f"generate_speed_{args.threads}t", result)


if __name__ == "__main__":
    main()
