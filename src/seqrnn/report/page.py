"""The HTML report of a folder: a model directory (with data to judge it on, if given), a compare output,
a tune study, or a demo's run folder (all of these together).

:func:`build` finds what ``path`` is and returns the page (see :mod:`.html`); each ``*_sections``
function returns ``(anchor, title, body)`` sections. Nothing here writes beside the inputs.
"""

from __future__ import annotations

import csv
import datetime
import json
import linecache
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from . import html as H
from .findings import load_templates, token_name
from .summary import counts_by_reason, promise, promise_text, readable_event

RUN_FILE = "run.json"  # a demo's run folder: what the run used, relative to the folder
EXAMPLES = 6  # anomalous sequences shown event by event
TEMPERATURES = (0.2, 0.5, 1.0, 1.2)


@dataclass
class Data:
    """What to judge a model on; every list holds input paths. ``read(paths, model)`` reads them (default:
    the model's own format)."""

    train: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    normal: list = field(default_factory=list)
    abnormal: list = field(default_factory=list)
    templates: str | None = None
    prevalence: float | None = None
    read: object = None


def kind_of(path: str) -> str:
    """``run``, ``model``, ``compare`` or ``tune`` (a study file), or an InputError naming ``path``."""
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            if fh.read(16) == b"SQLite format 3\x00":
                return "tune"
        raise InputError("not a model directory, a compare output folder or a tune study (SQLite file)", path)
    if not os.path.isdir(path):
        raise InputError("no such file or folder" if not os.path.exists(path) else
                         "not a file or folder (a pipe or a device): give a model directory, a compare output "
                         "folder, a tune study file or a demo run", path)
    for name, kind in ((RUN_FILE, "run"), ("config.json", "model"), ("compare.json", "compare")):
        if os.path.isfile(os.path.join(path, name)):
            return kind
    raise InputError("not a model directory (no config.json), a compare output (no compare.json) or a demo run "
                     f"(no {RUN_FILE})", path)


def build(path: str, data: Data | None = None, title: str | None = None) -> str:
    """The report of ``path`` as one HTML document."""
    data = data or Data()
    kind = kind_of(path)
    given = [name for name, value in (("sequences to judge", data.inputs), ("--normal", data.normal),
                                      ("--abnormal", data.abnormal), ("--train", data.train),
                                      ("--templates", data.templates), ("--prevalence", data.prevalence))
             if value not in (None, [], "")]
    if kind != "model" and given:
        what = {"run": "a demo run (it names its own data in run.json)", "compare": "a compare output",
                "tune": "a tune study"}[kind]
        raise InputError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to a model directory, not to {what}: leave them out, or "
                         "give the model directory", path)
    sections: list = []
    if kind == "run":
        run = read_run(path)
        data = Data(train=run.get("train", []), normal=run.get("normal", []), abnormal=run.get("abnormal", []),
                    templates=run.get("templates"), prevalence=run.get("prevalence"), read=data.read)
        sections += model_sections(run["model"], data)
        if run.get("compare"):
            sections += compare_sections(run["compare"])
        title = title or run.get("title")
    elif kind == "model":
        sections += model_sections(path, data)
    elif kind == "compare":
        sections += compare_sections(path)
    else:
        sections += tune_sections(path)
    from .. import __version__

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{H.esc(os.path.abspath(path))} · seqrnn {H.esc(__version__)} · {when}"
    footer = ("<p>Written by <code>seqrnn report</code>. One file: figures inside it, no script, nothing fetched "
              "from the network; prints on A4.</p>")
    return H.page(title or f"seqrnn report: {os.path.basename(os.path.abspath(path))}", subtitle, sections, footer)


def read_run(path: str) -> dict:
    from .inputs import read_run as read_checked

    return read_checked(path)


# --- a model directory ----------------------------------------------------------------------------
def _read(data: Data, paths, model):
    if not paths:
        return []
    return data.read(paths, model) if data.read else model.read(list(paths))


def find_templates(data: Data) -> dict | None:
    """The templates given, or a ``templates.csv`` beside the data (a parsed folder has one)."""
    if data.templates:
        return load_templates(data.templates)
    for p in [*data.inputs, *data.normal, *data.abnormal, *data.train]:
        folder = p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p))
        candidate = os.path.join(folder, "templates.csv")
        if os.path.isfile(candidate):
            return load_templates(candidate)
    return None


HISTORY_LIMIT = 1e15  # no loss, rate or count of a training is larger; 1e308 and -1e308 overflow the axes


def read_history(model_dir: str) -> list[dict]:
    path = os.path.join(model_dir, "history.csv")
    if not os.path.isfile(path):
        return []
    from ..errors import ModelFileError

    number = None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for number, row in enumerate(rows, start=2):  # the figures plot these as numbers
            for key, value in row.items():
                if value not in (None, "") and not abs(float(value)) <= HISTORY_LIMIT:  # NaN too
                    raise ValueError(f"{key} is {value}, not a number a training writes")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        where = path if number is None else f"{path}:{number}"
        raise ModelFileError(f"history.csv is damaged ({exc})", where) from None
    return rows


def model_sections(model_dir: str, data: Data) -> list:
    from ..artifacts import read_config
    from ..detect import Detector, has_detector_file
    from ..errors import ModelFileError
    from ..models.base import SequenceModel, load
    from . import plots

    config = read_config(model_dir, ("seqrnn-model", "seqrnn-classifier"))
    model = load(model_dir)
    detector = None
    if isinstance(model, SequenceModel):
        try:
            detector = Detector.load(model_dir, model)
        except ModelFileError:
            if has_detector_file(model_dir):
                raise  # there and refused: an error, as for detect and info
            detector = None  # none at all: shown without detection
    templates = find_templates(data)
    training = config.get("training") or {}
    train = _read(data, data.train, model)
    unlabelled = _read(data, data.inputs, model)
    normal, abnormal = _read(data, data.normal, model), _read(data, data.abnormal, model)
    decisions = y = metrics = None
    judged = unlabelled + normal + abnormal
    if detector is not None and judged:
        from ..progress import decide

        decisions = decide(detector, judged, desc="report: detect")
        if normal and abnormal:
            from ..metrics import detection_metrics

            y = np.r_[np.zeros(len(unlabelled) + len(normal), bool), np.ones(len(abnormal), bool)][len(unlabelled):]
            labelled = decisions.findings[len(unlabelled):]
            metrics = detection_metrics(y, [f.anomalous for f in labelled], [f.score for f in labelled],
                                        data.prevalence)
    unjudged = None
    if detector is None and judged:
        metrics, y, scores, unjudged = _classified(model, unlabelled, normal, abnormal, data)
    p = promise(detector) if detector is not None else None

    # at a glance
    glance = [(f"{model.n_parameters():,}" if model.n_parameters() else config["kind"],
               f"parameters ({config['kind']})" if model.n_parameters() else "model"),
              (f"{training.get('seconds', '–')} s", "training time")]
    if p and p["fpr"] is not None:
        glance.append((f"{p['fpr']:.2g}", "false-positive rate " + ("promised" if p["promised"] else "targeted")))
    if metrics:
        glance += [(metrics["recall"], "recall (anomalies found)"), (metrics["fpr"], "false-positive rate measured"),
                   (metrics["roc_auc"], "ROC-AUC")]
        if "f1_at_prevalence" in metrics:
            glance.append((metrics["f1_at_prevalence"], f"F1 at prevalence {metrics['prevalence']:.3g}"))
        else:
            glance.append((metrics["f1"], "F1 on the test set"))
    elif decisions is not None:
        glance.append((f"{int(decisions.anomalous.sum()):,} of {len(judged):,}", "sequences anomalous"))
    sections = [("glance", "At a glance", H.cards(glance) + _glance_text(config, metrics, data)
                 + (f"<p><strong>{H.esc(unjudged)}</strong></p>" if unjudged else ""))]

    # the data
    vocab = getattr(model, "vocab_", None)
    rows = [("training", training.get("sequences"), training.get("events"), None, None)]
    groups = {}
    for name, seqs in (("training", train), ("to judge", unlabelled), ("normal test", normal),
                       ("anomalous test", abnormal)):
        if seqs:
            lengths = [len(s) for s in seqs]
            groups[name] = lengths
            row = (name, len(seqs), int(sum(lengths)), int(np.median(lengths)), int(max(lengths)))
            rows = [r for r in rows if r[0] != name] + [row]
    body = H.table(("sequences", "count", "events", "median length", "longest"), rows, numeric=(1, 2, 3, 4))
    body += H.pairs([("format", f"{config.get('data_format')}" + (f" ({config.get('text_tokens')})"
                                                                 if config.get("data_format") == "text" else "")),
                     ("vocabulary", f"{len(vocab) - 4:,} events (+4 reserved: padding, unknown, begin, end)"
                      if vocab is not None else None),
                     ("templates", f"{len(templates):,} event templates" if templates else None)])
    if groups:
        body += H.figure(lambda t: plots.plot_lengths(t, groups), "sequence lengths",
                         "How long the sequences are (log scale): training and test should look alike.")
    sections.append(("data", "Data", body))

    # the model
    body = "<pre>" + H.esc("\n".join(model.describe())) + "</pre>"
    settings = config.get("settings") or {}
    body += H.pairs([("kind", config["kind"]),
                     ("parameters", f"{model.n_parameters():,}" if model.n_parameters() else None),
                     ("training time", f"{training.get('seconds')} s" if training.get("seconds") is not None else None),
                     ("epochs", f"{training.get('epochs')} (best {training.get('best_epoch')})"
                      if training.get("epochs") else None),
                     ("settings", ", ".join(f"{k} {v}" for k, v in settings.items())),
                     ("versions", ", ".join(f"{k} {v}" for k, v in (config.get("versions") or {}).items()))])
    if detector is not None:
        body += "<h3>Detector</h3><pre>" + H.esc(detector.describe()) + "</pre>"
        body += f"<p>{H.esc(promise_text(p))}.</p>"
    sections.append(("model", "Model", body))

    history = read_history(model_dir)
    if history:
        body = H.figure(lambda t: plots.plot_history(t, history), "training curves",
                        "Loss and accuracy as training went; the ring marks the epoch whose weights were kept.")
        last = history[-1]
        body += H.pairs([(k, last[k]) for k in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy",
                                                "val_topk_accuracy", "events_per_second") if last.get(k)])
        if config.get("data_format") == "text" and isinstance(model, SequenceModel):
            body += _samples(model)
        sections.append(("training", "Training", body))

    if detector is None and metrics is not None:
        sections.append(_classification_section(model, y, scores, metrics, data))
    if decisions is not None:
        sections += detection_sections(model, detector, decisions, judged, y, metrics, data, templates,
                                       len(unlabelled))
    return sections


def _classified(model, unlabelled, normal, abnormal, data):
    """``(metrics, y, scores, note)`` for data given to a model without a detector: a classifier's metrics on the
    labelled data (as ``classify evaluate`` computes them), or a note saying the data was not judged, also
    printed, never left out in silence."""
    import sys

    from ..models.classifier import SequenceClassifier

    if not isinstance(model, SequenceClassifier):
        note = ("The data given was not judged: this model has no detector (training stopped before its "
                "calibration, or --no-calibration); seqrnn calibrate MODEL NORMAL... learns one.")
        print(f"note: {note}", file=sys.stderr)
        return None, None, None, note
    if not (normal and abnormal):
        note = ("The sequences given were not judged: a classifier's page shows its metrics on labelled "
                "data (--normal and --abnormal); seqrnn classify predict labels unlabelled ones.")
        print(f"note: {note}", file=sys.stderr)
        return None, None, None, note
    from ..metrics import detection_metrics

    y = np.r_[np.zeros(len(normal), bool), np.ones(len(abnormal), bool)]
    scores = model.decision_function(normal + abnormal)
    metrics = detection_metrics(y, scores > model.threshold_, scores, data.prevalence)
    note = ("The sequences given to judge were not judged (a classifier's page judges labelled data alone)."
            if unlabelled else None)
    return metrics, y, scores, note


def _metrics_table(metrics) -> str:
    keys = ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "fpr", "roc_auc", "pr_auc",
            "precision_at_prevalence", "f1_at_prevalence")
    labels = {"tp": "found", "fp": "false alarms", "fn": "missed", "tn": "normal passed", "f1": "F1",
              "fpr": "FPR", "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "precision_at_prevalence": "precision@prev",
              "f1_at_prevalence": "F1@prev"}
    shown = [k for k in keys if k in metrics]
    return H.table([labels.get(k, k) for k in shown], [[metrics[k] for k in shown]], numeric=range(len(shown)))


def _classification_section(model, y, scores, metrics, data):
    from . import plots

    body = ("<p>The classifier on the labelled data given: anomalous where its logit is above the threshold "
            "chosen at training (as <code>seqrnn classify evaluate</code> counts).</p>")
    body += _metrics_table(metrics)
    body += H.figure(lambda t: plots.plot_roc_pr(t, y, scores, scores > model.threshold_, data.prevalence),
                     "ROC and PR", "The dot is where the classifier runs (its threshold). "
                     + ("Precision is computed at the prevalence given." if data.prevalence is not None else
                        "Precision is at the test set's share of anomalies: give --prevalence."))
    return ("classification", "Classification", body)


def _glance_text(config, metrics, data) -> str:
    if metrics is None:
        return ""
    prev = (f"at prevalence {metrics['prevalence']:.4g} (given)" if "prevalence" in metrics else
            "at the test set's share of anomalies (give --prevalence for the share where it will run)")
    return (f"<p>{metrics['tp']:,} of {metrics['tp'] + metrics['fn']:,} anomalous sequences found, "
            f"{metrics['fp']:,} of {metrics['fp'] + metrics['tn']:,} normal ones flagged; precision and F1 "
            f"{prev}.</p>")


def _samples(model) -> str:
    from ..generate import generate, render

    out = ["<h3>Samples</h3><p>Text the model writes from nothing, at several temperatures "
           "(low: safe and repetitive; high: inventive and wrong more often).</p>"]
    for t in TEMPERATURES:
        sample = generate(model, None, length=300, temperature=t, seed=0)[0]
        out.append(f"<h3>temperature {t}</h3><pre>{H.esc(render(model, sample))}</pre>")
    return "".join(out)


def detection_sections(model, detector, decisions, judged, y, metrics, data, templates, n_unlabelled) -> list:
    from . import plots

    sections = []
    findings = decisions.findings
    by = counts_by_reason(findings)
    body = ""
    if metrics is not None:
        labelled = findings[n_unlabelled:]
        scores = np.array([f.score for f in labelled])
        predicted = np.array([f.anomalous for f in labelled])
        body += _metrics_table(metrics)
        body += H.figure(lambda t: plots.plot_roc_pr(t, y, scores, predicted, data.prevalence), "ROC and PR",
                         "The dot is where the detector runs (its calibrated threshold). "
                         + ("Precision is computed at the prevalence given."
                            if data.prevalence is not None else
                            "Precision is at the test set's share of anomalies, usually far above the real one: "
                            "give --prevalence."))
        body += H.figure(lambda t: plots.plot_scores(t, y, scores), "score histogram",
                         "Each sequence's score: the -log p-value of its most extreme view divided by the one at "
                         "the cut (above 1 is anomalous).")
    body += "<h3>Why sequences were flagged</h3>"
    body += _reasons_table(by, findings, y, n_unlabelled) if by else "<p>None was flagged.</p>"
    sections.append(("detection", "Detection", body))

    examples = plots.pick_examples(findings, EXAMPLES)
    cut = None if detector.top_g else detector.nll_cut
    body = ("<p>The highest-scoring anomalous sequence of each reason in turn. Each point is one event: the "
            "probability the model gave it, given the events before it. Red: below the threshold; a purple "
            "triangle: an event never seen in training (anomalous whatever its probability); a red ring: the "
            "event a sequence-level view (event counts) points at.</p>")
    for f in examples:
        body += _example(model, f, cut, templates)
    sections.append(("examples", "Anomalous sequences", body))
    return sections


def _reasons_table(by, findings, y, n_unlabelled) -> str:
    """Flagged sequences by reason; with labels, the anomalies found apart from the false alarms (their sum
    is what detect would count on all of them together)."""
    if y is None:
        return H.table(("reason", "sequences"), by.most_common(), numeric=(1,))
    labelled = findings[n_unlabelled:]
    columns = [("anomalous test (found)", counts_by_reason([f for f, t in zip(labelled, y) if t])),
               ("normal test (false alarms)", counts_by_reason([f for f, t in zip(labelled, y) if not t]))]
    if n_unlabelled:
        columns.insert(0, ("to judge", counts_by_reason(findings[:n_unlabelled])))
    rows = [[k] + [c.get(k, 0) for _, c in columns] for k, _ in by.most_common()]
    return H.table(["reason"] + [name for name, _ in columns], rows, numeric=range(1, len(columns) + 1))


def raw_line(seq, p: int) -> str | None:
    """The input line of event ``p`` where the input had one line per event (a stream)."""
    if seq.lines is None or not len(seq.lines):
        return None
    path, _, line = seq.location(p).rpartition(":")
    if not os.path.isfile(path):
        return None
    return linecache.getline(path, int(line)).rstrip("\n") or None


def _example(model, f, cut, templates) -> str:

    sc = f.scores
    seq = sc.sequence
    n = len(sc)
    title = f"{seq.id} · {f.reason}" if f.reason else str(seq.id)
    out = [f'<div class="example"><h3>{H.esc(title)}</h3>']
    out.append(f"<p class=\"muted\">score {f.score:.2f} · {len(seq):,} events · {H.esc(seq.location(0))}</p>")
    out.append(H.figure(lambda t: _one_sequence(t, f, cut), f"sequence {seq.id}"))
    flagged = set(np.flatnonzero(f.event_anomalous).tolist())
    if f.position is not None:
        flagged.add(int(f.position))
    keep = set(range(n)) if n <= 24 else {q for p in flagged for q in range(p - 3, p + 4) if 0 <= q < n}
    keep |= {0, n - 1}
    rows, classes, last = [], [], -1
    stream = seq.lines is not None
    shown = readable_event  # a text's space and newline quoted
    for p in sorted(keep):
        if p > last + 1:
            rows.append(H.Gap(f"… {p - last - 1} events not shown …"))
            classes.append("gap")
        last = p
        event = seq.tokens[p] if p < len(seq) else token_name(model, sc.ids[p])
        expected = [(token_name(model, j), q) for j, q in zip(sc.topk[p][:3], sc.topk_prob[p][:3])]
        exp_html = "<br>".join(f"{H.esc(shown(e))} ({q:.2f})" + (f' <span class="muted">{H.esc(_short(templates.get(e)))}'
                                                            "</span>" if templates and templates.get(e) else "")
                               for e, q in expected)
        text = templates.get(event) if templates else None
        if sc.unknown[p]:
            text = "never seen in training" + (f": {text}" if text else "")
        raw = raw_line(seq, p)
        detail = H.esc(text or "") + (f'<br><span class="mono">{H.esc(raw)}</span>' if raw else "")
        row = [p, shown(event), H.Raw(detail), "unseen" if sc.unknown[p] else float(sc.prob[p]), H.Raw(exp_html)]
        rows.append(row + [seq.location(p)] if stream else row)
        classes.append("bad" if p in flagged else "")
    headers = ("pos", "event", "template" + (" / raw line" if stream else ""), "p", "expected instead (p)")
    out.append(H.table(headers + (("where",) if stream else ()), rows, numeric=(0, 3),
                       row_class=lambda r: classes[r]))
    if f.count_deviations:
        from ..profiles import deviations_text

        out.append("<p>Event counts against the nearest normal session: "
                   + H.esc(deviations_text(f.count_deviations, most=8).split(":", 1)[-1].strip()) + "</p>")
    out.append("</div>")
    return "".join(out)


def _short(text: str | None, n: int = 48) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def _one_sequence(target, f, cut) -> None:
    from .plots import draw_sequence, figure, legend_below

    with figure(target, figsize=(8, 2.6)) as ax:
        draw_sequence(ax, f, cut)
        legend_below(ax, 2)


# --- compare and tune ---------------------------------------------------------------------------------
def compare_sections(folder: str) -> list:
    from ..experiments.compare import HEADERS, METRICS
    from .inputs import read_compare

    result = read_compare(folder)
    repeat = result.get("repeat", 1)
    rows = []
    for name, stats in (result.get("table") or {}).items():
        row = [name]
        for k in METRICS:
            s = stats.get(k) or {}
            digits = 1 if k == "train_seconds" else 2 if k == "detect_seconds" else 4
            mean = s.get("mean")
            cell = "–" if mean is None or (isinstance(mean, float) and math.isnan(mean)) else f"{mean:.{digits}f}"
            if repeat > 1 and s.get("std") is not None:
                cell += f" ± {s['std']:.{digits}f}"
            row.append(cell)
        rows.append(row)
    seqs = result.get("sequences") or {}

    def count(key):
        return f"{seqs[key]:,}" if key in seqs else "?"

    prevalence = result.get("prevalence")
    body = (f"<p>Every model trained on the same {count('train')} normal sequences and judged on "
            f"{count('normal')} normal and {count('abnormal')} anomalous ones, "
            f"{repeat} run{'s' if repeat > 1 else ''} (mean{' ± std' if repeat > 1 else ''}); F1@prev at "
            f"prevalence {'?' if prevalence is None else format(prevalence, '.4g')}. A row NAME --no-counts is the same model "
            "without the count-profile view: what the next-event model finds by itself.</p>")
    body += H.table(("model", *HEADERS), rows, numeric=range(1, len(HEADERS) + 1))
    roc = os.path.join(folder, "roc.png")
    if os.path.isfile(roc):
        with open(roc, "rb") as fh:
            body += H.figure_png(fh.read(), "ROC of every model", "ROC of every model (first run).")
    return [("compare", "Compared with the baselines", body)]


def tune_sections(path: str) -> list:
    import io

    from ..experiments import tune

    tune.quiet_optuna(False)
    names = _study_names(path)
    study = tune.open_study(path, names[0] if names else "seqrnn", create=False)
    rows = tune.trial_rows(study)
    best = tune.best_file_dict(study, path)
    imp = tune.importance(study)
    objective = study.user_attrs.get("objective", "val_loss")
    glance = [(len(rows), "trials"), (objective, f"objective ({study.direction.name.lower()})")]
    if best:
        glance += [(best["value"], f"best value (trial {best['trial']})")]
    body = H.cards(glance)
    if best:
        body += "<h3>Best trial</h3><pre>" + H.esc(json.dumps(best["settings"], indent=1)) + "</pre>"
    body += "<h3>Trials</h3>" + H.table(
        ("trial", "state", "value", "epochs", "seconds", "settings"),
        [[r["number"], r["state"] + (f" ({r['pruned_by'] or r['error']})" if r["pruned_by"] or r["error"] else ""),
          r["value"], r["epochs"], r["seconds"], tune.params_text(r["params"])] for r in rows],
        numeric=(0, 2, 3, 4))
    if rows:
        buf = io.BytesIO()
        tune.plot_history(study, buf)
        body += H.figure_png(buf.getvalue(), "optimisation history", "Each trial's value; the line: best so far.")
    if imp:
        buf = io.BytesIO()
        tune.plot_importance(imp, buf, objective)
        body += H.figure_png(buf.getvalue(), "parameter importance", "Which settings mattered (fANOVA).")
    return [("tune", "Hyper-parameter search", body)]


def _study_names(path: str) -> list[str]:
    import optuna

    try:
        return [s.study_name for s in optuna.study.get_all_study_summaries(f"sqlite:///{path}")]
    except Exception:  # noqa: BLE001 - open_study says what is wrong with the file
        return []
