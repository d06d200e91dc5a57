"""HDFS supervised classification: BiLSTM + attention on labelled sessions.

Trains on ``train`` (normal) plus a random half of ``test_abnormal`` (seeded
per run), tests on ``test_normal`` plus the other half. The threshold is
chosen on a 20% stratified validation split of the training data, for the
best F1 at the full data set's prevalence (16,838 anomalous : 552,640
normal test blocks); precision and F1 are reported at that prevalence too,
beside the raw figures of this test set.

    python bench/classify_hdfs.py [--repeat 3] [--epochs 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, median, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="seeds (split and training); figures: median and range")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--patience", type=int, default=0)
    ap.add_argument("--schedule", default="cosine")
    ap.add_argument("--threshold-on", default="validation+normal")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", help="these seeds instead of 0 .. repeat-1")
    ap.add_argument("--name", default="classify_hdfs", help="result file name (bench/results/NAME.json)")
    args = ap.parse_args()

    import numpy as np

    from seqrnn.models.classifier import SequenceClassifier, load_classifier
    from seqrnn.data.formats import read_sessions
    from seqrnn.datasets import PREVALENCE_HDFS
    from seqrnn.metrics import detection_metrics

    train = read_sessions(data_path("hdfs", "train"))
    normal = read_sessions(data_path("hdfs", "test_normal"))
    abnormal = read_sessions(data_path("hdfs", "test_abnormal"))
    runs = []
    work = tempfile.mkdtemp(prefix="seqrnn-bench-classify-")
    for seed in args.seeds if args.seeds is not None else range(args.repeat):
        perm = np.random.default_rng(seed).permutation(len(abnormal))
        half = len(abnormal) // 2
        ab_train = [abnormal[i] for i in perm[:half]]
        ab_test = [abnormal[i] for i in perm[half:]]
        x_train = train + ab_train
        y_train = np.r_[np.zeros(len(train), bool), np.ones(len(ab_train), bool)]
        x_test = normal + ab_test
        y_test = np.r_[np.zeros(len(normal), bool), np.ones(len(ab_test), bool)]
        model_dir = os.path.join(work, f"clf{seed}")
        t0 = time.perf_counter()
        clf = SequenceClassifier(cell=args.cell, hidden=args.hidden, epochs=args.epochs, seed=seed,
                                 patience=args.patience, lr=args.lr, schedule=args.schedule,
                                 threshold_on=args.threshold_on,
                                 threads=args.threads, prevalence=PREVALENCE_HDFS)
        clf.fit(x_train, y_train, model_dir=model_dir, verbose=1)
        t_train = time.perf_counter() - t0
        clf = load_classifier(model_dir)  # what a user gets: the saved model
        t0 = time.perf_counter()
        scores = clf.decision_function(x_test)
        t_test = time.perf_counter() - t0
        m = detection_metrics(y_test, scores > clf.threshold_, scores, PREVALENCE_HDFS)
        m.update(seed=seed, epochs=clf.training_.get("epochs"), threshold=clf.threshold_, validation=clf.validation_,
                 train_seconds=round(t_train, 2), predict_seconds=round(t_test, 3),
                 predict_sessions_per_second=round(len(x_test) / t_test))
        runs.append(m)
        print({k: m[k] for k in ("seed", "f1_at_prevalence", "recall", "fpr", "fp", "fn", "epochs",
                                 "train_seconds")}, file=sys.stderr, flush=True)
    keys = ("f1_at_prevalence", "precision_at_prevalence", "recall", "fpr", "f1", "roc_auc", "pr_auc",
            "train_seconds", "predict_seconds", "predict_sessions_per_second")
    summary = {k: {"median": median([r[k] for r in runs]), "min": min(r[k] for r in runs),
                   "max": max(r[k] for r in runs)} for k in keys}
    write_result(args.name, {
        "dataset": "hdfs", "model": {"cell": args.cell, "hidden": args.hidden, "epochs": args.epochs,
                                     "patience": args.patience, "lr": args.lr, "schedule": args.schedule,
                                     "threshold_on": args.threshold_on,
                                     "bidirectional": True, "pooling": "attention"},
        "threshold_rule": "best F1 at the prevalence below, on a 20% stratified validation split of the training "
                          "data" + (" plus the training split's normal sessions" if args.threshold_on != "validation"
                                    else ""),
        "prevalence": PREVALENCE_HDFS,
        "sessions": {"train_normal": len(train), "train_abnormal": len(abnormal) // 2, "test_normal": len(normal),
                     "test_abnormal": len(abnormal) - len(abnormal) // 2},
        "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
