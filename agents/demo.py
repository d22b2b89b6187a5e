"""The StepCoder demo (``codegym demo``): the tiny model before and after PPO, measured.

1. build (or load from the cache) the bundled tiny model;
2. measure its pass@1 on held-out toy tasks (the test split: no problem of it is in the
   training split), full generation, greedy decoding, with a 95% bootstrap interval;
3. train StepCoder (CCCS + FGO) on the toy training split, on the docker sandbox;
4. measure the trained policy on the same tasks the same way;
5. print both figures and say plainly whether training helped by more than the intervals.

The run directory (``--out``) keeps the metrics, the learning curve and the checkpoints; a
second run with the same ``--out`` resumes a run that was interrupted, and re-evaluates one
that finished.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: Held-out evaluation suite of the demo (and of the learning benchmark's defaults).
HELD_OUT = {"source": "toy", "split": "test", "n": 200, "seed": 1}


def held_out_report(
    model: str, out: Path, *, sandbox: Any, multi: bool = False,
    tasks: dict[str, Any] | None = None, n: int = 1, k: tuple[int, ...] = (1,),
    temperature: float = 0.0,
) -> Any:  # fmt: skip
    """The :class:`codegym.eval.Report` of ``model`` (``"tiny"``, a model folder or a
    ``codegym train`` run directory) on the held-out toy tasks: CodeCompletion-v0 prompts at
    full generation (the format StepCoder trains on), or with ``multi`` MultiTurnRepair-v0
    episodes of up to 3 turns in chat format; ``n`` samples per task at ``temperature``
    (top-p 1, 160 tokens). Records go to ``out`` (resumed if it exists)."""
    from codegym.eval import HFPolicy, evaluate
    from codegym.eval.policies import resolve_checkpoint

    path = str(resolve_checkpoint(model)) if Path(model).is_dir() else model
    return evaluate(
        HFPolicy(path, input="messages" if multi else "text"),
        tasks or HELD_OUT,
        mode="multi" if multi else "single",
        n=n,
        k=k,
        max_turns=3,
        temperature=temperature,
        top_p=1.0,
        max_tokens=160,
        out=out,
        resume=out.exists(),
        sandbox=sandbox,
        progress=False,
    )


def evaluate_held_out(
    model: str, out: Path, *, sandbox: Any, metric: str = "pass@1",
    tasks: dict[str, Any] | None = None,
) -> tuple[float, tuple[float, float], dict[str, float]]:  # fmt: skip
    """Greedy ``pass@1`` or ``1@3`` (one MultiTurnRepair-v0 episode of up to 3 turns) of
    ``model`` on the held-out toy tasks (:func:`held_out_report`).

    Returns:
        The score, its 95% bootstrap interval over tasks, and each task's 0/1 outcome.
    """
    multi = metric == "1@3"
    report = held_out_report(model, out, sandbox=sandbox, multi=multi, tasks=tasks)
    key = "1@3" if multi else "pass@1"
    low, high = report.intervals[key]
    # one greedy sample (rollout) per task: a task's score is whether it passed
    per_task = {s.task_id: s.correct / max(s.samples, 1) for s in report.scores}
    return float(report[key]), (float(low), float(high)), per_task


def held_out_pass_at_1(model: str, out: Path, *, sandbox: Any) -> tuple[float, tuple[float, float]]:
    """:func:`evaluate_held_out`'s pass@1 and its interval."""
    value, interval, _ = evaluate_held_out(model, out, sandbox=sandbox)
    return value, interval


def run_stepcoder_demo(args: argparse.Namespace) -> int:
    """``codegym demo``: see the module docstring."""
    import transformers

    from agents.config import build_config
    from agents.stepcoder import StepCoderConfig
    from agents.tiny import tiny_model_path
    from agents.trainer import checkpoints, train
    from codegym.sandbox import make_sandbox

    transformers.utils.logging.disable_progress_bar()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("== 1. the tiny model (built on first use, then cached)")
    model = tiny_model_path()
    print(f"   {model}")
    config, preset = build_config(
        StepCoderConfig,
        model="tiny",
        overrides={"steps": args.steps, "seed": args.seed, "sandbox": args.sandbox},
    )
    run = out / "run"
    with make_sandbox(args.sandbox) as sandbox:
        print(f"== 2. held-out pass@1 before training ({HELD_OUT['n']} toy test tasks, greedy)")
        before = held_out_pass_at_1("tiny", out / "eval-before.jsonl", sandbox=sandbox)
        print(f"   pass@1 {_fmt(before)}")
        done = [s for s, _ in checkpoints(run)] if run.exists() else []
        print(
            f"== 3. StepCoder (CCCS + FGO), preset {preset!r}: {config.steps} steps x "
            f"{config.rollouts_per_step} rollouts"
        )
        if not done or done[-1] < config.steps:
            train(config, run, resume=bool(done), preset=preset, sandbox=sandbox)
        else:
            print(f"   already trained: {run}")
        print("== 4. held-out pass@1 after training (same tasks, same decoding)")
        after = held_out_pass_at_1(str(run), out / "eval-after.jsonl", sandbox=sandbox)
        print(f"   pass@1 {_fmt(after)}")
    print("== 5. result")
    print(f"   before {_fmt(before)}\n   after  {_fmt(after)}")
    if after[1][0] > before[1][1]:
        verdict = "StepCoder improved the tiny model by more than the 95% intervals."
    elif after[0] > before[0]:
        verdict = (
            "StepCoder raised pass@1, but not by more than the 95% intervals: "
            "not a demonstrated improvement (more steps: --steps)."
        )
    else:
        verdict = "StepCoder did NOT improve held-out pass@1 in this run."
    print(f"   {verdict}")
    print(f"   learning curve: {run / 'learning_curve.png'}; metrics: {run / 'metrics.csv'}")
    summary = {
        "before": before[0],
        "before_ci": before[1],
        "after": after[0],
        "after_ci": after[1],
        "steps": config.steps,
        "verdict": verdict,
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def _fmt(value: tuple[float, tuple[float, float]]) -> str:
    mean, (low, high) = value
    return f"{100 * mean:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f})"


__all__ = ["HELD_OUT", "evaluate_held_out", "held_out_pass_at_1", "run_stepcoder_demo"]
