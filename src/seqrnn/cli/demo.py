"""``seqrnn demo``: the whole job on the HDFS sample shipped in the package."""

from __future__ import annotations

import json
import os

from .args import add_threads


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="the whole pipeline on a sample of HDFS shipped with the package, with its report",
        description="Unpack the HDFS sample shipped with the package, train a DeepLog-sized LSTM on its normal "
                    "sessions, calibrate the detector, detect in held-out normal and anomalous sessions, compare "
                    "with the baselines, and write a run folder (data/, model/, found.jsonl, compare/, run.json) "
                    "and its report.html. Prints the comparison table and the report's path.")
    p.add_argument("--output-dir", "-o", metavar="DIR", default=os.path.join("runs", "demo"),
                   help="the run folder (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default %(default)s)")
    p.add_argument("--baselines", default="markov1,markov3,nb,hmm,count-idf",
                   help="models to compare with, as seqrnn compare --models takes them, or 'none' "
                        "(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress, only the result")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo
    from ..errors import InputError
    from ..experiments.compare import model_spec

    if args.epochs < 1:
        raise InputError(f"epochs must be at least 1, not {args.epochs}", params="epochs")
    names = [] if args.baselines.strip() == "none" else [n.strip() for n in args.baselines.split(",") if n.strip()]
    for name in names:
        model_spec(name)  # an unknown name fails before training
    summary = run_demo(args.output_dir, epochs=args.epochs, baselines=names, quiet=args.quiet)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    from ..experiments.compare import markdown_table

    if summary["compare"]:
        table = {row: {k: {"mean": v, "std": 0.0} for k, v in stats.items()} for row, stats in summary["compare"].items()}
        print(markdown_table({"table": table, "repeat": 1}))
    m = summary["detection"]
    print(f"\nLSTM: recall {m['recall']:.4f}, false-positive rate {m['fpr']:.4f}, F1 at prevalence "
          f"{m['prevalence']:.4f}: {m['f1_at_prevalence']:.4f}")
    print(f"report: {summary['report']}")
    return 0
