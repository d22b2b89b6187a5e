"""Host-side judging: turn the runner's raw records into verdicts.

This is where expected outputs meet actual ones, on the host, outside the sandbox. The
comparisons follow competitive-programming checkers: stdout is compared token by token
(whitespace and line endings ignored), integers exactly and real numbers (in either output)
with a tolerance; returned values are compared structurally (tuples and lists alike, sets as
sets, floats with a tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from codegym.sandbox.types import (
    ExecutionResult,
    TestCase,
    TestKind,
    TestResult,
    Verdict,
    _thaw,
    worst_verdict,
)

#: Float tolerance for outputs and returned values (relative and absolute), as most judges use.
FLOAT_TOLERANCE = 1e-6
_STATUS_VERDICT = {
    "timeout": Verdict.TIMEOUT,
    "memory": Verdict.MEMORY_LIMIT,
    "output_limit": Verdict.OUTPUT_LIMIT,
    "crash": Verdict.RUNTIME_ERROR,
    "skipped": Verdict.SKIPPED,
}
_MEMORY_EXCEPTIONS = {"MemoryError"}


def outputs_match(expected: str, actual: str, tol: float = FLOAT_TOLERANCE) -> bool:
    """Compare stdout as a contest checker does.

    Tokens are split on any whitespace, so trailing spaces, blank lines and ``\\r\\n`` don't
    matter. Integer tokens (and words) must be equal. When either token of a pair is a real
    number (it has a decimal point or an exponent), both are compared as numbers within ``tol``
    (relative or absolute), so ``1.0000000000`` answers a probability problem whose expected
    output is ``1``, as testlib's real-number checkers accept.
    """
    if expected == actual:
        return True
    exp, act = expected.split(), actual.split()
    if len(exp) != len(act):
        return False
    return all(e == a or _reals_match(e, a, tol) for e, a in zip(exp, act, strict=False))


def _reals_match(expected: str, actual: str, tol: float) -> bool:
    """Two differing tokens, at least one a real number, equal within ``tol``."""
    if not (_is_real(expected) or _is_real(actual)):
        return False
    try:
        fe, fa = float(expected), float(actual)
    except ValueError:
        return False
    # float() also reads "1_0.5" and overflows "1e999" to inf, which isclose calls equal to
    # any other inf: neither is a number a checker would accept.
    if "_" in expected + actual or not (math.isfinite(fe) and math.isfinite(fa)):
        return False
    return math.isclose(fe, fa, rel_tol=tol, abs_tol=tol)


def _is_real(token: str) -> bool:
    return any(c in token for c in ".eE")


def decode_value(value: Any) -> Any:
    """Inverse of the runner's plain-data encoding (tags for sets, dicts, non-finite floats)."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__set__"}:
            items = [decode_value(v) for v in value["__set__"]]
            try:
                return frozenset(_hashable(v) for v in items)
            except TypeError:
                return items
        if set(value) == {"__dict__"}:
            return {_hashable(decode_value(k)): decode_value(v) for k, v in value["__dict__"]}
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: decode_value(v) for k, v in value.items()}
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def values_match(expected: Any, actual: Any, tol: float = FLOAT_TOLERANCE) -> bool:
    """Structural equality of plain data: tuples equal lists, floats within ``tol``.

    Numbers compare as Python's ``==`` does (``True == 1``, ``0 == 0.0``), as the datasets'
    own harnesses do, with a tolerance when either side is a float.

    Only plain built-in types reach this function (the runner refuses anything else), so no
    user-defined ``__eq__`` ever runs here.
    """
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, int) and isinstance(actual, int):
            return expected == actual
        if math.isnan(expected) or math.isnan(actual):
            return math.isnan(expected) and math.isnan(actual)
        return math.isclose(expected, actual, rel_tol=tol, abs_tol=tol)
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(
            values_match(e, a, tol) for e, a in zip(expected, actual, strict=False)
        )
    if isinstance(expected, (set, frozenset)) and isinstance(actual, (set, frozenset)):
        try:
            return {_hashable(x) for x in expected} == {_hashable(x) for x in actual}
        except TypeError:
            return False
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        if len(expected) != len(actual):
            return False
        # JSON task files can only have string keys; accept the value's keys in str form.
        act = {str(k): v for k, v in actual.items()}
        for k, v in expected.items():
            key = str(k)
            if key not in act or not values_match(v, act[key], tol):
                return False
        return True
    return type(expected) is type(actual) and expected == actual


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def judge_test(test: TestCase, raw: Mapping[str, Any], nonce: str) -> TestResult:
    """One test's verdict from the runner's raw record (see runner.py for its fields)."""
    status = raw.get("status", "crash")
    exception = raw.get("exception")
    message = str(raw.get("message") or "")
    common: dict[str, Any] = {
        "stdout": str(raw.get("stdout", "")),
        "stderr": str(raw.get("stderr", "")),
        "truncated": bool(raw.get("truncated", False)),
        "exit_code": raw.get("exit_code"),
        "signal": raw.get("signal"),
        "exception": exception,
        "traceback": str(raw.get("traceback") or ""),
        "wall_time_s": float(raw.get("wall", 0.0) or 0.0),
        "cpu_time_s": float(raw.get("cpu", 0.0) or 0.0),
        "memory_mb": float(raw.get("mem_mb", 0.0) or 0.0),
    }
    if status == "ok" and exception in _MEMORY_EXCEPTIONS:
        status = "memory"
    if status in _STATUS_VERDICT:
        verdict = _STATUS_VERDICT[status]
        if not message:
            message = {
                Verdict.TIMEOUT: "time limit exceeded",
                Verdict.MEMORY_LIMIT: "memory limit exceeded",
                Verdict.OUTPUT_LIMIT: "output limit exceeded",
                Verdict.SKIPPED: "not run",
            }.get(verdict, _crash_message(raw))
        elif verdict is Verdict.RUNTIME_ERROR and exception is None:
            message = _crash_message(raw)
        return TestResult(verdict=verdict, message=message, **common)
    if exception == "AssertionError" and test.kind is TestKind.ASSERT:
        return TestResult(Verdict.WRONG_ANSWER, message=f"{exception}: {message}", **common)
    if exception is not None:
        return TestResult(Verdict.RUNTIME_ERROR, message=f"{exception}: {message}", **common)
    if test.kind is TestKind.STDIO:
        if test.output is None or outputs_match(test.output, common["stdout"]):
            return TestResult(Verdict.PASSED, **common)
        return TestResult(
            Verdict.WRONG_ANSWER,
            message=f"expected {_short(test.output)}, got {_short(common['stdout'])}",
            **common,
        )
    if test.kind is TestKind.CALL:
        if "bad_value" in raw or not raw.get("has_value"):
            why = raw.get("bad_value") or "returned no value"
            return TestResult(Verdict.WRONG_ANSWER, message=str(why), **common)
        actual = decode_value(raw.get("value"))
        expected = decode_value(_thaw(test.expected))
        if values_match(expected, actual):
            return TestResult(Verdict.PASSED, actual=actual, **common)
        return TestResult(
            Verdict.WRONG_ANSWER,
            actual=actual,
            message=f"expected {_short(expected)}, got {_short(actual)}",
            **common,
        )
    # Assert-style: the only proof the assertions ran to the end is the nonce.
    if raw.get("nonce") == nonce and nonce:
        return TestResult(Verdict.PASSED, **common)
    return TestResult(
        Verdict.WRONG_ANSWER, message="the assertions did not run to completion", **common
    )


def _crash_message(raw: Mapping[str, Any]) -> str:
    sig = raw.get("signal")
    if sig:
        try:
            import signal as _signal

            name = _signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by signal {name}"
    code = raw.get("exit_code")
    if code not in (None, 0):
        return f"exit code {code}"
    return str(raw.get("message") or "the program ended before the test finished")


def judge(
    tests: Sequence[TestCase], raw: Mapping[str, Any], nonce: str, backend: str
) -> ExecutionResult:
    """A whole execution's result from the runner's raw result message."""
    lines = tuple(x for x in raw.get("lines", ()) if isinstance(x, int))
    compile_error = raw.get("compile_error")
    if compile_error is not None:
        skipped = tuple(TestResult(Verdict.SKIPPED, message="not run") for _ in tests)
        return ExecutionResult(
            Verdict.SYNTAX_ERROR, skipped, lines, message=str(compile_error), backend=backend
        )
    records = raw.get("tests", [])
    if not tests:
        # No tests: the program ran once and only its exit status counts.
        rec = records[0] if records else {"status": "crash"}
        result = judge_test(TestCase.stdio("", None), rec, nonce)
        return ExecutionResult(result.verdict, (), lines, message=result.message, backend=backend)
    if len(records) != len(tests):
        raise ValueError(f"runner returned {len(records)} records for {len(tests)} tests")
    results = tuple(judge_test(t, r, nonce) for t, r in zip(tests, records, strict=False))
    verdict = worst_verdict(r.verdict for r in results)
    if verdict is Verdict.SKIPPED:  # stopped early after failures cannot leave only skips
        verdict = Verdict.RUNTIME_ERROR
    return ExecutionResult(verdict, results, lines, backend=backend)


def infra_error(tests: Sequence[TestCase], message: str, backend: str) -> ExecutionResult:
    """The result of a job the sandbox itself failed to run."""
    return ExecutionResult(
        Verdict.INFRA_ERROR,
        tuple(TestResult(Verdict.INFRA_ERROR, message=message) for _ in tests),
        message=message,
        backend=backend,
    )
