"""PPO maths: hand-computed values (SB3's test_gae style) and the invariances the trainer needs.

Invariances: nothing on a masked token changes an advantage; a batch gives the same loss and
gradients whole or split into micro-batches; RLEF's per-turn KL does not grow with the length
of a response.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from pathlib import Path

import pytest
import torch

from agents.core import (
    approx_kl,
    broadcast_turns,
    entropy_from_logits,
    gae,
    grpo_advantages,
    kl_penalty,
    masked_mean,
    masked_sum,
    masked_var,
    masked_whiten,
    policy_loss,
    token_count,
    token_turn_index,
    turn_advantages,
    turn_kl,
    turn_lengths,
    turn_returns,
    value_loss,
    values_at_turn_starts,
)
from codegym.errors import UsageError

T_ = torch.tensor


def close(actual: torch.Tensor, expected: object, atol: float = 1e-6) -> None:
    torch.testing.assert_close(
        actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0
    )


# --- masked statistics -----------------------------------------------------------------------


def test_masked_mean_and_var_ignore_masked_entries_even_nan() -> None:
    x = T_([[1.0, 2.0, 3.0], [4.0, 5.0, math.nan]])
    mask = T_([[1, 0, 1], [1, 0, 0]])
    close(masked_sum(x, mask), 8.0)
    close(masked_mean(x, mask), 8.0 / 3.0)
    close(masked_mean(x, mask, dim=1), [2.0, 4.0])
    # (1, 3, 4): squared deviations from 8/3 sum to 42/9; unbiased divides by n - 1 = 2.
    close(masked_var(x, mask), 7.0 / 3.0)
    close(masked_var(x, mask, unbiased=False), 14.0 / 9.0)
    close(masked_var(x, mask), torch.var(T_([1.0, 3.0, 4.0])))


def test_masked_mean_of_nothing_is_zero_and_var_of_one_value_is_zero() -> None:
    x = T_([[5.0, 6.0]])
    close(masked_mean(x, T_([[0, 0]])), 0.0)
    close(masked_var(x, T_([[1, 0]])), 0.0)


def test_masked_whiten_standardises_counted_entries_only() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, generator=gen) * 4.0 + 3.0
    mask = torch.rand(3, 8, generator=gen) > 0.4
    white = masked_whiten(x, mask)
    close(masked_mean(white, mask), 0.0, atol=1e-5)
    close(masked_var(white, mask), 1.0, atol=1e-5)
    assert torch.all(white[~mask] == 0)
    # Values on masked entries play no part.
    noisy = torch.where(mask, x, torch.randn(3, 8, generator=gen) * 1e3)
    torch.testing.assert_close(masked_whiten(noisy, mask), white)
    # shift_mean=False keeps the mean and only rescales.
    scaled = masked_whiten(x, mask, shift_mean=False)
    close(masked_mean(scaled, mask), masked_mean(x, mask), atol=1e-5)
    close(masked_var(scaled, mask), 1.0, atol=1e-5)


# --- GAE -------------------------------------------------------------------------------------


def test_gae_hand_computed() -> None:
    """One prompt token (masked, junk value), three response tokens, reward on the last."""
    gamma, lam = 0.9, 0.8
    rewards = T_([[0.0, 0.0, 0.0, 1.0]])
    values = T_([[7.0, 0.5, 0.4, 0.6]])
    mask = T_([[0, 1, 1, 1]])
    # delta_t = r_t + gamma * V_{t+1} - V_t, with V after the last token = 0 (terminal)
    d3 = 1.0 + gamma * 0.0 - 0.6  # 0.4
    d2 = 0.0 + gamma * 0.6 - 0.4  # 0.14
    d1 = 0.0 + gamma * 0.4 - 0.5  # -0.14
    a3 = d3  # 0.4
    a2 = d2 + gamma * lam * a3  # 0.428
    a1 = d1 + gamma * lam * a2  # 0.16816
    adv, ret = gae(rewards, values, mask, gamma, lam)
    close(adv, [[0.0, a1, a2, a3]])
    close(adv, [[0.0, 0.16816, 0.428, 0.4]])
    close(ret, [[0.0, a1 + 0.5, a2 + 0.4, a3 + 0.6]])


def test_gae_skips_gap_between_turns() -> None:
    """Masked feedback tokens are not time steps: the step after token 1 is token 4."""
    gamma, lam = 0.5, 1.0
    rewards = T_([[0.0, 0.5, 0.0, 0.0, 1.0]])
    values = T_([[1.0, 2.0, 100.0, -100.0, 4.0]])
    mask = T_([[1, 1, 0, 0, 1]])
    a4 = 1.0 - 4.0  # -3
    a1 = (0.5 + gamma * 4.0 - 2.0) + gamma * lam * a4  # 0.5 - 1.5 = -1
    a0 = (0.0 + gamma * 2.0 - 1.0) + gamma * lam * a1  # 0 - 0.5 = -0.5
    adv, ret = gae(rewards, values, mask, gamma, lam)
    close(adv, [[a0, a1, 0.0, 0.0, a4]])
    # lam = 1: returns are the discounted Monte Carlo returns over counted tokens.
    close(ret, [[gamma * 0.5 + gamma**2 * 1.0, 0.5 + gamma * 1.0, 0.0, 0.0, 1.0]])


def test_gae_lambda_one_gamma_one_is_reward_to_go_minus_value() -> None:
    gen = torch.Generator().manual_seed(1)
    rewards = torch.randn(3, 6, generator=gen)
    values = torch.randn(3, 6, generator=gen)
    mask = torch.ones(3, 6)
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    to_go = rewards.flip(1).cumsum(1).flip(1)
    torch.testing.assert_close(ret, to_go)
    torch.testing.assert_close(adv, to_go - values)


def _gae_on_counted_tokens(
    rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """Plain GAE (no masks) over a 1-D sequence of counted tokens."""
    adv, running, next_value = torch.zeros_like(values), 0.0, 0.0
    for t in reversed(range(len(values))):
        delta = float(rewards[t]) + gamma * next_value - float(values[t])
        running = delta + gamma * lam * running
        next_value = float(values[t])
        adv[t] = running
    return adv


def test_gae_masked_tokens_change_nothing() -> None:
    """verl's multi-turn test: random values and rewards on masked tokens leave advantages alone,
    and the result equals plain GAE run on the counted tokens alone."""
    gen = torch.Generator().manual_seed(2)
    b, t, gamma, lam = 4, 12, 0.95, 0.9
    mask = torch.rand(b, t, generator=gen) > 0.4
    mask[:, -1] = True
    rewards = torch.where(mask, torch.randn(b, t, generator=gen), 0.0)
    values = torch.randn(b, t, generator=gen)
    adv1, ret1 = gae(rewards, values, mask, gamma, lam)
    junk_values = torch.where(mask, values, torch.randn(b, t, generator=gen) * 100.0)
    junk_rewards = torch.where(mask, rewards, torch.randn(b, t, generator=gen) * 100.0)
    adv2, ret2 = gae(junk_rewards, junk_values, mask, gamma, lam)
    assert torch.equal(adv1, adv2)
    assert torch.equal(ret1, ret2)
    assert torch.all(adv1[~mask] == 0) and torch.all(ret1[~mask] == 0)
    for row in range(b):
        expected = _gae_on_counted_tokens(
            rewards[row][mask[row]], values[row][mask[row]], gamma, lam
        )
        torch.testing.assert_close(adv1[row][mask[row]], expected)


def test_gae_has_no_gradient() -> None:
    values = torch.randn(2, 3, requires_grad=True)
    adv, ret = gae(torch.ones(2, 3), values, torch.ones(2, 3), 1.0, 0.95)
    assert not adv.requires_grad and not ret.requires_grad


# --- losses -----------------------------------------------------------------------------------


def test_policy_loss_clip_hand_values() -> None:
    """eps 0.2: (A=+1, r=1.5) and (A=-1, r=0.5) are clipped; the other two are not."""
    old = torch.zeros(1, 4)
    ratios = T_([[1.5, 0.5, 1.5, 0.5]])
    new = ratios.log().requires_grad_(True)
    adv = T_([[1.0, 1.0, -1.0, -1.0]])
    loss, stats = policy_loss(new, old, adv, torch.ones(1, 4), 0.2, num_tokens=4)
    # max(-A r, -A clip(r)): -1.2 (clipped), -0.5, 1.5, 0.8 (clipped)
    close(loss, (-1.2 - 0.5 + 1.5 + 0.8) / 4)
    close(stats.clipfrac, 0.5)
    k3 = lambda r: r - 1 - math.log(r)  # noqa: E731
    close(stats.approx_kl, 2 * (k3(1.5) + k3(0.5)) / 4)
    assert not stats.clipfrac.requires_grad and not stats.approx_kl.requires_grad
    loss.backward()
    # d/dlogp of -A r is -A r; clipped tokens get no gradient.
    assert new.grad is not None
    close(new.grad, [[0.0, -0.5 / 4, 1.5 / 4, 0.0]])


def test_policy_loss_equals_token_mean_on_a_whole_batch() -> None:
    gen = torch.Generator().manual_seed(3)
    new, old, adv = (torch.randn(3, 5, generator=gen) for _ in range(3))
    mask = torch.rand(3, 5, generator=gen) > 0.3
    loss, stats = policy_loss(new, old, adv, mask, 0.2, token_count(mask))
    ratio = (new - old).exp()
    per_token = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    close(loss, masked_mean(per_token, mask))
    close(stats.approx_kl, approx_kl(new, old, mask))


def test_value_loss_clip_hand_values() -> None:
    values = T_([[0.5, 0.1, 1.5]], requires_grad=True)
    old = T_([[0.0, 0.0, 1.0]])
    returns = T_([[1.0, 1.0, 1.0]])
    loss, clipfrac = value_loss(values, old, returns, torch.ones(1, 3), 0.2, num_tokens=3)
    # token 0: max((0.5-1)^2, (0.2-1)^2) = 0.64 (clipped); token 1: 0.81 both ways;
    # token 2: max((1.5-1)^2, (1.2-1)^2) = 0.25 (unclipped)
    close(loss, 0.5 * (0.64 + 0.81 + 0.25) / 3)
    close(clipfrac, 1.0 / 3.0)
    loss.backward()
    assert values.grad is not None
    # d/dv 0.5 (v - R)^2 / 3 = (v - R) / 3 where the unclipped term wins, else 0.
    close(values.grad, [[0.0, -0.9 / 3, 0.5 / 3]])


def test_value_loss_without_clipping() -> None:
    values, old, returns = T_([[3.0]]), T_([[0.0]]), T_([[1.0]])
    loss, clipfrac = value_loss(values, old, returns, torch.ones(1, 1), math.inf, 1)
    close(loss, 0.5 * 4.0)
    close(clipfrac, 0.0)


class _TinyPolicy(torch.nn.Module):
    """Logits from fixed features through one shared linear layer, plus a value head."""

    def __init__(self, dim: int, vocab: int) -> None:
        super().__init__()
        self.lm = torch.nn.Linear(dim, vocab)
        self.v = torch.nn.Linear(dim, 1)

    def forward(
        self, features: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(self.lm(features), dim=-1)
        return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), self.v(features).squeeze(-1)


def _ppo_losses(
    model: _TinyPolicy, batch: tuple[torch.Tensor, ...], rows: slice, num_tokens: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    features, tokens, old_lp, adv, old_v, ret, mask = (x[rows] for x in batch)
    logp, values = model(features, tokens)
    p_loss, stats = policy_loss(logp, old_lp, adv, mask, 0.2, num_tokens)
    v_loss, v_clip = value_loss(values, old_v, ret, mask, 0.2, num_tokens)
    return p_loss + 0.5 * v_loss, (p_loss, v_loss, stats.clipfrac, stats.approx_kl, v_clip)


def test_micro_batches_give_the_whole_batch_loss_and_gradients() -> None:
    torch.manual_seed(4)
    b, t, dim, vocab = 6, 7, 5, 11
    model = _TinyPolicy(dim, vocab)
    features, tokens = torch.randn(b, t, dim), torch.randint(vocab, (b, t))
    with torch.no_grad():
        logp, values = model(features, tokens)
    mask = torch.rand(b, t) > 0.3
    mask[0, :] = False  # a micro-batch row with no counted token at all
    # Old policy/critic a little off, so some ratios and values get clipped.
    batch = (
        features,
        tokens,
        logp + 0.3 * torch.randn(b, t),
        torch.randn(b, t),
        values + 0.3 * torch.randn(b, t),
        torch.randn(b, t),
        mask,
    )
    num_tokens = token_count(mask)

    whole_loss, whole_parts = _ppo_losses(model, batch, slice(0, b), num_tokens)
    whole_loss.backward()
    whole_grads = [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]
    assert whole_parts[2] > 0 and whole_parts[4] > 0  # the clipped branches are exercised

    model.zero_grad()
    split_parts = [torch.zeros(()) for _ in whole_parts]
    for rows in (slice(0, 2), slice(2, 5), slice(5, 6)):
        loss, parts = _ppo_losses(model, batch, rows, num_tokens)
        loss.backward()
        split_parts = [acc + p.detach() for acc, p in zip(split_parts, parts, strict=True)]
    for whole, split in zip(whole_parts, split_parts, strict=True):
        torch.testing.assert_close(split, whole.detach())
    for whole_grad, p in zip(whole_grads, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, whole_grad)

    # The test can fail: dividing each micro-batch by its own count gives another loss.
    local = torch.stack(
        [
            _ppo_losses(model, batch, rows, token_count(mask[rows]))[0].detach()
            for rows in (slice(0, 2), slice(2, 5), slice(5, 6))
        ]
    ).sum()
    assert not torch.allclose(local, whole_loss.detach())


# --- KL and entropy ---------------------------------------------------------------------------


def test_kl_estimators_hand_values() -> None:
    logp, ref = T_([[math.log(0.5), math.log(0.25)]]), T_([[math.log(0.25), math.log(0.5)]])
    ln2 = math.log(2.0)
    close(kl_penalty(logp, ref, "k1"), [[ln2, -ln2]])
    # k3 = ratio - 1 - log(ratio), ratio = ref / pi: 0.5 then 2.
    close(kl_penalty(logp, ref, "k3"), [[0.5 - 1 - math.log(0.5), 2 - 1 - math.log(2.0)]])
    close(kl_penalty(logp, ref, "abs"), [[ln2, ln2]])
    close(kl_penalty(logp, ref, "mse"), [[0.5 * ln2**2, 0.5 * ln2**2]])
    assert torch.all(kl_penalty(logp, ref, "k3") >= 0)


def test_k1_and_k3_are_unbiased_for_the_exact_kl() -> None:
    """Under pi, E[k1] = E[k3] = KL(pi || ref): check exactly by summing over a vocabulary."""
    pi, ref = T_([0.5, 0.3, 0.2]), T_([0.2, 0.3, 0.5])
    exact = float((pi * (pi / ref).log()).sum())
    for kind in ("k1", "k3"):
        estimate = kl_penalty(pi.log()[None], ref.log()[None], kind)[0]
        close((pi * estimate).sum(), exact)


def test_kl_penalty_rejects_unknown_kind() -> None:
    with pytest.raises(UsageError, match="k1, k3, abs, mse"):
        kl_penalty(torch.zeros(1, 1), torch.zeros(1, 1), "k2")


def test_approx_kl_is_zero_for_the_same_policy_and_positive_otherwise() -> None:
    lp = torch.randn(2, 4)
    mask = torch.ones(2, 4)
    close(approx_kl(lp, lp, mask), 0.0)
    assert approx_kl(lp + 0.1, lp, mask) > 0


def test_entropy_from_logits() -> None:
    close(entropy_from_logits(torch.zeros(2, 3, 8)), torch.full((2, 3), math.log(8.0)))
    logits = torch.randn(2, 3, 5)
    expected = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(entropy_from_logits(logits), expected)


# --- RLEF turns ------------------------------------------------------------------------------

# Three left-padded conversations (T = 12): "p" prompt/padding, "f" feedback, digits = turn.
#   A, 1 turn:  p p p p p p p p p 0 0 0
#   B, 2 turns: p p p p 0 0 f f f 1 1 1
#   C, 3 turns: p 0 0 f f 1 f f 2 2 2 2
RESPONSE_MASK = T_(
    [
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1],
        [0, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1],
    ]
)
TOKEN_TURN = T_(
    [
        [-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0],
        [-1, -1, -1, -1, 0, 0, -1, -1, -1, 1, 1, 1],
        [-1, 0, 0, -1, -1, 1, -1, -1, 2, 2, 2, 2],
    ]
)
TURN_MASK = T_([[1, 0, 0], [1, 1, 0], [1, 1, 1]]).bool()


def test_token_turn_index_and_turn_lengths() -> None:
    assert torch.equal(token_turn_index(RESPONSE_MASK), TOKEN_TURN)
    assert torch.equal(turn_lengths(TOKEN_TURN, 3), T_([[3, 0, 0], [2, 3, 0], [2, 1, 4]]))
    assert torch.equal(turn_lengths(TOKEN_TURN, 3) > 0, TURN_MASK)


def test_turn_kl_is_the_mean_log_ratio_of_each_turn() -> None:
    ref = torch.full((3, 12), -2.0)
    log_ratio = T_(
        [
            [9, 9, 9, 9, 9, 9, 9, 9, 9, 0.1, 0.2, 0.3],
            [9, 9, 9, 9, 0.4, 0.0, 9, 9, 9, -0.3, 0.0, 0.6],
            [9, 1.0, 0.0, 9, 9, 0.5, 9, 9, 0.1, 0.1, 0.1, 0.1],
        ]
    )  # 9 on tokens that are not the model's: must not count
    kl = turn_kl(ref + log_ratio, ref, TOKEN_TURN, 3)
    close(kl, [[0.2, 0.0, 0.0], [0.2, 0.1, 0.0], [0.5, 0.5, 0.1]])


def test_turn_kl_is_a_geometric_mean_so_length_does_not_matter() -> None:
    """A response twice as long with the same per-token ratio gets the same KL."""
    short = T_([[-1, 0, 0, 0, -1, -1, -1, -1]])
    long = T_([[-1, 0, 0, 0, 0, 0, 0, -1]])
    ref = torch.full((1, 8), -1.5)
    logp = ref + 0.25
    kl_short, kl_long = turn_kl(logp, ref, short, 1), turn_kl(logp, ref, long, 1)
    close(kl_short, [[0.25]])
    torch.testing.assert_close(kl_long, kl_short)
    # ... whereas the summed (token-level) KL doubles.
    close(masked_sum(logp - ref, long >= 0), 2 * masked_sum(logp - ref, short >= 0))


def test_values_at_turn_starts_reads_each_response_first_token() -> None:
    values = torch.arange(36, dtype=torch.float32).reshape(3, 12)
    v = values_at_turn_starts(values, TOKEN_TURN, 3)
    # First tokens: A 9; B 4, 9; C 1, 5, 8 (row offsets 0, 12, 24).
    close(v, [[9.0, 0.0, 0.0], [16.0, 21.0, 0.0], [25.0, 29.0, 32.0]])


def test_turn_returns_and_advantages_for_one_two_and_three_turns() -> None:
    beta = 0.05
    env_reward = T_([[1.0, 0, 0], [0.0, 1.0, 0], [-0.2, 0.0, -1.0]])
    kl = T_([[0.4, 0, 0], [0.2, 0.6, 0], [1.0, 0.0, 0.2]])
    reward = env_reward - beta * kl  # A: 0.98; B: -0.01, 0.97; C: -0.25, 0.0, -1.01
    reward = torch.where(TURN_MASK, reward, T_(5.0))  # junk on absent turns: ignored
    returns = turn_returns(reward, TURN_MASK)
    close(returns, [[0.98, 0, 0], [0.96, 0.97, 0], [-1.26, -1.01, -1.01]])
    values = T_([[0.5, 9.0, 9.0], [0.1, 0.3, 9.0], [-0.2, 0.0, -0.5]])
    adv = turn_advantages(returns, values, TURN_MASK)
    close(adv, [[0.48, 0, 0], [0.86, 0.67, 0], [-1.06, -1.01, -0.51]])


def test_turn_advantages_reach_every_token_of_their_turn() -> None:
    adv = T_([[0.48, 0, 0], [0.86, 0.67, 0], [-1.06, -1.01, -0.51]])
    tokens = broadcast_turns(adv, TOKEN_TURN)
    expected = torch.zeros(3, 12)
    expected[0, 9:] = 0.48
    expected[1, 4:6], expected[1, 9:] = 0.86, 0.67
    expected[2, 1:3], expected[2, 5], expected[2, 8:] = -1.06, -1.01, -0.51
    close(tokens, expected)
    # Normalised over the batch's turns, then spread: tokens outside responses stay 0.
    white = broadcast_turns(masked_whiten(adv, TURN_MASK), TOKEN_TURN)
    assert torch.all(white[TOKEN_TURN < 0] == 0)


# --- GRPO and token counts --------------------------------------------------------------------


def test_grpo_advantages_hand_values() -> None:
    scores = T_([1.0, 0.0, 0.0, 1.0, 1.0, 5.0, 2.0, 2.0])
    groups = T_([7, 7, 7, 7, 3, 9, 4, 4])
    # group 7: mean 0.5, unbiased std sqrt(4 * 0.25 / 3); groups 3 and 9 have one sample
    # (no baseline: 0); group 4 is all equal (0).
    z = 0.5 / math.sqrt(1.0 / 3.0)
    close(grpo_advantages(scores, groups), [z, -z, -z, z, 0, 0, 0, 0], atol=1e-5)
    close(grpo_advantages(scores, groups, scale=False), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_token_count_without_distributed() -> None:
    count = token_count(T_([[1, 0, 1], [1, 1, 0]]).bool())
    assert count.dtype == torch.float32
    close(count, 4.0)


def _count_on_rank(rank: int, store_path: str, results: multiprocessing.Queue) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    store = torch.distributed.FileStore(store_path, 2)
    torch.distributed.init_process_group("gloo", store=store, rank=rank, world_size=2)
    try:
        mask = torch.ones(rank + 1, 3)  # 3 tokens on rank 0, 6 on rank 1
        results.put((rank, float(token_count(mask))))
    finally:
        torch.distributed.destroy_process_group()


def test_token_count_sums_over_ranks(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_count_on_rank, args=(r, str(tmp_path / "store"), results))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in range(2)) == [(0, 9.0), (1, 9.0)]
