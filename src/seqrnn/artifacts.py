"""The model directory: ``config.json`` beside ``model.safetensors``.

Nothing here unpickles: configuration and vocabulary are JSON, weights are
safetensors. Every file is written to a temporary name in the same folder
and then renamed over the old one, so a crash mid-write leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from typing import Any

from .errors import InputError, ModelFileError, SeqrnnError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
HISTORY = "history.csv"
CHECKPOINT = "checkpoint"  # sub-folder with the last training state, for --resume
FORMAT = "seqrnn-model"
FORMAT_VERSION = 1


def _umask() -> int:
    mask = os.umask(0o022)  # read it (there is no other way) and put it back
    os.umask(mask)
    return mask


def check_output_folder(path: str, flag: str, what: str) -> None:
    """Refuse an output folder ``path`` (given as ``flag``, naming ``what``) that is a file."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"is a file, not a folder ({flag} names {what})", path)


def make_folder_of(path: str) -> str:
    """Make the folder ``path`` goes in (and those above it) and return it; where a part of it is a file,
    an InputError naming that part (``os.makedirs`` says only 'File exists')."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        part = folder
        while not os.path.exists(part) and os.path.dirname(part) != part:
            part = os.path.dirname(part)
        raise InputError(f"cannot be written: {part} is a file, not a folder", path) from None
    return folder


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w", newline: str | None = None):
    """A file at ``path`` that appears whole or not at all: written under a temporary name beside it, flushed
    to disk and renamed over ``path`` when the block ends; after an error (or Ctrl-C) in the block the
    temporary file is removed and ``path`` is as it was. ``mode`` ``"w"`` (UTF-8 text, ``newline`` as for
    ``open``: ``""`` for the csv module) or ``"wb"``."""
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": newline}
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        # a device or a pipe (/dev/null, /dev/stdout, a FIFO): written as it is, never replaced by a file
        with open(path, mode, **text) as fh:
            yield fh
        return
    folder = make_folder_of(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: give the file the mode open() would
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename == tmp:  # name the user's path, not our temporary file
            raise type(exc)(exc.errno, exc.strerror, path) from None
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_file(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def as_arrays(tensors: dict) -> dict:
    """numpy arrays or torch tensors as contiguous numpy arrays: what a weights file holds."""
    import numpy as np

    arrays = {}
    for k, v in tensors.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().contiguous().numpy()
        arrays[k] = np.ascontiguousarray(v)
    return arrays


def save_tensors(path: str, tensors: dict, metadata: dict | None = None) -> None:
    """Write a dict of numpy arrays or torch tensors as safetensors, atomically."""
    from safetensors.numpy import save

    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, save(as_arrays(tensors), metadata=meta))


def load_tensors(path: str) -> dict:
    """Read a safetensors file into numpy arrays, with a clear error if it is broken. The file is
    memory-mapped, each tensor copied out of it once: never read whole into memory first."""
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise ModelFileError("weights file is missing" if not os.path.exists(path) else "not a regular file", path)
    from .limits import check_memory
    from .schema import DTYPE_BYTES, read_header

    header = read_header(path)  # checked, and the size of what it describes bounded, before any read
    check_memory(sum(math.prod(shape) * DTYPE_BYTES[dtype] for dtype, shape in header.values()),
                 "reading this file", error=ModelFileError, path=path)
    try:
        with safe_open(path, framework="np") as fh:
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
        return {k: v if v.flags.writeable else v.copy() for k, v in tensors.items()}
    except OSError as exc:
        raise ModelFileError(f"cannot read the weights file: {exc.strerror or exc}", path) from None
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"weights file is truncated or not safetensors ({exc})", path) from None


MAX_JSON_BYTES = 256 << 20  # a config.json of a million-token vocabulary is tens of MiB


_FINITE = json.JSONEncoder(allow_nan=False)  # json.dumps(obj, allow_nan=False) without a new encoder per call


def finite_json(obj: Any, model_dir: str | None = None, **kwargs) -> str:
    """``json.dumps`` that refuses NaN and infinity (not JSON, and never a result): a
    :class:`ModelFileError` saying the model's numbers are broken."""
    try:
        return _FINITE.encode(obj) if not kwargs else json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        raise ModelFileError("the model gave a value that is not a finite number (NaN or infinity): its weights "
                             "are unusable; train again (with a lower --lr)", model_dir) from None


def read_json(path: str, error: type = ModelFileError, what: str = "JSON"):
    """The parsed JSON file at ``path``; a file that is not UTF-8 JSON (or is larger than any file
    seqrnn writes) raises ``error`` naming it."""
    try:
        if os.path.isfile(path) and os.path.getsize(path) > MAX_JSON_BYTES:
            raise error(f"{what} file of {os.path.getsize(path):,} bytes, larger than any seqrnn writes "
                        f"({MAX_JSON_BYTES:,})", path)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, SeqrnnError):
            raise
        raise error(f"{what} is truncated or not JSON ({str(exc)[:200]})", path) from None


# What each kind of model directory holds, to point a user at the command that reads it.
KINDS = {"seqrnn-model": "a next-event model: use seqrnn detect, evaluate or predict",
         "seqrnn-classifier": "a classifier: use seqrnn classify predict or evaluate"}


# Folders of data that seqrnn writes, by the file that marks them, and the command that writes them: given
# where a model directory goes (read or written), they are named as such.
DATA_FOLDERS = (("parse.json", "seqrnn parse"), ("shards.json", "seqrnn encode"))


def read_config(model_dir: str, fmt: str | tuple[str, ...] = FORMAT, version: int = FORMAT_VERSION) -> dict:
    """The checked ``config.json`` of a model directory whose ``format`` is ``fmt`` (or one of them)."""
    if not os.path.isdir(model_dir):
        if os.path.exists(model_dir):  # the data given where the model goes: the arguments swapped
            raise ModelFileError("is a file, not a model directory (the folder a training wrote with "
                                 "--model-dir; it comes before the data)", model_dir)
        raise ModelFileError("no such model directory", model_dir)
    path = os.path.join(model_dir, CONFIG)
    if not os.path.isfile(path):
        for marker, writer in DATA_FOLDERS:
            if os.path.isfile(os.path.join(model_dir, marker)):  # data, not a model: train on it first
                raise ModelFileError(f"is a folder written by {writer}, not a model directory: train a model on "
                                     f"it (seqrnn train {model_dir} --model-dir DIR) and give DIR", model_dir)
        raise ModelFileError(f"not a seqrnn model directory ({CONFIG} is missing)", model_dir)
    config = read_json(path, ModelFileError, "config")
    found = config.get("format") if isinstance(config, dict) else None
    found = found if isinstance(found, str) else None
    if found not in ((fmt,) if isinstance(fmt, str) else fmt):
        fmt = fmt if isinstance(fmt, str) else fmt[0]
        hint = f" ({KINDS[found]})" if found in KINDS else ""
        raise ModelFileError(f"not a {fmt} config (no \"format\": \"{fmt}\"){hint}", path)
    found_version = config.get("format_version", 0)
    if isinstance(found_version, bool) or not isinstance(found_version, int):
        raise ModelFileError(f"format_version must be an integer, not {found_version!r:.60}", path)
    if found_version > version:
        raise ModelFileError(
            f"written by a newer seqrnn (format version {config['format_version']}); upgrade seqrnn", path)
    return config


def versions() -> dict:
    import platform

    from . import __version__

    out = {"seqrnn": __version__, "python": platform.python_version()}
    try:
        import numpy

        out["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover
        pass
    import sys

    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].__version__
    return out
