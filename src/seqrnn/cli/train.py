"""``seqrnn train``: train a next-event model (or a baseline) on normal sequences."""

from __future__ import annotations

import json
import shlex
import sys

from .args import add_input, add_model_flags, given_settings, read_inputs, settings_adder


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a next-event model on normal sequences",
                       description="Train a next-event model on normal sequences, then calibrate its detector "
                                   "on them. The model directory gets config.json, model.safetensors (the best "
                                   "epoch), history.csv, a checkpoint for --resume (Ctrl-C or SIGTERM saves it) "
                                   "and the detector (detector.json, detector.safetensors). Prints a line per "
                                   "epoch (neural models), the false-positive rate the calibration promises, "
                                   "and the training sessions beyond its cuts (a failure labelled normal "
                                   "would be among them).")
    add_input(p, "sessions")
    p.add_argument("--model-dir", "-m", required=True, help="where to write the model")
    p.add_argument("--config", metavar="FILE",
                   help="JSON settings (seqrnn tune's best file, a model's config.json); flags override it")
    add_model_flags(p)
    b = p.add_argument_group("other models (--model KIND; --window, --seed, --validation-split and --min-count "
                             "apply too)")
    b.add_argument("--model", default="rnn",
                   choices=("rnn", "context", "markov", "nb", "hmm", "unseen", "length", "count", "combined"),
                   help="rnn (default): the next event from the events before it; context: each event from the "
                        "events before and after it (bidirectional, never sees the event it scores); "
                        "markov: n-gram chain; nb: windowed Naive Bayes; hmm: hidden Markov model; "
                        "unseen, length, count, combined: sequence-level detectors (docs/compare.md)")
    setting = settings_adder(p, b)
    setting("--order", type=int, help="markov: events of context (default 1)")
    setting("--alpha", type=float, help="nb: Lidstone smoothing (default 1: Laplace)")
    setting("--states", type=int, help="hmm: hidden states (default 10)")
    setting("--iterations", type=int, help="hmm: most Baum-Welch iterations (default 30)")
    setting("--idf", action="store_true", default=None, help="count, combined: weigh events by idf")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --model-dir (with the same data, settings and validation "
                        "data: other ones are refused)")
    p.add_argument("--no-calibration", action="store_true",
                   help="skip the detection thresholds (detector.json): for a model that will only generate "
                        "or be evaluated; with --format text and --minutes they are learned on a sample of "
                        "the validation text that fits the budget")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but errors (no progress, no promise; seqrnn info shows it)")
    p.add_argument("--json", action="store_true",
                   help="print the last history row and the detector's calibration (promised_fpr, the cuts, "
                        "training_outliers) as JSON")
    # SampleCallback(every=...) gets --sample-every: its errors name the flag.
    p.set_defaults(func=run, parameter_dests={"every": "sample_every"})


CALIBRATION_SEQUENCES = 100_000  # a shards folder: training and held-out sequences the detector learns from


def accepted_settings(cls) -> set[str]:
    """The settings a model class takes: its constructor's parameters, and for a constructor that takes
    ``**settings`` (the neural models) the fields of :class:`~seqrnn.config.ModelConfig` and
    :class:`~seqrnn.config.TrainConfig`."""
    import inspect
    from dataclasses import fields

    from ..config import ModelConfig, TrainConfig

    params = inspect.signature(cls.__init__).parameters.values()
    names = {q.name for q in params if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)} - {"self"}
    if any(q.kind is q.VAR_KEYWORD for q in params):
        names |= {f.name for f in fields(ModelConfig) + fields(TrainConfig)}
    return names


def trains_with_checkpoints(cls) -> bool:
    """Whether ``cls.fit`` writes a model directory as it trains (and so takes ``--resume`` and samples)."""
    import inspect

    return "model_dir" in inspect.signature(cls.fit).parameters


def model_settings(args, cls) -> dict:
    """The settings given on the command line (with the preset ``--format text`` implies), for
    ``cls``; one that ``cls`` does not take is an error."""
    from ..errors import InputError

    given = given_settings(args)
    accepted = accepted_settings(cls)
    if args.format == "text" and "preset" in accepted:
        given.setdefault("preset", "text")
    refused = sorted(k for k in given if k not in accepted)
    if not trains_with_checkpoints(cls):
        refused += [k for k in ("resume", "config", "sample_every") if getattr(args, k)]
    if refused:
        raise InputError(f"{', '.join(refused)} {'does' if len(refused) == 1 else 'do'} not apply to "
                         f"--model {args.model}", params=refused)
    return given


# Without an explicit size, --format text --minutes M sizes the model for the budget (seqrnn.budget);
# these settings make a size explicit.
SIZE_SETTINGS = ("layers", "hidden", "cell", "embedding_dim")
SAVE_SECONDS = 2.0  # kept at the end of a --minutes budget for saving and exiting
CALIBRATION_SHARE, CALIBRATION_SECONDS = 0.08, (3.0, 60.0)  # of the budget, and its bounds


def run(args) -> int:
    import os

    from .. import distributed, modeldir
    from ..errors import InputError

    for path in args.inputs:  # the model's files would be read as data by the next training on the folder
        if path != "-" and os.path.isdir(path) and os.path.realpath(path) == os.path.realpath(args.model_dir):
            raise InputError(f"--model-dir {args.model_dir} is also an input folder: its model files would be "
                             "read as data next time; write the model into another folder")
    if distributed.launched() and os.environ.get("RANK", "0") != "0":  # torchrun's other ranks write nothing
        return _run(args)
    # One writer per model directory, from before the data is read to the detector's last file.
    with modeldir.writing(args.model_dir):
        return _run(args)


def _run(args) -> int:
    import time

    from ..errors import InputError

    started = time.perf_counter()  # --minutes bounds the whole command from here
    from ..models import model_class
    from ..parse.folder import keep_parser
    from ..parse.sniff import refuse_raw_logs

    cls = model_class(args.model)
    settings = model_settings(args, cls)
    if not trains_with_checkpoints(cls):
        return _train_baseline(args, cls, settings)
    from ..train import TrainingInterrupted

    if args.config:  # preset < config file < explicit flags
        from ..config import read_settings

        settings = {**read_settings(args.config), **settings}
    refuse_raw_logs(args.inputs, args.format)
    from ..data.shards import is_shards

    shards = len(args.inputs) == 1 and is_shards(args.inputs[0])
    if shards:  # seqrnn encode's folder: read shard by shard; its held-out part validates
        if args.validation_file:
            raise InputError("a shards folder holds its validation part (seqrnn encode --validation-split)",
                             params="validation_file")
        from ..data.shards import ShardSet

        encoded = ShardSet(args.inputs[0])  # its format was chosen by encode: another one given is refused
        if args.format not in ("sessions", encoded.data_format) or args.tokens not in (None, encoded.text_tokens):
            unit = f" ({encoded.text_tokens})" if encoded.data_format == "text" else ""
            raise InputError(f"the shards folder holds {encoded.data_format}{unit}, as seqrnn encode read them: "
                             f"format {args.format}{' and tokens ' + args.tokens if args.tokens else ''} do not "
                             "apply (encode the files again to read them otherwise)", args.inputs[0],
                             params=("format", "tokens"))
        seqs, valid = args.inputs[0], None
    else:
        seqs = read_inputs(args)
        valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    _check_leave_out(args, cls, seqs, valid, shards)
    if not shards and not args.quiet:
        _warn_short_sessions(seqs, args.inputs)
    budget = settings.get("minutes") or 0.0
    if budget > 0 and args.format in ("text", "stream") and not shards:
        if args.resume and args.format == "text":  # the size the budget chose when training started, not one for the new budget
            settings = {**_saved_size(args.model_dir), **settings}
        settings = _budget_settings(args, settings, seqs, budget, time.perf_counter() - started)
    model = cls(**settings)
    callbacks = []
    if args.sample_every:
        from ..generate import SampleCallback

        callbacks.append(SampleCallback(model, args.sample_every, prompt=args.sample_prompt))
    try:
        model.fit(seqs, validation_data=valid, format=args.format, text_tokens=args.tokens or "chars",
                  model_dir=args.model_dir, resume=args.resume, verbose=0 if args.quiet else 1,
                  callbacks=callbacks)
    except TrainingInterrupted as exc:
        print(f"\ninterrupted: checkpoint saved in {exc.checkpoint}; continue with --resume", file=sys.stderr)
        return exc.exit_code
    from .. import distributed

    writer = distributed.current().writer
    distributed.finish()
    if not writer:  # torchrun's other processes: rank 0 calibrates and reports
        return 0
    if shards:  # the detector learns from a sample: the held-out part and the first training sequences
        from ..data.shards import ShardSet

        folder = ShardSet(seqs)
        seqs, valid = folder.sequences("train", CALIBRATION_SEQUENCES), folder.sequences("valid", CALIBRATION_SEQUENCES)
    last = model.history_[-1] if model.history_ else {}
    seen = float(last.get("epoch", 0) or 0)
    if 0 < seen < 1 and not args.quiet:
        print(f"note: training read {seen:.0%} of one epoch of the training data; the model has not seen all "
              "of it (a longer --minutes, or a smaller model, would)", file=sys.stderr)
    detector = None
    if not args.no_calibration:
        cal_seconds = None  # sessions: all of them (their count views need every one)
        if budget > 0 and args.format in ("text", "stream"):
            cal_seconds = budget * 60 - (time.perf_counter() - started) - SAVE_SECONDS
        elif args.format == "text":
            cal_seconds = CALIBRATION_SECONDS[1]
        try:
            detector = _calibrate(args, model, seqs, valid, seconds=cal_seconds)
        except (KeyboardInterrupt, TrainingInterrupted) as exc:  # the model is saved, whole: say how to finish
            code = exc.exit_code if isinstance(exc, TrainingInterrupted) else 128 + getattr(exc, "signum", 2)
            data = " ".join(shlex.quote(p) for p in args.inputs)
            print(f"\ninterrupted while calibrating: the model is saved in {args.model_dir}; learn its detector "
                  f"with: seqrnn calibrate {shlex.quote(args.model_dir)} {data}", file=sys.stderr)
            return code
    keep_parser(args.inputs, args.model_dir)
    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "epochs": len(model.history_), "epochs_seen": seen,
                          "last": last, "calibration": detector.calibration if detector else None,
                          "seconds": round(time.perf_counter() - started, 1), **_validation_json(model)},
                         indent=2))
    elif not args.quiet:
        summary = model.training_summary()
        best_loss = summary.get("best_val_loss") or summary.get("best_loss") or float("nan")
        from ..progress import human

        print(f"saved {args.model_dir}: {human(len(model.vocab_) - 4)} events, {human(model.n_parameters())} "
              f"parameters, best epoch {summary.get('best_epoch')} (loss {best_loss:.4f}), "
              f"training {model.fit_seconds_:.1f}s, in all {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


def _validation_json(model) -> dict:
    """--json's ``validation_unknown`` (events of a --validation file, and how many the vocabulary lacks;
    null without one) and ``warnings`` (the note when most are unknown)."""
    note = model.validation_note() if hasattr(model, "validation_note") else ""
    return {"validation_unknown": getattr(model, "validation_unknown_", None),
            "warnings": [note.removeprefix("note: ")] if note else []}


def _warn_short_sessions(seqs, inputs=()) -> None:
    """Say so when most sessions hold a single event: a next-event model then has no order to learn
    (a raw log sample grouped by an id that few lines share, or a file of one event per line read as
    sessions, say)."""
    from ..parse.folder import is_parsed_folder
    from ..report.summary import single_event_sessions

    complete = [len(s) for s in seqs if s.complete]
    single = single_event_sessions(complete)
    if single:
        stream = ("train on the folder's events as one sequence with --format stream"
                  if any(is_parsed_folder(p) for p in inputs) else
                  "read a file of one event per line as one sequence with --format stream")
        print(f"note: {single:,} of {len(complete):,} sessions hold a single event: there is little order to "
              f"learn; group the lines into longer sessions (seqrnn parse --session, or time windows), or {stream}",
              file=sys.stderr)


def _saved_size(model_dir: str) -> dict:
    """The size settings of the model saved in ``model_dir`` (none if there is none yet)."""
    import os

    from ..config import read_settings

    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        return {}
    keys = (*SIZE_SETTINGS, "dropout", "batch_size", "chunk", "lr", "eval_every", "min_count", "precision")
    return {k: v for k, v in read_settings(path).items() if k in keys}


def _budget_settings(args, settings: dict, seqs, budget: float, elapsed: float) -> dict:
    """``settings`` for a text or stream model trained within ``budget`` minutes of which ``elapsed``
    seconds have gone: ``minutes`` the part left for training (the rest is for calibration and saving),
    and for text with the text preset, sized for the budget (:func:`seqrnn.budget.text_settings`)
    unless a size was given, each setting given explicitly kept."""
    from ..budget import WORD_MIN_COUNT, probe_bf16, probe_gflops, sizing_inputs, text_settings

    reserve = elapsed + SAVE_SECONDS
    if not args.no_calibration:
        reserve += min(max(CALIBRATION_SHARE * budget * 60, CALIBRATION_SECONDS[0]), CALIBRATION_SECONDS[1])
    train_minutes = max(budget - reserve / 60, budget * 0.25)
    out = dict(settings, minutes=round(train_minutes, 4))
    if args.format == "text" and args.tokens == "words" and settings.get("preset") == "text":
        out.setdefault("min_count", WORD_MIN_COUNT)  # a vocabulary choice, whatever size was given
    if args.format != "text" or settings.get("preset") != "text" or any(k in settings for k in SIZE_SETTINGS):
        return out
    threads = settings.get("threads") or 0
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    gflops = probe_gflops()
    plan = text_settings(budget, gflops, train_minutes=train_minutes, bf16=probe_bf16(gflops),
                         validation_split=settings.get("validation_split", 0.1),
                         **sizing_inputs(seqs, args.tokens or "chars", out.get("min_count")))
    out = {**plan.settings, **out}
    if not args.quiet:
        from dataclasses import replace

        # The settings the model gets: the table's, with those given explicitly in their place.
        print(replace(plan, settings=out).describe() + f"; {train_minutes:.2f} of the "
              f"{budget:g} minute{'' if budget == 1 else 's'} train (the rest validates, calibrates and saves)",
              file=sys.stderr)
    return out


def _train_baseline(args, cls, settings) -> int:
    """``train --model KIND`` for a model that trains in one go (no epochs, no checkpoint)."""
    from ..parse.folder import keep_parser
    from ..parse.sniff import refuse_raw_logs

    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    model = cls(**settings)
    refuse_raw_logs(args.inputs, args.format)
    seqs = read_inputs(args)
    _check_leave_out(args, cls, seqs, valid)
    model.fit(seqs, validation_data=valid, format=args.format, text_tokens=args.tokens or "chars")
    note = model.validation_note() if hasattr(model, "validation_note") else ""
    if note and not args.quiet:
        print(note, file=sys.stderr)
    from .. import modeldir

    with modeldir.writing(args.model_dir):  # as a neural training: an earlier detector is of other weights
        modeldir.drop_detector(args.model_dir)
        model.save(args.model_dir)
    detector = None if args.no_calibration else _calibrate(args, model, seqs, valid)
    keep_parser(args.inputs, args.model_dir)
    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "kind": model.kind, "training": model.training_summary(),
                          "calibration": detector.calibration if detector else None, **_validation_json(model)},
                         indent=2))
    elif not args.quiet:
        from ..progress import human

        print(f"saved {args.model_dir}: {args.model}, {human(len(model.vocab_) - 4)} events, {model.fit_seconds_:.2f}s",
              file=sys.stderr)
    return 0


def _check_leave_out(args, cls, seqs, valid, shards: bool = False) -> None:
    """Refuse --leave-out-outliers where it would change nothing, before the training."""
    if not getattr(args, "leave_out_outliers", False):
        return
    from ..detect import refuse_leave_out

    why = None
    if shards:
        why = "a shards folder calibrates on its held-out part, and every training session stays a profile"
    elif args.no_calibration:
        why = "--no-calibration trains no detector"
    refuse_leave_out(cls, seqs, valid, why)


def _calibrate(args, model, seqs, valid, seconds: float | None = None):
    """The Detector's thresholds, learned on the model's held-out and training sequences, saved beside it.

    ``seconds``: a time bound (text and streams under --minutes): the held-out stream is then cut to
    the part the model can score in that time, at its speed measured on a first piece."""
    import time

    from ..detect import DEFAULT_TARGET_FPR, Detector

    target_fpr = DEFAULT_TARGET_FPR if args.target_fpr is None else args.target_fpr
    if seconds is not None:
        if valid is None:
            seqs, valid = model.split(seqs)
        valid = _sample(model, valid, seconds)
        if not args.quiet:
            print(f"calibrating detection on {sum(len(s) for s in valid):,} held-out events...", file=sys.stderr)
    t0 = time.perf_counter()
    detector = Detector(model, target_fpr=target_fpr,
                        leave_out_outliers=getattr(args, "leave_out_outliers", False)).fit(
        seqs, validation_data=valid or None, verbose=0 if args.quiet else 1)
    detector.save(args.model_dir)
    if not args.quiet:
        took = f" in {time.perf_counter() - t0:.1f}s" if seconds is not None else ""
        print(f"calibrated{took}: {detector.promise_text()}", file=sys.stderr)
        if detector.outliers_text():
            print(f"note: {detector.outliers_text()}", file=sys.stderr)
    return detector


PROBE_EVENTS = 256  # events scored to measure the model's scoring speed


def _sample(model, valid, seconds: float):
    """The first events of the held-out streams, as many as the model scores in ``seconds``."""
    import time

    valid = [s for s in valid if len(s)]
    if not valid:
        return valid
    t0 = time.perf_counter()
    first = valid[0].slice(0, PROBE_EVENTS)
    model.log_proba(*model.encode([first]))
    rate = len(first) / max(time.perf_counter() - t0, 1e-6)
    left = max(int(rate * max(seconds, 0.0) * 0.8), PROBE_EVENTS)
    out = []
    for s in valid:
        if left <= 0:
            break
        out.append(s.slice(0, left))
        left -= len(out[-1])
    return out
