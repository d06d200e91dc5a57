"""``seqrnn compare``: train several models on the same data and judge them side by side."""

from __future__ import annotations

import sys

MODELS_HELP = ("comma-separated: lstm, gru (the RNN), markovN (order N), nb or nbN (window N), hmm or hmmN "
               "(N states), unseen, length, count, count-idf, combined, combined-idf")


def add_parser(sub) -> None:
    from .args import PREVALENCE_HDFS, add_input, add_labelled, settings_adder

    p = sub.add_parser(
        "compare", help="train several models (RNN and baselines) and compare their detection",
        description="Train each model on the same normal sequences, detect on labelled normal and anomalous "
                    "ones, and print one table (precision, recall, F1, FPR, ROC-AUC, PR-AUC, F1 at --prevalence, "
                    "training and detection seconds). A model with a surprise view also gets a row NAME "
                    "--no-counts: its decision without the count-profile view. --output-dir gets the table as "
                    "CSV, JSON and Markdown and a ROC plot of all models.")
    add_input(p, "sessions")
    add_labelled(p, title="test sequences", what="test sequences")
    p.add_argument("--models", default="lstm,gru,markov1,markov3,nb,hmm,unseen,length,count,count-idf,combined,combined-idf",
                   help=MODELS_HELP + " (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs, each with reshuffled training sequences and its own seed: mean ± std (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first run (default 0)")
    p.add_argument("--prevalence", type=float,
                   help="share of anomalies for the F1@prev column (default: the test set's; HDFS full data: "
                        "%.4f)" % PREVALENCE_HDFS)
    p.add_argument("--target-fpr", type=float, help="false-positive rate the thresholds are calibrated for")
    setting = settings_adder(p, p.add_argument_group("the RNN (lstm, gru)"))
    setting("--preset", choices=("deeplog", "seed"), default="deeplog", help="(default: %(default)s)")
    setting("--epochs", type=int, help="most epochs (early stopping on the validation loss still applies)")
    setting("--patience", type=int)
    setting("--threads", type=int, help="CPU threads for the RNN")
    p.add_argument("--output-dir", "-o", metavar="DIR",
                   help="write compare.csv, compare.json, compare.md and roc.png here")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from .args import given_settings, read_inputs
    from ..experiments.compare import compare, markdown_table, to_json, write_outputs

    from ..parse.sniff import DATA_ADVICE, refuse_raw_logs

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    refuse_raw_logs([*args.inputs, *args.normal, *args.abnormal], args.format, DATA_ADVICE)  # as train does
    train = read_inputs(args)
    normal = read_inputs(args, paths=args.normal)
    abnormal = read_inputs(args, paths=args.abnormal)
    if args.output_dir:  # a folder that cannot be written is found before the training, not after it
        import os

        from ..artifacts import check_output_folder

        check_output_folder(args.output_dir, "--output-dir", "the folder of the results")
        os.makedirs(args.output_dir, exist_ok=True)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    result = compare(names, train, normal, abnormal, repeat=args.repeat, seed=args.seed,
                     prevalence=args.prevalence, rnn_settings=given_settings(args),
                     target_fpr=args.target_fpr, progress=progress)
    if args.output_dir:
        paths = write_outputs(result, args.output_dir)
        if not args.quiet:
            print("wrote " + ", ".join(paths), file=sys.stderr)
    print(to_json(result) if args.json else markdown_table(result))
    return 0
