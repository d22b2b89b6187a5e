"""The bundled tiny model: its data formats match the envs, its build is cached and exact."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from agents.tiny import (  # noqa: E402
    CHAT_TEMPLATE,
    EOS_TOKEN,
    PAD_TOKEN,
    ROLE_TOKENS,
    TinyConfig,
    build_tiny_model,
    cache_root,
    chat_answer,
    chat_example,
    completion_examples,
    completion_prompt,
    draw_epoch,
    mutants,
    render_chat,
    repair_examples,
    sft_batches,
    sft_data,
    tiny_model_path,
)
from codegym.envs.code_completion import CodeCompletionEnv  # noqa: E402
from codegym.envs.curriculum import stage_prefixes  # noqa: E402
from codegym.envs.multi_turn_repair import MultiTurnRepairEnv  # noqa: E402
from codegym.errors import UsageError  # noqa: E402
from codegym.tasks import load_tasks  # noqa: E402


@pytest.fixture(scope="module")
def toy_tasks() -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_tasks("toy", split="train", n=21, seed=0)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


# ---- config and cache ---------------------------------------------------------------------


def test_every_config_field_changes_the_key() -> None:
    base = TinyConfig()
    assert base.key() == TinyConfig().key()
    keys = {base.key()}
    for field in dataclasses.fields(TinyConfig):
        value = getattr(base, field.name)
        other = value + 1 if not isinstance(value, float) else (value / 2 or 0.01)
        if field.name in ("n_embd", "n_head"):
            other = 2 * value  # n_embd stays a multiple of n_head
        keys.add(dataclasses.replace(base, **{field.name: other}).key())
    assert len(keys) == 1 + len(dataclasses.fields(TinyConfig))


@pytest.mark.parametrize(
    "change",
    [{"n_embd": 65}, {"vocab_size": 100}, {"chat_share": 1.5}, {"repair_tasks": 10**6},
     {"sft_steps": -1}, {"lr": 0.0}],
)  # fmt: skip
def test_bad_config_is_a_usage_error(change: dict) -> None:
    with pytest.raises(UsageError, match=next(iter(change))):
        TinyConfig(**change)


def test_cache_root_follows_codegym_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEGYM_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("CODEGYM_CACHE")
    assert cache_root() == Path("~/.cache/codegym").expanduser()


def test_build_is_cached_under_its_key(
    small_model_dir: Path, small_cache: Path, small_config: TinyConfig
) -> None:
    assert small_model_dir == small_cache / "models" / f"tiny-{small_config.key()}"
    report = json.loads((small_model_dir / "build.json").read_text())
    assert report["key"] == small_config.key()
    assert report["config"] == dataclasses.asdict(small_config)
    assert report["examples"]["chat"] == small_config.num_tasks
    assert 0 < report["examples"]["repair"] <= small_config.repair_tasks
    # Nothing half-written is left next to it.
    assert not [p for p in small_model_dir.parent.iterdir() if p.name.startswith(".")]


def test_cached_model_is_reused_and_rebuild_replaces_it(
    small_model_dir: Path,
    small_cache: Path,
    small_config: TinyConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEGYM_CACHE", str(small_cache))
    stamp = (small_model_dir / "build.json").stat().st_mtime_ns
    assert tiny_model_path(small_config, progress=False) == small_model_dir
    assert (small_model_dir / "build.json").stat().st_mtime_ns == stamp
    before = _weights(small_model_dir)
    assert tiny_model_path(small_config, rebuild=True, progress=False) == small_model_dir
    assert (small_model_dir / "build.json").stat().st_mtime_ns != stamp
    after = _weights(small_model_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)  # deterministic rebuild
    assert not [p for p in small_model_dir.parent.iterdir() if p.name.startswith(".")]


def test_same_seed_same_weights_other_seed_other_weights(
    small_model_dir: Path, small_config: TinyConfig, tmp_path: Path
) -> None:
    other = build_tiny_model(dataclasses.replace(small_config, seed=1), tmp_path / "s1",
                             progress=False)  # fmt: skip
    assert other["key"] != small_config.key()
    a, b = _weights(small_model_dir), _weights(tmp_path / "s1")
    assert not all(torch.equal(a[k], b[k]) for k in a)
    # torch's global RNG is left as the caller had it.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model(small_config, tmp_path / "s0", progress=False)
    assert torch.equal(torch.rand(3), expected)
    again = _weights(tmp_path / "s0")
    assert all(torch.equal(a[k], again[k]) for k in a)
    tok_a = AutoTokenizer.from_pretrained(small_model_dir)
    tok_b = AutoTokenizer.from_pretrained(tmp_path / "s0")
    assert tok_a.get_vocab() == tok_b.get_vocab()


# ---- the saved model and tokenizer --------------------------------------------------------


def test_saved_model_loads_with_plain_transformers(
    small_model_dir: Path, small_config: TinyConfig
) -> None:
    tok = AutoTokenizer.from_pretrained(small_model_dir)
    model = AutoModelForCausalLM.from_pretrained(small_model_dir)
    assert tok.eos_token == EOS_TOKEN and tok.pad_token == PAD_TOKEN
    assert model.config.eos_token_id == tok.eos_token_id
    assert model.config.n_layer == small_config.n_layer
    for special in (EOS_TOKEN, PAD_TOKEN, *ROLE_TOKENS):
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    text = "def f(x):\n    return x ** 2  # ünïcode ✓\n"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_chat_template_is_the_contract_and_prefix_stable(small_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(small_model_dir)
    assert tok.chat_template == CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "solve it\n"},
        {"role": "assistant", "content": "```python\nprint(1)\n```"},
        {"role": "user", "content": "Your code failed the following tests:"},
    ]
    rendered = [tok.apply_chat_template(messages[:k], tokenize=False) for k in range(1, 5)]
    assert rendered[-1] == (
        "<|system|>\nbe brief\n<|user|>\nsolve it\n\n<|assistant|>\n```python\nprint(1)\n```"
        "<|endoftext|>\n<|user|>\nYour code failed the following tests:\n"
    )
    for short, long in itertools.pairwise(rendered):
        assert long.startswith(short)
    for k in range(1, 5):
        for gen in (False, True):
            assert tok.apply_chat_template(
                messages[:k], tokenize=False, add_generation_prompt=gen
            ) == render_chat(messages[:k], gen)
    assert render_chat(messages[:2], True).endswith("<|assistant|>\n")


# ---- SFT data: the envs' own formats ------------------------------------------------------


def test_completion_examples_are_the_env_observations(toy_tasks: list) -> None:
    env = CodeCompletionEnv(tasks=toy_tasks, sandbox="process")
    for task in toy_tasks:
        examples = completion_examples(task)
        solution = task.canonical_solutions[0]
        assert len(examples) == len(stage_prefixes(solution)) == len(env.stages(task))
        for stage, ex in enumerate(examples):
            obs, _ = env.reset(options={"task_id": task.task_id, "stage": stage})
            assert ex.prompt == env.observation_text(obs)
            assert ex.prompt + ex.answer == completion_prompt(task.prompt, "") + solution
        assert examples[-1].prompt == f"{task.prompt}\n\n"
    env.close()


def test_chat_example_is_the_env_first_turn(toy_tasks: list) -> None:
    env = MultiTurnRepairEnv(tasks=toy_tasks, sandbox="process")
    for task in toy_tasks:
        obs, _ = env.reset(options={"task_id": task.task_id})
        ex = chat_example(task, env.first_user_message(task))
        assert ex.prompt == render_chat(obs["messages"], add_generation_prompt=True)
        assert ex.answer == "```python\n" + task.canonical_solutions[0].rstrip() + "\n```"
    env.close()


def test_mutants_change_one_token_and_still_compile() -> None:
    source = "def f(n):\n    if n > 10:\n        return n + 1\n    return n\n"
    found = mutants(source, random.Random(0), limit=100)
    assert len(found) == 4  # >, 10, +, 1
    assert len(set(found)) == 4 and source not in found
    for m in found:
        compile(m, "<mutant>", "exec")
        assert len(m.split()) == len(source.split())
    assert any("if n >= 10:" in m for m in found)
    assert any("if n > 9:" in m or "if n > 11:" in m for m in found)
    assert any("return n - 1" in m for m in found)
    assert any("return n + 0" in m or "return n + 2" in m for m in found)


def test_repair_example_is_what_the_env_says_to_that_answer(
    toy_tasks: list, process_sandbox: object
) -> None:
    env = MultiTurnRepairEnv(tasks=toy_tasks, sandbox=process_sandbox)
    firsts = [env.first_user_message(t) for t in toy_tasks]
    repairs = repair_examples(toy_tasks, firsts, process_sandbox, random.Random(0))
    assert len(repairs) >= len(toy_tasks) // 2
    for task in toy_tasks:
        ex = repairs.get(task.task_id)
        if ex is None:
            continue
        assert ex.kind == "repair" and ex.answer == chat_answer(task.canonical_solutions[0])
        wrong = ex.prompt.split("<|assistant|>\n", 1)[1].split(EOS_TOKEN, 1)[0]
        assert wrong != chat_answer(task.canonical_solutions[0])
        env.reset(options={"task_id": task.task_id})
        obs, reward, terminated, _, info = env.step(wrong)
        assert not terminated and reward == 0.0
        assert info["feedback"].startswith("Your code failed the following tests:")
        assert ex.prompt == render_chat(obs["messages"], add_generation_prompt=True)
    env.close()


def test_epochs_mix_formats_and_batches_are_deterministic(toy_tasks: list) -> None:
    data = sft_data(toy_tasks, repair_tasks=10, seed=0)
    assert {ex.kind for ex in draw_epoch(data, 0.0, random.Random(0))} == {"completion"}
    assert {ex.kind for ex in draw_epoch(data, 1.0, random.Random(0))} <= {"chat", "repair"}
    kinds = [ex.kind for _ in range(20) for ex in draw_epoch(data, 0.5, random.Random(_))]
    assert {"completion", "chat", "repair"} <= set(kinds)
    a = list(sft_batches(data, batch_size=4, steps=9, chat_share=0.4, seed=3))
    b = list(sft_batches(data, batch_size=4, steps=9, chat_share=0.4, seed=3))
    assert len(a) == 9 and all(len(batch) == 4 for batch in a)
    assert a == b


# ---- the real tiny model ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.docker
def test_default_tiny_model_solves_some_held_out_tasks_not_all(
    tiny_model_dir: Path, docker_sandbox: object
) -> None:
    """The SFT start can code a little: RL has signal and headroom (greedy, full generation)."""
    from agents.models import SamplingParams, generate, load_causal_lm

    model, tok = load_causal_lm(str(tiny_model_dir), device="cpu")
    tasks = load_tasks("toy", split="test", n=42, seed=1)
    env = CodeCompletionEnv(tasks=tasks, sandbox=docker_sandbox)
    prompts = [
        env.observation_text(env.reset(options={"task_id": t.task_id, "stage": -1})[0])
        for t in tasks
    ]
    gens = generate(model, tok, prompts, SamplingParams(temperature=0.0, max_new_tokens=200))
    passed = 0
    for task, gen in zip(tasks, gens, strict=True):
        env.reset(options={"task_id": task.task_id, "stage": -1})
        passed += env.step(gen.text)[4]["verdict"] == "passed"
    env.close()
    assert 2 <= passed <= 36, f"{passed}/42 held-out tasks solved"


# ---- codegym pretrain ---------------------------------------------------------------------


def test_pretrain_command_reuses_the_cached_build(
    small_model_dir: Path,
    small_cache: Path,
    small_config: TinyConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from codegym.cli import main

    monkeypatch.setenv("CODEGYM_CACHE", str(small_cache))
    stamp = (small_model_dir / "build.json").stat().st_mtime_ns
    changes = [
        f"{f.name}={getattr(small_config, f.name)}"
        for f in dataclasses.fields(small_config)
        if getattr(small_config, f.name) != getattr(TinyConfig(), f.name)
    ]
    argv = ["pretrain", "--if-missing", "--quiet"]
    for change in changes:
        argv += ["--set", change]
    assert main(argv) == 0
    assert f"tiny model: {small_model_dir}" in capsys.readouterr().out
    assert (small_model_dir / "build.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "depth=3"], "TinyConfig has no field 'depth'"),
        (["--set", "n_layer"], "write KEY=VALUE"),
        (["--set", "n_layer=two"], "n_layer must be of type int"),
        (["--set", "n_embd=100", "--set", "n_head=3"], "multiple of n_head"),
    ],
)
def test_pretrain_rejects_bad_settings(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from codegym.cli import main

    assert main(["pretrain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codegym: error: --set") or "n_head" in err
    assert message in err
