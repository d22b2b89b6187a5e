"""The report of an evaluation: metrics from the sample records, a table, JSON and a plot.

The report is a pure function of the records (:func:`build_report`): a run resumed after a
kill and the same run uninterrupted give the same report. Its JSON form has the metric keys
(``"pass@1"``, ``"pass@10"`` in single mode; ``"1@3"``, ``"1@1"`` ... in multi mode) each with
``"<key>_ci": [low, high]``, then ``by_source`` and ``by_difficulty`` (the same metrics per
group, with task counts), ``verdicts`` (counts over every sample), ``tasks`` (tasks scored),
``n`` (fewest samples or rollouts of a scored task), ``samples``, ``per_task`` and ``config``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegym.eval.metrics import (
    DEFAULT_RESAMPLES,
    TaskScore,
    metric_keys,
    summarise,
    verdict_counts,
)
from codegym.eval.records import episodes, is_done
from codegym.tasks.task import Task


@dataclass
class EvalReport:
    """Scores of one evaluation run.

    Attributes:
        mode: ``"single"`` or ``"multi"``.
        metrics: Metric key -> suite score (``{"pass@1": 0.42}``).
        intervals: Metric key -> 95% bootstrap interval ``(low, high)``.
        by_source, by_difficulty: Group -> ``{"tasks": N, <key>: score, <key>_ci: [...]}``.
        verdicts: Verdict -> number of samples.
        scores: What each scored task got (samples/rollouts, correct, ...).
        missing: Tasks of the suite without a finished sample (not scored).
        config: The run's settings.
    """

    mode: str
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    by_source: dict[str, dict[str, Any]]
    by_difficulty: dict[str, dict[str, Any]]
    verdicts: dict[str, int]
    scores: list[TaskScore]
    missing: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    @property
    def num_tasks(self) -> int:
        """Tasks scored."""
        return len(self.scores)

    @property
    def n(self) -> int:
        """Fewest samples (single mode) or rollouts (multi mode) of a scored task."""
        return min((s.samples for s in self.scores), default=0)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data (see the module docstring)."""
        out: dict[str, Any] = {"mode": self.mode, "policy": self.config.get("policy")}
        for key, value in self.metrics.items():
            out[key] = value
            out[f"{key}_ci"] = list(self.intervals[key])
        out.update(
            tasks=self.num_tasks,
            n=self.n,
            samples=sum(s.samples for s in self.scores),
            by_source=self.by_source,
            by_difficulty=self.by_difficulty,
            verdicts=self.verdicts,
        )
        if self.mode == "multi":
            out["max_turns"] = self.config.get("max_turns")
            rollouts = sum(s.samples for s in self.scores)
            out["mean_turns"] = sum(s.turns for s in self.scores) / rollouts if rollouts else 0.0
        out["per_task"] = {s.task_id: _task_entry(s, self.mode) for s in self.scores}
        out["missing_tasks"] = self.missing
        out["config"] = self.config
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON report; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def title(self) -> str:
        """One line naming the run."""
        what = "rollouts" if self.mode == "multi" else "samples"
        turns = f", up to {self.config.get('max_turns')} turns" if self.mode == "multi" else ""
        return (
            f"{self.config.get('policy')} on {self.config.get('tasks')}: {self.num_tasks} tasks, "
            f"{self.n} {what} each{turns} ({self.mode} mode)"
        )

    def format_text(self) -> str:
        """The report as plain text (what :meth:`print_table` shows, without rich)."""
        lines = [self.title()]
        for key, value in self.metrics.items():
            low, high = self.intervals[key]
            lines.append(f"  {key:>8}  {_pct(value):>7}   95% CI [{_pct(low)}, {_pct(high)}]")
        for label, groups in (("source", self.by_source), ("difficulty", self.by_difficulty)):
            if len(groups) > 1:
                for name, g in groups.items():
                    scores = "  ".join(f"{k} {_pct(g[k])}" for k in self.metrics)
                    lines.append(f"  {label} {name} ({g['tasks']} tasks): {scores}")
        lines.append("  verdicts: " + ", ".join(f"{v} {c}" for v, c in self.verdicts.items()))
        return "\n".join(lines)

    def print_table(self, console: Any = None) -> None:
        """Print the report as rich tables (plain text when rich is not installed)."""
        try:
            from rich.console import Console
            from rich.table import Table
        except ModuleNotFoundError:
            print(self.format_text())
            return
        console = console or Console()
        console.print(self.title(), soft_wrap=True, markup=False)
        table = Table()
        table.add_column("metric")
        table.add_column("score", justify="right")
        table.add_column("95% CI", justify="right")
        for key, value in self.metrics.items():
            low, high = self.intervals[key]
            table.add_row(key, _pct(value), f"[{_pct(low)}, {_pct(high)}]")
        console.print(table)
        for label, groups in (("source", self.by_source), ("difficulty", self.by_difficulty)):
            if len(groups) < 2:
                continue
            sub = Table(title=f"by {label}", title_justify="left")
            sub.add_column(label)
            sub.add_column("tasks", justify="right")
            for key in self.metrics:
                sub.add_column(key, justify="right")
            for name, g in groups.items():
                sub.add_row(name, str(g["tasks"]), *(_pct(g[k]) for k in self.metrics))
            console.print(sub)
        verdicts = Table(title="verdicts", title_justify="left")
        verdicts.add_column("verdict")
        verdicts.add_column("samples", justify="right")
        for v, c in self.verdicts.items():
            verdicts.add_row(v, str(c))
        console.print(verdicts)

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Save a PNG: each metric with its interval, and the first metric by difficulty
        (or by source) when there is more than one group.

        Raises:
            UsageError: matplotlib is not installed.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ModuleNotFoundError as e:
            from codegym.errors import UsageError

            raise UsageError(
                "the plot needs matplotlib, which is not installed: pip install 'codegym[train]'"
                " (or pip install matplotlib)"
            ) from e
        groups = self.by_difficulty if len(self.by_difficulty) > 1 else self.by_source
        panels = 2 if len(groups) > 1 and self.metrics else 1
        fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
        keys = list(self.metrics)
        ax = axes[0][0]
        values = [100 * self.metrics[k] for k in keys]
        errors = [
            [100 * (self.metrics[k] - self.intervals[k][0]) for k in keys],
            [100 * (self.intervals[k][1] - self.metrics[k]) for k in keys],
        ]
        ax.bar(keys, values, yerr=errors, capsize=4, color="#4C72B0")
        ax.set_ylabel("% of tasks (95% CI)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{self.config.get('policy')}, {self.num_tasks} tasks", fontsize=9)
        if panels == 2:
            key = keys[0]
            ax2 = axes[0][1]
            names = list(groups)
            ax2.bar(names, [100 * groups[g][key] for g in names], color="#55A868")
            ax2.set_ylim(0, 100)
            ax2.set_title(f"{key} by {'difficulty' if groups is self.by_difficulty else 'source'}",
                          fontsize=9)  # fmt: skip
            ax2.tick_params(axis="x", labelrotation=30)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.2f}%"


def _task_entry(score: TaskScore, mode: str) -> dict[str, Any]:
    if mode == "single":
        return {"samples": score.samples, "passed": score.correct}
    return {
        "rollouts": score.samples,
        "solved": score.correct,
        "solved_first_turn": score.first_turn,
        "turns": score.turns,
    }


def score_tasks(
    records: Iterable[Mapping[str, Any]],
    tasks: Sequence[Task],
    *,
    mode: str,
    n: int | None = None,
) -> tuple[list[TaskScore], list[str], list[str]]:
    """What each task got from the finished rollouts in ``records``.

    Args:
        records: Sample records (see :mod:`codegym.eval.records`).
        tasks: The suite, in report order; records of other tasks are ignored.
        mode: ``"single"`` or ``"multi"``.
        n: Count only samples (rollouts) ``0 .. n-1``; ``None`` counts all.

    Returns:
        ``(scores, missing, verdicts)``: a score per task with at least one finished sample,
        the ids of the others, and the verdict of every counted sample.
    """
    by_task: dict[str, list[list[dict[str, Any]]]] = {}
    for (task_id, sample), turns in sorted(episodes(records).items()):
        if (n is None or sample < n) and is_done(turns):
            by_task.setdefault(task_id, []).append(turns)
    scores: list[TaskScore] = []
    missing: list[str] = []
    verdicts: list[str] = []
    for task in tasks:
        rollouts = by_task.get(task.task_id, [])
        if not rollouts:
            missing.append(task.task_id)
            continue
        solved = [bool(r[-1].get("passed")) for r in rollouts]
        scores.append(
            TaskScore(
                task_id=task.task_id,
                source=task.source,
                difficulty=task.difficulty,
                samples=len(rollouts),
                correct=sum(solved),
                first_turn=sum(s and len(r) == 1 for s, r in zip(solved, rollouts, strict=True)),
                turns=sum(len(r) for r in rollouts),
            )
        )
        verdicts.extend(str(t.get("verdict")) for r in rollouts for t in r)
    return scores, missing, verdicts


def build_report(
    records: Iterable[Mapping[str, Any]],
    tasks: Sequence[Task],
    *,
    mode: str,
    ks: Iterable[int],
    max_turns: int = 1,
    n: int | None = None,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    config: Mapping[str, Any] | None = None,
) -> EvalReport:
    """The report of a run from its sample records (see the module docstring).

    Args:
        records: The run's sample records.
        tasks: The suite.
        mode: ``"single"`` or ``"multi"``.
        ks: The ``k`` of pass@k (single) or ``n`` of n@k (multi); those above the samples
            (rollouts) of some task are left out.
        max_turns: ``T`` of multi mode.
        n: Count only samples ``0 .. n-1`` (``None``: all).
        seed: Seed of the bootstrap.
        resamples: Bootstrap resamples.
        config: The run's settings, kept in the report.
    """
    scores, missing, verdicts = score_tasks(records, tasks, mode=mode, n=n)
    summary = summarise(
        scores, mode=mode, ks=ks, max_turns=max_turns, seed=seed, resamples=resamples
    )
    keys = metric_keys(summary)
    return EvalReport(
        mode=mode,
        metrics={k: summary[k] for k in keys},
        intervals={k: (summary[f"{k}_ci"][0], summary[f"{k}_ci"][1]) for k in keys},
        by_source=summary["by_source"],
        by_difficulty=summary["by_difficulty"],
        verdicts=verdict_counts(verdicts),
        scores=scores,
        missing=missing,
        config={
            **dict(config or {}),
            "seed": seed,
            "bootstrap_resamples": resamples,
            "max_turns": max_turns,
        },
    )


__all__ = ["EvalReport", "build_report", "score_tasks"]
