"""The GPU path end to end, for a machine with a GPU: train, detect, generate; prints its figures.

Trains the deeplog and seed presets on the HDFS training sessions with
``--device cuda`` (bf16 autocast, pinned memory, non-blocking copies), then
``seqrnn detect`` on the normal and anomalous test sessions and ``seqrnn
generate`` from the trained model, and checks that each step worked:
training loss falling, detection finding most anomalies and few normal
sessions, generated sessions made of known events. With ``--ddp N`` it
also trains with ``torchrun --nproc-per-node N`` (NCCL).

On a machine without a GPU it says so and exits 0 without running anything
(nothing here is part of the default test run).

    python bench/gpu_check.py [--epochs 5] [--ddp 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, data_path, write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--ddp", type=int, default=0, help="also train with torchrun on this many GPUs")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: torch sees no GPU on this machine (torch.cuda.is_available() is False); nothing to "
              "check. Run it on a machine with a CUDA GPU.", file=sys.stderr)
        return
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    seqrnn = [sys.executable, "-m", "seqrnn"]
    hdfs = {k: data_path("hdfs", k) for k in ("train", "test_normal", "test_abnormal")}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        runs = [("deeplog", 1), ("seed", 1)] + ([("deeplog", args.ddp)] if args.ddp > 1 else [])
        for preset, procs in runs:
            model = os.path.join(work, f"{preset}-{procs}")
            launch = (seqrnn if procs == 1 else
                      [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                       str(procs), "-m", "seqrnn"])
            t0 = time.perf_counter()
            subprocess.run([*launch, "train", hdfs["train"], "--preset", preset, "--epochs", str(args.epochs),
                            "--patience", "0", "--device", "cuda", "--model-dir", model, "--quiet"],
                           env=env, check=True)
            train_s = time.perf_counter() - t0
            with open(os.path.join(model, "history.csv")) as fh:
                hist = list(csv.DictReader(fh))
            info = json.loads(subprocess.run([*seqrnn, "info", model, "--json"], env=env, check=True,
                                             capture_output=True, text=True).stdout)
            found = {}
            t0 = time.perf_counter()
            for part in ("test_normal", "test_abnormal"):
                out = os.path.join(work, f"{preset}-{part}.jsonl")
                subprocess.run([*seqrnn, "detect", model, hdfs[part], "--output", out], env=env, check=True,
                               capture_output=True)
                lines = [json.loads(x) for x in open(out)]
                found[part] = sum(x["anomalous"] for x in lines) / len(lines)
            detect_s = time.perf_counter() - t0
            gen = subprocess.run([*seqrnn, "generate", model, "--num-samples", "3", "--seed", "1"], env=env,
                                 check=True, capture_output=True, text=True).stdout.split("\n")
            row = {"preset": preset, "processes": procs, "device": info["training"].get("device"),
                   "train_seconds": round(train_s, 1),
                   "events_per_second": round(float(hist[-1]["events_per_second"])),
                   "first_loss": float(hist[0]["loss"]), "last_loss": float(hist[-1]["loss"]),
                   "val_loss": float(hist[-1]["val_loss"]), "detect_seconds": round(detect_s, 1),
                   "flagged_normal": round(found["test_normal"], 4),
                   "flagged_abnormal": round(found["test_abnormal"], 4), "generated": gen[:3]}
            row["ok"] = bool(row["last_loss"] < row["first_loss"] and row["device"] == "cuda"
                             and row["flagged_abnormal"] > 0.5 and row["flagged_normal"] < 0.2 and any(gen))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    write_result("gpu_check", {"gpu": torch.cuda.get_device_name(0), "runs": rows,
                               "ok": all(r["ok"] for r in rows)})
    if not all(r["ok"] for r in rows):
        raise SystemExit("gpu_check: a step did not work (see ok in the rows)")


if __name__ == "__main__":
    main()
