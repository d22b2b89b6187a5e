"""MultiTurnRepair-v0: RLEF's multi-turn code generation with execution feedback."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

from codegym.envs.base import CodeEnv, StepResult, TasksArg, Transition
from codegym.envs.feedback import (
    FEEDBACK_FOOTER,
    NO_CODE_FEEDBACK,
    extract_code,
    format_feedback,
)
from codegym.envs.spaces import ChatMessages, UnicodeText
from codegym.sandbox.types import ExecutionResult, Job, Limits, Verdict, worst_verdict
from codegym.tasks.task import Task

#: Appended to the problem statement in the first user message, by kind of task.
STDIO_INSTRUCTION = (
    "Write a complete Python 3 program that reads the input from standard input and writes "
    "the answer to standard output. Put the program in a single ```python code block."
)
CALL_INSTRUCTION = (
    "Write Python 3 code that defines the function `{entry_point}` solving the problem. "
    "Put the code in a single ```python code block."
)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(text: str) -> str:
    """``text`` with lone surrogates replaced, so that it can be shown and encoded."""
    return text.encode("utf-8", "replace").decode("utf-8")


class MultiTurnRepairEnv(CodeEnv[dict[str, Any]]):
    """Solve a coding problem in up to ``max_turns`` attempts, with test feedback in between.

    ## Description

    RLEF's environment (Gehring et al. 2024, arXiv 2410.02089). The agent is a chat model.
    It receives the problem and answers with a response containing code. The code (the first
    fenced code block of the response, or the whole response if it parses as Python) runs on
    the task's public tests. If they all pass, or this was the last turn, the episode ends and
    the code is scored on the public and the hidden private tests. Otherwise the failures are
    reported as a new user message (:mod:`codegym.envs.feedback`) and the agent tries again.
    A task without public tests is scored on its private tests at the first response with
    code; a task without private tests on its public tests alone (no empty job is run).
    Private tests, their verdicts and the canonical solutions never appear in an observation.

    ## Action Space

    ``UnicodeText(max_action_chars, min_length=0)``: the model's response, any ``str``. A
    non-``str`` raises ``TypeError``. A response without code, longer than
    ``max_action_chars`` or with lone surrogates counts as a response without code.

    ## Observation Space

    ``Dict({"text": UnicodeText(...), "messages": ChatMessages(...)})``, the conversation so far:

    - ``messages``: a tuple of ``{"role", "content"}`` dicts: an optional ``system`` message
      (``system_prompt``); the first ``user`` message, the problem statement followed by
      :data:`STDIO_INSTRUCTION` or :data:`CALL_INSTRUCTION` (and the starter code in a code
      block if the task has one the statement does not contain); then for each turn played
      the ``assistant`` response and, unless the episode ended, the ``user`` feedback. Each
      content is cut to ``max_message_chars`` characters.
    - ``text``: the same conversation as plain text: each message as ``"[role]\\n" +
      content``, joined by blank lines.

    ## Starting State

    The task is ``options["task_id"]`` or drawn uniformly from the suite with
    ``self.np_random``. The conversation holds the system and first user messages.

    ## Rewards

    - 0 for a turn whose code fails a public test, when turns remain;
    - at the end of the episode: +1 if the final code passes every public and private test,
      else -1;
    - a response without code: ``no_code_penalty`` (-0.2) when turns remain; on the last
      turn the episode ends failed with ``-1 + no_code_penalty = -1.2`` (so giving up never
      beats trying).

    ## Episode End

    ``terminated`` is True when the public tests pass (after the private tests are scored) or
    after the ``max_turns``-th response. ``truncated`` is always False; a ``TimeLimit``
    wrapper may cut the episode earlier.

    ## Information

    ``reset`` returns ``task_id`` (str), ``turn`` (0), ``max_turns`` (int). ``step`` returns
    those (``turn``: the turn just played, from 1) and:

    - ``has_code`` (bool), ``code`` (str, ``""`` if none): the code extracted from the response;
    - ``verdict`` (str, ``""`` without code), ``test_verdicts`` (list[str]), ``pass_ratio``
      (float): the public tests' results;
    - ``feedback`` (str): the feedback message appended to the conversation (``""`` if none).

    At the end of the episode also:

    - ``passed`` (bool): every public and private test passed;
    - ``private_verdict`` (str), ``private_test_verdicts`` (list[str]), ``private_pass_ratio``
      (float): the private tests' results (``""``, ``[]``, ``0.0`` without code).

    ``env.unwrapped.last_result`` is the :class:`~codegym.sandbox.ExecutionResult` of the
    final code on the public then private tests at the end of an episode (``None`` otherwise).

    ## Arguments

    - ``tasks``: a ``load_tasks`` source (default ``"toy"``), its kwargs as a dict, or a list
      of :class:`~codegym.tasks.Task`.
    - ``sandbox``: a backend name (``"auto"``, ``"docker"``, ``"process"``), created on first
      use and closed with the env, or a ``Sandbox`` object, shared and never closed by the env
      (give a name with ``vectorization_mode="async"``: each worker process then makes its own).
    - ``max_turns``: attempts per episode (default 3, as in RLEF).
    - ``system_prompt``: text of a system message, or ``None`` (default) for none.
    - ``feedback_max_tests`` (default 5), ``feedback_max_chars`` (default 500): caps on the
      failed tests listed in feedback and on the characters per test.
    - ``no_code_penalty``: reward of a response without code (default -0.2, as in RLEF).
    - ``feedback``: ``True`` (default) lists the failed tests; ``False`` (RLEF's ablation)
      says only "Give it another try." after a failed attempt (the ``feedback`` info key
      then holds that line too).
    - ``limits``: base :class:`~codegym.sandbox.Limits` (default ``None``: the sandbox's own);
      a task's own time and memory limits override them.
    - ``max_prompt_chars`` (default 32768), ``max_action_chars`` (default 32768).
    - ``render_mode``: ``None`` or ``"ansi"``.

    ## Version History

    - v0: Initial version.
    """

    def __init__(
        self,
        tasks: TasksArg = "toy",
        sandbox: Any = "auto",
        *,
        max_turns: int = 3,
        system_prompt: str | None = None,
        feedback_max_tests: int = 5,
        feedback_max_chars: int = 500,
        no_code_penalty: float = -0.2,
        feedback: bool = True,
        limits: Limits | None = None,
        max_prompt_chars: int = 32768,
        max_action_chars: int = 32768,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            tasks=tasks,
            sandbox=sandbox,
            limits=limits,
            max_action_chars=max_action_chars,
            render_mode=render_mode,
        )
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ValueError(f"max_turns must be a positive int, got {max_turns!r}")
        self.max_turns = max_turns
        self.system_prompt = system_prompt
        self.feedback_max_tests = int(feedback_max_tests)
        self.feedback_max_chars = int(feedback_max_chars)
        self.no_code_penalty = float(no_code_penalty)
        self.feedback = bool(feedback)
        # The first user message holds the statement, the instruction and the starter code.
        self.max_message_chars = max(2 * int(max_prompt_chars), self.max_action_chars) + 1024
        max_messages = 2 * max_turns + (system_prompt is not None)
        self.observation_space = spaces.Dict(
            {
                "text": UnicodeText(max_messages * (self.max_message_chars + 16)),
                "messages": ChatMessages(max_messages, self.max_message_chars),
            }
        )
        self.action_space = UnicodeText(self.max_action_chars)
        self.max_prompt_chars = int(max_prompt_chars)
        self.turn = 0
        self.messages: list[dict[str, str]] = []
        self._log: list[str] = []  # what render() shows beyond the conversation

    # ---- conversation -------------------------------------------------------------------

    def first_user_message(self, task: Task) -> str:
        """The problem as the agent first sees it: statement, instruction, starter code."""
        parts = [_clip(task.prompt.rstrip(), self.max_prompt_chars)]
        if task.entry_point is None:
            parts.append(STDIO_INSTRUCTION)
        else:
            parts.append(CALL_INSTRUCTION.format(entry_point=task.entry_point))
        starter = task.starter_code.strip()
        if starter and starter not in task.prompt:
            parts.append(
                "Start from this code:\n```python\n"
                + _clip(starter, self.max_prompt_chars)
                + "\n```"
            )
        return "\n\n".join(parts)

    def _say(self, role: str, content: str) -> None:
        self.messages.append({"role": role, "content": _clip(content, self.max_message_chars)})

    def _observation(self) -> dict[str, Any]:
        messages = tuple(dict(m) for m in self.messages)
        return {"text": self.observation_text({"messages": messages}), "messages": messages}

    @staticmethod
    def observation_text(observation: dict[str, Any]) -> str:
        """The conversation as plain text: ``"[role]\\ncontent"`` blocks joined by blank lines."""
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in observation["messages"])

    # ---- gymnasium API ------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode on a task (see the class docstring)."""
        super().reset(seed=seed)
        task = self._pick_task(options)
        self.task = task
        self.turn = 0
        self.messages = []
        self._log = []
        if self.system_prompt is not None:
            self._say("system", self.system_prompt)
        self._say("user", self.first_user_message(task))
        self._active = True
        self.last_result = None
        return self._observation(), self._turn_info()

    def _turn_info(self) -> dict[str, Any]:
        assert self.task is not None
        return {"task_id": self.task.task_id, "turn": self.turn, "max_turns": self.max_turns}

    def transition(self, action: Any) -> Transition:
        """The step as a generator: yields the public (and private) test jobs.

        The env changes (turn, conversation) only after every job of the step returned: a
        driver that abandons the step (an ``infra_error``, see :func:`~codegym.envs.base.
        drive`) leaves the episode as it was, so the step can be retried.
        """
        task = self._require_episode()
        problem = self.check_action(action)
        code = extract_code(action) if problem is None else None
        turn = self.turn + 1
        last = turn >= self.max_turns
        if code is None:
            self._commit_turn(turn, action)
            return self._no_code(last)

        public, private = task.public_tests, task.private_tests
        limits = self.job_limits(task)
        # On the last turn the private tests run anyway: one execution instead of two. Without
        # public tests (nothing to give feedback on) the private tests are all that can run.
        run_all = last or not public
        tests = public + private if run_all else public
        result: ExecutionResult = yield Job(code, tests, task.entry_point, limits)
        pub = _part(result, 0, len(public))
        if not (pub.passed or last):
            self._commit_turn(turn, action)
            feedback = (
                format_feedback(
                    public,
                    pub,
                    entry_point=task.entry_point,
                    max_tests=self.feedback_max_tests,
                    max_chars=self.feedback_max_chars,
                )
                if self.feedback
                else FEEDBACK_FOOTER
            )
            self._say("user", feedback)
            self._log.append(f"turn {self.turn}: public tests {pub.verdict}")
            info = self._public_info(code, pub, feedback)
            return self._observation(), 0.0, False, False, info
        if run_all or not private:  # a job without tests would run the program on no input
            full = result
        else:
            priv_result: ExecutionResult = yield Job(code, private, task.entry_point, limits)
            full = _concat(result, priv_result)
        self._commit_turn(turn, action)
        return self._finish(code, full, len(public), len(private))

    def _commit_turn(self, turn: int, action: Any) -> None:
        """Record a played turn: its number and the assistant's response."""
        self.turn = turn
        self._say("assistant", _printable(action))
        self.last_result = None

    def _no_code(self, last: bool) -> StepResult:
        self._log.append(f"turn {self.turn}: no code in the response")
        info = self._public_info("", None, "" if last else NO_CODE_FEEDBACK)
        if not last:
            self._say("user", NO_CODE_FEEDBACK)
            return self._observation(), self.no_code_penalty, False, False, info
        self._active = False
        info.update(
            passed=False, private_verdict="", private_test_verdicts=[], private_pass_ratio=0.0
        )
        return self._observation(), -1.0 + self.no_code_penalty, True, False, info

    def _public_info(self, code: str, pub: ExecutionResult | None, feedback: str) -> dict[str, Any]:
        info = self._turn_info()
        info.update(
            has_code=bool(code),
            code=code,
            verdict=str(pub.verdict) if pub is not None else "",
            test_verdicts=[str(t.verdict) for t in pub.tests] if pub is not None else [],
            pass_ratio=float(pub.pass_ratio) if pub is not None else 0.0,
            feedback=feedback,
        )
        return info

    def _finish(
        self, code: str, full: ExecutionResult, num_public: int, num_private: int
    ) -> StepResult:
        self._active = False
        self.last_result = full
        pub = _part(full, 0, num_public)
        priv = _part(full, num_public, num_private)
        passed = pub.passed and priv.passed
        self._log.append(
            f"turn {self.turn}: public tests {pub.verdict}; final: "
            f"{'passed' if passed else 'failed'} (private tests {priv.verdict})"
        )
        info = self._public_info(code, pub, "")
        info.update(
            passed=passed,
            private_verdict=str(priv.verdict),
            private_test_verdicts=[str(t.verdict) for t in priv.tests],
            private_pass_ratio=float(priv.pass_ratio),
        )
        return self._observation(), 1.0 if passed else -1.0, True, False, info

    def render(self) -> str | None:
        """The conversation so far and the verdict of each turn (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        if self.task is None:
            return "(no episode: call reset())\n"
        out = [f"=== {self.task.task_id}  turn {self.turn}/{self.max_turns} ==="]
        for m in self.messages:
            out += [f"--- {m['role']} ---", m["content"].rstrip()]
        if self._log:
            out += ["--- verdicts ---", *self._log]
        return "\n".join(out) + "\n"


def _part(result: ExecutionResult, skip: int, count: int) -> ExecutionResult:
    """The result of tests ``skip .. skip + count`` of ``result``.

    A part without tests passes. When the program did not compile (or ``result`` has no
    per-test results), the overall verdict applies to every part that has tests.
    """
    if count == 0:
        return ExecutionResult(verdict=Verdict.PASSED, backend=result.backend)
    if len(result.tests) < skip + count:
        return ExecutionResult(
            verdict=result.verdict, message=result.message, backend=result.backend
        )
    tests = result.tests[skip : skip + count]
    # A program that does not compile fails every part (its tests are only "skipped").
    whole = result.verdict is Verdict.SYNTAX_ERROR
    return ExecutionResult(
        verdict=result.verdict if whole else worst_verdict(t.verdict for t in tests),
        tests=tests,
        executed_lines=result.executed_lines,
        message=result.message,
        backend=result.backend,
    )


def _concat(first: ExecutionResult, second: ExecutionResult) -> ExecutionResult:
    """One result for two runs of the same program (public, then private tests)."""
    lines = tuple(sorted(set(first.executed_lines) | set(second.executed_lines)))
    return ExecutionResult(
        verdict=worst_verdict([first.verdict, second.verdict]),
        tests=first.tests + second.tests,
        executed_lines=lines,
        message=first.message or second.message,
        backend=first.backend,
    )


__all__ = ["CALL_INSTRUCTION", "STDIO_INSTRUCTION", "MultiTurnRepairEnv"]
