"""Compare models on the same data: does the RNN earn its cost?

Every model named in ``models`` is trained on the same normal sequences,
calibrated the same way (no labels) and judged by the same
:class:`~seqrnn.detect.Detector` on labelled normal and anomalous test
sequences. The Detector combines views (unseen event, the model's surprise,
the count profile, and a baseline's own sequence-level views), so a model
that has a surprise view is reported twice: with its default decision and
with the count profile turned off (``NAME --no-counts``, as ``detect --no-counts``),
which shows what the next-event model itself contributes.

Every model goes through the same calibration (the Detector's, out of
sample, one false-positive budget for all its views), so the table compares
models, not thresholds; the row with the best mean F1 at the prevalence is
marked. ``promised_fpr`` is the rate the calibration promised beside the
measured ``fpr``.

Each repeat reshuffles the training sequences and uses another seed (its
own validation split, initial weights and HMM start), and the table gives
the mean and standard deviation over repeats.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time

import numpy as np

from ..data.formats import Sequence
from ..errors import InputError

METRICS = ("precision", "recall", "f1", "fpr", "promised_fpr", "roc_auc", "pr_auc", "f1_at_prevalence",
           "train_seconds", "detect_seconds")
HEADERS = ("precision", "recall", "F1", "FPR", "promised FPR", "ROC-AUC", "PR-AUC", "F1@prev", "train s",
           "detect s")
BEST_BY = "f1_at_prevalence"  # the table marks the row with the best mean of this


def model_spec(name: str) -> tuple[str, dict]:
    """A model name of the command line -> (kind, settings).

    ``lstm``, ``gru`` (the RNN), ``markovN`` (order N), ``nb`` / ``nbN`` (window N),
    ``hmm`` / ``hmmN`` (N states), ``unseen``, ``length``, ``count``, ``count-idf``, ``combined``, ``combined-idf``.
    """
    fixed = {"lstm": ("rnn", {"cell": "lstm"}), "gru": ("rnn", {"cell": "gru"}), "unseen": ("unseen", {}),
             "length": ("length", {}), "count": ("count", {}), "count-idf": ("count", {"idf": True}),
             "combined": ("combined", {}), "combined-idf": ("combined", {"idf": True}), "nb": ("nb", {}),
             "hmm": ("hmm", {})}
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"(markov|nb|hmm)(\d+)", name)
    if m:
        key = {"markov": "order", "nb": "window", "hmm": "states"}[m.group(1)]
        return m.group(1), {key: int(m.group(2))}
    raise InputError(f"unknown model {name!r}; use lstm, gru, markovN, nb[N], hmm[N], unseen, "
                     "length, count, count-idf, combined, combined-idf")


def build_model(name: str, seed: int, rnn_settings: dict | None = None):
    from ..models import REGISTRY, _import_all

    _import_all()
    kind, settings = model_spec(name)
    if kind == "rnn":
        rnn = dict(rnn_settings or {})
        preset = rnn.pop("preset", "deeplog")
        return REGISTRY["rnn"](preset, **{**rnn, **settings, "seed": seed})
    return REGISTRY[kind](**settings, seed=seed)


def run_once(names: list[str], train: list[Sequence], normal: list[Sequence], abnormal: list[Sequence],
             seed: int, prevalence: float, rnn_settings: dict | None = None, target_fpr: float | None = None,
             progress=None) -> dict:
    """Train and judge every model once; row name -> metrics (and the scores, for the ROC plot)."""
    from ..detect import DEFAULT_TARGET_FPR, Detector
    from ..metrics import detection_metrics
    from ..score import score_sequences

    rng = np.random.default_rng(seed)
    shuffled = [train[i] for i in rng.permutation(len(train))]
    test = normal + abnormal
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    rows = {}
    for name in names:
        model = build_model(name, seed, rnn_settings)
        t0 = time.perf_counter()
        detector = Detector(model, target_fpr=DEFAULT_TARGET_FPR if target_fpr is None else target_fpr).fit(shuffled)  # fits the model, then its thresholds
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = score_sequences(model, test)
        t_score = time.perf_counter() - t0
        variants = [(name, True)]
        if model.event_view and detector.count_threshold_ is not None:
            variants.append((name + " --no-counts", False))
        for row, use_counts in variants:
            t0 = time.perf_counter()
            d = detector.with_options(use_counts=use_counts).decide(test, scores=scores)
            t_detect = t_score + time.perf_counter() - t0
            m = detection_metrics(y, d.anomalous, d.scores, prevalence)
            m.update(train_seconds=t_train, detect_seconds=t_detect, promised_fpr=detector.promised_fpr)
            rows[row] = {"metrics": m, "scores": d.scores, "anomalous": d.anomalous}
            if progress:
                progress(f"seed {seed} {row:>16}: F1 {m['f1']:.4f}  recall {m['recall']:.4f}  FPR {m['fpr']:.4f}  "
                         f"ROC-AUC {m['roc_auc']:.4f}  train {t_train:.1f}s  detect {t_detect:.2f}s")
    return rows


def compare(names: list[str], train: list[Sequence], normal: list[Sequence], abnormal: list[Sequence],
            repeat: int = 1, seed: int = 0, prevalence: float | None = None, rnn_settings: dict | None = None,
            target_fpr: float | None = None, progress=None) -> dict:
    """Run every model ``repeat`` times (seeds ``seed``, ``seed + 1``, ...); the result as a JSON-able dict."""
    if repeat < 1:
        raise InputError(f"repeat must be at least 1, not {repeat}", params="repeat")
    from ..limits import MAX_SEED, check_seed

    check_seed(seed)
    if seed + repeat - 1 > MAX_SEED:
        raise InputError(f"seed + repeat - 1 must be at most {MAX_SEED}", params=("seed", "repeat"))
    if not normal or not abnormal:
        raise InputError("compare needs normal and anomalous test sequences")
    if not names:
        raise InputError("models: name at least one model", params="models")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # each is one row of the table: a second run would replace the first's
        raise InputError(f"models: {', '.join(twice)} named twice", params="models")
    for name in names:
        model_spec(name)  # fail before training anything
    if prevalence is None:
        prevalence = len(abnormal) / (len(normal) + len(abnormal))
    elif not 0.0 < prevalence < 1.0:
        raise InputError(f"prevalence must be in (0, 1), not {prevalence}", params="prevalence")
    runs, roc = [], {}
    for r in range(repeat):
        rows = run_once(names, train, normal, abnormal, seed + r, prevalence, rnn_settings, target_fpr, progress)
        runs.append({row: v["metrics"] for row, v in rows.items()})
        if r == 0:
            roc = {row: v["scores"] for row, v in rows.items()}
    table = {}
    for row in runs[0]:
        values = {k: np.array([run[row][k] for run in runs], float) for k in METRICS}
        table[row] = {k: {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
                      for k, v in values.items()}
    best = max(table, key=lambda row: table[row][BEST_BY]["mean"])
    return {"models": names, "rows": list(table), "best": best, "best_by": BEST_BY, "repeat": repeat, "seed": seed,
            "prevalence": prevalence,
            "sequences": {"train": len(train), "normal": len(normal), "abnormal": len(abnormal)},
            "rnn_settings": rnn_settings or {}, "table": table, "runs": runs,
            "_roc": {"y": np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)], "scores": roc}}


# --- output --------------------------------------------------------------------------------------
def _cell(stat: dict, key: str, repeat: int) -> str:
    digits = {"train_seconds": 1, "detect_seconds": 2, "promised_fpr": 5}.get(key, 4)
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['std']:.{digits}f}" if repeat > 1 else "")


def markdown_table(result: dict) -> str:
    lines = ["| model | " + " | ".join(HEADERS) + " |", "| --- |" + " ---: |" * len(HEADERS)]
    for row, stats in result["table"].items():
        name = f"**{row}** (best)" if row == result.get("best") else row
        lines.append(f"| {name} | " + " | ".join(_cell(stats[k], k, result["repeat"]) for k in METRICS) + " |")
    return "\n".join(lines)


def write_outputs(result: dict, folder: str) -> list[str]:
    """``compare.csv``, ``compare.json``, ``compare.md`` and ``roc.png`` in ``folder``."""
    from ..artifacts import atomic_write_text, write_json

    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, n) for n in ("compare.csv", "compare.json", "compare.md", "roc.png")]
    rows = io.StringIO(newline="")  # the whole table first: compare.csv appears whole or not at all
    w = csv.writer(rows)
    w.writerow(["model"] + [f"{k}_{s}" for k in METRICS for s in ("mean", "std")])
    for row, stats in result["table"].items():
        w.writerow([row] + [f"{stats[k][s]:.6g}" for k in METRICS for s in ("mean", "std")])
    atomic_write_text(paths[0], rows.getvalue())
    write_json(paths[1], {k: v for k, v in result.items() if not k.startswith("_")})
    atomic_write_text(paths[2], markdown_table(result) + "\n")
    plot_roc(paths[3], result["_roc"]["y"], result["_roc"]["scores"], result["seed"])
    return paths


def plot_roc(path: str, y, scores: dict, seed: int) -> None:
    from ..metrics import curves, roc_auc
    from ..report import figure, pyplot
    from ..report.plots import legend_below

    bases = list(dict.fromkeys(row.removesuffix(" --no-counts") for row in scores))
    colours = pyplot().get_cmap("tab20" if len(bases) > 10 else "tab10").colors
    with figure(path, figsize=(7, 5.5)) as ax:
        for row, s in scores.items():
            (fpr, tpr), _ = curves(y, s)
            base = row.removesuffix(" --no-counts")  # a model and its --no-counts row: one colour, dashed
            ax.plot(fpr, tpr, label=f"{row} (AUC {roc_auc(y, s):.4f})", lw=1.2,
                    color=colours[bases.index(base) % len(colours)], ls="--" if row != base else "-")
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlim(0, 1)
        ax.set_xlabel("false-positive rate (linear below 0.001)")
        ax.set_ylabel("recall (true-positive rate)")
        ax.set_title(f"ROC of every model (seed {seed}): recall against false alarms")
        legend_below(ax, 3)


def to_json(result: dict) -> str:
    return json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2)
