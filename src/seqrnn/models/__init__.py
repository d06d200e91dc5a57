"""Models behind one interface (:class:`~seqrnn.models.base.SequenceModel`)."""

import importlib

from .base import REGISTRY, SequenceModel, load, register  # noqa: F401

# The module that defines each kind. Loading or training one kind imports its
# module alone: the baselines never pay for importing torch.
MODULES = {
    "rnn": "rnn", "context": "context",
    "markov": "markov", "nb": "naive_bayes", "hmm": "hmm",
    "unseen": "counts", "length": "counts", "count": "counts", "combined": "counts",
    "classifier": "classifier",
}


def model_class(kind: str) -> type:
    """The class of model ``kind`` (``KeyError`` for an unknown kind)."""
    importlib.import_module(f".{MODULES[kind]}", __name__)
    return REGISTRY[kind]


def _import_all() -> None:
    """Import every model module so that each registers its kind."""
    for module in sorted(set(MODULES.values())):
        importlib.import_module(f".{module}", __name__)
