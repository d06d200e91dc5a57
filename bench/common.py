"""Helpers shared by the benchmark scripts: the shared data, timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
RESULTS = os.path.join(ROOT, "bench", "results")


def data_path(*parts: str) -> str:
    path = os.path.join(DATA, *parts)
    if not os.path.exists(path):
        raise SystemExit(f"benchmark data not found: {path} (expects ../shared/data beside the repo)")
    return path


def matmul_peak_gflops(n: int = 1024, repeats: int = 7) -> float:
    """Best float32 matrix-multiply rate of this machine, with torch's threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        rates.append(10 * 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return max(rates)


def median(xs):
    return statistics.median(xs) if xs else None


def kept_rows(name: str, rows: list[dict], key: str = "data") -> list[dict]:
    """The rows of results file ``name`` not measured again in ``rows`` (by ``key``), then ``rows``: two runs
    that name different data sets share one file."""
    try:
        with open(os.path.join(RESULTS, name + ".json")) as fh:
            old = json.load(fh)["rows"]
    except (OSError, ValueError, KeyError):
        old = []
    again = {r[key] for r in rows}
    return [r for r in old if r.get(key) not in again] + rows


def write_result(name: str, result: dict) -> str:
    import torch

    os.makedirs(RESULTS, exist_ok=True)
    result = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__}, **result}
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps(result, indent=2))
    return path
