"""Summary statistics of a task list (``codegym tasks stats``)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from codegym.tasks.task import Task


def task_stats(tasks: Sequence[Task]) -> dict[str, Any]:
    """Counts of tasks, tests per task, test kinds, difficulties and interfaces.

    Returns:
        Plain data: ``tasks``, ``sources``, ``difficulty``, ``interface`` (call or stdio),
        ``with_solution``, ``test_kinds``, ``public_tests``/``private_tests`` as
        ``{"total", "min", "median", "max"}``, and ``family`` (tasks per family) where the
        tasks name one in their metadata (the toy suite does).
    """

    def dist(values: list[int]) -> dict[str, float]:
        if not values:
            return {"total": 0, "min": 0, "median": 0, "max": 0}
        return {
            "total": sum(values),
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
        }

    stats: dict[str, Any] = {
        "tasks": len(tasks),
        "sources": dict(Counter(t.source for t in tasks)),
        "difficulty": dict(Counter(str(t.difficulty) for t in tasks)),
        "interface": dict(Counter("stdio" if t.entry_point is None else "call" for t in tasks)),
        "with_solution": sum(bool(t.canonical_solutions) for t in tasks),
        "test_kinds": dict(Counter(str(c.kind) for t in tasks for c in t.tests)),
        "public_tests": dist([len(t.public_tests) for t in tasks]),
        "private_tests": dist([len(t.private_tests) for t in tasks]),
    }
    families = Counter(t.metadata["family"] for t in tasks if "family" in t.metadata)
    if families:
        stats["family"] = dict(families)
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    """The output of :func:`task_stats` as aligned text."""
    lines = []
    for key, value in stats.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}: {v}" for k, v in sorted(value.items(), key=str))
            lines.append(f"{key:<15} {inner}")
        else:
            lines.append(f"{key:<15} {value}")
    return "\n".join(lines)


def problem_counts(source: str) -> dict[str, dict[str, int]] | None:
    """The whole suite's distinct problems per family and split, for a generated source.

    Returns:
        ``{family: {"train": n, "test": m}}`` for ``"toy"`` (see
        :func:`codegym.tasks.toy.problem_counts`); ``None`` for a source read from data, whose
        size the loaded tasks already give.
    """
    if source != "toy":
        return None
    from codegym.tasks.toy import problem_counts as toy_counts

    return toy_counts()


def format_problem_counts(counts: dict[str, dict[str, int]]) -> str:
    """:func:`problem_counts` as a table: one row per family, then the totals."""
    splits = list(next(iter(counts.values()), {}))
    rows = [[name, *(row.get(s, 0) for s in splits)] for name, row in counts.items()]
    rows.append(["total", *(sum(row.get(s, 0) for row in counts.values()) for s in splits)])
    width = max(len(str(r[0])) for r in rows)
    lines = ["distinct problems per family and split:"]
    lines.append(f"  {'family':<{width}}" + "".join(f" {s:>7}" for s in splits))
    for name, *values in rows:
        lines.append(f"  {name:<{width}}" + "".join(f" {v:>7}" for v in values))
    return "\n".join(lines)
