"""``seqrnn demo``: the whole job on the HDFS sample shipped in the package, as a list of steps.

Unpack the sample, train a DeepLog-sized LSTM on normal sessions, calibrate its detector (normal data
only), detect on held-out normal and anomalous sessions, compare with the baselines, and write a run
folder with its HTML report::

    runs/demo/
      data/          the unpacked sample (see seqrnn/datasets/NOTICE); data/parsed: raw lines parsed
      model/         the model directory (config, weights, history, detector)
      found.jsonl    one decision per test session
      compare/       compare.csv, .json, .md and roc.png
      run.json       what the run used (``seqrnn report runs/demo`` reads it)
      report.html    the report

Each step is a :class:`Step` in :data:`STEPS`; a step reads and extends the :class:`Run`, so another one
(parsing raw logs, say) slots in by inserting it in the list.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from .datasets import HDFS_FILES
from .datasets import PREVALENCE_HDFS as PREVALENCE
from .progress import human

BASELINES = ("markov1", "markov3", "nb", "hmm", "count-idf")
# What a demo run writes: its folder's entries, and those of its data/ (a folder of only these is a demo's).
RUN_ENTRIES = ("data", "model", "found.jsonl", "compare", "run.json", "report.html")
DATA_ENTRIES = (*HDFS_FILES, "parsed")


@dataclass
class Run:
    """What the steps share: the run folder, settings, and what each step made."""

    folder: str
    epochs: int = 10
    baselines: tuple = BASELINES
    progress: bool | None = None  # progress bars: None on a terminal only
    say: Callable = print
    files: dict = field(default_factory=dict)  # data name -> path
    manifest: dict = field(default_factory=dict)  # run.json
    made: dict = field(default_factory=dict)  # model, detector, decisions, ...
    summary: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def path(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts)


@dataclass
class Step:
    name: str
    title: str
    run: Callable[[Run], str | None]  # returns one line saying what came of it


def unpack(run: Run) -> str:
    from .data.formats import read_sessions
    from .datasets import hdfs_sample

    run.files = hdfs_sample(run.path("data"))
    for key, name in (("train", "hdfs_train"), ("normal", "hdfs_test_normal"), ("abnormal", "hdfs_test_abnormal")):
        run.made[key] = read_sessions(run.files[name])
        run.manifest[key] = [os.path.join("data", name)]
    run.manifest["templates"] = os.path.join("data", "hdfs_templates.csv")
    run.manifest["prevalence"] = PREVALENCE
    m = run.made
    return (f"HDFS sample in {run.path('data')}: {len(m['train']):,} normal training sessions, "
            f"{len(m['normal']):,} normal and {len(m['abnormal']):,} anomalous test sessions")


def train(run: Run) -> str:
    from .models.rnn import RNNModel

    model_dir = run.path("model")
    model = RNNModel("deeplog", epochs=run.epochs)
    model.fit(run.made["train"], model_dir=model_dir, verbose=0 if run.progress is False else 1)
    run.made["model"] = model
    run.manifest["model"] = "model"
    t = model.training_summary()
    return (f"2x64 LSTM (deeplog preset), {model.n_parameters():,} parameters, {t.get('epochs')} epochs, "
            f"best validation loss {t.get('best_val_loss', float('nan')):.4f} -> {model_dir}")


def calibrate(run: Run) -> str:
    from .detect import Detector
    from .report.summary import promise, promise_text

    detector = Detector(run.made["model"]).fit(run.made["train"])
    detector.save(run.path("model"))
    run.made["detector"] = detector
    return promise_text(promise(detector))


def detect(run: Run) -> str:
    import json

    import numpy as np

    from .metrics import detection_metrics
    from .progress import decide
    from .report import finding_dict, load_templates

    normal, abnormal = run.made["normal"], run.made["abnormal"]
    detector = run.made["detector"]
    decisions = decide(detector, normal + abnormal, enabled=run.progress, chunk=500)
    run.made["decisions"] = decisions
    templates = load_templates(run.files["hdfs_templates.csv"])
    with open(run.path("found.jsonl"), "w", encoding="utf-8") as fh:
        for f in decisions.findings:
            fh.write(json.dumps(finding_dict(detector.model, f, templates)) + "\n")
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    m = detection_metrics(y, decisions.anomalous, decisions.scores, PREVALENCE)
    run.summary["lstm"] = m
    return (f"recall {m['recall']:.4f}, false-positive rate {m['fpr']:.4f} "
            f"({human(m['fp'])} of {human(len(normal))} normal), "
            f"F1 at the full data set's prevalence {m['f1_at_prevalence']:.4f} -> {run.path('found.jsonl')}")


def compare_baselines(run: Run) -> str:
    import numpy as np

    from .experiments.compare import compare, write_outputs
    from .metrics import detection_metrics
    from .progress import bar

    names = list(run.baselines)
    results = []
    with bar(len(names), "compare", unit="model", enabled=run.progress) as b:
        for name in names:
            b.set_postfix_str(name)
            results.append(compare([name], run.made["train"], run.made["normal"], run.made["abnormal"],
                                   prevalence=PREVALENCE))
            b.update(1)
    # The LSTM's rows are the model trained above, judged on the same test sessions.
    normal, abnormal = run.made["normal"], run.made["abnormal"]
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    detector, decisions = run.made["detector"], run.made["decisions"]
    scores = [f.scores for f in decisions.findings]
    table, roc = {}, {}
    for row, d in (("lstm", decisions), ("lstm --no-counts", detector.with_options(use_counts=False).decide(
            normal + abnormal, scores=scores))):
        m = detection_metrics(y, d.anomalous, d.scores, PREVALENCE)
        m.update(train_seconds=run.seconds.get("train", 0.0) + run.seconds.get("calibrate", 0.0),
                 detect_seconds=run.seconds.get("detect", 0.0), promised_fpr=detector.promised_fpr)
        table[row] = {k: {"mean": float(v), "std": 0.0} for k, v in m.items() if isinstance(v, (int, float))}
        roc[row] = d.scores
    for r in results:
        table.update(r["table"])
        roc.update(r["_roc"]["scores"])
    result = {**results[0], "models": ["lstm", *names], "rows": list(table), "table": table,
              "runs": [{k: v for r in results for k, v in r["runs"][0].items()}],
              "_roc": {"y": y, "scores": roc}}
    write_outputs(result, run.path("compare"))
    run.manifest["compare"] = "compare"
    run.made["compare"] = result
    best = max((r for r in table if r != "lstm"), key=lambda r: table[r]["f1_at_prevalence"]["mean"], default=None)
    line = f"{len(names)} baselines -> {run.path('compare')}"
    if best:
        line += (f"; best of them at F1@prev: {best} {table[best]['f1_at_prevalence']['mean']:.4f} "
                 f"(lstm {table['lstm']['f1_at_prevalence']['mean']:.4f})")
    return line


def parse_raw(run: Run) -> str:
    """Raw log lines to events and sessions: the shipped 2,000 raw HDFS lines through ``seqrnn parse``
    (drain3 templates, sessions by block id) into ``data/parsed``; the model trains on the larger
    parsed sample, so this step shows the way in for a user's own logs."""
    from .artifacts import read_json
    from .datasets import parse_hdfs_log_sample

    folder = parse_hdfs_log_sample(run.path("data", "parsed"))
    info = read_json(os.path.join(folder, "parse.json"))
    run.files["parsed"] = folder
    run.manifest["parsed"] = {k: info.get(k) for k in ("lines", "templates", "sessions", "malformed")}
    return (f"{human(info['lines'])} raw lines -> {human(info['templates'])} templates, "
            f"{human(info['sessions'])} block sessions ({human(info['malformed'])} malformed) in {folder}; "
            "seqrnn parse does this for your logs")


def report(run: Run) -> str:
    from .artifacts import atomic_write_text, write_json
    from .report.page import RUN_FILE, build

    run.manifest["title"] = "seqrnn demo: HDFS sample"
    write_json(run.path(RUN_FILE), run.manifest)
    atomic_write_text(run.path("report.html"), build(run.folder))
    return run.path("report.html")


STEPS: list[Step] = [
    Step("data", "unpack the HDFS sample", unpack),
    Step("parse", "parse a raw HDFS log sample into events and sessions", parse_raw),
    Step("train", "train the LSTM on normal sessions", train),
    Step("calibrate", "calibrate the detector on normal sessions", calibrate),
    Step("detect", "detect in held-out normal and anomalous sessions", detect),
    Step("compare", "compare with the baselines", compare_baselines),
    Step("report", "write the report", report),
]


def check_folder(folder: str) -> bool:
    """Whether ``folder`` holds a previous demo run (its files will be overwritten); False when it is new
    or empty. Any other folder is refused (an InputError naming it), so that the demo never writes into,
    or mixes its files with, a folder of the user's: a previous run holds only what a run writes
    (:data:`RUN_ENTRIES`, its ``data/`` only :data:`DATA_ENTRIES`), and its ``data/`` or ``run.json``."""
    from .errors import InputError

    if not os.path.lexists(folder):
        return False
    if not os.path.isdir(folder):
        raise InputError("not a folder: the demo writes a run folder (give a new or empty folder, or a "
                         "previous demo run)", folder)
    entries = set(os.listdir(folder))
    if not entries:
        return False
    data = os.path.join(folder, "data")
    data_entries = set(os.listdir(data)) if os.path.isdir(data) else set()
    foreign = sorted(entries - set(RUN_ENTRIES)) + sorted(os.path.join("data", e)
                                                            for e in data_entries - set(DATA_ENTRIES))
    if foreign or not ({"data", "run.json"} & entries):
        what = (f" (it holds {', '.join(foreign[:3])}{', …' if len(foreign) > 3 else ''})" if foreign
                else " (it has no data/ or run.json)")
        raise InputError(f"folder is not empty and not a previous demo run{what}: the demo writes into a new "
                         "or empty folder, or over a previous demo run", folder)
    return True


def run_demo(folder: str = os.path.join("runs", "demo"), epochs: int = 10, baselines=BASELINES,
             quiet: bool = False, steps: list[Step] | None = None) -> dict:
    """Run every step of :data:`STEPS` (or ``steps``) into ``folder`` (new, empty or a previous run, see
    :func:`check_folder`), saying how it goes on standard error unless ``quiet``. Returns the summary:
    folder, report, seconds per step, the LSTM's detection metrics and the comparison table."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if check_folder(folder):
        say(f"{folder} holds a previous demo run: reusing it, its files are overwritten")
    os.makedirs(folder, exist_ok=True)
    run = Run(folder, epochs, tuple(baselines), progress=False if quiet else None, say=say)
    steps = STEPS if steps is None else steps
    if not baselines:
        steps = [s for s in steps if s.name != "compare"]
    start = time.perf_counter()
    for i, step in enumerate(steps, 1):
        say(f"{i}. {step.title}")
        t0 = time.perf_counter()
        line = step.run(run)
        run.seconds[step.name] = round(time.perf_counter() - t0, 2)
        if line:
            say("   " + line.replace("\n", "\n   ") + f"  ({run.seconds[step.name]:.1f}s)")
    total = round(time.perf_counter() - start, 1)
    say(f"done in {total:.0f}s. report: {run.path('report.html')}")
    return {"folder": folder, "report": run.path("report.html"), "seconds": {**run.seconds, "total": total},
            "detection": run.summary.get("lstm"),
            "compare": {k: {m: v["mean"] for m, v in row.items()} for k, row in
                        (run.made.get("compare") or {}).get("table", {}).items()}}
