"""PPO maths for language models: small pure functions on torch tensors.

Shapes: ``B`` sequences, ``T`` padded sequence length, ``K`` most turns in an episode, ``V``
vocabulary size. Every per-token tensor is aligned to the token it belongs to (the agents
contract): ``logprobs[:, t] = log p(x_t | x_<t)`` and ``values[:, t]`` is the critic's value of
the state just before token ``t`` (read from the hidden state at ``t - 1``). Masks are float or
bool tensors of the same shape, 1 on the tokens that count.

Token-mean losses divide their masked sum by ``num_tokens``, the token count of the *whole*
batch (all micro-batches and all ranks, see :func:`token_count`), not by the micro-batch's own
count. Summing the losses of the micro-batches (gradient accumulation), and averaging gradients
over ranks times the world size, then gives exactly the loss and gradient of the whole batch,
however it was split. The statistics returned next to a loss use the same divisor, so they too
add up over micro-batches.

RLEF's turn-level maths (Gehring et al. 2024) works on ``(B, K)`` tensors, one column per turn,
linked to tokens by ``token_turn``: a ``(B, T)`` long tensor holding the turn index of each
model-written token and ``-1`` on every other token (prompt, feedback, padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from codegym.errors import UsageError

__all__ = [
    "KL_KINDS",
    "PolicyStats",
    "approx_kl",
    "broadcast_turns",
    "entropy_from_logits",
    "gae",
    "grpo_advantages",
    "kl_penalty",
    "masked_mean",
    "masked_sum",
    "masked_var",
    "masked_whiten",
    "policy_loss",
    "token_count",
    "token_turn_index",
    "turn_advantages",
    "turn_kl",
    "turn_lengths",
    "turn_returns",
    "value_loss",
    "values_at_turn_starts",
]

#: The KL estimators :func:`kl_penalty` knows.
KL_KINDS = ("k1", "k3", "abs", "mse")

# Log-ratios beyond +-20 only arise from numerical accidents (a token the other policy gives
# probability ~0); exp() of them would overflow float32/bf16, so clamp as verl does.
_LOG_RATIO_BOUND = 20.0
# k3 >= 0, and a value above 10 means the two policies have parted ways on that token; capping
# it keeps one such token from dominating the penalty (verl's low_var_kl does the same).
_K3_BOUND = 10.0


# --- masked statistics -----------------------------------------------------------------------


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``x * mask``, with masked-out entries contributing exactly 0.

    Args:
        x: any shape, e.g. ``(B, T)``.
        mask: same shape as ``x`` (bool or float).
        dim: the dimension to sum over; ``None`` sums everything.

    Returns:
        A scalar when ``dim`` is None, otherwise ``x`` with ``dim`` removed.

    ``torch.where`` rather than a plain product, so that ``inf``/``nan`` on masked-out entries
    (the log-probability of a padding token, say) cannot turn the sum into ``nan``.
    """
    weighted = torch.where(mask.bool(), x * mask.to(x.dtype), torch.zeros_like(x))
    return weighted.sum() if dim is None else weighted.sum(dim=dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is 1 (0 when none is).

    Args:
        x: any shape, e.g. ``(B, T)``.
        mask: same shape as ``x``.
        dim: the dimension to average over; ``None`` averages everything.

    Returns:
        A scalar when ``dim`` is None, otherwise ``x`` with ``dim`` removed.
    """
    count = mask.to(x.dtype).sum() if dim is None else mask.to(x.dtype).sum(dim=dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1e-8)


def masked_var(x: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance of ``x`` over the entries where ``mask`` is 1.

    Args:
        x: any shape, e.g. ``(B, T)``.
        mask: same shape as ``x``.
        unbiased: apply Bessel's correction ``n / (n - 1)``, as verl and TRL do.

    Returns:
        A scalar. With fewer than two counted entries the correction is skipped (the variance
        of one value is 0) instead of dividing by zero.
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    if unbiased:
        n = mask.to(x.dtype).sum()
        var = torch.where(n > 1, var * n / (n - 1).clamp(min=1e-8), var)
    return var


def masked_whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """Standardise ``x`` with the mean and (unbiased) variance of its counted entries.

    Args:
        x: any shape, e.g. advantages ``(B, T)`` or turn advantages ``(B, K)``.
        mask: same shape as ``x``.
        shift_mean: when False the mean is added back, so only the scale changes (verl's
            meaning of the flag).
        eps: added to the variance before the square root.

    Returns:
        Same shape as ``x``: ``(x - mean) / sqrt(var + eps)`` on counted entries, 0 elsewhere.
    """
    mean = masked_mean(x, mask)
    whitened = (x - mean) * torch.rsqrt(masked_var(x, mask) + eps)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask.bool(), whitened, torch.zeros_like(whitened))


# --- advantages --------------------------------------------------------------------------------


@torch.no_grad()
def gae(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the tokens of ``mask``.

    Each counted token is one time step; masked tokens (prompt, padding, env feedback between
    turns) are not time steps: the recursion carries the next value and the running advantage
    through them unchanged, so nothing on a masked token (its value, its reward) changes the
    advantage of a counted token. For a counted token ``t`` with next counted token ``t'``::

        delta_t = r_t + gamma * values[:, t'] - values[:, t]
        A_t     = delta_t + gamma * lam * A_t'
        R_t     = A_t + values[:, t]              (the TD(lambda) return: the critic's target)

    and after the last counted token the episode is over (next value 0, ``A = 0``), truncated
    responses included: the environment scored them as they are.

    Args:
        rewards: ``(B, T)`` reward after each token (e.g. the env's score on the last response
            token, minus a per-token KL penalty). Put rewards on counted tokens only.
        values: ``(B, T)`` old values, aligned: ``values[:, t]`` = V(state before token t).
        mask: ``(B, T)`` 1 on the tokens the policy wrote and is trained on.
        gamma: discount per token.
        lam: GAE's lambda.

    Returns:
        ``(advantages, returns)``, both ``(B, T)``, 0 on masked tokens, without gradient, at
        least float32. The advantages are not whitened: apply :func:`masked_whiten` if wanted.
    """
    keep = mask.bool()
    # A running sum over hundreds of tokens: keep it in at least float32 even for bf16 values.
    values = values.detach().to(torch.promote_types(values.dtype, torch.float32))
    rewards = rewards.to(values.dtype)
    next_value = torch.zeros_like(values[:, 0])
    running = torch.zeros_like(values[:, 0])
    advantages = torch.zeros_like(values)
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = torch.where(keep[:, t], delta + gamma * lam * running, running)
        next_value = torch.where(keep[:, t], values[:, t], next_value)
        advantages[:, t] = running
    zeros = torch.zeros_like(values)
    returns = torch.where(keep, advantages + values, zeros)
    return torch.where(keep, advantages, zeros), returns


@torch.no_grad()
def grpo_advantages(
    scores: Tensor, group_ids: Tensor, eps: float = 1e-6, scale: bool = True
) -> Tensor:
    """GRPO's group-relative advantage: ``(r - mean_g) / (std_g + eps)`` per sample.

    ``std_g`` is the unbiased (Bessel-corrected) standard deviation, as verl's and TRL's GRPO
    compute it, so numbers compare with those frameworks. A group of one sample has no baseline
    to compare with and gets 0; a group whose scores are all equal gets 0 too.

    Args:
        scores: ``(B,)`` one scalar return per sample.
        group_ids: ``(B,)`` long; samples of the same prompt share an id (any integers).
        eps: added to the group's standard deviation.
        scale: divide by the standard deviation; False leaves ``r - mean_g`` (Dr. GRPO).

    Returns:
        ``(B,)`` advantages, without gradient; broadcast them over each sample's tokens.
    """
    ids, group = torch.unique(group_ids, return_inverse=True)
    num_groups = ids.numel()
    scores = scores.detach().to(torch.promote_types(scores.dtype, torch.float32))

    def group_sum(x: Tensor) -> Tensor:
        return torch.zeros(num_groups, dtype=x.dtype, device=x.device).index_add_(0, group, x)

    counts = group_sum(torch.ones_like(scores))
    centered = scores - (group_sum(scores) / counts)[group]
    if scale:
        std = (group_sum(centered**2) / (counts - 1).clamp(min=1)).sqrt()
        centered = centered / (std[group] + eps)
    return torch.where(counts[group] > 1, centered, torch.zeros_like(centered))


# --- losses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyStats:
    """Statistics of one :func:`policy_loss` call: detached scalar tensors.

    Both are divided by the same ``num_tokens`` as the loss, so summing them over the
    micro-batches of a batch gives the whole batch's figure.
    """

    clipfrac: Tensor
    """Share of counted tokens where the clipped term won (``train/clipfrac``)."""
    approx_kl: Tensor
    """Mean k3 estimate of KL(old policy || new policy) (``train/approx_kl``)."""


def _divisor(num_tokens: float | Tensor, like: Tensor) -> Tensor:
    # At least float32, so a bf16 loss is not divided by a rounded count; at least 1, so an
    # all-masked batch gives a loss of 0 rather than nan.
    dtype = torch.promote_types(like.dtype, torch.float32)
    return torch.as_tensor(num_tokens, dtype=dtype, device=like.device).clamp(min=1)


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float,
    num_tokens: float | Tensor,
) -> tuple[Tensor, PolicyStats]:
    """PPO's clipped surrogate loss, token-mean over the whole batch.

    ::

        ratio = exp(logprobs - old_logprobs)
        loss  = sum(mask * max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))) / num_tokens

    Args:
        logprobs: ``(B, T)`` log-probabilities under the policy being trained (with gradient).
        old_logprobs: ``(B, T)`` log-probabilities under the policy that sampled the batch.
        advantages: ``(B, T)``.
        mask: ``(B, T)`` tokens the policy loss covers (e.g. the FGO mask).
        clip_eps: PPO's epsilon (0.2 in both papers).
        num_tokens: tokens counted in the whole batch, all micro-batches and ranks
            (:func:`token_count` of the whole batch's mask).

    Returns:
        ``(loss, stats)``: a scalar loss, and :class:`PolicyStats`. ``old_logprobs`` and
        ``advantages`` are treated as constants (no gradient flows into them).
    """
    old_logprobs, advantages = old_logprobs.detach(), advantages.detach()
    log_ratio = (logprobs - old_logprobs).clamp(-_LOG_RATIO_BOUND, _LOG_RATIO_BOUND)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    divisor = _divisor(num_tokens, logprobs)
    loss = masked_sum(torch.maximum(unclipped, clipped), mask) / divisor
    with torch.no_grad():
        clipfrac = masked_sum((clipped > unclipped).to(divisor.dtype), mask) / divisor
        kl = masked_sum(kl_penalty(old_logprobs, logprobs.detach(), "k3"), mask) / divisor
    return loss, PolicyStats(clipfrac=clipfrac, approx_kl=kl)


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_eps: float,
    num_tokens: float | Tensor,
) -> tuple[Tensor, Tensor]:
    """PPO's clipped value loss, token-mean over the whole batch.

    ::

        v_clip = old_values + clip(values - old_values, -eps, eps)
        loss   = 0.5 * sum(mask * max((values - R)^2, (v_clip - R)^2)) / num_tokens

    Works on tokens ``(B, T)`` or on turns ``(B, K)`` alike (RLEF's turn-level critic: mask =
    the turns present, ``num_tokens`` = the whole batch's turn count).

    Args:
        values: ``(B, T)`` values from the critic being trained (with gradient).
        old_values: ``(B, T)`` values from the critic when the batch was collected.
        returns: ``(B, T)`` targets (``gae``'s returns or RLEF's turn returns).
        mask: ``(B, T)`` entries that count.
        clip_eps: how far a value may move from ``old_values`` before the clipped term takes
            over (``math.inf`` switches clipping off).
        num_tokens: entries counted in the whole batch, all micro-batches and ranks.

    Returns:
        ``(loss, clipfrac)``: scalars; ``clipfrac`` (detached) is the share of counted entries
        where the clipped term was larger, divided by ``num_tokens`` like the loss.
    """
    old_values, returns = old_values.detach(), returns.detach()
    clipped_values = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
    unclipped_err = (values - returns) ** 2
    clipped_err = (clipped_values - returns) ** 2
    divisor = _divisor(num_tokens, values)
    loss = 0.5 * masked_sum(torch.maximum(unclipped_err, clipped_err), mask) / divisor
    with torch.no_grad():
        clipfrac = masked_sum((clipped_err > unclipped_err).to(divisor.dtype), mask) / divisor
    return loss, clipfrac


# --- KL and entropy ---------------------------------------------------------------------------


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, kind: str = "k1") -> Tensor:
    """Per-token estimate of KL(pi || ref) from tokens sampled from pi.

    Estimators (Schulman, "Approximating KL divergence", 2020), with ``d = logprobs -
    ref_logprobs``:

    - ``k1``: ``d``, unbiased, high variance, can be negative (StepCoder's and RLEF's penalty);
    - ``k3``: ``ratio - 1 - log(ratio)`` with ``ratio = ref / pi = exp(-d)``: unbiased, never
      negative, low variance (verl's ``low_var_kl``; log-ratio clamped to +-20, result to 10);
    - ``abs``: ``|d|``;
    - ``mse``: ``0.5 * d^2`` (k2).

    Args:
        logprobs: ``(B, T)`` log-probabilities under the sampling policy pi.
        ref_logprobs: ``(B, T)`` log-probabilities under the reference.
        kind: one of :data:`KL_KINDS`.

    Returns:
        ``(B, T)`` per-token estimates (mask them yourself).

    Raises:
        UsageError: ``kind`` is not one of :data:`KL_KINDS`.
    """
    diff = logprobs - ref_logprobs
    if kind == "k1":
        return diff
    if kind == "k3":
        log_ratio = (-diff).clamp(-_LOG_RATIO_BOUND, _LOG_RATIO_BOUND)
        return (torch.exp(log_ratio) - 1.0 - log_ratio).clamp(max=_K3_BOUND)
    if kind == "abs":
        return diff.abs()
    if kind == "mse":
        return 0.5 * diff**2
    raise UsageError(f"unknown KL estimator {kind!r}: choose one of {', '.join(KL_KINDS)}")


def approx_kl(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor) -> Tensor:
    """Mean k3 estimate of KL(old || new) over counted tokens (PPO's early-stop signal).

    Args:
        logprobs: ``(B, T)`` under the current policy.
        old_logprobs: ``(B, T)`` under the policy that sampled the tokens.
        mask: ``(B, T)``.

    Returns:
        A scalar: ``masked_mean(r - 1 - log r)`` with ``r = new / old``.
    """
    return masked_mean(kl_penalty(old_logprobs, logprobs, "k3"), mask)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the softmax distribution at each position.

    Args:
        logits: ``(B, T, V)``.

    Returns:
        ``(B, T)``: ``logsumexp(z) - sum(softmax(z) * z)``, which equals ``-sum(p log p)``
        without forming ``log p``.
    """
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


# --- RLEF: turn-level returns, values and KL ---------------------------------------------------


def token_turn_index(response_mask: Tensor) -> Tensor:
    """Number the model's turns in a conversation: each run of counted tokens is one turn.

    Args:
        response_mask: ``(B, T)`` 1 on model-written tokens. Two responses must be separated
            by at least one uncounted token (the env's feedback message always is).

    Returns:
        ``(B, T)`` long: 0 on the first response's tokens, 1 on the second's, ..., -1 on every
        uncounted token.
    """
    counted = response_mask.bool()
    before = torch.zeros_like(counted)
    before[:, 1:] = counted[:, :-1]
    starts = (counted & ~before).long()
    index = starts.cumsum(dim=1) - 1
    return torch.where(counted, index, torch.full_like(index, -1))


def _turn_slots(token_turn: Tensor, num_turns: int) -> Tensor:
    # Send non-response tokens (-1) to an extra slot K that callers drop, so one scatter
    # handles every token without boolean indexing.
    return torch.where(token_turn < 0, torch.full_like(token_turn, num_turns), token_turn).long()


def _turn_sum(x: Tensor, token_turn: Tensor, num_turns: int) -> Tensor:
    slots = _turn_slots(token_turn, num_turns)
    out = torch.zeros(x.shape[0], num_turns + 1, dtype=x.dtype, device=x.device)
    return out.scatter_add(1, slots, x)[:, :num_turns]


def turn_lengths(token_turn: Tensor, num_turns: int) -> Tensor:
    """Number of model-written tokens in each turn.

    Args:
        token_turn: ``(B, T)`` long, turn index per token, -1 off responses.
        num_turns: ``K``, the number of turn columns (the env's ``max_turns``).

    Returns:
        ``(B, K)`` long; 0 marks a turn the episode did not reach (use ``> 0`` as turn mask).
    """
    ones = torch.ones_like(token_turn, dtype=torch.long)
    return _turn_sum(ones, token_turn, num_turns)


def turn_kl(logprobs: Tensor, ref_logprobs: Tensor, token_turn: Tensor, num_turns: int) -> Tensor:
    """RLEF's per-turn KL: the mean over a response's tokens of ``log pi - log ref``.

    The mean, not the sum, is the log of the geometric mean of the per-token ratios, so a long
    response is not penalised more than a short one with the same per-token drift.

    Args:
        logprobs: ``(B, T)`` under the sampling policy.
        ref_logprobs: ``(B, T)`` under the reference.
        token_turn: ``(B, T)`` long, turn index per token, -1 off responses.
        num_turns: ``K``.

    Returns:
        ``(B, K)``, 0 on turns the episode did not reach. ``R_t = r_t - beta * turn_kl``.
    """
    counted = token_turn >= 0
    diff = torch.where(counted, logprobs - ref_logprobs, torch.zeros_like(logprobs))
    lengths = turn_lengths(token_turn, num_turns)
    return _turn_sum(diff, token_turn, num_turns) / lengths.clamp(min=1).to(diff.dtype)


def values_at_turn_starts(values: Tensor, token_turn: Tensor, num_turns: int) -> Tensor:
    """RLEF's turn value V(c_t): the aligned value at each response's first token.

    With the contract's alignment, ``values[:, t]`` is read from the hidden state of token
    ``t - 1``; at a response's first token that is the last prompt token before it, the
    state the whole response is conditioned on (as AReaL's turn-level GAE does).

    Args:
        values: ``(B, T)`` aligned token values.
        token_turn: ``(B, T)`` long, turn index per token, -1 off responses.
        num_turns: ``K``.

    Returns:
        ``(B, K)``, 0 on turns the episode did not reach.
    """
    batch, length = token_turn.shape
    positions = torch.arange(length, device=token_turn.device).expand(batch, length)
    first = torch.full((batch, num_turns + 1), length, dtype=torch.long, device=values.device)
    first = first.scatter_reduce(1, _turn_slots(token_turn, num_turns), positions, reduce="amin")
    first = first[:, :num_turns]
    present = first < length
    gathered = values.gather(1, first.clamp(max=length - 1))
    return torch.where(present, gathered, torch.zeros_like(gathered))


def turn_returns(rewards: Tensor, turn_mask: Tensor) -> Tensor:
    """Undiscounted return to go of each turn: ``G_t = sum_{i >= t} R_i`` (gamma 1, as RLEF).

    Args:
        rewards: ``(B, K)`` reward of each turn, KL penalty included (``r_t - beta * KL_t``).
        turn_mask: ``(B, K)`` 1 on turns the episode reached.

    Returns:
        ``(B, K)``, 0 on absent turns (their rewards are ignored).
    """
    keep = turn_mask.bool()
    present = torch.where(keep, rewards, torch.zeros_like(rewards))
    to_go = present.flip(1).cumsum(1).flip(1)
    return torch.where(keep, to_go, torch.zeros_like(to_go))


def turn_advantages(returns: Tensor, values: Tensor, turn_mask: Tensor) -> Tensor:
    """RLEF's turn advantage ``A_t = G_t - V(c_t)``, one per turn.

    Args:
        returns: ``(B, K)`` from :func:`turn_returns`.
        values: ``(B, K)`` from :func:`values_at_turn_starts` (old values).
        turn_mask: ``(B, K)``.

    Returns:
        ``(B, K)``, 0 on absent turns, without gradient. RLEF normalises them over the batch
        (``masked_whiten(adv, turn_mask)``) before :func:`broadcast_turns` spreads them over
        tokens.
    """
    diff = returns.detach() - values.detach()
    return torch.where(turn_mask.bool(), diff, torch.zeros_like(diff))


def broadcast_turns(turn_values: Tensor, token_turn: Tensor) -> Tensor:
    """Give every token of a turn that turn's value (advantage, return, ...).

    Args:
        turn_values: ``(B, K)``.
        token_turn: ``(B, T)`` long, turn index per token, -1 off responses.

    Returns:
        ``(B, T)``: ``turn_values[b, token_turn[b, t]]``, 0 where ``token_turn`` is -1.
    """
    gathered = turn_values.gather(1, token_turn.clamp(min=0).long())
    return torch.where(token_turn >= 0, gathered, torch.zeros_like(gathered))


# --- distributed token count -----------------------------------------------------------------


def token_count(mask: Tensor, group: torch.distributed.ProcessGroup | None = None) -> Tensor:
    """Number of counted tokens in the whole batch, over every rank.

    Call it once per minibatch on the mask of the *whole* minibatch (all its micro-batches)
    and pass the result as ``num_tokens`` to every loss of that minibatch.

    Args:
        mask: ``(B, T)`` (or ``(B, K)`` for turns) of this rank's share of the batch.
        group: the process group to sum over (default: the world) when ``torch.distributed``
            is initialised; ignored otherwise.

    Returns:
        A float32 scalar on ``mask``'s device, without gradient. Counts are exact up to 2^24.
    """
    count = mask.detach().to(torch.float32).sum()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.SUM, group=group)
    return count
