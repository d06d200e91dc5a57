"""Every figure seqrnn draws, in one look: each answers one question, says it in its title, and keeps its
legend off the data.

A figure goes to a file path (PNG, its folder made) or to any object with ``write`` (the HTML report
passes a buffer). Matplotlib loads on the first figure, on the Agg backend (files only, no display).
"""

from __future__ import annotations

import io
import math
import os
from contextlib import contextmanager
from functools import cache

import numpy as np

# The one look of every figure seqrnn writes (detect --plot, evaluate-detection --plot, compare, tune, report).
PLOT_STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.titlelocation": "left",
              "axes.grid": True, "axes.axisbelow": True, "grid.alpha": 0.3, "grid.linewidth": 0.6,
              "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8,
              "legend.frameon": False, "savefig.dpi": 110,
              "text.parse_math": False}  # titles hold ids and events from the data: a '$' is a dollar, not TeX
NORMAL, ANOMALOUS, UNSEEN, THRESHOLD = "tab:blue", "tab:red", "tab:purple", "0.25"
PANELS = 6  # sequences drawn event by event in one figure


@cache
def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display), selected on the first call."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def figure(path, *grid: int, **subplots):
    """The axes of ``plt.subplots(*grid, **subplots)`` in the shared style (:data:`PLOT_STYLE`, constrained
    layout); on leaving the block their figure is written to ``path`` (a file name: PNG, its folder made;
    or an object with ``write``) and closed."""
    plt = pyplot()
    with plt.rc_context(PLOT_STYLE):
        fig, axes = plt.subplots(*grid, layout="constrained", **subplots)
        try:
            yield axes
            if hasattr(path, "write"):
                fig.savefig(path, format="png")
            else:  # drawn whole, then written atomically: a stopped run leaves the previous file as it was
                from ..artifacts import atomic_write_bytes

                buf = io.BytesIO()
                fig.savefig(buf, format=os.path.splitext(str(path))[1][1:].lower() or "png")
                atomic_write_bytes(str(path), buf.getvalue())
        finally:
            plt.close(fig)


def legend_below(ax, ncol: int = 4) -> None:
    """One legend for the whole figure, under it, outside the data (constrained layout makes room); the
    entries of every axes, each label once. Call it once per figure, after drawing."""
    fig = ax.figure
    seen: dict = {}
    for a in fig.axes:
        for h, label in zip(*a.get_legend_handles_labels()):
            seen.setdefault(label, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=min(ncol, len(seen)))


# --- one sequence, event by event ---------------------------------------------------------------
def _token(finding, p: int, names=None) -> str:
    sc = finding.scores
    seq = sc.sequence
    if p >= len(seq):
        return "end"
    return seq.tokens[p] if names is None else names(p)


def draw_sequence(ax, finding, nll_cut: float | None, title: str | None = None) -> None:
    """The probability the model gave each event of one sequence, in order: the threshold, the events
    that made it anomalous in red, unseen events marked apart at the bottom (their probability is not
    what flags them), the end of a session as the last point."""
    sc = finding.scores
    n = len(sc)
    x = np.arange(n)
    prob = np.clip(sc.prob.astype(float), 1e-12, 1.0)
    unseen = sc.unknown
    flagged = finding.event_anomalous & ~unseen
    floor = max(1e-12, min(float(prob[~unseen].min()) if (~unseen).any() else 1.0,
                           math.exp(-nll_cut) if nll_cut else 1.0) / 10)
    seen = ~unseen
    ax.plot(x, np.where(seen, prob, np.nan), color=NORMAL, lw=0.7, marker="o", ms=2.5 if n < 200 else 1.2,
            label="p(event that came)")
    if flagged.any():
        ax.scatter(x[flagged], prob[flagged], s=28, color=ANOMALOUS, zorder=3, label="anomalous event")
    if unseen.any():
        ax.scatter(x[unseen], np.full(int(unseen.sum()), floor), marker="^", s=40, color=UNSEEN, zorder=3,
                   label="unseen event (never in training: anomalous by itself)")
    if nll_cut:
        ax.axhline(math.exp(-nll_cut), color=THRESHOLD, ls="--", lw=0.8,
                   label=f"threshold p = {math.exp(-nll_cut):.2g}")
    p = finding.position
    if finding.anomalous and p is not None and p < n and not finding.event_anomalous[p]:
        # A sequence-level view decided (event counts): ring the event it points at.
        ax.scatter([p], [prob[p]], s=90, facecolor="none", edgecolor=ANOMALOUS, lw=1.4, zorder=4,
                   label="where the sequence view points (its counts are unusual)")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, 1.6)
    ax.set_xlim(-0.5, n - 0.5)
    if n <= 40:
        ax.set_xticks(x, [_token(finding, p) for p in range(n)], rotation=90, fontsize=7)
        ax.set_xlabel("event, in order")
    else:
        ax.set_xlabel("position in the sequence")
    if finding.scores.sequence.complete and n:
        ax.annotate("end", (n - 1, prob[-1]), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set_ylabel("probability")
    if title is not None:
        ax.set_title(title, fontsize=9)


def short(text: str, n: int = 70) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def pick_examples(findings, limit: int = PANELS) -> list:
    """Up to ``limit`` anomalous findings worth showing: the highest-scoring of each kind of reason in turn
    (so one kind does not fill the page), each distinct sequence once; none anomalous: the top score."""
    from .summary import reason_kind

    by_kind: dict = {}
    seen = set()
    for f in sorted((f for f in findings if f.anomalous), key=lambda f: -f.score):
        key = tuple(f.scores.sequence.tokens)
        if key not in seen:
            seen.add(key)
            by_kind.setdefault(reason_kind(f.reason), []).append(f)
    chosen = []
    while len(chosen) < limit and any(by_kind.values()):
        for group in by_kind.values():
            if group and len(chosen) < limit:
                chosen.append(group.pop(0))
    return chosen or sorted(findings, key=lambda f: -f.score)[:1]


def plot_sequences(target, findings, nll_cut: float | None, limit: int = PANELS) -> None:
    """Anomalous sequences of ``findings`` (:func:`pick_examples`) drawn event by event, one panel each."""
    chosen = pick_examples(findings, limit)
    with figure(target, len(chosen), 1, figsize=(8, 2.3 * len(chosen) + 0.6), squeeze=False) as axes:
        for ax, f in zip(axes[:, 0], chosen):
            draw_sequence(ax, f, nll_cut, short(f"{f.scores.sequence.id}: {f.reason or 'not anomalous'}", 90))
        axes[0, 0].figure.suptitle("Anomalous sequences, event by event (the worst of each reason)",
                                   fontweight="bold", fontsize=10, x=0.01, ha="left")
        legend_below(axes[-1, 0], 2)


# --- detect --plot -------------------------------------------------------------------------------
def plot_findings(folder: str, findings, nll_threshold: float | None = None) -> list[str]:
    """``detect --plot``: three PNG files in ``folder``.

    ``probability.png``: the most anomalous sequences event by event (a stream: the whole stream);
    ``nll.png``: for sessions, each sequence's score in input order against the threshold (1), for one
    stream each event's -log p; ``histogram.png``: how the events' -log p and the sequences' scores
    spread, with their thresholds.
    """
    findings = list(findings)
    paths = [os.path.join(folder, n) for n in ("probability.png", "nll.png", "histogram.png")]
    plot_sequences(paths[0], findings, nll_threshold)
    flagged_seq = np.array([f.anomalous for f in findings], bool)
    if len(findings) > 1:
        scores = np.array([f.score for f in findings], float)
        x = np.arange(len(findings))
        with figure(paths[1], figsize=(8, 3.2)) as ax:
            ax.scatter(x[~flagged_seq], np.maximum(scores[~flagged_seq], 1e-3), s=6, color=NORMAL,
                       label="not flagged", rasterized=True)
            ax.scatter(x[flagged_seq], np.maximum(scores[flagged_seq], 1e-3), s=10, color=ANOMALOUS,
                       label="flagged anomalous", rasterized=True)
            ax.axhline(1.0, color=THRESHOLD, ls="--", lw=0.8, label="threshold (score 1)")
            ax.set_yscale("log")
            ax.set_xlabel("sequence, in input order")
            ax.set_ylabel("score (largest view / its threshold)")
            ax.set_title(f"Which sequences are anomalous: {int(flagged_seq.sum())} of {len(findings)}")
            legend_below(ax, 3)
    else:
        f = findings[0] if findings else None
        with figure(paths[1], figsize=(8, 3.2)) as ax:
            if f is not None:
                sc = f.scores
                x = np.arange(len(sc))
                seen = ~sc.unknown
                nll = np.where(np.isfinite(sc.nll), sc.nll, 50.0)
                ax.scatter(x[seen], nll[seen], s=3, color=NORMAL, label="-log p of each event", rasterized=True)
                bad = f.event_anomalous & seen
                ax.scatter(x[bad], nll[bad], s=14, color=ANOMALOUS, label="anomalous event", zorder=3)
                if sc.unknown.any():
                    top = float(nll[seen].max()) if seen.any() else 1.0
                    ax.scatter(x[sc.unknown], np.full(int(sc.unknown.sum()), top * 1.05), marker="v", s=20,
                               color=UNSEEN, label="unseen event (anomalous by itself)", zorder=3)
                if nll_threshold is not None:
                    ax.axhline(nll_threshold, color=THRESHOLD, ls="--", lw=0.8, label="threshold")
            ax.set_xlabel("position in the stream")
            ax.set_ylabel("-log p(event that came)")
            ax.set_title("How surprising each event was")
            legend_below(ax, 4)
    nll = np.concatenate([f.scores.nll[~f.scores.unknown] for f in findings]) if findings else np.zeros(0)
    nll = nll[np.isfinite(nll)]
    n_unseen = int(sum(f.scores.unknown.sum() for f in findings))
    with figure(paths[2], 1, 2, figsize=(9, 3.2)) as axes:
        axes[0].hist(nll, bins=50, color=NORMAL)
        if nll_threshold is not None:
            axes[0].axvline(nll_threshold, color=THRESHOLD, ls=":", lw=1.0, label="event threshold (-log p)")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("-log p(event that came)")
        axes[0].set_ylabel("events")
        axes[0].set_title(f"Events: how surprising{f' ({n_unseen} unseen not shown)' if n_unseen else ''}")
        scores = np.array([f.score for f in findings], float)
        if len(scores):
            bins = np.logspace(np.log10(max(scores.min(), 1e-3)), np.log10(max(scores.max(), 2.0)), 40)
            axes[1].hist(np.maximum(scores[~flagged_seq], 1e-3), bins=bins, color=NORMAL, label="not flagged")
            axes[1].hist(np.maximum(scores[flagged_seq], 1e-3), bins=bins, color=ANOMALOUS, label="flagged anomalous")
            axes[1].set_xscale("log")
        axes[1].axvline(1.0, color=THRESHOLD, ls="--", lw=0.8, label="sequence threshold (score 1)")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("sequence score")
        axes[1].set_ylabel("sequences")
        axes[1].set_title("Sequences: how far from normal")
        legend_below(axes[1], 3)
    return paths


# --- labelled results: ROC and precision-recall ----------------------------------------------------
def pr_at_prevalence(tpr: np.ndarray, fpr: np.ndarray, prevalence: float) -> np.ndarray:
    """The precision that each (recall, false-positive rate) pair gives at a share ``prevalence`` of anomalies."""
    pos, neg = tpr * prevalence, fpr * (1 - prevalence)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pos + neg > 0, pos / (pos + neg), 1.0)


def curve_points(y, scores, prevalence: float | None = None):
    """``(fpr, tpr, precision, share)``: one point per distinct score (strictest first, from (0, 0)),
    the precision at ``prevalence`` (default: the share of anomalies in ``y``, returned as ``share``)."""
    from ..metrics import curves

    y = np.asarray(y, bool)
    (fpr, tpr), _ = curves(y, scores)
    share = float(y.mean()) if prevalence is None else prevalence
    return fpr, tpr, pr_at_prevalence(tpr, fpr, share), share


def average_precision(tpr: np.ndarray, precision: np.ndarray) -> float:
    """Area under the step-wise precision-recall curve (the first point, at recall 0, adds nothing)."""
    return float(np.sum(np.diff(tpr) * precision[1:]))


def draw_roc(ax, y, scores, predicted=None, label: str = "seqrnn", color=NORMAL) -> float:
    from ..metrics import roc_auc

    fpr, tpr, _, _ = curve_points(y, scores)
    auc = roc_auc(np.asarray(y, bool), np.asarray(scores))
    ax.plot(fpr, tpr, color=color, lw=1.3, label=f"{label} (AUC {auc:.4f})")
    if predicted is not None:
        y, p = np.asarray(y, bool), np.asarray(predicted, bool)
        op = ((p & ~y).sum() / max(1, (~y).sum()), (p & y).sum() / max(1, y.sum()))
        ax.scatter([op[0]], [op[1]], s=45, color="black", zorder=4,
                   label=f"operating point: FPR {op[0]:.4f}, recall {op[1]:.4f}")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false-positive rate (linear below 0.001)")
    ax.set_ylabel("recall (true-positive rate)")
    return auc


def draw_pr(ax, y, scores, predicted=None, prevalence: float | None = None, label: str = "seqrnn",
            color=NORMAL) -> tuple[float, float]:
    fpr, tpr, precision, share = curve_points(y, scores, prevalence)
    ap = average_precision(tpr, precision)
    ax.step(tpr, precision, where="post", color=color, lw=1.3, label=f"{label} (AP {ap:.4f})")
    if predicted is not None:
        y, p = np.asarray(y, bool), np.asarray(predicted, bool)
        r = (p & y).sum() / max(1, y.sum())
        f = (p & ~y).sum() / max(1, (~y).sum())
        prec = float(pr_at_prevalence(np.array([r]), np.array([f]), share)[0])
        ax.scatter([r], [prec], s=45, color="black", zorder=4,
                   label=f"operating point: recall {r:.4f}, precision {prec:.4f}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision" + (f" at prevalence {share:.4g}" if prevalence is not None else ""))
    return ap, share


def plot_roc_pr(target, y, scores, predicted=None, prevalence: float | None = None, label: str = "seqrnn") -> dict:
    """ROC and precision-recall side by side, each with its area and the detector's operating point.
    The PR curve is drawn at ``prevalence`` (the share of anomalies where the detector will run) when
    given, else at the test set's share, and its title says which. Returns the areas."""
    with figure(target, 1, 2, figsize=(9, 3.8)) as (a, b):
        auc = draw_roc(a, y, scores, predicted, label)
        a.set_title("ROC: recall against false alarms")
        ap, share = draw_pr(b, y, scores, predicted, prevalence, label)
        b.set_title(f"Precision-recall at {'prevalence' if prevalence is not None else 'the test set’s share'} "
                    f"{share:.3g}")
        legend_below(b, 1)
    return {"roc_auc": auc, "average_precision": ap, "prevalence": share}


def plot_curves(folder: str, y, scores, label: str = "seqrnn", predicted=None,
                prevalence: float | None = None) -> list[str]:
    """``evaluate-detection --plot``: ``roc.png`` and ``pr.png`` with their areas and the operating
    point (``predicted``); PR at ``prevalence`` when given."""
    paths = [os.path.join(folder, "roc.png"), os.path.join(folder, "pr.png")]
    with figure(paths[0], figsize=(5, 4.6)) as ax:
        draw_roc(ax, y, scores, predicted, label)
        ax.set_title("ROC: recall against false alarms")
        legend_below(ax, 1)
    with figure(paths[1], figsize=(5, 4.6)) as ax:
        _, share = draw_pr(ax, y, scores, predicted, prevalence, label)
        ax.set_title(f"Precision-recall at {'prevalence' if prevalence is not None else 'the test set’s share'} "
                     f"{share:.3g}")
        legend_below(ax, 1)
    return paths


# --- the HTML report's other figures ---------------------------------------------------------------
def plot_history(target, rows: list[dict]) -> None:
    """Training curves: loss and accuracy per epoch (or validation period), training and validation,
    the best validation loss marked."""
    def col(name):
        return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows])

    x = col("epoch") if len({r.get("epoch") for r in rows}) == len(rows) else col("step")
    xlabel = "epoch" if len({r.get("epoch") for r in rows}) == len(rows) else "optimizer step"
    with figure(target, 1, 2, figsize=(9, 3.2)) as (a, b):
        for name, ax, label, color in (("loss", a, "training", NORMAL), ("val_loss", a, "validation", "tab:orange"),
                                       ("accuracy", b, "training", NORMAL),
                                       ("val_accuracy", b, "validation", "tab:orange"),
                                       ("val_topk_accuracy", b, "validation top-k", "tab:green")):
            v = col(name)
            if np.isfinite(v).any():
                ax.plot(x, v, marker="o", ms=3, lw=1.2, color=color, label=label)
        v = col("val_loss")
        if np.isfinite(v).any():
            i = int(np.nanargmin(v))
            a.scatter([x[i]], [v[i]], s=60, facecolor="none", edgecolor="black", zorder=4,
                      label=f"best: {v[i]:.4f} at {xlabel} {x[i]:g}")
        a.set_title("Loss (nats per event)")
        b.set_title("Next-event accuracy")
        for ax in (a, b):
            ax.set_xlabel(xlabel)
        legend_below(a, 4)


def plot_lengths(target, groups: dict[str, list[int]]) -> None:
    """How long the sequences are, one step histogram per group (training, normal, anomalous)."""
    colours = {"training": "0.4", "normal test": NORMAL, "anomalous test": ANOMALOUS}
    values = [v for v in groups.values() if len(v)]
    hi = max(max(v) for v in values) if values else 1
    bins = np.unique(np.logspace(0, np.log10(max(hi, 2)) + 0.01, 40).astype(int))
    with figure(target, figsize=(8, 2.8)) as ax:
        for name, v in groups.items():
            if len(v):
                ax.hist(np.maximum(v, 1), bins=bins, histtype="step", lw=1.4, color=colours.get(name),
                        label=f"{name} ({len(v):,}, median {int(np.median(v))})")
        ax.set_xscale("log")
        ax.set_xlabel("events per sequence")
        ax.set_ylabel("sequences")
        ax.set_title("Sequence lengths")
        legend_below(ax, 3)


def plot_scores(target, y, scores) -> None:
    """Sequence scores of normal and anomalous test sequences, against the threshold (1)."""
    y, scores = np.asarray(y, bool), np.maximum(np.asarray(scores, float), 1e-3)
    bins = np.logspace(np.log10(scores.min()), np.log10(max(scores.max(), 2.0)), 50)
    with figure(target, figsize=(8, 2.8)) as ax:
        ax.hist(scores[~y], bins=bins, color=NORMAL, alpha=0.75, label=f"normal ({int((~y).sum()):,})")
        ax.hist(scores[y], bins=bins, color=ANOMALOUS, alpha=0.6, label=f"anomalous ({int(y.sum()):,})")
        ax.axvline(1.0, color=THRESHOLD, ls="--", lw=0.9, label="threshold: anomalous above 1")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence score (largest view / its threshold)")
        ax.set_ylabel("sequences")
        ax.set_title("How the scores separate normal from anomalous")
        legend_below(ax, 3)
