"""The README's main job, `codegym demo`, runs end to end on the docker sandbox."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.docker
def test_demo_prints_real_verdicts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codegym.cli", "demo", "--tour", "--tasks", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("toy/")]
    assert [r[-2] for r in rows if r[1] == "canonical"] == ["passed", "passed"]
    assert [r[-2] for r in rows if r[1] == "syntax"] == ["syntax_error", "syntax_error"]
    for line, verdict in (
        ("infinite loop", "timeout"),
        ("fork bomb", "timeout"),
        ("memory hog", "memory_limit"),
        ("print flood", "output_limit"),
        ("the next program", "passed"),
    ):
        assert any(ln.startswith(line) and ln.endswith(verdict) for ln in out.splitlines()), line
    assert "reward +1.0" in out and "Give it another try." in out
