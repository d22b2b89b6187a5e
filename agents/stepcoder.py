"""StepCoder (Dou et al. 2024, arXiv 2402.01391): PPO on CodeCompletion-v0 with CCCS and FGO.

- **CCCS** (curriculum of code-completion subtasks): the env's curriculum scheduler picks each
  task's stage (a prefix of the canonical solution to complete, from a short completion back
  to full generation) and moves a task one stage earlier once its moving-average pass rate
  exceeds the threshold. The scheduler's state is part of the trainer's checkpoint.
  ``cccs=False`` always asks for full generation.
- **FGO** (fine-grained optimisation): a response token whose characters all lie on lines of
  the completion that never executed during the tests is left out of the policy loss
  (:func:`fgo_keep_mask`). A program that did not compile keeps every token: its -1 must reach
  them. The value loss still sees every response token. ``fgo=False`` keeps every token.

Both off is vanilla PPO; ``advantage="grpo"`` swaps the critic for group-normalised scores.
The reward is the env's (``stepcoder``: +1 / -0.3 / -0.6 / -1) at the last response token,
with a per-token KL penalty to the reference policy.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from agents.config import PPOConfig
from agents.models import ActorCritic, Generation, SamplingParams
from agents.rollout import Episode, collect_completions, response_char_spans
from codegym.tasks.task import Task


@dataclass
class StepCoderConfig(PPOConfig):
    """StepCoder's knobs on top of :class:`~agents.config.PPOConfig` (the paper's defaults:
    policy lr 5e-7, critic lr 1.5e-6, KL 0.05, T 0.8, top-p 0.9, 16 samples per problem)."""

    algorithm_name: ClassVar[str] = "stepcoder"

    #: CCCS: the curriculum of completion stages (False: always full generation).
    cccs: bool = True
    #: FGO: drop unexecuted completion lines' tokens from the policy loss.
    fgo: bool = True
    #: Curriculum scope: ``"per_task"`` (each task moves on its own) or ``"global"``.
    curriculum: str = "per_task"
    #: Moving-average pass rate above which a task moves one stage earlier.
    curriculum_threshold: float = 0.8
    #: Episodes in the scheduler's moving average.
    curriculum_window: int = 16
    #: The env's reward: ``"stepcoder"``, ``"rltf"`` or ``"binary"``.
    reward: str = "stepcoder"


def fgo_keep_mask(
    tokenizer: Any,
    generation: Generation,
    program: str,
    completion_span: tuple[int, int],
    executed_lines: Sequence[int],
    verdict: str,
) -> list[bool]:
    """Which response tokens the policy loss keeps under FGO.

    A token is dropped when every character it wrote lies on a line of ``program`` (1-based)
    that is not in ``executed_lines``. Tokens that wrote no character (EOS, a stop string, text
    past the cut) are kept: they are decisions too. Everything is kept when the program did not
    compile (``verdict == "syntax_error"``) or when no line was traced at all (nothing to go by).

    Args:
        tokenizer: The policy's tokenizer.
        generation: The sampled response (its ``text`` is the completion that ran).
        program: The program that ran: prefix + completion.
        completion_span: ``(start, end)`` of the completion inside ``program``.
        executed_lines: Line numbers of ``program`` that ran during the tests.
        verdict: The program's overall verdict.

    Returns:
        One bool per token of ``generation.response_ids``.
    """
    n = len(generation.response_ids)
    if verdict == "syntax_error" or not executed_lines:
        return [True] * n
    executed = set(int(x) for x in executed_lines)
    # newline offsets of the program: line of char c = number of newlines before c, plus 1
    newlines = [i for i, ch in enumerate(program) if ch == "\n"]
    offset = completion_span[0]
    keep = []
    for start, end in response_char_spans(tokenizer, generation.response_ids, generation.text):
        if start == end:
            keep.append(True)
            continue
        first = bisect.bisect_left(newlines, offset + start) + 1
        last = bisect.bisect_left(newlines, offset + end - 1) + 1
        keep.append(any(line in executed for line in range(first, last + 1)))
    return keep


class StepCoder:
    """StepCoder's part of a run: its env, its rollouts and its curriculum state."""

    config: StepCoderConfig
    #: Single-turn episodes: the trainer scores them while the sandbox runs them.
    overlaps_execution = True

    def __init__(self, config: StepCoderConfig, tasks: Sequence[Task], sandbox: Any) -> None:
        self.config = config
        self.vec: Any = gym.make_vec(
            "codegym/CodeCompletion-v0",
            num_envs=config.rollouts_per_step,
            tasks=list(tasks),
            sandbox=sandbox,
            reward=config.reward,
            curriculum=config.curriculum if config.cccs else "off",
            curriculum_threshold=config.curriculum_threshold,
            curriculum_window=config.curriculum_window,
            trace_lines=config.fgo,
            infra_errors="skip",
        )

    @property
    def scheduler(self) -> Any:
        """The curriculum scheduler shared by the sub-envs (``None`` without CCCS)."""
        return getattr(self.vec.envs[0].unwrapped, "scheduler", None)

    def collect(
        self,
        ac: ActorCritic,
        task_ids: Sequence[str],
        params: SamplingParams,
        timings: dict[str, float] | None = None,
        while_executing: Callable[[list[Episode]], None] | None = None,
    ) -> tuple[list[Episode], int]:
        """One step's episodes: every task sampled ``samples_per_task`` times
        (``while_executing``: see :func:`~agents.rollout.collect_completions`)."""
        keep_fn = None
        if self.config.fgo:

            def keep_fn(gen: Generation, info: dict[str, Any]) -> list[bool]:
                return fgo_keep_mask(
                    ac.tokenizer,
                    gen,
                    str(info["program"]),
                    tuple(info["completion_span"]),
                    list(info["executed_lines"]),
                    str(info["verdict"]),
                )

        return collect_completions(
            self.vec,
            ac,
            task_ids,
            self.config.samples_per_task,
            params,
            batch_size=self.config.generation_batch_size,
            timings=timings,
            keep_fn=keep_fn,
            while_executing=while_executing,
        )

    @staticmethod
    def metrics(episodes: Sequence[Episode]) -> dict[str, float]:
        """``curriculum/stage`` (mean stages before full generation) and FGO's kept share."""
        if not episodes:
            return {}
        remaining = [e.stats["num_stages"] - 1 - e.stats["stage"] for e in episodes]
        kept = sum(
            sum(k for k, t in zip(e.policy_keep, e.turn_of_token, strict=False) if t >= 0)
            for e in episodes
        )
        total = sum(sum(t >= 0 for t in e.turn_of_token) for e in episodes)
        return {
            "curriculum/stage": float(np.mean([e.stats["stage"] for e in episodes])),
            "curriculum/stages_to_full": float(np.mean(remaining)),
            "curriculum/full_generation_rate": float(np.mean([r == 0 for r in remaining])),
            "fgo/kept_token_rate": kept / max(total, 1),
        }

    def state_dict(self) -> dict[str, Any]:
        """The curriculum's state (saved in checkpoints)."""
        sched = self.scheduler
        return {"scheduler": sched.state_dict() if sched is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the curriculum's state."""
        if state.get("scheduler") is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])

    def close(self) -> None:
        """Close the vector env (and the sandbox it created)."""
        self.vec.close()


__all__ = ["StepCoder", "StepCoderConfig", "fgo_keep_mask"]
