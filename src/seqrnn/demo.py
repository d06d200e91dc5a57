"""``seqrnn demo``: the whole job on the HDFS sample shipped in the package.

Train a DeepLog-sized LSTM on normal HDFS sessions, report how well it
predicts the next event, then detect anomalies in held-out normal and
anomalous sessions and explain two of them.
"""

from __future__ import annotations

import sys
import tempfile
import time

from .datasets import PREVALENCE_HDFS as PREVALENCE


def run_demo(model_dir: str | None = None, epochs: int = 10, quiet: bool = False) -> dict:
    """Train on the HDFS sample (into ``model_dir``, default a temporary folder) for ``epochs``, evaluate,
    detect and explain, saying how it goes on standard error unless ``quiet``. Returns the summary:
    the model folder, seconds of training and detection, top-9 accuracy and the detection metrics."""
    import numpy as np

    from .data.formats import read_sessions
    from .datasets import hdfs_sample
    from .detect import Detector
    from .metrics import detection_metrics
    from .models.rnn import RNNModel
    from .report import finding_dict, load_templates

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    work = tempfile.mkdtemp(prefix="seqrnn-demo-")
    files = hdfs_sample(work)
    model_dir = model_dir or f"{work}/model"
    train = read_sessions(files["hdfs_train"])
    normal = read_sessions(files["hdfs_test_normal"])
    abnormal = read_sessions(files["hdfs_test_abnormal"])
    say(f"HDFS sample: {len(train)} normal training sessions, {len(normal)} normal and {len(abnormal)} "
        f"anomalous test sessions (see seqrnn/datasets/NOTICE)")
    say(f"1. train: 2x64 LSTM (deeplog preset), many-to-many, {epochs} epochs -> {model_dir}")
    t0 = time.perf_counter()
    model = RNNModel("deeplog", epochs=epochs).fit(train, model_dir=model_dir, verbose=0 if quiet else 1)
    detector = Detector(model).fit(train)
    detector.save(model_dir)
    t_train = time.perf_counter() - t0
    ev = model.evaluate(normal)
    say(f"2. evaluate on normal test sessions: top-1 accuracy {ev['accuracy']:.3f}, "
        f"top-9 accuracy {ev['topk_accuracy']['9']:.4f}, perplexity {ev['perplexity']:.3f}")
    t0 = time.perf_counter()
    decisions = detector.decide(normal + abnormal)
    t_detect = time.perf_counter() - t0
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    m = detection_metrics(y, decisions.anomalous, decisions.scores, PREVALENCE)
    say(f"3. detect ({t_detect:.2f}s for {len(y)} sessions): recall {m['recall']:.4f}, "
        f"false-positive rate {m['fpr']:.4f} ({m['fp']} of {len(normal)} normal sessions), "
        f"ROC-AUC {m['roc_auc']:.4f}, F1 at the full data set's prevalence {m['f1_at_prevalence']:.4f}")
    templates = load_templates(files["hdfs_templates.csv"])
    shown = 0
    for f in decisions.findings[len(normal):]:
        if f.anomalous and shown < 2 and ("unlikely" in f.reason or "counts" in f.reason):
            d = finding_dict(model, f, templates, k=3)
            say(f"   {d['id']}: {d['reason']}")
            say(f"      at position {d['position']}: event {d['event']} '{d['event_template']}'")
            say(f"      expected instead: {', '.join(d['expected'])}")
            shown += 1
    summary = {"model_dir": model_dir, "train_seconds": round(t_train, 2), "detect_seconds": round(t_detect, 2),
               "top9_accuracy": ev["topk_accuracy"]["9"], "detection": m}
    say(f"next: seqrnn detect {model_dir} {files['hdfs_test_abnormal']} --templates "
        f"{files['hdfs_templates.csv']} | head")
    return summary
