"""benchmarks/learning.py's statistics and bookkeeping (the runs themselves are a benchmark)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def learning() -> ModuleType:
    spec = importlib.util.spec_from_file_location("learning", ROOT / "benchmarks/learning.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["learning"] = module
    spec.loader.exec_module(module)
    return module


def _record(row: str, seed: int, outcomes: list[float], metric: str = "pass@1") -> dict:
    per_task = {f"toy/t/{i}": v for i, v in enumerate(outcomes)}
    return {"row": row, "seed": seed, "metric": metric, "steps": 30, "samples_per_step": 64,
            "value": sum(outcomes) / len(outcomes), "per_task": per_task}  # fmt: skip


def test_bootstrap_interval_holds_the_mean_and_shrinks_with_agreement(learning) -> None:
    tasks = [1.0] * 40 + [0.0] * 60
    low, high = learning.bootstrap([dict(enumerate(tasks))])
    assert low < 0.4 < high
    assert high - low < 0.25
    # a run that always gets the same outcome has no spread
    assert learning.bootstrap([dict(enumerate([1.0] * 10))]) == (1.0, 1.0)
    # disagreeing seeds widen the interval over agreeing ones
    one = dict(enumerate(tasks))
    other = dict(enumerate([0.0] * 40 + [1.0] * 60))
    same = learning.bootstrap([one, one])
    mixed = learning.bootstrap([one, other])
    assert mixed[1] - mixed[0] > same[1] - same[0]


def test_summarise_gives_the_promised_keys(learning) -> None:
    records = {
        "sft": [_record("sft", 0, [1.0, 0.0, 0.0, 1.0])],
        "stepcoder": [_record("stepcoder", s, [1.0, float(s % 2), 0.0, 1.0]) for s in (2, 0, 1)],
    }
    summary = learning.summarise(records)
    assert list(summary) == ["sft", "stepcoder"]  # the table's row order
    row = summary["stepcoder"]
    assert row["seeds"] == [0, 1, 2]
    assert row["per_seed"] == [0.5, 0.75, 0.5]
    assert row["mean"] == pytest.approx(sum(row["per_seed"]) / 3)
    assert row["metric"] == "pass@1" and row["steps"] == 30 and row["samples_per_step"] == 64
    low, high = row["ci"]
    assert 0.0 <= low <= row["mean"] <= high <= 1.0


def test_paired_difference_sees_a_change_that_overlapping_intervals_hide(learning) -> None:
    # 200 tasks, the start solves 80; the agent keeps them and solves 12 more
    start = [1.0] * 80 + [0.0] * 120
    agent = [1.0] * 92 + [0.0] * 108
    records = {
        "sft": [_record("sft", 0, start)],
        "grpo": [_record("grpo", s, agent) for s in (0, 1, 2)],
    }
    summary = learning.summarise(records)
    assert "delta" not in summary["sft"]  # the start is not compared with itself
    row = summary["grpo"]
    assert row["delta"] == pytest.approx(0.06)
    low, high = row["delta_ci"]
    assert 0.0 < low <= 0.06 <= high  # paired: the gain is clear of zero...
    assert row["ci"][0] < summary["sft"]["ci"][1]  # ...though the two intervals overlap
    # a row that swaps as many tasks as it gains has no clear difference
    swapped = [0.0] * 12 + [1.0] * 80 + [0.0] * 108
    mixed = learning.summarise({"sft": records["sft"], "grpo": [_record("grpo", 0, swapped)]})
    assert mixed["grpo"]["delta_ci"][0] < 0.0 < mixed["grpo"]["delta_ci"][1]


@pytest.fixture
def done(learning, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty results folder the benchmark writes into instead of benchmarks/results."""
    monkeypatch.setattr(learning, "RESULTS", tmp_path)
    (tmp_path / "learning").mkdir()
    return tmp_path / "learning"


def test_sft_continued_budget_is_the_median_stepcoder_time(learning, done: Path) -> None:
    assert learning._stepcoder_seconds(0, 30) is None
    for seed, seconds in ((0, 1000.0), (1, 400.0), (2, 250.0)):
        record = {"train_seconds": seconds, "budget_steps": 30}
        (done / f"stepcoder-seed{seed}.json").write_text(json.dumps(record))
    assert learning._stepcoder_seconds(0, 30) == 400.0
    assert learning._stepcoder_seconds(3, 30) is None  # that seed's stepcoder run is not done
    # runs at another budget neither count nor stand in
    (done / "stepcoder-seed3.json").write_text(
        json.dumps({"train_seconds": 5000.0, "budget_steps": 120})
    )
    assert learning._stepcoder_seconds(0, 30) == 400.0
    assert learning._stepcoder_seconds(3, 120) == 5000.0
    assert learning._stepcoder_seconds(0, 120) is None


def test_a_row_is_redone_at_another_budget_and_kept_at_its_own(
    learning, done: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    calls: list[tuple[str, int, int]] = []

    def fake_run_one(row, seed, args, sandbox):
        calls.append((row, seed, args.steps))
        if learning.ROWS[row][0] == "sft":
            raise learning._NotYet(f"the stepcoder row's seed {seed} at {args.steps} steps first")
        return _record(row, seed, [1.0, 0.0]) | {"steps": args.steps}

    monkeypatch.setattr(learning, "run_one", fake_run_one)
    argv = ["--rows", "sft_continued,vanilla_ppo", "--seeds", "0", "--sandbox", "process",
            "--runs", str(done.parent / "runs")]  # fmt: skip
    with pytest.warns(RuntimeWarning):  # the process sandbox's no-isolation warning
        learning.main([*argv, "--steps", "30"])
    # vanilla_ppo first (sft_continued waits for the stepcoder runs), which is not done here
    assert calls == [("vanilla_ppo", 0, 30), ("sft_continued", 0, 30)]
    assert "not yet: it needs the stepcoder row's seed 0 at 30 steps" in capsys.readouterr().out
    assert json.loads((done / "vanilla_ppo-seed0.json").read_text())["budget_steps"] == 30
    assert not (done / "sft_continued-seed0.json").exists()
    calls.clear()
    with pytest.warns(RuntimeWarning):
        learning.main([*argv, "--steps", "30"])  # done at this budget: kept
    assert calls == [("sft_continued", 0, 30)]
    calls.clear()
    with pytest.warns(RuntimeWarning):
        learning.main([*argv, "--steps", "60"])
    assert calls[0] == ("vanilla_ppo", 0, 60)
    assert "done at 30 steps, redone at 60" in capsys.readouterr().out
    assert json.loads((done / "vanilla_ppo-seed0.json").read_text())["budget_steps"] == 60


def test_results_of_another_start_stop_the_run(learning, done: Path) -> None:
    old = _record("sft", 0, [1.0, 0.0]) | {"start": "tiny-0000/preset-0000"}
    (done / "sft-seed0.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit, match=r"another start model or preset.*sft-seed0\.json"):
        learning.main(["--rows", "sft", "--seeds", "0", "--runs", str(done.parent / "runs")])
    assert json.loads((done / "sft-seed0.json").read_text()) == old  # untouched


def test_a_row_redone_at_more_steps_is_a_new_model(learning, tmp_path: Path) -> None:
    args = learning.argparse.Namespace(steps=120, rlef_steps=20)
    # its samples go to a file of their own (a samples file resumes only for its own model)
    assert learning.eval_path(tmp_path, "grpo", 1, args).name == "grpo-seed1-120steps.jsonl"
    assert learning.eval_path(tmp_path, "rlef", 1, args).name == "rlef-seed1-20steps.jsonl"
    assert learning.eval_path(tmp_path, "sft", 1, args).name == "sft-seed1.jsonl"
    # a continued SFT saved for another budget is not reused
    out = tmp_path / "sft_continued-seed0"
    out.mkdir()
    assert learning._finished_sft(out, 400.0) is None
    (out / "config.json").write_text("{}")
    (out / "sft_continued.json").write_text(json.dumps({"sft_steps": 250, "budget": 400.0}))
    assert learning._finished_sft(out, 400.0) == {"sft_steps": 250, "budget": 400.0}
    assert learning._finished_sft(out, 1600.0) is None


def test_headroom_names_a_run_that_is_not_there(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "learning_headroom", ROOT / "benchmarks/learning_headroom.py"
    )
    assert spec is not None and spec.loader is not None
    headroom = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(headroom)
    with pytest.raises(SystemExit) as exit_info:
        headroom.main(["--models", "sft,grpo-seed7", "--runs", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no run folder for grpo-seed7" in err and "benchmarks/learning.py" in err
    with pytest.raises(SystemExit):
        headroom.main(["--n", "0"])
    assert "--n must be at least 1" in capsys.readouterr().err
