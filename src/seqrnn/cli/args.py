"""The argument groups that several commands share, and reading inputs and writing outputs.

Argparse only at import (no torch, no numpy): ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..datasets import PREVALENCE_HDFS  # noqa: F401  (help texts quote it)


def add_input(p: argparse.ArgumentParser, default_format: str | None = None) -> None:
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help="input files, folders or globs ('-' reads standard input)")
    p.add_argument("--format", choices=("sessions", "stream", "text"), default=default_format,
                   help="sessions: one sequence per line, optional 'id,' prefix; stream: one event per line, "
                        "files joined in name order; text: characters or words"
                        + ("" if default_format else " (default: the format the model was trained on)"))
    p.add_argument("--separate-files", action="store_true", help="stream: keep each file a sequence of its own")
    p.add_argument("--tokens", choices=("chars", "words"), default=None,
                   help="text: the unit of a token (default: the model's, or chars)")
    p.add_argument("--max-length", type=int, default=100_000, metavar="N",
                   help="sessions: longest line accepted, in tokens (default: %(default)s)")


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", metavar="FILE", help="write the results to FILE instead of standard output")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (any flag overrides the preset)")
    g.add_argument("--preset", choices=("deeplog", "seed", "text"),
                   help="deeplog: 2x64 LSTM, Adam, window 10; seed: the 2016 model, 2x512 LSTM, dropout 0.2, "
                        "RMSprop 1e-3, length 40; text (the default with --format text): 2x512 LSTM, "
                        "dropout 0.1, Adam 3e-3, schedule wsd, chunks of 50, validation every 200 steps")
    g.add_argument("--cell", choices=("lstm", "gru"))
    g.add_argument("--layers", type=int)
    g.add_argument("--hidden", type=int, help="units per recurrent layer")
    g.add_argument("--embedding-dim", type=int)
    g.add_argument("--dropout", type=float)
    g.add_argument("--mapping", choices=("many-to-many", "many-to-one"),
                   help="many-to-many (default): next event at every position, each event trained once; "
                        "many-to-one: a window of --window events predicts the next (DeepLog)")
    g.add_argument("--window", type=int, help="many-to-one: events in a window")
    g.add_argument("--bidirectional", action="store_true", default=None,
                   help="many-to-one only: read the window both ways (the window never holds the target)")
    t = p.add_argument_group("training")
    t.add_argument("--optimizer", choices=("adam", "adamw", "rmsprop", "sgd"))
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--batch-size", type=int,
                   help="sequences per batch (streams: parallel rows; many-to-one: 32x this many windows)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--clip", type=float, help="largest gradient norm (0: no clipping)")
    t.add_argument("--patience", type=int, help="validations (epochs, or --eval-every periods) without a better "
                        "validation loss before stopping (0: never)")
    t.add_argument("--validation-split", dest="validation_split", type=float,
                   help="fraction of the training sequences held out for validation (default 0.1)")
    t.add_argument("--validation", metavar="FILE", dest="validation_file",
                   help="validate on FILE instead of a split of the training data")
    t.add_argument("--chunk", type=int, help="streams: steps of truncated back-propagation")
    t.add_argument("--minutes", type=float, help="stop training after this many minutes")
    t.add_argument("--schedule", choices=("constant", "cosine", "wsd"),
                   help="learning rate: constant; cosine: decays to a tenth of --lr by the end of --minutes "
                        "(or of --epochs, if that comes first); wsd: held, then the same decay over the last 30%%")
    t.add_argument("--warmup", type=int, help="optimizer steps of linear learning-rate warm-up")
    t.add_argument("--eval-every", type=int, metavar="STEPS",
                   help="validate (and write a history row) every STEPS optimizer steps, not only per epoch")
    t.add_argument("--sample-every", type=int, metavar="N",
                   help="print samples at temperatures 0.2, 0.5, 1.0, 1.2 after every N history rows "
                        "(epochs, or --eval-every periods)")
    t.add_argument("--sample-prompt", default=None, help="the prompt of those samples (default: none)")
    t.add_argument("--min-count", type=int, help="tokens seen fewer times in training are unknown")
    t.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    t.add_argument("--seed", type=int, help="random seed (default 0): same seed, same weights")
    t.add_argument("--target-fpr", type=float, default=None,
                   help="false-positive rate the detection thresholds are calibrated for (default 0.001)")


def read_inputs(args, model=None, paths=None):
    from ..data.formats import read_sequences

    fmt = args.format or (model.format_ if model is not None else "sessions")
    tokens = getattr(args, "tokens", None) or (model.text_tokens_ if model is not None else "chars")
    return read_sequences(paths or args.inputs, fmt, separate_files=getattr(args, "separate_files", False),
                          max_length=getattr(args, "max_length", 100_000), text_tokens=tokens)


def open_output(path: str | None):
    if not path or path == "-":
        return sys.stdout
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return open(path, "w", encoding="utf-8")


def emit(args, text: str) -> None:
    out = open_output(getattr(args, "output", None))
    try:
        out.write(text if text.endswith("\n") else text + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
