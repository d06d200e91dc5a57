"""The ``seqrnn`` command: one module per command in this package, each with
``add_parser(sub)`` (argparse only: no torch or numpy at import, so that
``--help`` and argument errors answer at once) that sets ``func`` to the
function running the command. The argument groups several commands share
live in :mod:`seqrnn.cli.args`.

Library errors name Python parameters (``top_k must be >= 0``); :func:`main`
prints the flag the command declares for each instead (``--top-k``), found
from the parser: a flag's ``dest`` is the parameter it is passed to. Where a
command passes a flag to a parameter of another name, it says so with
``set_defaults(parameter_dests={parameter: dest})``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import InputError, Interrupted, SeqrnnError

COMMANDS: tuple[str, ...] = ("train", "evaluate", "predict", "detect", "evaluate-detection", "info", "demo",
                             "generate", "compare", "tune", "classify", "report", "parse", "watch", "calibrate", "encode")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="seqrnn",
        description="Learn the grammar of event sequences with recurrent networks; predict the next event "
                    "and find the sequences and events that do not fit.",
    )
    parser.add_argument("--version", action="version", version=f"seqrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __name__).add_parser(sub)
    return parser


def flag_names(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """Parameter -> flag, for the command ``args`` were parsed for: each option's ``dest`` to its
    first long option string (``top_k`` -> ``--top-k``), the command's own over the top level's."""
    names: dict[str, str] = {}
    while parser is not None:
        inner = None
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                inner = action.choices.get(getattr(args, action.dest, None))
            elif action.option_strings:
                names[action.dest] = next((o for o in action.option_strings if o.startswith("--")),
                                          action.option_strings[0])
        parser = inner
    for parameter, dest in (getattr(args, "parameter_dests", None) or {}).items():
        if dest in names:
            names[parameter] = names[dest]
    return names


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the command ``args`` were parsed for (``classify train``'s for it)."""
    while True:
        inner = next((a.choices.get(getattr(args, a.dest, None)) for a in parser._actions
                      if isinstance(a, argparse._SubParsersAction)), None)
        if inner is None:
            return parser
        parser = inner


def error_message(exc: SeqrnnError, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The error as the command line says it: with its flags where the library names parameters."""
    return exc.renamed(flag_names(parser, args)) if isinstance(exc, InputError) and exc.params else str(exc)


class ClosedOutput:
    """Standard output when the command was started with it closed (``>&-``): writing is an error."""

    def write(self, text: str) -> int:
        raise OSError(9, "standard output is closed")

    def flush(self) -> None:
        pass


class Diagnostics:
    """Standard error that may be closed (``2>&-``) or whose reader may go away (``seqrnn train ... 2>&1 |
    head``): once a write fails, later ones are dropped, so that losing the progress lines never stops
    the work (a training, a parse); standard output, the results, still stops the command."""

    def __init__(self, stream):
        self.stream, self.gone = stream, stream is None

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except (OSError, ValueError):  # a closed pipe, a closed or read-only descriptor
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.gone = True

    def isatty(self) -> bool:
        try:
            return not self.gone and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name):  # fileno, encoding...: the stream's own
        if self.stream is None:
            raise AttributeError(name)
        return getattr(self.stream, name)


def _terminate(signum, frame):
    from ..errors import Terminated

    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:
        sys.stdout = ClosedOutput()
    stderr = sys.stderr
    if not isinstance(stderr, Diagnostics):
        sys.stderr = Diagnostics(stderr)
    try:
        return _main(argv)
    finally:
        if isinstance(sys.stderr, Diagnostics) and sys.stderr.stream is stderr:
            sys.stderr = stderr


def _main(argv: list[str] | None) -> int:
    import signal
    import threading

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser (its usage, 'seqrnn detect: error:'), not the top level's
        command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    previous = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM stops a command as Ctrl-C does (a training saves its checkpoint first), exit status 143.
        previous = signal.signal(signal.SIGTERM, _terminate)
    from .. import runtime

    runtime.configure()  # before any command imports torch (seqrnn.runtime says why)
    runtime.set_threads(getattr(args, "threads", None))
    try:
        from .args import no_empty_paths, outputs_apart, plot_folder_writable

        no_empty_paths(args)
        outputs_apart(args)  # an --output that is an input would replace it
        plot_folder_writable(args)
        return args.func(args)
    except SeqrnnError as exc:
        print(f"seqrnn {args.command}: error: {error_message(exc, parser, args)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"seqrnn {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"seqrnn {args.command}: error: out of memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("\ninterrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    except Interrupted as exc:  # a training inside the command (a calibration's cross-fitting copy) stopped
        print("\ninterrupted", file=sys.stderr)
        return exc.exit_code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
