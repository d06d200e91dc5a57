"""Training from shards as the corpus grows: events/s and peak resident memory at 1, 10 and 50 million events.

Each corpus is generated from the HDFS sample's statistics: sessions drawn
at random (with replacement, seeded) from the HDFS training sessions, so
the session lengths and event frequencies are the sample's; written as
sessions files of about a million events each, then encoded by
``seqrnn encode`` (0.2% held out, shards of 4 Mi events). Training is the
deeplog preset (many-to-many, batch 64) on the shards for a fixed time
(``--seconds``, through ``minutes``) rather than whole epochs: each run
reads shards in a random order for that long; its rate is the median
events/s of its history rows after the first (one row every
``--eval-every`` steps, training time only). Each training runs in a fresh
process, whose peak resident memory (ru_maxrss) is reported, with the
in-memory training of the 1M corpus in the same run as the baseline.
Generated files are deleted at the end.

    python bench/shards_memory.py [--sizes 1,10,50] [--seconds 60] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, data_path, write_result  # noqa: E402

FILE_EVENTS = 1_000_000

CHILD = r"""
import json, resource, statistics, sys, time
from seqrnn.models.rnn import RNNModel
src, seconds, eval_every = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
m = RNNModel(preset="deeplog", epochs=100000, patience=0, minutes=seconds / 60, eval_every=eval_every,
             device="cpu").fit(src)
rates = [h["events_per_second"] for h in m.history_[1:]] or [h["events_per_second"] for h in m.history_]
print(json.dumps({"events_per_second": statistics.median(rates), "rows": len(m.history_),
                  "trained_events": sum(h["events"] for h in m.history_), "wall_seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(folder: str, events: int, seed: int) -> int:
    """Sessions files of about FILE_EVENTS events each, drawn from the HDFS training sessions."""
    import numpy as np

    lines = [ln.split(",", 1)[-1].strip() for ln in open(data_path("hdfs", "train"), encoding="utf-8") if ln.strip()]
    lengths = np.array([len(ln.split()) for ln in lines])
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    written, part = 0, 0
    while written < events:
        n = int(min(FILE_EVENTS, events - written) / lengths.mean()) + 1
        pick = rng.integers(0, len(lines), n)
        with open(os.path.join(folder, f"part-{part:05d}.txt"), "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines[i] for i in pick) + "\n")
        written += int(lengths[pick].sum())
        part += 1
    return written


def child(src: str, seconds: float, eval_every: int, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, src, str(seconds), str(eval_every)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,50", help="corpus sizes, millions of events")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--work", default=None, help="folder for the generated corpora (deleted after)")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    work = tempfile.mkdtemp(prefix="seqrnn-shards-", dir=args.work)
    rows = []
    try:
        for size in [float(s) for s in args.sizes.split(",")]:
            corpus, shards = os.path.join(work, f"c{size:g}"), os.path.join(work, f"s{size:g}")
            t0 = time.perf_counter()
            events = generate(corpus, int(size * 1e6), seed=int(size))
            t1 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "seqrnn", "encode", corpus, "-o", shards, "--validation-split",
                            "0.002", "--quiet"], env=env, check=True)
            t2 = time.perf_counter()
            shutil.rmtree(corpus) if size > 1 else None  # the 1M corpus also trains in memory, below
            r = child(shards, args.seconds, args.eval_every, env)
            row = {"million_events": size, "events": events, "generate_seconds": round(t1 - t0, 1),
                   "encode_seconds": round(t2 - t1, 1), "shards_mb": round(sum(
                       os.path.getsize(os.path.join(shards, f)) for f in os.listdir(shards)) / 2**20, 1),
                   **{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()}}
            if size == 1:  # the baseline: the same corpus read into memory
                row["in_memory"] = {k: round(v, 1) if isinstance(v, float) else v
                                    for k, v in child(corpus, args.seconds, args.eval_every, env).items()}
                shutil.rmtree(corpus)
            shutil.rmtree(shards)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first, last = rows[0], rows[-1]
    write_result("shards_memory", {
        "what": "deeplog preset trained from shards for a fixed time per corpus; corpora drawn from the HDFS "
                "training sessions; peak RSS of the training process",
        "seconds_per_run": args.seconds, "runs": rows,
        "rss_ratio_last_to_first": round(last["peak_rss_mb"] / first["peak_rss_mb"], 3),
        "events_per_second_ratio_last_to_first": round(last["events_per_second"] / first["events_per_second"], 3)})


if __name__ == "__main__":
    main()
