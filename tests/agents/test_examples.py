"""examples/repair_conversation.py plays real MultiTurnRepair-v0 episodes and prints one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]


def _play(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "repair_conversation.py"),
         "--model", str(model), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.docker
@pytest.mark.slow
def test_repair_conversation_prints_a_whole_episode(small_model_dir: Path) -> None:
    done = _play(small_model_dir, "--tasks", "3", "--want", "any")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# toy/") and "episodes played:" in lines[0]
    kind = lines[0].split(": ")[1].split(" ")[0]
    assert kind in ("solved", "repaired", "failed", "cut")
    users, answers = lines.count("[user]"), lines.count("[assistant]")
    assert answers >= 1
    # the problem, then one feedback message between each two answers (and after the last
    # one of a conversation cut for length)
    assert users == answers + (kind == "cut")
    assert "Write" in done.stdout  # the env's instruction in the first user message


@pytest.mark.docker
@pytest.mark.slow
def test_repair_conversation_says_when_nothing_matches(small_model_dir: Path) -> None:
    done = _play(small_model_dir, "--tasks", "2", "--min-turns", "4")
    assert done.returncode == 1
    assert "no any episode of 4+ turns in 2 tasks" in done.stdout


def test_repair_conversation_bad_model_is_one_line(tmp_path: Path) -> None:
    done = _play(tmp_path / "nope", "--tasks", "1")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("repair_conversation.py: error: model folder")
    assert "Traceback" not in done.stderr
