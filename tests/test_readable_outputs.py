"""What a person reads: the demo's run folder, report's output path, detect's summary and JSON, counts."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, write_toy_sessions


# --- seqrnn demo -o DIR --------------------------------------------------------------------------------
def test_demo_refuses_a_folder_of_other_files_and_reuses_a_previous_run(capsys, tmp_path):
    from seqrnn.demo import STEPS, run_demo

    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me\n")
    (mine / "data" / "precious").write_text("keep me too\n")
    code, _, err = run_cli(capsys, "demo", "-o", mine, "--baselines", "none")
    assert code == 2 and f"{mine}: folder is not empty and not a previous demo run" in err
    assert "notes.txt" in err and "data/precious" in err and "Traceback" not in err
    assert sorted(p.name for p in mine.rglob("*")) == ["data", "notes.txt", "precious"]  # nothing written
    (tmp_path / "model-only" / "model").mkdir(parents=True)  # a user's model folder alone: not a demo's
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "model-only")
    assert code == 2 and "it has no data/ or run.json" in err
    (tmp_path / "a-file").write_text("x")
    code, _, err = run_cli(capsys, "demo", "-o", tmp_path / "a-file")
    assert code == 2 and "a-file: not a folder" in err

    run = tmp_path / "run"
    run.mkdir()  # empty: used as it is, without a word about reuse
    run_demo(str(run), steps=[STEPS[0]])
    assert "previous demo run" not in capsys.readouterr().err
    run_demo(str(run), steps=[STEPS[0]])  # its own data/: a previous run, reused
    assert f"{run} holds a previous demo run: reusing it, its files are overwritten" in capsys.readouterr().err
