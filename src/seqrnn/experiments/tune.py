"""Hyper-parameter search with Optuna: ``seqrnn tune``.

The original project's open TODO was a hyperopt search over sentence
length, batch size, layer number and size, learning rate, dropout and
optimizer. Here that is an Optuna study:

* a **search space**: a dict of setting names (those of
  :class:`~seqrnn.config.ModelConfig` and :class:`~seqrnn.config.TrainConfig`)
  to a list (a choice), a ``{"low", "high", "log"}`` range (int when both ends
  are ints) or a plain value (fixed). :data:`DEFAULT_SPACE` is overridden key
  by key by a JSON file (``--space``); a setting not named keeps its default;
* a **TPE sampler** and a **median pruner** fed each epoch's validation loss,
  so a trial that is worse than the median of earlier trials at the same
  epoch is stopped there;
* the study kept in **SQLite**, so a stopped search resumes where it was and
  two processes can search one study at once;
* the objective: the best validation loss (the trial's model keeps its best
  epoch), or with labelled data a detection metric (higher is better).

Every trial trains with the same ``seed``, so all of them hold out the same
validation sequences (the split is drawn from the seed) and start from the
same random state; the best trial's settings, written as a file ``seqrnn
train --config`` reads, train to the same validation loss again.

Optuna, like torch, is imported inside the functions: ``--help`` stays fast.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

from ..config import setting_names
from ..errors import InputError
from ..limits import MAX_SEED

# A list is a choice, a dict a range, anything else a fixed value.
DEFAULT_SPACE: dict = {
    # Many-to-one re-reads a whole window for every target: `window` times the work per epoch
    # (minutes per trial on HDFS here), for a model that sees less history. Add it with --space
    # {"mapping": ["many-to-many", "many-to-one"]}; the window is then searched too.
    "mapping": ["many-to-many"],
    "window": {"low": 4, "high": 20},  # many-to-one only
    "chunk": {"low": 20, "high": 200, "log": True},  # streams read many-to-many only
    "cell": ["lstm", "gru"],
    "layers": {"low": 1, "high": 3},
    "hidden": {"low": 16, "high": 256, "log": True},
    "embedding_dim": {"low": 8, "high": 128, "log": True},
    "dropout": {"low": 0.0, "high": 0.5},
    "optimizer": ["adam", "adamw", "rmsprop"],
    "lr": {"low": 1e-4, "high": 3e-2, "log": True},
    "weight_decay": {"low": 1e-8, "high": 1e-3, "log": True},
    "batch_size": [16, 32, 64, 128],
}
# Never searched: they do not change what a model learns, or they must stay fixed across trials.
NOT_SEARCHED = ("seed", "threads", "minutes", "validation_split", "topk")
PRUNE_STARTUP_TRIALS = 5  # trials that finish before any is pruned
PRUNE_FROM_EPOCH = 3  # the first epoch at which a trial can be pruned (steps are epochs, from 1)
STATES_COUNTED = ("COMPLETE", "PRUNED")  # what --trials counts (a failed or interrupted trial is run again)


# --- the search space -------------------------------------------------------------------------
def check_space(space: dict, source: str | None = None) -> dict:
    """Normalise keys (``embedding-dim`` -> ``embedding_dim``) and check every entry."""
    out = setting_names(space, source)
    for name, spec in out.items():
        if isinstance(spec, list):
            if not spec or any(not isinstance(v, (str, int, float, bool)) for v in spec):
                raise InputError(f"{name}: a choice is a non-empty list of numbers or strings", source)
        elif isinstance(spec, dict):
            if not {"low", "high"} <= set(spec) <= {"low", "high", "log"} or not all(
                    isinstance(spec[k], (int, float)) and not isinstance(spec[k], bool) for k in ("low", "high")):
                raise InputError(f'{name}: a range is {{"low": number, "high": number, "log": true|false}}', source)
            if not spec["low"] <= spec["high"] or (spec.get("log") and spec["low"] <= 0):
                raise InputError(f"{name}: a range needs low <= high (and low > 0 with log)", source)
        if name in NOT_SEARCHED and isinstance(spec, (list, dict)):
            raise InputError(f"{name} is kept fixed across trials; give it a single value", source)
        _check_values(name, spec, source, out)
    return out


def _values(spec) -> list:
    """The values a space entry can give, at its edges: its choices, a range's ends, or the fixed value."""
    return spec if isinstance(spec, list) else [spec["low"], spec["high"]] if isinstance(spec, dict) else [spec]


def _check_values(name: str, spec, source: str | None, space: dict) -> None:
    """Each value ``spec`` can give, as a model checks it: a bad one is refused now, naming the space file,
    not when the search reaches it (maybe hours later). A value that holds only beside another setting
    (``bidirectional`` needs ``mapping`` many-to-one) passes if one of the values the space gives that
    setting makes it hold."""
    from ..models.rnn import RNNModel

    for value in _values(spec):
        error = None
        for mapping in [None, *(_values(space["mapping"]) if name != "mapping" and "mapping" in space else [])]:
            try:
                RNNModel(**{name: value}, **({} if mapping is None else {"mapping": mapping}))
                break
            except InputError as exc:
                error = error or exc
        else:
            raise InputError(error.reason, source, params=error.params) from None


def load_space(path: str | None = None) -> dict:
    """:data:`DEFAULT_SPACE`, with the entries of the JSON file at ``path`` replacing its own."""
    space = dict(DEFAULT_SPACE)
    if path:
        from ..artifacts import read_json

        data = read_json(path, InputError, "search space")
        if not isinstance(data, dict):
            raise InputError("a search space is one JSON object of settings", path)
        space.update(check_space(data, path))
    return check_space(space)


def suggest(trial, space: dict, stream: bool) -> dict:
    """The settings of one trial, drawn from ``space`` (window and chunk only where they apply)."""
    out: dict = {}
    names = sorted(space, key=lambda n: n != "mapping")  # the mapping decides what else applies
    for name in names:
        spec = space[name]
        mapping = out.get("mapping", "many-to-many")
        if name == "window" and mapping != "many-to-one":
            continue
        if name == "chunk" and (not stream or mapping != "many-to-many"):
            continue
        if isinstance(spec, list) and len(spec) == 1:
            out[name] = spec[0]  # nothing to choose: not a searched parameter
        elif isinstance(spec, list):
            out[name] = trial.suggest_categorical(name, spec)
        elif isinstance(spec, dict):
            low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
            if isinstance(low, int) and isinstance(high, int):
                out[name] = trial.suggest_int(name, low, high, log=log)
            else:
                out[name] = trial.suggest_float(name, float(low), float(high), log=log)
        else:
            out[name] = spec
    return out


# --- the objective ------------------------------------------------------------------------------
@dataclass
class DetectionTarget:
    """Labelled validation data: the objective becomes a detection metric (higher is better)."""

    normal: list
    abnormal: list
    metric: str = "pr_auc"  # or roc_auc, f1, f1_at_prevalence
    prevalence: float | None = None

    def score(self, detector) -> dict:
        import numpy as np

        from ..metrics import detection_metrics

        d = detector.decide(self.normal + self.abnormal)
        y = np.r_[np.zeros(len(self.normal), bool), np.ones(len(self.abnormal), bool)]
        return detection_metrics(y, d.anomalous, d.scores, self.prevalence)


def _pruning_callback(trial, sign: float, deadline: float | None):
    """A :class:`~seqrnn.train.Callback` that reports each epoch's validation loss to the trial
    and stops training when the pruner says so, or when the search's time is up."""
    from ..train import Callback

    class Pruning(Callback):
        reason: str | None = None

        def on_epoch_end(self, trainer, logs):
            # One step per history row: an epoch, or a validation period with --eval-every
            # (whose "epoch" is a fraction, and Optuna's steps are integers).
            trial.report(sign * logs.get("val_loss", logs["loss"]), len(trainer.history))
            if trial.should_prune():
                self.reason = f"median at epoch {logs['epoch']}"
            elif (deadline is not None and time.monotonic() > deadline
                  and not trainer.stop_training and trainer.epoch < trainer.tc.epochs):
                # time is up, and training would go on: a trial at its last epoch (or stopped early by its
                # patience) has finished, and is kept as such
                self.reason = f"time budget at epoch {logs['epoch']}"
            if self.reason:
                trainer.stop_training = True

    return Pruning()


def make_objective(seqs, space: dict, fixed: dict, *, validation_data=None, data_format: str = "sessions",
                   text_tokens: str = "chars", detection: DetectionTarget | None = None,
                   deadline: float | None = None, verbose: int = 0):
    """The function Optuna calls for each trial: train one model, return its score."""
    stream = not all(s.complete for s in seqs)
    sign = 1.0 if detection is None else -1.0  # the pruner compares in the study's direction

    def objective(trial):
        import optuna

        from ..models.rnn import RNNModel

        model = RNNModel(**{**suggest(trial, space, stream), **fixed})
        trial.set_user_attr("settings", model._settings())
        pruning = _pruning_callback(trial, sign, deadline)
        try:
            model.fit(seqs, validation_data=validation_data, format=data_format, text_tokens=text_tokens,
                      callbacks=[pruning], verbose=verbose)
        except Exception as exc:  # shown in the trial's line, and the table
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise
        val_loss = model.trainer_.best_loss
        trial.set_user_attr("val_loss", val_loss if math.isfinite(val_loss) else None)
        trial.set_user_attr("epochs", len(model.history_))
        if pruning.reason:
            trial.set_user_attr("pruned_by", pruning.reason)
            raise optuna.TrialPruned(pruning.reason)
        if not math.isfinite(val_loss):
            trial.set_user_attr("error", "no finite validation loss")
            return math.nan  # Optuna records the trial as failed
        if detection is None:
            return val_loss
        from ..detect import Detector

        metrics = detection.score(Detector(model).fit(seqs, validation_data=validation_data))
        trial.set_user_attr("detection", metrics)
        return metrics[detection.metric]

    return objective


# --- the study ----------------------------------------------------------------------------------
# A running trial records a heartbeat this often; one silent for STALE_SECONDS died with its process
# (kill -9, a crash) and is failed when a search opens the study, not left 'running' for ever.
HEARTBEAT_SECONDS = 30
STALE_SECONDS = 120


def storage_url(path: str) -> str:
    return "sqlite:///" + os.path.abspath(path)


def open_study(path: str | None, name: str = "seqrnn", objective: str = "val_loss", seed: int = 0,
               create: bool = True, pruner=None):
    """Create or load the study kept in the SQLite file ``path`` (in memory if ``None``).

    The sampler's seed is ``seed`` plus the trials already in the study, so that a
    resumed search does not draw its first trials again.
    """
    import optuna
    from sqlalchemy.exc import DatabaseError

    storage = None
    if path is not None:
        if os.path.isdir(path):
            raise InputError("is a folder, not a study file (--study names an SQLite file)", path)
        if not create and not os.path.isfile(path):
            raise InputError("no such study file", path)
        check_study_file(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    direction = "minimize" if objective == "val_loss" else "maximize"
    pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS,
                                                   n_warmup_steps=PRUNE_FROM_EPOCH)
    try:  # the storage reads the file as it opens it
        if path is not None:
            with warnings.catch_warnings():  # heartbeats are 'experimental' in Optuna: no warning for each run
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(storage_url(path), heartbeat_interval=HEARTBEAT_SECONDS,
                                                     grace_period=STALE_SECONDS)
        if not create:
            try:
                return optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                raise InputError(f"the file holds no study named {name!r}", path) from None
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True,
                                    pruner=pruner)
    except DatabaseError as exc:  # a truncated or damaged SQLite file, or another kind of database
        raise InputError(f"not a readable study file: a damaged, truncated or foreign SQLite file "
                         f"({str(exc.orig or exc).splitlines()[0][:120]})", path) from None
    with warnings.catch_warnings():  # trials of a process that died (a report leaves them as they are)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    saved = study.user_attrs.get("objective")
    if saved is None:
        study.set_user_attr("objective", objective)
    elif saved != objective:
        raise InputError(f"the study was searched for {saved}, not {objective}; use another study file", path, params="study")
    running = any(t.state.name == "RUNNING" for t in study.trials)  # another process searching now
    sampler_seed = (seed + len(study.trials) + (os.getpid() if running else 0)) % (MAX_SEED + 1)
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    return study


SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def check_study_file(path: str) -> None:
    """Refuse an existing file that is not an SQLite database (a data file, a model's weights): Optuna would
    fail on it deep inside SQLAlchemy. An empty file is a new database, as SQLite takes it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path) from None
    if head and head != SQLITE_MAGIC:
        raise InputError("not a study file (SQLite): seqrnn tune keeps its study in an SQLite file; name a new "
                         "file or one an earlier seqrnn tune wrote", path)


def finished(study) -> int:
    return sum(t.state.name in STATES_COUNTED for t in study.trials)


def search(study, objective, trials: int | None = None, minutes: float | None = None,
           out=None) -> None:
    """Run trials until the study holds ``trials`` finished ones (counting earlier runs and
    other processes) or ``minutes`` have passed, printing one line per trial."""
    import optuna
    from optuna.trial import TrialState

    callbacks = [lambda st, tr: print(trial_line(st, tr), file=out or sys.stderr, flush=True)]
    n = None
    if trials is not None:
        n = max(0, trials - finished(study))
        callbacks.append(optuna.study.MaxTrialsCallback(trials, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        if n == 0:
            return
    study.optimize(objective, n_trials=n, timeout=minutes * 60 if minutes else None, callbacks=callbacks,
                   catch=(RuntimeError,))


# --- reporting ----------------------------------------------------------------------------------
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def params_text(params: dict) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _seconds(trial) -> float | None:
    return trial.duration.total_seconds() if trial.duration is not None else None


def _shown_value(trial):
    """A trial's value: its objective, or for a pruned one the last reported (in the objective's sign
    for val_loss)."""
    if trial.value is not None:
        return trial.value
    if trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def trial_line(study, trial) -> str:
    value = _shown_value(trial)
    best = ""
    try:
        b = study.best_trial
        best = f"  best {b.value:.4f} (#{b.number})"
    except ValueError:
        pass
    state = trial.state.name.lower()
    if trial.user_attrs.get("pruned_by") or trial.user_attrs.get("error"):
        state += f" ({trial.user_attrs.get('pruned_by') or trial.user_attrs['error']})"
    secs = _seconds(trial)
    return (f"trial {trial.number:>3}  {state:<34} {'' if value is None else f'{value:.4f}':>8}{best}  "
            f"{'' if secs is None else f'{secs:.1f}s'}  {params_text(trial.params)}")


def trial_rows(study) -> list[dict]:
    return [{"number": t.number, "state": t.state.name.lower(), "value": _shown_value(t),
             "val_loss": t.user_attrs.get("val_loss"), "epochs": t.user_attrs.get("epochs"),
             "pruned_by": t.user_attrs.get("pruned_by"), "error": t.user_attrs.get("error"), "seconds": _seconds(t), "params": t.params}
            for t in study.trials]


def table(rows: list[dict]) -> str:
    lines = [f"{'trial':>5}  {'state':<9} {'value':>8} {'epochs':>6} {'seconds':>8}  params"]
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        secs = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"{r['number']:>5}  {r['state']:<9} {value:>8} {r['epochs'] or '':>6} {secs:>8}  "
                     f"{params_text(r['params'])}")
    return "\n".join(lines)


def importance(study) -> dict | None:
    """Each searched setting's share of the objective's variance (fANOVA); ``None`` if too few trials."""
    import optuna

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(done) < 2:
        return None
    try:
        return dict(optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)))
    except (RuntimeError, ValueError):
        return None


def best_file_dict(study, path: str | None) -> dict | None:
    try:
        best = study.best_trial
    except ValueError:
        return None
    return {"settings": best.user_attrs["settings"], "study": path, "trial": best.number,
            "objective": study.user_attrs.get("objective", "val_loss"), "value": best.value,
            "val_loss": best.user_attrs.get("val_loss"), "epochs": best.user_attrs.get("epochs")}


def report(study, prefix: str) -> dict:
    """The table of trials, the best trial, importance; writes ``PREFIX.best.json`` (settings that
    ``seqrnn train --config`` reads) when a trial has completed (else ``no_best`` says why),
    ``PREFIX.history.png`` when a trial has a value to draw and ``PREFIX.importance.png``."""
    from .. import artifacts

    rows = trial_rows(study)
    best = best_file_dict(study, prefix)
    imp = importance(study)
    files = {}
    no_best = None
    if best is not None:
        files["best"] = prefix + ".best.json"
        artifacts.write_json(files["best"], best)
    else:  # no settings to give train --config: say why rather than write a file of nothing
        counts: dict = {}
        for r in rows:
            state = "failed" if r["state"] == "fail" else r["state"]
            counts[state] = counts.get(state, 0) + 1
        held = f" ({', '.join(f'{n} {s}' for s, n in counts.items())})" if counts else " (the study holds no trial)"
        no_best = f"no trial has completed{held}, so no {os.path.basename(prefix)}.best.json was written"
    if any(_shown_value(t) is not None for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")):
        files["history_plot"] = prefix + ".history.png"  # only with a point to draw: no empty plot
        plot_history(study, files["history_plot"])
    if imp:
        files["importance_plot"] = prefix + ".importance.png"
        plot_importance(imp, files["importance_plot"], study.user_attrs.get("objective", "val_loss"))
    return {"objective": study.user_attrs.get("objective", "val_loss"), "direction": study.direction.name.lower(),
            "trials": rows, "best": best, "no_best": no_best, "importance": imp, "files": files}


def report_text(rep: dict) -> str:
    lines = [table(rep["trials"]), ""]
    counts: dict = {}
    for r in rep["trials"]:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines.append(f"{len(rep['trials'])} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    best = rep["best"]
    if best:
        also = "" if best["objective"] == "val_loss" else f"val_loss {_fmt(best['val_loss'])}, "
        lines.append(f"best: trial {best['trial']}, {best['objective']} {best['value']:.4f} ({rep['direction']}), "
                     f"{also}{best['epochs']} epochs")
        s = best["settings"]
        lines.append("      " + params_text({k: s[k] for k in (
            "mapping", "window", "cell", "layers", "hidden", "embedding_dim", "dropout", "weight_drop", "optimizer",
            "lr", "weight_decay", "batch_size", "chunk", "epochs", "patience", "seed")
            if k in s and (k != "weight_drop" or s[k])}))  # weight drop as info shows it: where there is one
    else:
        lines.append(f"best: none: {rep.get('no_best') or 'no trial has completed'}")
    if rep["importance"]:
        lines.append("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in rep["importance"].items()))
    for what, path in rep["files"].items():
        lines.append(f"{what.replace('_', ' ')}: {path}")
    return "\n".join(lines)


def plot_history(study, path: str) -> None:
    from ..report import figure

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and t.intermediate_values]
    with figure(path, figsize=(7, 4)) as ax:
        if pruned:
            ax.scatter([t.number for t in pruned], [_shown_value(t) for t in pruned], marker="x", color="0.6",
                       label="pruned (last epoch reported)")
        if done:
            ax.scatter([t.number for t in done], [t.value for t in done], color="C0", label="complete")
            best, xs, ys = None, [], []
            better = min if study.direction.name == "MINIMIZE" else max
            for t in done:
                best = t.value if best is None else better(best, t.value)
                xs.append(t.number)
                ys.append(best)
            ax.step(xs, ys, where="post", color="C3", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(study.user_attrs.get("objective", "val_loss"))
        if study.direction.name == "MINIMIZE" and done and min(t.value for t in done) > 0:
            ax.set_yscale("log")
        ax.set_title("optimisation history")
        ax.legend()


def plot_importance(imp: dict, path: str, objective: str) -> None:
    from ..report import figure

    names = list(imp)[::-1]
    with figure(path, figsize=(6, 0.4 * len(names) + 1.2)) as ax:
        ax.barh(names, [imp[n] for n in names], color="C0")
        ax.set_xlabel(f"share of {objective} variance (fANOVA)")
        ax.set_title("parameter importance")


def quiet_optuna(verbose: bool) -> None:
    import optuna

    # Optuna logs a failed trial with its traceback; our own line names the error.
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)
