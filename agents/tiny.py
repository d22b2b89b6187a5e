"""The bundled tiny model: a 3.7M-parameter GPT-2 that knows a little of the toy suite.

It exists so that RL on codegym can be run, tested and demonstrated on a CPU in minutes. It is
built on first use, deterministically from a seed, and cached under
``~/.cache/codegym/models/tiny-<hash>/`` (``$CODEGYM_CACHE`` replaces ``~/.cache/codegym``),
where ``<hash>`` covers every setting in :class:`TinyConfig`, :data:`RECIPE_VERSION` and a
fingerprint of the data (the first toy tasks, the env's instructions and feedback texts): a
change to any of them builds a new model rather than reusing a stale one. The folder loads
with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``.

The recipe (:func:`build_tiny_model`):

1. ``config.num_tasks`` tasks of the toy TRAIN split (``load_tasks("toy", split="train",
   n=num_tasks, seed=task_seed)``); the held-out test split is never seen.
2. Supervised examples in the formats of both environments, the loss on the answer only:

   - **completion** (CodeCompletion-v0): ``completion_prompt(task.prompt, prefix)`` then the
     rest of the canonical solution and EOS, for every curriculum stage prefix of the
     solution (:func:`codegym.envs.curriculum.stage_prefixes`, the env's defaults),
     including the empty prefix (full generation);
   - **chat** (MultiTurnRepair-v0): the first user message rendered with the chat template
     and the generation prompt, then ``"```python\\n" + solution + "\\n```"`` and EOS;
   - **repair** (a little, so the model has seen a second turn): for ``repair_tasks`` tasks,
     a wrong first answer (a one-token mutation of the canonical solution: a comparison or
     arithmetic operator swapped, or an integer constant changed by one) that fails a public
     test, the feedback the env gives for it (the real execution result from the process
     sandbox through :func:`codegym.envs.feedback.format_feedback`, with the env's default
     caps), then the right answer as in the chat format. Only the right answer is trained.

   Each epoch gives one example per task: chat with probability ``chat_share`` (the repair
   conversation instead, half the time, for tasks that have one), else completion after a
   stage prefix drawn uniformly. Batches group examples of similar length.
3. A byte-level BPE tokenizer trained with ``tokenizers`` on the texts of those examples
   (special tokens ``<|endoftext|>`` (EOS), ``<|pad|>``, ``<|system|>``, ``<|user|>``,
   ``<|assistant|>``) and the chat template :data:`CHAT_TEMPLATE`.
4. A GPT-2 (4 layers, width 256, 4 heads, no dropout, so sampling and training see the same
   function) trained for a fixed number of steps (not wall time) with AdamW, a linear
   warm-up then a constant rate, fp32, ``torch.use_deterministic_algorithms``.

Same config and seed give the same weights on the same machine and library versions. The SFT
budget is chosen to leave room for RL: the model solves some held-out tasks, far from all
(``benchmarks/tiny_model.py`` measures it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import random
import shutil
import time
import tokenize
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from codegym.errors import UsageError

log = logging.getLogger(__name__)

#: Bump when the recipe changes in a way TinyConfig does not capture (invalidates caches).
RECIPE_VERSION = 1

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN, *ROLE_TOKENS)

#: The tiny model's chat template: each message is ``<|role|>\\n`` + content (+ EOS after an
#: assistant message) + ``\\n``; the generation prompt is ``<|assistant|>\\n``. Rendering
#: ``messages[:k]`` is a prefix of rendering ``messages[:k + 1]``.
CHAT_TEMPLATE = (
    # Newlines as expressions: transformers renders with trim_blocks, which would drop a
    # literal newline that follows a block tag.
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ '\\n' }}{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{{ '\\n' }}{% endif %}"
)

#: The sandbox limits for checking mutants: they finish at once or loop, and a loop gets
#: the same "Execution took too long." feedback at a quarter of a second as at one second.
_MUTANT_CPU_S = 0.25
_MUTANT_TRIES = 4


@dataclass(frozen=True)
class TinyConfig:
    """Everything that shapes the tiny model; its :meth:`key` names the cache folder.

    Attributes:
        vocab_size: Most tokens of the BPE vocabulary (toy text saturates near 800).
        n_layer, n_embd, n_head, n_positions: The GPT-2's depth, width, heads and context.
        num_tasks: Toy train tasks the SFT data comes from.
        task_seed: Seed of ``load_tasks("toy", split="train", ...)``.
        repair_tasks: How many of those tasks get a repair conversation.
        chat_share: Chance that a task's example in an epoch is in the chat format.
        sft_steps: Optimiser steps of supervised fine-tuning (the budget, fixed by steps).
            Measured greedy full-generation pass@1 on 200 held-out toy tasks: 7% after 300
            steps, 38% after 450 (``benchmarks/tiny_model.py``); the skill of reading the
            constants off the prompt appears between the two.
        batch_size: Examples per step.
        lr: Peak AdamW learning rate.
        warmup_steps: Linear warm-up steps, then a constant rate (see :func:`train_sft`).
        weight_decay: AdamW weight decay.
        seed: Seed of the weights, the data order and the mutants.
    """

    vocab_size: int = 1024
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_positions: int = 1024
    num_tasks: int = 4000
    task_seed: int = 0
    repair_tasks: int = 400
    chat_share: float = 0.4
    sft_steps: int = 450
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("vocab_size", "n_layer", "n_embd", "n_head", "n_positions", "num_tasks")
        for name in (*positive, "sft_steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "sft_steps" else 1):
                raise UsageError(f"TinyConfig.{name} must be a positive int, got {value!r}")
        if self.vocab_size < 256 + len(SPECIAL_TOKENS):
            raise UsageError(
                f"TinyConfig.vocab_size must be at least {256 + len(SPECIAL_TOKENS)} "
                f"(the byte alphabet and the special tokens), got {self.vocab_size}"
            )
        if self.n_embd % self.n_head:
            raise UsageError(
                f"TinyConfig.n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})"
            )
        if not 0 <= self.chat_share <= 1:
            raise UsageError(f"TinyConfig.chat_share must be in [0, 1], got {self.chat_share}")
        if not 0 <= self.repair_tasks <= self.num_tasks:
            raise UsageError(
                f"TinyConfig.repair_tasks must be in [0, num_tasks], got {self.repair_tasks}"
            )
        if self.lr <= 0:
            raise UsageError(f"TinyConfig.lr must be positive, got {self.lr}")

    def key(self) -> str:
        """16 hex digits: a hash of the config, the recipe version and the data fingerprint."""
        payload = json.dumps(
            {
                "config": dataclasses.asdict(self),
                "recipe": RECIPE_VERSION,
                "data": _data_fingerprint(self.task_seed),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---- paths and caching -------------------------------------------------------------------


def cache_root() -> Path:
    """``$CODEGYM_CACHE``, or ``~/.cache/codegym``."""
    return Path(os.environ.get("CODEGYM_CACHE") or "~/.cache/codegym").expanduser()


def tiny_model_path(
    config: TinyConfig | None = None, *, rebuild: bool = False, progress: bool = True
) -> Path:
    """The folder of the tiny model for ``config`` (default :class:`TinyConfig`), built if
    it is not cached yet (or ``rebuild``).

    The build runs under a file lock (concurrent callers wait for one build), into a
    temporary folder that is renamed into place when complete, so a crash or Ctrl-C never
    leaves a half-written model behind.

    Args:
        config: The recipe's settings.
        rebuild: Build again even if cached (the new folder replaces the old one).
        progress: Show a progress bar and log what is happening.
    """
    from filelock import FileLock

    config = config or TinyConfig()
    final = cache_root() / "models" / f"tiny-{config.key()}"
    if not rebuild and _complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if not rebuild and _complete(final):  # another process built it while we waited
            return final
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            if progress:
                log.warning("building the tiny model into %s (once; a few minutes)", final)
            build_tiny_model(config, tmp, progress=progress)
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            if final.exists():
                final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _complete(folder: Path) -> bool:
    return (folder / "build.json").is_file()


def completion_prompt(prompt: str, prefix: str) -> str:
    """The CodeCompletion-v0 observation as one text: ``f"{prompt}\\n\\n{prefix}"``."""
    return f"{prompt}\n\n{prefix}"


def render_chat(messages: Sequence[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """:data:`CHAT_TEMPLATE` applied to ``messages``, without a tokenizer."""
    parts = []
    for m in messages:
        eos = EOS_TOKEN if m["role"] == "assistant" else ""
        parts.append(f"<|{m['role']}|>\n{m['content']}{eos}\n")
    if add_generation_prompt:
        parts.append("<|assistant|>\n")
    return "".join(parts)


def chat_answer(code: str) -> str:
    """An assistant answer holding ``code`` in a python fence (what the chat SFT teaches)."""
    return f"```python\n{code.rstrip()}\n```"


# ---- SFT data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SFTExample:
    """A prompt and the answer the model learns to write after it (loss on the answer only).

    Attributes:
        kind: ``"completion"``, ``"chat"`` or ``"repair"``.
        task_id: The toy task it comes from.
        prompt: The text the model sees.
        answer: The text it learns to write (EOS is appended when tokenized).
    """

    kind: str
    task_id: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class TaskExamples:
    """The examples one task can give: completions (one per stage), chat, maybe repair."""

    completions: tuple[SFTExample, ...]
    chat: SFTExample
    repair: SFTExample | None = None


def completion_examples(task: Any) -> tuple[SFTExample, ...]:
    """One completion example per curriculum stage of the task's canonical solution."""
    from codegym.envs.curriculum import stage_prefixes

    solution = task.canonical_solutions[0]
    return tuple(
        SFTExample(
            "completion",
            task.task_id,
            completion_prompt(task.prompt, prefix),
            solution[len(prefix) :],
        )
        for prefix in stage_prefixes(solution)
    )


def chat_example(task: Any, first_user_message: str) -> SFTExample:
    """The first turn of MultiTurnRepair-v0 answered with the canonical solution."""
    prompt = render_chat([{"role": "user", "content": first_user_message}], True)
    return SFTExample("chat", task.task_id, prompt, chat_answer(task.canonical_solutions[0]))


_SWAPS = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "+": "-",
    "-": "+",
    "*": "+",
    "+=": "-=",
    "-=": "+=",
    "%": "//",
    "//": "%",
}


def mutants(source: str, rng: random.Random, limit: int = _MUTANT_TRIES) -> list[str]:
    """Up to ``limit`` one-token mutations of ``source``, in random order: an operator from
    a fixed table swapped (``<`` for ``<=``, ``+`` for ``-``, ...) or an integer constant
    changed by one. They keep the program's shape, so they make plausible wrong answers."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    sites = []
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in _SWAPS:
            new = _SWAPS[tok.string]
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            value = int(tok.string)
            new = str(value + 1 if value == 0 or rng.random() < 0.5 else value - 1)
        else:
            continue
        start = line_starts[tok.start[0] - 1] + tok.start[1]
        end = line_starts[tok.end[0] - 1] + tok.end[1]
        sites.append(source[:start] + new + source[end:])
    rng.shuffle(sites)
    return sites[:limit]


def repair_examples(
    tasks: Sequence[Any], first_messages: Sequence[str], sandbox: Any, rng: random.Random
) -> dict[str, SFTExample]:
    """Repair conversations for ``tasks``: a wrong answer, the env's feedback, the fix.

    Mutants (:func:`mutants`) run on each task's public tests in ``sandbox``; the first one
    that compiles and fails a public test (not an infrastructure error) is the wrong answer,
    and :func:`codegym.envs.feedback.format_feedback` of its real result, with
    MultiTurnRepair-v0's default caps, is the feedback. Tasks without such a mutant get none.

    Returns:
        Task id -> example.
    """
    from codegym.envs.feedback import format_feedback
    from codegym.sandbox import Job, Limits, Verdict

    candidates = {t.task_id: mutants(t.canonical_solutions[0], rng) for t in tasks}
    found: dict[str, SFTExample] = {}
    limits = Limits(cpu_time_s=_MUTANT_CPU_S, wall_time_s=2 * _MUTANT_CPU_S + 0.5)
    for attempt in range(_MUTANT_TRIES):
        todo = [
            (t, m)
            for t, m in zip(tasks, first_messages, strict=True)
            if t.task_id not in found and len(candidates[t.task_id]) > attempt and t.public_tests
        ]
        jobs = [
            Job(candidates[t.task_id][attempt], t.public_tests, t.entry_point, limits)
            for t, _ in todo
        ]
        for (task, message), job, result in zip(todo, jobs, sandbox.run_batch(jobs), strict=True):
            if result.passed or result.verdict in (Verdict.SYNTAX_ERROR, Verdict.INFRA_ERROR):
                continue
            feedback = format_feedback(task.public_tests, result, entry_point=task.entry_point)
            conversation = [
                {"role": "user", "content": message},
                {"role": "assistant", "content": chat_answer(job.program)},
                {"role": "user", "content": feedback},
            ]
            found[task.task_id] = SFTExample(
                "repair",
                task.task_id,
                render_chat(conversation, add_generation_prompt=True),
                chat_answer(task.canonical_solutions[0]),
            )
    return found


def sft_data(
    tasks: Sequence[Any], *, repair_tasks: int, seed: int, sandbox: Any | None = None
) -> list[TaskExamples]:
    """Every example the tasks can give (see the module docstring); repair conversations
    for ``repair_tasks`` tasks drawn with ``seed``, checked in ``sandbox`` (default: a
    process sandbox, which runs only mutants of the suite's own solutions)."""
    from codegym.envs.multi_turn_repair import MultiTurnRepairEnv
    from codegym.sandbox import make_sandbox

    env = MultiTurnRepairEnv(tasks=list(tasks), sandbox="process")
    firsts = [env.first_user_message(t) for t in tasks]
    env.close()
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(tasks)), repair_tasks))
    repairs: dict[str, SFTExample] = {}
    if chosen:
        own = make_sandbox("process", size=2, warn=False) if sandbox is None else None
        try:
            repairs = repair_examples(
                [tasks[i] for i in chosen], [firsts[i] for i in chosen], own or sandbox, rng
            )
        finally:
            if own is not None:
                own.close()
    return [
        TaskExamples(completion_examples(t), chat_example(t, m), repairs.get(t.task_id))
        for t, m in zip(tasks, firsts, strict=True)
    ]


def draw_epoch(data: Sequence[TaskExamples], chat_share: float, rng: random.Random) -> list[
    SFTExample
]:  # fmt: skip
    """One example per task, in task order: chat with probability ``chat_share`` (its
    repair conversation instead, half the time, when it has one), else a completion after a
    uniformly drawn stage prefix."""
    epoch = []
    for task in data:
        if rng.random() < chat_share:
            use_repair = task.repair is not None and rng.random() < 0.5
            epoch.append(task.repair if use_repair and task.repair else task.chat)
        else:
            epoch.append(rng.choice(task.completions))
    return epoch


# ---- tokenizer ---------------------------------------------------------------------------


def train_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, with the special
    tokens and :data:`CHAT_TEMPLATE`. Every byte is in the alphabet, so any text encodes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    # Offsets map tokens back to characters exactly (FGO maps tokens to lines with them).
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=max_length,
        padding_side="left",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(ROLE_TOKENS)})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _corpus(data: Sequence[TaskExamples]) -> Iterator[str]:
    for task in data:
        for ex in (*task.completions, task.chat, *([task.repair] if task.repair else [])):
            yield ex.prompt
            yield ex.answer


# ---- training ----------------------------------------------------------------------------


def _encode(tokenizer: Any, example: SFTExample) -> tuple[list[int], list[int]]:
    prompt = tokenizer.encode(example.prompt, add_special_tokens=False)
    answer = tokenizer.encode(example.answer, add_special_tokens=False)
    return prompt, [*answer, tokenizer.eos_token_id]


def sft_batches(
    data: Sequence[TaskExamples],
    *,
    batch_size: int,
    steps: int,
    chat_share: float,
    seed: int,
    group: int = 8,
) -> Iterator[list[SFTExample]]:
    """``steps`` batches: epochs drawn with :func:`draw_epoch` and shuffled; within windows
    of ``group`` batches examples are sorted by length (less padding), then the batches of a
    window are shuffled. Deterministic in ``seed``."""
    rng = random.Random(seed)
    made = 0
    while made < steps:
        epoch = draw_epoch(data, chat_share, rng)
        rng.shuffle(epoch)
        window = batch_size * group
        for start in range(0, len(epoch) - batch_size + 1, window):
            chunk = sorted(epoch[start : start + window], key=lambda e: len(e.prompt + e.answer))
            batches = [
                chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)
            ]
            rng.shuffle(batches)
            for batch in batches:
                if made == steps:
                    return
                yield batch
                made += 1


def collate(
    tokenizer: Any, batch: Sequence[SFTExample], max_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 except on answer
    tokens and EOS) for a training batch; an example longer than ``max_length`` (the
    model's context) loses its end."""
    pairs = [_encode(tokenizer, ex) for ex in batch]
    if max_length is not None:
        pairs = [(p[:max_length], a[: max(0, max_length - len(p))]) for p, a in pairs]
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    for i, (p, a) in enumerate(pairs):
        n = len(p) + len(a)
        ids[i, :n] = torch.tensor(p + a)
        mask[i, :n] = 1
        labels[i, len(p) : n] = torch.tensor(a)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_sft(
    model: Any,
    tokenizer: Any,
    batches: Iterable[Sequence[SFTExample]],
    *,
    steps: int,
    lr: float,
    warmup_steps: int = 10,
    weight_decay: float = 0.0,
    progress: bool = True,
    on_step: Callable[[int, Any], None] | None = None,
) -> list[float]:
    """Supervised fine-tuning of ``model`` on ``batches`` (the loss is the mean over answer
    tokens). AdamW, a linear warm-up over ``warmup_steps``, then a constant learning rate,
    gradient norm clipped at 1.

    The rate does not decay, so the model after ``k`` of ``n`` steps is the model a budget of
    ``k`` steps builds: one run measures every budget, and "more SFT" continues the same run.

    Args:
        on_step: Called as ``on_step(step, model)`` after each step (1-based).

    Returns:
        The loss of every step.
    """
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps))
    )
    device = next(model.parameters()).device
    context = getattr(model.config, "max_position_embeddings", None)
    model.train()
    losses: list[float] = []
    bar = tqdm(total=steps, desc="tiny model SFT", disable=not progress, unit="step")
    for batch in batches:
        inputs = {k: v.to(device) for k, v in collate(tokenizer, batch, context).items()}
        loss = model(**inputs).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if on_step is not None:
            on_step(len(losses), model)
            model.train()
    bar.close()
    model.eval()
    return losses


def new_model(config: TinyConfig, tokenizer: Any) -> Any:
    """A freshly initialised GPT-2 for ``tokenizer`` (weights from torch's global RNG)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(gpt2)
    model.loss_type = "ForCausalLM"  # GPT-2's config names none; transformers warns without
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_tiny_model(
    config: TinyConfig,
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    on_step: Callable[[int, Any], None] | None = None,
) -> dict[str, Any]:
    """Build the tiny model of ``config`` into ``out_dir`` (see the module docstring).

    Writes the model, the tokenizer and ``build.json`` (the config, its key, data counts,
    the loss curve's end and the build time). Deterministic: torch's global RNG and
    deterministic-algorithms setting are restored afterwards. ``on_step`` is passed to
    :func:`train_sft` (e.g. to save the model at several budgets in one run).

    Returns:
        What ``build.json`` holds.
    """
    from codegym.tasks import load_tasks

    start = time.perf_counter()
    out = Path(out_dir)
    tasks = load_tasks("toy", split="train", n=config.num_tasks, seed=config.task_seed)
    if len(tasks) < config.num_tasks:
        raise UsageError(
            f"TinyConfig.num_tasks is {config.num_tasks} but the toy train split gave only "
            f"{len(tasks)} tasks; lower num_tasks"
        )
    data = sft_data(tasks, repair_tasks=config.repair_tasks, seed=config.seed)
    data_s = time.perf_counter() - start
    tokenizer = train_tokenizer(_corpus(data), config.vocab_size, config.n_positions)
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.use_deterministic_algorithms(True)
        try:
            torch.manual_seed(config.seed)
            model = new_model(config, tokenizer)
            batches = sft_batches(
                data,
                batch_size=config.batch_size,
                steps=config.sft_steps,
                chat_share=config.chat_share,
                seed=config.seed,
            )
            losses = train_sft(
                model,
                tokenizer,
                batches,
                steps=config.sft_steps,
                lr=config.lr,
                warmup_steps=config.warmup_steps,
                weight_decay=config.weight_decay,
                progress=progress,
                on_step=on_step,
            )
        finally:
            torch.use_deterministic_algorithms(deterministic)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = {
        "config": dataclasses.asdict(config),
        "key": config.key(),
        "recipe_version": RECIPE_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "tasks": len(tasks),
        "examples": {
            "completion": sum(len(t.completions) for t in data),
            "chat": len(data),
            "repair": sum(t.repair is not None for t in data),
        },
        "loss_first": losses[0] if losses else None,
        "loss_last_20": sum(losses[-20:]) / max(1, len(losses[-20:])),
        "data_seconds": round(data_s, 1),
        "build_seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
        "versions": _versions(),
    }
    (out / "build.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _versions() -> dict[str, str]:
    import tokenizers
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def _data_fingerprint(task_seed: int, n: int = 64) -> str:
    """A hash of what the SFT data is made of: the first ``n`` toy train tasks (ids,
    prompts, solutions, tests), their curriculum prefixes and the env's instruction and
    feedback texts. A change to the toy suite, the curriculum or the env's wording changes it.
    """
    from codegym.envs import feedback, multi_turn_repair
    from codegym.envs.curriculum import stage_prefixes
    from codegym.tasks import load_tasks

    loader_log = logging.getLogger("codegym.tasks.loading")
    level = loader_log.level
    loader_log.setLevel(logging.WARNING)  # computing a key is no load worth announcing
    try:
        tasks = load_tasks("toy", split="train", n=n, seed=task_seed)
    finally:
        loader_log.setLevel(level)
    h = hashlib.sha256()
    for t in tasks:
        solution = t.canonical_solutions[0]
        parts = [t.task_id, t.prompt, solution, repr(t.public_tests), *stage_prefixes(solution)]
        h.update("\x00".join(parts).encode())
    for text in (
        multi_turn_repair.STDIO_INSTRUCTION,
        multi_turn_repair.CALL_INSTRUCTION,
        feedback.FEEDBACK_HEADER,
        feedback.FEEDBACK_FOOTER,
    ):
        h.update(text.encode())
    return h.hexdigest()
