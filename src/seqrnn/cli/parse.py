"""``seqrnn parse``: raw log lines -> event ids (drain3 templates), sessions, and the way back."""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "parse", help="mine templates from raw log lines and group them into sessions (a parsed folder)",
        description="Read raw log lines, mine their templates with drain3 (after masking their variable parts) "
                    "and write a parsed folder: events (one id per line), sessions when grouped, templates.csv, "
                    "lines.csv (file and line of each event), parameters, the parser state. Every command that "
                    "reads sequences accepts the folder. Lines that do not fit --log-format (or are not text, or "
                    "are longer than 1 MiB) are counted, listed in malformed.csv and skipped.")
    p.add_argument("inputs", nargs="+", metavar="PATH", help="raw log files, folders or globs ('-': standard input)")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="the parsed folder to write (not a model directory)")
    p.add_argument("--log-format", metavar="FORMAT",
                   help="fields of a line, Loghub style: '<Date> <Time> <Level> <Component>: <Content>'; "
                        "<Content> is the message (default: the whole line; with --resume: the saved one)")
    p.add_argument("--resume", metavar="DIR",
                   help="start from the parser state of this parsed folder: known templates keep their ids, "
                        "new ones are numbered after them; its log format and grouping apply unless given")
    m = p.add_argument_group("masking and mining (saved in the parser state; --resume keeps them)")
    m.add_argument("--mask", nargs="*", metavar="KIND", default=None,
                   help="kinds of variable tokens: digits (numbers, IPs, ids, times), paths, hex (default: all)")
    m.add_argument("--mask-pattern", action="append", default=[], metavar="REGEX", dest="mask_patterns",
                   help="a regular expression masked in the whole message first (repeatable)")
    m.add_argument("--sim-th", type=float, help="drain similarity threshold (default 0.5)")
    m.add_argument("--depth", type=int, help="drain prefix tree depth (default 4)")
    m.add_argument("--no-strict-words", action="store_true",
                   help="let templates that differ in a plain word merge at once (drain's rule)")
    m.add_argument("--word-values", type=int,
                   help="templates differing in one word alone merge into one event once this many (default 5)")
    g = p.add_argument_group("grouping into sessions (at most one; default: one stream)")
    g.add_argument("--session", metavar="REGEX",
                   help="session ids found in the line, e.g. 'blk_-?\\d+' (with a group, the id is its first "
                        "group: 'instance: ([0-9a-f-]+)'); a line with several ids joins each")
    g.add_argument("--session-field", metavar="FIELD", help="a field of --log-format holds the session id")
    g.add_argument("--session-lines", type=int, metavar="N", help="every N lines are a session")
    g.add_argument("--window", type=float, metavar="SECONDS", help="time windows of this many seconds")
    g.add_argument("--step", type=float, metavar="SECONDS",
                   help="start a window every SECONDS (sliding; default: the window: fixed windows)")
    g.add_argument("--time-fields", nargs="+", metavar="FIELD",
                   help="fields that hold the time (default: Date, Time, Timestamp among the format's)")
    g.add_argument("--time-format", metavar="STRPTIME", help="format of the time fields, e.g. '%%y%%m%%d %%H%%M%%S'")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on standard error")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run, parameter_dests={"masks": "mask", "log_format": "log_format"})


def make_parser(args):
    """The :class:`~seqrnn.parse.parser.Parser` the flags describe (or the resumed one)."""
    import os

    from ..errors import InputError
    from ..parse.folder import read_info
    from ..parse.miner import MinerSettings
    from ..parse.parser import Parser, ParserSettings

    if args.resume:
        if os.path.realpath(args.resume) == os.path.realpath(args.out):
            raise InputError(f"--out {args.out} is the --resume folder: parse into a new folder (this parse's "
                             "events would replace the folder's, and a parse stopped half-way would leave "
                             "neither)")
        info = read_info(args.resume)
        given = [f for f, v in (("--mask", args.mask), ("--mask-pattern", args.mask_patterns), ("--sim-th", args.sim_th),
                                ("--depth", args.depth), ("--word-values", args.word_values),
                                ("--no-strict-words", args.no_strict_words)) if v]
        if given:
            raise InputError(f"{', '.join(given)}: a resumed parser keeps its masking and mining settings")
        return Parser.load(os.path.join(args.resume, "parser.json"), args.log_format or info.get("log_format"))
    miner = MinerSettings()
    for name in ("sim_th", "depth", "word_values"):
        if getattr(args, name) is not None:
            setattr(miner, name, getattr(args, name))
    miner.strict_words = not args.no_strict_words
    settings = ParserSettings(log_format=args.log_format, miner=miner)
    if args.mask is not None:
        settings.masks = tuple(args.mask)
    settings.mask_patterns = tuple(args.mask_patterns)
    return Parser(settings)


def run(args) -> int:
    from ..parse.grouping import grouper
    from ..parse.pipeline import parse_logs

    import math

    from ..errors import InputError

    for name in ("window", "step"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value >= 1e-3):
            raise InputError(f"{name} must be a finite number of seconds >= 0.001, not {value}", params=name)
    import os

    if any(os.path.isfile(os.path.join(args.out, name)) for name in ("config.json", "status.json")):
        raise InputError(f"--out {args.out} is a model directory: parse into a folder of its own (its files "
                         "would lie among the model's)", params="out")
    parser = make_parser(args)
    group = grouper(args.session, args.session_field, args.session_lines, args.window, args.step,
                    args.time_fields, args.time_format, parser.format.fields)
    if group is None and args.resume:  # the resumed folder's grouping, unless another is given
        from ..parse.folder import read_info
        from ..watch import grouper_from

        group = grouper_from(read_info(args.resume).get("grouping"), parser.format.fields)
    shown = []

    def malformed(name, number, why):
        if len(shown) < 5:
            print(f"{name}:{number}: {why}, skipped", file=sys.stderr)
        shown.append(1)

    def progress(lines, seconds):
        if not args.quiet:
            print(f"\r{lines:,} lines, {lines / seconds:,.0f} lines/s", end="", file=sys.stderr, flush=True)

    known = {e for e, _, _ in parser.miner.events()} if args.resume else None
    summary = parse_logs(args.inputs, args.out, parser, group, progress=progress, malformed=malformed)
    if known is not None:  # what a model trained on the resumed folder never saw: detect can only see it in sessions
        summary["new_templates"] = len({e for e, _, _ in parser.miner.events()} - known)
    if summary["lines"] >= 50_000 and not args.quiet:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif not args.quiet:
        more = f" ({summary['malformed'] - 5:,} more in malformed.csv)" if summary["malformed"] > 5 else ""
        sessions = f", {summary['sessions']:,} sessions" if summary["sessions"] is not None else ""
        if summary.get("ungrouped"):
            lines = "line" if summary["ungrouped"] == 1 else "lines"
            sessions += f" ({summary['ungrouped']:,} {lines} in none, the first {summary['first_ungrouped']})"
        new = (f" ({summary['new_templates']:,} new: not in {args.resume})" if summary.get("new_templates")
               else "")
        print(f"{args.out}: {summary['events']:,} events of {summary['lines']:,} lines, {summary['templates']:,} "
              f"templates{new}{sessions}; {summary['malformed']:,} malformed{more}; "
              f"{summary['lines_per_second'] or 0:,} lines/s", file=sys.stderr)
    return 0
