"""The count view's cost for one session decided at a time (``watch``, ``detect --follow``).

Compares each session with 5,000 count profiles over 2,000 events (log counts, idf weights), as the
Detector does for one finished session: ``nearest_to`` (which prepares the profiles at every call, as
the Detector did before it kept them ready) against ``profiles.Reference`` made once and asked again.
With ``--src OTHER/src`` the first timing also runs on another checkout's code, in the same run,
alternating. Writes ``bench/results/count_reference_speed.json``: the median milliseconds per session
of each repeat.

    python bench/count_reference_speed.py [--src OTHER/src] [--repeats 3] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import median, write_result  # noqa: E402

MEASURE = r"""
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[1])
from seqrnn import profiles
rng = np.random.default_rng(0)
V, m, calls = 2000, 5000, int(sys.argv[2])
ids = [rng.integers(4, V, rng.integers(5, 40)) for _ in range(m)]
ref = np.unique(profiles.count_matrix(ids, V), axis=0)
w = profiles.idf_weights(ref)
q = profiles.count_matrix([rng.integers(4, V, 20)], V)
def t(f):
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return 1000 * float(np.median(ts))
out = {"profiles": int(len(ref)), "events": V, "nearest_to_ms": t(lambda: profiles.nearest_to(q, ref, w, "log"))}
if hasattr(profiles, "Reference"):
    ready = profiles.Reference(ref, w, "log")
    out["ready_ms"] = t(lambda: ready.nearest(q))
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", help="another checkout's src folder, timed in the same run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    runs = {"this": [], "other": []}
    for _ in range(args.repeats):
        for name, src in (("this", here), ("other", args.src)):
            if src:
                out = subprocess.run([sys.executable, "-c", MEASURE, src, str(args.calls)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                runs[name].append(json.loads(out))
    result = {"calls_per_repeat": args.calls, "repeats": args.repeats, "other_src": args.src, "runs": runs,
              "median_ms": {"this_nearest_to": median([r["nearest_to_ms"] for r in runs["this"]]),
                            "this_ready": median([r["ready_ms"] for r in runs["this"]]),
                            **({"other_nearest_to": median([r["nearest_to_ms"] for r in runs["other"]])}
                               if runs["other"] else {})}}
    write_result("count_reference_speed", result)


if __name__ == "__main__":
    main()
