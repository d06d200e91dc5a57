"""Tell raw log text from event sequences, so that ``train``, ``detect``, ``calibrate``, ``compare`` and
``tune`` can point to ``seqrnn parse``."""

from __future__ import annotations

import os
import re

from ..errors import InputError

SNIFF_LINES = 200
_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}|\b\d{6} \d{6}\b")
_WORD = re.compile(r"[A-Za-z]{3,}")


def looks_like_raw_log(lines: list[str]) -> bool:
    """Whether these lines read like a raw log: most carry a timestamp, or they are sentences (several
    tokens a line, mostly words, few of them repeated) rather than sequences of event ids."""
    lines = [t for t in lines if t.strip()]
    if len(lines) < 3:
        return False
    timed = sum(1 for t in lines if _TIME.search(t))
    if timed >= 0.5 * len(lines):
        return True
    tokens = [tok for t in lines for tok in t.replace(",", " ").split()]
    if len(tokens) < 4 * len(lines):
        return False
    words = sum(1 for tok in tokens if _WORD.search(tok))
    return words >= 0.5 * len(tokens) and len(set(tokens)) > 0.3 * len(tokens)


_ADVICE = ("turn it into events first with `seqrnn parse FILE --log-format ... --out DIR` and {} DIR "
           "(or use --format text to model the text itself)")
DATA_ADVICE, TRAIN_ADVICE = _ADVICE.format("give"), _ADVICE.format("train on")


def refuse_raw_logs(paths, format: str | None, advice: str = TRAIN_ADVICE) -> None:
    """Raise :class:`InputError` for the first input file that looks like a raw log (sessions and
    stream formats only; parsed folders and standard input are not looked at); ``advice`` says what to do."""
    if format == "text":
        return
    from ..data.formats import expand_paths
    from .folder import is_parsed_folder

    for p in ([paths] if isinstance(paths, str) else paths):
        if p == "-" or is_parsed_folder(p) or os.path.isfile(os.path.join(p, "shards.json")):  # (or shards)
            continue
        for path in expand_paths([p]):
            if path == "-" or not os.path.isfile(path):
                continue
            with open(path, "rb") as fh:
                head = [raw.decode("utf-8", "replace") for _, raw in zip(range(SNIFF_LINES), fh)]
            if looks_like_raw_log(head):
                raise InputError("this looks like raw log text (timestamps, free words), not event sequences: "
                                 + advice, path)


def refuse_raw_logs_for(paths, format: str | None, model_dir: str, verb: str) -> None:
    """:func:`refuse_raw_logs` for input given to the model in ``model_dir``, saying how to parse it for this
    model (with its own parser, when it was trained on a parsed folder); ``verb``: what the command then does
    with the parsed folder (``detect``, ``calibrate``)."""
    parser = os.path.join(model_dir, "parser")
    where = "in" if verb == "detect" else "on"
    if os.path.isdir(parser):
        advice = (f"parse it with this model's parser, `seqrnn parse FILE --resume {parser} --out DIR`, and "
                  f"{verb} {where} DIR"
                  + (f" (or follow it live: `seqrnn watch {model_dir} FILE`)" if verb == "detect" else ""))
    else:
        advice = (f"turn it into events with `seqrnn parse` as the training data was, and {verb} {where} the "
                  "parsed folder")
    refuse_raw_logs(paths, format, advice)
