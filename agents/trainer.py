"""The PPO loop shared by StepCoder and RLEF: rollouts, advantages, update, checkpoints.

:func:`train` reads top to bottom. Each step has five numbered phases:

1. draw the step's tasks (a seeded generator, saved in checkpoints);
2. play the episodes through the algorithm's vector env (generation, then the sandbox);
3. score them with the models: old and reference log-probs, the critic's values;
4. rewards and advantages: token-level GAE (StepCoder, RLEF's ``token_value`` ablation),
   RLEF's turn-level value, or GRPO's group-normalised scores;
5. the PPO update: ``ppo_epochs`` passes of ``minibatches`` optimiser steps, each minibatch
   in micro-batches whose losses are normalised by the minibatch's global token count.

Then metrics (``metrics.csv``, TensorBoard, ``learning_curve.png``) and, every
``checkpoint_every`` steps, a checkpoint. The run directory (DESIGN.md §6)::

    OUT/config.json           the algorithm, the preset and every config field
    OUT/metrics.csv           one row per step, stable column names
    OUT/tb/                   TensorBoard events
    OUT/learning_curve.png
    OUT/checkpoint-N/policy/  save_pretrained of the policy (tokenizer included; LoRA merged)
    OUT/checkpoint-N/critic/  the value model (separate critic)
    OUT/checkpoint-N/trainer_state.pt   optimisers, schedulers, RNGs, curriculum, step

Under ``torchrun`` every rank plays ``tasks_per_step / world_size`` tasks, gradients are summed
over ranks (the losses are already divided by the global token count) and rank 0 alone writes.
Ctrl-C finishes the current step, writes a checkpoint and stops; ``--resume`` continues from
the newest checkpoint, exactly on CPU (N steps straight equal N/2 + resume + N/2).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import shutil
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from agents import core
from agents.config import PPOConfig
from agents.models import (
    ActorCritic,
    LoraSettings,
    SamplingParams,
    ValueModel,
    load_actor_critic,
    token_logprobs,
)
from agents.rlef import RLEF, RLEFConfig, turn_level_advantages
from agents.rollout import Batch, Episode, draw_tasks, score_batch, to_batch
from agents.stepcoder import StepCoder, StepCoderConfig
from codegym.errors import UsageError

log = logging.getLogger(__name__)

#: Algorithm name -> (config class, algorithm class).
ALGORITHMS: dict[str, tuple[type[PPOConfig], type[Any]]] = {
    "stepcoder": (StepCoderConfig, StepCoder),
    "rlef": (RLEFConfig, RLEF),
}

CHECKPOINT_PREFIX = "checkpoint-"


# --- distributed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` group (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def all_reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (a no-op alone)."""
        if self.world > 1:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor


def init_distributed(device: torch.device) -> Dist:
    """Join the ``torchrun`` group named by the environment (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return Dist(rank=torch.distributed.get_rank(), world=torch.distributed.get_world_size())


def global_whiten(
    x: torch.Tensor, mask: torch.Tensor, dist: Dist, eps: float = 1e-8
) -> torch.Tensor:
    """:func:`agents.core.masked_whiten` with the mean and variance of every rank's tokens."""
    if dist.world == 1:
        return core.masked_whiten(x, mask)
    m = mask.float()
    stats = torch.stack([(x * m).sum(), (x * x * m).sum(), m.sum()]).double()
    dist.all_reduce_(stats)
    total, total_sq, count = stats.tolist()
    mean = total / max(count, 1.0)
    var = (total_sq / max(count, 1.0) - mean * mean) * count / max(count - 1.0, 1.0)
    return ((x - mean) / math.sqrt(max(var, 0.0) + eps)) * m


# --- run directory -----------------------------------------------------------------------------


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """The run's checkpoints as ``(step, path)``, oldest first (only complete ones)."""
    found = []
    for path in out.glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = path.name[len(CHECKPOINT_PREFIX) :]
        if suffix.isdigit() and (path / "trainer_state.pt").exists():
            found.append((int(suffix), path))
    return sorted(found)


def check_run_dir(out: Path, algorithm: str, resume: bool) -> None:
    """Refuse to mix runs: another algorithm's run, a finished run without ``--resume``,
    ``--resume`` with nothing to resume. Nothing is written or removed here."""
    config_file = out / "config.json"
    if config_file.exists():
        try:
            previous = json.loads(config_file.read_text()).get("algorithm")
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous is not None and previous != algorithm:
            raise UsageError(f"{out} holds a {previous} run, not {algorithm}; choose another --out")
    if resume and not checkpoints(out):
        raise UsageError(
            f"--resume: {out} has no checkpoint to resume from; run without --resume to start"
        )
    if not resume and (checkpoints(out) or (out / "metrics.csv").exists()):
        raise UsageError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )


# --- Ctrl-C --------------------------------------------------------------------------------------


class StopFlag:
    """The first Ctrl-C asks the loop to stop after the current step (with a checkpoint);
    a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            log.warning("Ctrl-C: stopping after this step with a checkpoint (again to abort)")

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no handler, Ctrl-C raises as usual
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


# --- the trainer ---------------------------------------------------------------------------------


class Trainer:
    """Owns the models, optimisers, env and state of one run (see the module docstring)."""

    def __init__(
        self,
        config: PPOConfig,
        out: Path,
        *,
        resume: bool = False,
        preset: str = "",
        sandbox: Any = None,
    ) -> None:
        self.config, self.out = config, Path(out)
        self.algorithm_name = config.algorithm_name
        check_run_dir(self.out, self.algorithm_name, resume)
        device = _device(config.device)
        self.dist = init_distributed(device)
        if config.tasks_per_step % self.dist.world:
            raise UsageError(
                f"tasks_per_step={config.tasks_per_step} must be a multiple of the "
                f"{self.dist.world} torchrun ranks"
            )
        self.step = 0
        self.rows: list[dict[str, float]] = []
        # Every rank builds the same models (the critic's random head included), then samples
        # with a stream of its own.
        _seed_everything(config.seed)
        self.task_rng = np.random.default_rng(config.seed)  # the same draws on every rank
        self.shuffle_gen = torch.Generator().manual_seed(config.seed + 1 + self.dist.rank)

        tasks = _load_tasks(config)
        self.task_ids = [t.task_id for t in tasks]
        self.ac = load_actor_critic(
            config.model,
            critic="none" if config.advantage == "grpo" else config.critic,
            reference=config.kl_coef > 0,
            device=config.device,
            dtype=config.dtype,
            gradient_checkpointing=config.gradient_checkpointing,
            lora=LoraSettings(r=config.lora_r, alpha=config.lora_alpha) if config.lora_r else None,
        )
        for module in (self.ac.policy, self.ac.critic):
            if module is not None:
                disable_dropout(module)
        self._make_optimisers()
        _seed_everything(config.seed + self.dist.rank)
        _, algo_cls = ALGORITHMS[self.algorithm_name]
        local = self._local_config()
        self.algo = algo_cls(local, tasks, sandbox if sandbox is not None else config.sandbox)
        #: Whether phase 3 runs while the sandbox executes (see ``overlap_execution``).
        self.overlap_execution = self.algo.overlaps_execution and (
            config.overlap_execution == "on"
            or (config.overlap_execution == "auto" and self.ac.device.type != "cpu")
        )
        self.params = SamplingParams(
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
        )
        if resume:
            self._load_checkpoint(checkpoints(self.out)[-1][1])
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            info = {"algorithm": self.algorithm_name, "preset": preset, **config.to_dict()}
            (self.out / "config.json").write_text(json.dumps(info, indent=2) + "\n")
        self.writer = _tensorboard(self.out / "tb", self.step) if self.dist.main else None

    def _local_config(self) -> PPOConfig:
        """This rank's share of the step's tasks."""
        if self.dist.world == 1:
            return self.config
        import dataclasses

        values = {
            f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config) if f.init
        }
        values["tasks_per_step"] = self.config.tasks_per_step // self.dist.world
        return type(self.config)(**values)

    def _make_optimisers(self) -> None:
        cfg, ac = self.config, self.ac
        groups: list[dict[str, Any]] = [
            {"params": [p for p in ac.policy.parameters() if p.requires_grad], "lr": cfg.policy_lr}
        ]
        if ac.value_head is not None:  # shared critic: its head trains with the policy
            groups.append({"params": list(ac.value_head.parameters()), "lr": cfg.critic_lr})
        self.policy_opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        self.critic_opt = (
            torch.optim.AdamW(
                [p for p in ac.critic.parameters() if p.requires_grad],
                lr=cfg.critic_lr,
                weight_decay=cfg.weight_decay,
            )
            if ac.critic is not None
            else None
        )
        warmup = max(cfg.warmup_steps, 0)

        def ramp(i: int) -> float:
            return min(1.0, (i + 1) / warmup) if warmup else 1.0

        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(self.policy_opt, ramp)]
        if self.critic_opt is not None:
            self.schedulers.append(torch.optim.lr_scheduler.LambdaLR(self.critic_opt, ramp))

    # ---- one step ------------------------------------------------------------------------------

    def run_step(self) -> dict[str, float]:
        """One PPO step (phases 1-5); returns its metrics."""
        cfg, times = self.config, {"time/generate": 0.0, "time/execute": 0.0}
        t0 = time.perf_counter()
        # 1. draw the step's tasks; every rank draws the same, then takes its slice
        drawn = draw_tasks(self.task_rng, self.task_ids, cfg.tasks_per_step)
        share = cfg.tasks_per_step // self.dist.world
        mine = drawn[self.dist.rank * share : (self.dist.rank + 1) * share]
        # 2. play the episodes; 3. score them with the models. Where the algorithm allows
        # (single-turn episodes, whose tokens are all known before they run), phase 3 runs
        # while the sandbox executes the programs: scoring needs only the tokens.
        self.ac.policy.eval()
        pad = self.ac.tokenizer.pad_token_id
        early: list[Batch] = []

        def score(episodes: Sequence[Episode]) -> Batch:
            t1 = time.perf_counter()
            batch = score_batch(
                self.ac, to_batch(episodes, pad), temperature=cfg.temperature,
                micro_batch_size=cfg.micro_batch_size,
            )  # fmt: skip
            times["time/score"] = time.perf_counter() - t1
            return batch

        overlap = {"while_executing": lambda e: early.append(score(e))}
        episodes, dropped = self.algo.collect(
            self.ac, mine, self.params, times, **(overlap if self.overlap_execution else {})
        )
        times["time/rollout"] = time.perf_counter() - t0
        metrics = self._episode_metrics(episodes, dropped)
        if not episodes:
            log.warning("step %d: every episode hit an infra_error; no update", self.step + 1)
            return metrics | times
        if early and not dropped:
            # the same episodes, now with rewards and FGO masks: models' numbers carry over
            batch = to_batch(episodes, pad)
            batch.old_logprobs = early[0].old_logprobs
            batch.ref_logprobs = early[0].ref_logprobs
            batch.old_values = early[0].old_values
        else:  # sequential, or episodes dropped for an infra_error: score what is left
            batch = score(episodes)
        # 4. rewards and advantages
        batch, objective = self._advantages(batch)
        # 5. the PPO update
        t2 = time.perf_counter()
        train_stats = self._update(batch)
        times["time/update"] = time.perf_counter() - t2
        times["time/step"] = time.perf_counter() - t0
        generated = float(batch.action_mask.sum())
        throughput = {
            "throughput/generated_tokens_per_s": generated / max(times["time/rollout"], 1e-9),
            "throughput/episodes_per_s": len(episodes) / max(times["time/step"], 1e-9),
        }
        return metrics | objective | train_stats | times | throughput

    def _episode_metrics(self, episodes: Sequence[Episode], dropped: int) -> dict[str, float]:
        total = len(episodes) + dropped
        out = {
            "env/pass_rate": float(np.mean([e.stats["passed"] for e in episodes]))
            if episodes
            else 0.0,
            "env/reward_mean": float(np.mean([sum(e.turn_rewards) for e in episodes]))
            if episodes
            else 0.0,
            "env/infra_error_rate": dropped / max(total, 1),
            "env/response_tokens": float(
                np.mean([sum(t >= 0 for t in e.turn_of_token) for e in episodes])
            )
            if episodes
            else 0.0,
        }
        verdicts = Counter(e.stats["verdict"] for e in episodes if "verdict" in e.stats)
        for verdict, count in verdicts.items():
            out[f"env/verdict/{verdict}"] = count / max(len(episodes), 1)
        return out | self.algo.metrics(episodes)

    def _advantages(self, batch: Batch) -> tuple[Batch, dict[str, float]]:
        """Phase 4: advantages, returns and the value-loss mask, by the config's estimator."""
        cfg = self.config
        assert batch.old_logprobs is not None and batch.ref_logprobs is not None
        assert batch.old_values is not None
        kl = core.kl_penalty(batch.old_logprobs, batch.ref_logprobs, "k1") * batch.action_mask
        objective = {
            "objective/kl": float(kl.sum(1).mean()),
            "objective/kl_per_token": float(core.masked_mean(kl, batch.action_mask)),
        }
        if cfg.advantage == "grpo":
            adv = core.grpo_advantages(batch.scores, batch.groups)
            batch.advantages = adv[:, None] * batch.action_mask
            batch.returns = torch.zeros_like(batch.action_mask)
            batch.value_mask = torch.zeros_like(batch.action_mask)
        elif isinstance(cfg, RLEFConfig) and cfg.turn_level:
            batch = turn_level_advantages(batch, cfg.kl_coef, whiten=False)
            if cfg.whiten_advantages:  # over every rank's turns
                first = batch.value_mask
                assert first is not None and batch.advantages is not None
                turn_adv = global_whiten(batch.advantages, first, self.dist)
                # re-broadcast the whitened per-turn value over each turn's tokens
                k = batch.turn_rewards.shape[1]
                per_turn = core.values_at_turn_starts(turn_adv, batch.turn_of_token, k)
                batch.advantages = core.broadcast_turns(per_turn, batch.turn_of_token)
        else:
            rewards = -cfg.kl_coef * kl
            last = _last_token_of_turns(batch.turn_of_token)
            rewards = rewards + core.broadcast_turns(batch.turn_rewards, batch.turn_of_token) * last
            values = cast(torch.Tensor, batch.old_values)  # filled in by phase 3
            adv, ret = core.gae(rewards, values, batch.action_mask, cfg.gamma, cfg.lam)
            batch.advantages, batch.returns, batch.value_mask = adv, ret, batch.action_mask
            if cfg.whiten_advantages:
                batch.advantages = global_whiten(batch.advantages, batch.action_mask, self.dist)
        return batch, objective

    def _update(self, batch: Batch) -> dict[str, float]:
        """Phase 5: ``ppo_epochs`` x ``minibatches`` optimiser steps."""
        cfg, ac = self.config, self.ac
        ac.policy.train()
        sums: defaultdict[str, float] = defaultdict(float)
        n_updates = 0
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(len(batch), generator=self.shuffle_gen)
            for index in order.chunk(cfg.minibatches):
                stats = self._minibatch(batch.select(index))
                for key, value in stats.items():
                    sums[key] += value
                n_updates += 1
        for sched in self.schedulers:
            sched.step()
        return {k: v / max(n_updates, 1) for k, v in sums.items()}

    def _minibatch(self, mb: Batch) -> dict[str, float]:
        cfg, ac = self.config, self.ac
        n_pol = core.token_count(mb.policy_mask)
        assert mb.value_mask is not None
        n_val = core.token_count(mb.value_mask)
        has_critic = ac.critic is not None or ac.value_head is not None
        stats: defaultdict[str, float] = defaultdict(float)
        # Similar lengths share a micro-batch (less padding); the sum over micro-batches is
        # the same in any order.
        mb = mb.select(mb.attention_mask.sum(dim=1).argsort())
        for start in range(0, len(mb), cfg.micro_batch_size):
            micro = mb.select(slice(start, start + cfg.micro_batch_size)).trimmed().to(ac.device)
            assert micro.old_logprobs is not None and micro.advantages is not None
            logp, entropy = token_logprobs(
                ac.policy,
                micro.input_ids,
                micro.attention_mask,
                temperature=cfg.temperature,
                with_entropy=True,
            )
            loss, pstats = core.policy_loss(
                logp, micro.old_logprobs, micro.advantages, micro.policy_mask, cfg.clip_eps, n_pol
            )
            stats["train/policy_loss"] += float(loss.detach())
            stats["train/clipfrac"] += float(pstats.clipfrac)
            stats["train/approx_kl"] += float(pstats.approx_kl)
            stats["train/entropy"] += float(
                core.masked_sum(entropy.detach(), micro.policy_mask) / n_pol
            )
            if cfg.advantage == "grpo" and cfg.kl_coef > 0 and micro.ref_logprobs is not None:
                kl = core.kl_penalty(logp, micro.ref_logprobs, cfg.kl_estimator)
                loss = loss + cfg.kl_coef * core.masked_sum(kl, micro.policy_mask) / n_pol
            if cfg.entropy_coef:
                loss = loss - cfg.entropy_coef * core.masked_sum(entropy, micro.policy_mask) / n_pol
            if has_critic and float(n_val) > 0:
                assert micro.old_values is not None and micro.returns is not None
                assert micro.value_mask is not None
                values = ac.values(micro.input_ids, micro.attention_mask).float()
                vloss, vclip = core.value_loss(
                    values,
                    micro.old_values,
                    micro.returns,
                    micro.value_mask,
                    cfg.value_clip_eps,
                    n_val,
                )
                stats["train/value_loss"] += float(vloss.detach())
                stats["train/value_clipfrac"] += float(vclip)
                loss = loss + (cfg.value_coef * vloss if ac.value_head is not None else vloss)
            loss.backward()
        stats["train/grad_norm"] = self._optimiser_step()
        return dict(stats)

    def _optimiser_step(self) -> float:
        """Sum gradients over ranks, clip, step, zero; returns the policy's gradient norm."""
        cfg = self.config
        norms = []
        for opt in (self.policy_opt, self.critic_opt):
            if opt is None:
                continue
            params = [p for g in opt.param_groups for p in g["params"]]
            for p in params:
                if p.grad is not None:
                    self.dist.all_reduce_(p.grad)
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)))
            opt.step()
            opt.zero_grad(set_to_none=True)
        return norms[0] if norms else 0.0

    # ---- the loop --------------------------------------------------------------------------------

    def fit(self, *, progress: bool = True) -> Path | None:
        """Run the remaining steps; returns the last checkpoint written."""
        from tqdm.auto import tqdm

        cfg, last_saved = self.config, None
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (progress and self.dist.main),
            desc=f"{self.algorithm_name}",
            unit="step",
        )
        stop = StopFlag()
        with stop.installed():
            while self.step < cfg.steps:
                metrics = self.run_step()
                self.step += 1
                self._log(metrics)
                bar.update(1)
                bar.set_postfix(
                    pass_rate=f"{metrics.get('env/pass_rate', 0):.2f}",
                    kl=f"{metrics.get('objective/kl', 0):.3f}",
                )
                due = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
                if due or stop.requested:
                    last_saved = self.save_checkpoint()
                if stop.requested:
                    break
        bar.close()
        self._check_ranks_agree()
        if self.dist.main:
            plot_learning_curve(self.rows, self.out / "learning_curve.png", self.algorithm_name)
        if stop.requested and self.step < cfg.steps:
            raise KeyboardInterrupt(
                f"stopped at step {self.step}; {last_saved} written; continue with --resume"
            )
        return last_saved

    def _check_ranks_agree(self) -> None:
        """Under torchrun, every rank must hold the same policy: compare exact checksums."""
        if self.dist.world == 1:
            return
        with torch.no_grad():
            mine = sum(
                float(p.double().sum()) + float(p.double().abs().sum())
                for p in self.ac.policy.parameters()
            )
        sums: list[Any] = [None] * self.dist.world
        torch.distributed.all_gather_object(sums, mine)
        if len(set(sums)) != 1:
            raise RuntimeError(f"ranks ended with different policy weights: checksums {sums}")
        if self.dist.main:
            print(f"policy weights identical on {self.dist.world} ranks (checksum {sums[0]!r})")

    def _log(self, metrics: dict[str, float]) -> None:
        if self.dist.world > 1:  # every rank's mean (equal shares of the step)
            gathered: list[Any] = [None] * self.dist.world
            torch.distributed.all_gather_object(gathered, sorted(metrics))
            keys = sorted({k for ks in gathered for k in ks})
            metrics = {k: metrics.get(k, 0.0) for k in keys}
            values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64)
            self.dist.all_reduce_(values)
            metrics = dict(zip(keys, (values / self.dist.world).tolist(), strict=True))
        row = {"step": float(self.step), **metrics}
        self.rows.append(row)
        if not self.dist.main:
            return
        _write_csv(self.out / "metrics.csv", self.rows)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, self.step)
            self.writer.flush()

    # ---- checkpoints ---------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint-<step>/`` atomically (rank 0 the models and state, each rank
        its own RNGs) and prune old ones."""
        path = self.out / f"{CHECKPOINT_PREFIX}{self.step}"
        if self.dist.main:
            tmp = self.out / f".{CHECKPOINT_PREFIX}{self.step}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            save_models(self.ac, tmp)
            state = {
                "step": self.step,
                "algorithm": self.algorithm_name,
                "policy_opt": self.policy_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict() if self.critic_opt else None,
                "schedulers": [s.state_dict() for s in self.schedulers],
                "task_rng": self.task_rng.bit_generator.state,
                "algo": self.algo.state_dict(),
                "rows": self.rows,
            }
            torch.save(_rng_state(self.shuffle_gen), tmp / "rng-0.pt")
            torch.save(state, tmp / "trainer_state.pt")  # last: marks the checkpoint complete
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        self.dist.barrier()
        if not self.dist.main:
            torch.save(_rng_state(self.shuffle_gen), path / f"rng-{self.dist.rank}.pt")
        self.dist.barrier()
        if self.dist.main and self.config.keep_checkpoints:
            for _, old in checkpoints(self.out)[: -self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        return path

    def _load_checkpoint(self, path: Path) -> None:
        state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
        if state.get("algorithm") != self.algorithm_name:
            raise UsageError(
                f"{path} is a {state.get('algorithm')} checkpoint, not {self.algorithm_name}"
            )
        load_models(self.ac, path)
        self.policy_opt.load_state_dict(state["policy_opt"])
        if self.critic_opt is not None and state["critic_opt"] is not None:
            self.critic_opt.load_state_dict(state["critic_opt"])
        for sched, sched_state in zip(self.schedulers, state["schedulers"], strict=False):
            sched.load_state_dict(sched_state)
        self.task_rng.bit_generator.state = state["task_rng"]
        self.algo.load_state_dict(state["algo"])
        self.rows = [r for r in state["rows"] if r["step"] <= state["step"]]
        self.step = int(state["step"])
        rng_file = path / f"rng-{self.dist.rank}.pt"
        if rng_file.exists():
            _set_rng_state(torch.load(rng_file, weights_only=False), self.shuffle_gen)
        log.info("resumed from %s (step %d)", path, self.step)

    def close(self) -> None:
        """Close the env, the sandbox it made and the TensorBoard writer."""
        self.algo.close()
        if self.writer is not None:
            self.writer.close()


# --- helpers -------------------------------------------------------------------------------------


def save_models(ac: ActorCritic, path: Path) -> None:
    """``policy/`` as ``save_pretrained`` writes it (tokenizer included; a LoRA policy merged,
    its adapter also in ``adapter/`` for resuming), ``critic/`` or ``value_head.pt``."""
    policy = ac.policy
    if hasattr(policy, "peft_config"):
        policy.save_pretrained(path / "adapter")
        import copy

        policy = copy.deepcopy(policy).merge_and_unload()
    policy.save_pretrained(path / "policy")
    ac.tokenizer.save_pretrained(path / "policy")
    if ac.critic is not None:
        ac.critic.save_pretrained(path / "critic")
    if ac.value_head is not None:
        torch.save(ac.value_head.state_dict(), path / "value_head.pt")


def load_models(ac: ActorCritic, path: Path) -> None:
    """Load :func:`save_models`' weights into ``ac`` (the reference stays the original)."""
    if hasattr(ac.policy, "peft_config"):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(
            ac.policy, load_file(path / "adapter" / "adapter_model.safetensors")
        )
    else:
        from transformers import AutoModelForCausalLM

        saved = AutoModelForCausalLM.from_pretrained(path / "policy", dtype=ac.policy.dtype)
        ac.policy.load_state_dict(saved.state_dict())
    if ac.critic is not None:
        critic = ValueModel.from_pretrained(path / "critic")
        ac.critic.load_state_dict(critic.state_dict())
    if ac.value_head is not None:
        ac.value_head.load_state_dict(torch.load(path / "value_head.pt", map_location=ac.device))


def disable_dropout(module: torch.nn.Module) -> None:
    """Set every dropout probability to 0: PPO's ratio must compare the same function the
    rollout sampled from (TRL and verl do the same)."""
    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0


def _last_token_of_turns(turn_of_token: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` float mask of each response's last token."""
    counted = turn_of_token >= 0
    nxt = torch.full_like(turn_of_token, -1)
    nxt[:, :-1] = turn_of_token[:, 1:]
    return (counted & (nxt != turn_of_token)).float()


def _device(name: str) -> torch.device:
    from agents.models import resolve_device

    return resolve_device(name)


def _load_tasks(config: PPOConfig) -> list[Any]:
    from codegym.tasks import load_tasks

    kwargs: dict[str, Any] = {}
    if config.task_split:
        kwargs["split"] = config.task_split
    if config.num_tasks:
        kwargs["n"] = config.num_tasks
    if config.tasks == "toy":
        kwargs["seed"] = 0  # the training suite is fixed; the run's seed draws from it
    tasks = load_tasks(config.tasks, **kwargs)
    if not tasks:
        raise UsageError(f"--tasks {config.tasks}: no tasks loaded")
    return list(tasks)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "shuffle": gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    gen.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tensorboard(path: Path, step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in the train extra; a run without it still logs CSV
        log.warning("tensorboard is not installed: no event files (pip install 'codegym[train]')")
        return None
    return SummaryWriter(str(path), purge_step=step + 1 if step else None)


def _write_csv(path: Path, rows: Sequence[dict[str, float]]) -> None:
    """Rewrite ``metrics.csv`` whole (columns may appear as a run goes on); atomic."""
    columns = ["step", *sorted({k for r in rows for k in r} - {"step"})]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    tmp.replace(path)


def plot_learning_curve(rows: Sequence[dict[str, float]], path: Path, title: str) -> None:
    """``learning_curve.png``: pass rate, reward, KL and losses against steps."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("env/pass_rate", "pass rate"),
        ("env/reward_mean", "mean reward"),
        ("objective/kl", "KL to reference (per sequence)"),
        ("train/value_loss", "value loss"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    steps = [r["step"] for r in rows]
    for ax, (key, label) in zip(axes, panels, strict=True):
        ys = [r.get(key, float("nan")) for r in rows]
        ax.plot(steps, ys, lw=1, alpha=0.5)
        if len(ys) >= 5:
            window = max(2, len(ys) // 10)
            smooth = np.convolve(np.nan_to_num(ys), np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, lw=2)
        ax.set_title(label)
        ax.set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def train(
    config: PPOConfig,
    out: str | Path,
    *,
    resume: bool = False,
    preset: str = "",
    progress: bool = True,
    sandbox: Any = None,
) -> Path | None:
    """Train ``config``'s algorithm into ``out``; returns the last checkpoint written.

    ``sandbox``: a :class:`~codegym.sandbox.Sandbox` to use instead of the one
    ``config.sandbox`` names (shared, not closed here).
    """
    trainer = Trainer(config, Path(out), resume=resume, preset=preset, sandbox=sandbox)
    try:
        return trainer.fit(progress=progress)
    finally:
        trainer.close()


__all__ = ["ALGORITHMS", "Trainer", "check_run_dir", "checkpoints", "plot_learning_curve", "train"]
