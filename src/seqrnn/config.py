"""Plain dataclass configurations and the named presets.

A preset is a dict of overrides; any explicit setting overrides the preset.
Both configs are saved in ``config.json`` beside the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MAPPINGS = ("many-to-many", "many-to-one")
CELLS = ("lstm", "gru")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "wsd")
PRECISIONS = ("auto", "float32", "bfloat16")
COSINE_FLOOR = 0.1  # the cosine and wsd schedules end at this fraction of lr, by default
MAX_LAYERS = 100  # stacked recurrent layers (seqrnn.schema.MAX_LAYERS): more take minutes to build
MAX_SEED = 2**32 - 1  # seqrnn.limits.MAX_SEED: what every random generator used here accepts
MAX_THREADS = 1024


@dataclass
class ModelConfig:
    # GRU by default: on order data (seqrnn.datasets.order, seed 1) it found 0.98 of the anomalies at the
    # calibrated cut where the LSTM found 0.58; on HDFS splits both were within a false positive or two
    # (docs/calibration.md). --preset deeplog keeps DeepLog's LSTM.
    cell: str = "gru"
    layers: int = 2
    hidden: int = 64
    embedding_dim: int = 32
    dropout: float = 0.0
    # DropConnect on the recurrent (hidden-to-hidden) weights while training (AWD-LSTM, Merity et al.
    # 2018): one mask per batch, the same at every step; the trained weights are used as they are.
    weight_drop: float = 0.0
    mapping: str = "many-to-many"
    window: int = 10  # events before the target, many-to-one only
    bidirectional: bool = False  # many-to-one only: the window is read both ways (it never holds the target)


@dataclass
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 64  # sequences (sessions), rows (streams) or windows (many-to-one: x32)
    epochs: int = 30
    clip: float = 1.0  # max gradient norm; 0 turns clipping off
    patience: int = 5  # epochs without a better validation loss before stopping; 0 never stops
    validation_split: float = 0.1  # fraction of the training sequences held out
    chunk: int = 100  # steps of truncated back-propagation on streams
    seed: int = 0
    threads: int = 0  # 0: torch's default (the machine's cores)
    minutes: float = 0.0  # wall-clock bound on training; 0: none
    min_count: int = 1  # tokens seen fewer times are unknown
    topk: int = 9  # k of the top-k accuracy in the history
    schedule: str = "constant"  # learning rate: constant, cosine (to lr_floor), wsd (held, then decayed)
    warmup: int = 0  # optimizer steps of linear learning-rate warm-up
    eval_every: int = 0  # optimizer steps between validations (and history rows); 0: once per epoch
    lr_floor: float = COSINE_FLOOR  # the fraction of lr the cosine and wsd schedules decay to
    device: str = "auto"  # where to train: auto (a GPU if there is one), cpu, cuda, cuda:N
    # The training steps' products: auto is bfloat16 autocast on a GPU and float32 on a CPU; bfloat16 on a CPU
    # too (faster only where the processor multiplies bfloat16 natively, AVX-512 BF16 or AMX; slower elsewhere:
    # seqrnn.budget.probe_bf16 measures it). Weights, validation on a CPU, scoring and generation stay float32.
    precision: str = "auto"


PRESETS: dict[str, dict] = {
    # DeepLog (Du et al., CCS 2017): two LSTM layers of 64, Adam, window 10.
    "deeplog": dict(cell="lstm", layers=2, hidden=64, embedding_dim=32, dropout=0.0, window=10,
                    optimizer="adam", lr=3e-3),
    # The 2016 sequence-rnn-py model: 2x512 LSTM, dropout 0.2, RMSprop 1e-3, sentences of 40.
    "seed": dict(cell="lstm", layers=2, hidden=512, embedding_dim=64, dropout=0.2, window=40,
                 optimizer="rmsprop", lr=1e-3, chunk=40),
    # Character-level text (bench/text_shakespeare.py, docs/text.md): sized and scheduled for
    # about ten minutes on two cores. Ten minutes are few updates, so chunks of 50 (twice the
    # steps of 100) and the rate held high until the final decay; validated every 200 steps
    # because one epoch of tinyshakespeare is over two minutes. AdamW's weight decay 0.1: ten minutes
    # on a fast machine read the text 14 times; on the tuning split it ended at 1.3867 nats/char
    # against Adam's 1.4049, and at 1.4256 against 1.4410 in three minutes (docs/text.md).
    "text": dict(cell="lstm", layers=2, hidden=512, embedding_dim=64, dropout=0.1, optimizer="adamw",
                 weight_decay=0.1, lr=3e-3, batch_size=64, chunk=50, schedule="wsd", warmup=20, eval_every=200,
                 patience=0),
}


# Settings renamed since: old name -> new name (read from older model directories and files).
LEGACY_SETTINGS = {"validation": "validation_split"}


def split_settings(settings: dict) -> tuple[dict, dict]:
    """Split flat settings into ModelConfig and TrainConfig keyword arguments."""
    settings = {LEGACY_SETTINGS.get(k, k): v for k, v in settings.items()}
    mnames = {f.name for f in fields(ModelConfig)}
    tnames = {f.name for f in fields(TrainConfig)}
    unknown = set(settings) - mnames - tnames
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return ({k: v for k, v in settings.items() if k in mnames},
            {k: v for k, v in settings.items() if k in tnames})


def make_configs(preset: str | None = None, **overrides) -> tuple[ModelConfig, TrainConfig]:
    from .errors import InputError

    settings: dict = {}
    if preset:
        if preset not in PRESETS:
            raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}", params="preset")
        settings.update(PRESETS[preset])
        # A preset's weight decay belongs to its optimizer (the text preset's is AdamW's decoupled decay):
        # another optimizer given without a weight decay gets none, not that number as an L2 penalty.
        if overrides.get("optimizer") not in (None, settings.get("optimizer")) \
                and overrides.get("weight_decay") is None:
            settings.pop("weight_decay", None)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    try:
        m, t = split_settings(settings)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    mc, tc = ModelConfig(**m), TrainConfig(**t)
    validate(mc, tc)
    return mc, tc


def check_types(cfg) -> None:
    """Raise :class:`~seqrnn.errors.InputError` for a setting of the wrong type (``hidden="16"``, ``epochs=2.5``,
    ``hidden=True``), naming it: the dataclass's annotation is the type (an int is a float too)."""
    from .errors import InputError

    import math

    for f in fields(cfg):
        v = getattr(cfg, f.name)
        ok = {"int": isinstance(v, int) and not isinstance(v, bool),
              "float": isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
              "str": isinstance(v, str), "bool": isinstance(v, bool)}.get(str(f.type), True)
        if not ok:
            raise InputError(f"{f.name} must be {'a finite number' if f.type == 'float' else f'of type {f.type}'}, "
                             f"not {v!r}", params=f.name)


MAX_LR = 1e3  # beyond it Adam's update overflows float32 (1e38: a RuntimeError deep in torch)


def validate(mc: ModelConfig, tc: TrainConfig) -> None:
    """Raise :class:`~seqrnn.errors.InputError` for the first setting of the wrong type or out of its
    range, naming it."""
    from .errors import InputError

    check_types(mc)
    check_types(tc)

    def at_least(name: str, value, low) -> tuple:
        return value >= low, f"{name} must be >= {low}, not {value}", (name,)

    checks = [
        (mc.cell in CELLS, f"cell must be one of {CELLS}, not {mc.cell!r}", ("cell",)),
        (mc.mapping in MAPPINGS, f"mapping must be one of {MAPPINGS}, not {mc.mapping!r}", ("mapping",)),
        (tc.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, not {tc.optimizer!r}", ("optimizer",)),
        (1 <= mc.layers <= MAX_LAYERS, f"layers must be from 1 to {MAX_LAYERS}, not {mc.layers}", ("layers",)),
        at_least("hidden", mc.hidden, 1),
        at_least("embedding_dim", mc.embedding_dim, 1),
        (0.0 <= mc.dropout < 1.0, f"dropout must be in [0, 1), not {mc.dropout}", ("dropout",)),
        (0.0 <= mc.weight_drop < 1.0, f"weight_drop must be in [0, 1), not {mc.weight_drop}", ("weight_drop",)),
        at_least("window", mc.window, 1),
        # A bidirectional many-to-many model would read each target through its backward pass and learn to copy.
        (not mc.bidirectional or mc.mapping == "many-to-one",
         "bidirectional needs mapping many-to-one: a bidirectional many-to-many model sees the event it "
         "predicts through its backward pass (for context on both sides of an event use the context model)",
         ("bidirectional", "mapping")),
        (0 < tc.lr <= MAX_LR, f"lr must be > 0 and at most {MAX_LR:g}, not {tc.lr}", ("lr",)),
        at_least("weight_decay", tc.weight_decay, 0), at_least("patience", tc.patience, 0),
        at_least("clip", tc.clip, 0), at_least("minutes", tc.minutes, 0),
        at_least("batch_size", tc.batch_size, 1), at_least("epochs", tc.epochs, 1), at_least("chunk", tc.chunk, 2),
        (0.0 <= tc.validation_split < 1.0,
         f"validation_split (a fraction) must be in [0, 1), not {tc.validation_split}", ("validation_split",)),
        at_least("topk", tc.topk, 1),
        (tc.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, not {tc.schedule!r}", ("schedule",)),
        at_least("warmup", tc.warmup, 0), at_least("eval_every", tc.eval_every, 0),
        (0 <= tc.seed <= MAX_SEED, f"seed must be an integer from 0 to {MAX_SEED}, not {tc.seed}", ("seed",)),
        (0 <= tc.threads <= MAX_THREADS, f"threads must be from 0 (all cores) to {MAX_THREADS}, not {tc.threads}",
         ("threads",)),
        (0.0 <= tc.lr_floor <= 1.0, f"lr_floor must be in [0, 1], not {tc.lr_floor}", ("lr_floor",)),
        (tc.device in ("auto", "cpu", "cuda") or tc.device.startswith("cuda:"),
         f"device must be auto, cpu, cuda or cuda:N, not {tc.device!r}", ("device",)),
        (tc.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, not {tc.precision!r}", ("precision",)),
    ]
    for ok, msg, params in checks:
        if not ok:
            raise InputError(msg, params=params)


def to_dict(cfg) -> dict:
    return asdict(cfg)


def setting_names(data: dict, source: str | None = None) -> dict:
    """``data`` with its keys as setting names (``embedding-dim`` -> ``embedding_dim``); a key that
    names no setting is an :class:`~seqrnn.errors.InputError` naming ``source`` (the file it came from)."""
    from .errors import InputError

    out = {str(k).replace("-", "_"): v for k, v in data.items()}
    try:
        split_settings(out)
    except ValueError as exc:
        raise InputError(str(exc), source) from None
    return out


def read_settings(path: str) -> dict:
    """Settings from a JSON file: an object of settings (``{"hidden": 128, ...}``), or a
    file with a ``"settings"`` object inside (a model's ``config.json``, ``seqrnn tune``'s
    best configuration). Keys are setting names (``embedding_dim`` or ``embedding-dim``);
    an unknown one is an :class:`~seqrnn.errors.InputError`.
    """
    from .artifacts import read_json
    from .errors import InputError

    data = read_json(path, InputError, "settings file")
    if isinstance(data, dict) and isinstance(data.get("settings"), dict):
        data = data["settings"]
    if not isinstance(data, dict):
        raise InputError("a settings file holds one JSON object of settings", path)
    empty = sorted(k for k, v in data.items() if v is None)
    if empty:
        raise InputError(f"setting {empty[0]} is null: give it a value, or leave it out for its default", path)
    out = setting_names(data, path)
    m, t = split_settings(out)
    try:  # a value of the wrong type or range is the file's, not a flag's (the file is named)
        validate(ModelConfig(**m), TrainConfig(**t))
    except InputError as exc:
        if exc.params and set(exc.params) <= set(m) | set(t):  # not a clash with a default a flag may change
            raise InputError(exc.reason, path) from None
    return out
