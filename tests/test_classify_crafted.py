"""``seqrnn classify`` on extreme values and odd inputs: never a traceback."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("z,p", [(0.0, 0.5), (2.0, 1 / (1 + np.exp(-2.0))), (-40.0, np.exp(-40.0) / (1 + np.exp(-40.0))),
                                 (-1e5, 0.0), (1e5, 1.0), (-800.0, 0.0), (800.0, 1.0)])
def test_sigmoid_is_exact_and_never_overflows(z, p):
    from seqrnn.models.classifier import sigmoid

    assert sigmoid(z) == pytest.approx(p, rel=1e-12, abs=0)


def test_a_prediction_line_with_a_far_negative_threshold_is_written(tmp_path):
    """A threshold of logit -1e5 (finite, so the schema takes it; a hand-edited or extreme model) overflowed
    math.exp in the reason text: a traceback from classify predict."""
    from types import SimpleNamespace

    from seqrnn.cli.classify import prediction_dict
    from seqrnn.data.formats import Sequence

    seq = Sequence("s1", ["a", "b"], "f.txt", 1)
    p = SimpleNamespace(sequence=seq, probability=0.25, anomalous=True, attention=np.array([0.6, 0.4]))
    out = prediction_dict(p, -1e5, None)
    assert out["reason"].startswith("classified anomalous: p(anomalous)=0.25 > 0;"), out["reason"]
