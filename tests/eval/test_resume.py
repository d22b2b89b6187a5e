"""A run killed mid-way and resumed gives the report of an uninterrupted run, and the resume
asks the policy only for what was missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codegym.cli import main
from codegym.tasks.jsonl import write_jsonl
from tests.eval import scripted

POLICY = f"python:{scripted.__file__}:chat_policy"


def _records(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()[1:] if path.exists() else []
    return [json.loads(x) for x in lines if x.endswith("}")]


def _kill_midway(args: list[str], out: Path, at: int, env: dict[str, str]) -> None:
    """Run ``codegym`` with ``args`` in a new session; SIGKILL it (and the sandbox workers it
    started) once ``out`` holds ``at`` samples."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegym", *args, "--out", str(out)],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_records(out)) < at:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "multi"])
def test_resume_after_kill_gives_the_same_report(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    write_jsonl(scripted.TASKS, tasks)
    args = ["eval", "--policy", POLICY, "--tasks", str(tasks), "--mode", mode, "--n", "4",
            "--k", "1,2", "--sandbox", "process", "--no-progress"]  # fmt: skip

    # the uninterrupted run
    ref_calls = tmp_path / "ref_calls.txt"
    monkeypatch.setenv("CODEGYM_TEST_POLICY_CALLS", str(ref_calls))
    assert main([*args, "--out", str(tmp_path / "ref.jsonl"),
                 "--report", str(tmp_path / "ref.json")]) == 0  # fmt: skip
    reference = json.loads((tmp_path / "ref.json").read_text())
    total_turns = len(ref_calls.read_text().splitlines())

    # the same run, killed after 10 samples, with a write cut short
    out = tmp_path / "run.jsonl"
    env = {**os.environ, "CODEGYM_TEST_POLICY_DELAY": "0.1",
           "CODEGYM_TEST_POLICY_CALLS": str(tmp_path / "killed_calls.txt")}  # fmt: skip
    _kill_midway(args, out, at=10, env=env)
    if out.read_bytes().endswith(b"\n"):
        with out.open("a") as f:
            f.write('{"task_id": "toy/cut", "sample": 0, "tur')
    before = _records(out)
    assert 10 <= len(before) < total_turns
    if mode == "multi":  # the kill left rollouts half played: the replay path is exercised
        ended = {(r["task_id"], r["sample"]) for r in before if r["done"]}
        assert {(r["task_id"], r["sample"]) for r in before} - ended

    resume_calls = tmp_path / "resume_calls.txt"
    monkeypatch.setenv("CODEGYM_TEST_POLICY_CALLS", str(resume_calls))
    assert main([*args, "--out", str(out), "--resume", "--report", str(tmp_path / "r.json")]) == 0
    resumed = json.loads((tmp_path / "r.json").read_text())
    assert resumed == reference
    # only what was missing was asked for: recorded turns were neither generated nor written again
    assert len(resume_calls.read_text().splitlines()) == total_turns - len(before)
    assert len(_records(out)) == total_turns

    # resuming a finished run does nothing and gives the same report again
    resume_calls.unlink()
    assert main([*args, "--out", str(out), "--resume", "--report", str(tmp_path / "r2.json")]) == 0
    assert not resume_calls.exists()
    assert json.loads((tmp_path / "r2.json").read_text()) == reference
