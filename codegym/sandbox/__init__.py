"""Sandboxed execution of untrusted Python programs against unit tests.

>>> from codegym.sandbox import make_sandbox, Job, Limits, TestCase, Verdict
>>> with make_sandbox("docker") as sb:                                  # doctest: +SKIP
...     result = sb.run("print(int(input()) * 2)", [{"input": "2", "output": "4"}])
...     result.verdict
<Verdict.PASSED: 'passed'>

Backends: ``docker`` (isolated, the default when a daemon answers), ``process`` (the same
runner as a local subprocess: no isolation, for trusted code only), ``auto`` (docker if it
answers, else process with a loud warning).

The docker backend runs the image ``codegym sandbox build`` makes: Python 3 with numpy and
sortedcontainers (``codegym.sandbox.docker.IMAGE``); ``codegym sandbox build --packages a,b``
makes one with more Debian packages, named by ``codegym.sandbox.docker.image_tag([...])``, and
``make_sandbox("docker", image=...)`` runs it.
"""

from codegym.sandbox.base import Sandbox, SandboxError, SandboxSetupError, make_sandbox
from codegym.sandbox.types import (
    VERDICT_SEVERITY,
    ExecutionResult,
    Job,
    Limits,
    TestCase,
    TestKind,
    TestResult,
    Verdict,
    worst_verdict,
)

__all__ = [
    "VERDICT_SEVERITY",
    "ExecutionResult",
    "Job",
    "Limits",
    "Sandbox",
    "SandboxError",
    "SandboxSetupError",
    "TestCase",
    "TestKind",
    "TestResult",
    "Verdict",
    "make_sandbox",
    "worst_verdict",
]
