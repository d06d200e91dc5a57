"""seqrnn: learn the grammar of discrete event sequences with recurrent networks,
and use it to predict, generate and find what does not fit.

The heavy parts (PyTorch) are imported only when a model is used, so that
``import seqrnn`` and ``seqrnn --help`` stay fast.
"""

__version__ = "0.1.0"

import sys as _sys

if "torch" not in _sys.modules:  # OpenMP reads its settings once, when torch loads it: see seqrnn.runtime
    from . import runtime as _runtime

    _runtime.configure()

_LAZY = {
    "RNNModel": ("seqrnn.models.rnn", "RNNModel"),
    "ContextModel": ("seqrnn.models.context", "ContextModel"),
    "MarkovModel": ("seqrnn.models.markov", "MarkovModel"),
    "NaiveBayesModel": ("seqrnn.models.naive_bayes", "NaiveBayesModel"),
    "HMMModel": ("seqrnn.models.hmm", "HMMModel"),
    "CountModel": ("seqrnn.models.counts", "CountModel"),
    "CombinedModel": ("seqrnn.models.counts", "CombinedModel"),
    "SequenceClassifier": ("seqrnn.models.classifier", "SequenceClassifier"),
    "SequenceModel": ("seqrnn.models.base", "SequenceModel"),
    "load": ("seqrnn.models.base", "load"),
    "Sequence": ("seqrnn.data.formats", "Sequence"),
    "read_sequences": ("seqrnn.data.formats", "read_sequences"),
    "Vocabulary": ("seqrnn.data.vocab", "Vocabulary"),
    "ModelConfig": ("seqrnn.config", "ModelConfig"),
    "TrainConfig": ("seqrnn.config", "TrainConfig"),
    "Detector": ("seqrnn.detect", "Detector"),
    "InputError": ("seqrnn.errors", "InputError"),
    "ModelFileError": ("seqrnn.errors", "ModelFileError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqrnn' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
