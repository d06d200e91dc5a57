"""The default Detector (deeplog, seed 0, threads 1, default target_fpr) on the test sets: the shared HDFS
split, other splits (train + test_normal pooled, reshuffled with seed N, cut in halves of the same sizes;
abnormal = test_abnormal: ``hdfs-splitN``) and OpenStack. F1 at the full HDFS prevalence (OpenStack: the
test set's). docs/calibration.md says which of these informed the rule and which was measured once.

    python bench/calibration_measure.py hdfs hdfs-split7 hdfs-split11 hdfs-split23 hdfs-split42 openstack

``--settings='{"cell": "gru", "seed": 0, "threads": 1}'`` measures other model settings (instead of the
deeplog preset) and ``--out=NAME`` writes ``bench/results/NAME.json``.

Rows of data sets measured before and not named now are kept in the results file (so that two runs can
share the machine's cores: each names its own).
"""
import json
import sys
import time

import numpy as np

sys.path.insert(0, "bench")
from common import data_path, kept_rows, write_result

from seqrnn.data.formats import read_sessions
from seqrnn.datasets import PREVALENCE_HDFS
from seqrnn.detect import Detector
from seqrnn.metrics import detection_metrics
from seqrnn.models.rnn import RNNModel

options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
MODEL = json.loads(options.get("settings", '{"preset": "deeplog", "seed": 0, "threads": 1}'))
OUT = options.get("out", "calibration_measure")
out = []
for name in [a for a in sys.argv[1:] if not a.startswith("--")]:
    ds = "openstack" if name == "openstack" else "hdfs"
    train = read_sessions(data_path(ds, "train")); normal = read_sessions(data_path(ds, "test_normal"))
    abnormal = read_sessions(data_path(ds, "test_abnormal"))
    if name.startswith("hdfs-split"):
        pool = train + normal
        order = np.random.default_rng(int(name[len("hdfs-split"):])).permutation(len(pool))
        train, normal = [pool[i] for i in order[:len(train)]], [pool[i] for i in order[len(train):]]
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    prev = PREVALENCE_HDFS if ds == "hdfs" else float(y.mean())
    t0 = time.perf_counter()
    det = Detector(RNNModel(**MODEL)).fit(train)
    t = time.perf_counter() - t0
    d = det.decide(normal + abnormal)
    m = detection_metrics(y, d.anomalous, d.scores, prev)
    fired = {k: int(sum(bool(f.views.get(k, {}).get("fired")) for f, yy in zip(d.findings, y) if not yy)) for k in det.calibration_.values}
    row = {"data": name, "n": det.calibration_.n, "promised": det.promised_fpr, "fp": int(d.anomalous[~y].sum()),
           "normal": int((~y).sum()), "fpr": m["fpr"], "recall": m["recall"], "f1_at_prevalence": m["f1_at_prevalence"],
           "metrics": {k: v for k, v in m.items() if isinstance(v, (int, float))}, "fp_by_view": fired,
           "cuts": det.calibration["cuts"], "view_ranks": det.calibration["view_ranks"], "fit_s": round(t, 1)}
    print(json.dumps(row), flush=True)
    out.append(row)
write_result(OUT, {"notes": "default target_fpr; one run each", "settings": MODEL, "rows": kept_rows(OUT, out)})
