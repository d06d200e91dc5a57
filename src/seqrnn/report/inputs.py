"""The JSON files ``seqrnn report`` reads besides a model directory, checked before the page is built:
a compare output's ``compare.json`` and a demo run's ``run.json``. Either may have been edited by hand;
a value of the wrong type is one :class:`~seqrnn.errors.InputError` naming the file and the key
(``"table" / "lstm" / "f1" / "mean"``), never a traceback half-way through the page. Keys that are
missing are left to the page (shown as a dash), as files of older versions lack some.
"""

from __future__ import annotations

import math
import os

from ..errors import InputError


def _where(keys) -> str:
    return " / ".join(f'"{k}"' for k in keys)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(path: str, keys, value, ok: bool, want: str) -> None:
    if not ok:
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        raise InputError(f"{_where(keys)} must be {want}, not {shown[:60]}", path)


def read_compare(folder: str) -> dict:
    """``compare.json`` of ``folder``: an object whose ``table`` maps each model to its metrics, each
    ``{"mean": number or null (NaN: not defined), "std": number or null}``."""
    from ..artifacts import read_json

    path = os.path.join(folder, "compare.json")
    result = read_json(path, InputError, "compare output")
    _check(path, (), result, isinstance(result, dict), "an object (what seqrnn compare writes)")
    _check(path, ("table",), result.get("table"), isinstance(result.get("table"), (dict, type(None))),
           "an object of models")
    for name, stats in (result.get("table") or {}).items():
        _check(path, ("table", name), stats, isinstance(stats, dict), "an object of metrics")
        for metric, s in stats.items():
            _check(path, ("table", name, metric), s, isinstance(s, (dict, type(None))),
                   'an object {"mean": ..., "std": ...}')
            for part, value in (s or {}).items():
                _check(path, ("table", name, metric, part), value, value is None or _number(value),
                       "a number or null")
    seqs = result.get("sequences")
    _check(path, ("sequences",), seqs, isinstance(seqs, (dict, type(None))), "an object of counts")
    for key, value in (seqs or {}).items():
        _check(path, ("sequences", key), value, isinstance(value, int) and not isinstance(value, bool)
               and value >= 0, "a count of sequences")
    repeat = result.get("repeat", 1)
    _check(path, ("repeat",), repeat, isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1,
           "a number of runs (1 or more)")
    prevalence = result.get("prevalence")
    _check(path, ("prevalence",), prevalence, prevalence is None or _number(prevalence), "a number or null")
    return result


def read_run(path: str) -> dict:
    """A demo run folder's ``run.json``, its paths made relative to the folder (absolute ones kept)."""
    from ..artifacts import read_json

    file = os.path.join(path, "run.json")
    run = read_json(file, InputError, "run file")
    if not isinstance(run, dict) or not isinstance(run.get("model"), str):
        raise InputError("a run file names its model folder (\"model\")", file)
    for key in ("compare", "templates", "title"):
        _check(file, (key,), run.get(key), isinstance(run.get(key), (str, type(None))), "a string or null")
    for key in ("train", "normal", "abnormal"):
        value = run.get(key)
        _check(file, (key,), value, value is None or (isinstance(value, list)
                                                      and all(isinstance(p, str) for p in value)),
               "a list of paths")
    prevalence = run.get("prevalence")
    _check(file, ("prevalence",), prevalence,
           prevalence is None or (_number(prevalence) and math.isfinite(prevalence) and 0 < prevalence < 1),
           "a share of anomalies in (0, 1), or null")
    if bool(run.get("normal")) != bool(run.get("abnormal")):
        raise InputError('"normal" and "abnormal" go together (labelled data needs both)', file)

    def at(p):
        return p if os.path.isabs(p) else os.path.join(path, p)

    out = dict(run)
    for key in ("model", "compare", "templates"):
        if isinstance(run.get(key), str):
            out[key] = at(run[key])
    for key in ("train", "normal", "abnormal"):
        out[key] = [at(p) for p in run.get(key) or []]
    return out
