"""agents.demo's held-out evaluation, which the demo and the learning benchmark score with."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.demo import evaluate_held_out, held_out_report

TASKS = {"source": "toy", "split": "test", "n": 3, "seed": 1}


@pytest.mark.docker
@pytest.mark.slow
def test_greedy_pass_at_1_per_task_and_resumed(
    small_model_dir: Path, docker_sandbox: object, tmp_path: Path
) -> None:
    out = tmp_path / "eval.jsonl"
    value, (low, high), per_task = evaluate_held_out(
        str(small_model_dir), out, sandbox=docker_sandbox, tasks=TASKS
    )
    assert len(per_task) == 3 and set(per_task.values()) <= {0.0, 1.0}
    assert value == pytest.approx(sum(per_task.values()) / 3)
    assert low <= value <= high
    records = out.read_text().splitlines()
    # a second call reads the finished file instead of sampling again: the same answer
    again = evaluate_held_out(str(small_model_dir), out, sandbox=docker_sandbox, tasks=TASKS)
    assert again == (value, (low, high), per_task)
    assert out.read_text().splitlines() == records


@pytest.mark.docker
@pytest.mark.slow
def test_sampled_report_has_every_k_asked(
    small_model_dir: Path, docker_sandbox: object, tmp_path: Path
) -> None:
    report = held_out_report(
        str(small_model_dir), tmp_path / "s.jsonl", sandbox=docker_sandbox, tasks=TASKS,
        n=2, k=(1, 2), temperature=0.7,
    )  # fmt: skip
    assert report.n == 2 and report.num_tasks == 3
    assert 0.0 <= report["pass@1"] <= report["pass@2"] <= 1.0
