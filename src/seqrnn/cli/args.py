"""The argument groups that several commands share, and reading inputs and writing outputs.

Argparse only at import (no torch, no numpy): ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..datasets import PREVALENCE_HDFS  # noqa: F401  (help texts quote it)


FORMATS = ("sessions", "stream", "text")
MAX_LENGTH = 100_000  # seqrnn.data.formats.DEFAULT_MAX_LENGTH (that module loads numpy)


# --- numbers -----------------------------------------------------------------------------------
def seconds(text: str) -> float:
    """argparse type: a finite number of seconds above zero (``nan``, ``inf``, ``0``, ``-1`` refused)."""
    import math

    value = float(text)  # a ValueError: argparse says "invalid seconds value"
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, not {text}")
    return value


# --- reading sequences ------------------------------------------------------------------------
def add_reading(p: argparse.ArgumentParser, default_format: str | None = None) -> None:
    """How input paths are read: ``--format``, ``--separate-files``, ``--tokens``, ``--max-length``
    (what :func:`read_inputs` passes on). ``default_format`` None: the model's format."""
    g = p.add_argument_group("reading the input")
    g.add_argument("--format", choices=FORMATS, default=default_format,
                   help="sessions: one sequence per line, optional 'id,' prefix; stream: one event per line, "
                        "files joined in name order; text: characters or words "
                        + ("(default: %(default)s)" if default_format else
                           "(default: the format the model was trained on)"))
    g.add_argument("--separate-files", action="store_true", help="stream: keep each file a sequence of its own")
    g.add_argument("--tokens", choices=("chars", "words"), default=None,
                   help="text: the unit of a token (default: the model's, or chars)")
    g.add_argument("--max-length", type=int, default=MAX_LENGTH, metavar="N",
                   help="sessions: longest line accepted, in tokens (default: %(default)s)")


def add_input(p: argparse.ArgumentParser, default_format: str | None = None, *, required: bool = True,
              help: str = "input files, folders or globs ('-' reads standard input)") -> None:
    """The input paths (``args.inputs``: ``PATH ...``, ``-`` for standard input) and
    :func:`add_reading`'s options."""
    p.add_argument("inputs", nargs="+" if required else "*", metavar="PATH", help=help)
    add_reading(p, default_format)


def add_labelled(p: argparse.ArgumentParser, *, required: bool = True, title: str = "labelled input",
                 what: str = "sequences", reading: bool = False, default_format: str | None = None):
    """``--normal PATH ...`` and ``--abnormal PATH ...`` (labelled ``what``) in an argument group
    titled ``title``, returned for more flags; with ``reading``, :func:`add_reading`'s options too
    (for a command without input paths of its own)."""
    g = p.add_argument_group(title)
    g.add_argument("--normal", nargs="+", required=required, metavar="PATH", help=f"normal {what}")
    g.add_argument("--abnormal", nargs="+", required=required, metavar="PATH", help=f"anomalous {what}")
    if reading:
        add_reading(p, default_format)
    return g


def check_labels_apart(normal, abnormal) -> None:
    """Refuse a path given as both ``--normal`` and ``--abnormal`` (its sequences would carry both labels)."""
    import os

    seen = {os.path.realpath(p) for p in normal or () if os.path.exists(p)}
    for p in abnormal or ():
        if os.path.exists(p) and os.path.realpath(p) in seen:
            from ..errors import InputError

            raise InputError("given as both --normal and --abnormal: its sequences cannot be both", p)


def add_validation_file(g) -> None:
    """``--validation FILE`` (``args.validation_file``): held-out sequences instead of a split."""
    g.add_argument("--validation", metavar="FILE", dest="validation_file",
                   help="validate on FILE instead of a split of the training data")


# --- writing results --------------------------------------------------------------------------
def add_output(p: argparse.ArgumentParser, what: str = "the results",
               json_help: str | None = "machine-readable JSON") -> None:
    """``--output/-o FILE`` (``what`` goes there instead of standard output) and, unless
    ``json_help`` is None, ``--json``."""
    p.add_argument("--output", "-o", metavar="FILE", help=f"write {what} to FILE instead of standard output")
    if json_help is not None:
        p.add_argument("--json", action="store_true", help=json_help)


# --- computing ---------------------------------------------------------------------------------
def add_threads(p: argparse.ArgumentParser, more: str = "") -> None:
    """``--threads N``: CPU threads of a command that computes (seqrnn.runtime chooses by default);
    ``more``: what the command does with them, after the default."""
    p.add_argument("--threads", type=int, metavar="N",
                   help=f"CPU threads (default: the machine's cores less the busy ones, see seqrnn.runtime){more}")


# --- deciding -----------------------------------------------------------------------------------
def add_decision_options(p: argparse.ArgumentParser) -> None:
    """The decision-time options of a :class:`~seqrnn.detect.Detector` (see :func:`decision_options`)."""
    g = p.add_argument_group("decision (default: the rule calibrated at training)")
    g.add_argument("--top-g", type=int, metavar="G",
                   help="DeepLog's rule: an event outside the top G predictions is anomalous")
    g.add_argument("--threshold", type=float, metavar="P",
                   help="an event with a probability below P is anomalous (default: calibrated at training)")
    g.add_argument("--no-counts", action="store_true", help="do not use the count-profile view")


def decision_options(args) -> dict:
    """:func:`add_decision_options`'s flags as keywords of ``Detector.load``."""
    return {"top_g": args.top_g, "threshold": args.threshold, "use_counts": not args.no_counts}


# --- model settings ----------------------------------------------------------------------------
def settings_adder(p: argparse.ArgumentParser, group):
    """``add_argument`` of ``group`` for flags that are settings of a model's constructor (the flag's
    ``dest`` is the parameter's name); each is recorded in ``args.settings`` (a tuple of dests), so
    that ``train`` passes every one it was given to a model that takes it, and refuses the others."""

    def add(*flags, **kwargs):
        action = group.add_argument(*flags, **kwargs)
        p.set_defaults(settings=(p.get_default("settings") or ()) + (action.dest,))
        return action

    return add


def given_settings(args) -> dict:
    """The settings (see :func:`settings_adder`) given on the command line: dest -> value."""
    return {k: getattr(args, k) for k in args.settings if getattr(args, k) is not None}


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (any flag overrides the preset)")
    setting = settings_adder(p, g)
    setting("--preset", choices=("deeplog", "seed", "text"),
            help="deeplog: 2x64 LSTM, Adam, window 10; seed: the 2016 model, 2x512 LSTM, dropout 0.2, "
                 "RMSprop 1e-3, length 40; text (the default with --format text): 2x512 LSTM, "
                 "dropout 0.1, AdamW 3e-3 (weight decay 0.1; another --optimizer has none unless "
                 "--weight-decay is given), schedule wsd, chunks of 50, validation every 200 steps")
    setting("--cell", choices=("lstm", "gru"), help="the recurrent cell (default: gru; lstm with --preset deeplog, "
                                                      "seed or text)")
    setting("--layers", type=int)
    setting("--hidden", type=int, help="units per recurrent layer")
    setting("--embedding-dim", type=int)
    setting("--dropout", type=float)
    setting("--weight-drop", type=float,
            help="while training, drop this fraction of the recurrent (hidden-to-hidden) weights, one mask "
                 "per batch (AWD-LSTM's weight drop; default 0)")
    setting("--mapping", choices=("many-to-many", "many-to-one"),
            help="many-to-many (default): next event at every position, each event trained once; "
                 "many-to-one: a window of --window events predicts the next (DeepLog)")
    setting("--window", type=int, help="many-to-one: events in a window")
    setting("--bidirectional", action="store_true", default=None,
            help="many-to-one only: read the window both ways (the window never holds the target)")
    t = p.add_argument_group("training")
    setting = settings_adder(p, t)
    setting("--optimizer", choices=("adam", "adamw", "rmsprop", "sgd"))
    setting("--lr", type=float, help="learning rate")
    setting("--weight-decay", type=float)
    setting("--batch-size", type=int,
            help="sequences per batch (streams: parallel rows; many-to-one: 32x this many windows)")
    setting("--epochs", type=int)
    setting("--clip", type=float, help="largest gradient norm (0: no clipping)")
    setting("--patience", type=int, help="validations (epochs, or --eval-every periods) without a better "
                                         "validation loss before stopping (0: never)")
    setting("--validation-split", type=float,
            help="fraction of the training sequences held out for validation (default 0.1)")
    add_validation_file(t)
    setting("--chunk", type=int, help="streams: steps of truncated back-propagation")
    setting("--minutes", type=float,
            help="stop training after this many minutes; with --format text or stream the whole command "
                 "(validation, calibration and saving too), and text without a size given gets a model "
                 "sized for the budget (docs/text.md)")
    setting("--schedule", choices=("constant", "cosine", "wsd"),
            help="learning rate: constant; cosine: decays to a tenth of --lr by the end of --minutes "
                 "(or of --epochs, if that comes first); wsd: held, then the same decay over the last 30%%")
    setting("--warmup", type=int, help="optimizer steps of linear learning-rate warm-up")
    setting("--eval-every", type=int, metavar="STEPS",
            help="validate (and write a history row) every STEPS optimizer steps, not only per epoch")
    t.add_argument("--sample-every", type=int, metavar="N",
                   help="print samples at temperatures 0.2, 0.5, 1.0, 1.2 after every N history rows "
                        "(epochs, or --eval-every periods)")
    t.add_argument("--sample-prompt", default=None, help="the prompt of those samples (default: none)")
    setting("--min-count", type=int, help="tokens seen fewer times in training are unknown")
    setting("--threads", type=int, help="CPU threads (default: the machine's cores less the busy ones)")
    setting("--device", help="auto (default: a GPU if there is one), cpu, cuda or cuda:N; on a GPU in bf16 "
                             "autocast (scoring and detection run on the CPU)")
    setting("--precision", choices=("auto", "float32", "bfloat16"),
            help="the training steps' products: auto (default) is bfloat16 autocast on a GPU, float32 on a CPU, "
                 "except that a text model sized by --minutes trains in bfloat16 where this processor multiplies "
                 "it faster (AVX-512 BF16, AMX); bfloat16 or float32 everywhere. Weights, scoring and generation "
                 "stay float32")
    setting("--seed", type=int, help="random seed (default 0): same seed, same weights")
    t.add_argument("--target-fpr", type=float, default=None,
                   help="false-positive rate on normal data that all detection views share, per session (per "
                        "event for a stream; default 0.003); the rate promised is stated, and n training "
                        "sessions cannot back one below V/(n+1) for V views")
    t.add_argument("--leave-out-outliers", action="store_true",
                   help="training sessions beyond the first cuts are no count profiles, so a failure among the "
                        "training data hides no anomaly like it; their normal twins in new data then fire beyond "
                        "the promise (default: every training session is a profile). For sessions calibrated on the training "
                        "data: refused with a count baseline (--model unseen/length/count/combined), --validation, a "
                        "stream or text, or --no-calibration, where it would change nothing")


# --- reading and writing ------------------------------------------------------------------------
def read_inputs(args, model=None, paths=None, model_dir: str | None = None):
    """The sequences of ``paths`` (default: ``args.inputs``) read as :func:`add_reading`'s flags say,
    in ``model``'s format and text unit by default; a parsed folder's event ids checked against the parser
    of the model in ``model_dir`` (default: ``args.model_dir``)."""
    from ..data.formats import read_sequences

    fmt = args.format or (model.format_ if model is not None else "sessions")
    if getattr(args, "tokens", None) and fmt != "text":  # else the text would be read as lines of tokens
        from ..errors import InputError

        raise InputError(f"--tokens {args.tokens} applies to --format text; these inputs are read as {fmt}: "
                         "give --format text too")
    tokens = getattr(args, "tokens", None) or (model.text_tokens_ if model is not None else "chars")
    model_dir = model_dir or getattr(args, "model_dir", None)
    if getattr(model, "vocab_", None) is not None and model_dir:
        from ..parse.folder import check_event_ids

        check_event_ids(paths or args.inputs, model_dir)  # a log parsed anew numbers its events otherwise
    return read_sequences(paths or args.inputs, fmt, separate_files=getattr(args, "separate_files", False),
                          max_length=getattr(args, "max_length", MAX_LENGTH), text_tokens=tokens)


def open_output(path: str | None):
    if not path or path == "-":
        return sys.stdout
    from ..artifacts import make_folder_of

    make_folder_of(path)
    return open(path, "w", encoding="utf-8")


# files of a model directory (its parser copy, a compare folder) that --output must not replace
READ_FILES = {"config.json", "model.safetensors", "detector.json", "detector.safetensors", "status.json",
              "history.csv", "parser.json", "parse.json", "templates.csv", "compare.json", "compare.csv"}


# Flags that name a path to write, whichever command has them: an empty one is no path (the OS's
# "No such file or directory" named none). detect's and the like's --output "" keep meaning standard output.
PATH_FLAGS = {"model_dir": "the model directory", "output_dir": "--output-dir", "out": "--out", "study": "--study"}
FOLDER_OUTPUT_COMMANDS = ("encode", "report")  # their --output is a folder or page, never standard output


def no_empty_paths(args) -> None:
    """Refuse a path flag given as an empty string, naming the flag."""
    from ..errors import InputError

    flags = dict(PATH_FLAGS)
    if getattr(args, "command", None) in FOLDER_OUTPUT_COMMANDS:
        flags["output"] = "--output"
    if getattr(args, "command", None) == "report":
        flags["path"] = "DIR"
    for attr, flag in flags.items():
        if getattr(args, attr, None) == "":
            raise InputError(f"{flag} is an empty path: give it one")


def outputs_apart(args) -> None:
    """Refuse an ``--output`` FILE that is a file the command reads: one of its inputs (``PATH``,
    ``--normal``, ``--abnormal``, ``--train``, ``--validation``, ``--templates``, a folder's files) or a file
    of its model directory. Written at the end, it would replace what was read: the data or the model lost."""
    output = getattr(args, "output", None)
    if not isinstance(output, str) or output == "-" or not os.path.isfile(output):
        return
    from ..data.formats import expand_paths
    from ..errors import InputError

    target = os.path.realpath(output)
    paths = [*(getattr(args, "inputs", None) or []), getattr(args, "input", None),
             *(getattr(args, "normal", None) or []), *(getattr(args, "abnormal", None) or []),
             *(getattr(args, "train", None) or []), getattr(args, "validation_file", None),
             getattr(args, "templates", None)]
    for p in paths:
        if isinstance(p, str) and p != "-" and os.path.exists(p) and target in {
                os.path.realpath(f) for f in expand_paths([p]) if f != "-"}:
            raise InputError(f"--output {output} is one of the inputs: writing it would replace the data read")
    for folder in (getattr(args, "model_dir", None), getattr(args, "path", None)):  # (report's DIR or study)
        if not isinstance(folder, str) or not os.path.exists(folder):
            continue
        base = os.path.realpath(folder)
        inside = os.path.relpath(target, base) if target.startswith(base + os.sep) else None
        if target == base or (inside is not None and (os.path.basename(inside) in READ_FILES
                                                      or inside.split(os.sep)[0] in ("checkpoint", "data"))):
            raise InputError(f"--output {output} is a file of {folder}, which the command reads: writing it would "
                             "damage it")


def plot_folder_writable(args) -> None:
    """Refuse a ``--plot`` DIR that is a file, or lies under one, before the work whose plots it would hold
    (found only when writing them, it lost the results: evaluate-detection printed no metrics)."""
    plot = getattr(args, "plot", None)
    if not isinstance(plot, str) or not plot:
        return
    from ..errors import InputError

    there = plot
    while there and not os.path.exists(there):
        there = os.path.dirname(there)
    if there and not os.path.isdir(there):
        raise InputError(f"--plot {plot} names the folder of the plots, but {there} is a file")


@contextlib.contextmanager
def output_file(path: str | None):
    """Where a command writes its result: standard output for no path or ``-``; else a file that appears
    whole when the command is done (:func:`seqrnn.artifacts.atomic_file`), so that a killed or failed run
    leaves the previous file, not part of a new one. A path that exists and is no regular file (``/dev/null``,
    a pipe) is written as it is."""
    if not path or path == "-":
        yield sys.stdout
    elif os.path.exists(path) and not os.path.isfile(path):
        with open(path, "w", encoding="utf-8") as out:
            yield out
    else:
        from ..artifacts import atomic_file

        with atomic_file(os.path.realpath(path) if os.path.islink(path) else path) as out:  # a link stays one
            yield out


def emit(args, text: str) -> None:
    with output_file(getattr(args, "output", None)) as out:
        out.write(text if text.endswith("\n") else text + "\n")
