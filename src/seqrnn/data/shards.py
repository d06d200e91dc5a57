"""Training data larger than memory: sequences encoded once into memory-mapped shards.

``seqrnn encode INPUT... --output DIR`` reads any input format file by file
and writes a folder of shards, each three ``.npy`` files: the tokens of its
sequences one after another (``int32`` ids), the offsets where each
sequence starts (``int64``, one more than the sequences) and whether each is
a finished session (``bool``). ``shards.json`` holds the token strings (id
``i`` is the ``i``-th distinct token met), their counts in the training
part, and the list of shards. The held-out part is decided as the data is
read (each session with probability ``validation_split``, seeded; the last
``validation_split`` of each stream piece) and written to shards of its
own, so the vocabulary counts the training part only.

A folder is checked as it is read, never trusted: ``shards.json`` field by
field (:func:`check_meta`), each shard's ``.npy`` headers before it is
loaded (an array of Python objects is refused unread: nothing is ever
unpickled) and its contents once (:func:`check_arrays`: offsets from 0 up
to the last token, token ids within the vocabulary); anything else is an
:class:`~seqrnn.errors.InputError` naming the file.

Training reads the shards in a new random order every epoch, one at a time
(:class:`ShardBatches`), memory-mapped and let go after use: memory holds
one shard's batches, whatever the size of the corpus. Within a shard the
batches are made by the model's own batch maker (sessions in length
buckets, streams in carried chunks, windows), so training on shards is
training on the same batches, shard by shard; a stream's state starts
afresh at each shard.

Under torchrun each process reads its own shards (dealt round-robin after
the epoch's shuffle); all stop when the first runs out of batches, so that
they step together (an epoch of ``N`` processes drops at most the batches
one process has more than another: make many shards per process).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..artifacts import check_output_folder
from ..errors import InputError
from .formats import Sequence, expand_paths, read_sequences
from .vocab import SPECIALS, UNK, Vocabulary

FORMAT = "seqrnn-shards"
FORMAT_VERSION = 1
META = "shards.json"
SHARD_EVENTS = 1 << 22  # events per shard (16 MiB of int32 tokens)


def is_shards(path) -> bool:
    """Whether ``path`` is a folder written by :class:`ShardWriter` (``seqrnn encode``)."""
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(path, META))


class ShardWriter:
    """Encode sequences into shards of about ``shard_events`` events; :meth:`close` writes ``shards.json``."""

    def __init__(self, folder: str, *, data_format: str = "sessions", text_tokens: str = "chars",
                 validation_split: float = 0.1, seed: int = 0, shard_events: int = SHARD_EVENTS):
        if not 0.0 <= validation_split < 1.0:
            raise InputError(f"validation_split (a fraction) must be in [0, 1), not {validation_split}",
                             params="validation_split")
        if shard_events < 1:
            raise InputError(f"shard_events must be >= 1, not {shard_events}", params="shard_events")
        check_output_folder(folder, "--output", "the shards folder to write")
        if is_shards(folder) or (os.path.isdir(folder) and os.listdir(folder)):
            raise InputError("the output folder exists and is not empty: encode into a new folder", folder)
        os.makedirs(folder, exist_ok=True)
        self.folder, self.data_format, self.text_tokens = folder, data_format, text_tokens
        self.validation_split, self.seed, self.shard_events = validation_split, seed, shard_events
        self.rng = np.random.default_rng(seed)
        self.ids: dict[str, int] = {}
        self.counts: list[int] = []
        self.shards: dict[str, list[dict]] = {"train": [], "valid": []}
        self.pending: dict[str, list[tuple[np.ndarray, bool]]] = {"train": [], "valid": []}
        self.pending_events = {"train": 0, "valid": 0}

    def _encode(self, tokens: list[str], count: bool) -> np.ndarray:
        ids = self.ids
        out = np.empty(len(tokens), np.int32)
        for i, t in enumerate(tokens):
            j = ids.get(t)
            if j is None:
                j = ids[t] = len(ids)
                self.counts.append(0)
            out[i] = j
            if count:
                self.counts[j] += 1
        return out

    def add(self, seq: Sequence) -> None:
        """Add one sequence: a session to the training or held-out part, a stream piece split in two."""
        if seq.complete:
            part = "valid" if self.validation_split and self.rng.random() < self.validation_split else "train"
            self._put(part, self._encode(seq.tokens, part == "train"), True)
            return
        cut = int(round(len(seq) * (1 - self.validation_split)))
        self._put("train", self._encode(seq.tokens[:cut], True), False)
        if cut < len(seq):
            self._put("valid", self._encode(seq.tokens[cut:], False), False)

    def _put(self, part: str, ids: np.ndarray, complete: bool) -> None:
        if not len(ids) and not complete:
            return
        if not complete and len(ids) > self.shard_events:  # a long stream is cut at shard boundaries
            for s in range(0, len(ids), self.shard_events):
                self._put(part, ids[s:s + self.shard_events], False)
            return
        self.pending[part].append((ids, complete))
        self.pending_events[part] += len(ids)
        if self.pending_events[part] >= self.shard_events:
            self._flush(part)

    def _flush(self, part: str) -> None:
        rows = self.pending[part]
        if not rows:
            return
        name = f"{part}-{len(self.shards[part]):05d}"
        tokens = np.concatenate([r[0] for r in rows]).astype(np.int32)
        offsets = np.concatenate(([0], np.cumsum([len(r[0]) for r in rows]))).astype(np.int64)
        complete = np.array([r[1] for r in rows], dtype=bool)
        for suffix, arr in (("tokens", tokens), ("offsets", offsets), ("complete", complete)):
            tmp = os.path.join(self.folder, f"{name}.{suffix}.tmp.npy")
            np.save(tmp, arr)
            os.replace(tmp, os.path.join(self.folder, f"{name}.{suffix}.npy"))
        self.shards[part].append({"name": name, "sequences": len(rows), "events": int(len(tokens))})
        self.pending[part], self.pending_events[part] = [], 0

    def close(self) -> dict:
        from ..artifacts import write_json

        for part in self.pending:
            self._flush(part)
        tokens = [None] * len(self.ids)
        for t, i in self.ids.items():
            tokens[i] = t
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "data_format": self.data_format,
                "text_tokens": self.text_tokens, "validation_split": self.validation_split, "seed": self.seed,
                "tokens": tokens, "counts": self.counts, "shards": self.shards,
                "sequences": {p: sum(s["sequences"] for s in v) for p, v in self.shards.items()},
                "events": {p: sum(s["events"] for s in v) for p, v in self.shards.items()}}
        write_json(os.path.join(self.folder, META), meta)
        return meta


def encode(inputs, folder: str, format: str = "sessions", *, text_tokens: str = "chars",
           separate_files: bool = False, max_length: int | None = None, **writer_options) -> dict:
    """Encode the files of ``inputs`` (read one file at a time) into shards in ``folder``; returns the summary."""
    writer = ShardWriter(folder, data_format=format, text_tokens=text_tokens, **writer_options)
    extra = {"max_length": max_length} if max_length else {}
    for path in expand_paths(inputs):
        for seq in read_sequences([path], format, separate_files=separate_files, text_tokens=text_tokens, **extra):
            writer.add(seq)
    return writer.close()


@dataclass
class Shard:
    folder: str
    name: str
    sequences: int
    events: int
    vocabulary: int = 0  # distinct tokens of the folder: every token id is below it
    checked: bool = field(default=False, repr=False, compare=False)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tokens, offsets and finished flags, memory-mapped (read as they are touched); checked the
        first time (:func:`check_arrays`): a shard that is not what ``shards.json`` says is refused."""
        base = os.path.join(self.folder, self.name)
        paths = [f"{base}.{suffix}.npy" for suffix in ("tokens", "offsets", "complete")]
        if not self.checked:
            for path, kinds, length in zip(paths, ("iu", "iu", "b"),
                                           (self.events, self.sequences + 1, self.sequences)):
                _check_header(path, kinds, length)
        try:
            arrays = (np.load(paths[0], mmap_mode="r", allow_pickle=False), np.load(paths[1], allow_pickle=False),
                      np.load(paths[2], allow_pickle=False))
        except (ValueError, OSError, EOFError) as exc:  # (changed since it was checked)
            raise InputError(f"cannot read this shard: {exc}", base) from None
        if not self.checked:
            check_arrays(base, *arrays, self.vocabulary)
            self.checked = True
        return arrays


def _check_header(path: str, kinds: str, length: int) -> None:
    """Refuse a ``.npy`` file that is not a 1-D array of ``length`` values of a dtype of ``kinds`` (numpy's
    kind letters), read from its header alone: an array of Python objects is never loaded (no unpickling)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            version = fmt.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version}")
            shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
            data_at = fh.tell()
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise InputError("missing: the shards folder is incomplete (encode it again)", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not an array written by seqrnn encode ({exc})", path) from None
    if dtype.hasobject:
        raise InputError("holds Python objects (pickled data), not numbers: refused unread", path)
    if dtype.kind not in kinds or len(shape) != 1:
        raise InputError(f"holds {dtype} values of shape {shape}, not a list of "
                         f"{'integers' if kinds == 'iu' else 'booleans'}", path)
    if shape[0] != length:
        raise InputError(f"holds {shape[0]:,} values where shards.json says {length:,}", path)
    if size < data_at + shape[0] * dtype.itemsize:
        raise InputError(f"is truncated ({size:,} bytes for {shape[0]:,} values)", path)


def check_arrays(base: str, tokens: np.ndarray, offsets: np.ndarray, complete: np.ndarray, vocabulary: int) -> None:
    """Offsets that start at 0, never go down and end at the last token; token ids in ``[0, vocabulary)``."""
    where = f"{base}.offsets.npy"
    offsets = np.asarray(offsets).astype(np.int64)  # unsigned ones would wrap below in np.diff
    if offsets[0] != 0:
        raise InputError(f"the first offset is {offsets[0]}, not 0", where)
    steps = np.diff(offsets)
    if len(steps) and steps.min() < 0:
        i = int(np.argmax(steps < 0)) + 1
        raise InputError(f"offset {i} ({offsets[i]}) is below the one before it ({offsets[i - 1]})", where)
    if offsets[-1] != len(tokens):
        raise InputError(f"the last offset is {offsets[-1]}, not the number of tokens ({len(tokens):,})", where)
    if len(tokens):
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= vocabulary:
            bad = low if low < 0 else high
            i = int(np.argmax(np.asarray(tokens) == bad))
            raise InputError(f"token id {bad} at position {i:,} is outside the {vocabulary:,} tokens of shards.json",
                             f"{base}.tokens.npy")


_NAME = re.compile(r"^(train|valid)-\d{5,}$")


def _natural(v) -> bool:
    return type(v) is int and v >= 0


def check_meta(meta, path: str) -> None:
    """Refuse a ``shards.json`` that is not one :meth:`ShardWriter.close` writes: every field of the
    right type, the token list and counts of one length, the shards of each part named as the writer
    names them (no path), their totals equal to the part's."""
    from .formats import FORMATS

    def bad(what):
        raise InputError(f"bad {what} (not a shards index written by seqrnn encode)", path)

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} index", path)
    version = meta.get("format_version", 0)
    if not _natural(version):
        bad("format_version")
    if version > FORMAT_VERSION:
        raise InputError("written by a newer seqrnn", path)
    if meta.get("data_format") not in FORMATS:
        bad("data_format")
    if meta.get("text_tokens", "chars") not in ("chars", "words"):
        bad("text_tokens")
    tokens, counts = meta.get("tokens"), meta.get("counts")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or len(set(tokens)) != len(tokens):
        bad("tokens (a list of distinct strings)")
    if not isinstance(counts, list) or len(counts) != len(tokens) or not all(_natural(c) for c in counts):
        bad("counts (a count for each token)")
    shards = meta.get("shards")
    if not isinstance(shards, dict) or not set(shards) <= {"train", "valid"}:
        bad("shards (the train and valid parts)")
    names = set()
    for part, entries in shards.items():
        if not isinstance(entries, list):
            bad(f"shards of {part}")
        for e in entries:
            if (not isinstance(e, dict) or not isinstance(e.get("name"), str) or not _NAME.match(e["name"])
                    or not e["name"].startswith(part) or e["name"] in names
                    or not _natural(e.get("sequences")) or not _natural(e.get("events"))):
                bad(f"shard entry {str(e)[:80]} of {part}")
            names.add(e["name"])
        for total in ("sequences", "events"):
            given = (meta.get(total) or {}).get(part) if isinstance(meta.get(total), dict) else None
            if given != sum(e[total] for e in entries):
                bad(f"{total} of {part} ({given!r}: not the sum over its shards)")


class ShardSet:
    """An encoded folder: its vocabulary and its training and held-out shards."""

    def __init__(self, folder: str):
        from ..artifacts import read_json

        self.folder = os.fspath(folder)
        path = os.path.join(self.folder, META)
        meta = read_json(path, InputError, "shards index")
        check_meta(meta, path)
        self.meta = meta
        self.data_format, self.text_tokens = meta["data_format"], meta.get("text_tokens", "chars")
        self.tokens: list[str] = meta["tokens"]
        self.counts: list[int] = meta["counts"]
        self.parts = {p: [Shard(self.folder, s["name"], s["sequences"], s["events"], len(self.tokens)) for s in v]
                      for p, v in meta["shards"].items()}

    def vocabulary(self, min_count: int = 1) -> Vocabulary:
        """The vocabulary the training part builds (as :meth:`Vocabulary.build` would from its sequences)."""
        items = sorted(((t, c) for t, c in zip(self.tokens, self.counts) if c >= min_count and t not in SPECIALS),
                       key=lambda tc: (-tc[1], tc[0]))
        return Vocabulary([t for t, _ in items], [c for _, c in items])

    def remap(self, vocab: Vocabulary) -> np.ndarray:
        """Shard id -> the vocabulary's id (``<unk>`` for a token it lacks)."""
        return np.array([vocab.stoi.get(t, UNK) for t in self.tokens], dtype=np.int64)

    def encoded(self, shard: Shard, table: np.ndarray) -> tuple[list[np.ndarray], list[bool]]:
        """One shard's sequences as the model's ids (``table`` from :meth:`remap`)."""
        tokens, offsets, complete = shard.arrays()
        ids = table[np.asarray(tokens)]
        return [ids[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)], complete.tolist()

    def sequences(self, part: str, limit: int | None = None) -> list[Sequence]:
        """Up to ``limit`` sequences of a part, decoded back to their tokens (for the detector's calibration)."""
        out: list[Sequence] = []
        for shard in self.parts.get(part, []):
            tokens, offsets, complete = shard.arrays()
            for i in range(len(offsets) - 1):
                if limit is not None and len(out) >= limit:
                    return out
                ids = np.asarray(tokens[offsets[i]:offsets[i + 1]])
                out.append(Sequence(f"{shard.name}:{i}", [self.tokens[j] for j in ids], self.folder, i + 1,
                                    bool(complete[i])))
        return out

    def events(self, part: str) -> int:
        return sum(s.events for s in self.parts.get(part, []))


class ShardBatches:
    """A batch maker over shards: each shard's batches made by ``make(ids, complete)``, shard after shard.

    In training (``rng`` given) the shards come in a new random order each
    epoch, and with a ``group`` of several processes each takes its own
    (dealt round-robin); in validation every process reads every shard (its
    rows are taken by :class:`seqrnn.distributed.RankBatches`).
    """

    def __init__(self, shards: ShardSet, part: str, table: np.ndarray, make, group=None):
        self.shards, self.part, self.table, self.make = shards, part, table, make
        self.list = shards.parts.get(part, [])
        self.group = group
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        """Events of one epoch (targets: a finished session's end counts too), for the progress bar."""
        return sum(s.events + self._ends(s) for s in self.list) // (self.group.size if self.group else 1)

    @staticmethod
    def _ends(shard: Shard) -> int:
        return int(np.count_nonzero(shard.arrays()[2]))

    def _maker(self, shard: Shard):
        return self.make(*self.shards.encoded(shard, self.table))

    def n_batches(self) -> int:
        """Batches of one epoch (per process: the whole divided among them), counted once."""
        for s in self.list:
            if s.name not in self._counts:
                self._counts[s.name] = self._maker(s).n_batches()
        total = sum(self._counts[s.name] for s in self.list)
        return total // (self.group.size if self.group else 1)

    def epoch(self, rng: np.random.Generator | None):
        order = list(self.list)
        if rng is not None:
            order = [order[i] for i in rng.permutation(len(order))]
        group = self.group if rng is not None else None
        if group is not None and group.size > 1:
            order = order[group.rank::group.size]
        own = (b for shard in order for b in self._maker(shard).epoch(rng))
        if group is None or group.size == 1:
            yield from own
            return
        while True:  # step together: stop when any process has no batch left
            batch = next(own, None)
            if group.any(batch is None):
                return
            yield batch
