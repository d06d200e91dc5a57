"""Sampling: new text, or new event sessions, from a trained model.

Generation is incremental. The prompt (after ``BOS``) is read once; then
each new token is one step of the network, fed the token just drawn, with
the recurrent state carried — the prefix is never read again. All samples
are drawn together, as rows of one batch. A many-to-one model reads a
window, so it steps by sliding its window one token along.

At each step the next token is drawn from ``softmax(logits / temperature)``,
restricted to the ``top_k`` most likely tokens and to the smallest set whose
probability reaches ``top_p``. Temperature 0 is greedy decoding (the most
likely token). Reserved tokens are never drawn, except end-of-sequence for a
model of sessions: a sample stops there.

>>> samples = generate(model, prompt="ROMEO:", length=300, temperature=0.8, seed=1)  # doctest: +SKIP
>>> print(render(model, samples[0]))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .data.vocab import BOS, EOS, PAD, SPECIALS, UNK
from .errors import InputError
from .limits import check_memory, check_seed
from .models.numpy_rnn import gate_bias, gate_columns, gru_update, lstm_update
from .train import Callback


@dataclass
class Sample:
    """One generated sequence."""

    prompt: list[int]  # the prompt's ids
    ids: list[int]  # the generated ids, without the prompt and without EOS
    ended: bool = False  # stopped at the end-of-sequence marker
    logprob: list[float] = field(default_factory=list)  # log p of each generated id (temperature 1, unfiltered)


def stops_at_eos(model) -> bool:
    """Sessions end with EOS; a stream or a text goes on."""
    return getattr(model, "format_", "sessions") == "sessions"


def encode_prompt(model, prompt) -> np.ndarray:
    """The prompt's ids: a string (split in the model's unit) or a list of tokens.

    A text model of characters reads a string character by character, one
    of words splits it at white space, and an event model at spaces or commas.
    """
    if prompt is None or (isinstance(prompt, str) and prompt == ""):
        return np.zeros(0, np.int64)
    if isinstance(prompt, str):
        if model.format_ == "text":
            tokens = list(prompt) if getattr(model, "text_tokens_", "chars") == "chars" else prompt.split()
        else:
            tokens = prompt.replace(",", " ").split()
    else:
        tokens = [str(t) for t in prompt]
    unknown = sorted({t for t in tokens if model.vocab_.stoi.get(t, UNK) < len(SPECIALS)})
    if unknown:
        rare = getattr(getattr(model, "train_config", None), "min_count", 1)
        seen = ("the model never saw in training" if rare <= 1 else
                f"outside the model's vocabulary (seen fewer than {rare} times in training: its min_count, which "
                "--minutes sets to 2 for words; --min-count 1 keeps every word)")
        raise InputError(f"the prompt holds {len(unknown)} token(s) {seen}: "
                         + ", ".join(repr(t) for t in unknown[:10]))
    return model.vocab_.encode(tokens)


def pick(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
         generator: torch.Generator | None = None, allow_eos: bool = False) -> torch.Tensor:
    """Draw one id per row of ``(n, V)`` logits (or log-probabilities)."""
    logits = logits.float().clone()
    banned = [PAD, UNK, BOS] + ([] if allow_eos else [EOS])
    logits[:, banned] = -torch.inf
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        top = logits.topk(top_k, dim=-1)
        logits = torch.full_like(logits, -torch.inf).scatter(-1, top.indices, top.values)
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(-1)
        # Keep the most likely tokens until their mass reaches top_p (the first always stays).
        drop = probs.cumsum(-1) - probs >= top_p
        ordered = ordered.masked_fill(drop, -torch.inf)
        logits = torch.full_like(logits, -torch.inf).scatter(-1, order, ordered)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]


def check_settings(length: int, temperature: float, top_k: int, top_p: float, num_samples: int) -> None:
    checks = [(length >= 0, f"length must be >= 0, not {length}", "length"),
              (0 <= temperature < math.inf, f"temperature must be a finite number >= 0, not {temperature}",
               "temperature"),
              (top_k >= 0, f"top_k must be >= 0 (0: all tokens), not {top_k}", "top_k"),
              (0 < top_p <= 1, f"top_p must be in (0, 1], not {top_p}", "top_p"),
              (num_samples >= 1, f"num_samples must be >= 1, not {num_samples}", "num_samples")]
    for ok, msg, param in checks:
        if not ok:
            raise InputError(msg, params=param)


def generate(model, prompt=None, length: int = 200, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, num_samples: int = 1, seed: int | None = None) -> list[Sample]:
    """Draw ``num_samples`` continuations of ``prompt``, each up to ``length`` new tokens.

    The same ``seed`` gives the same samples; ``None`` draws a fresh seed.
    """
    model._check_fitted()
    check_settings(length, temperature, top_k, top_p, num_samples)
    if seed is not None:
        check_seed(seed)
    # Each step holds (num_samples, V) probabilities, and every sample its tokens: bounded by memory.
    check_memory(num_samples * (16.0 * len(model.vocab_) + 16.0 * length + 8.0 * _state_floats(model)),
                 f"{num_samples:,} samples of {length:,} tokens", params=("num_samples", "length"))
    prompt_ids = encode_prompt(model, prompt)
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else seed
    sampler = Sampler(len(model.vocab_), temperature, top_k, top_p, seed, allow_eos=stops_at_eos(model))
    from .models.rnn_net import RNNNet

    net = getattr(model, "net_", None)
    if not isinstance(net, RNNNet):
        rows, lps = _generate_stream(model, prompt_ids, num_samples, length, sampler)
    else:
        was_training = net.training
        net.eval()
        try:
            with torch.inference_mode():
                if model.model_config.mapping == "many-to-one":
                    rows, lps = _generate_windows(net, model.model_config.window, prompt_ids, num_samples,
                                                  length, sampler)
                else:
                    rows, lps = _generate_rnn(net, prompt_ids, num_samples, length, sampler)
        finally:
            net.train(was_training)
    samples = []
    for row, lp in zip(rows, lps):
        ended = bool(sampler.allow_eos and EOS in row)
        n = row.index(EOS) if ended else len(row)
        samples.append(Sample(prompt_ids.tolist(), row[:n], ended, lp[:n]))
    return samples


def _state_floats(model) -> int:
    """Floats of the recurrent state one sample carries (0 for a model without one)."""
    mc = getattr(model, "model_config", None)
    return 2 * mc.layers * mc.hidden * (2 if mc.bidirectional else 1) if mc is not None else 0


def _collect(steps: list[np.ndarray], lps: list[np.ndarray], n: int):
    if not steps:
        return [[] for _ in range(n)], [[] for _ in range(n)]
    return np.stack(steps, 1).tolist(), np.stack(lps, 1).astype(np.float64).tolist()


class Sampler:
    """The draw of the next id of each row of ``(n, V)`` float32 logits, with one call's settings.

    Plain sampling (a temperature above 0, no top-k or top-p) draws by the
    inverse of the cumulative distribution: the running sum of
    ``exp((logits - max) / temperature)`` over the allowed tokens, cut at a
    uniform number times its total. The uniforms come from a numpy generator
    seeded with ``seed``, drawn ahead in blocks. Greedy decoding and the
    filters go through :func:`pick` with a torch generator of the same seed.
    """

    BLOCK = 1024  # steps whose uniforms are drawn at once (fewer for over 1,024 rows: 8 MB at most)

    def __init__(self, vocab_size: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 seed: int = 0, allow_eos: bool = False):
        self.temperature, self.top_k, self.top_p, self.allow_eos = temperature, top_k, top_p, allow_eos
        self.plain = temperature > 0 and not 0 < top_k < vocab_size and top_p >= 1.0
        self.mask = np.zeros(vocab_size, np.float32)
        self.mask[[PAD, UNK, BOS] + ([] if allow_eos else [EOS])] = -np.inf
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self._uniforms, self._used = np.empty((0, 0)), 0

    def weights(self, logits: np.ndarray) -> np.ndarray:
        """``exp((logits - max) / temperature)`` over the allowed tokens: the probabilities, unnormalised."""
        z = logits + self.mask
        z -= z.max(1, keepdims=True)
        z /= np.float32(self.temperature)
        return np.exp(z, out=z)

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """The distribution plain sampling draws from: ``softmax(logits / temperature)`` over the allowed tokens."""
        w = self.weights(logits).astype(np.float64)
        return w / w.sum(1, keepdims=True)

    def uniforms(self, n: int) -> np.ndarray:
        """One uniform number in [0, 1) per row."""
        if self._used == len(self._uniforms) or self._uniforms.shape[1] != n:
            self._uniforms, self._used = self.rng.random((max(1, min(self.BLOCK, 2 ** 20 // n)), n)), 0
        self._used += 1
        return self._uniforms[self._used - 1]

    def draw(self, logits: np.ndarray) -> np.ndarray:
        if not self.plain:
            return pick(torch.from_numpy(logits), self.temperature, self.top_k, self.top_p, self.generator,
                        self.allow_eos).numpy()
        cdf = np.cumsum(self.weights(logits), axis=1, dtype=np.float64)
        # The first token whose running sum passes the cut; a token of probability 0 never does.
        return (cdf <= (self.uniforms(len(cdf)) * cdf[:, -1])[:, None]).sum(1)


def _draw(logits: np.ndarray, steps, lps, sampler: Sampler) -> np.ndarray:
    """Draw the next ids from ``(n, V)`` logits; record them and their log-probabilities (temperature 1)."""
    nxt = sampler.draw(logits)
    steps.append(nxt)
    top = logits.max(1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(1))
    lps.append(logits[np.arange(len(nxt)), nxt] - lse)
    return nxt


FEW_ROWS = 4  # samples drawn together up to which ThreadChoice picks the threads of their steps


class RecurrentStep:
    """One step of an :class:`~seqrnn.models.rnn_net.RNNNet` (LSTM or GRU, one direction) for generation,
    in numpy on weights laid out once, with the state and every intermediate in buffers made once.

    One sample's step is three matrix-vector products (for 2x512, 13 MB of
    weights read per token) and a few dozen small operations on vectors; the
    general forward pass spends more on Python and operator dispatch than on
    the products, and torch's products of one row are slower here than
    numpy's BLAS. So: the first layer's input product is a table (the
    embedding times the input weights, one row per token, biases in); each
    later LSTM layer is one product of ``[x, h]`` with its two weight matrices
    side by side; the gates are laid out and updated as the scoring forward
    pass's (:mod:`seqrnn.models.numpy_rnn`: one ``tanh`` gives every sigmoid
    gate). ``start(state)`` takes the forward pass's state, ``step(tokens)``
    returns ``(rows, V)`` logits (a buffer the next step overwrites): the
    forward pass's results up to float rounding.
    """

    def __init__(self, net, rows: int):
        rnn = net.rnn
        self.lstm = isinstance(rnn, torch.nn.LSTM)
        H = self.hidden = rnn.hidden_size
        self.rows = n = rows
        gates = 4 if self.lstm else 3
        cell = "lstm" if self.lstm else "gru"

        def columns(*weights):  # torch's (gates*H, k) weights side by side, gates laid out as numpy_rnn's
            return torch.from_numpy(gate_columns(cell, *(w.detach().float().cpu().numpy() for w in weights)))

        def rows_of(b):  # a bias (gates*H,) laid out the same way
            return torch.from_numpy(gate_bias(cell, b.detach().float().cpu().numpy()))

        def np32(t):
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        embed = net.embed.weight.detach().float().cpu()
        zero = torch.zeros(gates * H)
        self.layers = []
        for i in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{i}"), getattr(rnn, f"weight_hh_l{i}")
            b_ih = rows_of(getattr(rnn, f"bias_ih_l{i}")) if rnn.bias else zero
            b_hh = rows_of(getattr(rnn, f"bias_hh_l{i}")) if rnn.bias else zero
            layer = {"g": np.empty((n, gates * H), np.float32), "tmp": np.empty((n, H), np.float32)}
            if self.lstm:
                layer["c"] = np.zeros((n, H), np.float32)
                if i == 0:  # input: the table; state h alone
                    layer["table"] = np32(embed @ columns(w_ih) + b_ih + b_hh)
                    layer["w"], layer["in"] = np32(columns(w_hh)), np.zeros((n, H), np.float32)
                else:  # input [x, h]: x written by the layer below, h by this one
                    layer["w"], layer["b"] = np32(columns(w_ih, w_hh)), np32(b_ih + b_hh)
                    layer["in"] = np.zeros((n, 2 * H), np.float32)
                layer["h"] = layer["in"][:, -H:]
            else:
                if i == 0:
                    layer["table"] = np32(embed @ columns(w_ih) + b_ih)
                else:
                    layer["w_ih"], layer["b_ih"] = np32(columns(w_ih)), np32(b_ih)
                layer["w"], layer["b"] = np32(columns(w_hh)), np32(b_hh)
                layer["gh"], layer["h"] = np.empty((n, 3 * H), np.float32), np.zeros((n, H), np.float32)
            self.layers.append(layer)
        self.head_w, self.head_b = np32(net.head.weight.T), np32(net.head.bias)
        self.logits = np.empty((n, self.head_w.shape[1]), np.float32)

    def start(self, rnn_state) -> None:
        """Take the forward pass's state: ``(h, c)`` or ``h``, each ``(layers, rows, hidden)``."""
        h, c = rnn_state if self.lstm else (rnn_state, None)
        for i, layer in enumerate(self.layers):
            layer["h"][:] = h[i].cpu().numpy()
            if c is not None:
                layer["c"][:] = c[i].cpu().numpy()

    def state(self) -> list:
        """The state as the forward pass's layers list it: ``(h, c)`` (LSTM) or ``h`` per layer, copies."""
        return [(L["h"].copy(), L["c"].copy()) if self.lstm else L["h"].copy() for L in self.layers]

    def step(self, tokens: np.ndarray) -> np.ndarray:
        H, x = self.hidden, None
        for i, L in enumerate(self.layers):
            g, tmp, h = L["g"], L["tmp"], L["h"]
            if self.lstm:
                if i == 0:
                    np.dot(L["in"], L["w"], out=g)
                    g += L["table"][tokens]
                else:
                    L["in"][:, :H] = x
                    np.dot(L["in"], L["w"], out=g)
                    g += L["b"]
                lstm_update(g, L["c"], h, tmp)
            else:
                gh = L["gh"]
                if i == 0:
                    np.take(L["table"], tokens, axis=0, out=g)
                else:
                    np.dot(x, L["w_ih"], out=g)
                    g += L["b_ih"]
                np.dot(h, L["w"], out=gh)
                gh += L["b"]
                gru_update(g, gh, h, tmp)
            x = h
        np.dot(x, self.head_w, out=self.logits)
        self.logits += self.head_b
        return self.logits


class ThreadChoice:
    """Threads for numpy's BLAS while a few rows are generated: one, or ``most``, whichever steps faster now.

    The matrix-vector products of one sample share well between the two
    cores of an idle machine (1.5 times the speed of one thread here), but
    beside another job the second thread waits for its turn on a core at
    every product, and a step takes several times as long
    (bench/generate_speed.py, ``--busy``). So every step is timed: after
    :attr:`WARM` steps to warm the caches and a short block on ``most``
    threads (one thread if another job is running), a short probe of the
    other choice, then blocks of :attr:`BLOCK` steps on the faster, with a
    probe of the other now and then to follow the machine (after 4 blocks,
    then twice as many each time it loses, up to 64). A probe wins only
    when :attr:`MARGIN` faster than the choice in use: a noisy block must
    not send the steps to the slower choice for the 4 blocks until the
    next probe. A probe stops at its first step that takes :attr:`GIVE_UP`
    times the faster choice's time, and more threads are not probed while
    ``others()`` (by default the other processes running now) says another
    job is running: their threads would wait for it. The choice never
    changes the numbers (each output of a product is summed by one thread).
    """

    WARM, PROBE, BLOCK = 8, 8, 32  # steps
    GIVE_UP = 3.0
    MARGIN = 0.1  # a choice replaces the one in use only when this much faster (timings are noisy)
    FIRST_WAIT, LAST_WAIT = 4, 64  # blocks between probes

    def __init__(self, most: int, others=None):
        from .runtime import running_now

        self.choices = [1, most] if most > 1 else [1]
        self.others = others or running_now
        self.per_step = {k: None for k in self.choices}  # seconds per step, the latest block on each
        # an idle machine starts on the most threads; a busy one on one thread
        start = most if most > 1 and self.others() == 0 else 1
        self.threads, self.probing, self.steps, self.spent = start, False, -self.WARM, 0.0
        self.used = start  # the choice in use (the one a probe is measured against)
        self.wait = self.left = self.FIRST_WAIT

    def _best(self) -> int:
        """The fastest choice known, the one in use unless another is :attr:`MARGIN` faster."""
        known = [k for k in self.choices if self.per_step[k] is not None]
        if not known:
            return self.threads
        best = min(known, key=lambda k: self.per_step[k])
        if self.used in known and best != self.used and \
                self.per_step[best] > (1.0 - self.MARGIN) * self.per_step[self.used]:
            return self.used
        return best

    def after_step(self, seconds: float) -> int:
        """Record the time of one step; return the threads of the next."""
        if len(self.choices) == 1:
            return 1
        self.steps += 1
        if self.steps <= 0:  # warming up
            return self.threads
        self.spent += seconds
        best = self._best()
        hopeless = self.probing and self.per_step[best] is not None and seconds > self.GIVE_UP * self.per_step[best]
        short = self.probing or self.per_step[self.threads] is None
        if not hopeless and self.steps < (self.PROBE if short else self.BLOCK):
            return self.threads
        self.per_step[self.threads] = self.spent / self.steps
        self.steps, self.spent = 0, 0.0
        best = self._best()
        if self.probing:  # a probe ended: probe again soon if it won, else wait twice as long as last time
            self.wait = self.FIRST_WAIT if best == self.threads else min(2 * self.wait, self.LAST_WAIT)
            self.left, self.probing = self.wait, False
        else:
            self.left -= 1
        other = next(k for k in self.choices if k != best)
        if self.per_step[other] is None:
            self.left = 0  # never tried: as soon as it may be
        if self.left <= 0:
            if other > best and self.others() > 0:  # another job is running: look again in a few blocks
                self.left = self.FIRST_WAIT
            else:
                self.threads, self.probing = other, True
                return self.threads
        self.threads = self.used = best
        return self.threads


@functools.lru_cache(maxsize=1)
def _blas():
    """numpy's BLAS libraries, for their thread counts (threadpoolctl's controller; made once: it reads the
    libraries loaded)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _generate_rnn(net, prompt_ids, n, length, sampler):
    """Recurrent many-to-many: the prompt once (the general forward pass), then one
    :class:`RecurrentStep` per token, state carried; numpy's BLAS on torch's number of threads, or for a
    few rows on the number :class:`ThreadChoice` finds faster."""
    x = torch.from_numpy(np.concatenate(([BOS], prompt_ids)).astype(np.int64))[None]
    logits, state = net(x)
    logits = np.repeat(logits[:, -1].float().cpu().numpy(), n, 0)
    stepper = RecurrentStep(net, n)
    stepper.start(tuple(s.expand(-1, n, -1) for s in state) if isinstance(state, tuple)
                  else state.expand(-1, n, -1))
    steps, lps = [], []
    ended = np.zeros(n, dtype=bool)
    most = torch.get_num_threads()
    choice = ThreadChoice(most) if n <= FEW_ROWS else None
    threads = choice.threads if choice is not None else most
    blas = _blas()
    original = blas.limit(limits=threads)
    last = time.perf_counter()
    try:
        for t in range(length):
            nxt = _draw(logits, steps, lps, sampler)
            if sampler.allow_eos:
                ended |= nxt == EOS
            if t + 1 == length or (sampler.allow_eos and ended.all()):
                break
            logits = stepper.step(nxt)
            if choice is not None:
                now = time.perf_counter()
                k = choice.after_step(now - last)
                last = now
                if k != threads:
                    threads = k
                    blas.limit(limits=threads)
    finally:
        original.restore_original_limits()
    return _collect(steps, lps, n)


def _generate_windows(net, window, prompt_ids, n, length, sampler):
    """Many-to-one: the window of the last ``window`` tokens predicts the next; it slides by one."""
    hist = np.concatenate((np.full(window - 1, PAD, np.int64), [BOS], prompt_ids))[-window:]
    hist = torch.from_numpy(hist.astype(np.int64))[None].repeat(n, 1)
    steps, lps = [], []
    ended = np.zeros(n, dtype=bool)
    for _ in range(length):
        logits, _ = net(hist)
        nxt = _draw(logits[:, -1].float().cpu().numpy(), steps, lps, sampler)
        ended |= nxt == EOS
        if sampler.allow_eos and ended.all():
            break
        hist = torch.cat((hist[:, 1:], torch.from_numpy(nxt)[:, None]), 1)
    return _collect(steps, lps, n)


def _generate_stream(model, prompt_ids, n, length, sampler):
    """Any model of the interface, through ``stream_step``, one sample at a time.

    ``stream_step([t], state)`` gives the distribution of the next token
    whatever ``t`` is; a placeholder asks for it, the drawn token then moves
    the state on.
    """
    rows, lps = [], []
    for _ in range(n):
        _, state = model.stream_step(prompt_ids, model.stream_start())
        steps, lp = [], []
        for _ in range(length):
            dist, _ = model.stream_step(np.array([EOS]), state)
            nxt = _draw(np.asarray(dist[-1:], dtype=np.float32), steps, lp, sampler)
            if sampler.allow_eos and int(nxt[0]) == EOS:
                break
            _, state = model.stream_step(nxt.astype(np.int64), state)
        r, p = _collect(steps, lp, 1)
        rows.append(r[0])
        lps.append(p[0])
    return rows, lps


def render(model, sample: Sample, with_prompt: bool = True) -> str:
    """A sample as text (characters joined, words with spaces) or as space-separated event ids."""
    ids = (sample.prompt if with_prompt else []) + sample.ids
    tokens = model.vocab_.decode(ids)
    if model.format_ == "text" and getattr(model, "text_tokens_", "chars") == "chars":
        return "".join(tokens)
    return " ".join(tokens)


# --- samples during training -----------------------------------------------------------
SAMPLE_TEMPERATURES = (0.2, 0.5, 1.0, 1.2)  # as the Keras example the original grew from


class SampleCallback(Callback):
    """Print a sample at each of ``temperatures`` after every ``every`` history rows.

    A history row closes an epoch, or, with ``eval_every``, a validation
    period inside one. Samples use their own random generator, so training
    draws the same numbers with or without them.
    """

    def __init__(self, model, every: int = 1, temperatures=SAMPLE_TEMPERATURES, length: int = 200,
                 prompt=None, seed: int = 0, file=None):
        if every < 1:
            raise InputError(f"every must be >= 1, not {every}", params="every")
        self.model, self.every, self.temperatures = model, every, tuple(temperatures)
        self.length, self.prompt, self.seed, self.file = length, prompt, seed, file
        self.rows = 0

    def on_epoch_end(self, trainer, logs) -> None:
        import sys

        self.rows += 1
        if self.rows % self.every:
            return
        out = self.file or sys.stderr
        print(f"----- samples at epoch {logs['epoch']} (step {logs.get('step')})"
              + (f", prompt {self.prompt!r}" if self.prompt else ""), file=out)
        for temperature in self.temperatures:
            (s,) = generate(self.model, self.prompt, self.length, temperature, seed=self.seed)
            print(f"----- temperature {temperature}:\n{render(self.model, s)}", file=out, flush=True)
