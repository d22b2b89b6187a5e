"""StepCoder's FGO mask: which response tokens the policy loss keeps."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from agents.models import Generation
from agents.stepcoder import fgo_keep_mask


@pytest.fixture(scope="module")
def char_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with one token per byte (spans are easy to reason about)."""
    vocab = {ch: i for i, ch in enumerate(pre_tokenizers.ByteLevel.alphabet())}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    return fast


def _generation(tok: PreTrainedTokenizerFast, text: str, eos: bool = True) -> Generation:
    ids = tok.encode(text, add_special_tokens=False)
    if eos:
        ids.append(tok.eos_token_id)
    return Generation(prompt_ids=[], response_ids=ids, text=text, finish_reason="eos")


PREFIX = "def f(x):\n"
COMPLETION = "    if x > 0:\n        return 1\n    else:\n        return -1\n"


def _line_of_token(tok: PreTrainedTokenizerFast, gen: Generation) -> list[int]:
    """1-based program line of each token's character (one character per token here)."""
    lines, offset = [], len(PREFIX)
    for j in range(len(gen.response_ids) - 1):
        lines.append(
            (PREFIX + COMPLETION)[: offset + j + 1].count("\n") + 1 - (COMPLETION[j] == "\n")
        )
    return lines


def test_fgo_drops_tokens_of_the_unexecuted_branch(char_tokenizer: PreTrainedTokenizerFast) -> None:
    program = PREFIX + COMPLETION
    gen = _generation(char_tokenizer, COMPLETION)
    # tests only called f with positive x: lines 1 (def), 2 (if), 3 (return 1) ran
    keep = fgo_keep_mask(
        char_tokenizer, gen, program, (len(PREFIX), len(program)), [1, 2, 3], "passed"
    )
    assert len(keep) == len(gen.response_ids)
    assert keep[-1] is True  # EOS is a decision: kept
    lines = _line_of_token(char_tokenizer, gen)
    for flag, line in zip(keep[:-1], lines, strict=True):
        assert flag == (line in (2, 3)), (line, flag)
    # the whole `else:` branch (lines 4-5) is gone, the rest stays
    assert sum(not k for k in keep) == len("    else:\n        return -1\n")


def test_fgo_keeps_everything_for_a_syntax_error(char_tokenizer: PreTrainedTokenizerFast) -> None:
    program = PREFIX + COMPLETION
    gen = _generation(char_tokenizer, COMPLETION)
    keep = fgo_keep_mask(
        char_tokenizer, gen, program, (len(PREFIX), len(program)), [], "syntax_error"
    )
    assert all(keep)


def test_fgo_keeps_everything_without_a_trace(char_tokenizer: PreTrainedTokenizerFast) -> None:
    program = PREFIX + COMPLETION
    gen = _generation(char_tokenizer, COMPLETION)
    keep = fgo_keep_mask(
        char_tokenizer, gen, program, (len(PREFIX), len(program)), [], "wrong_answer"
    )
    assert all(keep)


class _TwoTokens:
    """A tokenizer stub for span arithmetic only: token 1 ends mid-way through line 3."""

    all_special_ids: tuple[int, ...] = ()

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return {1: "    else:\n   ", 2: "    else:\n        return -1\n"}[ids[-1]]


def test_fgo_token_spanning_an_executed_line_is_kept() -> None:
    text = "    else:\n        return -1\n"
    program = "x = 0\n" + text  # lines: 1 `x = 0`, 2 `else:`, 3 `return -1`
    gen = Generation(prompt_ids=[], response_ids=[1, 2], text=text, finish_reason="length")
    span = (6, 6 + len(text))
    # token 1 covers lines 2-3, token 2 only line 3
    assert fgo_keep_mask(_TwoTokens(), gen, program, span, [1, 3], "passed") == [True, True]
    assert fgo_keep_mask(_TwoTokens(), gen, program, span, [1, 2], "passed") == [True, False]
    assert fgo_keep_mask(_TwoTokens(), gen, program, span, [1], "passed") == [False, False]
