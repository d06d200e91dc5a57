"""``seqrnn evaluate-detection``: detection metrics on labelled normal and anomalous inputs."""

from __future__ import annotations

import json
import sys

from .args import add_threads, check_labels_apart, PREVALENCE_HDFS, add_decision_options, add_labelled, add_output, decision_options, emit, read_inputs


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate-detection", help="detection metrics on labelled normal and anomalous inputs",
                       description="Decide on labelled normal (--normal) and anomalous (--abnormal) sequences "
                                   "with the model's calibrated detector and print the counts (tp, fp, fn, tn), "
                                   "precision, recall, F1, false-positive rate, ROC-AUC and PR-AUC; with "
                                   "--prevalence, precision and F1 at that share of anomalies.")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    g = add_labelled(p, reading=True)
    g.add_argument("--prevalence", type=float,
                   help="share of anomalies to report precision and F1 at (HDFS full data: %.4f)" % PREVALENCE_HDFS)
    add_decision_options(p)
    p.add_argument("--plot", metavar="DIR", help="write ROC and precision-recall curves (PNG)")
    add_output(p)
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from ..detect import Detector
    from ..metrics import detection_metrics

    from ..modeldir import read

    detector = read(args.model_dir, lambda: Detector.load(args.model_dir, **decision_options(args)), need="detector")
    check_labels_apart(args.normal, args.abnormal)
    normal = read_inputs(args, detector.model, paths=args.normal)
    abnormal = read_inputs(args, detector.model, paths=args.abnormal)
    from ..progress import decide

    d = decide(detector, normal + abnormal, "evaluate-detection")  # in blocks, as detect: bounded memory
    from ..report.summary import unknown_note

    note = unknown_note(detector.model, d.findings)
    if note:
        print(note.strip(), file=sys.stderr)
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    metrics = detection_metrics(y, d.anomalous, d.scores, args.prevalence)
    if args.plot:
        from ..report import plot_curves

        plot_curves(args.plot, y, d.scores, predicted=d.anomalous, prevalence=args.prevalence)
    if args.json:
        emit(args, json.dumps(metrics, indent=2))
    else:
        from ..report import fmt as f

        emit(args, "\n".join(f"{k:>24}: {f(v)}" for k, v in metrics.items()))
    return 0
