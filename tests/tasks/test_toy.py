"""The procedural toy suite: a held-out split, no repeats, equal family shares, determinism,
and tests strong enough to reject mutants."""

from __future__ import annotations

import ast
import itertools
import re
from collections import Counter
from dataclasses import replace

import pytest

from codegym.cli import main
from codegym.errors import UsageError
from codegym.sandbox import Limits
from codegym.tasks import Task, load_tasks, toy
from codegym.tasks.toy import DIFFICULTIES, FAMILIES, generate, problem_counts
from codegym.tasks.validate import job_for

#: The sizes the issue asks the suite to hold without running dry.
TRAIN_N, TEST_N = 5000, 1500


@pytest.fixture(scope="module")
def train() -> list[Task]:
    return load_tasks("toy", split="train", n=TRAIN_N, seed=0)


@pytest.fixture(scope="module")
def held_out() -> list[Task]:
    return load_tasks("toy", split="test", n=TEST_N, seed=1)


def test_same_seed_same_tasks_other_seed_other_tasks() -> None:
    a = load_tasks("toy", split="train", n=200, seed=0)
    assert a == load_tasks("toy", split="train", n=200, seed=0)
    b = load_tasks("toy", split="train", n=200, seed=1)
    assert [t.task_id for t in a] != [t.task_id for t in b]
    # a longer load starts with the shorter one: generation is a stream
    assert load_tasks("toy", split="train", n=300, seed=0)[:200] == a


def test_no_prompt_or_solution_of_the_test_split_is_in_the_train_split(
    train: list[Task], held_out: list[Task]
) -> None:
    assert {t.metadata["split"] for t in train} == {"train"}
    assert {t.metadata["split"] for t in held_out} == {"test"}
    assert not {t.task_id for t in train} & {t.task_id for t in held_out}
    assert not {t.prompt for t in train} & {t.prompt for t in held_out}
    train_code = {c for t in train for c in t.canonical_solutions}
    assert not train_code & {c for t in held_out for c in t.canonical_solutions}
    # a load of both splits at another seed marks them the same way
    both = load_tasks("toy", split=None, n=2000, seed=2)
    by_prompt = {t.prompt: t.metadata["split"] for t in [*train, *held_out]}
    assert all(by_prompt.get(t.prompt, t.metadata["split"]) == t.metadata["split"] for t in both)
    share = sum(t.metadata["split"] == "test" for t in both) / len(both)
    assert 0.15 < share < 0.35


def test_no_problem_of_the_whole_suite_shares_a_prompt_or_a_solution() -> None:
    """Exhaustive: every prompt has one solution and vice versa, so (the split being a
    function of the problem) no prompt and no solution is in both splits, at any n and seed.
    No problem answers the same whatever its input."""
    prompts: dict[str, tuple[str, str]] = {}  # prompt -> (solution, split)
    solutions: dict[str, str] = {}  # solution -> prompt
    for name, family in FAMILIES.items():
        for t, template in enumerate(family.templates):
            for params in toy._space(name, t):
                spec = template.build(params)
                split, constant = toy._behaviour(name, t, params)
                assert prompts.setdefault(spec.prompt, (spec.solution, split)) == (
                    spec.solution,
                    split,
                )
                assert solutions.setdefault(spec.solution, spec.prompt) == spec.prompt
                assert not constant, spec.prompt
    total = sum(row["train"] + row["test"] for row in problem_counts().values())
    assert len(prompts) == len(solutions) == total


def test_one_task_per_problem_within_a_split(train: list[Task], held_out: list[Task]) -> None:
    for tasks in (train, held_out):
        assert len({t.task_id for t in tasks}) == len(tasks)
        assert len({t.prompt for t in tasks}) == len(tasks)
        assert len({t.canonical_solutions[0] for t in tasks}) == len(tasks)


def test_families_have_equal_shares_in_both_splits(train: list[Task], held_out: list[Task]) -> None:
    for tasks in (train, held_out):
        per_family = Counter(t.metadata["family"] for t in tasks)
        assert set(per_family) == set(FAMILIES)
        assert max(per_family.values()) - min(per_family.values()) <= 1, per_family
    # and any prefix of the stream is balanced too (families take turns)
    first = Counter(t.metadata["family"] for t in train[:100])
    assert max(first.values()) - min(first.values()) <= 1


def test_each_family_holds_a_few_thousand_training_problems() -> None:
    counts = problem_counts()
    assert set(counts) == set(FAMILIES)
    for name, row in counts.items():
        # twice what a 5,000-task train load or a 1,500-task test load takes from a family
        assert row["train"] >= 2 * TRAIN_N / len(FAMILIES), (name, row)
        assert row["test"] >= 2 * 500 / len(FAMILIES), (name, row)
        assert 0.15 < row["test"] / (row["train"] + row["test"]) < 0.35, (name, row)


def test_asking_for_more_than_the_split_holds_is_an_error_naming_what_it_holds() -> None:
    families = ["search", "parse"]
    counts = {f: problem_counts(families)[f]["test"] for f in families}
    smallest = min(families, key=counts.__getitem__)
    with pytest.raises(UsageError, match=r"n=100000 .*split 'test'") as err:
        load_tasks("toy", split="test", n=100_000, seed=0, families=families)
    found = re.search(r"holds (\d+) distinct", str(err.value))
    assert found, err.value
    available = int(found.group(1))
    assert available in (2 * counts[smallest], 2 * counts[smallest] + 1)
    assert f"family {smallest!r} has {counts[smallest]}" in str(err.value)
    assert f"n <= {available}" in str(err.value)
    tasks = load_tasks("toy", split="test", n=available, seed=0, families=families)
    assert len({t.prompt for t in tasks}) == available


def test_families_difficulties_and_interfaces() -> None:
    tasks = load_tasks("toy", n=1000, seed=0)
    assert set(Counter(t.metadata["family"] for t in tasks)) == set(FAMILIES)
    assert set(Counter(t.difficulty for t in tasks)) == set(DIFFICULTIES)
    assert any(t.entry_point is None for t in tasks) and any(t.entry_point for t in tasks)
    hard = load_tasks("toy", n=50, difficulties=["hard"], families=["parse", "lists"])
    assert {t.difficulty for t in hard} == {"hard"}
    with pytest.raises(UsageError, match="unknown families"):
        load_tasks("toy", families=["nope"])
    with pytest.raises(UsageError, match="no family"):
        load_tasks("toy", families=["parse"], difficulties=["easy"])


def _decisions(code: str) -> int:
    return sum(
        isinstance(n, (ast.If, ast.While, ast.Try)) or (isinstance(n, ast.For) and bool(n.orelse))
        for n in ast.walk(ast.parse(code))
    )


def test_every_solution_has_a_conditional_and_is_short(train: list[Task]) -> None:
    for t in train[:700]:
        code = t.canonical_solutions[0]
        assert _decisions(code) >= 1, code
        assert len(code.splitlines()) <= 12, code
        assert t.prompt and t.prompt not in code


def test_a_task_id_means_the_same_task_whatever_the_seed() -> None:
    a = {t.task_id: t for t in load_tasks("toy", split=None, n=1000, seed=0)}
    b = {t.task_id: t for t in load_tasks("toy", split=None, n=1000, seed=1)}
    shared = a.keys() & b.keys()
    assert len(shared) > 10
    for task_id in shared:
        assert a[task_id] == b[task_id], task_id  # prompt, solution and tests alike
        assert a[task_id].metadata == b[task_id].metadata


def test_tests_cover_branches_so_mutants_fail(process_sandbox) -> None:
    """Flip each comparison of a solution: the task's own tests must reject nearly every mutant.

    Mutants run in the (process) sandbox, with a short limit of their own: a flipped
    ``while`` condition can loop forever.
    """
    swaps = {
        ast.Lt: ast.GtE,
        ast.Gt: ast.LtE,
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
        ast.GtE: ast.Lt,
        ast.LtE: ast.Gt,
    }
    jobs = []
    for task in itertools.islice(generate(seed=11, split="train"), 120):
        code = task.canonical_solutions[0]
        n_cmp = sum(isinstance(n, ast.Compare) for n in ast.walk(ast.parse(code)))
        for k in range(n_cmp):
            tree = ast.parse(code)
            cmp = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)][k]
            cmp.ops[0] = swaps.get(type(cmp.ops[0]), ast.Eq)()
            job = job_for(replace(task, canonical_solutions=(ast.unparse(tree),)))
            jobs.append(
                replace(job, limits=Limits(wall_time_s=1.0, cpu_time_s=0.5), stop_on_failure=True)
            )
    results = process_sandbox.run_batch(jobs)
    caught = sum(not r.passed for r in results)
    assert caught / len(jobs) > 0.9, f"tests caught {caught} of {len(jobs)} mutants"


def test_public_tests_come_before_private_and_differ(train: list[Task]) -> None:
    for t in train[:300]:
        assert len(t.public_tests) == 2 and len(t.private_tests) >= 1
        assert t.public_tests[0] != t.public_tests[1]
        assert not set(t.public_tests) & set(t.private_tests)


def test_stats_command_prints_problems_per_family_and_split(capsys) -> None:
    assert main(["tasks", "stats", "toy", "--n", "70"]) == 0
    out = capsys.readouterr().out
    assert "family " in out and "arith: 10" in out  # the sample's share, then the suite
    counts = problem_counts()
    for name, row in counts.items():
        assert re.search(rf"^\s+{name}\s+{row['train']}\s+{row['test']}$", out, re.M), name
