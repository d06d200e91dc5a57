"""Hidden Markov model of event sequences (hmmlearn's ``CategoricalHMM``).

Fitted by Baum-Welch on the training sequences (a finished session ends
with ``<eos>``, an event like any other). Scoring runs the forward filter:
with ``q_t`` the distribution of the hidden state before event ``t`` is
read, the predictive distribution of the next event is ``q_t @ B``; after
reading ``x_t`` the state is ``q_{t+1} ∝ (q_t * B[:, x_t]) @ A``. So the HMM
gives a distribution over the next event at every position, like the other
models, and its per-event scores sum to the sequence log-likelihood. The
filter runs over positions with all sequences of a batch and all states at
once. Emissions are mixed with a small uniform floor, so an event the HMM
never emitted in training is improbable, not impossible.

The matrices are saved in safetensors (never pickled).
"""

from __future__ import annotations

import numpy as np

from ..data.vocab import EOS, with_end
from ..errors import InputError
from ..limits import check_memory
from .base import BaselineModel, register
from .markov import support_mask

FLOOR = 1e-4  # share of each state's emissions spread uniformly over all events that may come
BATCH = 2048  # sequences filtered together


@register
class HMMModel(BaselineModel):
    """Categorical HMM with ``states`` hidden states."""

    kind = "hmm"

    def __init__(self, states: int = 10, iterations: int = 30, seed: int = 0, validation_split: float = 0.1,
                 min_count: int = 1):
        if not isinstance(states, int) or states < 1:
            raise InputError(f"states must be an integer >= 1, not {states!r}", params="states")
        if not isinstance(iterations, int) or iterations < 1:
            raise InputError(f"iterations must be an integer >= 1, not {iterations!r}", params="iterations")
        super().__init__(seed, validation_split, min_count)
        self.states, self.iterations = states, iterations

    def _settings(self) -> dict:
        return {"states": self.states, "iterations": self.iterations, **super()._settings()}

    def _fit(self, train, train_complete, valid, valid_complete):
        try:
            from hmmlearn.hmm import CategoricalHMM
        except ImportError:
            raise InputError("the hmm model needs hmmlearn: pip install hmmlearn") from None

        V = len(self.vocab_)
        seqs = [with_end(a, c) for a, c in zip(train, train_complete)]
        seqs = [s for s in seqs if len(s)]
        n, S = sum(map(len, seqs)), self.states
        # Baum-Welch holds (events, states) lattices and the (states, states) and (states, events) matrices.
        check_memory(8.0 * (6 * n * S + 3 * S * S + 3 * S * V), f"an HMM of {S:,} states over {n:,} events",
                     params="states")
        X = np.concatenate(seqs).astype(np.int64)[:, None]
        hmm = CategoricalHMM(n_components=self.states, n_features=V, n_iter=self.iterations, tol=1e-3,
                             random_state=self.seed, init_params="ste", params="ste",
                             implementation="scaling")
        hmm.fit(X, lengths=[len(s) for s in seqs])
        self.n_iter_ = int(hmm.monitor_.iter)
        self.set_matrices(hmm.startprob_, hmm.transmat_, hmm.emissionprob_)

    def set_matrices(self, start, trans, emit) -> None:
        """Set the HMM's parameters (rows normalised; emissions floored over the events that may come)."""
        mask = support_mask(len(self.vocab_))
        emit = np.asarray(emit, np.float64) * mask
        emit = emit / np.maximum(emit.sum(1, keepdims=True), 1e-300)
        self.startprob_ = np.asarray(start, np.float64) / np.sum(start)
        self.transmat_ = np.asarray(trans, np.float64) / np.asarray(trans, np.float64).sum(1, keepdims=True)
        self.emissionprob_ = (1 - FLOOR) * emit + FLOOR * mask / mask.sum()

    def _tensors(self) -> dict:
        return {"startprob": self.startprob_, "transmat": self.transmat_, "emissionprob": self.emissionprob_}

    def _load_tensors(self, tensors: dict) -> None:
        self.startprob_ = tensors["startprob"].astype(np.float64)
        self.transmat_ = tensors["transmat"].astype(np.float64)
        self.emissionprob_ = tensors["emissionprob"].astype(np.float64)

    # --- the forward filter ------------------------------------------------------------
    def _filter(self, x: np.ndarray, q: np.ndarray, lengths: np.ndarray | None = None):
        """Predictive log-probabilities for ``x`` (batch, T) from state beliefs ``q`` (batch, S).

        Returns ``(batch, T, V)`` and the beliefs after each sequence's last event
        (at ``lengths``, default ``T``).
        """
        A, B = self.transmat_, self.emissionprob_
        n, T = x.shape
        out = np.empty((n, T, B.shape[1]), np.float32)
        final = q.copy()
        lengths = np.full(n, T) if lengths is None else lengths
        for t in range(T):
            with np.errstate(divide="ignore"):  # padding and <bos> are never predicted: -inf
                out[:, t] = np.log(q @ B)
            post = q * B[:, x[:, t]].T
            post /= post.sum(1, keepdims=True)
            q = post @ A
            done = lengths == t + 1
            final[done] = q[done]
        return out, final

    def log_proba(self, ids_list, complete):
        V = len(self.vocab_)
        ys = [with_end(a, c) for a, c in zip(ids_list, complete)]
        out: list[np.ndarray | None] = [None] * len(ys)
        order = np.argsort([len(y) for y in ys], kind="stable")
        for s in range(0, len(order), BATCH):
            idx = order[s:s + BATCH]
            lengths = np.array([len(ys[i]) for i in idx])
            T = int(lengths.max()) if len(idx) else 0
            x = np.full((len(idx), T), EOS, np.int64)  # past a sequence's end: any event, the rows are dropped
            for r, i in enumerate(idx):
                x[r, : lengths[r]] = ys[i]
            lp, _ = self._filter(x, np.tile(self.startprob_, (len(idx), 1)), lengths)
            for r, i in enumerate(idx):
                out[i] = lp[r, : lengths[r]] if lengths[r] else np.zeros((0, V), np.float32)
        return out

    def stream_start(self):
        return self.startprob_.copy()

    def stream_step(self, ids, state):
        ids = np.asarray(ids, np.int64)
        if len(ids) == 0:
            return np.zeros((0, len(self.vocab_)), np.float32), state
        lp, final = self._filter(ids[None, :], state[None, :])
        return lp[0], final[0]
