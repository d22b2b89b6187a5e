"""``evaluate``: play a policy on a task suite through the codegym environments and score it.

**Single mode** (``mode="single"``): ``n`` samples per task. Each sample is one episode of
CodeCompletion-v0 at full generation (no prefix), scored on every test of the task (public
and private). A chat policy's code is extracted from its response as MultiTurnRepair-v0 does;
a text policy's response is the program. Metric: pass@k.

**Multi mode** (``mode="multi"``): ``n`` rollouts per task of MultiTurnRepair-v0 with up to
``max_turns`` turns: the policy sees the conversation, the env runs the public tests and gives
RLEF feedback, and the final code is scored on every test. Metrics: n@k (RLEF) and the
first-turn solve rate (:mod:`codegym.eval.metrics`).

**Execution.** Every episode has its own env (all sharing one sandbox); their transitions are
driven here, each job submitted to the sandbox as soon as its response exists, so programs run
in parallel over the sandbox pool while the policy keeps generating. Gymnasium's vector envs
step all sub-envs on one task choice and one schedule; an evaluation needs a different task
per episode and streaming results, hence this driver (the same generator protocol as
:class:`codegym.envs.vector.CodeVectorEnv`, with futures instead of one blocking batch).

**Determinism.** Requests go to the policy in rounds of fixed composition: single mode cuts
the list of missing samples into rounds of ``round_size``; multi mode plays in lockstep (each
round waits for every execution before the next turn is generated). Round ``r`` is sampled
with seed ``(seed, r)``, so a local model reproduces a run. A resumed run has other rounds
and so other samples for what it still had to do (the same with a deterministic policy).

**Resume.** Samples stream to the results file as they finish
(:mod:`codegym.eval.records`). ``resume=True`` keeps what the file holds and plays only what
is missing. A rollout cut short in multi mode is continued: its recorded turns are replayed
through a fresh env (their code runs again, without asking the policy) and play continues
from there; a replayed turn whose outcome differs from the record (a timeout on a loaded
machine) is written again and the rollout continues live from it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from codegym.envs.base import CodeEnv, StepResult, TasksArg, Transition, resolve_tasks
from codegym.envs.code_completion import CodeCompletionEnv
from codegym.envs.feedback import extract_code
from codegym.envs.multi_turn_repair import MultiTurnRepairEnv
from codegym.envs.rewards import check_scorable
from codegym.errors import UsageError
from codegym.eval.metrics import DEFAULT_RESAMPLES
from codegym.eval.policies import (
    GenerationParams,
    InputKind,
    Observation,
    Policy,
    Request,
    load_policy,
)
from codegym.eval.records import EpisodeKey, ResultsLog, episodes, is_done
from codegym.eval.report import EvalReport, build_report
from codegym.sandbox.types import ExecutionResult, Job
from codegym.tasks.task import Task

log = logging.getLogger(__name__)

Mode = Literal["single", "multi"]


@dataclass
class Episode:
    """One sample (single mode) or rollout (multi mode) being played."""

    task: Task
    sample: int
    #: Responses to play before asking the policy, each with the record it produced before
    #: (``None``: not recorded yet, e.g. a --samples completion).
    queued: deque[tuple[str, dict[str, Any] | None]] = field(default_factory=deque)
    env: CodeEnv[Any] | None = None
    observation: Observation = ""
    turn: int = 0
    finished: bool = False

    @property
    def key(self) -> EpisodeKey:
        return (self.task.task_id, self.sample)


@dataclass
class _InFlight:
    episode: Episode
    transition: Transition
    response: str
    generate_s: float
    recorded: dict[str, Any] | None
    execute_s: float = 0.0


class _Executions:
    """Transitions in progress: each job is submitted to the sandbox as a future."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.futures: dict[Future[ExecutionResult], _InFlight] = {}

    def __len__(self) -> int:
        return len(self.futures)

    def start(self, item: _InFlight) -> StepResult | None:
        """Start a transition; its step result if it needed no job."""
        try:
            job = next(item.transition)
        except StopIteration as stop:
            return stop.value
        self._submit(job, item)
        return None

    def _submit(self, job: Job, item: _InFlight) -> None:
        self.futures[self.sandbox.submit(job)] = item

    def collect(self, *, block: bool) -> list[tuple[_InFlight, StepResult]]:
        """Advance transitions whose jobs finished; the ones that ended, with their results.

        Raises:
            UnscorableResult: a job ended in an ``infra_error`` (the sandbox failed).
        """
        if not self.futures:
            return []
        done, _ = wait(
            list(self.futures), timeout=None if block else 0, return_when=FIRST_COMPLETED
        )
        ended = []
        for future in done:
            item = self.futures.pop(future)
            result = future.result()
            check_scorable(result)
            item.execute_s += sum(t.wall_time_s for t in result.tests)
            try:
                job = item.transition.send(result)
            except StopIteration as stop:
                ended.append((item, stop.value))
            else:
                self._submit(job, item)
        return ended

    def close(self) -> None:
        """Abandon what is in flight (after an error)."""
        for future, item in self.futures.items():
            future.cancel()
            item.transition.close()
        self.futures.clear()


class _Play:
    """The state of one evaluation: envs, executions, the results log, the progress bar."""

    def __init__(
        self,
        *,
        policy: Policy | None,
        input_kind: InputKind,
        suite: tuple[Task, ...],
        mode: Mode,
        max_turns: int,
        params: GenerationParams,
        sandbox: Any,
        results: ResultsLog,
        round_size: int,
        progress: Any,
    ) -> None:
        self.policy = policy
        self.input = input_kind
        self.suite = suite
        self.mode = mode
        self.max_turns = max_turns
        self.params = params
        self.sandbox = sandbox
        self.results = results
        self.round_size = round_size
        self.progress = progress
        self.executions = _Executions(sandbox)
        self._free: list[CodeEnv[Any]] = []
        self._envs: list[CodeEnv[Any]] = []
        # states the problem as a chat message in single mode; never stepped
        self._formatter = MultiTurnRepairEnv(tasks=suite, sandbox=sandbox, max_turns=max_turns)
        self._round = 0
        self.solved = 0
        self.finished = 0

    # ---- envs and observations ----------------------------------------------------------

    def _env(self) -> CodeEnv[Any]:
        if self._free:
            return self._free.pop()
        env: CodeEnv[Any]
        if self.mode == "single":
            env = CodeCompletionEnv(
                tasks=self.suite,
                sandbox=self.sandbox,
                curriculum="off",
                tests="all",
                reward="binary",
                trace_lines=False,
            )
        else:
            env = MultiTurnRepairEnv(
                tasks=self.suite, sandbox=self.sandbox, max_turns=self.max_turns
            )
        self._envs.append(env)
        return env

    def _observe(self, episode: Episode, obs: Any) -> Observation:
        if self.mode == "single":
            assert isinstance(episode.env, CodeCompletionEnv)
            if self.input == "text":
                return episode.env.observation_text(obs)
            message = self._formatter.first_user_message(episode.task)
            return [{"role": "user", "content": message}]
        if self.input == "text":
            return str(obs["text"])
        return [dict(m) for m in obs["messages"]]

    def begin(self, episode: Episode) -> None:
        """Give the episode an env and its first observation."""
        episode.env = self._env()
        obs, _ = episode.env.reset(options={"task_id": episode.task.task_id})
        episode.observation = self._observe(episode, obs)

    def close(self) -> None:
        """Close the envs (the sandbox is the caller's) and abandon executions in flight."""
        self.executions.close()
        for env in self._envs:
            env.close()
        self._formatter.close()

    # ---- acting ---------------------------------------------------------------------------

    def _action(self, response: str) -> str:
        """What the env is given: single mode runs the code of a chat response."""
        if self.mode == "single" and self.input == "messages":
            code = extract_code(response)
            return code if code is not None else response
        return response

    def act(
        self, episode: Episode, response: str, generate_s: float, recorded: dict[str, Any] | None
    ) -> None:
        """Play ``response`` as the episode's next turn (its execution starts now)."""
        assert episode.env is not None
        transition = episode.env.transition(self._action(response))
        item = _InFlight(episode, transition, response, generate_s, recorded)
        result = self.executions.start(item)
        if result is not None:
            self._end_turn(item, result)

    def play_queued(self, batch: Iterable[Episode]) -> list[Episode]:
        """Play the queued response of each episode that has one; the others, to ask for."""
        ask = []
        for episode in batch:
            if episode.queued:
                response, recorded = episode.queued.popleft()
                generate_s = float((recorded or {}).get("generate_s", 0.0))
                self.act(episode, response, generate_s, recorded)
            else:
                ask.append(episode)
        return ask

    def ask(self, batch: Sequence[Episode]) -> None:
        """Get one response for each episode from the policy (one round), playing each as
        it arrives."""
        if not batch:
            return
        if self.policy is None:
            raise RuntimeError("no policy to ask: every episode should have been queued")
        groups: dict[Any, list[Episode]] = {}
        for episode in batch:  # the first turns of one task share one request (n = count)
            key = episode.task.task_id if episode.turn == 0 else id(episode)
            groups.setdefault(key, []).append(episode)
        members = list(groups.values())
        requests = [Request(m[0].observation, len(m)) for m in members]
        params = GenerationParams(
            temperature=self.params.temperature,
            top_p=self.params.top_p,
            max_tokens=self.params.max_tokens,
            seed=(self.params.seed * 1_000_003 + self._round) % (2**31),
        )
        self._round += 1
        for reply in self.policy.generate(requests, params):
            for episode, response in zip(members[reply.index], reply.responses, strict=True):
                self.act(episode, response, reply.seconds, None)
            self.collect(block=False)

    # ---- results ----------------------------------------------------------------------------

    def collect(self, *, block: bool) -> None:
        """Record the transitions that ended."""
        for item, result in self.executions.collect(block=block):
            self._end_turn(item, result)

    def _end_turn(self, item: _InFlight, step: StepResult) -> None:
        episode = item.episode
        obs, _reward, terminated, _truncated, info = step
        episode.turn += 1
        record = self._record(episode, item, info, bool(terminated))
        recorded = item.recorded
        same = recorded is not None and all(
            recorded.get(k) == record[k] for k in ("done", "verdict", "passed")
        )
        if not same:
            self.results.append(record)
            if recorded is not None:  # the replay diverged: play on from here, live
                episode.queued.clear()
        if terminated:
            episode.finished = True
            assert episode.env is not None
            self._free.append(episode.env)
            episode.env = None
            self.finished += 1
            self.solved += bool(record["passed"])
            if self.progress is not None:
                self.progress.update(1)
                self.progress.set_postfix(solved=f"{self.solved}/{self.finished}", refresh=False)
        else:
            episode.observation = self._observe(episode, obs)

    def _record(
        self, episode: Episode, item: _InFlight, info: dict[str, Any], done: bool
    ) -> dict[str, Any]:
        task = episode.task
        record: dict[str, Any] = {
            "task_id": task.task_id,
            "sample": episode.sample,
            "turn": episode.turn,
        }
        if self.mode == "single":
            record.update(
                response=item.response,
                code=info["program"],
                verdict=info["verdict"],
                test_verdicts=info["test_verdicts"],
                pass_ratio=info["pass_ratio"],
                done=True,
                passed=info["verdict"] == "passed",
            )
        else:
            record.update(
                response=item.response,
                code=info["code"],
                verdict=info["verdict"] or "no_code",
                test_verdicts=info["test_verdicts"],
                pass_ratio=info["pass_ratio"],
                feedback=info["feedback"],
                done=done,
                passed=bool(info["passed"]) if done else None,
            )
            if done:
                record["private_verdict"] = info["private_verdict"]
        record.update(
            source=task.source,
            difficulty=task.difficulty,
            generate_s=round(item.generate_s, 6),
            execute_s=round(item.execute_s, 6),
        )
        return record

    # ---- the two schedules --------------------------------------------------------------

    def run_single(self, todo: Sequence[Episode]) -> None:
        """Rounds of ``round_size`` samples; executions overlap the next round's generation,
        with at most ``2 * round_size`` of them waiting."""
        for start in range(0, len(todo), self.round_size):
            batch = todo[start : start + self.round_size]
            for episode in batch:
                self.begin(episode)
            self.ask(self.play_queued(batch))
            while len(self.executions) > self.round_size:
                self.collect(block=True)
        while len(self.executions):
            self.collect(block=True)

    def run_multi(self, todo: Sequence[Episode]) -> None:
        """Lockstep rounds over at most ``round_size`` rollouts at a time."""
        waiting = deque(todo)
        active: list[Episode] = []
        while waiting or active:
            while waiting and len(active) < self.round_size:
                episode = waiting.popleft()
                self.begin(episode)
                active.append(episode)
            self.ask(self.play_queued(active))
            while len(self.executions):
                self.collect(block=True)
            active = [e for e in active if not e.finished]


def _todo(
    suite: Sequence[Task], n: int, recorded: dict[EpisodeKey, list[dict[str, Any]]]
) -> tuple[list[Episode], int]:
    """Episodes still to play, with the turns to replay; and how many are done already."""
    todo, done = [], 0
    for task in suite:
        for sample in range(n):
            turns = recorded.get((task.task_id, sample), [])
            if is_done(turns):
                done += 1
                continue
            queued: deque[tuple[str, dict[str, Any] | None]] = deque(
                (str(t.get("response", "")), t) for t in turns
            )
            todo.append(Episode(task, sample, queued))
    return todo, done


def _check_args(
    mode: str, n: int, k: Sequence[int], max_turns: int, temperature: float, top_p: float,
    max_tokens: int, limit: int | None,
) -> None:  # fmt: skip
    if mode not in ("single", "multi"):
        raise UsageError(f'mode must be "single" or "multi", got {mode!r}')
    if not isinstance(n, int) or n < 1:
        raise UsageError(f"n (samples per task) must be a positive int, got {n!r}")
    if not k or any(not isinstance(x, int) or x < 1 for x in k):
        raise UsageError(f"k must be positive ints (e.g. 1,10), got {list(k)!r}")
    if not isinstance(max_turns, int) or max_turns < 1:
        raise UsageError(f"max_turns must be a positive int, got {max_turns!r}")
    if temperature < 0:
        raise UsageError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise UsageError(f"top_p must be in (0, 1], got {top_p}")
    if max_tokens < 1:
        raise UsageError(f"max_tokens must be positive, got {max_tokens}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be a positive number of tasks, got {limit}")


def load_suite(tasks: TasksArg, limit: int | None = None) -> tuple[Task, ...]:
    """The tasks to evaluate on: a ``load_tasks`` source, its kwargs, or tasks; the first
    ``limit`` of them.

    Raises:
        UsageError: the source cannot be loaded (the message says why).
    """
    try:
        suite = resolve_tasks(tasks)
    except (ValueError, FileNotFoundError, TypeError) as e:
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"tasks {tasks!r}: {e}") from e
    return suite[:limit] if limit is not None else suite


def _progress(total: int, initial: int, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    import sys

    from tqdm.auto import tqdm

    # a log file, not a terminal: a line every few seconds rather than ten a second
    interval = 0.1 if sys.stderr.isatty() else 5.0
    return tqdm(total=total, initial=initial, unit=unit, desc="eval", dynamic_ncols=True,
                mininterval=interval)  # fmt: skip


def play(
    *,
    policy: Policy | None,
    input_kind: InputKind,
    suite: tuple[Task, ...],
    todo_for: Any,
    mode: Mode,
    n: int | None,
    ks: Sequence[int],
    max_turns: int,
    params: GenerationParams,
    config: dict[str, Any],
    out: str | os.PathLike[str] | None,
    resume: bool,
    sandbox: Any,
    round_size: int,
    progress: bool,
    resamples: int,
) -> EvalReport:
    """Play the episodes ``todo_for(recorded)`` returns, record them, build the report.

    The engine under :func:`evaluate` and :func:`codegym.eval.samples.score_samples`.
    """
    from codegym.sandbox import make_sandbox

    owned = isinstance(sandbox, str)
    results = ResultsLog(out, config, resume=resume)
    try:
        todo, done = todo_for(episodes(results.records))
        if todo:
            box = make_sandbox(sandbox) if owned else sandbox
            unit = "rollout" if mode == "multi" else "sample"
            bar = _progress(len(todo) + done, done, unit, progress)
            state = _Play(
                policy=policy, input_kind=input_kind, suite=suite, mode=mode,
                max_turns=max_turns, params=params, sandbox=box, results=results,
                round_size=round_size, progress=bar,
            )  # fmt: skip
            started = time.perf_counter()
            try:
                if mode == "single":
                    state.run_single(todo)
                else:
                    state.run_multi(todo)
            finally:
                state.close()
                if bar is not None:
                    bar.close()
                if owned:
                    box.close()
            log.info("played %d %ss in %.1f s", len(todo), unit, time.perf_counter() - started)
        records = results.records
    finally:
        results.close()
    return build_report(
        records, suite, mode=mode, ks=ks, max_turns=max_turns, n=n, seed=params.seed,
        resamples=resamples, config=config,
    )  # fmt: skip


def evaluate(
    policy: Policy | str,
    tasks: TasksArg,
    *,
    mode: Mode = "single",
    n: int = 1,
    k: Sequence[int] = (1, 10),
    max_turns: int = 3,
    temperature: float = 0.2,
    top_p: float = 0.95,
    max_tokens: int = 512,
    concurrency: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int = 0,
    sandbox: Any = "auto",
    model: str | None = None,
    limit: int | None = None,
    progress: bool = True,
    resamples: int = DEFAULT_RESAMPLES,
) -> EvalReport:
    """Benchmark a policy on a task suite (see the module docstring).

    Args:
        policy: A :class:`~codegym.eval.policies.Policy` or a spec (``python:mod:fn``,
            ``hf:PATH``, ``openai:URL``, ``checkpoint:DIR``, ``tiny``).
        tasks: A ``load_tasks`` source (``"humaneval+"``), its kwargs, or tasks.
        mode: ``"single"`` (pass@k) or ``"multi"`` (RLEF's multi-turn repair, n@k).
        n: Samples (single) or rollouts (multi) per task.
        k: The ``k`` of pass@k, or the ``n`` of n@k; values above ``n`` are left out.
        max_turns: Turns per rollout in multi mode.
        temperature, top_p, max_tokens: Sampling settings.
        concurrency: Calls in flight (python, default 1), sequences per batch (hf, default
            32), requests in flight (openai, default 8).
        out: The results file (JSONL), streamed as samples finish; ``None`` keeps them in
            memory only.
        resume: Continue the run in ``out``, playing only what it lacks.
        seed: Seed of sampling (local models) and of the bootstrap.
        sandbox: ``"auto"``, ``"docker"``, ``"process"`` or a Sandbox (not closed here).
        model: The model name of an ``openai:`` policy.
        limit: Only the first ``limit`` tasks.
        progress: Show a progress bar.
        resamples: Bootstrap resamples.

    Returns:
        The :class:`~codegym.eval.report.EvalReport`.

    Raises:
        UsageError: bad arguments, an unknown policy or task source, an ``out`` that exists
            without ``resume`` or was made with other settings.
        PolicyError: the policy failed (finished samples are in ``out``).
    """
    k = tuple(k)
    _check_args(mode, n, k, max_turns, temperature, top_p, max_tokens, limit)
    suite = load_suite(tasks, limit)
    owned = isinstance(policy, str)
    the_policy = (
        load_policy(policy, model=model, concurrency=concurrency)
        if isinstance(policy, str)
        else policy
    )
    turns = max_turns if mode == "multi" else 1
    params = GenerationParams(temperature, top_p, max_tokens, seed)
    config = {
        "mode": mode,
        "policy": the_policy.name,
        "model": the_policy.model,
        "tasks": tasks if isinstance(tasks, str) else f"{len(suite)} tasks",
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "max_tokens": max_tokens,
        "max_turns": turns,
    }
    batch = int(getattr(the_policy, "batch_size", 0) or getattr(the_policy, "concurrency", 1))
    try:
        return play(
            policy=the_policy, input_kind=the_policy.input, suite=suite,
            todo_for=lambda recorded: _todo(suite, n, recorded), mode=mode, n=n, ks=k,
            max_turns=turns, params=params, config=config, out=out, resume=resume,
            sandbox=sandbox, round_size=max(16, 4 * int(batch)), progress=progress,
            resamples=resamples,
        )  # fmt: skip
    finally:
        if owned:
            the_policy.close()


__all__ = ["evaluate", "load_suite", "play"]
