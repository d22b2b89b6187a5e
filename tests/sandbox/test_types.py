"""Limits, TestCase, Job and verdict ordering."""

from __future__ import annotations

import pickle

import pytest

from codegym.sandbox import Job, Limits, TestCase, TestKind, Verdict, worst_verdict


def test_limits_defaults_are_safe_and_validated():
    limits = Limits()
    assert limits.wall_time_s > 0 and limits.max_output_bytes <= 1 << 20
    with pytest.raises(ValueError, match="memory_mb"):
        Limits(memory_mb=0)
    with pytest.raises(ValueError, match="wall_time_s"):
        Limits(wall_time_s=True)


def test_cpu_time_follows_the_wall_time_unless_given():
    assert Limits().cpu_time_s == Limits().wall_time_s
    assert Limits(wall_time_s=20).cpu_time_s == 20
    assert Limits(wall_time_s=20, cpu_time_s=1.5).cpu_time_s == 1.5
    assert Limits(wall_time_s=3) == Limits(wall_time_s=3, cpu_time_s=3)
    assert Limits(wall_time_s=20).to_dict()["cpu_time_s"] == 20
    assert pickle.loads(pickle.dumps(Limits(wall_time_s=7))) == Limits(wall_time_s=7)
    with pytest.raises(ValueError, match="cpu_time_s"):
        Limits(cpu_time_s=0)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"input": "1", "output": "2"}, TestKind.STDIO),
        ({"args": [1, [2]], "expected": {"a": [1]}}, TestKind.CALL),
        ({"assert": "assert f(1) == 2"}, TestKind.ASSERT),
    ],
)
def test_testcase_round_trip(data, kind):
    test = TestCase.from_dict(data)
    assert test.kind is kind
    assert test.to_dict() == data
    assert TestCase.from_dict(test.to_dict()) == test
    assert pickle.loads(pickle.dumps(test)) == test
    hash(test)


def test_expected_values_are_not_in_the_sandbox_payload():
    assert "output" not in TestCase.stdio("1", "SECRET").sandbox_payload()
    payload = TestCase.call([1], "SECRET").sandbox_payload()
    assert "SECRET" not in repr(payload)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"input": 1, "output": "2"}, '"input" must be a str'),
        ({"input": "1"}, 'needs "output"'),
        ({"args": "1", "expected": 1}, '"args" must be a list'),
        ({"args": [1]}, 'needs "expected"'),
        ({"foo": 1}, "must have the keys"),
        ("print(1)", "must be a dict"),
    ],
)
def test_testcase_errors_name_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        TestCase.from_dict(data)


def test_job_checks_its_fields():
    with pytest.raises(TypeError, match="program must be a str"):
        Job(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="entry_point"):
        Job("def f(): pass", ({"args": [], "expected": 1},))
    job = Job("x", ({"input": "", "output": ""},))
    assert isinstance(job.tests[0], TestCase)


def test_worst_verdict_follows_the_judge_order():
    assert worst_verdict([Verdict.PASSED, Verdict.WRONG_ANSWER]) is Verdict.WRONG_ANSWER
    assert worst_verdict([Verdict.RUNTIME_ERROR, Verdict.TIMEOUT]) is Verdict.TIMEOUT
    assert worst_verdict([Verdict.MEMORY_LIMIT, Verdict.OUTPUT_LIMIT]) is Verdict.MEMORY_LIMIT
    assert worst_verdict([Verdict.TIMEOUT, Verdict.INFRA_ERROR]) is Verdict.INFRA_ERROR
    assert worst_verdict([]) is Verdict.PASSED


def test_call_tests_with_nested_tuples_and_lists_are_hashable():
    test = TestCase.call([1], ((1, [2]), {"a": (3, [4])}))
    hash(test)
    assert test.to_dict() == {"args": [1], "expected": [[1, [2]], {"a": [3, [4]]}]}
