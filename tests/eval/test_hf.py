"""hf: and checkpoint: policies with a tiny random GPT-2 saved to a temporary folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from codegym.errors import UsageError
from codegym.eval import GenerationParams, HFPolicy, Request, evaluate, load_policy
from codegym.eval.policies import resolve_checkpoint
from tests.eval import scripted

CONTEXT = 96


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random GPT-2 with a small byte-level BPE tokenizer, saved with
    save_pretrained (no chat template: agents.models gives it the default one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [t.prompt + "\n".join(t.canonical_solutions) for t in scripted.TASKS] * 3
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=CONTEXT, n_embd=32, n_layer=2,
                        n_head=2, eos_token_id=tokenizer.eos_token_id,
                        bos_token_id=tokenizer.eos_token_id)  # fmt: skip
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random-gpt2")
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_hf_policy_batches_and_is_seeded(random_model: Path) -> None:
    policy = HFPolicy(str(random_model), batch_size=2)
    assert policy.name == f"hf:{random_model}" and policy.input == "messages"
    long = [{"role": "user", "content": scripted.TASKS[0].prompt * 4}]  # over the context
    requests = [Request(long, 3), Request([{"role": "user", "content": "hi"}], 1)]
    params = GenerationParams(temperature=1.0, top_p=1.0, max_tokens=12, seed=5)
    replies = sorted(policy.generate(requests, params), key=lambda r: r.index)
    assert [len(r.responses) for r in replies] == [3, 1]
    assert all(isinstance(t, str) for r in replies for t in r.responses)
    again = sorted(policy.generate(requests, params), key=lambda r: r.index)
    assert [r.responses for r in again] == [r.responses for r in replies]
    other = sorted(policy.generate(requests, GenerationParams(1.0, 1.0, 12, 6)),
                   key=lambda r: r.index)  # fmt: skip
    assert [r.responses for r in other] != [r.responses for r in replies]
    # max_tokens beyond the context still leaves the prompt room
    list(policy.generate(requests[:1], GenerationParams(max_tokens=10 * CONTEXT)))
    policy.close()


@pytest.mark.slow
@pytest.mark.docker
def test_evaluate_hf_policy_single_and_multi(
    random_model: Path, docker_sandbox: object, tmp_path: Path
) -> None:
    spec = f"hf:{random_model}"
    kwargs = dict(n=2, k=(1, 2), max_tokens=16, temperature=1.0, sandbox=docker_sandbox,
                  progress=False, concurrency=3)  # fmt: skip
    a = evaluate(spec, scripted.TASKS[:3], out=tmp_path / "a.jsonl", **kwargs)  # type: ignore[arg-type]
    evaluate(spec, scripted.TASKS[:3], out=tmp_path / "b.jsonl", **kwargs)  # type: ignore[arg-type]
    assert a.num_tasks == 3 and a.n == 2 and set(a.metrics) == {"pass@1", "pass@2"}
    responses = [
        [json.loads(x)["response"] for x in (tmp_path / f).read_text().splitlines()[1:]]
        for f in ("a.jsonl", "b.jsonl")
    ]
    assert len(responses[0]) == 6 and sorted(responses[0]) == sorted(responses[1])  # seeded
    multi = evaluate(spec, scripted.TASKS[:2], mode="multi", max_turns=2, **kwargs)  # type: ignore[arg-type]
    assert set(multi.metrics) == {"1@2", "1@1", "2@4", "2@2"}
    assert sum(multi.verdicts.values()) >= 4  # 4 rollouts of one or two turns


def test_checkpoint_picks_the_newest_policy(random_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"algorithm": "rlef"}))
    with pytest.raises(UsageError, match="no checkpoint-<N>/policy"):
        resolve_checkpoint(run)
    for step in (2, 10, 9):
        shutil.copytree(random_model, run / f"checkpoint-{step}" / "policy")
    (run / "checkpoint-11").mkdir()  # being written: no policy yet
    assert resolve_checkpoint(run) == run / "checkpoint-10" / "policy"
    assert resolve_checkpoint(random_model) == random_model  # a model folder itself
    policy = load_policy(f"checkpoint:{run}")
    assert policy.name == f"checkpoint:{run}"
    policy.close()
    with pytest.raises(UsageError, match="is not a folder"):
        resolve_checkpoint(tmp_path / "nope")
