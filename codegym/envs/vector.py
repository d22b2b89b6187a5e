"""Batched vector envs: all sub-envs' executions go to the sandbox in one ``run_batch``.

``gym.make_vec(id, n)`` (``vectorization_mode="vector_entry_point"``, the default for codegym
ids) builds a :class:`CodeVectorEnv`: a :class:`~gymnasium.vector.SyncVectorEnv` whose
``step`` starts the transitions of all sub-envs, collects the jobs they yield, runs them with
one ``sandbox.run_batch`` call, and feeds the results back, so that N envs keep the sandbox
pool busy with N executions at once instead of one at a time. Everything else (reset,
autoreset modes, batching of spaces, ``info`` layout) is ``SyncVectorEnv``'s.

The sub-envs share one sandbox (created here from a backend name and closed with the vector
env, or the ``Sandbox`` object passed in) and, for CodeCompletion, one curriculum scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate, iterate

from codegym.envs.base import CodeEnv, StepResult, Transition
from codegym.envs.code_completion import CodeCompletionEnv
from codegym.envs.curriculum import make_scheduler
from codegym.envs.multi_turn_repair import MultiTurnRepairEnv
from codegym.envs.rewards import check_scorable
from codegym.sandbox.types import Verdict


class CodeVectorEnv(SyncVectorEnv):
    """``num_envs`` copies of a code env stepped together with one sandbox batch per round.

    Beyond ``SyncVectorEnv`` (for agents that drive episodes of different lengths in one
    batch, such as an LLM trainer):

    - ``reset(options={"per_env": [dict, ...]})`` gives each sub-env its own reset options
      (e.g. its ``task_id``); other option keys are ignored then.
    - In ``step(actions)``, an action ``None`` makes that sub-env sit the round out: it is not
      stepped, its observation is unchanged, its reward 0 and its ``terminated``/``truncated``
      False, and ``info`` has nothing for it.
    - With ``infra_errors="skip"``, a sub-env whose execution ended in ``infra_error`` (the
      sandbox failed, not the code; see :func:`~codegym.envs.rewards.check_scorable`) is left
      exactly as it was before the step (it can be stepped again), gets reward 0, and its
      ``info`` holds only ``infra_error=True``; the other sub-envs step normally. The default
      ``"raise"`` raises :class:`~codegym.envs.rewards.UnscorableResult` for the whole round.

    Args:
        env_cls: :class:`CodeCompletionEnv` or :class:`MultiTurnRepairEnv` (any
            :class:`~codegym.envs.base.CodeEnv`).
        num_envs: Number of sub-envs.
        autoreset_mode: As for ``SyncVectorEnv`` (default ``NEXT_STEP``). ``SAME_STEP`` suits
            the one-step CodeCompletion-v0: every ``step`` call then runs N programs.
        infra_errors: ``"raise"`` (default) or ``"skip"`` (see above).
        **kwargs: Passed to every sub-env (``tasks``, ``sandbox``, ...).
    """

    def __init__(
        self,
        env_cls: type[CodeEnv],
        num_envs: int = 1,
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        infra_errors: str = "raise",
        **kwargs: Any,
    ) -> None:
        if infra_errors not in ("raise", "skip"):
            raise ValueError(f"infra_errors must be 'raise' or 'skip', got {infra_errors!r}")
        self.infra_errors = infra_errors
        sandbox = kwargs.pop("sandbox", "auto")
        self._owned_sandbox = None
        if isinstance(sandbox, (str, Mapping)):  # a backend name or a make_sandbox spec
            from codegym.sandbox import make_sandbox

            sandbox = self._owned_sandbox = make_sandbox(sandbox)
        self.sandbox = sandbox
        try:
            super().__init__(
                [lambda: env_cls(sandbox=sandbox, **kwargs) for _ in range(num_envs)],
                copy=False,  # observations are tuples of immutable str: nothing to copy
                autoreset_mode=AutoresetMode(autoreset_mode),
            )
        except BaseException:
            self.close_extras()
            raise

    def _drive(self, transitions: dict[int, Transition]) -> dict[int, StepResult]:
        """Run all transitions to their ends, one ``run_batch`` per round of jobs.

        Every result of a round is checked with
        :func:`~codegym.envs.rewards.check_scorable` before any transition receives one, so
        an ``infra_error`` anywhere in the round raises :class:`UnscorableResult` while the
        sub-envs still waiting on that round are unchanged. (A sub-env whose transition ended
        in an earlier round of the same step has already taken its step.) With
        ``infra_errors="skip"`` only the sub-envs whose own job failed are dropped: their
        transitions are closed unfinished (which leaves the sub-env unchanged) and their
        indices land in ``self._infra_failed``.
        """
        done: dict[int, StepResult] = {}
        self._infra_failed: set[int] = set()
        pending = {}
        try:
            for i, transition in transitions.items():
                try:
                    pending[i] = next(transition)
                except StopIteration as stop:
                    done[i] = stop.value
            while pending:
                order = list(pending)
                results = self.sandbox.run_batch([pending[i] for i in order])
                if self.infra_errors == "raise":
                    for result in results:
                        check_scorable(result)
                pending = {}
                for i, result in zip(order, results, strict=True):
                    if result.verdict == Verdict.INFRA_ERROR:
                        self._infra_failed.add(i)
                        continue
                    try:
                        pending[i] = transitions[i].send(result)
                    except StopIteration as stop:
                        done[i] = stop.value
        finally:
            for transition in transitions.values():
                transition.close()
        return done

    def step(self, actions: Sequence[str]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step every sub-env; their programs run in the sandbox as one batch."""
        actions = (
            list(actions)
            if any(a is None for a in actions)
            else list(iterate(self.action_space, actions))
        )
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(actions)}")
        resets: dict[int, tuple[Any, dict[str, Any]]] = {}
        transitions: dict[int, Transition] = {}
        sitting_out = {i for i, a in enumerate(actions) if a is None}
        for i, env in enumerate(self.envs):
            if i in sitting_out:
                continue
            if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[i]:
                resets[i] = env.reset()
            else:
                code_env = cast("CodeEnv[Any]", env.unwrapped)  # every sub-env is an env_cls
                transitions[i] = code_env.transition(actions[i])
        stepped = self._drive(transitions)

        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            if i in sitting_out or i in self._infra_failed:
                self._rewards[i], self._terminations[i], self._truncations[i] = 0.0, False, False
                if i in self._infra_failed:
                    infos = self._add_info(infos, {"infra_error": True}, i)
                continue
            if i in resets:
                self._env_obs[i], info = resets[i]
                self._rewards[i], self._terminations[i], self._truncations[i] = 0.0, False, False
            else:
                obs, reward, terminated, truncated, info = stepped[i]
                self._env_obs[i] = obs
                self._rewards[i], self._terminations[i], self._truncations[i] = (
                    reward,
                    terminated,
                    truncated,
                )
                if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
                    infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                    self._env_obs[i], info = env.reset()
            infos = self._add_info(infos, info, i)

        self._observations = concatenate(
            self.single_observation_space, self._env_obs, self._observations
        )
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            self._observations,
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every sub-env; ``options={"per_env": [...]}`` gives each its own options."""
        per_env = (options or {}).get("per_env")
        if per_env is None:
            return super().reset(seed=seed, options=options)
        if len(per_env) != self.num_envs:
            raise ValueError(f"options['per_env'] needs {self.num_envs} dicts, got {len(per_env)}")
        seeds = (
            seed
            if isinstance(seed, list)
            else [None if seed is None else seed + i for i in range(self.num_envs)]
        )
        infos: dict[str, Any] = {}
        for i, env in enumerate(self.envs):
            self._env_obs[i], info = env.reset(seed=seeds[i], options=per_env[i])
            infos = self._add_info(infos, info, i)
        self._terminations[:] = False
        self._truncations[:] = False
        self._autoreset_envs = np.zeros((self.num_envs,), dtype=np.bool_)
        self._observations = concatenate(
            self.single_observation_space, self._env_obs, self._observations
        )
        return self._observations, infos

    def close_extras(self, **kwargs: Any) -> None:
        """Close the sub-envs, then the sandbox if this vector env created it."""
        if hasattr(self, "envs"):
            super().close_extras(**kwargs)
        if self._owned_sandbox is not None:
            self._owned_sandbox.close()
            self._owned_sandbox = None


def make_code_completion_vec(num_envs: int = 1, **kwargs: Any) -> CodeVectorEnv:
    """Vector entry point of CodeCompletion-v0: sub-envs share a sandbox and a scheduler."""
    curriculum = kwargs.get("curriculum", "per_task")
    if curriculum in ("per_task", "global"):
        kwargs["curriculum"] = make_scheduler(
            curriculum,
            threshold=kwargs.pop("curriculum_threshold", None),
            window=kwargs.pop("curriculum_window", None),
        )
    return CodeVectorEnv(CodeCompletionEnv, num_envs, **kwargs)


def make_multi_turn_repair_vec(num_envs: int = 1, **kwargs: Any) -> CodeVectorEnv:
    """Vector entry point of MultiTurnRepair-v0: sub-envs share a sandbox."""
    return CodeVectorEnv(MultiTurnRepairEnv, num_envs, **kwargs)


__all__ = ["CodeVectorEnv", "make_code_completion_vec", "make_multi_turn_repair_vec"]
