"""``seqrnn calibrate``: fold normal sequences into a model's detector, or calibrate one from scratch."""

from __future__ import annotations

import json
import sys

from .args import add_input


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="feed normal sequences (confirmed false positives) back into a model's detector",
        description="Fold normal sequences (for instance false positives an operator confirmed) into the "
                    "detector's calibration and count profiles, without retraining: they are no longer flagged, "
                    "and the promised false-positive rate is recomputed with the new number of calibration "
                    "sequences. With --fine-tune the network is also trained on them (DeepLog's online update). "
                    "A model directory without a detector (a training that was stopped), or --refit, is "
                    "calibrated from scratch on the sequences given, as seqrnn train does: give it the "
                    "training data. The model directory is updated atomically.")
    p.add_argument("model_dir", metavar="MODEL")
    add_input(p, help="normal sequences: files, folders or globs ('-' reads standard input)")
    p.add_argument("--refit", action="store_true",
                   help="calibrate from scratch on these sequences (the training data) instead of adding them")
    p.add_argument("--target-fpr", type=float, default=None,
                   help="a new false-positive rate for all views (default: the detector's, or 0.001)")
    p.add_argument("--fine-tune", action="store_true", help="also train the network on the sequences")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default 3)")
    p.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: a tenth of the "
                                                          "model's)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.add_argument("--json", action="store_true", help="print the new calibration as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..detect import DEFAULT_TARGET_FPR, Detector
    from ..errors import ModelFileError
    from ..feedback import FINE_TUNE_EPOCHS, fine_tune
    from ..models.base import load_next_event_model
    from .args import read_inputs

    model = load_next_event_model(args.model_dir)
    seqs = read_inputs(args, model)
    detector = None
    if not args.refit:
        try:
            detector = Detector.load(args.model_dir, model)
        except ModelFileError as exc:
            if not args.quiet:
                print(f"no detector to add to ({exc}); calibrating from scratch on the sequences given",
                      file=sys.stderr)
    if args.fine_tune:
        fine_tune(model, seqs, epochs=args.epochs or FINE_TUNE_EPOCHS, lr=args.lr)
    if detector is None:
        target = args.target_fpr or DEFAULT_TARGET_FPR
        detector = Detector(model, target_fpr=target).fit(seqs, verbose=0 if args.quiet else 1)
        action = f"calibrated on {len(seqs):,} sequences"
    else:
        if args.target_fpr is not None:
            detector = detector.with_target_fpr(args.target_fpr)
        detector.add_normal(seqs)
        action = f"added {len(seqs):,} normal sequences"
    if args.fine_tune:
        model.save(args.model_dir)  # weights first: the detector names their fingerprint
    detector.save(args.model_dir)
    if args.json:
        print(json.dumps(detector.calibration, indent=2))
    elif not args.quiet:
        print(f"{action}: {detector.promise_text()}", file=sys.stderr)
    return 0
