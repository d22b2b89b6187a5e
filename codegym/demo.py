"""``codegym demo``: the StepCoder demo, or (``--tour``) a tour of the sandbox and envs.

Without ``--tour`` it runs :mod:`agents.demo`: the bundled tiny model's held-out pass@1
before and after StepCoder training on the toy suite.

The tour: for each task it runs three programs: the canonical solution, the same with one
conditional branch broken, and a program with a syntax error; then one batch of hostile programs (an
infinite loop, a fork bomb, a memory hog, a print flood) to show the limits at work; then one
episode of each environment: CodeCompletion-v0 at its first curriculum stage and at full
generation, and a two-turn MultiTurnRepair-v0 episode with RLEF feedback. Every verdict and
reward printed is what the sandbox and the environments returned.
"""

from __future__ import annotations

import argparse
import re
import time

from codegym.sandbox import Job, Limits, Sandbox, TestCase, make_sandbox

HOSTILE = {
    "infinite loop": "while True:\n    pass\n",
    "fork bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    ),
    "memory hog": "x = bytearray(10**10)\n",
    "print flood": "while True:\n    print('x' * 1000)\n",
}


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``codegym demo`` to the ``codegym`` parser."""
    parser = subparsers.add_parser(
        "demo", help="StepCoder on the tiny model: held-out pass@1 before and after training"
    )
    parser.add_argument("--sandbox", default="docker", help="docker | process | auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=30, help="StepCoder steps")
    parser.add_argument("--out", default="runs/demo", help="where the run and evaluations go")
    parser.add_argument(
        "--tour", action="store_true", help="instead: toy tasks, hostile programs, both envs"
    )
    parser.add_argument("--tasks", type=int, default=6, help="(--tour) number of toy tasks")
    parser.set_defaults(func=run_demo)


def _break(program: str) -> str:
    """The program with its first comparison inverted, so one branch goes wrong."""
    for old, new in (("<=", ">"), (">=", "<"), ("==", "!="), (" < ", " >= "), (" > ", " <= ")):
        if old in program:
            return program.replace(old, new, 1)
    return re.sub(r"return (.+)", r"return None", program, count=1)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demonstration; returns the exit status."""
    if not args.tour:
        try:
            from agents.demo import run_stepcoder_demo
        except ModuleNotFoundError as e:
            from codegym.errors import UsageError

            raise UsageError(
                f"the StepCoder demo needs the training extra ({e.name} is missing): "
                "pip install 'codegym[train]' (or run `codegym demo --tour`)"
            ) from None
        return run_stepcoder_demo(args)
    from codegym.tasks import load_tasks

    tasks = load_tasks("toy", split="test", n=args.tasks, seed=args.seed)
    limits = Limits(wall_time_s=2.0, cpu_time_s=1.0)
    with make_sandbox(args.sandbox, limits=limits) as sb:
        print(f"sandbox: {sb.name}, {sb.size} workers\n")
        _run_tasks(sb, tasks)
        _run_hostile(sb)
        _run_envs(sb, tasks)
    return 0


def _run_tasks(sb: Sandbox, tasks: list) -> None:
    jobs, labels = [], []
    for task in tasks:
        canonical = task.canonical_solutions[0]
        limits = Limits(wall_time_s=task.time_limit_s or 2.0, cpu_time_s=1.0)
        for label, program in (
            ("canonical", canonical),
            ("one branch broken", _break(canonical)),
            ("syntax error", canonical.replace(":", "", 1)),
        ):
            jobs.append(Job(program, task.tests, task.entry_point, limits))
            labels.append((task.task_id, label))
    start = time.perf_counter()
    results = sb.run_batch(jobs)
    elapsed = time.perf_counter() - start
    print(f"{'task':<28} {'program':<18} {'verdict':<14} tests passed")
    for (task_id, label), result in zip(labels, results, strict=False):
        print(
            f"{task_id:<28} {label:<18} {result.verdict.value:<14} "
            f"{result.num_passed}/{len(result.tests)}"
        )
    n_tests = sum(len(j.tests) for j in jobs)
    print(f"\n{len(jobs)} programs, {n_tests} tests in {elapsed:.2f} s\n")


def _run_hostile(sb: Sandbox) -> None:
    jobs = [Job(p, (TestCase.stdio("", ""),)) for p in HOSTILE.values()]
    results = sb.run_batch(jobs)
    print(f"{'hostile program':<28} verdict")
    for name, result in zip(HOSTILE, results, strict=False):
        print(f"{name:<28} {result.verdict.value}")
    after = sb.run("print('still fine')", [{"input": "", "output": "still fine"}])
    print(f"{'the next program':<28} {after.verdict.value}")


def _run_envs(sb: Sandbox, tasks: list) -> None:
    import gymnasium as gym

    import codegym  # noqa: F401  (registers the environments)

    task = next(t for t in tasks if t.entry_point is not None)
    canonical = task.canonical_solutions[0]
    print(f"\nCodeCompletion-v0 on {task.task_id}")
    env = gym.make("codegym/CodeCompletion-v0", tasks=[task], sandbox=sb)
    for stage, action in ((0, None), (-1, _break(canonical))):
        obs, info = env.reset(seed=0, options={"stage": stage})
        completion = canonical[len(obs["prefix"]) :] if action is None else action
        _, reward, _, _, info = env.step(completion)
        print(
            f"  stage {info['stage'] + 1}/{info['num_stages']}: prefix of "
            f"{len(obs['prefix'])} chars, {'canonical' if action is None else 'broken'} "
            f"completion -> {info['verdict']}, reward {reward:+.1f}, "
            f"executed lines {info['executed_lines']}"
        )
    env.close()

    print(f"\nMultiTurnRepair-v0 on {task.task_id}")
    env = gym.make("codegym/MultiTurnRepair-v0", tasks=[task], sandbox=sb)
    env.reset(seed=0)
    for turn, code in enumerate((_break(canonical), canonical), start=1):
        obs, reward, terminated, _, info = env.step(f"```python\n{code}```")
        print(f"  turn {turn}: reward {reward:+.1f}, terminated {terminated}")
        if not terminated:
            feedback = obs["messages"][-1]["content"]
            print("    " + feedback.replace("\n", "\n    "))
    env.close()
