"""``seqrnn evaluate``: next-event loss, perplexity, accuracy and top-k accuracy."""

from __future__ import annotations

import sys

from .args import add_threads, add_input, add_output, emit, read_inputs


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="next-event loss, perplexity, accuracy and top-k accuracy",
                       description="How well the model predicts each next event of the input: mean loss "
                                   "(nats per event), perplexity, accuracy and top-k accuracy for k = 1..10. "
                                   "The end of a session is scored like an event; unknown_events counts the "
                                   "events never seen in training.")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    add_input(p)
    add_output(p)
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.base import load_next_event_model as load

    model = load(args.model_dir)
    seqs = read_inputs(args, model)
    result = model.evaluate(seqs, format=args.format)
    from ..report.summary import unknown_share_note

    ends = sum(1 for s in seqs if s.complete)  # scored after each session's events, always known: not counted
    note = unknown_share_note(model, result.get("unknown_events", 0), result.get("events", 0) - ends)
    if note:
        print(note.strip(), file=sys.stderr)
    if args.json:
        from ..artifacts import finite_json

        emit(args, finite_json(result, args.model_dir, indent=2))
    else:
        lines = [f"{k:>20}: {_shown(v)}" for k, v in result.items() if k != "topk_accuracy"]
        lines += [f"{'top-' + k + ' accuracy':>20}: {v:.4f}" for k, v in result["topk_accuracy"].items()]
        emit(args, "\n".join(lines))
    return 0


def _shown(v) -> str:
    """A value as people read it: counts with thousands separators, rates to 4 decimals like the top-k rows."""
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)
