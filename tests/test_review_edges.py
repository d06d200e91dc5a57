"""Edge cases of the training lifecycle, ``tune``, text models and line ends (an adversarial review):
each test here failed before the fix it names."""

from __future__ import annotations

import pytest

from conftest import run_cli, write_toy_sessions


# ============================================================================ outputs appear whole
def test_compare_csv_is_written_atomically(tmp_path):
    """A compare stopped while writing compare.csv left it cut short (it was written in place); now the
    previous file stays as it was and no temporary file is left."""
    from seqrnn.experiments.compare import METRICS, write_outputs

    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("previous\n", encoding="utf-8")
    good = {k: {"mean": 0.5, "std": 0.0} for k in METRICS}
    bad = {k: {"mean": "not a number", "std": 0.0} for k in METRICS}  # fails half-way through the file
    with pytest.raises(ValueError):
        write_outputs({"table": {"lstm": good, "markov1": bad}}, str(out))
    assert (out / "compare.csv").read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv"]
