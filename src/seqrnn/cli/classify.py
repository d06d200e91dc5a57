"""``seqrnn classify``: train, apply and evaluate a supervised sequence classifier.

    seqrnn classify train --normal FILE --abnormal FILE --model-dir DIR
    seqrnn classify predict DIR FILE --output OUT.jsonl
    seqrnn classify evaluate DIR --normal FILE --abnormal FILE --prevalence 0.0296

No torch or numpy at import: ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys

from .args import (PREVALENCE_HDFS, add_input, add_threads, add_labelled, add_output, emit, given_settings, output_file,
                   check_labels_apart, read_inputs, settings_adder)

TOP_EVENTS = 3  # most attended events named in each line's reason


def add_parser(sub) -> None:
    p = sub.add_parser("classify", help="supervised: learn normal vs anomalous sequences from labelled examples",
                       description="A bidirectional LSTM/GRU with attention pooling, trained on labelled normal "
                                   "and anomalous sequences; the attention over the events explains each decision.")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    t = csub.add_parser("train", help="train on labelled normal and anomalous sequences",
                        description="Train on labelled sequences. A stratified share (--validation-split) is held "
                                    "out to pick the best epoch and the decision threshold (maximum F1, at "
                                    "--prevalence if given). Writes config.json, model.safetensors, history.csv "
                                    "and a checkpoint for --resume; Ctrl-C or SIGTERM saves the checkpoint. It says how "
                                    "many sequences of each class the validation holds, with a warning (also in "
                                    "--json's warnings) when a class has fewer than 5 there.")
    add_labelled(t, reading=True)
    t.add_argument("--model-dir", "-m", required=True, help="where to write the classifier")
    g = t.add_argument_group("model and training")
    setting = settings_adder(t, g)
    setting("--cell", choices=("lstm", "gru"))
    setting("--layers", type=int)
    setting("--hidden", type=int, help="units per direction (default 64)")
    setting("--embedding-dim", type=int)
    setting("--attention", type=int, help="units of the attention scorer (default 64)")
    setting("--dropout", type=float)
    setting("--optimizer", choices=("adam", "adamw", "rmsprop", "sgd"))
    setting("--lr", type=float)
    setting("--weight-decay", type=float)
    setting("--batch-size", type=int)
    setting("--epochs", type=int, help="default 40")
    setting("--schedule", choices=("cosine", "constant", "wsd"),
            help="learning rate: cosine (default) decays it to --lr-floor x --lr by the end of --epochs "
                 "(or --minutes); constant; wsd: held, then the same decay over the last 30%%")
    setting("--lr-floor", type=float,
            help="the fraction of --lr that cosine and wsd decay to (default 0 here; 0.1 for seqrnn train)")
    setting("--warmup", type=int, help="optimizer steps of linear learning-rate warm-up")
    setting("--minutes", type=float, help="stop training after this many minutes")
    setting("--patience", type=int,
            help="epochs without a better validation loss before stopping (default 0: never; "
                 "the best epoch is kept)")
    setting("--clip", type=float)
    setting("--validation-split", dest="validation_split", type=float,
            help="share of each class held out to choose the epoch and threshold (default 0.2)")
    setting("--prevalence", type=float,
            help="choose the threshold for the best F1 at this share of anomalies (default: plain F1 on "
                 "the validation split; HDFS full data: %.4f)" % PREVALENCE_HDFS)
    setting("--threshold-on", choices=("validation+normal", "validation"),
            help="sequences the threshold is chosen on: the validation split and the training split's "
                 "normal sequences (default), or the validation split alone")
    setting("--min-count", type=int)
    setting("--seed", type=int)
    setting("--threads", type=int)
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --model-dir")
    t.add_argument("--quiet", "-q", action="store_true")
    t.add_argument("--json", action="store_true", help="print the training summary as JSON")
    t.set_defaults(func=run)

    pr = csub.add_parser("predict", help="label sequences; JSON lines with the attention over their events",
                         description="Label each sequence: one JSON line each, in input order (id, anomalous, "
                                     "score: the probability of anomalous, length, location, unknown_events: "
                                     "events never seen in training, reason, top_events: the most attended "
                                     "events, attention: one weight per event); ends with the count anomalous "
                                     "on standard error.")
    pr.add_argument("model_dir", metavar="MODEL", help="a classifier directory written by seqrnn classify train")
    add_input(pr)
    pr.add_argument("--output", "-o", metavar="FILE", help="JSON lines file (default: standard output)")
    pr.add_argument("--templates", metavar="FILE", help="event templates, to print the text of the top events")
    pr.add_argument("--only-anomalous", action="store_true", help="print only anomalous sequences")
    pr.add_argument("--no-attention", action="store_true", help="leave the per-event weights out (keep the top)")
    add_threads(pr)
    pr.set_defaults(func=run)

    e = csub.add_parser("evaluate", help="precision, recall, F1, FPR, ROC-AUC, PR-AUC on labelled inputs",
                        description="Label --normal and --abnormal sequences with the classifier's threshold and "
                                    "print the counts (tp, fp, fn, tn), precision, recall, F1, false-positive "
                                    "rate, ROC-AUC and PR-AUC; with --prevalence, precision and F1 at that "
                                    "share of anomalies.")
    e.add_argument("model_dir", metavar="MODEL", help="a classifier directory written by seqrnn classify train")
    add_labelled(e, reading=True)
    e.add_argument("--prevalence", type=float,
                   help="share of anomalies to report precision and F1 at (HDFS full data: %.4f)" % PREVALENCE_HDFS)
    add_output(e, "the metrics")
    add_threads(e)
    e.set_defaults(func=run)


def run(args) -> int:
    if args.action in ("train", "evaluate"):
        check_labels_apart(args.normal, args.abnormal)
    return {"train": _train, "predict": _predict, "evaluate": _evaluate}[args.action](args)


def _labelled(args, model=None):
    import numpy as np

    normal = read_inputs(args, model, paths=args.normal)
    abnormal = read_inputs(args, model, paths=args.abnormal)
    return normal + abnormal, np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]


def _train(args) -> int:
    from .. import modeldir

    with modeldir.writing(args.model_dir):  # one writer per model directory, from before the data is read
        return _train_locked(args)


def _train_locked(args) -> int:
    from ..models.classifier import SequenceClassifier
    from ..train import TrainingInterrupted

    clf = SequenceClassifier(**given_settings(args))
    seqs, y = _labelled(args)
    try:
        clf.fit(seqs, y, format=args.format or "sessions", text_tokens=args.tokens or "chars",
                model_dir=args.model_dir, resume=args.resume, verbose=0 if args.quiet else 1)
    except TrainingInterrupted as exc:
        print(f"\ninterrupted: checkpoint saved in {exc.checkpoint}; continue with --resume", file=sys.stderr)
        return exc.exit_code
    summary = {"model_dir": args.model_dir, "epochs": len(clf.history_), "threshold": clf.threshold_,
               "pos_weight": clf.pos_weight_, "validation": clf.validation_, "train": clf.n_train_,
               "seconds": round(clf.fit_seconds_, 2)}
    summary["warnings"] = warnings = few_validation_warnings(clf.validation_)
    for line in warnings:  # said even with --quiet or --json: the F1 shown is not to be trusted
        print(f"warning: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        v = clf.validation_
        f1 = v.get("f1_at_prevalence", v.get("f1"))
        print(f"saved {args.model_dir}: {clf.n_parameters():,} parameters, {len(clf.history_)} epochs, "
              f"validation F1 {f1:.4f} (recall {v['recall']:.4f}, FPR {v['fpr']:.4f}), {clf.fit_seconds_:.1f}s; "
              f"the validation holds {v['normal']:,} normal and {v['anomalous']:,} anomalous sequences",
              file=sys.stderr)
    return 0


FEW_VALIDATION = 5  # fewer labelled sequences of a class than this in the validation: its F1 says little


def few_validation_warnings(validation: dict) -> list[str]:
    """A line for each class with fewer than :data:`FEW_VALIDATION` sequences in the validation split:
    F1, recall and the epoch chosen then rest on a handful of examples (2 anomalous: recall is 0, 0.5 or 1)."""
    out = []
    for name in ("anomalous", "normal"):
        n = validation.get(name)
        if isinstance(n, int) and n < FEW_VALIDATION:
            out.append(f"only {n} {name} sequence{'s' if n != 1 else ''} in the validation split: its F1, recall "
                       "and false-positive rate (and the epoch kept) rest on too few examples to mean much; give "
                       f"more {name} sequences or a larger --validation-split")
    return out


def prediction_dict(p, threshold: float, templates: dict | None, with_attention: bool = True,
                    vocab=None) -> dict:
    """One JSON object per sequence: detect's fields, and the attention as the explanation. With the
    classifier's ``vocab``: ``unknown_events``, the events never seen in training (all read as one
    unknown event, so a label of such a sequence says little), each marked ``unseen`` in ``top_events``."""
    seq = p.sequence
    out = {"id": seq.id, "anomalous": p.anomalous, "score": round(p.probability, 6), "length": len(seq),
           "location": seq.location(0)}
    unseen = set()
    if vocab is not None and len(seq):
        from ..data.vocab import UNK

        unseen = {int(q) for q in (vocab.encode(seq.tokens) == UNK).nonzero()[0]}
        out["unknown_events"] = len(unseen)
    order = sorted(range(len(p.attention)), key=lambda q: -float(p.attention[q]))[:TOP_EVENTS]
    top = []
    for q in order:
        row = {"position": q, "event": seq.tokens[q], "weight": round(float(p.attention[q]), 4)}
        if q in unseen:
            row["unseen"] = True
        if templates is not None:
            row["template"] = templates.get(seq.tokens[q])
        top.append(row)
    verdict = "anomalous" if p.anomalous else "normal"
    from ..models.classifier import sigmoid

    prob_threshold = sigmoid(threshold)
    attended = ", ".join(f"{t['event']} at {t['position']} ({t['weight']:.2f})" for t in top)
    out["reason"] = (f"classified {verdict}: p(anomalous)={p.probability:.3g} "
                     f"{'>' if p.anomalous else '<='} {prob_threshold:.3g}"
                     + (f"; most attended: {attended}" if attended else "")
                     + (f"; {len(unseen)} of {len(seq)} events never seen in training" if unseen else ""))
    out["top_events"] = top
    if with_attention:
        out["attention"] = [round(float(w), 4) for w in p.attention]
    return out


def _predict(args) -> int:
    from ..models.classifier import load_classifier
    from ..report import load_templates

    clf = load_classifier(args.model_dir)
    templates = load_templates(args.templates) if args.templates else None
    seqs = read_inputs(args, clf)
    preds = clf.explain(seqs)
    n = with_unknown = 0
    with output_file(args.output) as out:  # appears whole when done, or the previous file stays
        for p in preds:
            n += p.anomalous
            line = prediction_dict(p, clf.threshold_, templates, not args.no_attention, clf.vocab_)
            with_unknown += line.get("unknown_events", 0) > 0
            if args.only_anomalous and not p.anomalous:
                continue
            out.write(json.dumps(line) + "\n")
    from ..progress import human

    print(f"{human(n)} of {human(len(seqs))} sequences anomalous", file=sys.stderr)
    if with_unknown:
        print(f"  {human(with_unknown)} hold events never seen in training (read as one unknown event, so their "
              "label says little; see unknown_events)", file=sys.stderr)
    return 0


def _evaluate(args) -> int:
    from ..models.classifier import load_classifier
    from ..metrics import detection_metrics

    clf = load_classifier(args.model_dir)
    seqs, y = _labelled(args, clf)
    scores = clf.decision_function(seqs)
    metrics = detection_metrics(y, scores > clf.threshold_, scores, args.prevalence)
    if args.json:
        emit(args, json.dumps(metrics, indent=2))
    else:
        from ..report import fmt

        emit(args, "\n".join(f"{k:>24}: {fmt(v)}" for k, v in metrics.items()))
    return 0
