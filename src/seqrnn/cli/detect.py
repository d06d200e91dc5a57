"""``seqrnn detect``: score every event and decide which sequences are anomalous."""

from __future__ import annotations

import json
import sys

from .args import add_decision_options, add_input, add_output, decision_options, open_output, read_inputs


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="score every event and decide which sequences are anomalous",
                       description="Score every event of every sequence and decide which are anomalous. "
                                   "Writes one JSON object per input sequence, in input order.")
    p.add_argument("model_dir", metavar="MODEL")
    add_input(p)
    add_output(p, "the JSON lines", json_help=None)
    p.add_argument("--events", metavar="CSV", help="also write the per-event table (probability, rank, -log p)")
    p.add_argument("--templates", metavar="FILE", help="event templates, to print their text in the output")
    p.add_argument("--plot", metavar="DIR", help="write probability, -log p and histogram plots (PNG)")
    add_decision_options(p)
    p.add_argument("--follow", action="store_true",
                   help="read the input as it grows (standard input: to its end) and write each decision as soon "
                        "as its event is read; --output and --events get a line per decision, --plot draws "
                        "what was read at the end of the input or on Ctrl-C")
    p.add_argument("--only-anomalous", action="store_true", help="print only anomalous sequences (or events)")
    p.add_argument("-k", type=int, default=5, help="expected events to list (default %(default)s)")
    p.set_defaults(func=run, parameter_dests={"topk": "k"})


def run(args) -> int:
    from ..detect import Detector
    from ..report import finding_dict, load_templates, plot_findings, write_event_table

    templates = load_templates(args.templates) if args.templates else None
    detector = Detector.load(args.model_dir, **decision_options(args), topk=args.k)
    model = detector.model
    if args.follow:
        return _follow(args, detector, templates)
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
        plot_findings(args.plot, decisions.findings, None if args.top_g else detector.nll_cut)
    print(f"{n_anom} of {len(seqs)} sequences anomalous; {detector.promise_text()}", file=sys.stderr)
    return 0


def _follow(args, detector, templates) -> int:
    from ..errors import InputError
    from ..follow import follow

    if len(args.inputs) != 1:
        raise InputError("--follow reads one input (a file or '-')")
    fmt = args.format or detector.model.format_
    out = open_output(args.output)
    try:
        anomalous, decided = follow(detector, args.inputs[0], format=fmt, max_length=args.max_length,
                                    only_anomalous=args.only_anomalous, k=args.k, templates=templates, out=out,
                                    events=args.events, plot=args.plot)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{anomalous} of {decided} {'events' if fmt == 'stream' else 'sequences'} anomalous", file=sys.stderr)
    return 0
