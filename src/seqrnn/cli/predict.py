"""``seqrnn predict``: the predicted next events beside the true ones."""

from __future__ import annotations


from .args import add_threads, add_input, add_output, emit, read_inputs


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="the predicted next events beside the true ones",
                       description="For each position of the first --limit sessions (of text and streams: "
                                   "the first --limit positions): the true event, the "
                                   "probability the model gave it and the model's -k most likely events there; "
                                   "'<- not predicted' marks a true event outside them, '<- never seen in "
                                   "training' an event unknown to the model (with --json: unseen, their "
                                   "positions).")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    add_input(p)
    add_output(p)
    p.add_argument("--limit", type=int, metavar="N",
                   help="sessions: the sequences to show (default 5); text and streams, where a file is one long "
                        "sequence: the positions to show, counted across the inputs (default 100); 0: all")
    p.add_argument("-k", type=int, default=3, help="predictions per position (default %(default)s)")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.base import load_next_event_model as load
    from ..report import token_name

    from ..errors import InputError

    if args.limit is not None and args.limit < 0:
        raise InputError(f"limit must be >= 0 (0: all), not {args.limit}", params="limit")
    model = load(args.model_dir)
    seqs = read_inputs(args, model)
    if (args.format or model.format_) == "sessions":
        limit = 5 if args.limit is None else args.limit
        if limit:
            seqs = seqs[:limit]
    else:
        seqs = first_positions(seqs, 100 if args.limit is None else args.limit)
    scores = model.predict_next(seqs, k=args.k, format=args.format)

    def true(s, p):  # the event as read (an unseen one is not "<unk>"); the end of a session by name
        return s.sequence.tokens[p] if p < len(s.sequence) else token_name(model, s.ids[p])

    if args.json:
        rows = [{"id": s.sequence.id, "true": [true(s, p) for p in range(len(s))],
                 "unseen": [int(p) for p in s.unknown.nonzero()[0]],
                 "predicted": [[token_name(model, j) for j in row] for row in s.topk],
                 "probability": [round(float(p), 6) for p in s.prob]} for s in scores]
        from ..artifacts import finite_json

        emit(args, "\n".join(finite_json(r, args.model_dir) for r in rows))
        return 0
    from ..report.summary import printable
    from ..report.summary import readable_event as shown  # a text's space and newline quoted

    out = []
    for s in scores:
        out.append(f"== {printable(s.sequence.id)} ({printable(s.sequence.source)}:{s.sequence.line})")
        out.append(f"{'pos':>5}  {'true':>10}  {'p(true)':>8}  predicted (most likely first)")
        for p in range(len(s)):
            mark = ("  <- never seen in training" if s.unknown[p] else
                    "" if s.rank[p] <= args.k else "  <- not predicted")
            out.append(f"{p:>5}  {shown(true(s, p)):>10}  {s.prob[p]:8.4f}  "
                       f"{' '.join(shown(token_name(model, j)) for j in s.topk[p])}{mark}")
    emit(args, "\n".join(out))
    return 0


def first_positions(seqs, limit: int):
    """The first ``limit`` positions of ``seqs`` (0: all), counted across them: a text file or a stream is one
    long sequence, so a limit on sequences would show all of it. A sequence cut short has no end to predict."""
    import dataclasses

    if not limit:
        return seqs
    out = []
    for s in seqs:
        if limit <= 0:
            break
        if len(s) + s.complete <= limit:  # a session's end is a position too
            out.append(s)
        else:
            out.append(dataclasses.replace(s.slice(0, limit), complete=False))
        limit -= len(out[-1]) + out[-1].complete
    return out
