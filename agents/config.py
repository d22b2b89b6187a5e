"""Configuration shared by the PPO agents: one flat dataclass per algorithm, read from TOML
and ``key=value`` overrides, with per-model presets.

:class:`PPOConfig` holds every knob the PPO machinery has; :class:`~agents.stepcoder.
StepCoderConfig` and :class:`~agents.rlef.RLEFConfig` add their own fields and defaults. The
defaults are the papers' values for real models; :func:`preset_for` gives the tiny model its
own (a 3.5M-parameter model needs a far larger learning rate), printed at the start of a run.

Precedence, lowest first: dataclass defaults, the model's preset, ``--config FILE.toml``,
``--set key=value``, explicit CLI flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_type_hints

import tomllib

from codegym.errors import UsageError


@dataclass
class PPOConfig:
    """Knobs of the PPO machinery shared by StepCoder and RLEF.

    A rollout step draws ``tasks_per_step`` tasks from the training suite and samples each
    ``samples_per_task`` times: ``rollouts_per_step = tasks_per_step * samples_per_task``
    episodes per step (summed over all ranks under torchrun). The update then runs
    ``ppo_epochs`` passes over them in ``minibatches`` optimiser steps each; a minibatch is
    processed in micro-batches of at most ``micro_batch_size`` sequences (gradient
    accumulation; results do not depend on it).
    """

    #: The algorithm's name, as ``codegym train`` spells it (set by each subclass).
    algorithm_name: ClassVar[str] = "ppo"

    # --- what to train, on what -------------------------------------------------------------
    #: ``"tiny"`` (the bundled model), a local folder saved with ``save_pretrained``, or a
    #: Hugging Face hub name.
    model: str = "tiny"
    #: A ``codegym.tasks.load_tasks`` source (``"toy"``, ``"apps+"``, a ``.jsonl`` path, ...).
    tasks: str = "toy"
    #: Split of ``tasks`` to train on (toy: ``"train"``; others: whatever the loader accepts,
    #: or ``""`` for the loader's default).
    task_split: str = "train"
    #: Number of tasks to load (``0``: all the source has).
    num_tasks: int = 4000
    #: Sandbox backend: ``"docker"`` (isolated; a missing daemon is an error), ``"process"``
    #: (no isolation: trusted code only), ``"auto"`` (docker, else process) or ``"ray"``.
    sandbox: str = "docker"
    #: Seed of everything random: task draws, sampling, the critic's head.
    seed: int = 0
    #: Number of PPO steps (rollout + update) in the run.
    steps: int = 100

    # --- rollouts ---------------------------------------------------------------------------
    #: Tasks drawn per step.
    tasks_per_step: int = 4
    #: Samples per task (StepCoder: 16 per problem).
    samples_per_task: int = 16
    #: Sampling temperature (also used for the log-probs of the update, as the policy sampled).
    temperature: float = 0.8
    #: Nucleus sampling mass.
    top_p: float = 0.9
    #: Longest response, in tokens.
    max_new_tokens: int = 512
    #: Sequences per generation batch.
    generation_batch_size: int = 64
    #: Score a step's tokens (old and reference log-probs, values) while the sandbox runs its
    #: programs (single-turn algorithms): ``"auto"`` (when the models are on an accelerator;
    #: on a CPU the two compete for the same cores: an overlapped StepCoder step took 1.33x
    #: as long on 2 cores, ``benchmarks/train_throughput.py``), ``"on"`` or ``"off"``.
    overlap_execution: Literal["auto", "on", "off"] = "auto"

    # --- PPO --------------------------------------------------------------------------------
    #: Advantage estimator: ``"gae"`` (a critic, as both papers) or ``"grpo"`` (group-normalised
    #: scores of a task's samples, no critic).
    advantage: Literal["gae", "grpo"] = "gae"
    #: Critic kind: ``"separate"`` (its own copy of the backbone, as both papers) or
    #: ``"shared"`` (a value head on the policy's last hidden state).
    critic: Literal["separate", "shared"] = "separate"
    #: Policy learning rate (AdamW).
    policy_lr: float = 5e-7
    #: Critic learning rate (AdamW).
    critic_lr: float = 1.5e-6
    #: AdamW weight decay of both optimisers.
    weight_decay: float = 0.0
    #: Linear learning-rate warm-up, in optimiser steps.
    warmup_steps: int = 0
    #: Passes over a step's rollouts.
    ppo_epochs: int = 1
    #: Optimiser steps per pass (the rollouts are split into this many minibatches).
    minibatches: int = 1
    #: Sequences per forward/backward (gradient accumulation inside a minibatch).
    micro_batch_size: int = 8
    #: PPO ratio clip.
    clip_eps: float = 0.2
    #: Value clip around the rollout's values.
    value_clip_eps: float = 0.2
    #: Weight of the value loss in a shared-critic loss.
    value_coef: float = 0.5
    #: Entropy bonus (0: none, as both papers).
    entropy_coef: float = 0.0
    #: KL coefficient to the reference policy.
    kl_coef: float = 0.05
    #: Per-token KL estimator in the reward (``"k1"``) or, for GRPO, the loss (``"k3"``).
    kl_estimator: Literal["k1", "k3"] = "k1"
    #: Discount (1: the reward is at the end and nothing is discounted).
    gamma: float = 1.0
    #: GAE lambda.
    lam: float = 0.95
    #: Normalise advantages over the step's tokens (mean 0, std 1).
    whiten_advantages: bool = True
    #: Global gradient-norm clip.
    max_grad_norm: float = 1.0

    # --- model runtime ----------------------------------------------------------------------
    #: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    device: str = "auto"
    #: ``"float32"`` or ``"bfloat16"`` (GPU).
    dtype: Literal["float32", "bfloat16"] = "float32"
    #: Recompute activations in the backward pass (saves memory on large models).
    gradient_checkpointing: bool = False
    #: LoRA rank (0: full fine-tuning).
    lora_r: int = 0
    #: LoRA alpha.
    lora_alpha: int = 32

    # --- run --------------------------------------------------------------------------------
    #: Write ``checkpoint-N/`` every this many steps (and at the end, and on Ctrl-C).
    checkpoint_every: int = 25
    #: Checkpoints kept (older ones are deleted; 0 keeps all).
    keep_checkpoints: int = 2

    #: Derived, not settable: ``tasks_per_step * samples_per_task``.
    rollouts_per_step: int = field(init=False)

    def __post_init__(self) -> None:
        self.rollouts_per_step = self.tasks_per_step * self.samples_per_task
        positive = (
            "steps tasks_per_step samples_per_task max_new_tokens generation_batch_size "
            "ppo_epochs minibatches micro_batch_size"
        ).split()
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"config {name} must be at least 1, got {getattr(self, name)}")
        if self.rollouts_per_step % self.minibatches:
            raise UsageError(
                f"config minibatches={self.minibatches} must divide the rollouts per step "
                f"(tasks_per_step * samples_per_task = {self.rollouts_per_step})"
            )
        if self.advantage not in ("gae", "grpo"):
            raise UsageError(f"config advantage must be 'gae' or 'grpo', got {self.advantage!r}")
        if self.advantage == "grpo" and self.samples_per_task < 2:
            raise UsageError("advantage='grpo' needs samples_per_task >= 2 (groups of samples)")
        if self.overlap_execution not in ("auto", "on", "off"):
            raise UsageError(
                f"config overlap_execution must be 'auto', 'on' or 'off', "
                f"got {self.overlap_execution!r}"
            )
        if self.critic not in ("separate", "shared"):
            raise UsageError(f"config critic must be 'separate' or 'shared', got {self.critic!r}")
        if self.kl_estimator not in ("k1", "k3"):
            raise UsageError(f"config kl_estimator must be 'k1' or 'k3', got {self.kl_estimator!r}")
        if not 0.0 <= self.temperature or not 0.0 < self.top_p <= 1.0:
            raise UsageError("config temperature must be >= 0 and top_p in (0, 1]")
        if self.temperature == 0.0:
            raise UsageError("config temperature must be > 0 for RL (log-probs divide by it)")
        if not math.isfinite(self.policy_lr) or self.policy_lr <= 0:
            raise UsageError(f"config policy_lr must be positive, got {self.policy_lr}")

    def to_dict(self) -> dict[str, Any]:
        """Every field, derived ones included, as plain data (for ``config.json``)."""
        return dataclasses.asdict(self)


C = TypeVar("C", bound=PPOConfig)

#: Presets per model kind: what a run of that model starts from before the user's overrides.
#: The tiny model (3.5M parameters, SFT at lr 1e-3) barely moves at a real model's 5e-7.
TINY_PRESET: dict[str, Any] = {
    # measured on the 450-step tiny start, 30 steps x 64 rollouts, greedy held-out pass@1
    # (200 toy test tasks, start 38.0%): 1e-5 barely moved the policy (approx-KL ~1e-5 per
    # update), 5e-5 gave 43.0% (GRPO 42.5%), 1e-4 without CCCS 38.5%
    "policy_lr": 5e-5,
    "critic_lr": 1e-4,
    # a short run needs more than one optimiser step per rollout batch
    "ppo_epochs": 1,
    "minibatches": 2,
    "tasks_per_step": 8,
    "samples_per_task": 8,
    # a 3.7M-parameter model writes far more syntax errors at T=1 than greedily: sample
    # nearer the distribution that is evaluated
    "temperature": 0.7,
    "top_p": 1.0,
    "max_new_tokens": 160,
    "micro_batch_size": 16,
    "kl_coef": 0.05,
    "checkpoint_every": 10,
}


def preset_for(model: str) -> tuple[str, dict[str, Any]]:
    """The preset name and its overrides for ``model`` (``"tiny"`` or ``"paper"``)."""
    return ("tiny", dict(TINY_PRESET)) if model == "tiny" else ("paper", {})


def settable_fields(cls: type[PPOConfig]) -> dict[str, Any]:
    """Field name -> type of the fields a user may set (derived ones excluded)."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls) if f.init}


def _coerce(cls: type[PPOConfig], key: str, value: Any, origin: str) -> Any:
    """``value`` converted to the type of ``cls.key`` (strings from ``--set`` parsed)."""
    kinds = settable_fields(cls)
    if key not in kinds:
        close = difflib.get_close_matches(key, list(kinds), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(
            f"{origin}: unknown config key {key!r}{hint} "
            f"(`codegym train {cls.algorithm_name} --help-config` lists them)"
        )
    kind = kinds[key]
    base = str if getattr(kind, "__origin__", None) is Literal else kind
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return base(float(value)) if base is int and isinstance(value, str) else base(value)
    except (TypeError, ValueError):
        raise UsageError(
            f"{origin}: config key {key!r} wants a {getattr(base, '__name__', base)}, got {value!r}"
        ) from None


def parse_overrides(pairs: list[str], cls: type[PPOConfig]) -> dict[str, Any]:
    """``["key=value", ...]`` (from ``--set``) as typed overrides."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set {pair!r}: expected key=value, e.g. --set policy_lr=1e-5")
        out[key.strip()] = _coerce(cls, key.strip(), value.strip(), f"--set {pair}")
    return out


def read_toml(path: str | Path, cls: type[PPOConfig]) -> dict[str, Any]:
    """Overrides from a TOML file: top-level keys, or a ``[<algorithm>]`` table."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"--config {path}: not valid TOML ({e})") from None
    table = data.get(cls.algorithm_name, data)
    return {k: _coerce(cls, k, v, f"{path}") for k, v in table.items() if not isinstance(v, dict)}


def build_config(
    cls: type[C],
    *,
    model: str = "tiny",
    toml: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[C, str]:
    """A config of ``cls``: defaults < preset of ``model`` < ``toml`` < ``overrides``.

    Returns the config and the preset's name.
    """
    merged: dict[str, Any] = {"model": model}
    file_values = read_toml(toml, cls) if toml is not None else {}
    chosen_model = (overrides or {}).get("model", file_values.get("model", model))
    preset_name, preset = preset_for(chosen_model)
    merged.update(preset)
    merged.update(file_values)
    for key, value in (overrides or {}).items():
        merged[key] = _coerce(cls, key, value, "option")
    merged["model"] = chosen_model
    return cls(**merged), preset_name


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """A config from ``config.json`` (derived fields ignored)."""
    kinds = settable_fields(cls)
    return cls(**{k: v for k, v in data.items() if k in kinds})


__all__ = [
    "TINY_PRESET",
    "PPOConfig",
    "build_config",
    "config_from_dict",
    "parse_overrides",
    "preset_for",
    "read_toml",
    "settable_fields",
]
