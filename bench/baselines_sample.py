"""Each baseline on the HDFS sample shipped in the package: training and detection seconds.

Trains every baseline on ``hdfs_train`` (2,791 sessions) and detects on
``hdfs_test_normal`` + ``hdfs_test_abnormal`` (4,897 sessions), ``--repeat``
times; writes the median and range of the seconds and the run's F1, recall
and FPR to ``bench/results/baselines_hdfs_sample.json``.

    python bench/baselines_sample.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median, write_result  # noqa: E402

MODELS = ("markov1", "markov3", "nb", "hmm", "unseen", "length", "count", "count-idf", "combined", "combined-idf")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from seqrnn.experiments.compare import build_model
    from seqrnn.data.formats import read_sessions
    from seqrnn.datasets import hdfs_sample
    from seqrnn.datasets import PREVALENCE_HDFS
    from seqrnn.detect import Detector
    from seqrnn.metrics import detection_metrics

    torch.set_num_threads(2)
    files = hdfs_sample()
    train = read_sessions(files["hdfs_train"])
    normal, abnormal = read_sessions(files["hdfs_test_normal"]), read_sessions(files["hdfs_test_abnormal"])
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    out = {}
    for name in MODELS:
        fit, detect, metrics = [], [], None
        for r in range(args.repeat):
            model = build_model(name, seed=r)
            t0 = time.perf_counter()
            detector = Detector(model).fit(train)  # fits the model, then its thresholds
            fit.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            d = detector.decide(normal + abnormal)
            detect.append(time.perf_counter() - t0)
            metrics = detection_metrics(y, d.anomalous, d.scores, PREVALENCE_HDFS)
        out[name] = {"train_seconds": {"median": round(median(fit), 3), "min": round(min(fit), 3),
                                       "max": round(max(fit), 3)},
                     "detect_seconds": {"median": round(median(detect), 3), "min": round(min(detect), 3),
                                        "max": round(max(detect), 3)},
                     "last_run": {k: round(metrics[k], 4) for k in ("f1", "recall", "fpr", "roc_auc",
                                                                       "f1_at_prevalence")}}
        print(name, out[name], file=sys.stderr)
    write_result("baselines_hdfs_sample", {
        "sessions": {"train": len(train), "test_normal": len(normal), "test_abnormal": len(abnormal)},
        "repeat": args.repeat, "models": out})


if __name__ == "__main__":
    main()
