"""HDFS detection: train on normal sessions, detect on held-out normal and anomalous ones.

Writes precision, recall, F1, FPR, ROC-AUC and PR-AUC, with precision and
F1 at the full data set's prevalence (16,838 anomalous : 552,640 normal
test blocks), and seconds and sessions/s for training and detection. The
command-line detection of all 19,630 test sessions is timed end to end
(process start, torch import and model load included).

    python bench/detect_hdfs.py [--repeat 3] [--kind context]

``--kind context`` benchmarks the context (cloze) model, which scores each
event from both sides, and writes ``detect_<dataset>_context.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, median, write_result  # noqa: E402



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="training seeds (figures: median and range)")
    ap.add_argument("--preset", default="deeplog")
    ap.add_argument("--dataset", default="hdfs")
    ap.add_argument("--kind", choices=("rnn", "context"), default="rnn", help="the model kind")
    args = ap.parse_args()

    import numpy as np

    from seqrnn.data.formats import read_sessions
    from seqrnn.datasets import PREVALENCE_HDFS
    from seqrnn.detect import Detector
    from seqrnn.metrics import detection_metrics
    from seqrnn.models import REGISTRY, _import_all

    _import_all()
    model_class = REGISTRY[args.kind]

    train = read_sessions(data_path(args.dataset, "train"))
    normal = read_sessions(data_path(args.dataset, "test_normal"))
    abnormal = read_sessions(data_path(args.dataset, "test_abnormal"))
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    # HDFS: the full data set's share of anomalies; elsewhere the test set's own.
    prevalence = PREVALENCE_HDFS if args.dataset == "hdfs" else float(y.mean())
    runs = []
    work = tempfile.mkdtemp(prefix="seqrnn-bench-")
    for seed in range(args.repeat):
        model_dir = os.path.join(work, f"model{seed}")
        t0 = time.perf_counter()
        model = model_class(args.preset, seed=seed).fit(train, model_dir=model_dir)
        detector = Detector(model).fit(train)  # calibration: counted in the training time, as before
        detector.save(model_dir)  # beside the model, as seqrnn train does (the CLI run below reads it)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        d = detector.decide(normal + abnormal)
        t_detect = time.perf_counter() - t0
        m = detection_metrics(y, d.anomalous, d.scores, prevalence)
        m.update(seed=seed, epochs=len(model.history_), train_seconds=round(t_train, 2),
                 train_sessions_per_second=round(len(train) * len(model.history_) / t_train),
                 detect_seconds=round(t_detect, 3), detect_sessions_per_second=round(len(y) / t_detect),
                 top9_accuracy_test_normal=model.evaluate(normal)["topk_accuracy"]["9"])
        runs.append(m)
        print({k: m[k] for k in ("seed", "f1_at_prevalence", "recall", "fpr", "fp", "train_seconds",
                                 "detect_seconds")}, file=sys.stderr)
    # End to end, as a user runs it: a fresh process per run.
    cli = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqrnn", "detect", os.path.join(work, "model0"),
                        data_path(args.dataset, "test_normal"), data_path(args.dataset, "test_abnormal"),
                        "--output", os.devnull], check=True, stderr=subprocess.DEVNULL)
        cli.append(time.perf_counter() - t0)
    keys = ("f1_at_prevalence", "precision_at_prevalence", "recall", "fpr", "f1", "roc_auc", "pr_auc",
            "train_seconds", "detect_seconds", "detect_sessions_per_second", "top9_accuracy_test_normal")
    summary = {k: {"median": median([r[k] for r in runs]), "min": min(r[k] for r in runs),
                   "max": max(r[k] for r in runs)} for k in keys}
    write_result(f"detect_{args.dataset}" + ("" if args.kind == "rnn" else f"_{args.kind}"), {
        "dataset": args.dataset, "kind": args.kind, "preset": args.preset, "prevalence": prevalence,
        "sessions": {"train": len(train), "test_normal": len(normal), "test_abnormal": len(abnormal)},
        "summary": summary, "cli_detect_seconds_all_test_sessions": {"median": round(median(cli), 2),
                                                                      "runs": [round(c, 2) for c in cli]},
        "runs": runs})


if __name__ == "__main__":
    main()
