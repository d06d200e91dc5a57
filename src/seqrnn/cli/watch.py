"""``seqrnn watch``: follow a raw log and print one JSON alert per anomalous event or session."""

from __future__ import annotations

import sys

from .args import add_decision_options, add_output, decision_options, open_output, seconds


def add_parser(sub) -> None:
    p = sub.add_parser(
        "watch", help="follow a raw log: parse, group and decide as lines arrive; one JSON alert per anomaly",
        description="Follow a raw log file (through rotation and truncation) or standard input; parse each line "
                    "with the parser state saved by seqrnn parse, group it as the parsed folder was grouped, and "
                    "decide with the model's state carried per session. Prints one JSON line per alert, as soon "
                    "as its line is read: a template never seen before, an unlikely event, a closed session that "
                    "is anomalous (sessions idle for --idle seconds are closed and judged; at the end of the "
                    "input, all of them). Lines that do not fit the log format (or are not text, or "
                    "are longer than 1 MiB) are counted, never fatal; a file of old Mac line ends (a carriage return, "
                    "and no newline after it, before any line has ended) is refused at its first line.")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    p.add_argument("input", metavar="PATH", help="the log file to follow, or '-' for standard input")
    p.add_argument("--parsed", metavar="DIR",
                   help="the parsed folder the model was trained on: its parser state, log format and grouping "
                        "(default: the copy train kept in MODEL/parser)")
    p.add_argument("--log-format", metavar="FORMAT", help="override the parsed folder's log format")
    p.add_argument("--session", metavar="REGEX", help="override the grouping: session ids found in the line")
    p.add_argument("--idle", type=seconds, default=60.0, metavar="SECONDS",
                   help="close and judge a session after this long without a line (default %(default)s)")
    p.add_argument("--from-end", action="store_true", help="skip what the file holds already (like tail -f)")
    p.add_argument("--explain", action="store_true",
                   help="add the templates of the event and of the expected ones, its parameters and the raw "
                        "lines (file:line) to each alert")
    p.add_argument("-k", type=int, default=5, help="expected events to list (default %(default)s)")
    add_output(p, "the alerts", json_help=None)
    add_decision_options(p)
    p.set_defaults(func=run, parameter_dests={"topk": "k"})


def run(args) -> int:
    import os

    from ..detect import Detector
    from ..parse.folder import read_info
    from ..parse.grouping import IdGrouper
    from ..parse.parser import Parser
    from ..watch import NO_SESSION_LINES, Watcher, grouper_from, parser_folder, watch

    folder = parser_folder(args.model_dir, args.parsed)
    info = read_info(folder)
    parser = Parser.load(os.path.join(folder, "parser.json"), args.log_format or info.get("log_format"))
    grouper = IdGrouper(args.session) if args.session else grouper_from(info.get("grouping"), parser.format.fields)
    detector = Detector.load(args.model_dir, **decision_options(args), topk=args.k)
    import torch

    torch.set_num_threads(1)  # one event at a time: threads only wait on each other

    def malformed(name, number, why):
        if watcher.malformed <= 5:
            print(f"{name}:{number}: {why}, skipped" + (" (further ones counted only)" if watcher.malformed == 5
                                                        else ""), file=sys.stderr, flush=True)

    def note(text):
        print(f"note: {text}", file=sys.stderr, flush=True)

    watcher = Watcher(detector, parser, grouper, idle=args.idle, k=args.k, explain=args.explain,
                      on_malformed=malformed, on_note=note)
    out = open_output(args.output)
    code, summary = 0, {}
    try:
        summary = watch(watcher, args.input, out, from_end=args.from_end)
    except KeyboardInterrupt:  # the open sessions were judged and their alerts written
        code = 130
    finally:
        if out is not sys.stdout:
            out.close()
    rate = f", {summary['lines_per_second']:,} lines/s" if summary.get("lines_per_second") else ""
    outside = f", {watcher.ungrouped:,} in no session" if watcher.ungrouped else ""
    print(f"watched {watcher.lines:,} lines ({watcher.malformed:,} malformed{outside}), {watcher.alerts:,} alerts{rate}",
          file=sys.stderr)
    if watcher.ungrouped and not watcher.grouped and watcher.ungrouped < NO_SESSION_LINES:  # not said yet
        note(watcher.no_session_note())
    return code
