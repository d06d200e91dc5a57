"""Training next to another job: events/s alone and beside a second copy of itself, before and after.

"Before" runs with ``SEQRNN_RUNTIME=default`` (OpenMP's and torch's own
defaults: every core, libgomp's long spin-wait), "after" with seqrnn's
runtime policy (seqrnn/runtime.py: a short spin, threads for the machine as
it is). Each run is ``seqrnn train`` of the deeplog preset on the HDFS
training sessions, bounded by ``--minutes`` and validated every
``--eval-every`` steps, so that a slow run still ends in time; its rate is
the median events/s of its history rows after the first (training time
only). The pair is two copies started together; its rate is the mean of the
two medians, and the share is that over the alone rate of the same mode.

Needs the whole machine: run it under /tmp/bin/quiet (about 3 minutes).

    python bench/busy_machine.py [--seconds 20] [--repeat 1] [--modes before,after]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, data_path, median, write_result  # noqa: E402

MODES = {"before": {"SEQRNN_RUNTIME": "default"}, "after": {}}


def command(model_dir: str, seconds: float, eval_every: int) -> list[str]:
    return [sys.executable, "-m", "seqrnn", "train", data_path("hdfs", "train"), "--format", "sessions",
            "--preset", "deeplog", "--epochs", "1000", "--patience", "0", "--minutes", str(seconds / 60),
            "--eval-every", str(eval_every), "--model-dir", model_dir, "--quiet"]


def rate(model_dir: str) -> float | None:
    with open(os.path.join(model_dir, "history.csv")) as fh:
        rows = list(csv.DictReader(fh))
    rates = [float(r["events_per_second"]) for r in rows[1:] if r["events_per_second"]]
    return median(rates)


def run(copies: int, env_extra: dict, seconds: float, eval_every: int, work: str) -> list[float]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "SEQRNN_RUNTIME")}
    env.update(env_extra)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    dirs = [tempfile.mkdtemp(dir=work) for _ in range(copies)]
    procs = [subprocess.Popen(command(d, seconds, eval_every), env=env, stdout=subprocess.DEVNULL) for d in dirs]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"training failed ({p.returncode})")
    return [rate(d) for d in dirs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20, help="training time of each run")
    ap.add_argument("--eval-every", type=int, default=10, help="steps per history row (one rate each)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--modes", default="before,after")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for mode in args.modes.split(","):
            alone, pair = [], []
            for _ in range(args.repeat):
                alone += run(1, MODES[mode], args.seconds, args.eval_every, work)
                rates = run(2, MODES[mode], args.seconds, args.eval_every, work)
                pair.append(sum(rates) / len(rates))
                print(mode, alone[-1], rates, file=sys.stderr, flush=True)
            results[mode] = {"alone_events_per_second": round(median(alone)),
                             "beside_a_copy_events_per_second": round(median(pair)),
                             "share_of_alone": round(median(pair) / median(alone), 3),
                             "alone_runs": [round(x) for x in alone], "pair_runs": [round(x) for x in pair]}
            print(mode, results[mode], file=sys.stderr, flush=True)
    write_result("busy_machine", {
        "what": "seqrnn train --preset deeplog on hdfs/train (bounded by --minutes), events/s: median of "
                "the history rows after the first; alone, and the mean of two copies started together",
        "seconds_per_run": args.seconds, "cores": os.cpu_count(), "modes": results,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


if __name__ == "__main__":
    main()
