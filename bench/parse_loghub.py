"""Template mining on the Loghub 2k samples: grouping accuracy and speed.

Accuracy: the Loghub parsing benchmark's grouping accuracy of ``seqrnn parse``
with its default settings on every ``*_2k.log`` in ``../shared/data/loghub-2k``
(the log format of each system is Loghub's), beside drain3 0.9.11 with its
own defaults on the same messages. Also checks that the HDFS lines grouped by
block id give the same sessions as the structured file's event ids.

Speed: lines/s of the whole ``parse`` (read, split the format, mask, mine,
group, write the folder) against drain3's ``TemplateMiner.add_log_message``
on the messages alone (already split from their lines: the format's work is
not counted for drain3), without masking and with masking instructions for
the same kinds of variables; medians of several runs, same process.

    python bench/parse_loghub.py [--repeats 5] [--copies 50] [--extra DIR]

``--extra DIR``: more ``*_structured.csv`` files (Loghub's ``Content`` and
``EventId`` columns) to report accuracy on, as validation beyond ../shared;
and ``*_templates.txt`` files (one Loghub template a line): each template
written three times with its ``<*>`` filled by numbers, addresses and ids,
for a template-level check (are distinct templates kept apart, and each
one's lines together).
Writes ``bench/results/parse_loghub.json``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from common import RESULTS, data_path, median  # noqa: E402

from seqrnn.parse.accuracy import grouping_accuracy  # noqa: E402
from seqrnn.parse.grouping import IdGrouper  # noqa: E402
from seqrnn.parse.logformat import LogFormat  # noqa: E402
from seqrnn.parse.parser import Parser, ParserSettings  # noqa: E402
from seqrnn.parse.pipeline import parse_logs  # noqa: E402

# Loghub's log formats (benchmark settings of logpai/logparser), brackets unescaped as our format reads them.
LOG_FORMATS = {
    "HDFS": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "OpenStack": "<Logrecord> <Date> <Time> <Pid> <Level> <Component> [<ADDR>] <Content>",
}
# drain3's example masking instructions (drain3.ini of its repository), for the masked baseline.
DRAIN3_MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def structured(path: str):
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def instantiated(path: str, copies: int = 3):
    """Each template of ``path`` written ``copies`` times, its ``<*>`` filled at random (seeded)."""
    import random

    rng = random.Random(0)
    fills = ["12", "0x3f", "10.1.2.3", "4096", "7", "host-12", "abc9"]
    with open(path, encoding="utf-8") as fh:
        templates = [t for t in fh.read().splitlines() if t.strip()]
    contents, truth = [], []
    for _ in range(copies):
        for i, t in enumerate(templates):
            contents.append(t.replace("<*>", rng.choice(fills)))
            truth.append(i)
    return contents, truth


def drain3_miner(masked: bool):
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    if masked:
        cfg.masking_instructions = [MaskingInstruction(p, n) for p, n in DRAIN3_MASKS]
    return TemplateMiner(config=cfg)


def ours_accuracy(contents, truth) -> float:
    parser = Parser(ParserSettings())
    events = [parser.parse(c).event for c in contents]
    return grouping_accuracy(truth, [parser.miner.event(e) for e in events])  # ids as parse writes them


def drain3_accuracy(contents, truth) -> float:
    miner = drain3_miner(False)
    return grouping_accuracy(truth, [miner.add_log_message(c)["cluster_id"] for c in contents])


def same_sessions_hdfs(out: str) -> bool:
    """The parsed HDFS sessions equal the sessions of the structured file's event ids (up to names)."""
    import re

    contents, truth = structured(data_path("loghub-2k", "HDFS_2k.log_structured.csv"))
    raw = open(data_path("loghub-2k", "HDFS_2k.log"), encoding="utf-8").read().splitlines()
    want = defaultdict(list)
    for line, event in zip(raw, truth):
        for blk in dict.fromkeys(re.findall(r"blk_-?\d+", line)):
            want[blk].append(event)
    got = {}
    events = open(os.path.join(out, "events")).read().split()
    for row in open(os.path.join(out, "sessions.index")):
        sid, rows = row.rstrip("\n").split(",")
        got[sid] = [events[int(r) - 1] for r in rows.split()]
    if set(got) != set(want):
        return False
    rename: dict = {}
    for sid in want:
        for a, b in zip(want[sid], got[sid]):
            if rename.setdefault(a, b) != b:
                return False
        if len(want[sid]) != len(got[sid]):
            return False
    return len(set(rename.values())) == len(rename)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--copies", type=int, default=50, help="copies of HDFS_2k.log in the speed input")
    ap.add_argument("--extra", help="folder of more *_structured.csv files (validation, accuracy only)")
    args = ap.parse_args()
    result = {"accuracy": {}, "drain3_defaults_accuracy": {}, "validation": {}}
    for name in LOG_FORMATS:
        contents, truth = structured(data_path("loghub-2k", f"{name}_2k.log_structured.csv"))
        result["accuracy"][name] = round(ours_accuracy(contents, truth), 4)
        result["drain3_defaults_accuracy"][name] = round(drain3_accuracy(contents, truth), 4)
    acc = list(result["accuracy"].values())
    result["accuracy_mean"], result["accuracy_min"] = round(sum(acc) / len(acc), 4), min(acc)
    if args.extra:
        for path in sorted(glob.glob(os.path.join(args.extra, "*_structured.csv"))):
            contents, truth = structured(path)
            name = os.path.basename(path).split("_")[0]
            result["validation"][name] = {"lines": len(contents), "seqrnn": round(ours_accuracy(contents, truth), 4),
                                          "drain3_defaults": round(drain3_accuracy(contents, truth), 4)}
        for path in sorted(glob.glob(os.path.join(args.extra, "*_templates.txt"))):
            contents, truth = instantiated(path)
            name = os.path.basename(path).split("_")[0] + " (templates x3)"
            result["validation"][name] = {"lines": len(contents), "seqrnn": round(ours_accuracy(contents, truth), 4),
                                          "drain3_defaults": round(drain3_accuracy(contents, truth), 4)}
    # The parse command's own result on the raw HDFS lines, grouped by block id.
    tmp = tempfile.mkdtemp(prefix="seqrnn-bench-parse-")
    try:
        fmt = LOG_FORMATS["HDFS"]
        out = os.path.join(tmp, "hdfs")
        parse_logs([data_path("loghub-2k", "HDFS_2k.log")], out, Parser(ParserSettings(log_format=fmt)),
                   IdGrouper(r"blk_-?\d+"))
        result["hdfs_sessions_match_structured"] = same_sessions_hdfs(out)
        # Speed.
        big = os.path.join(tmp, "hdfs_big.log")
        with open(data_path("loghub-2k", "HDFS_2k.log"), encoding="utf-8") as fh:
            text = fh.read()
        with open(big, "w", encoding="utf-8") as fh:
            fh.write(text * args.copies)
        lf = LogFormat(fmt)
        contents = [lf.content(line) for line in (text * args.copies).splitlines()]
        n = len(contents)
        rates = {"seqrnn_parse": [], "drain3": [], "drain3_masked": []}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            parse_logs([big], os.path.join(tmp, "speed"), Parser(ParserSettings(log_format=fmt)), IdGrouper(r"blk_-?\d+"))
            rates["seqrnn_parse"].append(n / (time.perf_counter() - t0))
            for key, masked in (("drain3", False), ("drain3_masked", True)):
                miner = drain3_miner(masked)
                add = miner.add_log_message
                t0 = time.perf_counter()
                for c in contents:
                    add(c)
                rates[key].append(n / (time.perf_counter() - t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["speed_lines"] = n
    result["speed_lines_per_second"] = {k: {"median": round(median(v)), "min": round(min(v)), "max": round(max(v))}
                                        for k, v in rates.items()}
    ours = median(rates["seqrnn_parse"])
    result["speed_ratio_vs_drain3"] = round(ours / median(rates["drain3"]), 3)
    result["speed_ratio_vs_drain3_masked"] = round(ours / median(rates["drain3_masked"]), 3)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "parse_loghub.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
