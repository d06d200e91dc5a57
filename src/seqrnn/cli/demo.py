"""``seqrnn demo``: the whole job on the HDFS sample shipped in the package."""

from __future__ import annotations




def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train and detect on a sample of HDFS shipped with the package")
    p.add_argument("--model-dir", "-m", help="keep the model here (default: a temporary folder)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    return run_demo(args)
