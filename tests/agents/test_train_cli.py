"""`codegym train` from the command line on the bundled tiny model and the docker sandbox
(issue 8's and 9's done-checks), and its one-line errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SMALL = ["--set", "tasks_per_step=2", "--set", "samples_per_task=2", "--set", "max_new_tokens=48"]


def _codegym(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegym", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["stepcoder", "rlef"])
def test_train_two_steps_on_the_tiny_model(
    algorithm: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / algorithm
    done = _codegym(
        "train", algorithm, "--model", "tiny", "--tasks", "toy", "--steps", "2",
        "--out", str(out), "--no-progress", *SMALL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "preset 'tiny'" in done.stdout
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1.0", "2.0"]
    assert (out / "checkpoint-2" / "policy" / "model.safetensors").exists()
    # the same run again without --resume is refused, and nothing is touched
    before = (out / "metrics.csv").read_text()
    again = _codegym("train", algorithm, "--model", "tiny", "--steps", "2", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("codegym: error:")
    assert "--resume" in again.stderr
    assert (out / "metrics.csv").read_text() == before


def test_unknown_model_is_one_line(tmp_path: Path) -> None:
    done = _codegym("train", "stepcoder", "--model", str(tmp_path / "nope"), "--steps", "1",
                    "--out", str(tmp_path / "run"), "--sandbox", "process")  # fmt: skip
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("codegym: error:") and "nope" in last
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_unknown_config_key_is_one_line(tmp_path: Path) -> None:
    done = _codegym("train", "rlef", "--set", "max_turn=2", "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "unknown config key 'max_turn'" in done.stderr and "max_turns" in done.stderr
    assert "Traceback" not in done.stderr


def test_resume_with_nothing_to_resume(tmp_path: Path) -> None:
    done = _codegym("train", "stepcoder", "--resume", "--out", str(tmp_path / "empty"))
    assert done.returncode == 2
    assert "no checkpoint to resume" in done.stderr
