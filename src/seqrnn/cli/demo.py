"""``seqrnn demo``: the whole job on the HDFS sample shipped in the package."""

from __future__ import annotations

import json

from .args import add_threads


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train and detect on a sample of HDFS shipped with the package")
    p.add_argument("--model-dir", "-m", help="keep the model here (default: a temporary folder)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default %(default)s)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the JSON summary")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    summary = run_demo(model_dir=args.model_dir, epochs=args.epochs, quiet=args.quiet)
    print(json.dumps(summary, indent=2))
    return 0
