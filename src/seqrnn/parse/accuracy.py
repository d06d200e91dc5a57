"""Grouping accuracy, the measure of the Loghub parsing benchmark (Zhu et al., ICSE-SEIP 2019).

A line is parsed correctly when the lines its template groups it with are
exactly the lines its true event groups it with; the accuracy is the share
of such lines.
"""

from __future__ import annotations

from collections import defaultdict


def grouping_accuracy(truth, predicted) -> float:
    """Share of lines whose predicted group equals their true group (as sets of lines)."""
    truth, predicted = list(truth), list(predicted)
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true events but {len(predicted)} predicted")
    if not truth:
        return 0.0
    by_pred: dict = defaultdict(list)
    for i, p in enumerate(predicted):
        by_pred[p].append(i)
    by_true: dict = defaultdict(set)
    for i, t in enumerate(truth):
        by_true[t].add(i)
    correct = 0
    for lines in by_pred.values():
        group = by_true[truth[lines[0]]]
        if len(group) == len(lines) and group.issuperset(lines):
            correct += len(lines)
    return correct / len(truth)
