"""Policies to evaluate: a Python function, a Hugging Face model, an OpenAI-compatible server.

A policy answers *requests*: an observation and how many responses to sample for it. What the
observation is depends on the policy's ``input``:

- ``"messages"`` (chat policies: every built-in one except a Python function that asks for
  text): a list of ``{"role", "content"}`` dicts. In single mode it is one user message, the
  problem as MultiTurnRepair-v0 states it (statement, instruction, starter code); in multi
  mode, the env's conversation so far. The code is taken from the response as the env does
  (:func:`codegym.envs.feedback.extract_code`: the first fenced block, or the whole response
  if it parses).
- ``"text"``: the env's observation as one text. In single mode it is CodeCompletion-v0's
  ``observation_text`` (the problem, a blank line) and the response is the program, run as is;
  in multi mode it is the conversation as text and the env extracts the code.

Policy specs (:func:`load_policy`):

- ``python:MODULE:FUNCTION`` (or ``python:path/to/file.py:FUNCTION``): ``FUNCTION(observation)
  -> str``. It gets chat messages, or the text when the function has the attribute
  ``codegym_input = "text"``. Calls run one at a time unless ``concurrency`` says otherwise
  (then from that many threads).
- ``hf:PATH_OR_NAME``: a causal LM (a folder written by ``save_pretrained`` or a hub name),
  prompted with its tokenizer's chat template, sampled in batches of ``concurrency``
  sequences (default 32) through :func:`agents.models.generate`; needs ``codegym[train]``.
- ``tiny``: the bundled tiny model (built on first use), as ``hf:``.
- ``checkpoint:DIR``: the newest ``DIR/checkpoint-<N>/policy`` of a ``codegym train`` run (or
  ``DIR`` itself when it holds a model), as ``hf:``.
- ``openai:BASE_URL`` (``--model NAME``): any OpenAI-compatible chat-completions server
  through the ``openai`` SDK (``pip install 'codegym[openai]'``); see :class:`OpenAIPolicy`.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from codegym.errors import UsageError

log = logging.getLogger(__name__)

#: What a policy is given: chat messages or one text.
Observation = list[dict[str, str]] | str
InputKind = Literal["messages", "text"]

POLICY_FORMS = (
    "python:MODULE:FUNCTION, hf:PATH_OR_NAME, openai:BASE_URL (with --model NAME), "
    "checkpoint:DIR or tiny"
)


class PolicyError(RuntimeError):
    """A policy could not answer (a server that kept failing, a function that raised).

    The samples finished before it are in the results file; ``--resume`` continues the run.
    """


@dataclass(frozen=True)
class GenerationParams:
    """How to sample.

    Attributes:
        temperature: Sampling temperature (0 means greedy where the policy supports it).
        top_p: Nucleus sampling mass.
        max_tokens: Most tokens per response.
        seed: Seed of this batch of requests (local models seed torch with it).
    """

    temperature: float = 0.2
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0


@dataclass(frozen=True)
class Request:
    """``count`` responses wanted for one observation."""

    observation: Observation
    count: int = 1


@dataclass(frozen=True)
class Reply:
    """The responses to request ``index`` and the seconds spent on each (amortised)."""

    index: int
    responses: list[str]
    seconds: float


class Policy(abc.ABC):
    """Something that writes responses to observations (see the module docstring).

    Attributes:
        name: How reports and results files name it (the spec, e.g. ``"hf:gpt2"``).
        input: ``"messages"`` or ``"text"``: what its observations are.
        model: The model it queries, when that is not in ``name`` (OpenAI servers).
    """

    name: str = ""
    input: InputKind = "messages"
    model: str | None = None

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request], params: GenerationParams) -> Iterator[Reply]:
        """Answer every request; replies are yielded as they are ready, in any order, each
        exactly once.

        Raises:
            PolicyError: the policy cannot answer.
        """

    def close(self) -> None:  # noqa: B027 (a no-op unless the policy holds resources)
        """Release what the policy holds (a model, an HTTP client)."""


# ---- python: ----------------------------------------------------------------------------


class CallablePolicy(Policy):
    """A Python function ``f(observation) -> str`` as a policy.

    Args:
        fn: The function. It gets chat messages (a fresh list of dicts) or, when ``input`` is
            ``"text"`` (default: the function's ``codegym_input`` attribute, else
            ``"messages"``), the observation text.
        name: The policy's name (default: ``python:module:qualname``).
        input: Overrides ``fn.codegym_input``.
        concurrency: Calls at once; above 1 they run in threads, so ``fn`` must be
            thread-safe.
    """

    def __init__(
        self,
        fn: Callable[[Any], str],
        *,
        name: str | None = None,
        input: InputKind | None = None,
        concurrency: int = 1,
    ) -> None:
        if not callable(fn):
            raise UsageError(f"policy {name or fn!r} is not callable")
        kind = input or getattr(fn, "codegym_input", "messages")
        if kind not in ("messages", "text"):
            raise UsageError(
                f'{name or fn!r}: codegym_input must be "messages" or "text", got {kind!r}'
            )
        self.fn = fn
        self.input = kind
        self.name = name or f"python:{fn.__module__}:{getattr(fn, '__qualname__', fn)}"
        self.concurrency = max(1, int(concurrency))

    def _answer(self, request: Request) -> tuple[list[str], float]:
        start = time.perf_counter()
        out = []
        for _ in range(request.count):
            obs = request.observation
            arg = [dict(m) for m in obs] if isinstance(obs, list) else obs
            try:
                response = self.fn(arg)
            except Exception as e:
                raise PolicyError(f"{self.name} raised {type(e).__name__}: {e}") from e
            if not isinstance(response, str):
                raise PolicyError(
                    f"{self.name} returned {type(response).__name__}; a policy must return "
                    "the response as a str"
                )
            out.append(response)
        return out, (time.perf_counter() - start) / max(1, request.count)

    def generate(self, requests: Sequence[Request], params: GenerationParams) -> Iterator[Reply]:
        """Call the function for each wanted response (see the class docstring)."""
        if self.concurrency == 1:
            for i, request in enumerate(requests):
                responses, seconds = self._answer(request)
                yield Reply(i, responses, seconds)
            return
        yield from _threaded(self._answer, requests, self.concurrency)


def _threaded(
    answer: Callable[[Request], tuple[list[str], float]],
    requests: Sequence[Request],
    concurrency: int,
) -> Iterator[Reply]:
    """Answer requests from ``concurrency`` threads, yielding each as it completes."""
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="codegym-policy")
    try:
        futures: dict[Future[tuple[list[str], float]], int] = {
            pool.submit(answer, r): i for i, r in enumerate(requests)
        }
        for future in as_completed(futures):
            responses, seconds = future.result()
            yield Reply(futures[future], responses, seconds)
    finally:
        # after an error, requests still waiting are dropped and running ones not awaited
        pool.shutdown(wait=False, cancel_futures=True)


def load_python_policy(target: str, *, concurrency: int | None = None) -> CallablePolicy:
    """The policy ``python:`` names: ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION``.

    Raises:
        UsageError: the module or the function cannot be found, or is not callable.
    """
    module_name, sep, attr = target.rpartition(":")
    spec = f"python:{target}"
    if not sep or not module_name or not attr:
        raise UsageError(f"policy {spec!r}: expected python:MODULE:FUNCTION")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).expanduser()
        if not path.is_file():
            raise UsageError(f"policy {spec!r}: {path} is not a file")
        module_spec = importlib.util.spec_from_file_location(f"codegym_policy_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"policy {spec!r}: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise UsageError(
                f"policy {spec!r}: no module named {e.name!r}; give an importable module "
                "(on PYTHONPATH) or a path to a .py file"
            ) from e
    fn: Any = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UsageError(f"policy {spec!r}: {module_name} has no attribute {attr!r}")
    if not callable(fn):
        raise UsageError(f"policy {spec!r}: {attr} is not callable")
    return CallablePolicy(fn, name=spec, concurrency=concurrency or 1)


# ---- hf: tiny checkpoint: ---------------------------------------------------------------


def _agents_models() -> Any:
    try:
        import agents.models as models
    except ModuleNotFoundError as e:
        raise UsageError(
            f"local model policies need {e.name!r}, which is not installed: "
            "pip install 'codegym[train]'"
        ) from e
    return models


class HFPolicy(Policy):
    """A causal language model sampled locally through :mod:`agents.models`.

    Prompts are the tokenizer's chat template applied to the messages (``input="messages"``,
    the default) or the observation text. Responses are sampled in batches of ``batch_size``
    sequences; torch's RNG is seeded with each call's ``params.seed``, so a batch is
    reproducible. A prompt too long for the model's context keeps its last tokens.

    Args:
        name_or_path: ``"tiny"``, a folder written by ``save_pretrained`` or a hub name.
        name: The policy's name (default ``hf:<name_or_path>``).
        batch_size: Sequences per forward batch (default 32).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        input: ``"messages"`` or ``"text"``.
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        name: str | None = None,
        batch_size: int | None = None,
        device: str = "auto",
        input: InputKind = "messages",
    ) -> None:
        models = _agents_models()
        self._models = models
        self.model_ref = str(name_or_path)
        self.name = name or f"hf:{name_or_path}"
        self.input = input
        self.batch_size = max(1, int(batch_size or 32))
        self.lm: Any
        self.lm, self.tokenizer = models.load_causal_lm(
            self.model_ref, device=device, trainable=False
        )
        config = self.lm.config
        self.context = int(
            getattr(config, "max_position_embeddings", None)
            or getattr(config, "n_positions", None)
            or 0
        )
        self._warned = False

    def _prompt_ids(self, observation: Observation, max_new: int) -> list[int]:
        if isinstance(observation, list):
            text = self.tokenizer.apply_chat_template(
                observation, add_generation_prompt=True, tokenize=False
            )
        else:
            text = observation
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = self.context - max_new if self.context else len(ids)
        if len(ids) > room:
            if not self._warned:
                log.warning(
                    "%s: a prompt of %d tokens keeps its last %d (context %d, %d new tokens)",
                    self.name, len(ids), room, self.context, max_new,
                )  # fmt: skip
                self._warned = True
            ids = ids[-room:]
        return ids

    def generate(self, requests: Sequence[Request], params: GenerationParams) -> Iterator[Reply]:
        """Sample every wanted response, ``batch_size`` sequences at a time."""
        import torch

        max_new = params.max_tokens
        if self.context and max_new >= self.context:
            max_new = self.context // 2  # leave the prompt room; the rest is cut anyway
        sampling = self._models.SamplingParams(
            temperature=params.temperature, top_p=params.top_p, max_new_tokens=max_new
        )
        flat = [
            (i, self._prompt_ids(r.observation, max_new))
            for i, r in enumerate(requests)
            for _ in range(r.count)
        ]
        torch.manual_seed(params.seed)
        texts: dict[int, list[str]] = {i: [] for i in range(len(requests))}
        seconds: dict[int, float] = dict.fromkeys(texts, 0.0)
        for start in range(0, len(flat), self.batch_size):
            chunk = flat[start : start + self.batch_size]
            t0 = time.perf_counter()
            out = self._models.generate(
                self.lm, self.tokenizer, [ids for _, ids in chunk], sampling,
                batch_size=self.batch_size,
            )  # fmt: skip
            each = (time.perf_counter() - t0) / len(chunk)
            for (i, _), generation in zip(chunk, out, strict=True):
                texts[i].append(generation.text)
                seconds[i] += each
                if len(texts[i]) == requests[i].count:
                    yield Reply(i, texts[i], seconds[i] / requests[i].count)

    def close(self) -> None:
        """Drop the model."""
        self.lm = None


_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def resolve_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The model folder of a ``codegym train`` run: its newest ``checkpoint-<N>/policy``
    (highest ``N``), or the folder itself when it holds a saved model.

    Raises:
        UsageError: not a folder, or neither a run with checkpoints nor a model.
    """
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise UsageError(f"checkpoint:{run_dir}: {root} is not a folder")
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT.fullmatch(child.name)
        if match and (child / "policy" / "config.json").is_file():
            found.append((int(match.group(1)), child / "policy"))
    if found:
        return max(found)[1]
    config = root / "config.json"
    if config.is_file():
        try:
            is_model = "model_type" in json.loads(config.read_text())
        except (OSError, ValueError):
            is_model = False
        if is_model:
            return root
    raise UsageError(
        f"checkpoint:{run_dir}: no checkpoint-<N>/policy folder in {root}, and {root} holds no "
        "saved model; give a codegym train run directory that has saved a checkpoint"
    )


# ---- openai: -----------------------------------------------------------------------------


def _openai() -> Any:
    try:
        import openai
    except ModuleNotFoundError as e:
        raise UsageError(
            "openai: policies need the openai SDK, which is not installed: "
            "pip install 'codegym[openai]'"
        ) from e
    return openai


class OpenAIPolicy(Policy):
    """An OpenAI-compatible chat-completions server (vLLM, TGI, llama.cpp, hosted APIs).

    Retries are the SDK's own: with ``max_retries`` it retries connection errors, timeouts,
    408, 409, 429 and 5xx answers, waiting what the server's ``Retry-After`` (or
    ``retry-after-ms``) header says when that is at most 120 s, else an exponential back-off
    with jitter (0.5 s doubling up to 8 s). A second retry loop here would multiply the
    attempts, so there is none. When the retries run out the error ends the run as a
    :class:`PolicyError`; finished samples stay in the results file for ``--resume``.

    ``count`` responses per request are asked for with the ``n`` parameter. A server that
    rejects it (400/422 with ``n > 1``) is then asked ``count`` times with ``n = 1`` for the
    rest of the run; one that returns fewer choices than asked for is asked again for the
    rest.

    Args:
        base_url: The server's base URL (``http://127.0.0.1:8000/v1``).
        model: The model name; ``None`` asks the server (``GET /models``) and takes the only
            one it serves.
        concurrency: Requests in flight at once (default 8).
        timeout_s: Seconds a request may take (read timeout), default 300.
        connect_timeout_s: Seconds to connect, default 10.
        max_retries: Retries of a failed request (default 6).
        api_key: Default ``$OPENAI_API_KEY``, else ``"EMPTY"`` (local servers ignore it).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        concurrency: int | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 6,
        api_key: str | None = None,
    ) -> None:
        openai = _openai()
        self._openai = openai
        if not re.match(r"https?://", base_url):
            raise UsageError(
                f"openai:{base_url}: the base URL must start with http:// or https:// "
                "(e.g. openai:http://127.0.0.1:8000/v1)"
            )
        self.base_url = base_url
        self.concurrency = max(1, int(concurrency or 8))
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            max_retries=max_retries,
        )
        self.model = model or self._served_model()
        self.name = f"openai:{base_url}"
        self.n_supported: bool | None = None  # unknown until a request with n > 1

    def _served_model(self) -> str:
        try:
            ids = [m.id for m in self.client.models.list()]
        except self._openai.APIError as e:
            raise UsageError(
                f"openai:{self.base_url}: no --model given and the server's model list could "
                f"not be read ({e}); pass --model NAME"
            ) from e
        if len(ids) != 1:
            raise UsageError(
                f"openai:{self.base_url}: no --model given and the server serves "
                f"{len(ids)} models ({', '.join(ids[:5])}); pass --model NAME"
            )
        return str(ids[0])

    def _create(self, messages: list[dict[str, str]], n: int, params: GenerationParams) -> Any:
        extra: dict[str, Any] = {"n": n} if n > 1 else {}
        return self.client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            **extra,
        )

    def _answer(self, request: Request, params: GenerationParams) -> tuple[list[str], float]:
        obs = request.observation
        messages = obs if isinstance(obs, list) else [{"role": "user", "content": obs}]
        start = time.perf_counter()
        out: list[str] = []
        while len(out) < request.count:
            want = request.count - len(out)
            n = want if self.n_supported is not False else 1
            try:
                completion = self._create(messages, n, params)
            except (self._openai.BadRequestError, self._openai.UnprocessableEntityError) as e:
                if n == 1:
                    raise PolicyError(f"{self.name}: the server refused a request: {e}") from e
                log.info("%s refuses n=%d (%s); asking one response at a time", self.name, n, e)
                self.n_supported = False
                continue
            except self._openai.APIError as e:
                raise PolicyError(
                    f"{self.name}: request failed after {self.client.max_retries} retries: {e}"
                ) from e
            choices = sorted(completion.choices or [], key=lambda c: c.index)
            if not choices:
                raise PolicyError(f"{self.name}: the server answered with no choices")
            if n > 1:  # a server that ignores n answers with one choice
                self.n_supported = len(choices) > 1
            out.extend((c.message.content or "") for c in choices[:want])
        return out, (time.perf_counter() - start) / request.count

    def generate(self, requests: Sequence[Request], params: GenerationParams) -> Iterator[Reply]:
        """Send the requests, ``concurrency`` at a time; replies come as they complete."""
        yield from _threaded(lambda r: self._answer(r, params), requests, self.concurrency)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


# ---- specs --------------------------------------------------------------------------------


def load_policy(spec: str, *, model: str | None = None, concurrency: int | None = None) -> Policy:
    """The policy a spec names (see the module docstring).

    Args:
        spec: ``python:MODULE:FUNCTION``, ``hf:PATH_OR_NAME``, ``openai:BASE_URL``,
            ``checkpoint:DIR`` or ``tiny``.
        model: The model name for ``openai:``.
        concurrency: Calls (python), sequences per batch (hf), requests in flight (openai).

    Raises:
        UsageError: an unknown form, or a policy that cannot be found or loaded.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"policy must be one of {POLICY_FORMS}, got {spec!r}")
    kind, _, rest = spec.partition(":")
    if model is not None and kind != "openai":
        raise UsageError(f"--model names the model of an openai: policy; {spec!r} is not one")
    if spec == "tiny":
        return HFPolicy("tiny", name="tiny", batch_size=concurrency)
    if kind == "hf" and rest:
        return HFPolicy(rest, name=spec, batch_size=concurrency)
    if kind == "checkpoint" and rest:
        return HFPolicy(str(resolve_checkpoint(rest)), name=spec, batch_size=concurrency)
    if kind == "openai" and rest:
        return OpenAIPolicy(rest, model, concurrency=concurrency)
    if kind == "python" and rest:
        return load_python_policy(rest, concurrency=concurrency)
    raise UsageError(f"unknown policy {spec!r}: give {POLICY_FORMS}")


__all__ = [
    "CallablePolicy",
    "GenerationParams",
    "HFPolicy",
    "OpenAIPolicy",
    "Policy",
    "PolicyError",
    "Reply",
    "Request",
    "load_policy",
    "resolve_checkpoint",
]
