"""Shared fixtures: a tiny generated sessions file and tiny model settings.

Everything here is kept small so that the whole suite runs in seconds on two
CPU cores: 60 short sessions over a five-event alphabet, and a one-layer
network of 16 units trained for a few epochs.
"""

from __future__ import annotations

import random

import pytest

#: Settings for ``RNNModel(**tiny_settings)``: small, single-threaded, seeded.
TINY_SETTINGS = dict(hidden=16, embedding_dim=8, layers=1, epochs=3, batch_size=16, seed=0, threads=1)


def toy_session_lines(n: int = 60, seed: int = 0) -> list[str]:
    """``n`` sessions ``s<i>,a b.. c [e] d`` of a simple grammar.

    Each session is ``a``, then ``b`` one to three times, then ``c``,
    sometimes ``e``, then ``d``: about five to eight events, with enough
    variation for the model to have something to learn.
    """
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        tokens = ["a"] + ["b"] * rng.randint(1, 3) + ["c"]
        if rng.random() < 0.3:
            tokens.append("e")
        tokens.append("d")
        lines.append(f"s{i}," + " ".join(tokens))
    return lines


def write_toy_sessions(path, n: int = 60, seed: int = 0):
    """Write :func:`toy_session_lines` to ``path`` (one per line) and return the path."""
    path.write_text("\n".join(toy_session_lines(n, seed)) + "\n", encoding="utf-8")
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``seqrnn ARGV...`` in-process: its exit code, standard output and standard error."""
    from seqrnn.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def toy_sessions(tmp_path):
    """Path of a sessions file with 60 ``id,``-prefixed sessions (ids ``s0``..``s59``)."""
    return write_toy_sessions(tmp_path / "toy_sessions.txt")


@pytest.fixture
def tiny_settings():
    """A fresh copy of :data:`TINY_SETTINGS` (tests may change it)."""
    return dict(TINY_SETTINGS)
