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

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .data.vocab import BOS, EOS, PAD, SPECIALS, UNK
from .errors import InputError
from .limits import check_memory, check_seed
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
        raise InputError(f"the prompt holds {len(unknown)} token(s) the model never saw in training: "
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
    gen = torch.Generator().manual_seed(seed)
    opts = dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=gen, allow_eos=stops_at_eos(model))
    from .models.rnn import RNNNet

    net = getattr(model, "net_", None)
    if not isinstance(net, RNNNet):
        rows, lps = _generate_stream(model, prompt_ids, num_samples, length, opts)
    else:
        was_training = net.training
        net.eval()
        try:
            with torch.inference_mode():
                if model.model_config.mapping == "many-to-one":
                    rows, lps = _generate_windows(net, model.model_config.window, prompt_ids, num_samples,
                                                  length, opts)
                else:
                    rows, lps = _generate_rnn(net, prompt_ids, num_samples, length, opts)
        finally:
            net.train(was_training)
    samples = []
    for row, lp in zip(rows, lps):
        ended = bool(opts["allow_eos"] and EOS in row)
        n = row.index(EOS) if ended else len(row)
        samples.append(Sample(prompt_ids.tolist(), row[:n], ended, lp[:n]))
    return samples


def _state_floats(model) -> int:
    """Floats of the recurrent state one sample carries (0 for a model without one)."""
    mc = getattr(model, "model_config", None)
    return 2 * mc.layers * mc.hidden * (2 if mc.bidirectional else 1) if mc is not None else 0


def _collect(steps: list[torch.Tensor], lps: list[torch.Tensor], n: int):
    if not steps:
        return [[] for _ in range(n)], [[] for _ in range(n)]
    return torch.stack(steps, 1).tolist(), torch.stack(lps, 1).tolist()


def _draw(logits, steps, lps, opts):
    if opts.get("mask") is not None:  # plain sampling: pick's result with fewer operations per token
        nxt = torch.multinomial(torch.softmax((logits + opts["mask"]) / opts["temperature"], -1), 1,
                                generator=opts["generator"])[:, 0]
    else:
        nxt = pick(logits, **{k: v for k, v in opts.items() if k != "mask"})
    steps.append(nxt)
    lps.append(torch.log_softmax(logits.float(), -1).gather(1, nxt[:, None])[:, 0])
    return nxt


FEW_ROWS = 4  # samples drawn together up to which generation steps on one thread


class RecurrentStep:
    """One step of an :class:`~seqrnn.models.rnn.RNNNet` (LSTM or GRU, one direction), for generation.

    The general forward pass costs some twenty operator calls of Python and
    dispatch per token on top of its matrix products, which dominate when one
    sample is drawn. Here the weights are laid out once: the first layer's
    input product is a table (the embedding times the input weights, one row
    per token, biases in), each later LSTM layer one product of ``[x, h]``
    with its two weight matrices side by side, and the state a list of
    per-layer tensors. ``step(tokens, state) -> (logits, state)`` gives the
    forward pass's results (up to float rounding); call it under
    ``torch.inference_mode()``.
    """

    def __init__(self, net):
        rnn = net.rnn
        self.lstm = isinstance(rnn, torch.nn.LSTM)
        self.hidden = rnn.hidden_size
        g = self.hidden * (4 if self.lstm else 3)
        self.layers = []
        for i in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{i}").detach(), getattr(rnn, f"weight_hh_l{i}").detach()
            zero = torch.zeros(g)
            b_ih = getattr(rnn, f"bias_ih_l{i}").detach() if rnn.bias else zero
            b_hh = getattr(rnn, f"bias_hh_l{i}").detach() if rnn.bias else zero
            if i == 0:
                table = net.embed.weight.detach() @ w_ih.T + b_ih + (b_hh if self.lstm else 0)
                self.layers.append((table, w_hh.T.contiguous(), None if self.lstm else b_hh))
            elif self.lstm:
                self.layers.append((torch.cat((w_ih, w_hh), 1).T.contiguous(), b_ih + b_hh, None))
            else:
                self.layers.append((w_ih.T.contiguous(), b_ih, (w_hh.T.contiguous(), b_hh)))
        self.head_w, self.head_b = net.head.weight.detach().T.contiguous(), net.head.bias.detach()

    def state(self, rnn_state) -> list:
        """The forward pass's state (``(h, c)`` or ``h``, each ``(layers, n, hidden)``) as this step's."""
        if self.lstm:
            h, c = rnn_state
            return [(h[i].contiguous(), c[i].contiguous()) for i in range(h.shape[0])]
        return [rnn_state[i].contiguous() for i in range(rnn_state.shape[0])]

    def step(self, tokens: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        x, new = None, []
        H = self.hidden
        for i, (a, b, c) in enumerate(self.layers):
            if self.lstm:
                h, cell = state[i]
                if i == 0:
                    gates = torch.addmm(a[tokens], h, b)
                else:
                    gates = torch.addmm(b, torch.cat((x, h), 1), a)
                i_, f, _, o = torch.sigmoid(gates).view(-1, 4, H).unbind(1)
                cell = torch.addcmul(f * cell, i_, torch.tanh(gates[:, 2 * H:3 * H]))
                x = o * torch.tanh(cell)
                new.append((x, cell))
            else:
                h = state[i]
                if i == 0:
                    gi, gh = a[tokens], torch.addmm(c, h, b)
                else:
                    gi, gh = torch.addmm(b, x, a), torch.addmm(c[1], h, c[0])
                rz = torch.sigmoid(gi[:, :2 * H] + gh[:, :2 * H])
                n = torch.tanh(gi[:, 2 * H:] + rz[:, :H] * gh[:, 2 * H:])
                x = n + rz[:, H:] * (h - n)
                new.append(x)
        return torch.addmm(self.head_b, x, self.head_w), new


def _generate_rnn(net, prompt_ids, n, length, opts):
    """Recurrent many-to-many: the prompt once (the general forward pass), then one
    :class:`RecurrentStep` per token, state carried."""
    x = torch.from_numpy(np.concatenate(([BOS], prompt_ids)).astype(np.int64))[None]
    logits, state = net(x)
    logits = logits[:, -1].expand(n, -1)
    state = tuple(s.expand(-1, n, -1).contiguous() for s in state) if isinstance(state, tuple) \
        else state.expand(-1, n, -1).contiguous()
    stepper = RecurrentStep(net)
    state = stepper.state(state)
    if opts["temperature"] > 0 and opts["top_k"] == 0 and opts["top_p"] >= 1.0:
        mask = torch.zeros(logits.shape[-1])
        mask[[PAD, UNK, BOS] + ([] if opts["allow_eos"] else [EOS])] = -torch.inf
        opts = {**opts, "mask": mask}
    steps, lps = [], []
    ended = torch.zeros(n, dtype=torch.bool)
    threads = torch.get_num_threads()
    if n <= FEW_ROWS:
        # A few rows make matrix-vector products too small to share: a second thread costs more in
        # synchronisation at each of the step's operations than it saves (several times more on a busy
        # machine; bench/generate_speed.py).
        torch.set_num_threads(1)
    try:
        for t in range(length):
            nxt = _draw(logits, steps, lps, opts)
            if opts["allow_eos"]:
                ended |= nxt == EOS
            if t + 1 == length or (opts["allow_eos"] and bool(ended.all())):
                break
            logits, state = stepper.step(nxt, state)
    finally:
        torch.set_num_threads(threads)
    return _collect(steps, lps, n)


def _generate_windows(net, window, prompt_ids, n, length, opts):
    """Many-to-one: the window of the last ``window`` tokens predicts the next; it slides by one."""
    hist = np.concatenate((np.full(window - 1, PAD, np.int64), [BOS], prompt_ids))[-window:]
    hist = torch.from_numpy(hist.astype(np.int64))[None].repeat(n, 1)
    steps, lps = [], []
    ended = torch.zeros(n, dtype=torch.bool)
    for _ in range(length):
        logits, _ = net(hist)
        nxt = _draw(logits[:, -1], steps, lps, opts)
        ended |= nxt == EOS
        if opts["allow_eos"] and bool(ended.all()):
            break
        hist = torch.cat((hist[:, 1:], nxt[:, None]), 1)
    return _collect(steps, lps, n)


def _generate_stream(model, prompt_ids, n, length, opts):
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
            nxt = _draw(torch.from_numpy(np.asarray(dist[-1:])), steps, lp, opts)
            if opts["allow_eos"] and int(nxt) == EOS:
                break
            _, state = model.stream_step(nxt.numpy(), state)
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
