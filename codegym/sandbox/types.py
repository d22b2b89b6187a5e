"""Plain data shared by every sandbox backend: limits, test cases, verdicts and results.

Everything here is a frozen dataclass or a str-enum so that it pickles (vector envs, Ray),
compares by value and serialises to JSON without custom code.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any


class Verdict(str, enum.Enum):
    """Outcome of one test, or of a whole execution (the worst of its tests).

    The order of :data:`VERDICT_SEVERITY` decides which verdict a whole execution gets, as
    judges such as DMOJ do: an infrastructure fault outranks a timeout, which outranks a memory
    limit, and so on down to a passed test.
    """

    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    SYNTAX_ERROR = "syntax_error"
    SKIPPED = "skipped"
    INFRA_ERROR = "infra_error"

    def __str__(self) -> str:
        return self.value


#: Most severe first. ``skipped`` ranks just above ``passed``: a test is skipped only because
#: an earlier one failed (``stop_on_failure``) or the program did not compile.
VERDICT_SEVERITY: tuple[Verdict, ...] = (
    Verdict.INFRA_ERROR,
    Verdict.SYNTAX_ERROR,
    Verdict.TIMEOUT,
    Verdict.MEMORY_LIMIT,
    Verdict.OUTPUT_LIMIT,
    Verdict.RUNTIME_ERROR,
    Verdict.WRONG_ANSWER,
    Verdict.SKIPPED,
    Verdict.PASSED,
)
_RANK = {v: i for i, v in enumerate(VERDICT_SEVERITY)}


def worst_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of ``verdicts`` (``passed`` for an empty iterable)."""
    return min(verdicts, key=_RANK.__getitem__, default=Verdict.PASSED)


@dataclass(frozen=True)
class Limits:
    """Resource limits for each test of an execution. Defaults are safe for untrusted code.

    Attributes:
        wall_time_s: Wall-clock seconds per test, enforced by the runner's parent process
            (never by a signal handler inside the candidate, which it could catch).
        cpu_time_s: CPU seconds per test, summed over the candidate's threads. Not given
            (``None``), it is ``wall_time_s``: a user who sets a wall time means it, and a
            single-threaded program cannot use more CPU than wall time anyway. Resolved when
            the limits are made, so ``dataclasses.replace(limits, wall_time_s=t)`` keeps the
            old CPU limit; pass ``cpu_time_s`` too (or make new limits) to change both.
        memory_mb: Memory per test. Enforced as an address-space limit on the candidate (with
            headroom so ordinary imports work) and by the container's memory cgroup, which
            also covers memory spread over forked children.
        max_output_bytes: Cap on captured stdout and on stderr, each. Writing more ends the
            test with ``output_limit``.
        file_size_mb: Largest file the candidate may write (``RLIMIT_FSIZE``).
        pids: Processes and threads the candidate may have at once (docker: the container's
            pids cgroup; process backend: not enforced).
    """

    wall_time_s: float = 4.0
    cpu_time_s: float = None  # type: ignore[assignment]  # None: follows wall_time_s
    memory_mb: int = 512
    max_output_bytes: int = 1 << 20
    file_size_mb: int = 16
    pids: int = 64

    def __post_init__(self) -> None:
        if self.cpu_time_s is None:
            object.__setattr__(self, "cpu_time_s", self.wall_time_s)
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{f.name} must be a positive number, got {value!r}")

    def to_dict(self) -> dict[str, float]:
        """The limits as a plain dict (what travels to the runner)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class TestKind(str, enum.Enum):
    """How a test talks to the program."""

    __test__ = False  # not a pytest test class

    STDIO = "stdio"  #: the program reads ``input`` on stdin; stdout is compared to ``output``
    CALL = "call"  #: ``entry_point(*args)`` is called; its return value is compared to ``expected``
    ASSERT = "assert"  #: ``code`` runs after the program; passes if it raises nothing

    def __str__(self) -> str:
        return self.value


_MISSING: Any = object()


@dataclass(frozen=True)
class TestCase:
    """One unit test, in one of the three shapes of DESIGN.md §4.

    Build one with :meth:`from_dict` (``{"input", "output"}``, ``{"args", "expected"}`` or
    ``{"assert"}``) or with the ``stdio``/``call``/``assertion`` constructors.

    Attributes:
        kind: Which shape the test has.
        input: stdin for a stdio test.
        output: Expected stdout of a stdio test; ``None`` checks only that the program exits 0.
        args: Positional arguments of a call test (plain JSON data).
        expected: Expected return value of a call test (plain JSON data). Compared on the host;
            it never enters the sandbox.
        code: Assertion code of an assert-style test (HumanEval's ``check(candidate)``).
            Less trustworthy: it runs in the candidate's process (see docs/sandbox.md).
    """

    __test__ = False  # not a pytest test class

    kind: TestKind
    input: str = ""
    output: str | None = None
    args: tuple[Any, ...] = ()
    expected: Any = None
    code: str = ""

    @classmethod
    def stdio(cls, input: str, output: str | None) -> TestCase:
        """A stdin/stdout test."""
        return cls(TestKind.STDIO, input=input, output=output)

    @classmethod
    def call(cls, args: Sequence[Any], expected: Any) -> TestCase:
        """A call test: ``entry_point(*args) == expected``."""
        return cls(TestKind.CALL, args=_freeze(list(args)), expected=_freeze(expected))

    @classmethod
    def assertion(cls, code: str) -> TestCase:
        """An assert-style test."""
        return cls(TestKind.ASSERT, code=code)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | TestCase) -> TestCase:
        """Parse a test dict of DESIGN.md §4 (an existing ``TestCase`` is returned as is).

        Raises:
            ValueError: ``data`` has none of the three shapes, or a field has the wrong type.
        """
        if isinstance(data, TestCase):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a test must be a dict, got {type(data).__name__}")
        keys = set(data)
        if "assert" in keys:
            code = data["assert"]
            if not isinstance(code, str):
                raise ValueError(f'test field "assert" must be a str, got {type(code).__name__}')
            return cls.assertion(code)
        if "args" in keys:
            args = data["args"]
            if not isinstance(args, (list, tuple)):
                raise ValueError(f'test field "args" must be a list, got {type(args).__name__}')
            if "expected" not in keys:
                raise ValueError('a call test needs "expected" next to "args"')
            return cls.call(args, data["expected"])
        if "input" in keys:
            inp, out = data["input"], data.get("output", _MISSING)
            if not isinstance(inp, str):
                raise ValueError(f'test field "input" must be a str, got {type(inp).__name__}')
            if out is _MISSING:
                raise ValueError('a stdin/stdout test needs "output" next to "input"')
            if out is not None and not isinstance(out, str):
                raise ValueError(f'test field "output" must be a str, got {type(out).__name__}')
            return cls.stdio(inp, out)
        raise ValueError(
            "a test must have the keys {input, output} (stdin/stdout), {args, expected} (call) "
            f"or {{assert}} (assert-style); got {sorted(keys)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The inverse of :meth:`from_dict` (plain JSON data)."""
        if self.kind is TestKind.STDIO:
            return {"input": self.input, "output": self.output}
        if self.kind is TestKind.CALL:
            return {"args": _thaw(self.args), "expected": _thaw(self.expected)}
        return {"assert": self.code}

    def sandbox_payload(self) -> dict[str, Any]:
        """What of this test enters the sandbox: never the expected output or value."""
        if self.kind is TestKind.STDIO:
            return {"kind": "stdio", "input": self.input}
        if self.kind is TestKind.CALL:
            return {"kind": "call", "args": _thaw(self.args)}
        return {"kind": "assert", "code": self.code}


def _freeze(value: Any) -> Any:
    """Make JSON data hashable so a frozen TestCase can hold it (lists become tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return _FrozenDict((k, _freeze(v)) for k, v in value.items())
    return value


def _thaw(value: Any) -> Any:
    """Inverse of :func:`_freeze`: tuples become lists again."""
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, _FrozenDict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


class _FrozenDict(dict):
    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=repr)))


@dataclass(frozen=True)
class TestResult:
    """What happened in one test.

    Attributes:
        verdict: The test's verdict.
        stdout: Captured stdout (capped at ``Limits.max_output_bytes``, decoded as UTF-8 with
            replacement characters for invalid bytes).
        stderr: Captured stderr, capped likewise.
        truncated: True if stdout or stderr was cut at the cap.
        actual: The returned value of a call test, as plain data (``None`` otherwise).
        exit_code: The candidate's exit status, if it exited.
        signal: The signal that killed it, if one did.
        exception: Exception type name, if the candidate raised.
        message: A short human-readable reason for the verdict (exception message, "expected
            3, got 4", ...).
        traceback: The candidate's traceback (frames of the candidate's file only).
        wall_time_s: Wall-clock seconds the test took.
        cpu_time_s: CPU seconds the candidate used.
        memory_mb: Peak resident memory of the candidate in MiB.
    """

    __test__ = False

    verdict: Verdict
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    actual: Any = None
    exit_code: int | None = None
    signal: int | None = None
    exception: str | None = None
    message: str = ""
    traceback: str = ""
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    memory_mb: float = 0.0

    @property
    def passed(self) -> bool:
        """True if this test passed."""
        return self.verdict is Verdict.PASSED


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of running one program on its tests.

    Attributes:
        verdict: The worst verdict over ``tests`` (see :data:`VERDICT_SEVERITY`).
        tests: One :class:`TestResult` per test, in the order the tests were given.
        executed_lines: Sorted line numbers of the program that ran (when ``trace_lines``).
        message: For ``syntax_error`` the compiler's message, for ``infra_error`` what failed.
        backend: Name of the backend that ran it.
    """

    verdict: Verdict
    tests: tuple[TestResult, ...] = ()
    executed_lines: tuple[int, ...] = ()
    message: str = ""
    backend: str = ""

    @property
    def passed(self) -> bool:
        """True only if every test passed (and there was at least the program run)."""
        return self.verdict is Verdict.PASSED

    @property
    def pass_ratio(self) -> float:
        """Fraction of tests that passed (0.0 when there are no tests)."""
        if not self.tests:
            return 1.0 if self.passed else 0.0
        return sum(t.passed for t in self.tests) / len(self.tests)

    @property
    def num_passed(self) -> int:
        """Number of tests that passed."""
        return sum(t.passed for t in self.tests)


@dataclass(frozen=True)
class Job:
    """One program and its tests, for :meth:`Sandbox.run_batch`.

    Attributes:
        program: Complete Python source of the candidate.
        tests: Test cases (``TestCase`` or their dict form).
        entry_point: Function called by call tests (``None`` for stdin/stdout programs). A
            method of a ``Solution`` class is found too, as in LeetCode-style APPS problems.
        limits: Per-test limits (``None``: the sandbox's defaults).
        trace_lines: Record which lines of ``program`` ran (for StepCoder's FGO). The tracer
            never changes a verdict: a test that runs out of time traced (the tracer slows a
            program several times) is run again untraced, and that run is its result; the
            lines it reached while traced are lost with the killed process.
        stop_on_failure: Skip the remaining tests after the first that ends abnormally (a
            runtime error, timeout, memory or output limit; the runner cannot see wrong
            answers, which are judged on the host).
        max_timeouts: Skip the remaining tests once this many have timed out (``None``: run
            them all). A program that loops otherwise costs a full time limit per test, and
            for a reward that only looks at the overall verdict the rest changes nothing.
    """

    program: str
    tests: tuple[TestCase, ...] = ()  # dicts of DESIGN §4 are accepted and converted
    entry_point: str | None = None
    limits: Limits | None = None
    trace_lines: bool = False
    stop_on_failure: bool = False
    max_timeouts: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.program, str):
            raise TypeError(f"Job.program must be a str, got {type(self.program).__name__}")
        tests = tuple(TestCase.from_dict(t) for t in self.tests)
        object.__setattr__(self, "tests", tests)
        if self.entry_point is None and any(t.kind is TestKind.CALL for t in tests):
            raise ValueError("call tests need an entry_point naming the function to call")
        if self.max_timeouts is not None and (
            not isinstance(self.max_timeouts, int) or self.max_timeouts < 1
        ):
            raise ValueError(f"Job.max_timeouts must be a positive int, got {self.max_timeouts!r}")

    def with_limits(self, limits: Limits) -> Job:
        """A copy of this job with ``limits`` filled in when it has none."""
        return self if self.limits is not None else replace(self, limits=limits)


__all__ = [
    "VERDICT_SEVERITY",
    "ExecutionResult",
    "Job",
    "Limits",
    "TestCase",
    "TestKind",
    "TestResult",
    "Verdict",
    "worst_verdict",
]
