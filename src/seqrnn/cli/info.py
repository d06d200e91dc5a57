"""``seqrnn info``: what a model directory holds."""

from __future__ import annotations

import json
import math



def add_parser(sub) -> None:
    p = sub.add_parser("info", help="architecture, parameters, vocabulary and training summary of a model")
    p.add_argument("model_dir", metavar="MODEL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..artifacts import read_config
    from ..models.base import load

    config = read_config(args.model_dir)
    model = load(args.model_dir)
    info = {
        "model_dir": args.model_dir, "kind": config["kind"], "settings": config["settings"],
        "parameters": model.n_parameters() if hasattr(model, "n_parameters") else None,
        "vocabulary_size": len(model.vocab_), "events": len(model.vocab_) - 4,
        "data_format": config.get("data_format"), "training": config.get("training"),
        "calibration": config.get("calibration"), "versions": config.get("versions"),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    s = info["settings"]
    if config["kind"] not in ("rnn", "context"):
        return _info_other(info)
    if config["kind"] == "context":
        reads = "each event from the events before and after it"
    else:
        reads = s.get("mapping") + (f" (window {s.get('window')}" + (", bidirectional" if s.get("bidirectional")
                                                                    else "") + ")"
                                    if s.get("mapping") == "many-to-one" else "")
    print(f"model      {config['kind']}: {s.get('layers')}x{s.get('hidden')} {str(s.get('cell')).upper()}, "
          f"embedding {s.get('embedding_dim')}, dropout {s.get('dropout')}, {reads}")
    print(f"parameters {info['parameters']:,}")
    print(f"vocabulary {info['events']} events (+4 reserved), format {info['data_format']}")
    tr = info["training"] or {}
    print(f"training   {tr.get('sequences')} sequences, {tr.get('events')} events, {tr.get('epochs')} epochs, "
          f"{tr.get('seconds')}s; best val_loss {tr.get('best_val_loss')}")
    cal = info["calibration"] or {}
    if cal:
        p = math.exp(-cal["nll_threshold"])
        print(f"detection  event probability threshold {p:.3g} (-log p > {cal['nll_threshold']:.3f})"
              + (f", count-profile threshold {cal['count']['threshold']:.3f}" if cal.get("count") else "")
              + f", target FPR {cal['target_fpr']}")
    return 0


def _info_other(info: dict) -> int:
    print(f"model      {info['kind']}: " + ", ".join(f"{k} {v}" for k, v in info["settings"].items()))
    print(f"vocabulary {info['events']} events (+4 reserved), format {info['data_format']}")
    tr = info["training"] or {}
    print(f"training   {tr.get('sequences')} sequences, {tr.get('events')} events, {tr.get('seconds')}s")
    cal = info["calibration"] or {}
    views = ["unseen event"]
    if cal.get("nll_threshold") is not None:
        views.append(f"event probability threshold {math.exp(-cal['nll_threshold']):.3g}")
    if cal.get("count"):
        views.append(f"count-profile threshold {cal['count']['threshold']:.3f}")
    views += [f"{k} distance threshold {v:.3f}" for k, v in (cal.get("views") or {}).items()]
    if cal:
        print(f"detection  {', '.join(views)}, target FPR {cal['target_fpr']}")
    return 0
