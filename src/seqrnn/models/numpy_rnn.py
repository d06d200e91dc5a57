"""The scoring forward pass of a trained LSTM/GRU stack in numpy: no torch to import.

``seqrnn detect`` on a few thousand sessions spends longer importing torch
(1.6 s or more) than running the network (about a second), so a
many-to-many :class:`~seqrnn.models.rnn.RNNModel` scores sessions with this
module instead, from the same weights: the embedding, each recurrent layer
in torch's gate order and formulas, and the linear head with a log-softmax.
Values agree with torch's to float32 rounding (about 1e-5 in a
log-probability; tested). The calibration at training time scores through
here too, so a detector's cuts and its later decisions come from the same
arithmetic. Training and streams longer than a scoring chunk run torch;
generation's per-token step (:class:`seqrnn.generate.RecurrentStep`) uses
the gate layout and the cell updates defined here.

Rows of a batch are sorted longest first, so that each step computes only
the rows still running (no work on padding), and batches are shared among
``threads`` Python threads (numpy releases the interpreter lock in its
loops).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


# Each cell's gates as laid out here: (torch's gate, scale) of each block of H columns. LSTM i, f, g, o
# become i, f, o, g with the sigmoid gates' rows halved, GRU r, z, n with r and z halved, so that one
# tanh over the sigmoid gates gives them all: sigmoid(x) = (1 + tanh(x / 2)) / 2 (halving is exact).
GATE_BLOCKS = {"lstm": ((0, 0.5), (1, 0.5), (3, 0.5), (2, 1.0)), "gru": ((0, 0.5), (1, 0.5), (2, 1.0))}


def gate_columns(cell: str, *weights: np.ndarray) -> np.ndarray:
    """torch's ``(gates * H, k)`` weights (or ``(gates * H, 1)`` biases), side by side, as one
    ``(sum k, gates * H)`` matrix with the gates of :data:`GATE_BLOCKS`: ``x @ it`` gives the
    pre-activations of ``x``'s parts."""
    blocks = GATE_BLOCKS[cell]
    size = weights[0].shape[0] // len(blocks)
    out = np.empty((sum(w.shape[1] for w in weights), len(blocks) * size), np.float32)
    k = 0
    for w in weights:
        for j, (src, scale) in enumerate(blocks):  # one pass over the weights: read, scale, write
            np.multiply(w[src * size:(src + 1) * size].T, np.float32(scale),
                        out=out[k:k + w.shape[1], j * size:(j + 1) * size])
        k += w.shape[1]
    return out


def gate_bias(cell: str, b: np.ndarray) -> np.ndarray:
    """A ``(gates * H,)`` bias laid out as :func:`gate_columns` lays out weights."""
    return gate_columns(cell, np.asarray(b, np.float32)[:, None])[0]


def lstm_update(g: np.ndarray, c: np.ndarray, h: np.ndarray, tmp: np.ndarray) -> None:
    """One LSTM step in place: ``g`` the pre-activations (gates of :data:`GATE_BLOCKS`; overwritten),
    ``c`` and ``h`` the state, ``tmp`` a buffer of their shape."""
    size = h.shape[1]
    np.tanh(g, out=g)
    sig = g[:, :3 * size]  # (1 + tanh(x / 2)) / 2: the sigmoid gates i, f, o
    sig *= 0.5
    sig += 0.5
    c *= g[:, size:2 * size]
    np.multiply(g[:, :size], g[:, 3 * size:], out=tmp)
    c += tmp
    np.tanh(c, out=tmp)
    np.multiply(g[:, 2 * size:3 * size], tmp, out=h)


def gru_update(g: np.ndarray, gh: np.ndarray, h: np.ndarray, tmp: np.ndarray) -> None:
    """One GRU step in place: ``g`` the input's pre-activations, ``gh`` the state's (biases in; both
    overwritten), ``h`` the state, ``tmp`` a buffer of its shape."""
    size = h.shape[1]
    rz = g[:, :2 * size]
    rz += gh[:, :2 * size]
    np.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    new = gh[:, 2 * size:]  # n = tanh(input part + r * state part)
    new *= rz[:, :size]
    new += g[:, 2 * size:]
    np.tanh(new, out=new)
    np.subtract(h, new, out=tmp)  # h' = n + z * (h - n)
    tmp *= rz[:, size:]
    np.add(new, tmp, out=h)


class NumpyRNN:
    """Embedding -> ``layers`` LSTM or GRU layers -> linear -> log-softmax, from a torch ``state_dict``
    of :class:`~seqrnn.models.rnn_net.RNNNet` (numpy arrays: ``embed.weight``, ``rnn.weight_ih_l0``, ...,
    ``head.weight``, ``head.bias``)."""

    def __init__(self, tensors: dict, cell: str, layers: int):
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be lstm or gru, not {cell!r}")
        f32 = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        self.cell = cell
        self.embed = f32["embed.weight"]
        self.head_t = np.ascontiguousarray(f32["head.weight"].T)
        self.head_b = f32["head.bias"]
        self.layers = [self._layer(f32, k) for k in range(layers)]

    def _layer(self, w: dict, k: int):
        w_ih, w_hh = w[f"rnn.weight_ih_l{k}"], w[f"rnn.weight_hh_l{k}"]
        zero = np.zeros(len(w_hh), np.float32)
        b_ih, b_hh = w.get(f"rnn.bias_ih_l{k}", zero), w.get(f"rnn.bias_hh_l{k}", zero)
        if self.cell == "lstm":  # both biases go with the input's product
            return gate_columns("lstm", w_ih), gate_columns("lstm", w_hh), gate_bias("lstm", b_ih + b_hh), None
        # GRU: the state's bias stays with the state's product (r multiplies that of n)
        return gate_columns("gru", w_ih), gate_columns("gru", w_hh), gate_bias("gru", b_ih), gate_bias("gru", b_hh)

    def log_proba(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``(batch, time, vocabulary)`` log-probabilities for padded inputs ``x`` whose rows hold
        ``lengths`` events; what lies beyond a row's length is left as zeros.

        Weights too large for float32 give infinities and NaNs silently, as torch does (no
        RuntimeWarning on standard error): the caller refuses values that are not finite in one line."""
        with np.errstate(all="ignore"):  # per thread: each of log_proba_batches' threads sets it here
            return self._log_proba(x, lengths)

    def _log_proba(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        batch, steps = x.shape
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        # running[t]: rows (longest first) still running at step t
        running = np.searchsorted(-lengths, -np.arange(steps), side="left")
        h = self.embed[x[order].T]  # time-major: (steps, batch, embedding)
        for layer in self.layers:
            h = self._run(layer, h, running)
        out = np.zeros((batch, steps, self.head_t.shape[1]), np.float32)
        for t in range(steps):
            n = running[t]
            if n:
                logits = h[t, :n] @ self.head_t
                logits += self.head_b
                logits -= logits.max(axis=1, keepdims=True)
                logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
                out[order[:n], t] = logits
        return out

    def _run(self, layer, x: np.ndarray, running: np.ndarray) -> np.ndarray:
        w_ih, w_hh, b, b_hh = layer
        steps, batch, _ = x.shape
        size = w_hh.shape[0]
        gates_in = (x.reshape(steps * batch, -1) @ w_ih).reshape(steps, batch, -1)
        gates_in += b
        out = np.zeros((steps, batch, size), np.float32)
        h, c, tmp = (np.zeros((batch, size), np.float32) for _ in range(3))
        g = np.empty((batch, w_hh.shape[1]), np.float32)
        for t in range(steps):
            n = running[t]
            if not n:
                break
            np.matmul(h[:n], w_hh, out=g[:n])
            if b_hh is None:  # LSTM
                g[:n] += gates_in[t, :n]
                lstm_update(g[:n], c[:n], h[:n], tmp[:n])
            else:
                g[:n] += b_hh
                gru_update(gates_in[t, :n], g[:n], h[:n], tmp[:n])
            out[t, :n] = h[:n]
        return out


def log_proba_batches(net: NumpyRNN, batches, threads: int = 1):
    """``net.log_proba`` of each ``(x, lengths)`` of ``batches``, in order, on up to ``threads`` threads."""
    batches = list(batches)
    if threads <= 1 or len(batches) < 2:
        return [net.log_proba(x, n) for x, n in batches]
    with ThreadPoolExecutor(min(threads, len(batches))) as pool:
        return list(pool.map(lambda b: net.log_proba(*b), batches))
