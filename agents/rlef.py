"""RLEF (Gehring et al. 2024, arXiv 2410.02089): multi-turn PPO from execution feedback.

The policy plays MultiTurnRepair-v0: it answers the problem, sees the failures of its code on
the public tests, and tries again, up to ``max_turns`` times; the final code is scored on the
private tests (+1 / -1, -0.2 for a response without code). The maths, to the paper:

- the loss counts only model-written tokens (prompts and feedback are masked from both);
- one value per turn, ``V(c_t)``, read at the last prompt token before response ``t``;
- ``R_t = r_t - beta * mean_{tokens of response t}(log pi - log ref)`` (the geometric-mean
  KL, so a long response is not penalised more than a short one at the same drift);
- ``A_t = sum_{i >= t} R_i - V(c_t)`` (gamma 1), normalised over the batch, shared by every
  token of response ``t``; value loss clipped (0.2) on turns, policy clip 0.2.

Ablations: ``single_turn`` (one attempt, same RL), ``token_value`` (a token-level value with
GAE, the paper's ablation), ``feedback=False`` (the next turn sees only "Give it another try.").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch

from agents import core
from agents.config import PPOConfig
from agents.models import ActorCritic, SamplingParams
from agents.rollout import Batch, Episode, collect_conversations
from codegym.tasks.task import Task


@dataclass
class RLEFConfig(PPOConfig):
    """RLEF's knobs on top of :class:`~agents.config.PPOConfig` (the paper's defaults: lr 2e-7,
    weight decay 0.1, clip 0.2, value clip 0.2, temperature 1.0, KL 0.05)."""

    algorithm_name: ClassVar[str] = "rlef"

    policy_lr: float = 2e-7
    critic_lr: float = 2e-7
    weight_decay: float = 0.1
    temperature: float = 1.0
    top_p: float = 1.0
    critic: Literal["separate", "shared"] = "separate"

    #: Attempts per episode (RLEF: 3).
    max_turns: int = 3
    #: Ablation: one attempt per episode (the same RL otherwise).
    single_turn: bool = False
    #: Ablation: a token-level value function with GAE instead of the turn-level value.
    token_value: bool = False
    #: False: the next turn sees only "Give it another try." (ablation).
    feedback: bool = True
    #: Longest conversation in tokens (an episode that would outgrow it ends early).
    max_length: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.single_turn:
            self.max_turns = 1

    @property
    def turn_level(self) -> bool:
        """Whether advantages come from the turn-level value (RLEF) rather than GAE or GRPO."""
        return self.advantage == "gae" and not self.token_value


def turn_level_advantages(batch: Batch, kl_coef: float, whiten: bool = True) -> Batch:
    """Fill in RLEF's turn-level ``advantages``, ``returns`` and ``value_mask``.

    Needs ``old_logprobs``, ``ref_logprobs`` and ``old_values``. The value loss is taken at
    each response's first token only (where ``V(c_t)`` is aligned), against ``G_t``.
    """
    assert batch.old_logprobs is not None and batch.ref_logprobs is not None
    assert batch.old_values is not None
    k = batch.turn_rewards.shape[1]
    kl = core.turn_kl(batch.old_logprobs, batch.ref_logprobs, batch.turn_of_token, k)
    rewards = batch.turn_rewards - kl_coef * kl
    returns = core.turn_returns(rewards, batch.turn_mask)
    values = core.values_at_turn_starts(batch.old_values, batch.turn_of_token, k)
    adv = core.turn_advantages(returns, values, batch.turn_mask)
    if whiten:
        adv = core.masked_whiten(adv, batch.turn_mask)
    batch.advantages = core.broadcast_turns(adv, batch.turn_of_token)
    batch.returns = core.broadcast_turns(returns, batch.turn_of_token)
    batch.value_mask = first_token_of_turns(batch.turn_of_token)
    return batch


def first_token_of_turns(turn_of_token: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` float mask of each response's first token."""
    counted = turn_of_token >= 0
    prev = torch.full_like(turn_of_token, -1)
    prev[:, 1:] = turn_of_token[:, :-1]
    return (counted & (prev != turn_of_token)).float()


class RLEF:
    """RLEF's part of a run: its env and its rollouts."""

    #: Multi-turn: each turn's generation waits for the previous turn's feedback.
    overlaps_execution = False

    config: RLEFConfig

    def __init__(self, config: RLEFConfig, tasks: Sequence[Task], sandbox: Any) -> None:
        self.config = config
        self.vec: Any = gym.make_vec(
            "codegym/MultiTurnRepair-v0",
            num_envs=config.rollouts_per_step,
            tasks=list(tasks),
            sandbox=sandbox,
            max_turns=config.max_turns,
            feedback=config.feedback,
            infra_errors="skip",
        )

    def collect(
        self,
        ac: ActorCritic,
        task_ids: Sequence[str],
        params: SamplingParams,
        timings: dict[str, float] | None = None,
    ) -> tuple[list[Episode], int]:
        """One step's conversations: every task played ``samples_per_task`` times."""
        return collect_conversations(
            self.vec,
            ac,
            task_ids,
            self.config.samples_per_task,
            params,
            batch_size=self.config.generation_batch_size,
            timings=timings,
            max_turns=self.config.max_turns,
            max_length=self.config.max_length,
        )

    @staticmethod
    def metrics(episodes: Sequence[Episode]) -> dict[str, float]:
        """``env/turns``, first-turn and final pass rates, repair and no-code rates."""
        if not episodes:
            return {}
        first = [bool(e.stats["turn_passed"][:1] == [True]) for e in episodes]
        final = [bool(e.stats["passed"]) for e in episodes]
        return {
            "env/turns": float(np.mean([e.num_turns for e in episodes])),
            "env/first_turn_pass_rate": float(np.mean(first)),
            "env/final_pass_rate": float(np.mean(final)),
            "env/repair_rate": float(
                np.mean([f and not s for s, f in zip(first, final, strict=False)])
            ),
            "env/no_code_rate": float(
                sum(e.stats["no_code"] for e in episodes)
                / max(1, sum(e.num_turns for e in episodes))
            ),
            "env/cut_rate": float(np.mean([bool(e.stats["cut"]) for e in episodes])),
        }

    def state_dict(self) -> dict[str, Any]:
        """Nothing beyond the trainer's state (the env keeps none across steps)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""

    def close(self) -> None:
        """Close the vector env (and the sandbox it created)."""
        self.vec.close()


__all__ = ["RLEF", "RLEFConfig", "first_token_of_turns", "turn_level_advantages"]
