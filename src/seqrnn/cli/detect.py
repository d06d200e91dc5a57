"""``seqrnn detect``: score every event and decide which sequences are anomalous."""

from __future__ import annotations

import sys

from .args import (add_threads, add_decision_options, add_input, add_output, decision_options, open_output, output_file,
                   read_inputs)


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="score every event and decide which sequences are anomalous",
                       description="Score every event of every sequence and decide which are anomalous. "
                                   "Writes one JSON object per input sequence, in input order, and ends with "
                                   "a summary on standard error: the count by reason, the false-positive rate "
                                   "the calibration promises, the highest scores (with --follow: the count and "
                                   "the promise).")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    add_input(p)
    add_output(p, "the JSON lines", json_help=None)
    p.add_argument("--events", metavar="CSV", help="also write the per-event table (probability, rank, -log p)")
    p.add_argument("--templates", metavar="FILE",
                   help="event templates, to print their text in the output (default for a parsed folder: its own)")
    p.add_argument("--plot", metavar="DIR", help="write probability, -log p and histogram plots (PNG)")
    add_decision_options(p)
    p.add_argument("--follow", action="store_true",
                   help="read the input as it grows (standard input: to its end) and write each decision as soon "
                        "as its event is read; --output and --events get a line per decision, --plot draws "
                        "what was read at the end of the input or on Ctrl-C")
    p.add_argument("--only-anomalous", action="store_true", help="print only anomalous sequences (or events)")
    p.add_argument("--explain", action="store_true",
                   help="input from seqrnn parse: add to each anomaly, under \"explain\", its parameters and the "
                        "raw lines (file:line) of the session around it (the templates of its event and of the "
                        "expected ones are in every finding of a parsed folder)")
    p.add_argument("-k", type=int, default=5, help="expected events to list (default %(default)s)")
    add_threads(p)
    p.set_defaults(func=run, parameter_dests={"topk": "k"})


def run(args) -> int:
    from ..detect import Detector
    from ..modeldir import read
    from ..report import load_templates

    _outputs_apart(args)
    templates = load_templates(args.templates) if args.templates else None

    detector = read(args.model_dir, lambda: Detector.load(args.model_dir, **decision_options(args), topk=args.k),
                    need="detector")
    if args.follow:
        _refuse_raw_logs(args, detector)
        return _follow(args, detector, templates)
    explainer = _explainer(args) if args.explain else None
    _refuse_raw_logs(args, detector)
    if templates is None and len(args.inputs) == 1:  # a parsed folder brings its templates
        from ..parse.folder import is_parsed_folder, read_templates

        templates = read_templates(args.inputs[0]) if is_parsed_folder(args.inputs[0]) else None
    import gc

    # What is loaded and read lives to the end: the collector need not look at it again (unfrozen at the end,
    # an error's too, for a caller that goes on in the same process). A caller that froze objects of its own
    # keeps them frozen: unfreezing is all or nothing, so nothing is frozen here then.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        return _detect(args, detector, templates, explainer, freeze)
    finally:
        if freeze:
            gc.unfreeze()


def _outputs_apart(args) -> None:
    """Refuse an --output or --events file that is an input (read whole, then replaced by the decisions: the
    data lost; with --follow, growing with every decision it gives) or the other output."""
    import os

    from ..data.formats import expand_paths
    from ..errors import InputError

    inputs = {os.path.realpath(p) for p in expand_paths(args.inputs) if p != "-"}
    given = [(flag, path) for flag, path in (("--output", args.output), ("--events", args.events))
             if path and path != "-"]
    for flag, path in given:
        if os.path.realpath(path) in inputs:
            raise InputError(f"{flag} {path} is one of the inputs: writing it would replace the data read",
                             params=("output", "events"))
    if len(given) == 2 and os.path.realpath(given[0][1]) == os.path.realpath(given[1][1]):
        raise InputError(f"--output and --events are the same file ({args.output}): one would replace the other",
                         params=("output", "events"))


#: Findings written at a time with --explain: the raw lines of their anomalies are read in one pass over each log.
EXPLAIN_BLOCK = 4096


def _detect(args, detector, templates, explainer, freeze: bool = False) -> int:
    import gc

    from ..artifacts import finite_json
    from ..report import finding_dict, plot_findings, write_event_table

    model = detector.model
    seqs = read_inputs(args, model)
    if freeze:
        gc.freeze()
    from .. import distributed

    if distributed.launched():
        return _detect_parallel(args, detector, templates, seqs)
    from ..progress import decide

    decisions = decide(detector, seqs)
    from ..report.lines import FindingLines

    line = FindingLines(model, templates, args.k, args.model_dir)  # repeated sessions serialised once
    with output_file(args.output) as out:  # a file appears whole: a killed run leaves none of it
        findings = decisions.findings
        for start in range(0, len(findings), EXPLAIN_BLOCK):
            block = findings[start:start + EXPLAIN_BLOCK]
            found = {}
            if explainer is not None:  # the raw lines of a block's anomalies: one pass over the logs
                found = {i: finding_dict(model, f, templates, args.k) for i, f in enumerate(block) if f.anomalous}
                explainer.prefetch([(found[i], block[i].scores.sequence) for i in found])
            for i, f in enumerate(block):
                if args.only_anomalous and not f.anomalous:
                    continue
                if i in found:
                    found[i]["explain"] = explainer.explain(found[i], f.scores.sequence, f.event_anomalous)
                    out.write(finite_json(found[i], args.model_dir) + "\n")
                else:
                    out.write(line(f) + "\n")
    if args.events:
        write_event_table(args.events, model, decisions.findings, args.k)
    if args.plot:
        plot_findings(args.plot, decisions.findings, None if args.top_g else detector.nll_cut)
    from ..report.summary import detection_summary

    # The summary a person reads: counts by reason, the worst ten, the promise, where the output went.
    print(detection_summary(model, detector, decisions.findings, templates,
                            {"findings": args.output if args.output not in (None, "-") else None,
                             "only_anomalous": args.only_anomalous, "events": args.events, "plot": args.plot}),
          file=sys.stderr)
    return 0


def _refuse_raw_logs(args, detector) -> None:
    """A raw log read as sessions makes every line a sequence of unseen words, all flagged: refuse it and say
    how to give it to this model (its own parser, when it was trained on a parsed folder)."""
    from ..parse.sniff import refuse_raw_logs_for

    refuse_raw_logs_for(args.inputs, args.format or detector.model.format_, args.model_dir, "detect")


def _explainer(args):
    from ..errors import InputError
    from ..parse.explain import Explainer
    from ..parse.folder import is_parsed_folder

    if len(args.inputs) != 1 or not is_parsed_folder(args.inputs[0]):
        raise InputError("--explain reads one parsed folder (written by seqrnn parse)", params="explain")
    return Explainer(args.inputs[0])


def _follow(args, detector, templates) -> int:
    from ..errors import InputError
    from ..follow import follow

    if len(args.inputs) != 1:
        raise InputError("--follow reads one input (a file or '-')")
    if args.explain:
        raise InputError("--explain applies to a parsed folder; to follow a raw log with explanations, use "
                         "seqrnn watch")
    fmt = args.format or detector.model.format_
    out = open_output(args.output)
    try:
        anomalous, decided = follow(detector, args.inputs[0], format=fmt, max_length=args.max_length,
                                    only_anomalous=args.only_anomalous, k=args.k, templates=templates, out=out,
                                    events=args.events, plot=args.plot)
    finally:
        if out is not sys.stdout:
            out.close()
    from ..progress import human
    from ..report.summary import promise, promise_text

    print(f"{human(anomalous)} of {human(decided)} {'events' if fmt == 'stream' else 'sequences'} anomalous\n"
          f"  {promise_text(promise(detector))}\n"
          f"  full output: {args.output or 'standard output'} (one JSON line per "
          f"{'event' if fmt == 'stream' else 'sequence'}{', anomalous only' if args.only_anomalous else ''})",
          file=sys.stderr)
    return 0


def _detect_parallel(args, detector, templates, seqs) -> int:
    """Under torchrun: each process decides a contiguous part of the sequences and writes it beside
    ``--output``; rank 0 joins the parts in input order into the one output file."""
    import os

    from .. import distributed
    from ..errors import InputError
    from ..artifacts import finite_json
    from ..report import finding_dict

    refused = [f for f, given in (("--events", args.events), ("--plot", args.plot), ("--output", not args.output))
               if given]
    if refused:
        raise InputError("detection in several processes writes one JSON lines file: give --output, "
                         "and no --events or --plot", params=("output",))
    group = distributed.setup()
    part = distributed.rank_part(len(seqs), group)
    decisions = detector.decide(seqs[part.start:part.stop]) if len(part) else None
    findings = decisions.findings if decisions is not None else []
    mine = f"{args.output}.part{group.rank:05d}"
    n_anom = 0
    with open_output(mine) as out:
        for f in findings:
            n_anom += f.anomalous
            if not (args.only_anomalous and not f.anomalous):
                out.write(finite_json(finding_dict(detector.model, f, templates, args.k), args.model_dir) + "\n")
    n_anom = int(group.sum([n_anom])[0])
    group.barrier()  # every part is written
    if group.writer:
        parts = [f"{args.output}.part{r:05d}" for r in range(group.size)]
        with open(args.output + ".tmp", "w", encoding="utf-8") as joined:
            for path in parts:
                with open(path, encoding="utf-8") as fh:
                    for line in fh:
                        joined.write(line)
        os.replace(args.output + ".tmp", args.output)
        for path in parts:
            os.remove(path)
        from ..progress import human

        print(f"{human(n_anom)} of {human(len(seqs))} sequences anomalous ({group.size} processes)",
              file=sys.stderr)
    distributed.finish()
    return 0
