"""Collecting a step's episodes through codegym's vector envs, and scoring them with the models.

Both agents see an episode the same way: one token sequence (the prompt, then the model's
responses and, between them, the env's feedback), the index of the response each token belongs
to (``-1`` for tokens the model did not write), the env's reward of each response, and a mask
of the response tokens the policy loss may use (StepCoder's FGO removes some). Single-turn
episodes are the one-response case.

:func:`collect_completions` plays CodeCompletion-v0 (one step per episode), and
:func:`collect_conversations` plays MultiTurnRepair-v0, rendering each conversation with the
tokenizer's chat template and batching generation over the sub-envs still playing.
:func:`score_episodes` pads the episodes and adds the models' numbers: old and reference
log-probs and the critic's values. Episodes whose execution hit an ``infra_error`` (the
sandbox failed, not the program) are dropped and counted, never scored as failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from agents.models import (
    ActorCritic,
    Generation,
    SamplingParams,
    generate,
    pad_left,
    token_logprobs,
)


@dataclass
class Episode:
    """One episode, token by token.

    Attributes:
        task_id: The task played.
        group: Index of the task in the step's draw (the samples of one task share it).
        token_ids: The whole sequence: prompt, responses and feedback, in order.
        turn_of_token: Same length: the response (0-based turn) each token belongs to, or -1.
        turn_rewards: The env's reward of each response, in order.
        policy_keep: Same length as ``token_ids``: False on response tokens the policy loss
            must skip (FGO); True elsewhere.
        stats: What the env said, for metrics (verdict, passed, stage, turns, ...).
    """

    task_id: str
    group: int
    token_ids: list[int] = field(default_factory=list)
    turn_of_token: list[int] = field(default_factory=list)
    turn_rewards: list[float] = field(default_factory=list)
    policy_keep: list[bool] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def add(self, ids: Sequence[int], turn: int, keep: Sequence[bool] | None = None) -> None:
        """Append ``ids`` as tokens of response ``turn`` (or ``-1`` for context)."""
        self.token_ids.extend(ids)
        self.turn_of_token.extend([turn] * len(ids))
        self.policy_keep.extend(keep if keep is not None else [True] * len(ids))

    @property
    def num_turns(self) -> int:
        """Responses the model wrote."""
        return len(self.turn_rewards)


@dataclass
class Batch:
    """A step's episodes as left-padded tensors, every per-token tensor ``(B, T)`` aligned to
    the token it belongs to (see ``agents/models.py``).

    ``action_mask`` is 1 on model-written tokens; ``policy_mask`` is the subset the policy
    loss uses; ``turn_of_token`` is the response index or -1; ``turn_rewards`` is ``(B, K)``
    with ``turn_mask`` marking the turns that exist; ``scores`` ``(B,)`` is the episode's total
    env reward; ``groups`` ``(B,)`` the task index of each episode.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    action_mask: torch.Tensor
    policy_mask: torch.Tensor
    turn_of_token: torch.Tensor
    turn_rewards: torch.Tensor
    turn_mask: torch.Tensor
    scores: torch.Tensor
    groups: torch.Tensor
    old_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    old_values: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    value_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, index: torch.Tensor | slice) -> Batch:
        """The rows ``index`` of every tensor (a minibatch or micro-batch)."""
        values: dict[str, Any] = {
            name: (getattr(self, name)[index] if getattr(self, name) is not None else None)
            for name in self.__dataclass_fields__
        }
        return Batch(**values)

    def trimmed(self) -> Batch:
        """The batch without the leading columns that are padding in every row (a
        micro-batch of short sequences need not carry the whole step's width)."""
        used = self.attention_mask.bool().any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start == 0:
            return self
        values: dict[str, Any] = {
            name: (
                value[:, start:]
                if value is not None and value.dim() == 2 and value.shape == self.input_ids.shape
                else value
            )
            for name, value in ((n, getattr(self, n)) for n in self.__dataclass_fields__)
        }
        return Batch(**values)

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``."""
        values: dict[str, Any] = {
            name: (getattr(self, name).to(device) if getattr(self, name) is not None else None)
            for name in self.__dataclass_fields__
        }
        return Batch(**values)


def response_char_spans(
    tokenizer: Any, response_ids: Sequence[int], text: str
) -> list[tuple[int, int]]:
    """Character span in ``text`` of each response token (empty for EOS and stop tokens).

    Decodes growing prefixes, so byte-level BPE tokens that split a character get the span of
    the character they complete. Spans are clamped to ``text`` (the response cut at its stop
    string), so tokens after the cut have empty spans.
    """
    spans, start = [], 0
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    for j in range(len(response_ids)):
        if response_ids[j] in special:
            spans.append((start, start))
            continue
        end = len(tokenizer.decode(list(response_ids[: j + 1]), skip_special_tokens=True))
        end = min(max(end, start), len(text))
        spans.append((start, end))
        start = end
    return spans


def draw_tasks(rng: np.random.Generator, task_ids: Sequence[str], count: int) -> list[str]:
    """``count`` distinct task ids drawn with ``rng`` (repeats only if the suite is smaller)."""
    replace = count > len(task_ids)
    picks = rng.choice(len(task_ids), size=count, replace=replace)
    return [task_ids[int(i)] for i in picks]


KeepFn = Callable[[Generation, dict[str, Any]], list[bool] | None]


def collect_completions(
    vec: Any,
    ac: ActorCritic,
    task_ids: Sequence[str],
    samples_per_task: int,
    params: SamplingParams,
    *,
    batch_size: int,
    keep_fn: KeepFn | None = None,
    timings: dict[str, float] | None = None,
    while_executing: Callable[[list[Episode]], None] | None = None,
) -> tuple[list[Episode], int]:
    """Play one CodeCompletion-v0 episode per sub-env: each task ``samples_per_task`` times.

    ``vec`` has ``len(task_ids) * samples_per_task`` sub-envs (built with
    ``infra_errors="skip"``). ``keep_fn(generation, info)`` returns the policy-loss mask of
    the response tokens (FGO), or ``None`` to keep them all. ``timings`` (if given) gets
    ``time/generate`` and ``time/execute`` (the sandbox's wall time) added.

    ``while_executing(episodes)``, if given, is called with every episode's tokens (rewards,
    FGO masks and stats not filled in yet) while the sandbox runs the programs in a
    background thread: work that needs only the tokens (scoring them with the models)
    overlaps the execution. The same episode objects are then completed in place, and those
    that hit an ``infra_error`` are left out of the returned list.

    Returns:
        The episodes that were scored and the number dropped for an ``infra_error``.
    """
    per_env = [{"task_id": t} for t in task_ids for _ in range(samples_per_task)]
    obs, reset_info = vec.reset(options={"per_env": per_env})
    prompts = [
        vec.envs[i].unwrapped.observation_text(
            {"prompt": obs["prompt"][i], "prefix": obs["prefix"][i]}
        )
        for i in range(len(per_env))
    ]
    clock = _Clock(timings)
    with clock("time/generate"):
        gens = generate(ac.policy, ac.tokenizer, prompts, params, batch_size=batch_size)
    all_episodes = []
    for i, gen in enumerate(gens):
        ep = Episode(task_id=per_env[i]["task_id"], group=i // samples_per_task)
        ep.add(gen.prompt_ids, -1)
        ep.add(gen.response_ids, 0)
        all_episodes.append(ep)
    actions = [g.text for g in gens]
    if while_executing is None:
        with clock("time/execute"):
            _, rewards, _, _, info = vec.step(actions)
    else:

        def timed_step() -> Any:
            with clock("time/execute"):
                return vec.step(actions)

        with ThreadPoolExecutor(1, thread_name_prefix="codegym-execute") as pool:
            running = pool.submit(timed_step)
            try:
                while_executing(all_episodes)
            finally:
                _, rewards, _, _, info = running.result()
    episodes, dropped = [], 0
    for i, (gen, ep) in enumerate(zip(gens, all_episodes, strict=True)):
        if info.get("infra_error", np.zeros(len(gens), bool))[i]:
            dropped += 1
            continue
        step_info = {k: info[k][i] for k in info if not k.startswith("_") and info[f"_{k}"][i]}
        keep = keep_fn(gen, step_info) if keep_fn is not None else None
        if keep is not None:
            ep.policy_keep[len(gen.prompt_ids) :] = list(keep)
        ep.turn_rewards.append(float(rewards[i]))
        ep.stats = {
            "verdict": str(step_info.get("verdict", "")),
            "passed": step_info.get("verdict") == "passed",
            "stage": int(
                step_info.get("stage", reset_info["stage"][i] if "stage" in reset_info else 0)
            ),
            "num_stages": int(step_info.get("num_stages", 1)),
            "response_tokens": len(gen.response_ids),
            "truncated": gen.finish_reason == "length",
        }
        episodes.append(ep)
    return episodes, dropped


def collect_conversations(
    vec: Any,
    ac: ActorCritic,
    task_ids: Sequence[str],
    samples_per_task: int,
    params: SamplingParams,
    *,
    batch_size: int,
    max_turns: int,
    max_length: int,
    timings: dict[str, float] | None = None,
) -> tuple[list[Episode], int]:
    """Play MultiTurnRepair-v0 episodes, each task ``samples_per_task`` times.

    Each turn, the conversations still playing are rendered with the tokenizer's chat
    template and answered in one generation batch. The token sequence of an episode is built
    incrementally: the first prompt, the response exactly as sampled, then the feedback as the
    template renders it after that response (the difference between two renderings, which
    needs a prefix-stable template). An episode that would outgrow ``max_length`` tokens ends
    early (``stats["cut"]``). ``timings`` (if given) gets ``time/generate`` and
    ``time/execute`` added.

    Returns:
        The finished episodes and the number dropped for an ``infra_error``.
    """
    tok = ac.tokenizer
    per_env = [{"task_id": t} for t in task_ids for _ in range(samples_per_task)]
    obs, _ = vec.reset(options={"per_env": per_env})
    n = len(per_env)
    episodes = [
        Episode(task_id=e["task_id"], group=i // samples_per_task) for i, e in enumerate(per_env)
    ]
    messages = [list(obs["messages"][i]) for i in range(n)]
    rendered = [_render(tok, m, generation_prompt=True) for m in messages]
    for i in range(n):
        episodes[i].add(tok.encode(rendered[i], add_special_tokens=False), -1)
        episodes[i].stats = {"turn_passed": [], "no_code": 0, "passed": False, "cut": False}
    playing = set(range(n))
    dropped: set[int] = set()
    clock = _Clock(timings)
    for turn in range(max_turns):
        order = sorted(playing)
        if not order:
            break
        with clock("time/generate"):
            prompts = [episodes[i].token_ids for i in order]
            gens = generate(ac.policy, tok, prompts, params, batch_size=batch_size)
        actions: list[str | None] = [None] * n
        for i, gen in zip(order, gens, strict=True):
            actions[i] = gen.text
        with clock("time/execute"):
            new_obs, rewards, terminated, truncated, info = vec.step(actions)
        for i, gen in zip(order, gens, strict=True):
            if info.get("infra_error", np.zeros(n, bool))[i]:
                dropped.add(i)
                playing.discard(i)
                continue
            ep = episodes[i]
            ep.add(gen.response_ids, turn)
            ep.turn_rewards.append(float(rewards[i]))
            ep.stats["turn_passed"].append(str(info["verdict"][i]) == "passed")
            ep.stats["no_code"] += int(not info["has_code"][i])
            if terminated[i] or truncated[i]:
                ep.stats["passed"] = bool(info["passed"][i])
                playing.discard(i)
                continue
            after = list(new_obs["messages"][i])
            # The feedback as the template renders it after the response (prefix-stable).
            delta_text = _text_after_response(tok, messages[i], after, gen)
            delta = tok.encode(delta_text, add_special_tokens=False)
            messages[i] = after
            if len(ep.token_ids) + len(delta) + params.max_new_tokens > max_length:
                ep.stats["cut"] = True
                playing.discard(i)  # sits out from now on; the next step's reset starts afresh
                continue
            ep.add(delta, -1)
    for i in playing:  # the turn limit of the env ends every episode; nothing should be left
        episodes[i].stats["cut"] = True
    kept = [ep for i, ep in enumerate(episodes) if i not in dropped]
    for ep in kept:
        ep.stats["turns"] = ep.num_turns
    return kept, len(dropped)


def _text_after_response(
    tokenizer: Any, before: list[dict[str, str]], after: list[dict[str, str]], gen: Generation
) -> str:
    """What the chat template puts between the sampled response and the next generation
    prompt: the end of the assistant turn (minus the EOS the model already wrote), the
    feedback message, and the new generation prompt.

    Found by rendering the conversation and locating the response's content right after the
    previous prompt; templates that rewrite the content fall back to the difference between
    the renderings with and without the feedback.
    """
    full = _render(tokenizer, after, generation_prompt=True)
    prompt = _render(tokenizer, before, generation_prompt=True)
    content = after[len(before)]["content"]
    if full.startswith(prompt) and full.startswith(content, len(prompt)):
        pos = len(prompt) + len(content)
        eos = tokenizer.eos_token or ""
        ended = gen.finish_reason == "eos"
        if ended and eos and full.startswith(eos, pos):
            pos += len(eos)  # the model wrote it: it is already in the sequence
        return full[pos:]
    with_reply = _render(tokenizer, after[: len(before) + 1], generation_prompt=False)
    return full[len(with_reply) :]


class _Clock:
    """Adds the seconds spent in ``with clock(key):`` blocks to ``timings[key]``."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=generation_prompt
    )


def to_batch(episodes: Sequence[Episode], pad_id: int) -> Batch:
    """Left-pad ``episodes`` into a :class:`Batch` (models' numbers not filled in)."""
    ids, attn = pad_left([e.token_ids for e in episodes], pad_id)
    width = ids.shape[1]

    def padded(rows: list[list[Any]], fill: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor([[fill] * (width - len(r)) + list(r) for r in rows], dtype=dtype)

    turn_of_token = padded([e.turn_of_token for e in episodes], -1, torch.long)
    action = (turn_of_token >= 0).float()
    keep = padded([e.policy_keep for e in episodes], False, torch.bool).float()
    k = max(1, max(e.num_turns for e in episodes))
    turn_rewards = torch.zeros(len(episodes), k)
    turn_mask = torch.zeros(len(episodes), k)
    for b, e in enumerate(episodes):
        turn_rewards[b, : e.num_turns] = torch.tensor(e.turn_rewards)
        turn_mask[b, : e.num_turns] = 1.0
    return Batch(
        input_ids=ids,
        attention_mask=attn,
        action_mask=action,
        policy_mask=action * keep,
        turn_of_token=turn_of_token,
        turn_rewards=turn_rewards,
        turn_mask=turn_mask,
        scores=turn_rewards.sum(dim=1),
        groups=torch.tensor([e.group for e in episodes], dtype=torch.long),
    )


@torch.no_grad()
def score_batch(
    ac: ActorCritic, batch: Batch, *, temperature: float, micro_batch_size: int
) -> Batch:
    """Fill in ``old_logprobs``, ``ref_logprobs`` and (with a critic) ``old_values``."""
    old, ref, vals = [], [], []
    for start in range(0, len(batch), micro_batch_size):
        part = batch.select(slice(start, start + micro_batch_size)).trimmed().to(ac.device)
        logp = token_logprobs(
            ac.policy, part.input_ids, part.attention_mask, temperature=temperature
        )
        old.append(cast(torch.Tensor, logp).float().cpu())
        if ac.reference is not None:
            ref_logp = token_logprobs(
                ac.reference, part.input_ids, part.attention_mask, temperature=temperature
            )
            ref.append(cast(torch.Tensor, ref_logp).float().cpu())
        if ac.critic is not None or ac.value_head is not None:
            vals.append(ac.values(part.input_ids, part.attention_mask).float().cpu())
    width = batch.input_ids.shape[1]
    batch.old_logprobs = _pad_cat(old, width)
    batch.ref_logprobs = _pad_cat(ref, width) if ref else batch.old_logprobs.clone()
    batch.old_values = _pad_cat(vals, width) if vals else torch.zeros_like(batch.old_logprobs)
    return batch


def _pad_cat(parts: list[torch.Tensor], width: int) -> torch.Tensor:
    """Concatenate trimmed ``(b, t)`` parts back to ``(B, width)``, zeros on the left."""
    return torch.cat([torch.nn.functional.pad(p, (width - p.shape[1], 0)) for p in parts])


__all__ = [
    "Batch",
    "Episode",
    "collect_completions",
    "collect_conversations",
    "draw_tasks",
    "response_char_spans",
    "score_batch",
    "to_batch",
]
