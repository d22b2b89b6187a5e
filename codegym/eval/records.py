"""The results file of an evaluation: one JSON line per sample, written as each finishes.

The first line is a header, ``{"codegym_eval": 1, "config": {...}}``, with the settings that
shape the samples (policy, model, mode, sampling parameters, turns). Every other line is one
sample: one generated response and its execution. In multi mode a sample is one turn of a
rollout (RLEF counts every turn as a sample). Fields:

- ``task_id``, ``sample`` (the sample or rollout index, from 0), ``turn`` (from 1);
- ``response`` (the policy's text), ``code`` (the program that ran; ``""`` if none);
- ``verdict`` (the public tests' verdict in multi mode, every test's in single mode;
  ``no_code`` for a response without code), ``test_verdicts``, ``pass_ratio``;
- ``done`` (the sample ends its rollout; always true in single mode) and ``passed`` (the
  final code passed every test; ``null`` on turns that did not end the rollout);
- multi mode: ``feedback`` (the message that followed), ``private_verdict`` at the end;
- ``source``, ``difficulty``; ``generate_s`` (generation time, a batch's or concurrent
  request's time shared out over its responses) and ``execute_s`` (summed wall time of the
  tests).

Each line is flushed when written, so a run killed at any point leaves every finished sample
on disk; a line cut short by the kill is dropped when the file is resumed. Reading keeps the
last line for each ``(task_id, sample, turn)``, so a sample written again on resume replaces
the earlier one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from codegym.errors import UsageError

#: Version of the file layout, in the header.
FORMAT_VERSION = 1
#: Header keys that must match for a file to be resumed (they shape the samples).
RESUME_KEYS = ("mode", "policy", "model", "temperature", "top_p", "max_tokens", "max_turns")

#: ``(task_id, sample)``: one sample of single mode, one rollout of multi mode.
EpisodeKey = tuple[str, int]


def read_results(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Read a results file.

    Returns:
        ``(config, records, good_bytes)``: the header's config, the sample records in file
        order, and the length of the file up to its last complete line (a final line cut
        short by a kill is left out).

    Raises:
        UsageError: the file is not a codegym results file, or a line other than the last is
            not JSON.
    """
    path = Path(path)
    config: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    data = path.read_bytes()
    # json.dumps escapes newlines, so only the piece after the last newline can be unfinished
    good = data.rfind(b"\n") + 1
    for lineno, raw in enumerate(data[:good].splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            raise UsageError(
                f"line {lineno} of {path} is not JSON; the results file is damaged: "
                "move it away and start a new run, or fix that line"
            ) from None
        if config is None:
            if not isinstance(record, dict) or "codegym_eval" not in record:
                raise UsageError(
                    f"{path} is not a codegym eval results file (its first line has no "
                    '"codegym_eval" header); choose another --out'
                )
            config = dict(record.get("config", {}))
        else:
            records.append(record)
    if config is None:
        if good == 0:  # killed while writing the header: nothing to resume
            return {}, [], 0
        raise UsageError(f"{path} has no header line; it is not a codegym eval results file")
    return config, records, good


def episodes(records: Iterable[Mapping[str, Any]]) -> dict[EpisodeKey, list[dict[str, Any]]]:
    """The records of each rollout (sample), by turn, cut after the turn that ended it.

    The last record for each ``(task_id, sample, turn)`` wins.
    """
    latest: dict[tuple[str, int, int], dict[str, Any]] = {}
    for r in records:
        latest[(r["task_id"], int(r["sample"]), int(r["turn"]))] = dict(r)
    by_episode: dict[EpisodeKey, list[dict[str, Any]]] = {}
    for (task_id, sample, _turn), r in sorted(latest.items()):
        by_episode.setdefault((task_id, sample), []).append(r)
    for key, turns in by_episode.items():
        cut = next((i for i, r in enumerate(turns) if r.get("done")), len(turns) - 1)
        # turns must be 1, 2, ...; a gap (never written) drops what follows it
        contiguous = [r for i, r in enumerate(turns[: cut + 1]) if r["turn"] == i + 1]
        by_episode[key] = contiguous
    return {k: v for k, v in by_episode.items() if v}


def is_done(turns: list[dict[str, Any]]) -> bool:
    """Whether a rollout's records end it."""
    return bool(turns) and bool(turns[-1].get("done"))


def config_mismatch(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The resume keys on which two run configs differ, as ``"key: saved -> wanted"``."""
    return [
        f"{k}: {saved.get(k)!r} -> {wanted.get(k)!r}"
        for k in RESUME_KEYS
        if saved.get(k) != wanted.get(k)
    ]


class ResultsLog:
    """Appends sample records to a results file (or only keeps them, without a file).

    Args:
        path: The file, or ``None`` to keep records in memory only.
        config: The run's settings (the header).
        resume: Continue an existing file: its header must match ``config`` on
            :data:`RESUME_KEYS`, its records are loaded, a final line cut short is dropped.

    Raises:
        UsageError: the file exists and ``resume`` is false, or it cannot be resumed.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None, config: Mapping[str, Any], *, resume: bool
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.config = dict(config)
        self.records: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        if self.path is None:
            if resume:
                raise UsageError("resume needs the results file of the run: pass out=/--out")
            return
        exists = self.path.exists() and self.path.stat().st_size > 0
        saved: dict[str, Any] = {}
        good = 0
        if exists and resume:
            saved, self.records, good = read_results(self.path)
            exists = good > 0
        elif exists:
            raise UsageError(
                f"{self.path} already exists; pass --resume (resume=True) to continue that run, "
                "or choose another --out"
            )
        if exists:
            diff = config_mismatch(saved, self.config)
            if diff:
                raise UsageError(
                    f"cannot resume {self.path}: it was made with other settings "
                    f"({'; '.join(diff)}); rerun with the same settings or choose another --out"
                )
            with open(self.path, "r+b") as f:
                f.truncate(good)
            self._file = open(self.path, "a", encoding="utf-8")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
            self._write({"codegym_eval": FORMAT_VERSION, "config": self.config})

    def _write(self, obj: Mapping[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(obj) + "\n")
        self._file.flush()

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one sample record (written and flushed at once when there is a file)."""
        self.records.append(dict(record))
        if self._file is not None:
            self._write(record)

    def close(self) -> None:
        """Close the file. Safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "FORMAT_VERSION",
    "RESUME_KEYS",
    "ResultsLog",
    "config_mismatch",
    "episodes",
    "is_done",
    "read_results",
]
