"""Metrics of detection against labels: ROC and PR curves and areas, F1 at a prevalence, thresholds.

Pure numpy; every score is higher-is-more-anomalous.
"""

from __future__ import annotations

import numpy as np



def f1_score(p: float, r: float) -> float:
    """The harmonic mean of precision ``p`` and recall ``r`` (0 when both are 0)."""
    return 2 * p * r / (p + r) if p + r else 0.0


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), by ranks."""
    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = np.asarray(s)[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    y = np.asarray(y, bool)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(s), kind="mergesort")
    ys, ss = y[order], np.asarray(s)[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]  # end of each tie group
    precision = tp[last] / (tp[last] + fp[last])
    recall = tp[last] / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def curves(y: np.ndarray, s: np.ndarray):
    """ROC (fpr, tpr) and PR (recall, precision) points, one per distinct score."""
    y = np.asarray(y, bool)
    order = np.argsort(-np.asarray(s), kind="mergesort")
    ys, ss = y[order], np.asarray(s)[order]
    tp, fp = np.cumsum(ys), np.cumsum(~ys)
    last = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tpr = tp[last] / max(1, y.sum())
    fpr = fp[last] / max(1, (~y).sum())
    precision = tp[last] / (tp[last] + fp[last])
    return (np.r_[0, fpr], np.r_[0, tpr]), (tpr, precision)


def detection_metrics(y_true, predicted, scores, prevalence: float | None = None) -> dict:
    """Confusion counts, precision, recall, F1, FPR, ROC-AUC, PR-AUC; F1 at another prevalence."""
    y = np.asarray(y_true, bool)
    p = np.asarray(predicted, bool)
    tp, fp = int((y & p).sum()), int((~y & p).sum())
    fn, tn = int((y & ~p).sum()), int((~y & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    out = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall,
           "f1": f1_score(precision, recall), "fpr": fpr,
           "roc_auc": roc_auc(y, scores), "pr_auc": pr_auc(y, scores)}
    if prevalence is not None:
        if not 0.0 < prevalence < 1.0:  # also NaN
            from .errors import InputError

            raise InputError(f"prevalence (a share of anomalies) must be in (0, 1), not {prevalence}",
                             params="prevalence")
        # Precision and F1 that the measured recall and FPR give at another share of anomalies.
        pos = recall * prevalence
        neg = fpr * (1 - prevalence)
        p_at = pos / (pos + neg) if pos + neg else 0.0
        out.update(prevalence=prevalence, precision_at_prevalence=p_at, f1_at_prevalence=f1_score(p_at, recall))
    return out



def choose_threshold(scores: np.ndarray, y: np.ndarray, prevalence: float | None = None) -> tuple[float, float]:
    """The logit threshold (anomalous when ``score > threshold``) that maximises F1, and that F1.

    With ``prevalence`` the F1 is the one the recall and false-positive rate
    give at that share of anomalies. Ties: the middle of the widest gap.
    """
    y = np.asarray(y, bool)
    u = np.unique(scores)
    cuts = np.r_[u[0] - 1.0, (u[:-1] + u[1:]) / 2, u[-1] + 1.0]
    gaps = np.r_[np.inf, np.diff(u), np.inf]
    n_pos, n_neg = max(1, int(y.sum())), max(1, int((~y).sum()))
    pos_sorted, neg_sorted = np.sort(scores[y]), np.sort(scores[~y])
    tp = n_pos - np.searchsorted(pos_sorted, cuts, side="right")
    fp = n_neg - np.searchsorted(neg_sorted, cuts, side="right")
    recall = tp / n_pos
    if prevalence is None:
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    else:
        a, b = recall * prevalence, fp / n_neg * (1 - prevalence)
        precision = np.where(a + b > 0, a / np.maximum(a + b, 1e-300), 0.0)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    i = best[np.argmax(np.minimum(gaps[best], 1e6))]
    return float(cuts[i]), float(f1[i])
