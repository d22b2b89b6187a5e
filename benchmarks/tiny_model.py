"""How good is the bundled tiny model, how long does it take to build, how fast does it sample.

Held-out pass@1 on the toy TEST split (never seen in SFT), scored by the environments
themselves against the sandbox:

- CodeCompletion-v0 at full generation (``options={"stage": -1}``, the empty prefix),
  greedy and sampled (T 0.8, top-p 1, ``--samples`` per task: pass@1 is the mean success
  over samples, pass@k the unbiased estimator);
- CodeCompletion-v0 at every curriculum stage (``options={"stage": k}``, greedy; a task
  counts for the stages it has);
- MultiTurnRepair-v0 (greedy chat, up to 3 turns): first-turn pass rate and final pass rate.

Also the build time (from the model's ``build.json``, or measured when this run builds it)
and the generation throughput (response tokens per second of batched sampling). Prints a
table and writes ``benchmarks/results/tiny_model.json``.

    python benchmarks/tiny_model.py [--tasks 200] [--seed 1] [--samples 4] [--sandbox docker]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def interval(values: list[float], seed: int = 0, resamples: int = 2000) -> list[float]:
    """95% bootstrap interval of the mean of ``values`` (resampling tasks)."""
    if not values:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), (resamples, len(data)))].mean(axis=1)
    return [round(float(np.quantile(means, 0.025)), 4), round(float(np.quantile(means, 0.975)), 4)]


def summary(values: list[float]) -> dict[str, Any]:
    """Mean, 95% interval and count."""
    mean = float(np.mean(values)) if values else float("nan")
    return {"value": round(mean, 4), "ci95": interval(values), "n": len(values)}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


class Completion:
    """CodeCompletion-v0 episodes: prompts for (task, stage) pairs, then their scores."""

    def __init__(self, tasks: list[Any], sandbox: Any) -> None:
        import gymnasium as gym

        self.env = gym.make("codegym/CodeCompletion-v0", tasks=tasks, sandbox=sandbox)
        self.raw = cast(Any, self.env.unwrapped)
        self.stages: dict[str, int] = {t.task_id: len(self.raw.stages(t)) for t in tasks}

    def prompt(self, task_id: str, stage: int) -> str:
        obs, _ = self.env.reset(options={"task_id": task_id, "stage": stage})
        return str(self.raw.observation_text(obs))

    def passed(self, task_id: str, stage: int, completion: str) -> bool:
        self.env.reset(options={"task_id": task_id, "stage": stage})
        info = self.env.step(completion)[4]
        return info["verdict"] == "passed"

    def close(self) -> None:
        self.env.close()


def run_completion(
    model: Any, tok: Any, env: Completion, pairs: list[tuple[str, int]], params: Any, batch: int
) -> tuple[list[bool], dict[str, float]]:
    """Generate for every (task, stage) pair and score it; also the generation timing."""
    from agents.models import generate

    prompts = [env.prompt(tid, stage) for tid, stage in pairs]
    start = time.perf_counter()
    gens = generate(model, tok, prompts, params, batch_size=batch)
    seconds = time.perf_counter() - start
    tokens = sum(len(g.response_ids) for g in gens)
    passed = [env.passed(tid, stage, g.text) for (tid, stage), g in zip(pairs, gens, strict=True)]
    return passed, {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def run_repair(model: Any, tok: Any, tasks: list[Any], sandbox: Any, batch: int) -> dict[str, Any]:
    """Greedy MultiTurnRepair-v0 episodes (3 turns), batched over the episodes still playing."""
    import gymnasium as gym

    from agents.models import SamplingParams, generate

    params = SamplingParams(temperature=0.0, max_new_tokens=256)
    envs = [gym.make("codegym/MultiTurnRepair-v0", tasks=[t], sandbox=sandbox) for t in tasks]
    obs = [env.reset()[0] for env in envs]
    first: dict[int, bool] = {}
    final: dict[int, bool] = {}
    turns: dict[int, int] = {}
    active = list(range(len(envs)))
    while active:
        prompts = [
            tok.apply_chat_template(list(obs[i]["messages"]), add_generation_prompt=True,
                                    tokenize=False)
            for i in active
        ]  # fmt: skip
        gens = generate(model, tok, prompts, params, batch_size=batch)
        still = []
        for i, g in zip(active, gens, strict=True):
            obs[i], _, terminated, truncated, info = envs[i].step(g.text)
            if info["turn"] == 1:
                first[i] = bool(terminated and info.get("passed", False))
            if terminated or truncated:
                final[i] = bool(info.get("passed", False))
                turns[i] = info["turn"]
            else:
                still.append(i)
        active = still
    for env in envs:
        env.close()
    return {
        "first_turn_pass": summary([float(first[i]) for i in range(len(envs))]),
        "final_pass_3_turns": summary([float(final[i]) for i in range(len(envs))]),
        "mean_turns": round(float(np.mean(list(turns.values()))), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help='"tiny" (default) or a model folder')
    parser.add_argument("--tasks", type=int, default=200, help="held-out toy test tasks")
    parser.add_argument("--seed", type=int, default=1, help="seed of the test task sample")
    parser.add_argument("--samples", type=int, default=4, help="samples per task at T 0.8")
    parser.add_argument("--batch", type=int, default=32, help="generation batch size")
    parser.add_argument("--sandbox", default="docker", help="docker (default) or process")
    parser.add_argument("--no-repair", action="store_true", help="skip MultiTurnRepair-v0")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "tiny_model.json")
    args = parser.parse_args(argv)

    import torch

    from agents.models import SamplingParams, load_causal_lm, resolve_model
    from codegym.sandbox import make_sandbox
    from codegym.tasks import load_tasks

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    start = time.perf_counter()
    path = Path(resolve_model(args.model))
    resolve_s = time.perf_counter() - start
    build = json.loads((path / "build.json").read_text()) if (path / "build.json").is_file() else {}
    model, tok = load_causal_lm(str(path), device="cpu")
    tasks = load_tasks("toy", split="test", n=args.tasks, seed=args.seed)
    result: dict[str, Any] = {
        "command": "python benchmarks/tiny_model.py " + " ".join(argv or sys.argv[1:]),
        "model": str(path),
        "build": {
            "seconds_recorded": build.get("build_seconds"),
            "seconds_this_run": round(resolve_s, 1) if resolve_s > 5 else None,
            "sft_steps": build.get("config", {}).get("sft_steps"),
            "parameters": build.get("parameters"),
            "vocab_size": build.get("vocab_size"),
            "final_loss": build.get("loss_last_20"),
        },
        "tasks": {"source": "toy", "split": "test", "n": len(tasks), "seed": args.seed},
        "sandbox": args.sandbox,
        "batch": args.batch,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }
    greedy = SamplingParams(temperature=0.0, max_new_tokens=256)
    sampled = SamplingParams(temperature=0.8, top_p=1.0, max_new_tokens=256)
    with make_sandbox(args.sandbox) as sandbox:
        env = Completion(tasks, sandbox)
        full = [(t.task_id, -1) for t in tasks]
        passed, timing = run_completion(model, tok, env, full, greedy, args.batch)
        result["full_generation_greedy"] = summary([float(p) for p in passed])
        result["generation_greedy"] = {k: round(v, 2) for k, v in timing.items()}

        many = [p for p in full for _ in range(args.samples)]
        passed, timing = run_completion(model, tok, env, many, sampled, args.batch)
        per_task = [passed[i : i + args.samples] for i in range(0, len(passed), args.samples)]
        result["full_generation_sampled_t0.8"] = {
            **summary([float(np.mean(p)) for p in per_task]),
            "samples_per_task": args.samples,
            f"pass@{args.samples}": round(
                float(np.mean([pass_at_k(len(p), sum(p), args.samples) for p in per_task])), 4
            ),
            "tasks_with_mixed_outcomes": sum(0 < sum(p) < len(p) for p in per_task),
        }
        result["generation_sampled"] = {k: round(v, 2) for k, v in timing.items()}

        stages: dict[str, Any] = {}
        for k in range(max(env.stages.values()) - 1):
            pairs = [(t.task_id, k) for t in tasks if env.stages[t.task_id] - 1 > k]
            passed, _ = run_completion(model, tok, env, pairs, greedy, args.batch)
            stages[f"stage_{k}"] = summary([float(p) for p in passed])
        stages["full"] = result["full_generation_greedy"]
        result["per_stage_greedy"] = stages
        env.close()
        if not args.no_repair:
            result["repair_greedy"] = run_repair(model, tok, tasks, sandbox, args.batch)
    result["load_average_before_after"] = [round(load_before[0], 1), round(os.getloadavg()[0], 1)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    return 0


def _print(r: dict[str, Any]) -> None:
    def fmt(s: dict[str, Any]) -> str:
        lo, hi = s["ci95"]
        return f"{100 * s['value']:5.1f}%  [{100 * lo:.1f}, {100 * hi:.1f}]  n={s['n']}"

    b = r["build"]
    print(f"tiny model {r['model']}")
    print(
        f"  build: {b['seconds_recorded']} s recorded, {b['sft_steps']} SFT steps, "
        f"{b['parameters']:,} parameters, final loss {b['final_loss']:.3f}"
    )
    print(f"held-out toy test tasks: {r['tasks']['n']} (seed {r['tasks']['seed']}), {r['sandbox']}")
    print(f"  full generation, greedy       {fmt(r['full_generation_greedy'])}")
    s = r["full_generation_sampled_t0.8"]
    k = s["samples_per_task"]
    print(
        f"  full generation, T 0.8        {fmt(s)}  pass@{k} {100 * s[f'pass@{k}']:.1f}%, "
        f"{s['tasks_with_mixed_outcomes']} tasks with mixed outcomes"
    )
    for name, st in r["per_stage_greedy"].items():
        print(f"  {name:<29} {fmt(st)}")
    if "repair_greedy" in r:
        rep = r["repair_greedy"]
        print(f"  chat, first turn, greedy      {fmt(rep['first_turn_pass'])}")
        print(f"  chat, within 3 turns, greedy  {fmt(rep['final_pass_3_turns'])}")
    g, s2 = r["generation_greedy"], r["generation_sampled"]
    print(
        f"  generation: {g['tokens_per_s']:.0f} tokens/s greedy, {s2['tokens_per_s']:.0f} "
        f"tokens/s sampled (batch {r.get('batch', 32)}); load average "
        f"{r['load_average_before_after']}"
    )


if __name__ == "__main__":
    sys.exit(main())
