"""Models for the agents' tests: a small tiny-recipe build, and the real default tiny model.

``small_model_dir`` runs the whole tiny recipe (toy data, repair mutants in the process
sandbox, BPE, GPT-2, SFT) at a toy size in seconds, into a temporary cache: enough for
everything that needs a real model and tokenizer but not a model that can code.
``tiny_model_dir`` is the default tiny model, built once (minutes) into the real cache
(``$CODEGYM_CACHE`` or ``~/.cache/codegym``) and reused by later sessions: for tests that
need a model that solves tasks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from agents.tiny import TinyConfig, tiny_model_path

#: The tiny recipe at a size that builds in seconds.
SMALL_CONFIG = TinyConfig(
    vocab_size=320,
    n_layer=2,
    n_embd=64,
    n_head=2,
    n_positions=512,
    num_tasks=48,
    repair_tasks=8,
    sft_steps=4,
    batch_size=8,
)


@pytest.fixture(scope="session")
def small_config() -> TinyConfig:
    """:data:`SMALL_CONFIG`."""
    return SMALL_CONFIG


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary ``CODEGYM_CACHE`` root holding the small build."""
    return tmp_path_factory.mktemp("codegym-cache")


@pytest.fixture(scope="session")
def small_model_dir(small_cache: Path) -> Path:
    """The tiny recipe at :data:`SMALL_CONFIG`, built into :func:`small_cache`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODEGYM_CACHE", str(small_cache))
        return tiny_model_path(SMALL_CONFIG, progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The default tiny model (built on first use into the real cache, minutes; then reused)."""
    return tiny_model_path()
