"""The streamed results file: header, cut-short last line, resume checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codegym.errors import UsageError
from codegym.eval.records import ResultsLog, episodes, read_results

CONFIG = {"mode": "single", "policy": "python:m:f", "model": None, "temperature": 0.2,
          "top_p": 0.95, "max_tokens": 64, "max_turns": 1}  # fmt: skip


def _sample(i: int) -> dict:
    return {"task_id": "t", "sample": i, "turn": 1, "done": True, "passed": i % 2 == 0,
            "verdict": "passed"}  # fmt: skip


def test_records_stream_and_a_cut_line_is_dropped_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsLog(path, CONFIG, resume=False) as log:
        log.append(_sample(0))
        log.append(_sample(1))
        # flushed at once: readable while the log is open
        assert len(read_results(path)[1]) == 2
    with path.open("a") as f:
        f.write('{"task_id": "t", "sample": 2, "tu')  # a write cut short by a kill
    config, records, good = read_results(path)
    assert config == CONFIG and len(records) == 2 and good < path.stat().st_size
    with ResultsLog(path, CONFIG, resume=True) as log:
        assert [r["sample"] for r in log.records] == [0, 1]
        log.append(_sample(2))
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line) for line in lines)


def test_an_existing_file_needs_resume_and_the_same_settings(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    ResultsLog(path, CONFIG, resume=False).close()
    with pytest.raises(UsageError, match="already exists; pass --resume"):
        ResultsLog(path, CONFIG, resume=False)
    with pytest.raises(UsageError, match=r"other settings \(temperature: 0.2 -> 0.8\)"):
        ResultsLog(path, {**CONFIG, "temperature": 0.8}, resume=True)
    # n is not a resume key: a run can be extended to more samples
    ResultsLog(path, {**CONFIG, "n": 10}, resume=True).close()


def test_resume_of_a_missing_or_empty_file_starts_a_new_run(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    ResultsLog(path, CONFIG, resume=True).close()
    assert read_results(path)[0] == CONFIG
    half = tmp_path / "half.jsonl"
    half.write_text('{"codegym_ev')  # killed while writing the header
    ResultsLog(half, CONFIG, resume=True).close()
    assert read_results(half)[0] == CONFIG


def test_a_foreign_or_damaged_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "samples.jsonl"
    other.write_text('{"task_id": "HumanEval/0", "completion": "x"}\n')
    with pytest.raises(UsageError, match="not a codegym eval results file"):
        ResultsLog(other, CONFIG, resume=True)
    damaged = tmp_path / "d.jsonl"
    damaged.write_text(json.dumps({"codegym_eval": 1, "config": CONFIG}) + "\nnot json\n{}\n")
    with pytest.raises(UsageError, match=r"line 2 .* is not JSON"):
        read_results(damaged)
    with pytest.raises(UsageError, match="resume needs the results file"):
        ResultsLog(None, CONFIG, resume=True)


def test_episodes_cut_after_the_end_and_at_gaps() -> None:
    recs = [
        {"task_id": "t", "sample": 0, "turn": 1, "done": False},
        {"task_id": "t", "sample": 0, "turn": 2, "done": True},
        {"task_id": "t", "sample": 0, "turn": 3, "done": True},  # after the end: ignored
        {"task_id": "t", "sample": 1, "turn": 2, "done": False},  # turn 1 missing: dropped
    ]
    eps = episodes(recs)
    assert [r["turn"] for r in eps[("t", 0)]] == [1, 2]
    assert ("t", 1) not in eps
