"""``seqrnn tune``: hyper-parameter search (see :mod:`seqrnn.tune`).

Argparse only at import: Optuna and torch load when the command runs.
"""

from __future__ import annotations

import json
import sys
import time

METRICS = ("pr_auc", "roc_auc", "f1", "f1_at_prevalence")
DEFAULT_STUDY = "seqrnn"  # --study-name's default: its report files keep the names STUDY.best.json...


def add_parser(sub) -> None:
    from .args import PREVALENCE_HDFS, add_input, add_labelled, add_validation_file

    p = sub.add_parser(
        "tune", help="search hyper-parameters with Optuna (TPE, pruning on the validation loss)",
        description="Search the settings of the next-event model with Optuna: a TPE sampler, trials stopped "
                    "early when their validation loss is worse than the median, the study kept in SQLite "
                    "(--study) so that a stopped search resumes and two processes can share it. At the end "
                    "(or with --report) prints the table of trials and writes STUDY.best.json (for "
                    "'seqrnn train --config'; none until a trial has completed, and the report says why), "
                    "STUDY.history.png (once a trial has a value to draw) and the settings' importance, "
                    "STUDY.importance.png (once two trials have completed); a study "
                    "named otherwise than the default writes STUDY.NAME.best.json and so on.")
    add_input(p, "sessions", required=False, help="normal training sequences (not needed with --report)")
    p.add_argument("--study", required=True, metavar="FILE", help="SQLite file of the study (created if missing)")
    p.add_argument("--study-name", default=DEFAULT_STUDY,
                   help="study inside the file (default %(default)s); another name's report files are "
                        "STUDY.NAME.best.json, STUDY.NAME.history.png and STUDY.NAME.importance.png")
    p.add_argument("--report", action="store_true", help="report on the study without searching")
    p.add_argument("--trials", type=int, metavar="N",
                   help="stop when the study holds this many finished (complete or pruned) trials, "
                        "counting earlier runs and other processes")
    p.add_argument("--minutes", type=float, metavar="M", help="stop starting trials after this many minutes; the running "
                                                 "trial is stopped at its next epoch end")
    p.add_argument("--space", metavar="FILE",
                   help='JSON search space replacing the defaults key by key: a list is a choice, '
                        '{"low": a, "high": b, "log": true} a range, a value is fixed')
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every trial: the validation split and the initial weights (default %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per trial (default: all cores)")
    add_validation_file(p)
    d = add_labelled(p, required=False, title="detection objective (instead of the validation loss)",
                     what="validation sequences")
    d.add_argument("--metric", choices=METRICS, default=None,
                   help="detection metric to maximise (default: f1_at_prevalence with --prevalence, else pr_auc)")
    d.add_argument("--prevalence", type=float,
                   help="share of anomalies for f1_at_prevalence (HDFS full data: %.4f)" % PREVALENCE_HDFS)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--verbose", "-v", action="store_true", help="Optuna's log and every epoch of every trial")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..experiments import tune
    from .args import read_inputs
    from ..errors import InputError
    from ..train import TrainingInterrupted

    _check_budget(args)
    tune.quiet_optuna(args.verbose)
    if args.report:
        study = tune.open_study(args.study, args.study_name, create=False)
        return _report(args, tune, study)

    if not args.inputs:
        raise InputError("give the training data (PATH), or --report")
    if args.trials is None and args.minutes is None:
        raise InputError("give a budget: --trials N and/or --minutes M")
    if (args.normal is None) != (args.abnormal is None):
        raise InputError("a detection objective needs both --normal and --abnormal")
    metric = args.metric or ("f1_at_prevalence" if args.prevalence is not None else "pr_auc")
    if args.normal is None and (args.metric or args.prevalence is not None):
        raise InputError("--metric and --prevalence need --normal and --abnormal")
    if metric == "f1_at_prevalence" and args.prevalence is None:
        raise InputError("--metric f1_at_prevalence needs --prevalence")
    space = tune.load_space(args.space)
    from ..parse.sniff import DATA_ADVICE, refuse_raw_logs

    refuse_raw_logs([*args.inputs, *(args.normal or []), *(args.abnormal or [])], args.format, DATA_ADVICE)
    seqs = read_inputs(args)
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    detection = None
    if args.normal is not None:
        detection = tune.DetectionTarget(read_inputs(args, paths=args.normal), read_inputs(args, paths=args.abnormal),
                                         metric, args.prevalence)
    study = tune.open_study(args.study, args.study_name, "val_loss" if detection is None else metric, args.seed)
    _same_inputs(args, study)
    study.set_user_attr("data", list(args.inputs))
    before = tune.finished(study)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    objective = tune.make_objective(seqs, space, {"seed": args.seed, "threads": args.threads}, validation_data=valid,
                                    data_format=args.format, text_tokens=args.tokens or "chars",
                                    detection=detection, deadline=deadline, verbose=1 if args.verbose else 0)
    if before:
        done = (f"; --trials {args.trials} reached: nothing more to run (a larger --trials runs more)"
                if args.trials is not None and before >= args.trials else "")
        print(f"resuming {args.study}: {before} trials finished{done}", file=sys.stderr)
    code = 0
    try:
        tune.search(study, objective, args.trials, args.minutes)
    except (KeyboardInterrupt, TrainingInterrupted) as exc:
        print(f"\ninterrupted: the study in {args.study} keeps its trials; run again to continue",
              file=sys.stderr)
        code = exc.exit_code if isinstance(exc, TrainingInterrupted) else 128 + getattr(exc, "signum", 2)
    _report(args, tune, study)
    return code


def _same_inputs(args, study) -> None:
    """Record what a new study searches on (data, format, text unit); refuse to resume it on another: the
    trials' losses would not compare (nats per character beside nats per word), nor would its best."""
    import os

    from ..errors import InputError

    now = {"data": [p if p == "-" else os.path.abspath(p) for p in args.inputs], "format": args.format,
           "tokens": args.tokens or "chars", "validation": args.validation_file and os.path.abspath(args.validation_file)}
    saved = study.user_attrs.get("inputs")
    if saved is None:
        study.set_user_attr("inputs", now)
    elif saved != now:
        def said(d):
            unit = f" ({d.get('tokens')})" if d.get("format") == "text" else ""
            return f"{' '.join(d.get('data') or [])} as {d.get('format')}{unit}" + (
                f", validated on {d['validation']}" if d.get("validation") else "")
        raise InputError(f"the study searched on {said(saved)}, not {said(now)}: its trials would not compare; use "
                         "another --study file", args.study)


def _check_budget(args) -> None:
    """Refuse a budget or seed the search cannot use, before anything is read or created."""
    import math

    from ..errors import InputError
    from ..limits import check_seed

    if args.trials is not None and args.trials < 1:
        raise InputError(f"--trials must be an integer >= 1, not {args.trials}")
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise InputError(f"--minutes must be a finite number > 0, not {args.minutes:g}")
    check_seed(args.seed)


def report_prefix(path: str, name: str) -> str:
    """Where a study's report files go: ``STUDY`` (``STUDY.best.json``...) for the default study name,
    ``STUDY.NAME`` for another, so that two studies in one file do not overwrite each other's files
    (a character of NAME other than a letter, digit, ``.``, ``_`` or ``-`` written ``_``)."""
    import re

    if name == DEFAULT_STUDY:
        return path
    return f"{path}.{re.sub(r'[^A-Za-z0-9._-]', '_', name)}"


def _report(args, tune, study) -> int:
    rep = tune.report(study, report_prefix(args.study, args.study_name))
    print(json.dumps(rep, indent=2) if args.json else tune.report_text(rep))
    return 0
