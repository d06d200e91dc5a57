"""``seqrnn info``: what a model directory holds."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="architecture, parameters, vocabulary and training summary of a model",
                       description="What a model directory holds: the architecture, parameters, vocabulary, "
                                   "training, and the detector: its cuts, the false-positive rate it promises, "
                                   "and the training sessions beyond its cuts (file:line).")
    p.add_argument("model_dir", metavar="MODEL", help="a model directory written by seqrnn train")
    p.add_argument("--json", action="store_true",
                   help="print it as JSON: settings, training, calibration (with training_outliers and "
                        "count.left_out), promised_fpr, calibration_sequences, detector_error, versions")
    p.epilog = ("Exit status 2 when the model has a detector file that cannot be used (damaged, edited, or "
                "learned for another model): the rest is shown, and the reason on stderr.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..artifacts import read_config
    from ..detect import Detector, has_detector_file
    from ..errors import ModelFileError
    from ..models.base import SequenceModel, load

    model = load(args.model_dir)  # first: it refuses a directory whose training did not finish, saying why
    config = read_config(args.model_dir, ("seqrnn-model", "seqrnn-classifier"))
    try:  # a next-event model has a detector beside it once its training finished
        detector = Detector.load(args.model_dir, model) if isinstance(model, SequenceModel) else None
    except ModelFileError as exc:
        detector, missing = None, str(exc)
    else:
        missing = None
    # a refused detector file is shown like the rest, and the exit status says so
    refused = missing is not None and has_detector_file(args.model_dir)
    vocab = getattr(model, "vocab_", None)
    info = {
        "model_dir": args.model_dir, "kind": config["kind"], "settings": config["settings"],
        "parameters": model.n_parameters(),
        "vocabulary_size": len(vocab) if vocab is not None else None,
        "events": len(vocab) - 4 if vocab is not None else None,
        "data_format": config.get("data_format"), "training": config.get("training"),
        "calibration": detector.calibration if detector is not None else None, "versions": config.get("versions"),
        # the promise: the false-positive rate on normal data, and the calibration sequences it rests on
        "promised_fpr": detector.promised_fpr if detector is not None else None,
        "calibration_sequences": detector.calibration_.n if detector is not None else None,
        "detector_error": missing,
    }
    if args.json:
        from ..artifacts import finite_json

        print(finite_json(info, args.model_dir, indent=2))
        return _refused(args, missing) if refused else 0
    lines = model.describe()
    if detector is not None:
        lines.append(detector.describe())
        if detector.outliers_text():
            lines.append(f"note       {detector.outliers_text(indent=' ' * 11)}")
    elif missing:
        lines.append(f"detection  {'refused' if refused else 'none'}: {missing}")
    print("\n".join(lines))
    return _refused(args, missing) if refused else 0


def _refused(args, message: str) -> int:
    print(f"seqrnn info: error: the detector cannot be used: {message}", file=sys.stderr)
    return 2
