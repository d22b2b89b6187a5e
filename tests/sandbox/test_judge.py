"""Host-side comparisons, by hand-picked cases (no sandbox needed)."""

from __future__ import annotations

import math

import pytest

from codegym.sandbox.judge import decode_value, judge, outputs_match, values_match
from codegym.sandbox.types import TestCase, Verdict


@pytest.mark.parametrize(
    ("expected", "actual", "match"),
    [
        ("5", "5\n", True),
        ("1 2\n3", "1 2 \r\n3\n\n", True),  # trailing spaces, CRLF, blank lines
        ("1 2 3", "1\n2\n3", True),  # token checker: line breaks are whitespace
        ("0.333333", "0.3333333333", True),  # float tolerance when the expected is a float
        ("0.5", "0.6", False),
        ("1", "1.0000000000", True),  # a real number answers an integer expected output...
        ("20", "20.0", True),
        ("1", "1.0000001", True),
        ("0.5", "5e-1", True),  # an exponent makes a real number too
        ("1", "1.00001", False),  # ...within the tolerance only
        ("2", "1.0", False),
        ("1", "2", False),  # integers against integers stay exact
        ("1", "01", False),
        ("123456789012345678901", "123456789012345678902", False),
        ("1e999", "2e999", False),  # overflowed to inf: not numbers a checker accepts
        ("10.5", "1_0.5", False),  # float() reads underscores; checkers don't
        ("YES", "yes", False),
        ("YES", "YES.", False),
        ("1 2", "1 2 3", False),
        ("", "", True),
        ("nan", "nan", True),
    ],
)
def test_outputs_match(expected, actual, match):
    assert outputs_match(expected, actual) is match


@pytest.mark.parametrize(
    ("expected", "actual", "match"),
    [
        ([1, 2], [1, 2], True),
        ([1, 2], (1, 2), True),  # JSON has no tuples: lists and tuples are alike
        (0.1 + 0.2, 0.3, True),
        (1, 1.0, True),
        (True, 1, True),  # as Python's == (and HumanEval's, MBPP's, APPS's harnesses)
        (False, 0, True),
        (True, True, True),
        ("a", "a", True),
        ({"a": [1]}, {"a": [1]}, True),
        ({"1": 2}, {1: 2}, True),  # JSON keys are strings
        (frozenset({1, 2}), frozenset({2, 1}), True),
        ([1, 2], [2, 1], False),
        (None, None, True),
        (None, 0, False),
        (float("nan"), float("nan"), True),
    ],
)
def test_values_match(expected, actual, match):
    assert values_match(expected, actual) is match


def test_decode_value_tags():
    assert decode_value({"__set__": [1, 2]}) == frozenset({1, 2})
    assert decode_value({"__dict__": [[1, "a"], [[1, 2], "b"]]}) == {1: "a", (1, 2): "b"}
    assert math.isinf(decode_value({"__float__": "inf"}))


def test_judge_orders_verdicts_worst_first():
    tests = [TestCase.stdio("", "1"), TestCase.stdio("", "2"), TestCase.stdio("", "3")]
    raw = {
        "tests": [
            {"status": "ok", "stdout": "1"},
            {"status": "ok", "stdout": "x"},
            {"status": "timeout"},
        ],
        "compile_error": None,
        "lines": [1, 2],
    }
    result = judge(tests, raw, "nonce", "test")
    assert [t.verdict for t in result.tests] == [
        Verdict.PASSED,
        Verdict.WRONG_ANSWER,
        Verdict.TIMEOUT,
    ]
    assert result.verdict is Verdict.TIMEOUT
    assert result.pass_ratio == pytest.approx(1 / 3)
    assert result.executed_lines == (1, 2)


def test_assert_tests_need_the_nonce():
    test = [TestCase.assertion("assert True")]
    ok = judge(test, {"tests": [{"status": "ok", "nonce": "abc"}]}, "abc", "t")
    forged = judge(test, {"tests": [{"status": "ok", "nonce": "abd"}]}, "abc", "t")
    missing = judge(test, {"tests": [{"status": "ok"}]}, "abc", "t")
    assert ok.passed and not forged.passed and not missing.passed


def test_call_value_that_was_not_plain_data_is_wrong():
    test = [TestCase.call([1], 1)]
    r = judge(test, {"tests": [{"status": "ok", "bad_value": "returned a Foo"}]}, "n", "t")
    assert r.verdict is Verdict.WRONG_ANSWER and "Foo" in r.tests[0].message


def test_compile_error_skips_every_test():
    tests = [TestCase.stdio("", "1")] * 2
    r = judge(tests, {"compile_error": "SyntaxError: x", "tests": []}, "n", "t")
    assert r.verdict is Verdict.SYNTAX_ERROR
    assert [t.verdict for t in r.tests] == [Verdict.SKIPPED] * 2
