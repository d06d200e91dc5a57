"""A timed hyper-parameter search on HDFS against the deeplog preset.

1. ``seqrnn tune ../shared/data/hdfs/train --minutes M --study STUDY --threads 2``
   (skipped with ``--skip-search``: the study file is then read as it is);
2. the deeplog preset trained on the same split (seed 0, 10% held out) for its
   validation loss;
3. ``seqrnn train ... --config STUDY.best.json``: the best trial trained again,
   which must reach the trial's validation loss.

Writes bench/results/tune_hdfs.json.

    python bench/tune_hdfs.py --minutes 10 --study runs/tune.db
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, data_path, write_result  # noqa: E402


def seqrnn(*argv: str) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "seqrnn", *argv], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    if r.returncode != 0:
        raise SystemExit(f"seqrnn {' '.join(argv)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0, r.stdout, r.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--study", default="runs/tune.db")
    ap.add_argument("--skip-search", action="store_true", help="use the study as it is")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    train_path = data_path("hdfs", "train")
    commands = {}

    argv = ["tune", train_path, "--minutes", str(args.minutes), "--study", args.study, "--threads", str(args.threads)]
    commands["search"] = "seqrnn " + " ".join(argv) + (" (run before, on its own)" if args.skip_search else "")
    if not args.skip_search:
        _, out, log = seqrnn(*argv)
        print(log[-3000:] + out)
    report_argv = ["tune", "--study", args.study, "--report", "--json"]
    _, out, _ = seqrnn(*report_argv)
    rep = json.loads(out)
    best = rep["best"]

    import torch

    from seqrnn.data.formats import read_sessions
    from seqrnn.models.rnn import RNNModel

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    deeplog = RNNModel("deeplog", seed=0, threads=args.threads).fit(read_sessions(train_path))
    deeplog_seconds = time.perf_counter() - t0
    commands["deeplog"] = f"seqrnn train {train_path} --preset deeplog --seed 0 --threads {args.threads} -m DIR"

    model_dir = os.path.join(os.path.dirname(os.path.abspath(args.study)), "tune-best")
    train_argv = ["train", train_path, "--config", args.study + ".best.json", "--model-dir", model_dir, "--quiet"]
    commands["reproduce"] = "seqrnn " + " ".join(train_argv)
    reproduce_seconds, _, _ = seqrnn(*train_argv)
    with open(os.path.join(model_dir, "config.json")) as fh:
        reproduced = json.load(fh)["training"]

    import optuna

    trials = optuna.load_study(study_name="seqrnn", storage="sqlite:///" + os.path.abspath(args.study)).trials
    search_seconds = (max(t.datetime_complete for t in trials if t.datetime_complete)
                      - min(t.datetime_start for t in trials)).total_seconds()
    states: dict = {}
    for r in rep["trials"]:
        states[r["state"]] = states.get(r["state"], 0) + 1
    write_result("tune_hdfs", {
        "data": "hdfs/train (2,791 sessions; 10% held out for validation, seed 0, the same split everywhere)",
        "commands": commands,
        "search_seconds": search_seconds,
        "trials": len(rep["trials"]), "trial_states": states,
        "best": {"trial": best["trial"], "val_loss": best["val_loss"], "epochs": best["epochs"],
                 "settings": best["settings"]},
        "importance": rep["importance"],
        "deeplog": {"val_loss": deeplog.trainer_.best_loss, "epochs": len(deeplog.history_),
                    "seconds": deeplog_seconds},
        "best_at_most_deeplog": best["val_loss"] <= deeplog.trainer_.best_loss,
        "reproduced": {"val_loss": reproduced["best_val_loss"], "epochs": reproduced["epochs"],
                       "abs_difference": abs(reproduced["best_val_loss"] - best["val_loss"]),
                       "seconds": reproduce_seconds},
        "trial_table": [{k: r[k] for k in ("number", "state", "value", "epochs", "seconds", "pruned_by", "params")}
                        for r in rep["trials"]],
    })


if __name__ == "__main__":
    main()
