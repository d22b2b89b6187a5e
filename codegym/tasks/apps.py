"""APPS and APPS+ loaders.

Accepted layouts (``path=`` may name any of them; the format is detected per record):

- Raw APPS: a folder of problem folders, each with ``question.txt``, ``input_output.json``
  (``{"inputs", "outputs"[, "fn_name"]}``), ``solutions.json``, ``metadata.json`` and
  ``starter_code.py`` for call-based problems; or one such problem folder.
- APPS rows (Hugging Face ``codeparrot/apps`` columns) in JSONL: ``problem_id``, ``question``,
  ``solutions`` and ``input_output`` (JSON strings or already decoded), ``difficulty``, ``url``,
  ``starter_code``. Solutions may be missing (then ``canonical_solutions`` is empty).
- APPS+ (StepCoder's ``data/v1/data.json``, a JSON list): each record has
  ``canonical_solution`` (one program), ``starter_code`` (the beginning of that solution),
  ``inputs`` and ``outputs`` at top level. In stdin problems the inputs and outputs are strings,
  the starter code is a zero-argument signature (e.g. ``def main():``) and the solution defines
  that function without calling it; in call-based problems each input is an argument list.
  These field names and this calling convention are what a published copy of the release
  shows (``omri123/apps_plus``: its test reads ``data[0]`` by exactly these keys and runs the
  solution with a call to the starter's function appended). The names of the statement,
  difficulty, id and function-name fields are not shown there, so these are guesses, read
  when present: ``question`` (or ``description``/``prompt``), ``difficulty``, ``problem_id``
  (or ``id``/``task_id``; else the record's position) and ``fn_name`` (else the starter's
  function).
- MapCoder's APPS selection: ``id``, ``description``, ``starter_code``, ``test_list`` of
  ``{"input": str, "output": [value]}`` (no solutions; call arguments are Python literals).

Default files (under the data directory): split ``"test"`` (the default) reads
``apps_subsets/safety_code_test519/apps_test_callbased_519.jsonl`` (519 call-based APPS test
problems with solutions); ``"train"`` reads ``apps_subsets/opt_verl_apps_train/train_intro.jsonl``
(2,176 problems, no solutions). APPS+ is not shipped: ``load_tasks("apps+", path=...)``.

Tests: with ``fn_name`` each input is an argument list and the test a call test (a
``class Solution`` method is found by the sandbox); APPS wraps each Codewars result in a
one-element list, which is unwrapped when every output of a non-class problem is so wrapped.
Without ``fn_name`` tests are stdin/stdout (lists of lines are joined with newlines). APPS+
says which by its inputs: argument lists make call tests, strings stdin/stdout tests. A stdin
problem whose starter code is a zero-argument function (APPS+) gets a call to it appended to
each solution that does not call it already, and ``metadata["stdin_function"]`` names it: a
candidate program must call it too. APPS has no public/private split:
:func:`~codegym.tasks.loading.split_tests` makes one. Each solution is prefixed with the
standard-library imports the APPS harness adds to every program (solutions rely on them, e.g.
LeetCode's ``List[int]``).
"""

from __future__ import annotations

import ast
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codegym.sandbox.types import TestCase
from codegym.tasks.asserts import value_test
from codegym.tasks.jsonl import read_jsonl
from codegym.tasks.literals import parse_literal
from codegym.tasks.loading import (
    DataNotFoundError,
    LoadReport,
    data_file,
    reject_options,
    select_split,
    split_tests,
)
from codegym.tasks.task import Task, TaskFormatError

#: The header APPS's harness (``testing_util.py``) puts before every program (the sandbox
#: image carries numpy since issue 7, so ``import numpy as np`` is kept as APPS has it).
APPS_HEADER = """\
import sys
import time
import itertools
from itertools import accumulate, product, permutations, combinations
import collections
from collections import Counter, OrderedDict, deque, defaultdict, ChainMap
from functools import lru_cache
import math
from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2
import fractions
from typing import List, Tuple
import random
import heapq
from heapq import *
import numpy as np
"""

_DEFAULTS = {
    "test": "apps_subsets/safety_code_test519/apps_test_callbased_519.jsonl",
    "train": "apps_subsets/opt_verl_apps_train/train_intro.jsonl",
}
_LAYOUT = (
    "a JSON list or JSONL file of APPS rows (question, solutions, input_output, ...), APPS+ "
    "records (canonical_solution, starter_code, inputs, outputs, and question) or MapCoder "
    "rows, or a folder of raw APPS problem folders (question.txt, input_output.json, "
    "solutions.json)"
)


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.is_dir():
        folders = [path] if (path / "question.txt").exists() else sorted(path.iterdir())
        for folder in folders:
            if (folder / "question.txt").exists():
                yield str(folder), _raw_problem(folder)
        return
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise TaskFormatError(f"{path}: invalid JSON: {e}") from None
        rows = data if isinstance(data, list) else [data]
        for i, rec in enumerate(rows):
            yield f"record {i} of {path}", rec
        return
    for lineno, rec in read_jsonl(path):
        yield f"line {lineno} of {path}", rec


def _raw_problem(folder: Path) -> dict[str, Any]:
    """A raw APPS problem folder as an APPS row."""

    def read(name: str, default: Any = None) -> Any:
        f = folder / name
        if not f.exists():
            return default
        text = f.read_text(encoding="utf-8")
        if name.endswith(".json"):
            try:
                return json.loads(text)
            except ValueError as e:
                raise TaskFormatError(f"{f}: invalid JSON: {e}") from None
        return text

    meta = read("metadata.json", {}) or {}
    return {
        "problem_id": folder.name,
        "question": read("question.txt", ""),
        "solutions": read("solutions.json", []),
        "input_output": read("input_output.json", {}),
        "starter_code": read("starter_code.py", ""),
        "difficulty": meta.get("difficulty"),
        "url": meta.get("url"),
    }


def _decode(value: Any, field: str, where: str) -> Any:
    """APPS stores ``solutions`` and ``input_output`` as JSON strings; decode those."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as e:
            raise TaskFormatError(f'{where}: "{field}" is not valid JSON: {e}') from None
    return value


def _lines(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def _mapcoder_args(text: str) -> list[Any]:
    try:
        value = parse_literal(f"({text},)")
    except ValueError:
        return [text]  # MapCoder writes some string arguments without quotes
    return list(value)


def _fn_name_from(starter: str) -> str | None:
    """The first function a starter stub defines (it may not parse: it ends mid-body)."""
    m = re.search(r"^\s*def\s+(\w+)\s*\(", starter, re.MULTILINE)
    return m.group(1) if m else None


def _stdin_function(starter: str) -> str | None:
    """The function an APPS+ stdin problem's starter begins: ``def main():`` gives ``main``."""
    m = re.match(r"\s*def\s+(\w+)\s*\(\s*\)\s*(->[^:]*)?:", starter)
    return m.group(1) if m else None


def _with_call(solution: str, name: str) -> str:
    """``solution`` with ``name()`` appended if it defines ``name`` and never calls it outside
    a definition (APPS+ solutions only define the function; some programs call it themselves).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(solution)
    except SyntaxError:
        return solution  # left as is: validation reports it
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    if not any(isinstance(n, defs) and n.name == name for n in tree.body):
        return solution
    for stmt in tree.body:
        if isinstance(stmt, defs):
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
                return solution
    return solution.rstrip("\n") + f"\n\n{name}()\n"


def _apps_plus_io(rec: dict[str, Any], starter: str, where: str) -> dict[str, Any]:
    """APPS+'s top-level ``inputs``/``outputs`` as an APPS ``input_output``."""
    inputs = rec["inputs"]
    if not isinstance(inputs, list):
        raise TaskFormatError(f'{where}: "inputs" must be a list')
    fn_name = None
    if inputs and all(isinstance(i, list) for i in inputs):
        fn_name = rec.get("fn_name") or _fn_name_from(starter)
        if fn_name is None:
            raise TaskFormatError(
                f'{where}: the inputs are argument lists but neither "fn_name" nor '
                '"starter_code" names the function to call'
            )
    return {"inputs": inputs, "outputs": rec.get("outputs"), "fn_name": fn_name}


def record_to_task(
    rec: dict[str, Any],
    where: str,
    *,
    source: str,
    seed: int,
    num_public: int | None,
    report: LoadReport,
    index: int | None = None,
) -> Task | None:
    """Turn one APPS, APPS+ or MapCoder record into a task (``None``: no tests, skipped).

    ``index``, the record's position in its file, is the id of a record that has none.
    """
    question = rec.get("question", rec.get("description", rec.get("prompt")))
    if not isinstance(question, str):
        raise TaskFormatError(f'{where}: missing "question" (the problem statement)')
    pid = next((rec[k] for k in ("problem_id", "id", "task_id", "name") if k in rec), index)
    if pid is None:
        raise TaskFormatError(f'{where}: missing "problem_id" (or "id")')
    starter = rec.get("starter_code") or ""
    if not isinstance(starter, str):
        raise TaskFormatError(f'{where}: "starter_code" must be a str')
    # Solutions: APPS "solutions" (list), APPS+ "canonical_solution" (str or list).
    sols = _decode(rec.get("solutions"), "solutions", where)
    if sols is None and "canonical_solution" in rec:
        sols = rec["canonical_solution"]
    if isinstance(sols, str):
        sols = [sols]
    sols = sols or []
    if not all(isinstance(s, str) for s in sols):
        raise TaskFormatError(f'{where}: "solutions" must be a list of programs')
    # Tests: APPS "input_output", APPS+ top-level inputs/outputs, MapCoder "test_list".
    if "test_list" in rec and "input_output" not in rec:
        io = _mapcoder_io(rec, starter, where)
    elif "inputs" in rec and "input_output" not in rec:
        io = _apps_plus_io(rec, starter, where)
    else:
        io = _decode(rec.get("input_output"), "input_output", where) or {}
    if not isinstance(io, dict):
        raise TaskFormatError(f'{where}: "input_output" must be an object')
    inputs, outputs = io.get("inputs") or [], io.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise TaskFormatError(f'{where}: "inputs" and "outputs" must be lists')
    if len(inputs) != len(outputs):
        raise TaskFormatError(
            f'{where}: "inputs" has {len(inputs)} entries but "outputs" has {len(outputs)}'
        )
    if not inputs:
        report.skipped["problems without tests"] += 1
        return None
    fn_name = io.get("fn_name") or None
    task_id = f"{source}/{pid}"
    tests = _tests(fn_name, inputs, outputs, starter, where, report)
    public, private = split_tests(tests, key=task_id, seed=seed, num_public=num_public)
    difficulty = rec.get("difficulty")
    meta = {k: rec[k] for k in ("url",) if rec.get(k)}
    if fn_name:
        meta["fn_name"] = fn_name
    main = None if fn_name else _stdin_function(starter)
    if main:
        sols = [_with_call(s, main) for s in sols]
        meta["stdin_function"] = main
    return Task(
        task_id=task_id,
        prompt=question,
        entry_point=fn_name,
        starter_code=starter,
        canonical_solutions=tuple(APPS_HEADER + "\n" + s for s in sols),
        public_tests=public,
        private_tests=private,
        difficulty=None if difficulty is None else str(difficulty),
        source=source,
        metadata=meta,
    )


def _mapcoder_io(rec: dict[str, Any], starter: str, where: str) -> dict[str, Any]:
    tests = rec["test_list"]
    if not isinstance(tests, list):
        raise TaskFormatError(f'{where}: "test_list" must be a list')
    fn_name = _fn_name_from(starter) if starter.strip() else None
    inputs, outputs = [], []
    for i, t in enumerate(tests):
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise TaskFormatError(f'{where}: "test_list"[{i}] must have "input" and "output"')
        if fn_name:
            inputs.append(_mapcoder_args(t["input"]))
            outputs.append(t["output"])  # a one-element list, unwrapped below like APPS's
        else:
            inputs.append(t["input"])
            outputs.append(_lines(t["output"]))
    return {"inputs": inputs, "outputs": outputs, "fn_name": fn_name}


def _tests(
    fn_name: str | None,
    inputs: list[Any],
    outputs: list[Any],
    starter: str,
    where: str,
    report: LoadReport,
) -> list[TestCase]:
    if not fn_name:
        return [TestCase.stdio(_lines(i), _lines(o)) for i, o in zip(inputs, outputs, strict=True)]
    wrapped = "class Solution" not in starter and all(
        isinstance(o, list) and len(o) == 1 for o in outputs
    )
    tests = []
    for k, (args, out) in enumerate(zip(inputs, outputs, strict=True)):
        if not isinstance(args, list):
            raise TaskFormatError(f'{where}: "inputs"[{k}] must be a list of arguments')
        t = value_test(fn_name, args, out[0] if wrapped else out)
        if t is None:
            report.skipped["tests whose values have no literal form"] += 1
        else:
            tests.append(t)
    return tests


def _load(
    source: str,
    split: str | None,
    seed: int,
    path: str | os.PathLike[str] | None,
    report: LoadReport,
    num_public: int | None,
) -> list[Task]:
    if path is None and source == "apps+":
        raise DataNotFoundError(
            "apps+: APPS+ is not shipped with codegym; pass path= to its JSON/JSONL file "
            f"({_LAYOUT})"
        )
    split = select_split(split, list(_DEFAULTS), source=source, default="test")
    file = data_file(path, _DEFAULTS[split], source=source, layout=_LAYOUT)
    tasks, seen = [], set()
    for i, (where, rec) in enumerate(_records(file)):
        task = record_to_task(
            rec, where, source=source, seed=seed, num_public=num_public, report=report, index=i
        )
        if task is None:
            continue
        if task.task_id in seen:
            # MapCoder's selection repeats 21 problems; keep the first copy
            report.skipped["repeated problem ids"] += 1
            continue
        seen.add(task.task_id)
        tasks.append(task)
    if not tasks:
        raise TaskFormatError(f"{source}: no problems found in {file}; expected {_LAYOUT}")
    return tasks


def load_apps(
    *,
    split: str | None,
    n: int | None,
    seed: int,
    path: str | os.PathLike[str] | None,
    report: LoadReport,
    num_public: int | None = None,
    **options: Any,
) -> list[Task]:
    """APPS problems; see the module docstring for layouts, splits and tests.

    Options:
        num_public: Public tests per task (default ``max(1, n_tests // 3)``).
    """
    reject_options(options, "apps")
    return _load("apps", split, seed, path, report, num_public)


def load_apps_plus(
    *,
    split: str | None,
    n: int | None,
    seed: int,
    path: str | os.PathLike[str] | None,
    report: LoadReport,
    num_public: int | None = None,
    **options: Any,
) -> list[Task]:
    """APPS+ (StepCoder's cleaned APPS), from ``path=``; same rules as :func:`load_apps`."""
    reject_options(options, "apps+")
    return _load("apps+", split, seed, path, report, num_public)
