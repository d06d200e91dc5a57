"""The context (cloze) model: each event predicted from the events on both sides of it.

A forward RNN reads the events before position ``t`` (after ``BOS``), a
backward RNN reads the events after it (up to ``EOS`` for a finished
session); their states are joined at ``t`` and a linear layer gives the
distribution of the event at ``t``. The event at ``t`` itself is never an
input of row ``t``: a bidirectional network that predicts the *next* event
at every position would read it through its backward pass and learn to copy.

For a finished session of ``n`` events there are ``n + 1`` rows, as for
every model: the last is its end (``EOS``), predicted from all events
before it and nothing after. Training and scoring read each sequence once
(both passes in one forward call), batched by length; the training loop is
:class:`seqrnn.train.Trainer`'s.

A stream read as it grows (``detect --follow``) has no events after the
newest one yet, so this model does not stream; an unfinished sequence read
whole is scored with the right context it has (none for its last event),
long ones in overlapping pieces.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..data.batching import ClozeBatches, cloze_rows, length_buckets, pad
from ..data.vocab import PAD
from ..errors import InputError
from .base import register
from .nets import embedding, recurrent, run_recurrent
from .rnn import SCORE_TOKENS, RNNModel

PIECE = 4096  # events scored per piece of a long unfinished sequence
OVERLAP = 256  # events of context read on each side of a piece


class ContextNet(nn.Module):
    def __init__(self, vocab_size: int, mc: ModelConfig):
        super().__init__()
        self.embed = embedding(vocab_size, mc.embedding_dim)
        self.fwd = recurrent(mc.cell, mc.embedding_dim, mc.hidden, mc.layers, mc.dropout)
        self.bwd = recurrent(mc.cell, mc.embedding_dim, mc.hidden, mc.layers, mc.dropout)
        self.drop = nn.Dropout(mc.dropout)
        self.weight_drop = mc.weight_drop
        self.head = nn.Linear(2 * mc.hidden, vocab_size)

    def forward(self, z: torch.Tensor, state=None):
        """``z``: (B, m + 1) rows ``[BOS, y_0 .. y_{m-1}]``, right-padded; logits (B, M, V) for the ``y``."""
        y = z[:, 1:]
        m = (y != PAD).sum(1, keepdim=True)  # targets per row
        steps = torch.arange(y.shape[1], device=z.device)[None, :]
        # Forward pass over BOS, y_0 .. y_{M-2}: its output j has read everything before y_j.
        hf, _ = run_recurrent(self.fwd, self.drop(self.embed(z[:, :-1])), None, self.weight_drop)
        # Backward pass: each row's targets reversed (y_{m-1} first), padding after them.
        rev_idx = (m - 1 - steps).clamp(min=0)
        rev = torch.where(steps < m, y.gather(1, rev_idx), torch.full_like(y, PAD))
        ob, _ = run_recurrent(self.bwd, self.drop(self.embed(rev)), None, self.weight_drop)
        # ob[k] has read y_{m-1-k} .. y_{m-1}; target j needs y_{j+1} .. y_{m-1}, i.e. ob[m-2-j].
        back_idx = (m - 2 - steps).clamp(min=0)
        hb = ob.gather(1, back_idx[:, :, None].expand(-1, -1, ob.shape[-1]))
        hb = hb * (steps < m - 1)[:, :, None]  # nothing after the last target
        return self.head(self.drop(torch.cat((hf, hb), dim=-1))), None


@register
class ContextModel(RNNModel):
    """Scores each event given the events before *and* after it (a cloze model).

    Same settings as :class:`~seqrnn.models.rnn.RNNModel` (``cell``,
    ``layers``, ``hidden`` per direction, ``embedding_dim``, ``dropout``, the
    training settings); ``mapping`` must stay many-to-many and
    ``bidirectional`` off: both directions are built in, apart.

    >>> model = ContextModel(preset="deeplog").fit("train.txt")  # doctest: +SKIP
    """

    kind = "context"
    streams = False  # an event is scored from the events after it too

    def __init__(self, preset: str | None = None, **settings):
        super().__init__(preset, **settings)
        if self.model_config.mapping != "many-to-many" or self.model_config.bidirectional:
            raise InputError("the context model predicts every event from both sides; "
                             "mapping and bidirectional do not apply to it", params=("mapping", "bidirectional"))

    def _reads(self, mapping: str) -> str:
        return "each event from the events before and after it"

    def _make_net(self) -> nn.Module:
        return ContextNet(len(self.vocab_), self.model_config)

    def _batches(self, ids, complete, training: bool):
        return ClozeBatches(ids, complete, self.train_config.batch_size, self.train_config.chunk)

    # --- scoring -------------------------------------------------------------------
    @torch.inference_mode()
    def log_proba(self, ids_list, complete):
        self.net_.eval()
        out: list[np.ndarray | None] = [None] * len(ids_list)
        rows, owners = [], []  # network rows, and (sequence, rows kept) for each
        for i, (ids, c) in enumerate(zip(ids_list, complete)):
            if not c and len(ids) == 0:
                continue  # no event to score
            if c or len(ids) <= PIECE:
                rows.append(cloze_rows(ids, c))
                owners.append((i, slice(0, None)))
                continue
            # A long unfinished sequence: pieces of PIECE events read with OVERLAP events either side.
            for s in range(0, len(ids), PIECE):
                lo, hi = max(0, s - OVERLAP), min(len(ids), s + PIECE + OVERLAP)
                rows.append(cloze_rows(ids[lo:hi], False))
                owners.append((i, slice(s - lo, s - lo + min(PIECE, len(ids) - s))))
        parts: dict[int, list] = {}
        lengths = np.array([len(r) - 1 for r in rows])
        results: list[np.ndarray | None] = [None] * len(rows)
        for batch in length_buckets(lengths, 4096, None, max_tokens=SCORE_TOKENS):
            logits, _ = self.net_(torch.from_numpy(pad([rows[j] for j in batch])))
            logp = torch.log_softmax(logits.float(), dim=-1).numpy()
            for r, j in enumerate(batch):
                results[j] = logp[r, : lengths[j]]
        for (i, keep), lp in zip(owners, results):
            parts.setdefault(i, []).append(lp[keep])
        for i in range(len(ids_list)):
            out[i] = np.concatenate(parts[i]) if i in parts else np.zeros((0, len(self.vocab_)), np.float32)
        return out

    # --- streaming: not possible --------------------------------------------------------
    def _no_stream(self):
        raise InputError("the context model scores an event from the events after it too, so it cannot "
                         "judge a stream as it is read (follow); use a model of kind rnn for that, or "
                         "detect on the whole file", params="follow")

    def stream_start(self):
        self._no_stream()

    def stream_step(self, ids, state):
        self._no_stream()
