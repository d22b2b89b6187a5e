"""The PPO trainer: runs on the real docker sandbox, exact resume, run-directory rules.

These tests use a small random GPT-2 saved to a local folder (the path route of model
loading); it writes nonsense, which is all the trainer's bookkeeping needs. Learning is the
learning benchmark's business (benchmarks/learning.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agents.config import build_config  # noqa: E402
from agents.rlef import RLEFConfig  # noqa: E402
from agents.stepcoder import StepCoderConfig  # noqa: E402
from agents.trainer import checkpoints, train  # noqa: E402
from codegym.errors import UsageError  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a byte-level BPE tokenizer, saved with save_pretrained."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from codegym.tasks import load_tasks

    texts = [t.prompt + "\n\n" + t.canonical_solutions[0] for t in load_tasks("toy", n=100)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(fast),
        n_layer=2,
        n_embd=32,
        n_head=2,
        n_positions=1024,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    path = tmp_path_factory.mktemp("models") / "small-gpt2"
    GPT2LMHeadModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def _config(cls: type, model: Path, **extra: object) -> object:
    overrides = {
        "model": str(model),
        "tasks": "toy",
        "num_tasks": 40,
        "steps": 2,
        "tasks_per_step": 2,
        "samples_per_task": 2,
        "max_new_tokens": 24,
        "micro_batch_size": 2,
        "minibatches": 2,
        "policy_lr": 1e-3,
        "critic_lr": 1e-3,
        "checkpoint_every": 1,
        "keep_checkpoints": 0,
        "temperature": 1.0,
        "top_p": 1.0,
    } | extra
    config, _ = build_config(cls, model=str(model), overrides=overrides)
    return config


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / f"checkpoint-{step}" / "policy" / "model.safetensors")


@pytest.mark.docker
@pytest.mark.slow
def test_stepcoder_resume_is_exact(small_model: Path, tmp_path: Path, docker_sandbox) -> None:
    straight = tmp_path / "straight"
    train(_config(StepCoderConfig, small_model), straight, sandbox=docker_sandbox, progress=False)
    halves = tmp_path / "halves"
    train(
        _config(StepCoderConfig, small_model, steps=1),
        halves,
        sandbox=docker_sandbox,
        progress=False,
    )
    train(
        _config(StepCoderConfig, small_model, steps=2),
        halves,
        resume=True,
        sandbox=docker_sandbox,
        progress=False,
    )
    a, b = _weights(straight, 2), _weights(halves, 2)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the run really trained: step 2's policy differs from step 1's
    assert any(not torch.equal(a[n], _weights(straight, 1)[n]) for n in a)
    rows = list(csv.DictReader((halves / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1.0", "2.0"]
    straight_rows = list(csv.DictReader((straight / "metrics.csv").open()))
    for key in ("env/reward_mean", "train/policy_loss", "objective/kl"):
        assert rows[1][key] == straight_rows[1][key]


@pytest.mark.docker
@pytest.mark.slow
def test_scoring_during_execution_changes_nothing(
    small_model: Path, tmp_path: Path, docker_sandbox
) -> None:
    """StepCoder scores a step's tokens while the sandbox runs them; the same run scored
    after execution (RLEF's order) ends with the same weights and metrics."""
    overlapped = tmp_path / "overlapped"
    train(_config(StepCoderConfig, small_model, overlap_execution="on"), overlapped,
          sandbox=docker_sandbox, progress=False)  # fmt: skip
    sequential = tmp_path / "sequential"
    # "auto" on a CPU: scored after execution
    train(_config(StepCoderConfig, small_model), sequential, sandbox=docker_sandbox,
          progress=False)  # fmt: skip
    a, b = _weights(overlapped, 2), _weights(sequential, 2)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    rows_a = list(csv.DictReader((overlapped / "metrics.csv").open()))
    rows_b = list(csv.DictReader((sequential / "metrics.csv").open()))
    for key in ("env/reward_mean", "train/policy_loss", "train/value_loss", "objective/kl"):
        assert [r[key] for r in rows_a] == [r[key] for r in rows_b], key
    # both phases were timed in the overlapped run
    assert all(float(r["time/score"]) > 0 and float(r["time/execute"]) > 0 for r in rows_a)


@pytest.mark.docker
@pytest.mark.slow
def test_stepcoder_run_directory(small_model: Path, tmp_path: Path, docker_sandbox) -> None:
    run = tmp_path / "run"
    train(_config(StepCoderConfig, small_model), run, sandbox=docker_sandbox, progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["algorithm"] == "stepcoder" and config["fgo"] is True
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 2
    for key in (
        "env/pass_rate",
        "env/reward_mean",
        "env/infra_error_rate",
        "curriculum/stage",
        "train/policy_loss",
        "train/value_loss",
        "train/approx_kl",
        "train/clipfrac",
        "train/entropy",
        "train/grad_norm",
        "objective/kl",
        "time/rollout",
        "throughput/generated_tokens_per_s",
    ):
        assert key in rows[0], key
    assert (run / "learning_curve.png").stat().st_size > 0
    assert any((run / "tb").iterdir())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(run / "checkpoint-2" / "policy")
    AutoTokenizer.from_pretrained(run / "checkpoint-2" / "policy")
    assert (run / "checkpoint-2" / "critic").is_dir()
    assert [s for s, _ in checkpoints(run)] == [1, 2]


@pytest.mark.docker
@pytest.mark.slow
def test_rlef_two_steps_and_exact_resume(small_model: Path, tmp_path: Path, docker_sandbox) -> None:
    extra = {"max_turns": 2, "max_new_tokens": 16}
    straight = tmp_path / "straight"
    train(
        _config(RLEFConfig, small_model, **extra), straight, sandbox=docker_sandbox, progress=False
    )
    rows = list(csv.DictReader((straight / "metrics.csv").open()))
    for key in (
        "env/turns",
        "env/first_turn_pass_rate",
        "env/final_pass_rate",
        "env/repair_rate",
        "env/no_code_rate",
    ):
        assert key in rows[0], key
    # random models write no code: two turns each, both penalised
    assert float(rows[0]["env/turns"]) == 2.0
    halves = tmp_path / "halves"
    train(
        _config(RLEFConfig, small_model, steps=1, **extra),
        halves,
        sandbox=docker_sandbox,
        progress=False,
    )
    train(
        _config(RLEFConfig, small_model, **extra),
        halves,
        resume=True,
        sandbox=docker_sandbox,
        progress=False,
    )
    a, b = _weights(straight, 2), _weights(halves, 2)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_grpo_needs_groups() -> None:
    with pytest.raises(UsageError, match="samples_per_task"):
        StepCoderConfig(advantage="grpo", samples_per_task=1)


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(UsageError, match=r"unknown config key .polcy_lr.*policy_lr"):
        build_config(StepCoderConfig, overrides={"polcy_lr": 1.0})


def test_run_directory_rules(small_model: Path, tmp_path: Path) -> None:
    from agents.trainer import check_run_dir

    run = tmp_path / "run"
    with pytest.raises(UsageError, match=r"nothing|no checkpoint"):
        check_run_dir(run, "stepcoder", resume=True)
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"algorithm": "rlef"}))
    with pytest.raises(UsageError, match="holds a rlef run"):
        check_run_dir(run, "stepcoder", resume=False)
    (run / "config.json").write_text(json.dumps({"algorithm": "stepcoder"}))
    (run / "metrics.csv").write_text("step\n1\n")
    with pytest.raises(UsageError, match="--resume"):
        check_run_dir(run, "stepcoder", resume=False)
    assert (run / "metrics.csv").read_text() == "step\n1\n"  # nothing touched


@pytest.mark.docker
@pytest.mark.slow
def test_torchrun_two_ranks_agree(small_model: Path, tmp_path: Path) -> None:
    """2 gloo ranks on CPU, 2 steps: both end with the same weights; one checkpoint set."""
    import os
    import subprocess
    import sys

    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "codegym", "train", "stepcoder", "--model", str(small_model), "--steps", "2",
        "--out", str(run), "--sandbox", "docker", "--no-progress",
        "--set", "tasks_per_step=2", "--set", "samples_per_task=2", "--set", "num_tasks=30",
        "--set", "max_new_tokens=16", "--set", "checkpoint_every=2",
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "policy weights identical on 2 ranks" in proc.stdout
    assert [s for s, _ in checkpoints(run)] == [2]
    assert sorted(p.name for p in (run / "checkpoint-2").glob("rng-*.pt")) == [
        "rng-0.pt",
        "rng-1.pt",
    ]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["1.0", "2.0"]  # rank 0 alone wrote, once per step


def test_rlef_token_sequence_is_the_rendered_conversation(
    small_model: Path, process_sandbox
) -> None:
    """The loss mask covers exactly the model's tokens: the response tokens of turn t decode
    to the env's assistant message t, and the whole sequence decodes to the conversation as
    the chat template renders it."""
    import gymnasium as gym

    import codegym  # noqa: F401  (registers the envs)
    from agents.models import SamplingParams, load_actor_critic
    from agents.rollout import collect_conversations, to_batch
    from codegym.tasks import load_tasks

    torch.manual_seed(0)
    ac = load_actor_critic(str(small_model), critic="none", reference=False)
    tasks = load_tasks("toy", n=4, seed=0)
    vec = gym.make_vec("codegym/MultiTurnRepair-v0", num_envs=4, tasks=tasks,
                       sandbox=process_sandbox, max_turns=3, infra_errors="skip")  # fmt: skip
    try:
        params = SamplingParams(temperature=1.0, max_new_tokens=12)
        episodes, dropped = collect_conversations(
            vec, ac, [t.task_id for t in tasks[:2]], 2, params,
            batch_size=4, max_turns=3, max_length=1024,
        )  # fmt: skip
        messages = [list(vec.envs[i].unwrapped.messages) for i in range(4)]
    finally:
        vec.close()
    assert dropped == 0 and len(episodes) == 4
    tok = ac.tokenizer
    for ep, conversation in zip(episodes, messages, strict=True):
        assistant = [m["content"] for m in conversation if m["role"] == "assistant"]
        assert ep.num_turns == len(assistant) == 3  # a random model never writes code
        for turn, content in enumerate(assistant):
            ids = [t for t, k in zip(ep.token_ids, ep.turn_of_token, strict=True) if k == turn]
            text = tok.decode(ids, skip_special_tokens=False)
            assert text.removesuffix(tok.eos_token) == content
        decoded = tok.decode(ep.token_ids, skip_special_tokens=False)
        rendered = tok.apply_chat_template(conversation, tokenize=False)
        assert rendered.startswith(decoded)
        # what is left: the end of the last assistant turn when the model did not write it
        assert rendered[len(decoded) :] in ("", "\n", tok.eos_token, tok.eos_token + "\n")
    batch = to_batch(episodes, tok.pad_token_id)
    assert torch.equal(batch.action_mask.bool(), batch.turn_of_token >= 0)
    assert int(batch.turn_mask.sum()) == 12
