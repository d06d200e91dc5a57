"""``seqrnn calibrate``: learn (or learn again) a model's detector on normal sequences.

For a model directory whose training finished without a detector (``train --no-calibration``, or a
calibration that was stopped) and for one whose detector should be learned on other normal data. The
Detector is fitted exactly as ``seqrnn train`` fits it: the model's own validation split of the given
sequences (or ``--validation``) for the surprise threshold, the rest for the count profiles.
"""

from __future__ import annotations

import sys

from .args import add_input, add_threads, add_validation_file, read_inputs


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="learn a model's detector (its thresholds) on normal sequences",
                       description="Learn the detector of a trained model on normal sequences and save it beside "
                                   "the model (detector.json, detector.safetensors); the directory is then complete "
                                   "and detect accepts it. Use the model's training data, or other normal data.")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    add_input(p, help="normal sequences: files, folders or globs ('-' reads standard input)")
    add_validation_file(p)
    p.add_argument("--target-fpr", type=float, default=None,
                   help="false-positive rate targeted (default 0.001); the rate promised can be higher with few normal "
                        "sequences (the summary says it)")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary line")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import modeldir
    from ..detect import DEFAULT_TARGET_FPR, Detector
    from ..errors import ModelFileError
    from ..models.base import SequenceModel, load

    model = load(args.model_dir)  # refuses an unfinished training, saying how to finish it
    if not isinstance(model, SequenceModel):
        raise ModelFileError("is not a next-event model (a classifier decides with its own threshold)",
                             args.model_dir)
    seqs = read_inputs(args, model)
    valid = read_inputs(args, model, paths=[args.validation_file]) if args.validation_file else None
    target = DEFAULT_TARGET_FPR if args.target_fpr is None else args.target_fpr
    with modeldir.writing(args.model_dir):
        detector = Detector(model, target_fpr=target).fit(seqs, validation_data=valid)
        detector.save(args.model_dir)
    if not args.quiet:
        print(f"calibrated {args.model_dir} on {len(seqs):,} sequences; {detector.describe()}", file=sys.stderr)
    return 0
