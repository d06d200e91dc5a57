"""Models behind one interface (:class:`~seqrnn.models.base.SequenceModel`)."""

from .base import REGISTRY, SequenceModel, load, register  # noqa: F401


def _import_all() -> None:
    """Import every model module so that each registers its kind."""
    from . import context, rnn  # noqa: F401
    from . import counts, hmm, markov, naive_bayes  # noqa: F401  (the baselines)
