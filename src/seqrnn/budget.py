"""Sizing a text model for a time budget (``seqrnn train --format text --minutes M``).

Which model, chunk length, batch and validation period give the lowest
validation loss in ``M`` minutes depends on how much compute those minutes
hold, so the budget is counted in *reference minutes*: ``M`` times this
machine's float32 matrix-multiply rate (:func:`probe_gflops`, a quarter of a
second at start) over :data:`REFERENCE_GFLOPS`, the rate of the machine the
table was measured on (2 cores, 2 torch threads). Twenty minutes on one
thread there are about ten reference minutes.

:data:`CHAR_SIZES` is the table, fitted from training runs at several budgets
and sizes (docs/text.md lists them): a small model learns faster in the
first minutes, a larger one ends lower when it has the time. Word-level
text is a small model in short chunks whatever the budget (a text of
200,000 words is short of words, not of compute), its words seen once
``<unk>``, with more dropout for a text read many times (:func:`text_settings`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

# probe_gflops() at 2 threads on the machine the table was measured on, in the same run as the
# rows' chars_per_second (bench/results/text_sizing_2t.json)
REFERENCE_GFLOPS = 129.0


@dataclass(frozen=True)
class Size:
    """One row of the table: the settings for budgets up to ``up_to`` reference minutes."""

    up_to: float  # reference minutes (math.inf: the last row)
    layers: int
    hidden: int
    dropout: float
    chars_per_second: float  # training characters/s measured at the reference speed (for the plan)
    embedding_dim: int = 64
    batch_size: int = 64
    chunk: int = 50
    lr: float = 3e-3

    def settings(self) -> dict:
        out = asdict(self)
        for key in ("up_to", "chars_per_second"):
            del out[key]
        return out


# Character-level text; chosen on tinyshakespeare's first 90% (docs/text.md, "Sizing for a budget").
# The 2x256 rows read 32 rows at a time: as many characters/s as 64, twice the updates, which a run of a
# few minutes is short of (1 and 3 minutes: 1.756 and 1.519 nats/char against 1.896 and 1.584 with 64);
# at ten minutes 64 rows did as well (2x384: 1.448 against 1.456 with 32).
CHAR_SIZES = (
    Size(2.0, 2, 256, 0.0, 12_700.0, batch_size=32),
    # 2x256 up to 9 reference minutes (was 6): at 3 minutes on the AMX host (6.2-6.6 reference minutes, bfloat16)
    # it read 39,900 characters/s against 25,400 for 2x384 and ended at 1.4221 against 1.4388 (tuning split).
    Size(9.0, 2, 256, 0.1, 12_700.0, batch_size=32),
    Size(30.0, 2, 384, 0.1, 7_250.0),
    Size(60.0, 2, 512, 0.1, 4_480.0),
    Size(math.inf, 2, 512, 0.2, 4_480.0),
)
VALIDATIONS = (3, 10)  # validations in a budget-sized run: about one a minute, at least 3, at most 10
WORD_EMBEDDING = 128
# Words: 2x128 in 32 rows, whatever the budget. Tuning split (164,249 training words, 9,180 distinct ones seen at
# least twice), one run each: at 10 minutes on a float32 host 2x128 ended at 5.469 nats/word, 2x256 at 5.566 and
# 2x384 (64 rows, what the rule before gave: a word costing what its characters cost) at 5.588, all with dropout
# 0.2; at 3 minutes (every word kept) 2x128 beat 2x256 and 2x384 too (docs/text.md). A text this size is short of
# words, not of compute; larger texts were not measured. Rows: at 3 minutes with every word kept 16 rows did better
# than 32 (7.310 against 7.417 nats/word, one run each); 32 are kept, the rows every later word run was made with.
WORD_HIDDEN = 128
WORD_ROWS = 32
# Words are read 10 at a time, not 50: a word model's step costs the output layer over its vocabulary, so a
# budget buys few of them, and a short chunk makes more steps of the same words (tuning split, 3 minutes, the
# rule's 2x128: 7.975 nats/word with chunks of 50, 7.760 with 20, 7.417 with 10, 7.348 with 5; docs/text.md).
WORD_CHUNK = 10
# A word seen once in the training text is <unk> (min_count 2): the model then learns <unk>, which the held-out
# text's new words (11% of tinyshakespeare's last tenth) are read as, and its output layer is 9,180 words, not
# 22,271. Tuning split, 3 minutes, the rule's 2x128 on a float32 host: 5.442 nats/word against 6.252 for a
# unigram count of the same vocabulary; with every word kept, 7.440 against the unigram's 7.695, in 1,491 steps
# against 4,209 (docs/text.md, "Words: <unk> learned"). Generation never draws <unk>.
WORD_MIN_COUNT = 2
# A word model expected to read its training text WORD_MANY_EPOCHS times or more gets dropout 0.5: at 10 minutes
# (2x128, 32 rows, 21 to 22 epochs) 5.289 nats/word against 5.469 with 0.2; over those two runs' validations (the
# rate still high) 0.5 was level with 0.2 at about 6 epochs and ahead from 7; at 3 minutes (7.1 epochs, decayed)
# 5.409 against 5.442 with 0.1. One run each (docs/text.md, "Words: <unk> learned"). The plan counts 5: its epochs
# ran 5 to 15% under what those runs read.
WORD_MANY_EPOCHS = 5.0
WORD_MANY_EPOCHS_DROPOUT = 0.5
# What the plan expects a word model to read: 2x128 in 32 rows of 10 over a vocabulary of WORD_SPEED_VOCABULARY
# read 2,721 to 3,476 words/s scaled to the reference machine's speed (4 runs on the float32 host: 6,179 to 7,828
# words/s at 250 to 304 GFLOP/s); other vocabularies by their output layer's share of the FLOPs. It sets the
# plan's epochs (and so the dropout) and its validation period.
WORD_WORDS_PER_SECOND = 3_000.0
WORD_SPEED_VOCABULARY = 9_184
# bfloat16 autocast where the processor's bfloat16 products are at least BF16_MIN times as fast as its float32
# ones (probe_bf16: 1.8 to 2.0 on this machine's AVX-512 BF16 days; on its days without, 0.44, and training stays
# float32). On the tuning split it gave the same loss at the same step and 1.14 (2x256, 32 rows) to 1.45 (2x384,
# 64 rows) times the characters a second; BF16_SPEEDUP, between them, only sets the plan's validation period
# (docs/text.md, "bfloat16 where the processor has it").
BF16_MIN = 1.5
BF16_SPEEDUP = 1.3
# A run expected to read its training text MANY_EPOCHS times or more gets dropout MANY_EPOCHS_DROPOUT at least:
# overfitting follows the passes over the text, not the minutes (a fast machine, bfloat16, or a short text
# make more of them). Tuning split, 2x384 in bfloat16, one run each: 8.2 epochs, 1.4034 with dropout 0.1 and 1.4147
# with 0.2; 18.5 epochs, 1.4032 with 0.1 and 1.3860 with 0.2 (docs/text.md, "Dropout by epochs").
MANY_EPOCHS = 12.0
MANY_EPOCHS_DROPOUT = 0.2


def probe_gflops(n: int = 256, seconds: float = 0.25, dtype: str = "float32") -> float:
    """This machine's matrix-multiply rate (GFLOP/s) with torch's current threads: the best of repeated
    ``n x n`` products of ``dtype`` (float32 or bfloat16) over about ``seconds``."""
    import torch

    a, b = (torch.randn(n, n).to(getattr(torch, dtype)) for _ in range(2))
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(8):
            a @ b
        best = max(best, 8 * 2 * n ** 3 / max(time.perf_counter() - t0, 1e-9) / 1e9)
    return best


def probe_bf16(gflops: float, seconds: float = 0.15) -> float:
    """How many times this machine's bfloat16 products outrun its float32 ones (``gflops``, from
    :func:`probe_gflops`): above 1 only where the processor multiplies bfloat16 natively."""
    return probe_gflops(seconds=seconds, dtype="bfloat16") / max(gflops, 1e-9)


def reference_minutes(minutes: float, gflops: float) -> float:
    """``minutes`` on a machine of ``gflops`` as minutes of the reference machine."""
    return minutes * gflops / REFERENCE_GFLOPS


def flops_per_token(layers: int, hidden: int, embedding_dim: int, vocab_size: int, cell: str = "lstm") -> float:
    """Training FLOPs per token: the forward pass's matrix products, x3 for forward and backward."""
    gates = 4 if cell == "lstm" else 3
    fwd, inp = 0, embedding_dim
    for _ in range(layers):
        fwd += 2 * gates * hidden * (inp + hidden)
        inp = hidden
    return 3 * (fwd + 2 * hidden * vocab_size)


@dataclass
class Plan:
    """What :func:`text_settings` chose, and why: ``settings`` go to the model."""

    minutes: float
    gflops: float
    reference_minutes: float
    settings: dict
    tokens_per_second: float  # expected training speed here
    expected_tokens: float  # tokens the training minutes should read
    train_tokens: float | None = None  # the text's tokens less its validation part, where the text was given

    def describe(self) -> str:
        s = self.settings
        wd = f", weight drop {s['weight_drop']}" if s.get("weight_drop") else ""
        bf16 = " in bfloat16" if s.get("precision") == "bfloat16" else ""
        line = (f"budget {self.minutes:g} min x {self.gflops:.0f} GFLOP/s = {self.reference_minutes:.1f} reference "
                f"minutes: {s['layers']}x{s['hidden']} {s.get('cell', 'lstm').upper()}{bf16}, dropout {s['dropout']}{wd}, "
                f"{s['batch_size']} rows of {s['chunk']}, validation every {s['eval_every']} steps")
        if s.get("min_count", 1) > 1:
            line += f"; words seen fewer than {s['min_count']} times are <unk>"
        if self.train_tokens:
            line += f"; about {self.expected_epochs:.1f} epochs"
        return line

    @property
    def expected_epochs(self) -> float | None:
        """How many times the training minutes should read the training text (None: the text was not given)."""
        return self.expected_tokens / max(self.train_tokens, 1) if self.train_tokens is not None else None


def word_chars(words) -> int:
    """The characters whitespace-separated words stand for: each word and the space or line end after it."""
    return sum(len(t) + 1 for t in words)


def sizing_inputs(seqs, tokens: str = "chars", min_count: int | None = None) -> dict:
    """What :func:`text_settings` needs to know of the text (``seqs``, read with ``tokens``): the tokens,
    their number, the vocabulary's size (its tokens seen ``min_count`` times or more, by default 1 for
    characters and :data:`WORD_MIN_COUNT` for words, and the 4 reserved) and the characters per token."""
    from collections import Counter

    n = sum(len(s) for s in seqs)
    chars = sum(word_chars(s.tokens) for s in seqs) if tokens == "words" else n
    if min_count is None:
        min_count = WORD_MIN_COUNT if tokens == "words" else 1
    counts = Counter(t for s in seqs for t in s.tokens)
    return dict(tokens=tokens, text_tokens=n, vocab_size=sum(1 for c in counts.values() if c >= min_count) + 4,
                chars_per_token=chars / max(n, 1))


def text_settings(minutes: float, gflops: float, *, train_minutes: float | None = None, tokens: str = "chars",
                  vocab_size: int = 100, chars_per_token: float = 1.0, bf16: float = 0.0,
                  text_tokens: int | None = None, validation_split: float = 0.1) -> Plan:
    """The settings (on top of the ``text`` preset) for a text model trained ``minutes`` on a machine of
    ``gflops`` (:func:`probe_gflops`).

    ``train_minutes``: the part of the budget left for training itself (default
    ``minutes``), which sets the validation period. For ``tokens="words"``
    the model is 2x:data:`WORD_HIDDEN` in :data:`WORD_ROWS` rows of
    :data:`WORD_CHUNK` words, words seen fewer than :data:`WORD_MIN_COUNT`
    times being ``<unk>``; ``vocab_size`` (its output layer) sets its expected
    speed and so the epochs the plan counts, and a run expected to read its text
    :data:`WORD_MANY_EPOCHS` times or more gets dropout
    :data:`WORD_MANY_EPOCHS_DROPOUT`. ``chars_per_token`` (from
    :func:`sizing_inputs`) is accepted and not used: the rule before counted a
    word's cost against its characters'. ``bf16``: how many times faster this machine
    multiplies bfloat16 than float32 (:func:`probe_bf16`); from
    :data:`BF16_MIN` on, training runs in bfloat16 autocast, expected
    :data:`BF16_SPEEDUP` times as fast. ``text_tokens``: the text's tokens, of
    which ``validation_split`` validate; a run expected to read the rest
    :data:`MANY_EPOCHS` times or more gets dropout :data:`MANY_EPOCHS_DROPOUT`
    at least.
    """
    ref = reference_minutes(minutes, gflops)
    row = next(r for r in CHAR_SIZES if ref <= r.up_to)
    settings = row.settings()
    reference_speed = row.chars_per_second  # tokens/s on the reference machine
    if tokens == "words":
        settings.update(hidden=WORD_HIDDEN, batch_size=WORD_ROWS, embedding_dim=WORD_EMBEDDING, chunk=WORD_CHUNK,
                        min_count=WORD_MIN_COUNT)
        # measured at WORD_SPEED_VOCABULARY; another vocabulary by its output layer's share of the FLOPs
        measured, this = (flops_per_token(2, WORD_HIDDEN, WORD_EMBEDDING, n)
                          for n in (WORD_SPEED_VOCABULARY, vocab_size))
        reference_speed = WORD_WORDS_PER_SECOND * measured / this
    speed = reference_speed * gflops / REFERENCE_GFLOPS
    if bf16 >= BF16_MIN:
        settings["precision"] = "bfloat16"
        speed *= BF16_SPEEDUP
    train_minutes = minutes if train_minutes is None else train_minutes
    train_tokens = text_tokens * (1 - validation_split) if text_tokens else None
    expected = speed * max(train_minutes, 0.0) * 60
    plan = Plan(minutes, gflops, ref, settings, speed, expected, train_tokens)
    if plan.train_tokens and plan.expected_epochs >= MANY_EPOCHS:
        settings["dropout"] = max(settings["dropout"], MANY_EPOCHS_DROPOUT)
    if tokens == "words" and plan.train_tokens and plan.expected_epochs >= WORD_MANY_EPOCHS:
        settings["dropout"] = max(settings["dropout"], WORD_MANY_EPOCHS_DROPOUT)
    n_validations = min(max(round(train_minutes), VALIDATIONS[0]), VALIDATIONS[1])
    steps = expected / (settings["batch_size"] * settings["chunk"])
    settings["eval_every"] = max(10, int(steps / n_validations))
    return plan
