"""The ``seqrnn`` command: one module per command in this package, each with
``add_parser(sub)`` (argparse only: no torch or numpy at import, so that
``--help`` and argument errors answer at once) that sets ``func`` to the
function running the command. The argument groups several commands share
live in :mod:`seqrnn.cli.args`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import SeqrnnError

COMMANDS: tuple[str, ...] = ("train", "evaluate", "predict", "detect", "evaluate-detection", "info", "demo",
                             "generate", "compare", "tune", "classify")


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
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
