"""The ``seqrnn`` command: parse arguments, call the API, print.

PyTorch is imported only by the commands that run a model, so ``--help``
and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys

from .errors import SeqrnnError

# Commands kept in modules of their own (seqrnn/commands/NAME.py). Each module has
# add_parser(sub), which sets ``func`` as the parser's default, and imports nothing
# heavy at module level, so that --help stays fast.
EXTRA_COMMANDS: tuple[str, ...] = ("compare", "tune", "generate", "classify")

PREVALENCE_HDFS = 0.0296  # 16,838 / (16,838 + 552,640); seqrnn.detect.PREVALENCE_HDFS, kept literal: no numpy at --help


# --- argument groups ----------------------------------------------------------------
def add_input(p: argparse.ArgumentParser, default_format: str | None = None) -> None:
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help="input files, folders or globs ('-' reads standard input)")
    p.add_argument("--format", choices=("sessions", "stream", "text"), default=default_format,
                   help="sessions: one sequence per line, optional 'id,' prefix; stream: one event per line, "
                        "files joined in name order; text: characters or words"
                        + ("" if default_format else " (default: the format the model was trained on)"))
    p.add_argument("--separate-files", action="store_true", help="stream: keep each file a sequence of its own")
    p.add_argument("--tokens", choices=("chars", "words"), default=None,
                   help="text: the unit of a token (default: the model's, or chars)")
    p.add_argument("--max-length", type=int, default=100_000, metavar="N",
                   help="sessions: longest line accepted, in tokens (default: %(default)s)")


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", metavar="FILE", help="write the results to FILE instead of standard output")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (any flag overrides the preset)")
    g.add_argument("--preset", choices=("deeplog", "seed", "text"),
                   help="deeplog: 2x64 LSTM, Adam, window 10; seed: the 2016 model, 2x512 LSTM, dropout 0.2, "
                        "RMSprop 1e-3, length 40; text (the default with --format text): 2x512 LSTM, "
                        "dropout 0.1, Adam 3e-3, schedule wsd, chunks of 50, validation every 200 steps")
    g.add_argument("--cell", choices=("lstm", "gru"))
    g.add_argument("--layers", type=int)
    g.add_argument("--hidden", type=int, help="units per recurrent layer")
    g.add_argument("--embedding-dim", type=int)
    g.add_argument("--dropout", type=float)
    g.add_argument("--mapping", choices=("many-to-many", "many-to-one"),
                   help="many-to-many (default): next event at every position, each event trained once; "
                        "many-to-one: a window of --window events predicts the next (DeepLog)")
    g.add_argument("--window", type=int, help="many-to-one: events in a window")
    g.add_argument("--bidirectional", action="store_true", default=None,
                   help="many-to-one only: read the window both ways (the window never holds the target)")
    t = p.add_argument_group("training")
    t.add_argument("--optimizer", choices=("adam", "adamw", "rmsprop", "sgd"))
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--batch-size", type=int,
                   help="sequences per batch (streams: parallel rows; many-to-one: 32x this many windows)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--clip", type=float, help="largest gradient norm (0: no clipping)")
    t.add_argument("--patience", type=int, help="validations (epochs, or --eval-every periods) without a better "
                        "validation loss before stopping (0: never)")
    t.add_argument("--validation-split", dest="validation_fraction", type=float,
                   help="fraction of the training sequences held out for validation (default 0.1)")
    t.add_argument("--validation", metavar="FILE", dest="validation_file",
                   help="validate on FILE instead of a split of the training data")
    t.add_argument("--chunk", type=int, help="streams: steps of truncated back-propagation")
    t.add_argument("--minutes", type=float, help="stop training after this many minutes")
    t.add_argument("--schedule", choices=("constant", "cosine", "wsd"),
                   help="learning rate: constant; cosine: decays to a tenth of --lr by the end of --minutes "
                        "(or of --epochs, if that comes first); wsd: held, then the same decay over the last 30%%")
    t.add_argument("--warmup", type=int, help="optimizer steps of linear learning-rate warm-up")
    t.add_argument("--eval-every", type=int, metavar="STEPS",
                   help="validate (and write a history row) every STEPS optimizer steps, not only per epoch")
    t.add_argument("--sample-every", type=int, metavar="N",
                   help="print samples at temperatures 0.2, 0.5, 1.0, 1.2 after every N history rows "
                        "(epochs, or --eval-every periods)")
    t.add_argument("--sample-prompt", default=None, help="the prompt of those samples (default: none)")
    t.add_argument("--min-count", type=int, help="tokens seen fewer times in training are unknown")
    t.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    t.add_argument("--seed", type=int, help="random seed (default 0): same seed, same weights")
    t.add_argument("--target-fpr", type=float, default=None,
                   help="false-positive rate the detection thresholds are calibrated for (default 0.001)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="seqrnn",
        description="Learn the grammar of event sequences with recurrent networks; predict the next event "
                    "and find the sequences and events that do not fit.",
    )
    parser.add_argument("--version", action="version", version=f"seqrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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

    p = sub.add_parser("evaluate", help="next-event loss, perplexity, accuracy and top-k accuracy")
    p.add_argument("model_dir", metavar="MODEL")
    add_input(p)
    add_output(p)

    p = sub.add_parser("predict", help="the predicted next events beside the true ones")
    p.add_argument("model_dir", metavar="MODEL")
    add_input(p)
    add_output(p)
    p.add_argument("--limit", type=int, default=5, help="sequences to show (default %(default)s; 0: all)")
    p.add_argument("-k", type=int, default=3, help="predictions per position (default %(default)s)")

    p = sub.add_parser("detect", help="score every event and decide which sequences are anomalous",
                       description="Score every event of every sequence and decide which are anomalous. "
                                   "Writes one JSON object per input sequence, in input order.")
    p.add_argument("model_dir", metavar="MODEL")
    add_input(p)
    p.add_argument("--output", "-o", metavar="FILE", help="JSON lines file (default: standard output)")
    p.add_argument("--events", metavar="CSV", help="also write the per-event table (probability, rank, -log p)")
    p.add_argument("--templates", metavar="FILE", help="event templates, to print their text in the output")
    p.add_argument("--plot", metavar="DIR", help="write probability, -log p and histogram plots (PNG)")
    p.add_argument("--top-g", type=int, help="DeepLog's rule: an event outside the top g predictions is anomalous")
    p.add_argument("--threshold", type=float,
                   help="an event with a probability below this is anomalous (default: calibrated at training)")
    p.add_argument("--no-counts", action="store_true", help="do not use the count-profile view")
    p.add_argument("--follow", action="store_true",
                   help="read the input as it grows and print each decision as soon as its event is read")
    p.add_argument("--only-anomalous", action="store_true", help="print only anomalous sequences (or events)")
    p.add_argument("-k", type=int, default=5, help="expected events to list (default %(default)s)")

    p = sub.add_parser("evaluate-detection", help="detection metrics on labelled normal and anomalous inputs")
    p.add_argument("model_dir", metavar="MODEL")
    p.add_argument("--normal", nargs="+", required=True, metavar="PATH", help="normal sequences")
    p.add_argument("--abnormal", nargs="+", required=True, metavar="PATH", help="anomalous sequences")
    p.add_argument("--format", choices=("sessions", "stream"), default=None)
    p.add_argument("--prevalence", type=float,
                   help="share of anomalies to report precision and F1 at (HDFS full data: %.4f)" % PREVALENCE_HDFS)
    p.add_argument("--top-g", type=int)
    p.add_argument("--threshold", type=float)
    p.add_argument("--no-counts", action="store_true")
    p.add_argument("--plot", metavar="DIR", help="write ROC and precision-recall curves (PNG)")
    add_output(p)

    p = sub.add_parser("info", help="architecture, parameters, vocabulary and training summary of a model")
    p.add_argument("model_dir", metavar="MODEL")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="train and detect on a sample of HDFS shipped with the package")
    p.add_argument("--model-dir", "-m", help="keep the model here (default: a temporary folder)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quiet", "-q", action="store_true")

    for name in EXTRA_COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return parser


# --- helpers --------------------------------------------------------------------------------
def read_inputs(args, model=None, paths=None):
    from .data.formats import read_sequences

    fmt = args.format or (model.format_ if model is not None else "sessions")
    tokens = getattr(args, "tokens", None) or (model.text_tokens_ if model is not None else "chars")
    return read_sequences(paths or args.inputs, fmt, separate_files=getattr(args, "separate_files", False),
                          max_length=getattr(args, "max_length", 100_000), text_tokens=tokens)


def open_output(path: str | None):
    if not path or path == "-":
        return sys.stdout
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return open(path, "w", encoding="utf-8")


def emit(args, text: str) -> None:
    out = open_output(getattr(args, "output", None))
    try:
        out.write(text if text.endswith("\n") else text + "\n")
    finally:
        if out is not sys.stdout:
            out.close()


# --- commands -----------------------------------------------------------------------------------
def train_other(args) -> int:
    """``train --model KIND`` for the models that are not the RNN: the settings KIND takes, the others refused."""
    import inspect

    from .errors import InputError
    from .models import model_class

    cls = model_class(args.model)
    accepted = set(inspect.signature(cls.__init__).parameters)
    given = {k: v for k, v in vars(args).items() if v is not None and k in {
        "order", "alpha", "states", "iterations", "idf", "window", "seed", "min_count", "cell", "layers", "hidden",
        "embedding_dim", "dropout", "mapping", "optimizer", "lr", "weight_decay", "batch_size", "epochs", "clip",
        "patience", "chunk", "minutes", "threads", "preset", "validation_file", "schedule", "warmup", "eval_every",
        "sample_every", "bidirectional"}}
    if args.validation_fraction is not None:
        given["validation"] = args.validation_fraction
    refused = sorted(k for k in given if k not in accepted and k != "validation_file")
    refused += [k for k in ("resume", "config") if getattr(args, k)]
    if refused:
        names = ", ".join("--" + k.replace("_", "-") for k in refused)
        raise InputError(f"{names} does not apply to --model {args.model}")
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    model = cls(**{k: v for k, v in given.items() if k in accepted})
    model.fit(read_inputs(args), validation=valid, format=args.format, target_fpr=args.target_fpr,
              text_tokens=args.tokens or "chars")
    model.save(args.model_dir)
    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "kind": model.kind, "training": model._training_summary(),
                          "calibration": model.calibration_}, indent=2))
    elif not args.quiet:
        print(f"saved {args.model_dir}: {args.model}, {len(model.vocab_) - 4} events, {model.fit_seconds_:.2f}s",
              file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    if args.model not in ("rnn", "context"):
        return train_other(args)
    from .models import model_class
    from .train import TrainingInterrupted

    settings = {k: getattr(args, k) for k in (
        "cell", "layers", "hidden", "embedding_dim", "dropout", "mapping", "window", "bidirectional", "optimizer",
        "lr", "weight_decay", "batch_size", "epochs", "clip", "patience", "chunk", "minutes", "min_count",
        "threads", "seed", "schedule", "warmup", "eval_every")}
    settings["validation"] = args.validation_fraction
    if args.config:  # preset < config file < explicit flags
        from .config import read_settings

        settings = {**read_settings(args.config), **{k: v for k, v in settings.items() if v is not None}}
    seqs = read_inputs(args)
    valid = read_inputs(args, paths=[args.validation_file]) if args.validation_file else None
    model = model_class(args.model)(args.preset or ("text" if args.format == "text" else None), **settings)
    callbacks = []
    if args.sample_every:
        from .generate import SampleCallback

        callbacks.append(SampleCallback(model, args.sample_every, prompt=args.sample_prompt))
    try:
        model.fit(seqs, validation=valid, format=args.format, target_fpr=args.target_fpr, text_tokens=args.tokens or "chars",
                  model_dir=args.model_dir, resume=args.resume, verbose=0 if args.quiet else 1,
                  callbacks=callbacks)
    except TrainingInterrupted as exc:
        print(f"\ninterrupted: checkpoint saved in {exc.checkpoint}; continue with --resume", file=sys.stderr)
        return 130
    last = model.history_[-1] if model.history_ else {}
    if args.json:
        print(json.dumps({"model_dir": args.model_dir, "epochs": len(model.history_), "last": last,
                          "calibration": model.calibration_}, indent=2))
    elif not args.quiet:
        summary = model._training_summary()
        best_loss = summary.get("best_val_loss") or summary.get("best_loss") or float("nan")
        print(f"saved {args.model_dir}: {len(model.vocab_) - 4} events, {model.n_parameters():,} parameters, "
              f"best epoch {summary.get('best_epoch')} (loss {best_loss:.4f}), "
              f"{model.fit_seconds_:.1f}s", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .models.base import load

    model = load(args.model_dir)
    result = model.evaluate(read_inputs(args, model), format=args.format)
    if args.json:
        emit(args, json.dumps(result, indent=2))
    else:
        lines = [f"{k:>20}: {v}" for k, v in result.items() if k != "topk_accuracy"]
        lines += [f"{'top-' + k + ' accuracy':>20}: {v:.4f}" for k, v in result["topk_accuracy"].items()]
        emit(args, "\n".join(lines))
    return 0


def cmd_predict(args) -> int:
    from .models.base import load
    from .report import token_name

    model = load(args.model_dir)
    seqs = read_inputs(args, model)
    if args.limit:
        seqs = seqs[: args.limit]
    scores = model.predict_next(seqs, k=args.k, format=args.format)
    if args.json:
        rows = [{"id": s.sequence.id, "true": [token_name(model, i) for i in s.ids],
                 "predicted": [[token_name(model, j) for j in row] for row in s.topk],
                 "probability": [round(float(p), 6) for p in s.prob]} for s in scores]
        emit(args, "\n".join(json.dumps(r) for r in rows))
        return 0
    out = []
    for s in scores:
        out.append(f"== {s.sequence.id} ({s.sequence.source}:{s.sequence.line})")
        out.append(f"{'pos':>5}  {'true':>10}  {'p(true)':>8}  predicted (most likely first)")
        for p in range(len(s)):
            mark = "" if s.rank[p] <= args.k else "  <- not predicted"
            out.append(f"{p:>5}  {token_name(model, s.ids[p]):>10}  {s.prob[p]:8.4f}  "
                       f"{' '.join(token_name(model, j) for j in s.topk[p])}{mark}")
    emit(args, "\n".join(out))
    return 0


def cmd_detect(args) -> int:
    from .detect import Detector
    from .models.base import load
    from .report import finding_dict, load_templates, plot_findings, write_event_table

    model = load(args.model_dir)
    templates = load_templates(args.templates) if args.templates else None
    detector = Detector(model, top_g=args.top_g, threshold=args.threshold, use_counts=not args.no_counts,
                        topk=args.k)
    if args.follow:
        from .follow import follow

        return follow(model, detector, args, templates)
    seqs = read_inputs(args, model)
    decisions = detector.decide(seqs)
    out = open_output(args.output)
    n_anom = 0
    try:
        for f in decisions.findings:
            n_anom += f.anomalous
            if args.only_anomalous and not f.anomalous:
                continue
            out.write(json.dumps(finding_dict(model, f, templates, args.k)) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.events:
        write_event_table(args.events, model, decisions.findings, args.k)
    if args.plot:
        plot_findings(args.plot, decisions.findings, None if args.top_g else detector.nll_threshold)
    print(f"{n_anom} of {len(seqs)} sequences anomalous", file=sys.stderr)
    return 0


def cmd_evaluate_detection(args) -> int:
    import numpy as np

    from .detect import Detector, detection_metrics
    from .models.base import load

    model = load(args.model_dir)
    normal = read_inputs(args, model, paths=args.normal)
    abnormal = read_inputs(args, model, paths=args.abnormal)
    detector = Detector(model, top_g=args.top_g, threshold=args.threshold, use_counts=not args.no_counts)
    d = detector.decide(normal + abnormal)
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    metrics = detection_metrics(y, d.anomalous, d.scores, args.prevalence)
    if args.plot:
        from .report import plot_curves

        plot_curves(args.plot, y, d.scores)
    if args.json:
        emit(args, json.dumps(metrics, indent=2))
    else:
        from .report import fmt as f

        emit(args, "\n".join(f"{k:>24}: {f(v)}" for k, v in metrics.items()))
    return 0


def cmd_info(args) -> int:
    from .artifacts import read_config
    from .models.base import load

    config = read_config(args.model_dir)
    model = load(args.model_dir)
    info = {
        "model_dir": args.model_dir, "kind": config["kind"], "settings": config["settings"],
        "parameters": model.n_parameters() if hasattr(model, "n_parameters") else None,
        "vocabulary_size": len(model.vocab_), "events": len(model.vocab_) - 4,
        "data_format": config.get("data_format"), "training": config.get("training"),
        "calibration": config.get("calibration"), "versions": config.get("versions"),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    s = info["settings"]
    if config["kind"] not in ("rnn", "context"):
        return _info_other(info)
    if config["kind"] == "context":
        reads = "each event from the events before and after it"
    else:
        reads = s.get("mapping") + (f" (window {s.get('window')}" + (", bidirectional" if s.get("bidirectional")
                                                                    else "") + ")"
                                    if s.get("mapping") == "many-to-one" else "")
    print(f"model      {config['kind']}: {s.get('layers')}x{s.get('hidden')} {str(s.get('cell')).upper()}, "
          f"embedding {s.get('embedding_dim')}, dropout {s.get('dropout')}, {reads}")
    print(f"parameters {info['parameters']:,}")
    print(f"vocabulary {info['events']} events (+4 reserved), format {info['data_format']}")
    tr = info["training"] or {}
    print(f"training   {tr.get('sequences')} sequences, {tr.get('events')} events, {tr.get('epochs')} epochs, "
          f"{tr.get('seconds')}s; best val_loss {tr.get('best_val_loss')}")
    cal = info["calibration"] or {}
    if cal:
        p = math.exp(-cal["nll_threshold"])
        print(f"detection  event probability threshold {p:.3g} (-log p > {cal['nll_threshold']:.3f})"
              + (f", count-profile threshold {cal['count']['threshold']:.3f}" if cal.get("count") else "")
              + f", target FPR {cal['target_fpr']}")
    return 0


def _info_other(info: dict) -> int:
    print(f"model      {info['kind']}: " + ", ".join(f"{k} {v}" for k, v in info["settings"].items()))
    print(f"vocabulary {info['events']} events (+4 reserved), format {info['data_format']}")
    tr = info["training"] or {}
    print(f"training   {tr.get('sequences')} sequences, {tr.get('events')} events, {tr.get('seconds')}s")
    cal = info["calibration"] or {}
    views = ["unseen event"]
    if cal.get("nll_threshold") is not None:
        views.append(f"event probability threshold {math.exp(-cal['nll_threshold']):.3g}")
    if cal.get("count"):
        views.append(f"count-profile threshold {cal['count']['threshold']:.3f}")
    views += [f"{k} distance threshold {v:.3f}" for k, v in (cal.get("views") or {}).items()]
    if cal:
        print(f"detection  {', '.join(views)}, target FPR {cal['target_fpr']}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "detect": cmd_detect,
            "evaluate-detection": cmd_evaluate_detection, "info": cmd_info, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        func = getattr(args, "func", None) or COMMANDS[args.command]
        return func(args)
    except SeqrnnError as exc:
        print(f"seqrnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"seqrnn {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
