"""``codegym tasks validate|stats``: check datasets against their own solutions, summarise them.

Bad input (an unknown source, a missing or malformed task file) is raised as
:class:`~codegym.errors.UsageError`, :class:`~codegym.tasks.TaskFormatError` or
:class:`~codegym.tasks.loading.DataNotFoundError`, which ``codegym``'s ``main`` prints as one
line.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from codegym.errors import UsageError
from codegym.tasks.jsonl import write_jsonl
from codegym.tasks.loading import load_tasks_with_report
from codegym.tasks.stats import format_problem_counts, format_stats, problem_counts, task_stats
from codegym.tasks.task import TaskFormatError


def _load(args: argparse.Namespace) -> tuple[list[Any], Any]:
    try:
        return load_tasks_with_report(
            args.source, split=args.split, n=args.n, seed=args.seed, path=args.path
        )
    except (UsageError, TaskFormatError):
        raise
    except ValueError as e:
        # load_tasks raises ValueError for an unknown source or a bad option: the user's input.
        raise UsageError(str(e)) from e
    except ConnectionError as e:
        raise UsageError(
            f"{args.source}: {e}; without a network, give a local folder (hf:/path/to/folder)"
        ) from e


def cmd_validate(args: argparse.Namespace) -> int:
    """Run every canonical solution on its tests; print counts; optionally write the good ones.

    Exit status 0 when every task with a solution passed (or ``--drop-bad`` wrote the good
    ones), 1 otherwise.
    """
    from codegym.tasks.validate import validate_tasks

    if args.drop_bad and not args.out:
        raise UsageError("--drop-bad needs --out FILE: the file the good tasks are written to")
    tasks, load_report = _load(args)
    print(load_report)
    report = validate_tasks(tasks, args.sandbox, batch_size=args.batch_size)
    print(report.summary(max_ids=args.max_ids))
    if args.drop_bad:
        good = report.good(tasks)
        write_jsonl(good, args.out)
        print(f"wrote {len(good)} of {len(tasks)} tasks to {args.out}")
        return 0
    bad = sum(c.failed + c.timeout + c.infra_error for c in report.sources.values())
    return 0 if bad == 0 else 1


def cmd_stats(args: argparse.Namespace) -> int:
    """Print task counts, tests per task and the difficulty breakdown.

    For the toy suite, also the distinct problems per family and split of the whole suite.
    """
    tasks, load_report = _load(args)
    stats = task_stats(tasks)
    problems = problem_counts(args.source)
    if args.json:
        extra = {} if problems is None else {"problems": problems}
        print(json.dumps({"load": str(load_report), **stats, **extra}, indent=2))
    else:
        print(load_report)
        print(format_stats(stats))
        if problems is not None:
            print(format_problem_counts(problems))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        help="toy, humaneval, humaneval+, mbpp, mbpp+, apps, apps+, "
        "codecontests, a codegym .jsonl file, or hf:owner/name",
    )
    p.add_argument("--path", default=None, help="read this file or folder instead of the default")
    p.add_argument("--split", default=None, help="source-specific split (train, test, ...)")
    p.add_argument("--n", type=int, default=None, help="at most N tasks (a seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of test splits")


def add_subcommands(subparsers: Any) -> None:
    """Add ``tasks validate`` and ``tasks stats`` to the ``codegym`` command."""
    tasks = subparsers.add_parser("tasks", help="load, check and summarise task datasets")
    sub = tasks.add_subparsers(dest="tasks_command", required=True)

    v = sub.add_parser("validate", help="run canonical solutions on their tests in the sandbox")
    _common(v)
    v.add_argument(
        "--sandbox",
        default="auto",
        choices=["docker", "process", "auto", "ray"],
        help="execution backend (default: docker if a daemon answers)",
    )
    v.add_argument(
        "--drop-bad",
        action="store_true",
        help="write only the tasks whose canonical solution passes (needs --out)",
    )
    v.add_argument("--out", default=None, help="output JSONL for --drop-bad")
    v.add_argument("--batch-size", type=int, default=64, help="jobs per sandbox batch")
    v.add_argument("--max-ids", type=int, default=20, help="failing ids to print per source")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("stats", help="counts, tests per task, difficulty breakdown")
    _common(s)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_stats)
