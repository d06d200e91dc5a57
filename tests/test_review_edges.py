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


def test_plots_and_the_event_table_are_written_atomically(tmp_path, monkeypatch):
    """A PNG (--plot, roc.png, a tune study's plots) and detect's --events table were written in place:
    stopped half-way, they were left cut short over the previous file. Now the previous file stays."""
    import matplotlib.figure

    from seqrnn.report import write_event_table
    from seqrnn.report.plots import figure

    png = tmp_path / "plot.png"
    png.write_bytes(b"previous")

    def broken_savefig(self, target, **kwargs):
        target.write(b"\x89PNG half") if hasattr(target, "write") else open(target, "wb").write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(KeyboardInterrupt):
        with figure(str(png)) as ax:
            ax.plot([0, 1])
    assert png.read_bytes() == b"previous"

    class Broken:
        @property
        def scores(self):
            raise KeyboardInterrupt

    table = tmp_path / "events.csv"
    table.write_text("previous\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        write_event_table(str(table), None, [Broken()])
    assert table.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv", "plot.png"]
