"""``seqrnn train``: train a next-event model (or a baseline) on normal sequences."""

from __future__ import annotations

import json
import sys

from .args import add_input, add_model_flags, read_inputs


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
    b.add_argument("--order", type=int, help="markov: events of context (default 1)")
    b.add_argument("--alpha", type=float, help="nb: Lidstone smoothing (default 1: Laplace)")
    b.add_argument("--states", type=int, help="hmm: hidden states (default 10)")
    b.add_argument("--iterations", type=int, help="hmm: most Baum-Welch iterations (default 30)")
    b.add_argument("--idf", action="store_true", default=None, help="count, combined: weigh events by idf")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --model-dir")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print the final history row and evaluation as JSON")
    p.set_defaults(func=run)


def train_other(args) -> int:
    """``train --model KIND`` for the models that are not the RNN: the settings KIND takes, the others refused."""
    import inspect

    from ..errors import InputError
    from ..models import model_class

    cls = model_class(args.model)
    accepted = set(inspect.signature(cls.__init__).parameters)
    given = {k: v for k, v in vars(args).items() if v is not None and k in {
        "order", "alpha", "states", "iterations", "idf", "window", "seed", "min_count", "cell", "layers", "hidden",
        "embedding_dim", "dropout", "mapping", "optimizer", "lr", "weight_decay", "batch_size", "epochs", "clip",
        "patience", "chunk", "minutes", "threads", "preset", "validation_file", "schedule", "warmup", "eval_every",
        "sample_every", "bidirectional", "validation_split"}}
    refused = sorted(k for k in given if k not in accepted and k != "validation_file")
    refused += [k for k in ("resume", "config") if getattr(args, k)]
    if refused:
        names = ", ".join("--" + k.replace("_", "-") for k in refused)
        raise InputError(f"{names} does not apply to --model {args.model}")
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    model = cls(**{k: v for k, v in given.items() if k in accepted})
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
    detector = Detector(model, target_fpr=target_fpr).fit(seqs, validation_data=valid)
    detector.save(args.model_dir)
    return detector


def run(args) -> int:
    if args.model not in ("rnn", "context"):
        return train_other(args)
    from ..models import model_class
    from ..train import TrainingInterrupted

    settings = {k: getattr(args, k) for k in (
        "cell", "layers", "hidden", "embedding_dim", "dropout", "mapping", "window", "bidirectional", "optimizer",
        "lr", "weight_decay", "batch_size", "epochs", "clip", "patience", "chunk", "minutes", "min_count",
        "threads", "seed", "schedule", "warmup", "eval_every", "validation_split")}
    if args.config:  # preset < config file < explicit flags
        from ..config import read_settings

        settings = {**read_settings(args.config), **{k: v for k, v in settings.items() if v is not None}}
    seqs = read_inputs(args)
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    model = model_class(args.model)(args.preset or ("text" if args.format == "text" else None), **settings)
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
