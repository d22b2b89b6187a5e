"""The ``codegym`` command: user errors are one line on stderr with exit status 2, bugs are not.

Run as a user runs it, ``python -m codegym`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codegym import cli


def _codegym(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegym", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _assert_one_line_error(out: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit status 2 and one line on stderr besides log records of the work done before."""
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if not line.startswith(("INFO ", "DEBUG "))]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("codegym: error: "), out.stderr
    for phrase in phrases:
        assert phrase in lines[0], out.stderr


def test_a_missing_task_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    out = _codegym("tasks", "validate", str(missing), "--sandbox", "process")
    _assert_one_line_error(out, str(missing), "does not exist")


def test_a_malformed_task_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": 1, "prompt": "p"}) + "\n")
    _assert_one_line_error(_codegym("tasks", "stats", str(bad)), f"line 1 of {bad}", "task_id")


def test_an_unknown_source_is_one_line() -> None:
    _assert_one_line_error(_codegym("tasks", "stats", "nosuch"), "unknown task source 'nosuch'")


def test_drop_bad_without_out_is_one_line() -> None:
    out = _codegym("tasks", "validate", "toy", "--drop-bad", "--sandbox", "process")
    _assert_one_line_error(out, "--drop-bad needs --out")


def test_a_bad_package_name_is_one_line() -> None:
    out = _codegym("sandbox", "build", "--packages", "python3-numpy,Not_A_Package")
    _assert_one_line_error(out, "'Not_A_Package': not a Debian package name")


def test_no_docker_daemon_is_one_line(tmp_path: Path) -> None:
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"}
    _assert_one_line_error(_codegym("sandbox", "cleanup", env=nowhere), "no Docker daemon answers")
    out = _codegym("tasks", "validate", "toy", "--n", "1", "--sandbox", "docker", env=nowhere)
    _assert_one_line_error(out, "no Docker daemon answers")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where: str) -> None:
    args = ["tasks", "stats", "nosuch"]
    out = _codegym(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr
    assert "UsageError: unknown task source 'nosuch'" in out.stderr


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from codegym.tasks import cli as tasks_cli

    def broken(tasks):
        raise KeyError("a bug, not the user's fault")

    monkeypatch.setattr(tasks_cli, "task_stats", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["tasks", "stats", "toy", "--n", "2"])


def test_python_dash_m_runs_the_command() -> None:
    out = _codegym("--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: codegym")
    assert "--debug" in out.stdout


@pytest.mark.docker
def test_doctor_reports_the_image_contents() -> None:
    out = _codegym("sandbox", "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    image_line = next(line for line in out.stdout.splitlines() if "image" in line)
    assert image_line.startswith("[ok]")
    for part in ("MB", "Python 3.", "python3-numpy 1:", "python3-sortedcontainers 2."):
        assert part in image_line, out.stdout
    assert "a program ran in the sandbox" in out.stdout
    assert "[ok]   the runners talk to this process over the direct socket" in out.stdout


@pytest.mark.docker
def test_doctor_says_which_transport_the_runners_use() -> None:
    out = _codegym("sandbox", "doctor", env={"CODEGYM_DOCKER_DIRECT_SOCKET": "0"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Docker's attach stream (CODEGYM_DOCKER_DIRECT_SOCKET=0)" in out.stdout
