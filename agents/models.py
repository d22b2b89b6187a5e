"""Policies for PPO on code: loading, sampling, log-probs and values of causal language models.

A model is named ``"tiny"`` (the bundled model of :mod:`agents.tiny`, built on first use), a
local folder written by ``save_pretrained``, or a Hugging Face hub name (found in the local
cache only when ``HF_HUB_OFFLINE=1``). :func:`load_actor_critic` gives the policy, a critic
(by default a separate :class:`ValueModel`: the same checkpoint's backbone plus a randomly
initialised linear head, as StepCoder and RLEF use; or a head on the policy's own hidden
states) and a frozen reference model.

Tensor conventions (shared with :mod:`agents.core` and the trainer): ``B`` sequences of padded
length ``T``, LEFT-padded (prompt | response, padding on the left), ``attention_mask`` 0 on
padding, ``position_ids = cumsum(attention_mask) - 1`` clamped at 0 and passed to the model
explicitly, so a padded row computes exactly what the unpadded sequence computes. Per-token
tensors are aligned to the token they belong to: column ``t`` of log-probs is
``log p(x_t | x_<t)``; column ``t`` of values is the critic's value of the state just before
token ``t`` (read from the hidden state at ``t - 1``). A column whose token has no
predecessor in its sequence (column 0, the first real token of a padded row) and padding
columns hold 0.

Sampling (:func:`generate`) is a plain loop with a KV cache rather than ``transformers``'
``generate``: it spends about 95% of its time in the model's forward pass (the tiny model,
batches of 32 on a CPU), so the generic loop cannot beat it, and it makes the contract exact:
responses end right after EOS or the token that completed a stop string, no padding leaks
into them, finished rows leave the batch, and every random draw comes from torch's global
RNG (seeding torch reproduces a batch).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import transformers
from packaging.version import Version
from torch import Tensor
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from agents.tiny import CHAT_TEMPLATE
from codegym.errors import UsageError

# transformers renamed from_pretrained's ``torch_dtype`` to ``dtype`` in 4.56.
_DTYPE_ARG = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"

CriticKind = Literal["separate", "shared", "none"]

#: Chat template set on tokenizers that have none: the tiny model's own.
DEFAULT_CHAT_TEMPLATE = CHAT_TEMPLATE

_VALUE_HEAD_FILE = "value_head.pt"


# ---- devices, dtypes, names ------------------------------------------------------------


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``.

    Raises:
        UsageError: an unknown device, or CUDA asked for where there is none.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise UsageError(
            f'unknown device {device!r}: give "auto", "cpu", "cuda" or "cuda:N"'
        ) from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f'device {device!r} asked for, but torch sees no CUDA GPU here; use "cpu" or "auto"'
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif dev.type != "cpu":
        raise UsageError(f'unsupported device {device!r}: give "auto", "cpu" or "cuda[:N]"')
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The torch dtype for ``"float32"``, ``"bfloat16"`` or ``"auto"`` (bf16 on a CUDA GPU
    that supports it, else fp32)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16}  # fmt: skip
    if dtype not in table:
        raise UsageError(f'unknown dtype {dtype!r}: give "float32", "bfloat16" or "auto"')
    return table[dtype]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", ".\\"))
        or name.endswith(("/", "\\"))
        or "\\" in name
        or name.count("/") > 1
    )


def resolve_model(name_or_path: str) -> str:
    """Where ``name_or_path`` loads from: a local folder (as a str) or a hub name.

    ``"tiny"`` is built on first use (:func:`agents.tiny.tiny_model_path`). A hub name is
    checked by loading its config (from the local cache only when ``HF_HUB_OFFLINE=1``).

    Raises:
        UsageError: a folder that holds no model, a path that does not exist, or a name the
            hub (or, offline, the local cache) does not know.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise UsageError(
            f'model must be "tiny", a local folder or a hub name, got {name_or_path!r}'
        )
    name = str(name_or_path)
    if name == "tiny":
        from agents.tiny import tiny_model_path

        return str(tiny_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise UsageError(
                f"model folder {name!r} holds no model (no config.json): give a folder written "
                'by save_pretrained (e.g. a run\'s checkpoint-N/policy), "tiny" or a hub name'
            )
        return str(path)
    if _looks_like_path(name):
        raise UsageError(
            f"model folder {name!r} does not exist: give an existing folder written by "
            'save_pretrained, "tiny" or a hub name'
        )
    offline = _offline()
    try:
        AutoConfig.from_pretrained(name, local_files_only=offline)
    except (OSError, ValueError) as e:
        where = (
            "not in the local Hugging Face cache (HF_HUB_OFFLINE=1 allows only cached models)"
            if offline
            else "not found on the Hugging Face hub (or the hub cannot be reached)"
        )
        raise UsageError(
            f'unknown model {name!r}: it is not "tiny", not a local folder, and {where}; '
            'give "tiny", a folder written by save_pretrained, or a hub name such as '
            '"Qwen/Qwen2.5-0.5B" (download it first, or unset HF_HUB_OFFLINE)'
        ) from e
    return name


# ---- loading ---------------------------------------------------------------------------


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model, ready for batched generation.

    Padding goes on the left; a tokenizer without a pad token pads with its EOS token (or
    gets ``<|pad|>`` when it has neither); one without a chat template gets
    :data:`DEFAULT_CHAT_TEMPLATE`.
    """
    source = resolve_model(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=_offline())
    return _prepare_tokenizer(tokenizer)


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer


@dataclass(frozen=True)
class LoraSettings:
    """LoRA through ``peft``.

    Attributes:
        r: Rank of the update matrices.
        alpha: Scale numerator (the update is scaled by ``alpha / r``).
        dropout: Dropout on the LoRA input (keep 0 for PPO: sampling and training must see
            the same function).
        target_modules: Module names to adapt; ``None``: peft's default for the architecture
            (``c_attn`` for GPT-2, ``q_proj``/``v_proj`` for Llama), or every linear layer
            when peft has none.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None


def _apply_lora(model: PreTrainedModel, lora: LoraSettings, task_type: str | None) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS
    except ImportError as e:  # pragma: no cover - peft is in the train extra
        raise UsageError("LoRA needs peft: pip install 'codegym[train]'") from e
    targets: Any = list(lora.target_modules) if lora.target_modules else None
    if targets is None and model.config.model_type not in DEFAULTS:
        targets = "all-linear"
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type=task_type,
        # GPT-2's projections are Conv1D, whose weight is stored transposed.
        fan_in_fan_out=model.config.model_type == "gpt2",
    )
    return get_peft_model(model, config)


def _finish_model(
    model: Any, *, gradient_checkpointing: bool, lora: LoraSettings | None, trainable: bool,
    task_type: str | None,
) -> Any:  # fmt: skip
    if gradient_checkpointing and trainable:
        # Non-reentrant checkpointing also works when only LoRA parameters need gradients.
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if lora is not None and trainable:
        model = _apply_lora(model, lora, task_type)
    if trainable:
        model.train()
    else:
        model.eval()
        model.requires_grad_(False)
    return model


def load_causal_lm(
    name_or_path: str,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    gradient_checkpointing: bool = False,
    lora: LoraSettings | None = None,
    trainable: bool = True,
) -> tuple[Any, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer.

    Args:
        name_or_path: ``"tiny"``, a local folder written by ``save_pretrained`` or a hub name
            (see :func:`resolve_model`).
        device: See :func:`resolve_device`.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"auto"``.
        gradient_checkpointing: Recompute activations in the backward pass (trainable only).
        lora: Wrap the model in peft LoRA adapters: only they are trainable.
        trainable: ``False`` gives a frozen model in eval mode (a reference model).

    Returns:
        ``(model, tokenizer)``; ``model`` is a ``PeftModel`` when ``lora`` is given.

    Raises:
        UsageError: the model cannot be found, or the folder holds no causal LM.
    """
    source = resolve_model(name_or_path)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    if (Path(source) / _VALUE_HEAD_FILE).is_file():
        raise UsageError(
            f"{name_or_path!r} is a saved value model (a critic), not a policy; give the "
            "policy's folder (a run's checkpoint-N/policy)"
        )
    try:
        tokenizer = _prepare_tokenizer(
            AutoTokenizer.from_pretrained(source, local_files_only=_offline())
        )
        model: Any = AutoModelForCausalLM.from_pretrained(
            source, local_files_only=_offline(), **{_DTYPE_ARG: torch_dtype}
        )
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(
            f"model {name_or_path!r} cannot be loaded as a causal language model with its "
            f'tokenizer ({e}); give "tiny", a folder written by save_pretrained of a causal '
            "LM and its tokenizer, or a hub name"
        ) from e
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:  # a pad token was added
        model.resize_token_embeddings(len(tokenizer))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(dev)
    model = _finish_model(
        model,
        gradient_checkpointing=gradient_checkpointing,
        lora=lora,
        trainable=trainable,
        task_type="CAUSAL_LM",
    )
    return model, tokenizer


# ---- critics ---------------------------------------------------------------------------


def _shift_to_next_token(per_position: Tensor, attention_mask: Tensor) -> Tensor:
    """Move a value read at position ``t - 1`` to column ``t``; 0 where ``t`` has no real
    predecessor (column 0, the first real token of a left-padded row) or is padding.

    ``torch.where`` rather than a product: outputs at padded positions may be NaN.
    """
    mask = attention_mask.bool()
    out = torch.zeros_like(per_position)
    valid = mask[:, 1:] & mask[:, :-1]
    out[:, 1:] = torch.where(valid, per_position[:, :-1], torch.zeros_like(per_position[:, :-1]))
    return out


def position_ids(attention_mask: Tensor) -> Tensor:
    """``cumsum(attention_mask) - 1`` clamped at 0: positions of a left-padded batch, (B, T)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _new_value_head(hidden_size: int, device: torch.device) -> torch.nn.Linear:
    head = torch.nn.Linear(hidden_size, 1, device=device, dtype=torch.float32)
    # Small random weights and a zero bias: initial values near 0 whatever the hidden scale.
    torch.nn.init.normal_(head.weight, std=1.0 / (hidden_size + 1) ** 0.5)
    torch.nn.init.zeros_(head.bias)
    return head


def _hidden_size(config: Any) -> int:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text_config.hidden_size)


class ValueModel(torch.nn.Module):
    """A critic: a transformer backbone and a linear head giving one value per position.

    The backbone is ``AutoModel`` of a causal LM checkpoint (the LM without its output
    layer); the head is ``Linear(hidden_size, 1)``, randomly initialised (normal, std
    ``1/sqrt(hidden_size + 1)``, bias 0) from torch's global RNG, in float32 whatever the
    backbone's dtype.
    """

    def __init__(self, backbone: Any, head: torch.nn.Linear | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
        device = next(base.parameters()).device
        self.head = head if head is not None else _new_value_head(_hidden_size(base.config), device)

    @classmethod
    def from_checkpoint(
        cls,
        name_or_path: str,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
        gradient_checkpointing: bool = False,
    ) -> ValueModel:
        """A new critic on the backbone of a causal LM checkpoint, with a fresh random head
        (drawn from torch's global RNG)."""
        source = resolve_model(name_or_path)
        dev = resolve_device(device)
        backbone = _load_backbone(source, dev, resolve_dtype(dtype, dev))
        backbone = _finish_model(
            backbone,
            gradient_checkpointing=gradient_checkpointing,
            lora=None,
            trainable=True,
            task_type=None,
        )
        return cls(backbone)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Values (B, T), float32, aligned as in the module docstring (column 0 is 0)."""
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
        )
        raw = self.head(out.last_hidden_state.float()).squeeze(-1)
        return _shift_to_next_token(raw, attention_mask)

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write the backbone (``save_pretrained``, LoRA merged) and the head to ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        base, state = merged_state_dict(self.backbone)
        base.save_pretrained(path, state_dict=state)
        torch.save(self.head.state_dict(), path / _VALUE_HEAD_FILE)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
    ) -> ValueModel:
        """A critic saved by :meth:`save_pretrained`.

        Raises:
            UsageError: ``path`` holds no saved critic.
        """
        path = Path(path)
        if not (path / _VALUE_HEAD_FILE).is_file() or not (path / "config.json").is_file():
            raise UsageError(
                f"{str(path)!r} holds no saved value model ({_VALUE_HEAD_FILE} and config.json); "
                "give a folder written by ValueModel.save_pretrained (a run's checkpoint-N/critic)"
            )
        dev = resolve_device(device)
        backbone = _load_backbone(str(path), dev, resolve_dtype(dtype, dev))
        head = _new_value_head(_hidden_size(backbone.config), dev)
        head.load_state_dict(torch.load(path / _VALUE_HEAD_FILE, map_location=dev))
        return cls(backbone, head)


def _load_backbone(source: str, device: torch.device, dtype: torch.dtype) -> Any:
    try:
        backbone = AutoModel.from_pretrained(
            source, local_files_only=_offline(), **{_DTYPE_ARG: dtype}
        )
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(
            f"model {source!r} has no backbone transformers can load for a critic ({e})"
        ) from e
    return backbone.to(device)


@dataclass
class ActorCritic:
    """Everything PPO trains or consults.

    Attributes:
        tokenizer: Left-padding tokenizer with a pad token and a chat template.
        policy: The causal LM being trained (a ``PeftModel`` with LoRA).
        critic: A separate :class:`ValueModel` (``critic="separate"``), else ``None``.
        reference: A frozen copy of the initial policy (eval mode, no gradients), or ``None``.
        device: Where all of them live.
        value_head: With ``critic="shared"``: ``Linear(hidden, 1)`` on the policy's last
            hidden state (train it with the policy's optimiser); else ``None``.
    """

    tokenizer: PreTrainedTokenizerBase
    policy: Any
    critic: ValueModel | None
    reference: Any | None
    device: torch.device
    value_head: torch.nn.Linear | None = None

    @property
    def critic_kind(self) -> CriticKind:
        """``"separate"``, ``"shared"`` or ``"none"``."""
        if self.critic is not None:
            return "separate"
        return "shared" if self.value_head is not None else "none"

    def values(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Values (B, T) of the critic, whichever kind, aligned as in the module docstring.

        Raises:
            RuntimeError: this actor-critic was loaded with ``critic="none"``.
        """
        if self.critic is not None:
            return self.critic(input_ids, attention_mask)
        if self.value_head is None:
            raise RuntimeError('this ActorCritic has no critic (loaded with critic="none")')
        out = self.policy(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
            output_hidden_states=True,
        )
        raw = self.value_head(out.hidden_states[-1].float()).squeeze(-1)
        return _shift_to_next_token(raw, attention_mask)


def load_actor_critic(
    model: str,
    *,
    critic: CriticKind = "separate",
    reference: bool = True,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "float32",
    gradient_checkpointing: bool = False,
    lora: LoraSettings | None = None,
) -> ActorCritic:
    """Policy, critic and reference model for PPO, all from one checkpoint.

    Args:
        model: ``"tiny"``, a local folder or a hub name.
        critic: ``"separate"`` (default, as both papers: its own copy of the backbone and a
            random head), ``"shared"`` (a random head on the policy's last hidden state) or
            ``"none"`` (critic-free methods such as GRPO).
        reference: Load a frozen reference copy of the policy (for the KL penalty).
        device, dtype, gradient_checkpointing: As :func:`load_causal_lm`.
        lora: LoRA adapters on the policy (only they train). A separate critic stays a
            full-parameter model and the reference the plain checkpoint.

    The random head is drawn from torch's global RNG: seed torch first to reproduce it.
    """
    if critic not in ("separate", "shared", "none"):
        raise UsageError(f'critic must be "separate", "shared" or "none", got {critic!r}')
    dev = resolve_device(device)
    model = resolve_model(model)  # once: "tiny" builds or finds its folder
    policy, tokenizer = load_causal_lm(
        model, device=dev, dtype=dtype, gradient_checkpointing=gradient_checkpointing, lora=lora
    )
    ref = load_causal_lm(model, device=dev, dtype=dtype, trainable=False)[0] if reference else None
    value_model = None
    value_head = None
    if critic == "separate":
        value_model = ValueModel.from_checkpoint(
            model, device=dev, dtype=dtype, gradient_checkpointing=gradient_checkpointing
        )
    elif critic == "shared":
        base = policy.get_base_model() if hasattr(policy, "get_base_model") else policy
        value_head = _new_value_head(_hidden_size(base.config), dev)
    return ActorCritic(tokenizer, policy, value_model, ref, dev, value_head)


# ---- saving ----------------------------------------------------------------------------


def merged_state_dict(model: Any) -> tuple[Any, dict[str, Tensor]]:
    """The plain model under ``model`` and its state dict with any LoRA update merged in.

    ``model`` itself is left as it was (no merge/unmerge round trip, which would change
    the weights by rounding and break an exact resume).

    Returns:
        ``(base_model, state_dict)``: save with ``base_model.save_pretrained(path,
        state_dict=state_dict)``.
    """
    if not hasattr(model, "get_base_model"):
        return model, model.state_dict()
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    deltas: dict[str, Tensor] = {}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer) and hasattr(module, "get_delta_weight"):
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    delta = module.get_delta_weight(adapter).detach()
                    deltas[name] = deltas[name] + delta if name in deltas else delta
    state: dict[str, Tensor] = {}
    for key, value in base.state_dict().items():
        if "lora_" in key:
            continue
        clean = key.replace(".base_layer.", ".")
        module_name, _, leaf = clean.rpartition(".")
        if leaf == "weight" and module_name in deltas and ".base_layer." in key:
            value = value + deltas[module_name].to(value.dtype)
        state[clean] = value.detach().clone()
    return base, state


def save_policy(
    policy: Any, tokenizer: PreTrainedTokenizerBase, path: str | os.PathLike[str]
) -> None:
    """Write ``policy`` (LoRA merged) and ``tokenizer`` to ``path``, loadable with
    ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``."""
    base, state = merged_state_dict(policy)
    base.save_pretrained(path, state_dict=state)
    tokenizer.save_pretrained(path)


# ---- sampling --------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingParams:
    """How to sample a response.

    Attributes:
        temperature: Softmax temperature; ``0.0`` means greedy (argmax).
        top_p: Nucleus sampling: sample from the smallest set of tokens whose probability
            reaches ``top_p`` (1.0: the whole vocabulary).
        max_new_tokens: Most tokens per response.
        stop: Stop strings besides EOS: the response ends with the token that completes one.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise UsageError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise UsageError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if isinstance(self.stop, str) or any(not s for s in self.stop):
            raise UsageError(f"stop must be a tuple of non-empty strings, got {self.stop!r}")


@dataclass
class Generation:
    """One sampled response.

    Attributes:
        prompt_ids: The prompt's tokens (no padding).
        response_ids: Exactly the sampled tokens, up to and including EOS or the token that
            completed a stop string; nothing after it, no padding.
        text: The decoded response, cut before the stop string or EOS.
        finish_reason: ``"eos"``, ``"stop"`` or ``"length"``.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    text: str
    finish_reason: str


def pad_left(
    seqs: Sequence[Sequence[int]], pad_id: int, device: str | torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Left-pad token sequences into ``(input_ids, attention_mask)``, both (B, T) long."""
    if not seqs:
        raise ValueError("pad_left needs at least one sequence")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids.to(device), mask.to(device)


def _sample(logits: Tensor, temperature: float, top_p: float) -> Tensor:
    """One token per row of ``logits`` (B, V), drawn from torch's global RNG."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Keep a token while the probability before it is below top_p: the first always stays.
        drop = probs.cumsum(-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(-1), 1).squeeze(-1)


def _eos_ids(model: Any, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    return ids


def _base_model(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _context_length(model: Any) -> int | None:
    config = _base_model(model).config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _forward_params(model: Any) -> set[str]:
    return set(inspect.signature(_base_model(model).forward).parameters)


def _cache_names(model: Any) -> tuple[str, str]:
    """(forward argument, output field) of the KV cache: ``cache`` since transformers 5."""
    if "cache" in _forward_params(model):
        return "cache", "cache"
    return "past_key_values", "past_key_values"


@dataclass
class _Row:
    prompt_ids: list[int]
    limit: int  # most new tokens for this row
    response: list[int]
    finish: str = ""


class _StopWatcher:
    """Finds stop strings in a growing response by decoding only its last few tokens.

    A stop string of ``L`` characters spans at most ``4 L`` byte-level tokens; any earlier
    occurrence would have been found at an earlier step, so a window that ends at the newest
    token and holds ``4 L + 1`` tokens sees every new completion.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: tuple[str, ...]) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.window = 4 * max((len(s) for s in stops), default=0) + 1

    def hit(self, response: list[int]) -> bool:
        if not self.stops:
            return False
        tail = self.tokenizer.decode(response[-self.window :], skip_special_tokens=False)
        return any(s in tail for s in self.stops)

    def cut(self, text: str) -> str:
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return text[: min(found)] if found else text


@torch.no_grad()
def generate(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str] | Sequence[Sequence[int]],
    params: SamplingParams,
    *,
    batch_size: int = 32,
) -> list[Generation]:
    """Sample one response per prompt, in batches, with a KV cache.

    Prompts are sorted by length into batches (less padding) and results come back in input
    order. Text prompts are tokenized without special tokens. Every random draw uses torch's
    global RNG: the same seed, prompts and batch size give the same responses. The model is
    put in eval mode for the call and restored after.

    Raises:
        UsageError: a prompt that leaves no room in the model's context for one new token.
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    ids = [
        tokenizer.encode(p, add_special_tokens=False) if isinstance(p, str) else list(p)
        for p in prompts
    ]
    context = _context_length(model)
    rows = []
    for i, p in enumerate(ids):
        if not p:
            raise UsageError(f"prompt {i} is empty: give at least one token")
        room = params.max_new_tokens if context is None else context - len(p)
        if room < 1:
            raise UsageError(
                f"prompt {i} has {len(p)} tokens, which leaves no room in the model's "
                f"context of {context} tokens; shorten it"
            )
        rows.append(_Row(p, min(room, params.max_new_tokens), []))
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].prompt_ids))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            _generate_batch(model, tokenizer, [rows[i] for i in order[start : start + batch_size]],
                            params)  # fmt: skip
    finally:
        model.train(was_training)
    eos = _eos_ids(model, tokenizer)
    watcher = _StopWatcher(tokenizer, params.stop)
    out = []
    for row in rows:
        body = row.response[:-1] if row.finish == "eos" else row.response
        text = str(tokenizer.decode(body, skip_special_tokens=False))
        if row.finish == "stop":
            text = watcher.cut(text)
        assert row.finish != "eos" or row.response[-1] in eos
        out.append(Generation(row.prompt_ids, row.response, text, row.finish))
    return out


def _generate_batch(
    model: Any, tokenizer: PreTrainedTokenizerBase, rows: list[_Row], params: SamplingParams
) -> None:
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids, mask = pad_left([r.prompt_ids for r in rows], pad_id, device)
    positions = position_ids(mask)
    cache_arg, cache_out = _cache_names(model)
    eos = _eos_ids(model, tokenizer)
    watcher = _StopWatcher(tokenizer, params.stop)
    # Only the last position's logits are needed (a large vocabulary makes the rest costly).
    keep_last = {"logits_to_keep": 1} if "logits_to_keep" in _forward_params(model) else {}
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **keep_last,
    )
    logits = out.logits[:, -1, :]
    cache = getattr(out, cache_out)
    next_pos = positions[:, -1:] + 1
    live = list(range(len(rows)))  # rows[live[j]] is row j of the cached batch
    for _ in range(max(r.limit for r in rows)):
        tokens = _sample(logits, params.temperature, params.top_p).tolist()
        keep = []
        for j, token in enumerate(tokens):
            row = rows[live[j]]
            if row.finish:  # still in the batch when the cache cannot drop rows
                continue
            row.response.append(int(token))
            if token in eos:
                row.finish = "eos"
            elif watcher.hit(row.response):
                row.finish = "stop"
            elif len(row.response) >= row.limit:
                row.finish = "length"
            else:
                keep.append(j)
        if not keep:
            return
        if len(keep) < len(live) and hasattr(cache, "batch_select_indices"):
            # Finished rows leave the batch: the rest runs on fewer sequences.
            index = torch.as_tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_pos = mask[index], next_pos[index]
            live = [live[j] for j in keep]
            tokens = [tokens[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
        step_ids = torch.as_tensor(tokens, device=device, dtype=torch.long)[:, None]
        out = model(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=next_pos,
            use_cache=True,
            **{cache_arg: cache},
        )
        logits = out.logits[:, -1, :]
        cache = getattr(out, cache_out)
        next_pos = next_pos + 1


# ---- log-probs -------------------------------------------------------------------------


def token_logprobs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Log-probabilities (B, T) of the given tokens under ``model``, with gradients.

    Column ``t`` is ``log p(x_t | x_<t)`` from the logits at ``t - 1`` divided by
    ``temperature`` (as they were when sampling); 0 where the token has no predecessor or is
    padding. With ``with_entropy``, also the entropy (B, T) of the same distributions.
    """
    if temperature <= 0:
        raise UsageError(f"temperature for log-probs must be > 0, got {temperature}")
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
    )
    logits = out.logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    log_norm = torch.logsumexp(logits, dim=-1)  # (B, T)
    picked = logits[:, :-1].gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    per_position = torch.zeros_like(log_norm)
    per_position[:, :-1] = picked - log_norm[:, :-1]
    # per_position[:, t] is log p(x_{t+1} | x_<=t): read at t, it belongs to token t + 1.
    logprobs = _shift_to_next_token(per_position, attention_mask)
    if not with_entropy:
        return logprobs
    probs = torch.softmax(logits, dim=-1)
    entropy = log_norm - (probs * logits).sum(-1)
    return logprobs, _shift_to_next_token(entropy, attention_mask)
