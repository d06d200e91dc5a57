"""``seqrnn detect`` end to end: process start to exit, this tree against a baseline checkout.

Runs ``python -m seqrnn detect MODEL INPUTS... --threads T > file`` alternately with
``PYTHONPATH`` set to a baseline's ``src`` (``--src``, for example the main
checkout) and to this tree's, ``--repeat`` times each after one warm-up run
each, and writes the medians, ranges and the ratio to
``bench/results/detect_speed.json`` (``--name`` to change). The model is any
trained model directory (``--baseline-model`` gives the baseline its own, for a seqrnn whose model
format differs), for example::

    seqrnn train ../shared/data/hdfs/train --preset deeplog --model-dir runs/hdfs
    python bench/detect_speed.py runs/hdfs --src ../main/src --repeat 5 --threads 2

The default inputs are HDFS ``test_normal`` and ``test_abnormal`` (19,630
sessions). Each timed run's output is kept until the next, and the line
counts of both trees are compared (the values may differ in their last
digits from run to run: torch's LSTM is not bit-for-bit repeatable).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, data_path, median, write_result  # noqa: E402


def run_once(src: str, argv: list[str], out_path: str) -> float:
    env = dict(os.environ, PYTHONPATH=src)
    with open(out_path, "w") as out:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "seqrnn", *argv], stdout=out, stderr=subprocess.PIPE,
                              env=env, text=True)
        seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"seqrnn detect failed with PYTHONPATH={src}:\n{done.stderr[-2000:]}")
    return seconds


def summary(times: list[float]) -> dict:
    return {"median_s": round(median(times), 3), "min_s": round(min(times), 3), "max_s": round(max(times), 3),
            "runs_s": [round(t, 3) for t in times]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="a trained model directory")
    ap.add_argument("inputs", nargs="*", help="inputs (default: HDFS test_normal and test_abnormal)")
    ap.add_argument("--src", help="the baseline's src folder (another checkout), timed alternately")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="detect_speed", help="the result's name in bench/results")
    ap.add_argument("--baseline-model", help="the baseline's own model directory (an older seqrnn's format; "
                    "default: MODEL)")
    ap.add_argument("--baseline-no-threads", action="store_true",
                    help="run the baseline without --threads (a seqrnn from before the option)")
    args = ap.parse_args()

    inputs = args.inputs or [data_path("hdfs", "test_normal"), data_path("hdfs", "test_abnormal")]
    argv = ["detect", args.model, *inputs, "--threads", str(args.threads)]
    argvs = {"this": argv}
    trees = {"this": os.path.join(ROOT, "src")}
    if args.src:
        trees = {"baseline": os.path.abspath(args.src), **trees}
        argvs["baseline"] = ["detect", args.baseline_model or args.model, *inputs,
                             *([] if args.baseline_no_threads else ["--threads", str(args.threads)])]
    times: dict[str, list[float]] = {name: [] for name in trees}
    lines: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in trees.items():  # warm-up: file cache, bytecode
            run_once(src, argvs[name], os.path.join(tmp, f"{name}.jsonl"))
        for _ in range(args.repeat):
            for name, src in trees.items():
                path = os.path.join(tmp, f"{name}.jsonl")
                times[name].append(run_once(src, argvs[name], path))
                with open(path) as fh:
                    lines[name] = sum(1 for _ in fh)
    result = {"command": "python -m seqrnn " + " ".join(argv), "repeat": args.repeat,
              **({"baseline_command": "python -m seqrnn " + " ".join(argvs["baseline"])} if args.src else {}),
              "trees": trees, "output_lines": lines, **{name: summary(t) for name, t in times.items()}}
    if args.src:
        result["baseline_over_this"] = round(median(times["baseline"]) / median(times["this"]), 3)
        if lines["baseline"] != lines["this"]:
            raise SystemExit(f"the trees wrote different numbers of lines: {lines}")
    write_result(args.name, result)


if __name__ == "__main__":
    main()
