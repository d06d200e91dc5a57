"""``seqrnn train``: train a next-event model (or a baseline) on normal sequences."""

from __future__ import annotations

import json
import sys

from .args import add_input, add_model_flags, given_settings, read_inputs, settings_adder


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a next-event model on normal sequences",
                       description="Train a next-event model on normal sequences. The model directory gets "
                                   "config.json, model.safetensors (the best epoch), history.csv and a checkpoint "
                                   "for --resume; Ctrl-C saves the checkpoint.")
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
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --model-dir")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print the final history row and evaluation as JSON")
    # SampleCallback(every=...) gets --sample-every: its errors name the flag.
    p.set_defaults(func=run, parameter_dests={"every": "sample_every"})


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


def run(args) -> int:
    from ..models import model_class

    cls = model_class(args.model)
    settings = model_settings(args, cls)
    if not trains_with_checkpoints(cls):
        return _train_baseline(args, cls, settings)
    from ..train import TrainingInterrupted

    if args.config:  # preset < config file < explicit flags
        from ..config import read_settings

        settings = {**read_settings(args.config), **settings}
    seqs = read_inputs(args)
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
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
        return 130
    detector = _calibrate(args, model, seqs, valid)
    last = model.history_[-1] if model.history_ else {}
    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "epochs": len(model.history_), "last": last,
                          "calibration": detector.calibration}, indent=2))
    elif not args.quiet:
        summary = model.training_summary()
        best_loss = summary.get("best_val_loss") or summary.get("best_loss") or float("nan")
        print(f"saved {args.model_dir}: {len(model.vocab_) - 4} events, {model.n_parameters():,} parameters, "
              f"best epoch {summary.get('best_epoch')} (loss {best_loss:.4f}), "
              f"{model.fit_seconds_:.1f}s", file=sys.stderr)
    return 0


def _train_baseline(args, cls, settings) -> int:
    """``train --model KIND`` for a model that trains in one go (no epochs, no checkpoint)."""
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    model = cls(**settings)
    seqs = read_inputs(args)
    model.fit(seqs, validation_data=valid, format=args.format, text_tokens=args.tokens or "chars")
    model.save(args.model_dir)
    detector = _calibrate(args, model, seqs, valid)
    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "kind": model.kind, "training": model.training_summary(),
                          "calibration": detector.calibration}, indent=2))
    elif not args.quiet:
        print(f"saved {args.model_dir}: {args.model}, {len(model.vocab_) - 4} events, {model.fit_seconds_:.2f}s",
              file=sys.stderr)
    return 0


def _calibrate(args, model, seqs, valid):
    """The Detector's thresholds, learned on the model's held-out and training sequences, saved beside it."""
    from ..detect import DEFAULT_TARGET_FPR, Detector

    target_fpr = DEFAULT_TARGET_FPR if args.target_fpr is None else args.target_fpr
    detector = Detector(model, target_fpr=target_fpr).fit(seqs, validation_data=valid,
                                                           verbose=0 if args.quiet else 1)
    detector.save(args.model_dir)
    if not args.quiet:
        print(f"calibrated: {detector.promise_text()}", file=sys.stderr)
    return detector
