"""What both code environments share: the task suite, the sandbox, limits and the step driver.

An env's transition is written once, as a generator (:meth:`CodeEnv.transition`) that yields
the :class:`~codegym.sandbox.Job` it needs run and receives its
:class:`~codegym.sandbox.ExecutionResult`. :meth:`CodeEnv.step` drives it with one sandbox
call at a time; :class:`codegym.envs.vector.CodeVectorEnv` drives the generators of all its
sub-envs in lockstep, one ``run_batch`` per round, so N envs run N executions in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import replace
from typing import Any, Generic, TypeVar, cast

import gymnasium as gym

from codegym.envs.rewards import check_scorable
from codegym.sandbox.types import ExecutionResult, Job, Limits
from codegym.tasks.task import Task

ObsType = TypeVar("ObsType")

#: ``(observation, reward, terminated, truncated, info)``
StepResult = tuple[Any, float, bool, bool, dict[str, Any]]
#: A transition: yields jobs, receives their results, returns the step's result.
Transition = Generator[Job, ExecutionResult, StepResult]

#: What ``tasks=`` accepts: a ``load_tasks`` source, its keyword arguments, or tasks.
TasksArg = str | os.PathLike | Mapping[str, Any] | Iterable[Task | Mapping[str, Any]]


def resolve_tasks(tasks: TasksArg) -> tuple[Task, ...]:
    """The task suite ``tasks=`` names.

    Args:
        tasks: A source for :func:`codegym.tasks.load_tasks` (``"toy"``, ``"humaneval"``, a
            JSONL path, ...), a dict of its keyword arguments (``{"source": "mbpp+", "n": 50}``),
            or an iterable of :class:`Task` (or task dicts).

    Raises:
        ValueError: the suite is empty, has duplicate ids, or an item is not a task.
    """
    if isinstance(tasks, (str, os.PathLike)):
        from codegym.tasks import load_tasks  # loaders are heavy: only when asked for

        suite = tuple(load_tasks(os.fspath(tasks)))
    elif isinstance(tasks, Mapping):
        from codegym.tasks import load_tasks

        suite = tuple(load_tasks(**tasks))
    elif isinstance(tasks, Task):
        suite = (tasks,)
    else:
        items = []
        for i, t in enumerate(tasks):
            if isinstance(t, Mapping):
                t = Task.from_dict(t, where=f"tasks[{i}]")
            if not isinstance(t, Task):
                raise ValueError(
                    f"tasks[{i}] must be a Task or a task dict, got {type(t).__name__}"
                )
            items.append(t)
        suite = tuple(items)
    if not suite:
        raise ValueError(f"the task suite {tasks!r} is empty; pass a source or tasks that exist")
    ids = [t.task_id for t in suite]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"the task suite has duplicate task ids {dup}; ids must be unique")
    return suite


def task_limits(task: Task, base: Limits) -> Limits:
    """``base`` with the task's own time and memory limits applied.

    This is the one place that says what :attr:`Task.time_limit_s
    <codegym.tasks.Task.time_limit_s>` means to the environments: it is the per-test **CPU**
    limit (``cpu_time_s``), and the wall-clock limit becomes ``max(2 * t, t + 1)`` seconds
    (twice it, and at least one second more), as judges allow for a loaded machine.
    ``memory_limit_mb`` becomes ``memory_mb``. A field left ``None`` keeps ``base``'s value.
    """
    changes: dict[str, Any] = {}
    if task.time_limit_s:
        t = float(task.time_limit_s)
        changes.update(cpu_time_s=t, wall_time_s=max(2 * t, t + 1))
    if task.memory_limit_mb:
        changes.update(memory_mb=int(task.memory_limit_mb))
    return replace(base, **changes) if changes else base


def drive(transition: Transition, run: Callable[[Job], ExecutionResult]) -> StepResult:
    """Run a transition to its end, executing each job it yields with ``run``.

    Every result is checked with :func:`~codegym.envs.rewards.check_scorable` before the
    transition receives it, so no transition (and no reward function) ever sees an
    ``infra_error``.

    Raises:
        UnscorableResult: a job's result is an ``infra_error``; the transition is abandoned
            before it changed the env (transitions commit their state only after their last
            job), so the step can be retried.
    """
    try:
        job = next(transition)
        while True:
            result = run(job)
            check_scorable(result)
            job = transition.send(result)
    except StopIteration as stop:
        return stop.value
    finally:
        transition.close()


class CodeEnv(gym.Env[ObsType, str], Generic[ObsType]):
    """Base of the code environments: a task suite, a (lazily created) sandbox, actions as text.

    Subclasses implement :meth:`transition` and ``reset``.
    """

    # Not a ClassVar: gym.Env declares ``metadata`` an instance attribute with a class default.
    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012

    def __init__(
        self,
        *,
        tasks: TasksArg,
        sandbox: Any,
        limits: Limits | None,
        max_action_chars: int,
        render_mode: str | None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        if max_action_chars < 1:
            raise ValueError(f"max_action_chars must be positive, got {max_action_chars}")
        self.render_mode = render_mode
        self.tasks: tuple[Task, ...] = resolve_tasks(tasks)
        self._task_index = {t.task_id: i for i, t in enumerate(self.tasks)}
        self.limits = limits
        self.max_action_chars = int(max_action_chars)
        if isinstance(sandbox, (str, Mapping)):
            # A name or a spec ({"backend": "docker", "image": ...}): made on first use.
            self._sandbox: Any = None
            self._sandbox_spec: str | Mapping[str, Any] | None = sandbox
        elif hasattr(sandbox, "run_batch"):
            self._sandbox, self._sandbox_spec = sandbox, None
        else:
            raise TypeError(
                "sandbox must be a backend name ('docker', 'process', 'auto'), a spec dict "
                "for make_sandbox ({'backend': 'docker', 'image': ...}) or a Sandbox, "
                f"got {type(sandbox).__name__}"
            )
        self._owns_sandbox = False
        self._closed = False
        self.task: Task | None = None
        self._active = False  # an episode is running: reset() happened, it has not ended
        #: The execution result that decided the last step's reward (None if nothing ran).
        self.last_result: ExecutionResult | None = None

    # ---- sandbox ----------------------------------------------------------------------

    @property
    def sandbox(self) -> Any:
        """The sandbox; one named by backend or spec is created on first use and owned by
        this env."""
        if self._sandbox is None:
            if self._closed:
                raise RuntimeError("this env is closed; make a new one")
            from codegym.sandbox import make_sandbox  # the docker client only when needed

            # No sandbox object means one was named: the spec is set (see __init__).
            self._sandbox = make_sandbox(cast("str | Mapping[str, Any]", self._sandbox_spec))
            self._owns_sandbox = True
        return self._sandbox

    def job_limits(self, task: Task) -> Limits | None:
        """Limits for ``task``'s jobs: the env's (or, if ``None``, the sandbox's) with the
        task's own time and memory limits applied (see :func:`task_limits`); ``None`` leaves
        the sandbox's defaults."""
        if not (task.time_limit_s or task.memory_limit_mb):
            return self.limits
        base = self.limits or getattr(self.sandbox, "limits", None) or Limits()
        return task_limits(task, base)

    def run_job(self, job: Job) -> ExecutionResult:
        """Execute one job in the sandbox."""
        return self.sandbox.run_batch([job])[0]

    def close(self) -> None:
        """Close the sandbox if this env created it. Safe to call more than once."""
        if self._owns_sandbox and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        self._owns_sandbox = False
        self._closed = True

    # ---- episodes -----------------------------------------------------------------------

    def _pick_task(self, options: Mapping[str, Any] | None) -> Task:
        """The task ``options["task_id"]`` names, else one drawn uniformly with ``np_random``."""
        task_id = (options or {}).get("task_id")
        if task_id is None:
            return self.tasks[int(self.np_random.integers(len(self.tasks)))]
        try:
            return self.tasks[self._task_index[task_id]]
        except KeyError:
            sample = ", ".join(repr(t.task_id) for t in self.tasks[:3])
            raise ValueError(
                f"options['task_id'] = {task_id!r} is not in the suite of {len(self.tasks)} "
                f"tasks (e.g. {sample})"
            ) from None

    def check_action(self, action: Any) -> str | None:
        """Why ``action`` cannot be run (``None`` if it can).

        Raises:
            TypeError: ``action`` is not a ``str``.
        """
        if not isinstance(action, str):
            hint = " (decode bytes to str first)" if isinstance(action, (bytes, bytearray)) else ""
            raise TypeError(f"the action must be a str of code, got {type(action).__name__}{hint}")
        if len(action) > self.max_action_chars:
            return (
                f"the action is {len(action)} characters long, over the limit of "
                f"{self.max_action_chars} (max_action_chars); it was not run"
            )
        try:
            action.encode("utf-8")
        except UnicodeEncodeError as e:
            return (
                f"the action is not valid Unicode text ({e.reason} at character {e.start}: "
                "lone surrogates cannot be encoded); it was not run"
            )
        return None

    def transition(self, action: Any) -> Transition:
        """The step for ``action`` as a generator of sandbox jobs (see the module docstring)."""
        raise NotImplementedError

    def step(self, action: str) -> StepResult:
        """Run ``action`` in the sandbox and score it (see the class docstring)."""
        return drive(self.transition(action), self.run_job)

    def _require_episode(self) -> Task:
        if not self._active or self.task is None:
            raise RuntimeError("call reset() before step(), and again after the episode ended")
        return self.task
