"""Generation speed: the numpy step against the previous torch step and the general forward pass.

A 2x512 LSTM over tinyshakespeare's 65 characters (the speed does not depend
on the weights, so they are left untrained) draws ``--length`` characters at
temperature 0.8, ``--samples`` samples together (default one), three ways,
in turn, in the same process:

* ``numpy_step``: ``seqrnn.generate`` as it is (the prompt read once, then
  :class:`~seqrnn.generate.RecurrentStep` per token, in numpy, sampled by
  inverse CDF), its BLAS on the threads :class:`~seqrnn.generate.ThreadChoice`
  finds faster for a few samples, on ``--threads`` for more;
* ``numpy_step_1t`` and ``numpy_step_2t``: the same with BLAS on one thread,
  and on ``--threads`` threads, all along (for a few samples and more than
  one thread only);
* ``torch_step``: the dedicated torch step generation used before (written
  out below as the baseline, with ``torch.multinomial``; one torch thread for
  a few samples);
* ``general_forward``: the general forward pass per token, as generation
  stepped before that (one sample, not ``--busy``).

Medians of ``--repeat`` runs of each. ``--busy`` measures beside another
job: a process spinning on one core for the whole run. Run it under
/tmp/bin/quiet (about a minute).

    python bench/generate_speed.py [--threads 2] [--length 2000] [--repeat 5] [--hidden 512] [--samples 1]
                                   [--busy]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median, write_result  # noqa: E402


class TorchStep:
    """The dedicated torch step of LSTM generation before the numpy step (the baseline)."""

    def __init__(self, net):
        import torch

        rnn = net.rnn
        self.hidden = rnn.hidden_size
        self.layers = []
        for i in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{i}").detach(), getattr(rnn, f"weight_hh_l{i}").detach()
            b = getattr(rnn, f"bias_ih_l{i}").detach() + getattr(rnn, f"bias_hh_l{i}").detach()
            if i == 0:
                self.layers.append((net.embed.weight.detach() @ w_ih.T + b, w_hh.T.contiguous()))
            else:
                self.layers.append((torch.cat((w_ih, w_hh), 1).T.contiguous(), b))
        self.head_w, self.head_b = net.head.weight.detach().T.contiguous(), net.head.bias.detach()

    def step(self, tokens, state):
        import torch

        x, new, H = None, [], self.hidden
        for i, (a, b) in enumerate(self.layers):
            h, cell = state[i]
            gates = torch.addmm(a[tokens], h, b) if i == 0 else torch.addmm(b, torch.cat((x, h), 1), a)
            i_, f, _, o = torch.sigmoid(gates).view(-1, 4, H).unbind(1)
            cell = torch.addcmul(f * cell, i_, torch.tanh(gates[:, 2 * H:3 * H]))
            x = o * torch.tanh(cell)
            new.append((x, cell))
        return torch.addmm(self.head_b, x, self.head_w), new


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--length", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--busy", action="store_true",
                    help="beside another job: a process that keeps one core busy for the whole run")
    ap.add_argument("--name", help="result file name (default generate_speed_{threads}t[_{samples}s][_busy])")
    args = ap.parse_args()

    import numpy as np
    import torch

    from seqrnn import generate as G
    from seqrnn.config import ModelConfig
    from seqrnn.data.vocab import BOS, EOS, PAD, UNK
    from seqrnn.models.rnn_net import RNNNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    V, n = 69, args.samples
    net = RNNNet(V, ModelConfig(cell="lstm", layers=args.layers, hidden=args.hidden, embedding_dim=64)).eval()
    prompt = np.array([10, 11, 12, 13, 14, 15], dtype=np.int64)

    def numpy_step():
        with torch.inference_mode():
            G._generate_rnn(net, prompt, n, args.length, G.Sampler(V, 0.8, seed=0))

    def numpy_step_1t():
        torch.set_num_threads(1)
        try:
            numpy_step()
        finally:
            torch.set_num_threads(args.threads)

    def numpy_step_2t():
        few, G.FEW_ROWS = G.FEW_ROWS, 0
        try:
            numpy_step()
        finally:
            G.FEW_ROWS = few

    def torch_step():  # generation as it stepped before the numpy step
        gen, mask = torch.Generator().manual_seed(0), torch.zeros(V)
        mask[[PAD, UNK, BOS, EOS]] = -torch.inf
        threads = torch.get_num_threads()
        with torch.inference_mode():
            logits, (h, c) = net(torch.from_numpy(np.concatenate(([BOS], prompt)))[None])
            logits = logits[:, -1].expand(n, -1)
            step = TorchStep(net)
            state = [(h[i].expand(n, -1).contiguous(), c[i].expand(n, -1).contiguous()) for i in range(len(h))]
            if n <= G.FEW_ROWS:
                torch.set_num_threads(1)
            try:
                for _ in range(args.length):
                    nxt = torch.multinomial(torch.softmax((logits + mask) / 0.8, -1), 1, generator=gen)[:, 0]
                    torch.log_softmax(logits, -1).gather(1, nxt[:, None])
                    logits, state = step.step(nxt, state)
            finally:
                torch.set_num_threads(threads)

    def general_forward():  # the general forward pass per token, as generation stepped before that
        gen = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            logits, state = net(torch.from_numpy(np.concatenate(([BOS], prompt)))[None])
            logits = logits[:, -1]
            for _ in range(args.length):
                nxt = G.pick(logits, 0.8, generator=gen)
                torch.log_softmax(logits, -1).gather(1, nxt[:, None])
                out, state = net(nxt[:, None], state)
                logits = out[:, -1]

    ways = {"numpy_step": numpy_step, "numpy_step_1t": numpy_step_1t, "numpy_step_2t": numpy_step_2t,
            "torch_step": torch_step, "general_forward": general_forward}
    if args.threads < 2 or n > G.FEW_ROWS:
        del ways["numpy_step_1t"], ways["numpy_step_2t"]  # the same as numpy_step
    if n > 1 or args.busy:
        del ways["general_forward"]  # 200 characters/s when idle, far less beside a busy core
    rates = {k: [] for k in ways}
    other = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        for _ in range(args.repeat):
            for name, fn in ways.items():
                t0 = time.perf_counter()
                fn()
                rates[name].append(n * args.length / (time.perf_counter() - t0))
    finally:
        if other is not None:
            other.kill()
            other.wait()
    result = {"model": f"{args.layers}x{args.hidden} lstm", "samples": n, "length": args.length,
              "repeat": args.repeat, "beside_a_busy_core": args.busy,
              **{f"{k}_chars_per_second": round(median(v), 1) for k, v in rates.items()},
              "runs": {k: [round(x, 1) for x in v] for k, v in rates.items()}}
    base = result["torch_step_chars_per_second"]
    result["speedup_over_torch_step"] = {k: round(result[f"{k}_chars_per_second"] / base, 2) for k in rates}
    print(result, file=sys.stderr)
    write_result(args.name or f"generate_speed_{args.threads}t" + (f"_{n}s" if n > 1 else "")
                 + ("_busy" if args.busy else ""), result)


if __name__ == "__main__":
    main()
