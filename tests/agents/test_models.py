"""Policies: loading by name, sampling, and log-probs/values that padding does not change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from transformers import AutoModelForCausalLM  # noqa: E402

from agents.models import (  # noqa: E402
    ActorCritic,
    Generation,
    LoraSettings,
    SamplingParams,
    ValueModel,
    generate,
    load_actor_critic,
    load_causal_lm,
    load_tokenizer,
    pad_left,
    position_ids,
    resolve_device,
    resolve_model,
    save_policy,
    token_logprobs,
)
from codegym.errors import UsageError  # noqa: E402

PROMPTS = [
    "Write a function classify(n) that takes an integer n and returns 'low' if n is below 5.\n\n",
    "Read two integers a and b from one line of standard input.\n\n",
    "def f(x):\n",
    "Write a function fold(nums) that takes a list of integers and returns the sum.\n\n"
    "def fold(nums):\n    total = 0\n",
    "x",
]


@pytest.fixture(scope="module")
def lm(small_model_dir: Path) -> tuple:
    model, tok = load_causal_lm(str(small_model_dir), device="cpu")
    return model, tok


def _sequences(tok: object, n: int = 5) -> list[list[int]]:
    """Token sequences of different lengths (the prompts plus a few tokens each)."""
    return [tok.encode(p + "    return n" * (i % 3), add_special_tokens=False) for i, p in
            enumerate(PROMPTS[:n])]  # fmt: skip


# ---- devices and names --------------------------------------------------------------------


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda")


def test_local_folder_loads(small_model_dir: Path, lm: tuple) -> None:
    model, tok = lm
    assert resolve_model(str(small_model_dir)) == str(small_model_dir)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert tok.padding_side == "left" and tok.pad_token == "<|pad|>"
    assert tok.eos_token == "<|endoftext|>" and tok.chat_template


def test_hub_name_loads_from_the_local_cache_offline(
    small_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub name resolves through the Hugging Face cache layout, with no network."""
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--codegym-tests--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(small_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("codegym-tests/tiny") == "codegym-tests/tiny"
    model, tok = load_causal_lm("codegym-tests/tiny", device="cpu", trainable=False)
    reference = AutoModelForCausalLM.from_pretrained(small_model_dir)
    pairs = zip(model.parameters(), reference.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert tok.chat_template == load_tokenizer(str(small_model_dir)).chat_template
    with pytest.raises(UsageError, match=r"unknown model 'codegym-tests/missing'.*HF_HUB_OFFLINE"):
        load_causal_lm("codegym-tests/missing")


def test_bad_names_are_usage_errors(small_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(UsageError, match="holds no model"):
        load_causal_lm(str(tmp_path))
    with pytest.raises(UsageError, match="holds no model"):
        load_tokenizer(str(tmp_path / "notes.txt"))
    with pytest.raises(UsageError, match="does not exist"):
        load_causal_lm(str(tmp_path / "missing" / "model"))
    with pytest.raises(UsageError, match="does not exist"):
        resolve_model("./no-such-model-folder/")
    with pytest.raises(UsageError, match="model must be"):
        resolve_model("  ")
    (tmp_path / "weights-only").mkdir()
    shutil.copy(small_model_dir / "config.json", tmp_path / "weights-only")
    with pytest.raises(UsageError, match="cannot be loaded as a causal language model"):
        load_causal_lm(str(tmp_path / "weights-only"))
    with pytest.raises(UsageError, match="dtype"):
        load_causal_lm(str(small_model_dir), dtype="float13")


# ---- sampling -----------------------------------------------------------------------------


def test_greedy_batched_equals_one_by_one(lm: tuple) -> None:
    model, tok = lm
    params = SamplingParams(temperature=0.0, max_new_tokens=12)
    batched = generate(model, tok, PROMPTS, params, batch_size=3)
    for prompt, gen in zip(PROMPTS, batched, strict=True):
        (alone,) = generate(model, tok, [prompt], params)
        assert gen.response_ids == alone.response_ids
        assert gen.prompt_ids == tok.encode(prompt, add_special_tokens=False)
    assert model.training  # restored after the call


def test_responses_end_exactly_where_they_finish(lm: tuple) -> None:
    model, tok = lm
    torch.manual_seed(0)
    params = SamplingParams(temperature=1.5, max_new_tokens=20)
    gens = generate(model, tok, PROMPTS * 8, params, batch_size=16)
    eos = tok.eos_token_id
    for g in gens:
        assert isinstance(g, Generation)
        assert 1 <= len(g.response_ids) <= 20
        if g.finish_reason == "eos":
            assert g.response_ids[-1] == eos and eos not in g.response_ids[:-1]
            assert g.text == tok.decode(g.response_ids[:-1])
        else:
            assert g.finish_reason == "length" and len(g.response_ids) == 20
            assert eos not in g.response_ids and g.text == tok.decode(g.response_ids)


def test_sampling_follows_torch_seed(lm: tuple) -> None:
    model, tok = lm
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=10)
    runs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        runs.append([g.response_ids for g in generate(model, tok, PROMPTS, params)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_tiny_top_p_is_greedy(lm: tuple) -> None:
    model, tok = lm
    greedy = generate(model, tok, PROMPTS, SamplingParams(temperature=0.0, max_new_tokens=8))
    nucleus = generate(model, tok, PROMPTS, SamplingParams(top_p=1e-6, max_new_tokens=8))
    assert [g.response_ids for g in greedy] == [g.response_ids for g in nucleus]


def _first_new_substring(text: str, length: int, start: int) -> str | None:
    """A substring of ``text`` whose first occurrence begins at or after ``start``."""
    for i in range(start, len(text) - length + 1):
        if text.find(text[i : i + length]) == i:
            return text[i : i + length]
    return None


@pytest.mark.parametrize("length", [1, 2, 6])
def test_stop_string_ends_the_response_at_the_completing_token(lm: tuple, length: int) -> None:
    model, tok = lm
    params = SamplingParams(temperature=1.0, max_new_tokens=40)
    for seed in range(50):  # a sample long enough to hold a new substring of that length
        torch.manual_seed(seed)
        (free,) = generate(model, tok, [PROMPTS[2]], params)
        text = free.text
        stop = _first_new_substring(text, length, start=4)
        if stop is not None:
            break
    assert stop is not None
    torch.manual_seed(seed)  # the same draws, up to the stop
    (stopped,) = generate(model, tok, [PROMPTS[2]], SamplingParams(1.0, 1.0, 40, ("@@@@", stop)))
    assert stopped.finish_reason == "stop"
    n = len(stopped.response_ids)
    assert stopped.response_ids == free.response_ids[:n]
    assert stop in tok.decode(stopped.response_ids)
    assert stop not in tok.decode(stopped.response_ids[:-1])
    assert stopped.text == text[: text.index(stop)]


def test_token_id_prompts_and_bad_params(lm: tuple) -> None:
    model, tok = lm
    ids = [tok.encode(p, add_special_tokens=False) for p in PROMPTS]
    params = SamplingParams(temperature=0.0, max_new_tokens=5)
    by_ids = generate(model, tok, ids, params)
    by_text = generate(model, tok, PROMPTS, params)
    assert [g.response_ids for g in by_ids] == [g.response_ids for g in by_text]
    with pytest.raises(UsageError, match="temperature"):
        SamplingParams(temperature=-1.0)
    with pytest.raises(UsageError, match="top_p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(UsageError, match="stop"):
        SamplingParams(stop="\n")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no room"):
        generate(model, tok, [[1] * 600], params)


# ---- log-probs and values -----------------------------------------------------------------


def test_pad_left_and_position_ids() -> None:
    ids, mask = pad_left([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def _check_batched_equals_single(fn: object, seqs: list[list[int]], pad: int) -> None:
    ids, mask = pad_left(seqs, pad)
    batched = fn(ids, mask)
    assert batched.shape == ids.shape and batched.dtype == torch.float32
    assert torch.all(batched[mask == 0] == 0) and torch.all(batched[:, 0] == 0)
    for row, seq in enumerate(seqs):
        single = fn(torch.tensor([seq]), torch.ones(1, len(seq), dtype=torch.long))[0]
        assert single[0] == 0
        torch.testing.assert_close(batched[row, -len(seq) :], single, atol=1e-5, rtol=0)


def test_logprobs_batched_equal_one_by_one(lm: tuple) -> None:
    model, tok = lm
    seqs = _sequences(tok)
    with torch.no_grad():
        _check_batched_equals_single(lambda i, m: token_logprobs(model, i, m), seqs,
                                     tok.pad_token_id)  # fmt: skip
        _check_batched_equals_single(
            lambda i, m: token_logprobs(model, i, m, with_entropy=True)[1], seqs, tok.pad_token_id
        )


def test_logprobs_are_aligned_to_their_token_and_scaled_by_temperature(lm: tuple) -> None:
    model, tok = lm
    seq = _sequences(tok, 1)[0]
    ids = torch.tensor([seq])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        logits = model(ids).logits[0]
        for temperature in (1.0, 0.7):
            lp, ent = token_logprobs(model, ids, mask, temperature=temperature, with_entropy=True)
            dist = torch.log_softmax(logits / temperature, -1)
            for t in range(1, len(seq)):
                assert lp[0, t] == pytest.approx(dist[t - 1, seq[t]].item(), abs=1e-5)
                entropy = -(dist[t - 1].exp() * dist[t - 1]).sum()
                assert ent[0, t] == pytest.approx(entropy.item(), abs=1e-4)
    lp = token_logprobs(model, ids, mask)
    lp.sum().backward()  # differentiable
    assert model.transformer.wte.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_value_model_batched_equal_one_by_one_and_round_trips(
    small_model_dir: Path, tmp_path: Path, lm: tuple
) -> None:
    _, tok = lm
    torch.manual_seed(0)
    critic = ValueModel.from_checkpoint(str(small_model_dir), device="cpu")
    seqs = _sequences(tok)
    with torch.no_grad():
        _check_batched_equals_single(critic, seqs, tok.pad_token_id)
    critic.save_pretrained(tmp_path / "critic")
    again = ValueModel.from_pretrained(tmp_path / "critic", device="cpu")
    ids, mask = pad_left(seqs, tok.pad_token_id)
    with torch.no_grad():
        torch.testing.assert_close(again(ids, mask), critic(ids, mask), atol=0, rtol=0)
    torch.manual_seed(1)
    other = ValueModel.from_checkpoint(str(small_model_dir), device="cpu")
    assert not torch.equal(other.head.weight, critic.head.weight)  # the head is random
    with pytest.raises(UsageError, match="no saved value model"):
        ValueModel.from_pretrained(small_model_dir)
    with pytest.raises(UsageError, match="is a saved value model"):
        load_causal_lm(str(tmp_path / "critic"))


@pytest.mark.parametrize("kind", ["separate", "shared", "none"])
def test_actor_critic_kinds(small_model_dir: Path, kind: str) -> None:
    ac = load_actor_critic(str(small_model_dir), critic=kind, device="cpu")  # type: ignore[arg-type]
    assert isinstance(ac, ActorCritic) and ac.critic_kind == kind
    assert ac.reference is not None and not ac.reference.training
    assert not any(p.requires_grad for p in ac.reference.parameters())
    assert all(p.requires_grad for p in ac.policy.parameters())
    seqs = _sequences(ac.tokenizer)
    if kind == "none":
        with pytest.raises(RuntimeError, match="no critic"):
            ac.values(*pad_left(seqs, ac.tokenizer.pad_token_id))
        return
    assert (ac.critic is not None) == (kind == "separate")
    assert (ac.value_head is not None) == (kind == "shared")
    with torch.no_grad():
        _check_batched_equals_single(ac.values, seqs, ac.tokenizer.pad_token_id)
    values = ac.values(*pad_left(seqs, ac.tokenizer.pad_token_id))
    values.sum().backward()
    head = ac.critic.head if ac.critic is not None else ac.value_head
    assert head is not None and head.weight.grad is not None


def test_no_reference_when_not_asked(small_model_dir: Path) -> None:
    ac = load_actor_critic(str(small_model_dir), critic="none", reference=False, device="cpu")
    assert ac.reference is None and ac.critic is None and ac.value_head is None


# ---- LoRA, bf16, gradient checkpointing ---------------------------------------------------


def test_lora_trains_only_adapters_and_saves_merged(small_model_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy, tok = load_causal_lm(
        str(small_model_dir), device="cpu", lora=LoraSettings(r=4, alpha=8)
    )
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    ids, mask = pad_left(_sequences(tok), tok.pad_token_id)
    optimizer = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):  # lora_B starts at 0: two steps make the update non-zero
        optimizer.zero_grad()
        (-token_logprobs(policy, ids, mask).sum()).backward()
        optimizer.step()
    for n, p in policy.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen[n])
    with torch.no_grad():
        before = token_logprobs(policy, ids, mask)
    save_policy(policy, tok, tmp_path / "merged")
    with torch.no_grad():
        assert torch.equal(token_logprobs(policy, ids, mask), before)  # the policy is untouched
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
        assert not any("lora" in k for k in merged.state_dict())
        torch.testing.assert_close(token_logprobs(merged, ids, mask), before, atol=1e-5, rtol=0)
        base = AutoModelForCausalLM.from_pretrained(small_model_dir)
        assert not torch.allclose(token_logprobs(base, ids, mask), before, atol=1e-4)


def test_bfloat16_policy(small_model_dir: Path) -> None:
    model, tok = load_causal_lm(str(small_model_dir), device="cpu", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    ids, mask = pad_left(_sequences(tok), tok.pad_token_id)
    with torch.no_grad():
        lp = token_logprobs(model, ids, mask)
    assert lp.dtype == torch.float32 and torch.isfinite(lp).all()
    gens = generate(model, tok, PROMPTS, SamplingParams(temperature=0.0, max_new_tokens=4))
    assert all(len(g.response_ids) >= 1 for g in gens)


def test_gradient_checkpointing_gives_the_same_gradients(small_model_dir: Path) -> None:
    grads = []
    for checkpointing in (False, True):
        model, tok = load_causal_lm(
            str(small_model_dir), device="cpu", gradient_checkpointing=checkpointing
        )
        on = getattr(model, "is_activation_checkpointing", None)  # the transformers 5.x name
        assert (model.is_gradient_checkpointing if on is None else on) == checkpointing
        ids, mask = pad_left(_sequences(tok), tok.pad_token_id)
        token_logprobs(model, ids, mask).sum().backward()
        grads.append(model.transformer.h[0].attn.c_attn.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)
