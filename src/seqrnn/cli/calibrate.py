"""``seqrnn calibrate``: fold normal sequences into a model's detector, or calibrate one from scratch.

For a model directory whose training finished without a detector (``train --no-calibration``, or a
calibration that was stopped), ``--refit``, or a detector of an earlier seqrnn, the Detector is fitted
exactly as ``seqrnn train`` fits it, on the sequences given. Otherwise the sequences (for instance false
positives an operator confirmed) are added to the existing calibration and count profiles.
"""

from __future__ import annotations

import json
import sys

from .args import add_input, add_threads, add_validation_file, read_inputs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="learn a model's detector, or feed normal sequences (confirmed false positives) back",
        description="Fold normal sequences (for instance false positives an operator confirmed) into the "
                    "detector's calibration and count profiles, without retraining: they are no longer flagged, "
                    "and the promised false-positive rate is recomputed with the new number of calibration "
                    "sequences. With --fine-tune the network is also trained on them (DeepLog's online update). "
                    "A model directory without a detector (train --no-calibration, or a calibration that was "
                    "stopped), or --refit, is calibrated from scratch on the sequences given, as seqrnn train "
                    "does: give it the training data. The model directory is updated atomically; the detector "
                    "files are written beside the model (detector.json, detector.safetensors). Prints the "
                    "false-positive rate now promised and the calibration sessions beyond the cuts.")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    add_input(p, help="normal sequences: files, folders or globs ('-' reads standard input)")
    add_validation_file(p)
    p.add_argument("--refit", action="store_true",
                   help="calibrate from scratch on these sequences (the training data) instead of adding them")
    p.add_argument("--target-fpr", type=float, default=None,
                   help="a new false-positive rate for all views (default: the detector's, or 0.003)")
    p.add_argument("--leave-out-outliers", action="store_true",
                   help="with --refit (or no detector yet): training sessions beyond the first cuts are no count "
                        "profiles, as seqrnn train --leave-out-outliers")
    p.add_argument("--fine-tune", action="store_true", help="also train the network on the sequences")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default 3)")
    p.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: a tenth of the "
                                                          "model's)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="print nothing but errors (no progress, no promise; seqrnn info shows it)")
    p.add_argument("--json", action="store_true",
                   help="print the new calibration as JSON (promised_fpr, the cuts, training_outliers)")
    add_threads(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import modeldir
    from ..detect import DEFAULT_TARGET_FPR, Detector, has_detector_file
    from ..errors import InputError, ModelFileError
    from ..feedback import FINE_TUNE_EPOCHS, fine_tune
    from ..models.base import SequenceModel, load

    model = load(args.model_dir)  # refuses an unfinished training, saying how to finish it
    if not isinstance(model, SequenceModel):
        raise ModelFileError("is not a next-event model (a classifier decides with its own threshold)",
                             args.model_dir)
    from ..parse.sniff import refuse_raw_logs_for

    # folded in, a raw log's words would become known events and its lines count profiles
    refuse_raw_logs_for(args.inputs, args.format or model.format_, args.model_dir, "calibrate")
    seqs = read_inputs(args, model)
    valid = read_inputs(args, model, paths=[args.validation_file]) if args.validation_file else None
    with modeldir.writing(args.model_dir):
        detector = None
        if not args.refit:
            try:
                detector = Detector.load(args.model_dir, model)
            except ModelFileError as exc:
                if not args.quiet:  # why, where a detector file was there and refused
                    why = f" ({exc})" if has_detector_file(args.model_dir) else ""
                    print(f"no detector to add to{why}; calibrating from scratch on the sequences given",
                          file=sys.stderr)
        if detector is not None and args.leave_out_outliers:
            raise InputError("--leave-out-outliers sets how a calibration from scratch treats the training "
                             "sessions; adding normal sequences keeps the profiles: give --refit with the "
                             "training data")
        if args.leave_out_outliers:  # before --fine-tune changes the weights
            from ..detect import refuse_leave_out

            refuse_leave_out(model, seqs, valid)
        if args.fine_tune:
            fine_tune(model, seqs, epochs=args.epochs or FINE_TUNE_EPOCHS, lr=args.lr)
        if detector is None:
            target = DEFAULT_TARGET_FPR if args.target_fpr is None else args.target_fpr
            detector = Detector(model, target_fpr=target, leave_out_outliers=args.leave_out_outliers).fit(
                seqs, validation_data=valid, verbose=0 if args.quiet else 1)
            action = f"calibrated {args.model_dir} on {len(seqs):,} sequence{'s' * (len(seqs) != 1)}"
        else:
            if args.target_fpr is not None:
                detector = detector.with_target_fpr(args.target_fpr)
            detector.add_normal(seqs)
            action = f"added {len(seqs):,} normal sequence{'s' * (len(seqs) != 1)}"
        if args.fine_tune:
            model.save(args.model_dir)  # weights first: the detector names their fingerprint
        detector.save(args.model_dir)
    if args.json:
        print(json.dumps(detector.calibration, indent=2))
    elif not args.quiet:
        print(f"{action}: {detector.promise_text()}", file=sys.stderr)
        if detector.outliers_text():
            print(f"note: {detector.outliers_text()}", file=sys.stderr)
    return 0
