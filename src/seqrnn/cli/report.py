"""``seqrnn report``: one self-contained HTML page about a model, a comparison, a search or a demo run."""

from __future__ import annotations

import os
import sys

REPORT = "report.html"  # the file's name, also inside a folder given as --output


def add_parser(sub) -> None:
    from .args import PREVALENCE_HDFS, add_input, add_labelled, add_threads

    p = sub.add_parser(
        "report", help="write one self-contained HTML page about a model, a compare output or a tune study",
        description="Write one HTML file (figures inside it, no script, nothing fetched) about DIR: a model "
                    "directory (data, model, calibration, training curves; with data to judge, detection, and "
                    "with --normal/--abnormal its metrics, ROC and PR curves; anomalous sequences drawn event by "
                    "event with the expected events and template text; a text model's samples; a classifier's metrics "
                    "on --normal/--abnormal), a compare "
                    "output folder (its table and ROC), a tune study file (trials and plots), or a demo's run "
                    "folder (all of them).")
    p.add_argument("path", metavar="DIR", help="model directory, compare output folder, tune study file or demo run")
    add_input(p, required=False, help="sequences to judge with the model (files, folders, globs)")
    add_labelled(p, required=False, title="labelled data (metrics, ROC and PR)", what="test sequences")
    p.add_argument("--train", nargs="+", metavar="PATH", default=[],
                   help="the training sequences, for the data section (sizes, lengths)")
    p.add_argument("--templates", metavar="FILE",
                   help="event templates (default: a templates.csv beside the data, if there is one)")
    p.add_argument("--prevalence", type=float,
                   help="share of anomalies for precision, F1 and the PR curve (default: the test set's; "
                        "HDFS full data: %.4f)" % PREVALENCE_HDFS)
    p.add_argument("--title", help="the page's title")
    p.add_argument("--output", "-o", metavar="FILE", default=REPORT,
                   help="the HTML file, or an existing folder to write FOLDER/%s in (default: %%(default)s)"
                        % REPORT)
    add_threads(p, "; the model scores the data given with them")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..artifacts import atomic_write_text
    from ..errors import InputError
    from ..report.page import Data, build
    from .args import check_labels_apart, read_inputs

    if args.prevalence is not None and not 0.0 < args.prevalence < 1.0:
        raise InputError(f"prevalence must be in (0, 1), not {args.prevalence}", params="prevalence")
    if (args.normal is None) != (args.abnormal is None):
        raise InputError("labelled data needs both --normal and --abnormal")
    check_labels_apart(args.normal, args.abnormal)
    data = Data(train=args.train, inputs=args.inputs, normal=args.normal or [], abnormal=args.abnormal or [],
                templates=args.templates, prevalence=args.prevalence,
                read=lambda paths, model: read_inputs(args, model, paths=list(paths),
                                                     model_dir=args.path if os.path.isdir(args.path) else None))
    output = os.path.join(args.output, REPORT) if os.path.isdir(args.output) else args.output
    page = build(args.path, data, args.title)
    atomic_write_text(output, page)  # makes the folders it needs
    size = f"{len(page) / 1e6:.1f} MB" if len(page) >= 100_000 else f"{max(1, round(len(page) / 1e3))} kB"
    print(f"report: {output} ({size}, self-contained)", file=sys.stderr)
    return 0
