"""Character-level tinyshakespeare in ten minutes of wall-clock on this machine.

Trains the ``text`` preset sized for the budget as ``seqrnn train --minutes``
does (:func:`seqrnn.budget.text_settings` at this machine's measured speed;
AdamW 3e-3 with weight decay 0.1, held and then decayed over the last 30% of the time budget,
parallel streams read in chunks with the state carried) on the first 90% of
the file, validating on the last 10% every ``eval_every`` steps. Writes the validation loss curve
(seconds, nats/char), training and generation characters/s, the final
validation loss in nats and bits per character, and a 300-character sample
at temperature 0.8 from ``ROMEO:``.

    python bench/text_shakespeare.py [--minutes 10] [--threads 2] [--tuning-split] [--unsized] [--tokens words]

``--tokens words`` trains on whitespace-separated words, sized as ``seqrnn
train --tokens words --minutes`` sizes them; its losses are per word, and
``best_val_loss_per_char`` spreads the best over the characters the
held-out words stand for.

Any ``--set key=value`` overrides a setting of the preset
(``--set dropout=0.1 --set lr=4e-3``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, write_result  # noqa: E402


def parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting of the sized preset")
    ap.add_argument("--no-one-stream", action="store_true",
                    help="skip reading the held-out text as one stream at the end (a minute at one thread)")
    ap.add_argument("--unsized", action="store_true", help="the text preset as it is, not sized for the budget")
    ap.add_argument("--tokens", choices=("chars", "words"), default="chars",
                    help="words: whitespace-separated words, the model sized as seqrnn train --tokens words does")
    ap.add_argument("--name", default="text_shakespeare", help="results file name (bench/results/NAME.json)")
    ap.add_argument("--tuning-split", action="store_true",
                    help="leave the file's last 10%% out: train on the first 80%%, validate on the next 10%% "
                         "(the split the sizing rule was chosen on)")
    args = ap.parse_args()

    import torch

    from seqrnn.budget import probe_bf16, probe_gflops, sizing_inputs, text_settings, word_chars
    from seqrnn.data.formats import read_text
    from seqrnn.generate import generate, render
    from seqrnn.models.rnn import RNNModel

    torch.set_num_threads(args.threads)
    path = data_path("text", "tinyshakespeare.txt")
    if args.tuning_split:
        import tempfile

        with open(path, encoding="utf-8") as f:
            text = f.read()
        tmp = os.path.join(tempfile.mkdtemp(prefix="seqrnn-tuning-"), "tinyshakespeare_first90.txt")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text[: int(round(len(text) * 0.9))])
        path = tmp
    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides = {k.replace("-", "_"): parse_value(v) for k, v in overrides.items()}
    (seq,) = read_text(path, args.tokens)
    gflops = probe_gflops()
    bf16 = probe_bf16(gflops)
    plan = text_settings(args.minutes, gflops, bf16=bf16,  # as seqrnn train sizes it
                         **sizing_inputs([seq], args.tokens, overrides.get("min_count")))
    sized = {} if args.unsized else plan.settings
    settings = {**sized, **dict(minutes=args.minutes, epochs=1000, threads=args.threads, seed=0), **overrides}
    model = RNNModel("text", **settings)
    cut = int(round(len(seq) * (1 - model.train_config.validation_split)))

    t0 = time.perf_counter()
    model.fit(path, format="text", text_tokens=args.tokens, verbose=1)
    wall = time.perf_counter() - t0
    h = model.history_
    train_chars = sum(r["events"] for r in h)
    train_seconds = sum(r["seconds"] for r in h)
    best = min(h, key=lambda r: r["val_loss"])

    # The best weights over the whole validation text read as one stream, state carried throughout
    # (the training-time validation reads it as 64 rows, each starting with an empty state).
    ev = None if args.no_one_stream else model.evaluate([seq.slice(cut)])

    # What counting alone gives: a unigram model of the training part over the model's own vocabulary
    # (a token it does not hold counted as <unk>, add-one smoothing), scored on the validation part.
    import numpy as np

    from seqrnn.data.vocab import UNK

    stoi = model.vocab_.stoi
    ids = np.array([stoi.get(t, UNK) for t in seq.tokens], dtype=np.int64)
    counts = np.bincount(ids[:cut], minlength=len(model.vocab_)) + 1.0
    unigram = float(-np.log(counts[ids[cut:]] / counts.sum()).mean())
    unknown = float((ids[cut:] == UNK).mean())

    # Generation: one sample (one step per character), and 32 drawn together.
    gen = {}
    for n, length in ((1, 2000), (32, 500)):
        t = time.perf_counter()
        generate(model, "ROMEO:", length=length, temperature=0.8, num_samples=n, seed=0)
        gen[f"{n}_samples_chars_per_second"] = round(n * length / (time.perf_counter() - t), 1)
    (sample,) = generate(model, "ROMEO:", length=300, temperature=0.8, seed=0)

    result = {
        "data": {"file": "text/tinyshakespeare.txt" + (" (first 90%: the tuning split)" if args.tuning_split else ""), "characters": len(seq), "train_characters": cut,
                 "validation_characters": len(seq) - cut, "vocabulary": len(model.vocab_) - 4},
        "tokens": args.tokens,
        "settings": model._settings(),
        "probe_gflops": round(gflops, 1),
        "probe_bf16": round(bf16, 2),
        "reference_minutes": round(plan.reference_minutes, 2),
        "sized": not args.unsized,
        "parameters": model.n_parameters(),
        "wall_seconds": round(wall, 1),
        "steps": h[-1]["step"],
        "epochs": h[-1]["epoch"],
        "train_chars_per_second": round(train_chars / train_seconds, 1),
        "generation": gen,
        "final_val_loss": round(h[-1]["val_loss"], 4),
        "best_val_loss": round(best["val_loss"], 4),
        "best_val_bits": round(best["val_loss"] / math.log(2), 4),
        "best_at_seconds": round(best["time"], 1),
        # words: the loss spread over the characters a word stands for (its spaces included), comparable
        # with a character model's only in part, since an unknown word costs one token (<unk>), not its letters
        "best_val_loss_per_char": (round(best["val_loss"] * (len(seq) - cut) / word_chars(seq.tokens[cut:]), 4)
                                   if args.tokens == "words" else None),
        "best_val_loss_one_stream": round(ev["loss"], 4) if ev else None,
        "unigram_val_loss": round(unigram, 4),
        "validation_unknown_share": round(unknown, 4),
        "curve": [{"seconds": round(r["time"], 1), "step": r["step"], "epoch": r["epoch"],
                   "loss": round(r["loss"], 4), "val_loss": round(r["val_loss"], 4), "lr": round(r["lr"], 6)}
                  for r in h],
        "sample_prompt": "ROMEO:",
        "sample_temperature": 0.8,
        "sample": render(model, sample),
    }
    write_result(args.name, result)


if __name__ == "__main__":
    main()
