"""Checks of a model directory's files, made before anything is built from them.

A model directory is input like any other: it may be truncated, edited by
hand or crafted. Before a network is built or a weight read, :func:`check_model`

* checks ``config.json`` against a schema: the type and range of every field
  and every setting of the model's kind (:func:`check_config`);
* reads the header of ``model.safetensors`` alone (a few bytes, not the
  weights) and checks the name, type and shape of every tensor against what
  the config says the model holds (:func:`expected_tensors`), and that the
  data it describes lies inside the file;
* bounds the memory the weights will take by what the machine has.

Then :func:`seqrnn.artifacts.load_tensors` maps the file (no read of the
whole) and :func:`check_values` refuses values no training writes (NaN,
indices out of range, negative probabilities). Every problem is a
:class:`~seqrnn.errors.ModelFileError` naming the file and the field.
No torch or numpy at import.
"""

from __future__ import annotations

import json
import math
import os
import struct

from .config import MAX_LAYERS
from .errors import ModelFileError
from .limits import MAX_SEED, check_memory, is_number

FORMATS = ("sessions", "stream", "text")
TEXT_TOKENS = ("chars", "words")
RESERVED = ("<pad>", "<unk>", "<bos>", "<eos>")
MAX_HEADER_BYTES = 16 << 20  # a header this long would describe thousands of tensors
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
               "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
INTEGER_DTYPES = ("I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8")
# Bounds of the settings that size a model (beyond them no model fits a machine, or loading takes minutes).
MAX_ORDER = 100  # seqrnn.models.markov.MAX_ORDER
MAX_WINDOW = 1_000_000


# --- config.json --------------------------------------------------------------------------------
def _fail(path: str, field: str, message: str):
    raise ModelFileError(f"{field} {message}", path)


def _int(path, field, v, low=None, high=None, optional=False):
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        _fail(path, field, f"must be an integer, not {v!r:.60}")
    if (low is not None and v < low) or (high is not None and v > high):
        _fail(path, field, f"must be from {low} to {high}, not {v}" if high is not None else f"must be >= {low}, not {v}")


def _float(path, field, v, low=None, high=None, optional=False, low_open=False, high_open=False):
    if v is None and optional:
        return
    if not is_number(v) or not math.isfinite(v):
        _fail(path, field, f"must be a finite number, not {v!r:.60}")
    if low is not None and (v <= low if low_open else v < low):
        _fail(path, field, f"must be {'>' if low_open else '>='} {low}, not {v}")
    if high is not None and (v >= high if high_open else v > high):
        _fail(path, field, f"must be {'<' if high_open else '<='} {high}, not {v}")


def _choice(path, field, v, choices, optional=False):
    if v is None and optional:
        return
    if not isinstance(v, str) or v not in choices:
        _fail(path, field, f"must be one of {', '.join(choices)}, not {v!r:.60}")


def _bool(path, field, v):
    if not isinstance(v, bool):
        _fail(path, field, f"must be true or false, not {v!r:.60}")


def _neural_settings(path: str, s: dict, kind: str) -> None:
    from .config import CELLS, MAPPINGS, OPTIMIZERS, PRECISIONS, SCHEDULES

    p = "settings."
    _choice(path, p + "cell", s.get("cell", "lstm"), CELLS)
    _int(path, p + "layers", s.get("layers", 1), 1, MAX_LAYERS)
    for name in ("hidden", "embedding_dim"):
        _int(path, p + name, s.get(name, 1), 1)
    _float(path, p + "dropout", s.get("dropout", 0.0), 0.0, 1.0, high_open=True)
    if kind == "classifier":
        _int(path, p + "attention", s.get("attention", 1), 1)
        _float(path, p + "validation_split", s.get("validation_split", 0.2), 0.0, 1.0, low_open=True, high_open=True)
        _float(path, p + "prevalence", s.get("prevalence"), 0.0, 1.0, optional=True, low_open=True, high_open=True)
        _choice(path, p + "threshold_on", s.get("threshold_on", "validation"), ("validation", "validation+normal"))
    else:  # the classifier has no weight drop: one in its folder is refused as a setting it does not take
        _float(path, p + "weight_drop", s.get("weight_drop", 0.0), 0.0, 1.0, high_open=True)
        _choice(path, p + "mapping", s.get("mapping", "many-to-many"), MAPPINGS)
        _int(path, p + "window", s.get("window", 1), 1, MAX_WINDOW)
        _bool(path, p + "bidirectional", s.get("bidirectional", False))
        _float(path, p + "validation_split", s.get("validation_split", s.get("validation", 0.1)), 0.0, 1.0,
               high_open=True)
        for name in ("chunk", "topk"):
            _int(path, p + name, s.get(name, 2), 1)
    _choice(path, p + "optimizer", s.get("optimizer", "adam"), OPTIMIZERS)
    _choice(path, p + "schedule", s.get("schedule", "constant"), SCHEDULES)
    _choice(path, p + "precision", s.get("precision", "auto"), PRECISIONS)
    _float(path, p + "lr", s.get("lr", 1.0), 0.0, low_open=True)
    for name in ("weight_decay", "clip", "minutes"):
        _float(path, p + name, s.get(name, 0.0), 0.0)
    _float(path, p + "lr_floor", s.get("lr_floor", 0.0), 0.0, 1.0)
    for name in ("batch_size", "epochs", "min_count"):
        _int(path, p + name, s.get(name, 1), 1)
    for name in ("patience", "threads", "warmup", "eval_every"):
        _int(path, p + name, s.get(name, 0), 0)
    _int(path, p + "seed", s.get("seed", 0), 0, MAX_SEED)


def _baseline_settings(path: str, s: dict, kind: str) -> None:
    p = "settings."
    _int(path, p + "seed", s.get("seed", 0), 0, MAX_SEED)
    _float(path, p + "validation_split", s.get("validation_split", 0.1), 0.0, 1.0, high_open=True)
    _int(path, p + "min_count", s.get("min_count", 1), 1)
    if kind == "markov":
        _int(path, p + "order", s.get("order", 1), 0, MAX_ORDER)
    elif kind == "nb":
        _int(path, p + "window", s.get("window", 1), 1, MAX_WINDOW)
        _float(path, p + "alpha", s.get("alpha", 1.0), 0.0, low_open=True)
    elif kind == "hmm":
        _int(path, p + "states", s.get("states", 1), 1)
        _int(path, p + "iterations", s.get("iterations", 1), 1)
    else:
        _bool(path, p + "idf", s.get("idf", False))


NEURAL = ("rnn", "context", "classifier")


def check_config(config, path: str) -> None:
    """``config.json`` (already parsed, ``format`` checked) against the schema of its kind."""
    from .models import MODULES

    kind = config.get("kind")
    _choice(path, "kind", kind, tuple(MODULES))
    _int(path, "format_version", config.get("format_version", 1), 0)
    settings = config.get("settings")
    if not isinstance(settings, dict):
        _fail(path, "settings", f"must be an object of settings, not {settings!r:.60}")
    (_neural_settings if kind in NEURAL else _baseline_settings)(path, settings, kind)
    _choice(path, "data_format", config.get("data_format"), FORMATS)
    _choice(path, "text_tokens", config.get("text_tokens"), TEXT_TOKENS)
    vocab = config.get("vocabulary")
    if not isinstance(vocab, dict) or not isinstance(vocab.get("tokens"), list):
        _fail(path, "vocabulary", "must be an object with a list of tokens")
    tokens = vocab["tokens"]
    bad = next((t for t in tokens if not isinstance(t, str) or not t or t in RESERVED), None)
    if bad is not None:
        _fail(path, "vocabulary.tokens", f"must be non-empty strings other than {', '.join(RESERVED)}, not {bad!r:.60}")
    if len(set(tokens)) != len(tokens):
        _fail(path, "vocabulary.tokens", "must be distinct")
    counts = vocab.get("counts")
    if counts is not None:
        if not isinstance(counts, list) or (counts and len(counts) != len(tokens)) or \
                any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
            _fail(path, "vocabulary.counts", "must be a count (an integer >= 0) for each token")
    training = config.get("training")
    if training is not None:
        if not isinstance(training, dict):
            _fail(path, "training", f"must be an object, not {training!r:.60}")
        for key, v in training.items():
            if v is not None and not (is_number(v) and math.isfinite(v)) and not isinstance(v, str):
                _fail(path, f"training.{key}", f"must be a number, not {v!r:.60}")
        _float(path, "training.seconds", training.get("seconds", 0.0), 0.0)
        for key in ("sequences", "events", "fine_tuned_sequences", "processes", "threads"):  # counts info shows
            _int(path, f"training.{key}", training.get(key), 0, optional=True)
        for key in ("epochs", "best_epoch"):
            _float(path, f"training.{key}", training.get(key), 0.0, optional=True)
    if kind == "classifier":
        _float(path, "threshold", config.get("threshold"))
        _float(path, "pos_weight", config.get("pos_weight", 1.0), 0.0, low_open=True)
        validation = config.get("validation", {})
        if not isinstance(validation, dict) or any(
                not (v is None or isinstance(v, str) or (is_number(v) and math.isfinite(v)))
                for v in validation.values()):
            _fail(path, "validation", "must be an object of numbers")


# --- the weights file ---------------------------------------------------------------------------
def read_header(path: str) -> dict:
    """``name -> (dtype, shape)`` from a safetensors file's header alone, checked: a header that is
    not one, or data offsets outside the file, raise :class:`ModelFileError`."""
    if not os.path.isfile(path):
        raise ModelFileError("weights file is missing" if not os.path.exists(path) else "not a regular file", path)
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a header")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header of {n:,} bytes in a file of {size:,}")
            header = json.loads(fh.read(n).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        data = size - 8 - n
        out, end = {}, 0
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
            if dtype not in DTYPE_BYTES or not isinstance(shape, list) or not isinstance(offsets, list) or \
                    len(offsets) != 2 or any(isinstance(d, bool) or not isinstance(d, int) or d < 0
                                             for d in shape + offsets):
                raise ValueError(f"tensor {name!r:.60} is described wrongly")
            count = math.prod(shape)
            if offsets[1] - offsets[0] != count * DTYPE_BYTES[dtype] or offsets[1] > data:
                raise ValueError(f"tensor {name!r:.60}'s data does not lie in the file")
            out[name] = (dtype, tuple(shape))
            end = max(end, offsets[1])
        if end != data:
            raise ValueError(f"{data - end:,} bytes after the last tensor")
        return out
    except (ValueError, UnicodeDecodeError, AttributeError, struct.error, RecursionError) as exc:
        raise ModelFileError(f"weights file is truncated or not safetensors ({exc})", path) from None


def _recurrent(prefix: str, cell: str, inp: int, hidden: int, layers: int, directions: int) -> dict:
    gates = (4 if cell == "lstm" else 3) * hidden
    out = {}
    for layer in range(layers):
        width = inp if layer == 0 else hidden * directions
        for suffix in ("", "_reverse")[:directions]:
            out[f"{prefix}.weight_ih_l{layer}{suffix}"] = ("F32", (gates, width))
            out[f"{prefix}.weight_hh_l{layer}{suffix}"] = ("F32", (gates, hidden))
            out[f"{prefix}.bias_ih_l{layer}{suffix}"] = ("F32", (gates,))
            out[f"{prefix}.bias_hh_l{layer}{suffix}"] = ("F32", (gates,))
    return out


def expected_tensors(kind: str, s: dict, V: int) -> dict:
    """``name -> (dtype, shape)`` of the tensors a model of ``kind`` with settings ``s`` and ``V``
    vocabulary entries holds; ``None`` stands for a dimension (or a dtype) the data decides."""
    g = lambda k, d: s.get(k, d)  # noqa: E731
    if kind in NEURAL:
        E, H, L, cell = g("embedding_dim", 32), g("hidden", 64), g("layers", 2), g("cell", "lstm")
        out = {"embed.weight": ("F32", (V, E))}
        if kind == "rnn":
            D = 2 if g("bidirectional", False) else 1
            out.update(_recurrent("rnn", cell, E, H, L, D))
            out.update({"head.weight": ("F32", (V, H * D)), "head.bias": ("F32", (V,))})
        elif kind == "context":
            out.update(_recurrent("fwd", cell, E, H, L, 1))
            out.update(_recurrent("bwd", cell, E, H, L, 1))
            out.update({"head.weight": ("F32", (V, 2 * H)), "head.bias": ("F32", (V,))})
        else:
            A = g("attention", 64)
            out.update(_recurrent("rnn", cell, E, H, L, 2))
            out.update({"att.0.weight": ("F32", (A, 2 * H)), "att.0.bias": ("F32", (A,)),
                        "att.2.weight": ("F32", (1, A)), "att.2.bias": ("F32", (1,)),
                        "out.weight": ("F32", (1, 2 * H)), "out.bias": ("F32", (1,))})
        return out
    if kind == "markov":
        out = {}
        for j in range(g("order", 1) + 1):
            out.update({f"ctx{j}": (None, (None,)), f"total{j}": (None, (None,)), f"pair_ctx{j}": (None, (None,)),
                        f"pair_event{j}": (None, (None,)), f"pair_count{j}": (None, (None,))})
        return out
    if kind == "nb":
        return {"log_prior": ("F32", (V,)), "log_likelihood": ("F32", (g("window", 10), V, V))}
    if kind == "hmm":
        S = g("states", 10)
        return {"startprob": ("F64", (S,)), "transmat": ("F64", (S, S)), "emissionprob": ("F64", (S, V))}
    return {"log_unigram": ("F32", (V,)), "lengths": (None, (None,)), "profiles": ("F32", (None, V)),
            "weights": ("F32", (V,))}


def check_tensors(header: dict, expected: dict, path: str) -> None:
    """The tensors of ``header`` are those of ``expected``: the same names, types and shapes."""
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        what = (f"lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else
                f"holds tensors the model has not: {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise ModelFileError(f"weights do not fit the config: the file {what}", path)
    for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = header[name]
        ok_dtype = got_dtype == dtype if dtype else got_dtype in INTEGER_DTYPES + ("F32", "F64")
        if not ok_dtype or len(got_shape) != len(shape) or any(e is not None and e != d
                                                               for e, d in zip(shape, got_shape)):
            want = "x".join("n" if d is None else str(d) for d in shape)
            raise ModelFileError(f"weights do not fit the config: {name} is {got_dtype} "
                                 f"{'x'.join(map(str, got_shape)) or 'scalar'}, the config says "
                                 f"{dtype or 'numbers'} {want}", path)


def check_model(config: dict, model_dir: str, weights: str) -> None:
    """Everything about a model directory that can be checked before anything is allocated: its
    config against the schema, its weights' header against the config, their size against memory."""
    config_path = os.path.join(model_dir, "config.json")
    check_config(config, config_path)
    kind = config["kind"]
    V = len(config["vocabulary"]["tokens"]) + len(RESERVED)
    header = read_header(weights)
    check_tensors(header, expected_tensors(kind, config["settings"], V), weights)
    nbytes = sum(math.prod(shape) * DTYPE_BYTES[dtype] for dtype, shape in header.values())
    # The tensors are mapped, then copied once into the model (a network: once more into its parameters).
    check_memory(nbytes * (2 if kind in NEURAL else 1), "loading this model", error=ModelFileError, path=weights)


def check_training_memory(kind: str, settings: dict, V: int, tokens_per_batch: int, params=()) -> None:
    """Refuse a network (of ``kind``, ``settings``, ``V`` vocabulary entries) whose training would not
    fit in memory: its weights, gradients and optimiser state, a best copy, and the activations of
    one batch of ``tokens_per_batch`` events (kept for the backward pass, and their gradients)."""
    shapes = expected_tensors(kind, settings, V)
    weights = sum(math.prod(shape) for _, shape in shapes.values())
    H, L, E = settings.get("hidden", 64), settings.get("layers", 1), settings.get("embedding_dim", 32)
    per_token = E + 2 * V + 8 * L * H * (2 if kind != "rnn" or settings.get("bidirectional") else 1)
    nbytes = 4.0 * (5 * weights + 2 * tokens_per_batch * per_token)
    check_memory(nbytes, f"training this network ({weights:,} weights, batches of {tokens_per_batch:,} events)",
                 params=params)


# --- values -------------------------------------------------------------------------------------
def check_values(kind: str, tensors: dict, V: int, path: str) -> None:
    """Refuse values no training writes: NaN anywhere, infinite weights, probabilities out of
    [0, 1], indices outside the vocabulary or the tables."""
    import numpy as np

    def bad(name, what):
        raise ModelFileError(f"{name} holds {what}: the file is damaged or was not written by seqrnn", path)

    support = np.ones(V, bool)  # the events a model may predict: all but padding and <bos>
    support[[0, 2]] = False
    for name, a in tensors.items():
        if a.dtype.kind == "f":
            if np.isnan(a).any():
                bad(name, "NaN")
            if np.isposinf(a).any() or (kind in NEURAL and np.isinf(a).any()):
                bad(name, "infinite values")
    if kind == "markov":
        j = 0
        while f"ctx{j}" in tensors:
            t = {k: tensors[f"{k}{j}"] for k in ("ctx", "total", "pair_ctx", "pair_event", "pair_count")}
            n = len(t["ctx"])
            if len(t["total"]) != n or not len(t["pair_ctx"]) == len(t["pair_event"]) == len(t["pair_count"]):
                bad(f"level {j}", "tables of different lengths")
            if (t["total"] < 1).any() or (t["pair_count"] < 1).any():
                bad(f"level {j}", "counts below 1")
            if len(t["pair_event"]) and ((t["pair_event"] < 0).any() or (t["pair_event"] >= V).any()):
                bad(f"pair_event{j}", "events outside the vocabulary")
            pc = t["pair_ctx"]
            if len(pc) and ((pc < 0).any() or (pc >= n).any() or (np.diff(pc) < 0).any()):
                bad(f"pair_ctx{j}", "contexts outside the table, or out of order")
            if n > 1 and (np.diff(t["ctx"].astype(np.uint64)) == 0).any():
                bad(f"ctx{j}", "repeated contexts")
            j += 1
    elif kind == "hmm":
        for name in ("startprob", "transmat", "emissionprob"):
            a = tensors[name]
            if (a < 0).any() or np.isinf(a).any() or (a.sum(-1) <= 0).any():
                bad(name, "probabilities below 0, infinite, or rows that sum to 0")
        if (tensors["emissionprob"][:, support] <= 0).any():  # training floors every event that may come
            bad("emissionprob", "an event with probability 0")
    elif kind == "nb":
        if not np.isfinite(tensors["log_likelihood"]).all() or not np.isfinite(tensors["log_prior"][support]).all():
            bad("log_likelihood or log_prior", "log-probabilities of -inf where training writes finite ones")
    elif kind not in NEURAL:
        if not np.isfinite(tensors["log_unigram"][support]).all():
            bad("log_unigram", "log-probabilities of -inf where training writes finite ones")
        if (tensors["lengths"] < 0).any():
            bad("lengths", "negative lengths")
        for name in ("profiles", "weights"):
            if np.isinf(tensors[name]).any() or (tensors[name] < 0).any():
                bad(name, "negative or infinite values")
