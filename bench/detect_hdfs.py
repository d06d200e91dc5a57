"""HDFS detection: train on normal sessions, detect on held-out normal and anomalous ones.

Writes precision, recall, F1, FPR, ROC-AUC and PR-AUC, with precision and
F1 at the full data set's prevalence (16,838 anomalous : 552,640 normal
test blocks), and seconds and sessions/s for training and detection. The
command-line detection of all 19,630 test sessions is timed end to end
(process start, torch import and model load included).

    python bench/detect_hdfs.py [--repeat 3] [--kind context]

``--kind context`` benchmarks the context (cloze) model, which scores each
event from both sides, and writes ``detect_<dataset>_context.json``.

``--split SEED`` judges on another split of the same data: ``train`` and
``test_normal`` pooled, reshuffled with SEED and cut in two halves of the
same sizes (the anomalies unchanged); it writes
``detect_<dataset>_split<SEED>.json``. ``--no-cli`` skips the end-to-end
timing.
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
    ap.add_argument("--split", type=int, default=None, metavar="SEED",
                    help="pool train and test_normal, reshuffle with SEED, cut in two (another split)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end command-line timing")
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
    if args.split is not None:
        pool = train + normal
        order = np.random.default_rng(args.split).permutation(len(pool))
        train, normal = [pool[i] for i in order[:len(train)]], [pool[i] for i in order[len(train):]]
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    # HDFS: the full data set's share of anomalies; elsewhere the test set's own.
    prevalence = PREVALENCE_HDFS if args.dataset == "hdfs" else float(y.mean())
    runs = []
    work = tempfile.mkdtemp(prefix="seqrnn-bench-")
    for seed in range(args.repeat):
        model_dir = os.path.join(work, f"model{seed}")
        t0 = time.perf_counter()
        model = model_class(args.preset, seed=seed, threads=args.threads).fit(train, model_dir=model_dir)
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
                 promised_fpr=detector.promised_fpr, calibration_sequences=detector.calibration_.n,
                 fired_views_normal={v: sum(1 for f in d.findings[:len(normal)] if f.anomalous and f.view == v)
                                     for v in ("unseen", "surprise", "count")},
                 top9_accuracy_test_normal=model.evaluate(normal)["topk_accuracy"]["9"])
        runs.append(m)
        print({k: m[k] for k in ("seed", "f1_at_prevalence", "recall", "fpr", "fp", "promised_fpr",
                                 "fired_views_normal", "train_seconds", "detect_seconds")}, file=sys.stderr)
    # End to end, as a user runs it: a fresh process per run.
    cli = []
    for _ in range(0 if args.no_cli or args.split is not None else 3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqrnn", "detect", os.path.join(work, "model0"),
                        data_path(args.dataset, "test_normal"), data_path(args.dataset, "test_abnormal"),
                        "--output", os.devnull], check=True, stderr=subprocess.DEVNULL)
        cli.append(time.perf_counter() - t0)
    keys = ("f1_at_prevalence", "precision_at_prevalence", "recall", "fpr", "promised_fpr", "f1", "roc_auc", "pr_auc",
            "train_seconds", "detect_seconds", "detect_sessions_per_second", "top9_accuracy_test_normal")
    summary = {k: {"median": median([r[k] for r in runs]), "min": min(r[k] for r in runs),
                   "max": max(r[k] for r in runs)} for k in keys}
    name = f"detect_{args.dataset}" + ("" if args.kind == "rnn" else f"_{args.kind}")
    write_result(name + ("" if args.split is None else f"_split{args.split}"), {
        "dataset": args.dataset, "split": args.split, "kind": args.kind, "preset": args.preset, "prevalence": prevalence,
        "sessions": {"train": len(train), "test_normal": len(normal), "test_abnormal": len(abnormal)},
        "summary": summary, "cli_detect_seconds_all_test_sessions": {
            "median": round(median(cli), 2) if cli else None, "runs": [round(c, 2) for c in cli]},
        "runs": runs})


if __name__ == "__main__":
    main()
