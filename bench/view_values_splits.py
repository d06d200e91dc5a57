"""Each view's values on HDFS splits, saved for offline study of decision rules (no rule is applied here).

For each split (``hdfs``: the shared one; ``hdfs-splitN``: train + test_normal pooled, reshuffled with seed
N, cut in halves of the same sizes, as in ``bench/calibration_measure.py``; ``openstack``; ``order-N``: order
data of seed N), fits the default detector once
(GRU, model seed 0) and writes ``DIR/NAME.npz``: the calibration values of every view as the detector holds
them (cross-fitted, the copies' scale applied), the final model's surprise on its held-out sessions (the
held-out check's input), the calibration sessions' ids in calibration order, and every view's value on the
split's normal and anomalous test sessions. Rules are then compared on the same values in seconds.

    python bench/view_values_splits.py --dir=/tmp/vv hdfs hdfs-split7 ...
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path  # noqa: E402
from view_ranks_splits import split as hdfs_split  # noqa: E402

import seqrnn.detect as detect  # noqa: E402
from seqrnn.models.rnn import RNNModel  # noqa: E402
from seqrnn.crossfit import max_known_nll  # noqa: E402
from seqrnn.score import score_sequences  # noqa: E402


def split(name):
    """``hdfs``, ``hdfs-splitN`` (``bench/view_ranks_splits.py``), ``openstack`` (the shared split) or
    ``order-N`` (order data of seed N, ``seqrnn.datasets.order``): train, normal and anomalous test sessions."""
    from seqrnn.data.formats import read_sessions

    if name == "openstack":
        return tuple(read_sessions(data_path("openstack", k)) for k in ("train", "test_normal", "test_abnormal"))
    if name.startswith("order-"):
        import tempfile

        from seqrnn.datasets import order

        with tempfile.TemporaryDirectory(prefix="seqrnn-order-") as folder:  # read whole, then removed
            paths = order.write(folder, int(name[len("order-"):]))
            return tuple(read_sessions(paths[k]) for k in ("train", "test_normal", "test_abnormal"))
    return hdfs_split(name)


def main():
    options = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    out = options.get("dir", "/tmp/view_values")
    threads = int(options.get("threads", 0)) or None
    os.makedirs(out, exist_ok=True)
    for name in [a for a in sys.argv[1:] if not a.startswith("--")]:
        t0 = time.perf_counter()
        train, normal, abnormal = split(name)
        det = detect.Detector(RNNModel(cell="gru", seed=0, threads=threads)).fit(train)
        tr, held = det.model.split(train)
        cal = det.calibration_
        own = np.sort(max_known_nll(score_sequences(det.model, held, topk=1)))
        arrays = {f"cal_{k}": v for k, v in cal.values.items()}
        for part, seqs in (("normal", normal), ("abnormal", abnormal)):
            scores = score_sequences(det.model, seqs, topk=1)
            stats = det._statistics(seqs, detect._events_of(scores), True, scores)
            arrays.update({f"{part}_{k}": stats[k] for k in cal.values})
            arrays[f"{part}_decided"] = det.decide(seqs).anomalous
        np.savez(os.path.join(out, name + ".npz"), own=own, cal_ids=np.array([s.id for s in tr + held]),
                 surprise_scale=det.surprise_scale_, floors=np.array([cal.floors.get("surprise", np.nan)]),
                 fit_s=time.perf_counter() - t0, **arrays)
        print(name, f"{time.perf_counter() - t0:.0f}s", "fp", int(arrays["normal_decided"].sum()),
              "recall", round(float(arrays["abnormal_decided"].mean()), 4), flush=True)


if __name__ == "__main__":
    main()
