"""How long ``seqrnn demo`` takes from a fresh start: a new working folder and an empty matplotlib cache
each run (as after a fresh install), the whole process timed from outside.

    python bench/demo_time.py --repeats 3 [--baseline-src ../main/src]

With ``--baseline-src`` the demo of another checkout (say, before a change) is timed in the same run,
alternating with this one, and the ratio of the medians is reported. Writes bench/results/demo_time.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")


def once(src: str, args: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="seqrnn-demo-bench-") as work:
        env = {**os.environ, "PYTHONPATH": src, "MPLCONFIGDIR": os.path.join(work, "mpl")}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "seqrnn", "demo", *args], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-src", help="the src folder of another checkout, timed alternately")
    p.add_argument("--output", default=os.path.join(HERE, "results", "demo_time.json"))
    a = p.parse_args()
    runs: dict[str, list[float]] = {"this": []}
    if a.baseline_src:
        runs["baseline"] = []
    for _ in range(a.repeats):
        runs["this"].append(once(SRC, []))
        if a.baseline_src:
            runs["baseline"].append(once(os.path.abspath(a.baseline_src), []))
    out = {"command": "seqrnn demo (fresh folder, empty matplotlib cache)", "repeats": a.repeats,
           "cpus": os.cpu_count(), "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",)},
           "python": platform.python_version(),
           "seconds": {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
                       for k, v in runs.items()}}
    if a.baseline_src:
        out["ratio_median_this_over_baseline"] = statistics.median(runs["this"]) / statistics.median(runs["baseline"])
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    with open(a.output, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
