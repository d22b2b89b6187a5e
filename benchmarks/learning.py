"""The learning benchmark: do the agents learn, and which of their parts matter?

From the same tiny SFT start, on the toy suite (train split for training; a fixed set of
held-out toy test tasks for evaluation, the same for every row), several seeds per row, equal
training budgets (steps x rollouts per step) for the StepCoder rows (30 x 64) and, smaller
because a multi-turn step costs several times more, for the RLEF rows (20 x 32):

=================  ===================================================  ==========
row                what                                                 metric
=================  ===================================================  ==========
sft                the SFT start                                        pass@1
sft_continued      the SFT start, trained further with SFT for the      pass@1
                   wall time the ``stepcoder`` rows' training took
                   (median over their seeds)
vanilla_ppo        StepCoder with ``--no-cccs --no-fgo``                pass@1
no_cccs            StepCoder without CCCS                               pass@1
no_fgo             StepCoder without FGO                                pass@1
stepcoder          full StepCoder                                       pass@1
grpo               StepCoder's env with ``--advantage grpo``            pass@1
sft_multi_turn     the SFT start in MultiTurnRepair-v0                  1@3
single_turn_rl     RLEF ``--single-turn``                               1@3
rlef               full RLEF                                            1@3
=================  ===================================================  ==========

pass@1 is greedy, full generation, prompted as CodeCompletion-v0 prompts (the format the
StepCoder rows train on). 1@3 is one greedy MultiTurnRepair-v0 episode of up to 3 turns per
task, solved when its final code passes the private tests.

Each (row, seed) writes ``benchmarks/results/learning/<row>-seed<k>.json`` when it finishes;
running the script again skips what is done at the budget asked for, so the table is built
up across sittings (``--rows``, ``--seeds``, ``--steps``, ``--rlef-steps``). Training runs keep
checkpoints under ``--runs`` and resume if interrupted; a larger ``--steps`` than a row was
done at continues its run from its last checkpoint and replaces its result (and
``sft_continued``'s, whose budget follows the ``stepcoder`` runs at that many steps).
Results record the start they came from (the tiny model's build key and the preset) and their
budget; results of another start make the script stop. At the end it prints the table and
writes ``benchmarks/results/learning.json`` (``{row: {"mean", "ci", "per_seed", "metric",
"steps", "samples_per_step", "delta", "delta_ci"}}``; 95% intervals from a bootstrap over tasks
and seeds; ``delta``: the mean minus the start's, its interval paired over tasks),
``learning.md`` and ``learning.png`` (bars with intervals; mean learning curves per row).

    python benchmarks/learning.py                       # every row, seeds 0 1 2
    python benchmarks/learning.py --rows sft,stepcoder --seeds 0
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"

#: The RLEF rows' rollouts per step: a multi-turn step of 64 episodes took 50-80 s here against
#: StepCoder's 9 s (three generations per episode, conversations of several hundred tokens
#: through the policy, the critic and the reference), so the RLEF rows get 8 tasks x 4 samples
#: and ``--rlef-steps``; their budget is equal among themselves, as the StepCoder rows' is.
_RLEF_BUDGET: dict[str, Any] = {"samples_per_task": 4}

#: row -> (algorithm or None for an evaluation of the start, config overrides, metric)
ROWS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "sft": (None, {}, "pass@1"),
    "sft_continued": ("sft", {}, "pass@1"),
    "vanilla_ppo": ("stepcoder", {"cccs": False, "fgo": False}, "pass@1"),
    "no_cccs": ("stepcoder", {"cccs": False}, "pass@1"),
    "no_fgo": ("stepcoder", {"fgo": False}, "pass@1"),
    "stepcoder": ("stepcoder", {}, "pass@1"),
    "grpo": ("stepcoder", {"advantage": "grpo"}, "pass@1"),
    "sft_multi_turn": (None, {}, "1@3"),
    "single_turn_rl": ("rlef", {"single_turn": True, **_RLEF_BUDGET}, "1@3"),
    "rlef": ("rlef", {**_RLEF_BUDGET}, "1@3"),
}


def start_fingerprint() -> str:
    """What every row shares and results must agree on: the tiny model's build key and the
    tiny preset (a changed default makes earlier results incomparable)."""
    import hashlib

    from agents.config import TINY_PRESET
    from agents.tiny import TinyConfig

    preset = hashlib.sha1(json.dumps(TINY_PRESET, sort_keys=True).encode()).hexdigest()[:8]
    return f"tiny-{TinyConfig().key()}/preset-{preset}"


def evaluate_model(model: str, metric: str, out: Path, sandbox: Any) -> dict[str, Any]:
    """Per-task outcomes (0/1) of ``model`` on the held-out tasks for ``metric``."""
    from agents.demo import evaluate_held_out

    value, _, per_task = evaluate_held_out(model, out, sandbox=sandbox, metric=metric)
    return {"value": value, "per_task": per_task}


def train_row(row: str, seed: int, steps: int, runs: Path, sandbox: Any) -> dict[str, Any]:
    """Train the row's algorithm for ``steps`` (resuming a partial run); returns its record."""
    from agents.config import build_config
    from agents.rlef import RLEFConfig
    from agents.stepcoder import StepCoderConfig
    from agents.trainer import checkpoints, train

    algorithm, overrides, _ = ROWS[row]
    cls = StepCoderConfig if algorithm == "stepcoder" else RLEFConfig
    config, preset = build_config(
        cls, model="tiny", overrides={**overrides, "steps": steps, "seed": seed}
    )
    run = runs / f"{row}-seed{seed}"
    done = [s for s, _ in checkpoints(run)] if run.exists() else []
    if done and done[-1] > steps:
        raise SystemExit(
            f"{run} holds a run of {done[-1]} steps, more than the {steps} asked for: move it "
            "away (and its result in benchmarks/results/learning) to train that row afresh"
        )
    start = time.perf_counter()
    if not done or done[-1] < steps:
        train(config, run, resume=bool(done), preset=preset, sandbox=sandbox, progress=False)
    with (run / "metrics.csv").open() as f:
        curve = [
            {"step": float(r["step"]), "pass_rate": float(r["env/pass_rate"]),
             "time": float(r.get("time/step") or 0.0)}
            for r in csv.DictReader(f)
        ]  # fmt: skip
    return {
        "run": str(run),
        "steps": steps,
        "samples_per_step": config.rollouts_per_step,
        "train_seconds": sum(c["time"] for c in curve),
        "wall_seconds_this_sitting": time.perf_counter() - start,
        "curve": curve,
    }


class _BudgetSpent(Exception):
    pass


def continue_sft(seed: int, seconds: float, out: Path) -> dict[str, Any]:
    """The tiny model trained further with its own SFT recipe for ``seconds`` of wall time."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agents.tiny import TinyConfig, sft_batches, sft_data, tiny_model_path, train_sft
    from codegym.tasks import load_tasks

    done_before = _finished_sft(out, seconds)
    if done_before is not None:  # trained, then interrupted before its evaluation was recorded
        return done_before
    cfg = TinyConfig()
    path = tiny_model_path(cfg)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tasks = load_tasks("toy", split="train", n=cfg.num_tasks, seed=cfg.task_seed)
    data = sft_data(tasks, repair_tasks=cfg.repair_tasks, seed=cfg.seed)
    torch.manual_seed(seed)
    batches = sft_batches(
        data, batch_size=cfg.batch_size, steps=10**6, chat_share=cfg.chat_share,
        seed=cfg.seed + 1000 + seed,
    )  # fmt: skip
    start, done = time.perf_counter(), [0]

    def stop_when_spent(step: int, _model: Any) -> None:
        done[0] = step
        if time.perf_counter() - start >= seconds:
            raise _BudgetSpent

    try:
        train_sft(model, tokenizer, batches, steps=10**6, lr=cfg.lr, warmup_steps=0,
                  progress=False, on_step=stop_when_spent)  # fmt: skip
    except _BudgetSpent:
        pass
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"sft_steps": done[0], "seconds": time.perf_counter() - start, "budget": seconds}
    (out / "sft_continued.json").write_text(json.dumps(record) + "\n")
    return record


def _finished_sft(out: Path, seconds: float) -> dict[str, Any] | None:
    """The record of a continued SFT already saved in ``out`` for this budget; ``None`` if
    there is none, or it was trained for another budget (a row redone at more steps)."""
    saved = out / "sft_continued.json"
    if not (out / "config.json").exists() or not saved.exists():
        return None
    record = json.loads(saved.read_text())
    return record if record.get("budget") == seconds else None


class _NotYet(Exception):
    """A row that needs another row's result first (the message says which)."""


def run_one(row: str, seed: int, args: argparse.Namespace, sandbox: Any) -> dict[str, Any]:
    """Train (if the row trains) and evaluate one (row, seed)."""
    algorithm, _, metric = ROWS[row]
    evals = args.runs / "evals"
    evals.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"row": row, "seed": seed, "metric": metric}
    if algorithm is None:
        record |= {"steps": 0, "samples_per_step": 0}
        model = "tiny"
    elif algorithm == "sft":
        budget = _stepcoder_seconds(seed, args.steps)
        if budget is None:
            raise _NotYet(f"the stepcoder row's seed {seed} at {args.steps} steps first")
        folder = args.runs / f"{row}-seed{seed}"
        record |= {"steps": 0, "samples_per_step": 0, "budget_seconds": budget}
        record |= continue_sft(seed, budget, folder)
        model = str(folder)
    else:
        steps = args.rlef_steps if algorithm == "rlef" else args.steps
        record |= train_row(row, seed, steps, args.runs, sandbox)
        model = record["run"]
    record |= evaluate_model(model, metric, eval_path(evals, row, seed, args), sandbox)
    return record


def eval_path(evals: Path, row: str, seed: int, args: argparse.Namespace) -> Path:
    """Where a (row, seed)'s held-out samples go: one file per budget for the rows that
    train, since a row redone at more steps is another model (and a samples file resumes
    only for the model that wrote it)."""
    budget = budget_of(row, args)
    suffix = "" if budget is None else f"-{budget}steps"
    return evals / f"{row}-seed{seed}{suffix}.jsonl"


def _stepcoder_seconds(seed: int, steps: int) -> float | None:
    """The ``sft_continued`` budget: the median training wall time of the ``stepcoder`` runs
    of ``steps`` steps done so far (which must include ``seed``'s). A median, because one run
    slowed by other work on a shared machine would otherwise hand SFT several times the
    compute."""
    done = {
        p.name: json.loads(p.read_text())
        for p in (RESULTS / "learning").glob("stepcoder-seed*.json")
    }  # fmt: skip
    times = [float(r["train_seconds"]) for r in done.values() if _budget(r) == steps]
    mine = done.get(f"stepcoder-seed{seed}.json")
    if mine is None or _budget(mine) != steps:
        return None
    return float(np.median(times))


def budget_of(row: str, args: argparse.Namespace) -> int | None:
    """The training steps ``row`` is run at (``sft_continued``: the ``stepcoder`` runs' it is
    matched to); ``None`` for the starts, which do not train."""
    algorithm = ROWS[row][0]
    if algorithm is None:
        return None
    return args.rlef_steps if algorithm == "rlef" else args.steps


def _budget(record: dict[str, Any]) -> int | None:
    """The budget a finished record was made at (:func:`budget_of` when it was made)."""
    return record.get("budget_steps")


def bootstrap(per_seed_tasks: list[dict[str, float]], resamples: int = 2000, seed: int = 0,
              baseline: dict[str, float] | None = None) -> tuple[float, float]:  # fmt: skip
    """95% interval of the mean over a two-level bootstrap: seeds, then tasks.

    With ``baseline`` (per-task outcomes of the start, the same for every seed: it is
    evaluated greedily), the interval of the mean paired difference: each task's outcome
    minus the start's on that task. Pairing removes the spread between tasks that both share,
    so it can tell a change that two overlapping intervals cannot."""
    rng = np.random.default_rng(seed)
    tasks = sorted(per_seed_tasks[0])
    table = np.array([[d[t] for t in tasks] for d in per_seed_tasks], dtype=float)
    if baseline is not None:
        table -= np.array([baseline[t] for t in tasks], dtype=float)
    n_seeds, n_tasks = table.shape
    means = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(n_seeds, size=n_seeds)
        cols = rng.integers(n_tasks, size=n_tasks)
        means[i] = table[np.ix_(rows, cols)].mean()
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


#: The start each row is compared with, by metric.
START_OF = {"pass@1": "sft", "1@3": "sft_multi_turn"}


def summarise(records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """``learning.json``'s content from the finished (row, seed) records. Rows other than the
    starts also get ``delta`` (mean minus the start's) and ``delta_ci`` (its paired 95%
    interval, :func:`bootstrap` with ``baseline``)."""
    out: dict[str, Any] = {}
    for row in ROWS:
        recs = sorted(records.get(row, []), key=lambda r: r["seed"])
        if not recs:
            continue
        low, high = bootstrap([r["per_task"] for r in recs])
        out[row] = {
            "mean": float(np.mean([r["value"] for r in recs])),
            "ci": [low, high],
            "per_seed": [r["value"] for r in recs],
            "seeds": [r["seed"] for r in recs],
            "metric": recs[0]["metric"],
            "steps": recs[0]["steps"],
            "samples_per_step": recs[0]["samples_per_step"],
        }
        if row == "sft_continued":
            out[row]["sft_steps"] = [r.get("sft_steps") for r in recs]
        start = START_OF[recs[0]["metric"]]
        if start != row and records.get(start):
            base = records[start][0]["per_task"]
            start_mean = float(np.mean(list(base.values())))
            d_low, d_high = bootstrap([r["per_task"] for r in recs], baseline=base)
            out[row]["delta"] = out[row]["mean"] - start_mean
            out[row]["delta_ci"] = [d_low, d_high]
    return out


def write_outputs(summary: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> str:
    """Write learning.json, learning.md and learning.png; returns the markdown table."""
    (RESULTS / "learning.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "| row | metric | mean | 95% CI | per seed | vs start, paired (95% CI) | steps x samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, s in summary.items():
        per_seed = ", ".join(f"{100 * v:.1f}" for v in s["per_seed"])
        budget = f"{s['steps']} x {s['samples_per_step']}" if s["steps"] else "-"
        delta = (
            f"{100 * s['delta']:+.1f} ({100 * s['delta_ci'][0]:+.1f} to "
            f"{100 * s['delta_ci'][1]:+.1f})"
            if "delta" in s
            else "-"
        )
        lines.append(
            f"| `{row}` | {s['metric']} | {100 * s['mean']:.1f}% | "
            f"{100 * s['ci'][0]:.1f}-{100 * s['ci'][1]:.1f} | {per_seed} | {delta} | {budget} |"
        )
    table = "\n".join(lines)
    (RESULTS / "learning.md").write_text(table + "\n")
    _plot(summary, records)
    return table


def _plot(summary: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, curves) = plt.subplots(1, 2, figsize=(13, 4.5))
    names = list(summary)
    means = [100 * summary[r]["mean"] for r in names]
    errs = np.array(
        [
            [100 * (summary[r]["mean"] - summary[r]["ci"][0]) for r in names],
            [100 * (summary[r]["ci"][1] - summary[r]["mean"]) for r in names],
        ]
    )
    colors = ["tab:gray" if ROWS[r][0] in (None, "sft") else "tab:blue" for r in names]
    bars.bar(names, means, yerr=errs, capsize=4, color=colors)
    bars.set_ylabel("held-out pass@1 / 1@3 (%)")
    bars.tick_params(axis="x", rotation=45)
    for row, recs in records.items():
        curves_of_row = [r["curve"] for r in recs if r.get("curve")]
        if not curves_of_row:
            continue
        length = min(len(c) for c in curves_of_row)
        mean = np.mean([[p["pass_rate"] for p in c[:length]] for c in curves_of_row], axis=0)
        curves.plot(range(1, length + 1), 100 * mean, label=row)
    curves.set_xlabel("step")
    curves.set_ylabel("training pass rate (%)")
    if curves.get_legend_handles_labels()[0]:
        curves.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "learning.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated row keys")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=30, help="PPO steps per StepCoder run")
    parser.add_argument("--rlef-steps", type=int, default=20, help="PPO steps per RLEF run")
    parser.add_argument("--runs", type=Path, default=Path("runs/learning"))
    parser.add_argument("--sandbox", default="docker")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the outputs")
    args = parser.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    done_dir = RESULTS / "learning"
    done_dir.mkdir(parents=True, exist_ok=True)
    start = start_fingerprint()
    stale = [
        p.name for p in sorted(done_dir.glob("*-seed*.json"))
        if json.loads(p.read_text()).get("start") != start
    ]  # fmt: skip
    if stale and not args.table_only:
        raise SystemExit(
            f"{done_dir} holds results of another start model or preset ({', '.join(stale)}); "
            f"this run's start is {start}. Move them away (and {args.runs}) to begin afresh."
        )
    if not args.table_only:
        import transformers

        from codegym.sandbox import make_sandbox

        transformers.utils.logging.disable_progress_bar()
        with make_sandbox(args.sandbox) as sandbox:
            # sft_continued last: its budget is the stepcoder runs' time
            for row in sorted(rows, key=lambda r: r == "sft_continued"):
                wanted = budget_of(row, args)
                for seed in seeds:
                    path = done_dir / f"{row}-seed{seed}.json"
                    redo = ""
                    if path.exists():
                        had = _budget(json.loads(path.read_text()))
                        if wanted is None or had == wanted:
                            continue
                        redo = f" (done at {had} steps, redone at {wanted})"
                    if ROWS[row][0] is None:
                        # the start is evaluated greedily: every seed gives the same numbers
                        earlier = sorted(done_dir.glob(f"{row}-seed*.json"))
                        if earlier:
                            record = json.loads(earlier[0].read_text()) | {"seed": seed}
                            path.write_text(json.dumps(record) + "\n")
                            continue
                    t0 = time.perf_counter()
                    print(f"== {row} seed {seed}{redo}", flush=True)
                    try:
                        record = run_one(row, seed, args, sandbox)
                    except _NotYet as e:
                        print(f"   not yet: it needs {e}; run the script again after it")
                        continue
                    record |= {"start": start, "budget_steps": wanted}
                    path.write_text(json.dumps(record) + "\n")
                    print(f"   {record['metric']} {100 * record['value']:.1f}% "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    records: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(done_dir.glob("*-seed*.json")):
        record = json.loads(path.read_text())
        records.setdefault(record["row"], []).append(record)
    summary = summarise(records)
    print(write_outputs(summary, records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
