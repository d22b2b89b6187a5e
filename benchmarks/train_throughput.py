"""What the PPO machinery costs over the bare minimum, on the tiny model (CPU).

The bound: a bare ``generate`` of the step's responses plus one bare forward/backward of the
policy over the resulting sequences (the least any on-policy RL step can do). Measured in the
same script, on the same prompts and model: full StepCoder steps (CCCS + FGO, a separate
critic, a frozen reference, the KL penalty, the env and the docker sandbox; the step's
tokens scored after the sandbox ran them, the default on a CPU), the same steps scored while
the sandbox runs them (``overlap_execution``, the default on an accelerator) and GRPO steps
(no critic). It prints where the time goes and writes
``benchmarks/results/train_throughput.json``.

    python benchmarks/train_throughput.py [--rollouts 64] [--steps 3]

Target (issue 8): the machinery costs at most 25% over the bound.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any, cast

RESULTS = Path(__file__).resolve().parent / "results"


def bare_bound(model: str, prompts: list[str], max_new_tokens: int, micro: int) -> dict[str, float]:
    """Seconds of a bare generate and a bare forward/backward over the same sequences."""
    import torch

    from agents.models import SamplingParams, generate, load_causal_lm, pad_left, token_logprobs

    policy, tok = load_causal_lm(model)
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    gens = generate(policy, tok, prompts, params, batch_size=64)
    t_gen = time.perf_counter() - t0
    seqs = [g.prompt_ids + g.response_ids for g in gens]
    tokens = sum(len(g.response_ids) for g in gens)
    t1 = time.perf_counter()
    for start in range(0, len(seqs), micro):
        ids, mask = pad_left(seqs[start : start + micro], tok.pad_token_id)
        logp = cast(torch.Tensor, token_logprobs(policy, ids, mask))
        (-(logp * mask).sum() / mask.sum()).backward()
    t_fb = time.perf_counter() - t1
    return {"generate": t_gen, "forward_backward": t_fb, "tokens": float(tokens)}


def ppo_steps(
    overrides: dict[str, Any], steps: int, sandbox: Any, *, overlap: bool = True
) -> list[dict[str, float]]:
    """The metrics of ``steps`` trainer steps (after one warm-up step); ``overlap=False``
    scores each step after its execution instead of during it."""
    from agents.config import build_config
    from agents.stepcoder import StepCoderConfig
    from agents.trainer import Trainer

    config, preset = build_config(
        StepCoderConfig, model="tiny", overrides={"steps": steps + 1, **overrides}
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, Path(out) / "run", preset=preset, sandbox=sandbox)
        trainer.overlap_execution = overlap
        try:
            trainer.run_step()  # warm-up: the sandbox's compiled-test cache, allocator
            return [trainer.run_step() for _ in range(steps)]
        finally:
            trainer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=64, help="rollouts per step")
    parser.add_argument("--steps", type=int, default=3, help="measured steps per variant")
    parser.add_argument("--sandbox", default="docker")
    args = parser.parse_args(argv)

    import transformers

    from agents.tiny import tiny_model_path
    from codegym.sandbox import make_sandbox

    transformers.utils.logging.disable_progress_bar()
    model = str(tiny_model_path())
    samples = 4
    base = {
        "tasks_per_step": args.rollouts // samples,
        "samples_per_task": samples,
        "sandbox": args.sandbox,
        "checkpoint_every": 10**6,
    }
    with make_sandbox(args.sandbox) as sandbox:
        results: dict[str, Any] = {}
        variants: tuple[tuple[str, dict[str, Any], bool], ...] = (
            ("stepcoder", {}, False),  # the default on a CPU: scored after execution
            ("stepcoder_overlapped", {}, True),
            ("grpo", {"advantage": "grpo"}, False),
        )
        for name, extra, overlap in variants:
            rows = ppo_steps(base | extra, args.steps, sandbox, overlap=overlap)
            keys = ("time/generate", "time/execute", "time/score", "time/update", "time/step")
            results[name] = {k: median(r[k] for r in rows) for k in keys}
            results[name]["response_tokens"] = median(
                r["env/response_tokens"] * args.rollouts for r in rows
            )
    # the bound on the prompts of a StepCoder step (full generation of the same number of
    # tokens: the response lengths of the policy itself, sampled the same way)
    from codegym.tasks import load_tasks

    tasks = load_tasks("toy", split="train", n=args.rollouts // samples, seed=0)
    prompts = [t.prompt + "\n\n" for t in tasks for _ in range(samples)]
    bounds = [bare_bound(model, prompts, 160, 16) for _ in range(args.steps)]
    bound = {k: median(b[k] for b in bounds) for k in ("generate", "forward_backward", "tokens")}
    bound_s = bound["generate"] + bound["forward_backward"]
    print(f"bare generate + forward/backward ({args.rollouts} sequences): "
          f"{bound['generate']:.2f} s + {bound['forward_backward']:.2f} s = {bound_s:.2f} s "
          f"({bound['tokens'] / bound['generate']:.0f} generated tokens/s)")  # fmt: skip
    report: dict[str, Any] = {"rollouts": args.rollouts, "bound": bound | {"total": bound_s}}
    for name, r in results.items():
        # compare per generated token: the policy's responses need not have the same lengths
        per_token_step = r["time/step"] / max(r["response_tokens"], 1)
        per_token_bound = bound_s / max(bound["tokens"], 1)
        overhead = per_token_step / per_token_bound - 1
        sequential = not name.endswith("_overlapped")
        # overlapped, scoring runs while the sandbox executes: the pair costs the longer one
        pair = (r["time/execute"] + r["time/score"] if sequential
                else max(r["time/execute"], r["time/score"]))  # fmt: skip
        rest = r["time/step"] - r["time/generate"] - pair - r["time/update"]
        join = " + " if sequential else " || "
        print(f"{name}: step {r['time/step']:.2f} s = generate {r['time/generate']:.2f} + "
              f"(execute {r['time/execute']:.2f}{join}score (old/ref log-probs, values) "
              f"{r['time/score']:.2f}) + update {r['time/update']:.2f} (+ rest {rest:.2f}); "
              f"{r['response_tokens']:.0f} tokens; {r['time/step'] / bound_s:.2f}x the bound; "
              f"overhead over the bound per token: {100 * overhead:+.0f}%")  # fmt: skip
        report[name] = r | {
            "overhead_vs_bound": overhead,
            "ratio_to_bound": r["time/step"] / bound_s,
        }
    gain = results["stepcoder"]["time/step"] / results["stepcoder_overlapped"]["time/step"]
    print(f"scoring during execution: a StepCoder step {gain:.2f}x as fast as scoring after it")
    report["overlap_speedup"] = gain
    report["load_average"] = list(os.getloadavg())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
