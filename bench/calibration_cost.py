"""What the out-of-sample calibration costs (issue 12): the whole ``seqrnn train --preset deeplog`` command on
the shared HDFS training set, and the whole ``seqrnn detect`` command on test_normal + test_abnormal, each run
as a new process, for one or more source trees (``--src``: this tree and, say, a checkout of the previous
main, measured alternately in the same run). Medians of ``--repeats`` runs; writes
``bench/results/calibration_cost.json``.

    python bench/calibration_cost.py --src src --src /path/to/old/src --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import data_path, write_result  # noqa: E402


def timed(cmd: list[str], src: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", action="append", required=True, help="a source tree to measure (repeatable)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    train, normal, abnormal = (data_path("hdfs", k) for k in ("train", "test_normal", "test_abnormal"))
    times = {src: {"train": [], "detect": []} for src in args.src}
    for r in range(args.repeats):
        for src in args.src:
            with tempfile.TemporaryDirectory() as tmp:
                model = os.path.join(tmp, "m")
                base = [sys.executable, "-m", "seqrnn"]
                times[src]["train"].append(timed(base + ["train", train, "-m", model, "--preset", "deeplog",
                                                         "--threads", str(args.threads), "-q"], src))
                times[src]["detect"].append(timed(base + ["detect", model, normal, abnormal, "-o",
                                                          os.path.join(tmp, "d.jsonl"), "--threads",
                                                          str(args.threads)], src))
            print(src, {k: round(v[-1], 1) for k, v in times[src].items()}, flush=True)
    out = {src: {k: {"median_s": statistics.median(v), "runs_s": v} for k, v in t.items()} for src, t in times.items()}
    write_result("calibration_cost", {"threads": args.threads, "repeats": args.repeats, "sources": out})


if __name__ == "__main__":
    main()
