"""``seqrnn detect``: score every event and decide which sequences are anomalous."""

from __future__ import annotations

import json
import sys

from .args import add_input, open_output, read_inputs


def add_parser(sub) -> None:
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
    p.set_defaults(func=run)


def run(args) -> int:
    from ..detect import Detector
    from ..report import finding_dict, load_templates, plot_findings, write_event_table

    templates = load_templates(args.templates) if args.templates else None
    detector = Detector.load(args.model_dir, top_g=args.top_g, threshold=args.threshold,
                             use_counts=not args.no_counts, topk=args.k)
    model = detector.model
    if args.follow:
        from ..follow import follow

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
        plot_findings(args.plot, decisions.findings, None if args.top_g else detector.nll_cut)
    print(f"{n_anom} of {len(seqs)} sequences anomalous", file=sys.stderr)
    return 0
