"""How much the single-turn RL rows of the learning benchmark could gain, and what they gained
on the quantity they optimise.

RL from a start's own samples mostly sharpens it: it moves pass@1 toward what the start already
solves in a few tries. This script samples each model ``--n`` times per held-out toy task at
the training temperature (the tiny preset's 0.7, top-p 1), the same 200 tasks as
``benchmarks/learning.py``, and reports pass@1 (sampled), pass@4 and pass@n, so that

- the start's pass@k bounds what greedy pass@1 can reach by sharpening alone, and
- each trained row's sampled pass@1 against the start's (paired over tasks, each task's share
  of passing samples; 95% bootstrap interval) shows whether RL moved the quantity its reward
  measures, whatever greedy decoding shows.

Models: ``sft`` (the tiny start) and the final checkpoint of ``ROW-seedS`` runs under
``runs/learning`` (train them with ``benchmarks/learning.py`` first). Samples go to
``runs/learning/evals/headroom-*.jsonl`` (resumed if present); results to
``benchmarks/results/learning_headroom.json``.

    python benchmarks/learning_headroom.py                      # sft, stepcoder and grpo, seed 0
    python benchmarks/learning_headroom.py --models sft,no_cccs-seed0 --n 16
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from learning import bootstrap  # the learning benchmark's paired bootstrap

RESULTS = Path(__file__).parent / "results"


def measure(model: str, out: Path, n: int, temperature: float, sandbox: Any) -> dict[str, Any]:
    """Sampled pass@1, pass@4 and pass@n (with 95% intervals) of ``model`` on the held-out
    tasks, and each task's share of passing samples."""
    from agents.demo import held_out_report

    ks = tuple(sorted({1, min(4, n), n}))
    t0 = time.perf_counter()
    report = held_out_report(model, out, sandbox=sandbox, n=n, k=ks, temperature=temperature)
    return {
        "model": model,
        "n": n,
        "temperature": temperature,
        "seconds": round(time.perf_counter() - t0, 1),
        "per_task": {s.task_id: s.correct / max(s.samples, 1) for s in report.scores},
        **{
            f"pass@{k}": {
                "value": float(report[f"pass@{k}"]),
                "ci": [float(x) for x in report.intervals[f"pass@{k}"]],
            }
            for k in ks
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default="sft,stepcoder-seed0,grpo-seed0",
        help="comma-separated: sft (the start) or ROW-seedS runs under --runs",
    )
    parser.add_argument("--n", type=int, default=16, help="samples per task")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--runs", type=Path, default=Path("runs/learning"))
    parser.add_argument("--sandbox", default="docker")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    missing = [m for m in names if m != "sft" and not (args.runs / m).is_dir()]
    if missing:
        parser.error(
            f"no run folder for {', '.join(missing)} under {args.runs}: train them with "
            "`python benchmarks/learning.py --rows ROW --seeds S` first"
        )
    import transformers

    from codegym.eval.policies import resolve_checkpoint
    from codegym.sandbox import make_sandbox

    # A run continued to more steps is another model: its results are its checkpoint's.
    labels = {
        m: m if m == "sft" else f"{m}@{resolve_checkpoint(args.runs / m).parent.name}"
        for m in names
    }

    transformers.utils.logging.disable_progress_bar()
    path = RESULTS / "learning_headroom.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    evals = args.runs / "evals"
    evals.mkdir(parents=True, exist_ok=True)
    with make_sandbox(args.sandbox) as sandbox:
        for name in names:
            key = f"{labels[name]}/n{args.n}/t{args.temperature}"
            if "per_task" in results.get(key, {}):
                continue
            model = "tiny" if name == "sft" else str(args.runs / name)
            out = evals / f"headroom-{labels[name]}-n{args.n}-t{args.temperature}.jsonl"
            results[key] = measure(model, out, args.n, args.temperature, sandbox)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2) + "\n")
    ks = sorted({1, min(4, args.n), args.n})
    start = results.get(f"sft/n{args.n}/t{args.temperature}")
    print(f"held-out toy tasks, {args.n} samples each at T {args.temperature}:")
    print("| model | " + " | ".join(f"pass@{k}" for k in ks) + " | pass@1 vs sft, paired |")
    print("|---|" + "---|" * (len(ks) + 1))
    for name in names:
        r = results[f"{labels[name]}/n{args.n}/t{args.temperature}"]
        cells = [
            f"{100 * r[f'pass@{k}']['value']:.1f}% ({100 * r[f'pass@{k}']['ci'][0]:.1f}-"
            f"{100 * r[f'pass@{k}']['ci'][1]:.1f})"
            for k in ks
        ]
        delta = "-"
        if name != "sft" and start is not None:
            low, high = bootstrap([r["per_task"]], baseline=start["per_task"])
            r["pass@1_vs_sft"] = {
                "delta": r["pass@1"]["value"] - start["pass@1"]["value"],
                "ci": [low, high],
            }
            d = r["pass@1_vs_sft"]
            delta = f"{100 * d['delta']:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})"
        print(f"| `{labels[name]}` | " + " | ".join(cells) + f" | {delta} |")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
