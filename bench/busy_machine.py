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

MODES = {"before": {"SEQRNN_RUNTIME": "default"}, "after": {},
         # other wait settings, to choose seqrnn.runtime.SPINCOUNT (--modes before,after,passive,spin1000,...)
         "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "spin1000": {"GOMP_SPINCOUNT": "1000"},
         "spin30000": {"GOMP_SPINCOUNT": "30000"}, "spin100000": {"GOMP_SPINCOUNT": "100000"},
         # seqrnn's spin with every core (as when two copies start together on an idle machine)
         "after-all-cores": {"OMP_NUM_THREADS": str(os.cpu_count())},
         "spin1000-all-cores": {"OMP_NUM_THREADS": str(os.cpu_count()), "GOMP_SPINCOUNT": "1000"}}

# The training of `seqrnn train` (the CLI's detector calibration afterwards is left out: it is not training).
CHILD = r"""
import sys
from seqrnn.models.rnn import RNNModel
RNNModel(preset="deeplog", epochs=1000, patience=0, minutes=float(sys.argv[3]) / 60,
         eval_every=int(sys.argv[4])).fit(sys.argv[1], model_dir=sys.argv[2])
"""


def command(model_dir: str, seconds: float, eval_every: int) -> list[str]:
    return [sys.executable, "-c", CHILD, data_path("hdfs", "train"), model_dir, str(seconds), str(eval_every)]


def rate(model_dir: str) -> float | None:
    with open(os.path.join(model_dir, "history.csv")) as fh:
        rows = list(csv.DictReader(fh))
    rates = [float(r["events_per_second"]) for r in rows if r["events_per_second"]]
    return median(rates[1:] if len(rates) > 2 else rates)  # the first row warms up


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
    ap.add_argument("--modes", default="before,after", help=f"of {', '.join(MODES)}")
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
        "what": "RNNModel(preset='deeplog').fit(hdfs/train) (bounded by minutes), events/s: median of "
                "the history rows after the first; alone, and the mean of two copies started together",
        "seconds_per_run": args.seconds, "cores": os.cpu_count(), "modes": results,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


if __name__ == "__main__":
    main()
