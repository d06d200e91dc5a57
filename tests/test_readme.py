"""Every command of the README runs as written, in order, from an empty folder.

The ``sh`` blocks are run line by line (a trailing backslash joins lines) with ``seqrnn`` on the PATH,
then the ``python`` blocks; each must exit 0. Lines that read ``../shared/data`` run where that folder
exists beside the checkout and are skipped (and said so) elsewhere. Slow: it runs the demo and trains.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def commands() -> list[str]:
    out = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                out.append(line.strip())
    return out


def test_readme_has_the_commands_of_every_section():
    cmds = commands()
    assert cmds[0] == "seqrnn demo" or cmds[0].startswith("seqrnn demo ")
    for word in ("train", "evaluate", "predict", "info", "detect", "evaluate-detection", "report", "compare",
                 "tune", "generate"):
        assert any(re.search(rf"\bseqrnn {word}\b", c) for c in cmds), word
    assert blocks("python")


def test_every_readme_command_runs_as_written(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    if (SHARED / "data").is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "seqrnn"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m seqrnn "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    skipped, missing = [], []  # commands skipped, and the folders they would have made
    for cmd in commands():
        if ("../shared/data" in cmd and not (SHARED / "data").is_dir()) or any(m in cmd.split() for m in missing):
            skipped.append(cmd)
            missing += re.findall(r"(?:--model-dir|-m|-o|--output|--output-dir)\s+(\S+)", cmd)
            continue
        done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{cmd}\n{done.stderr[-3000:]}"
    for block in blocks("python"):
        done = subprocess.run([sys.executable, "-c", block], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{block}\n{done.stderr[-3000:]}"
    assert (work / "runs" / "demo" / "report.html").is_file() and (work / "report.html").is_file()
    if skipped:
        print("skipped, no ../shared/data here:", *skipped, sep="\n  ")
