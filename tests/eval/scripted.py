"""Scripted policies and tasks for the eval tests.

The tasks are six toy tasks (the toy generator is deterministic). The policies answer from the
problem statement alone, so every answer is a pure function of the observation (a resumed run
gets the answers the first run got). By task index ``i``:

- ``i % 3 == 0``: the canonical solution at once;
- ``i % 3 == 1``: wrong code first, the canonical solution once feedback came (multi mode);
- ``i % 3 == 2``: always wrong.

So single mode passes 2 of 6 tasks, and multi mode has ``1@3 = 4/6`` and ``1@1 = 2/6``.
``CODEGYM_TEST_POLICY_DELAY`` (seconds) slows each call; ``CODEGYM_TEST_POLICY_CALLS`` names a
file that gets one line per call.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from codegym.tasks import Task, load_tasks

TASKS: list[Task] = load_tasks("toy", split="test", n=6, seed=0)
WRONG = "```python\nprint('wrong')\n```"


def task_of(text: str) -> tuple[int, Task]:
    """The task whose statement ``text`` contains."""
    for i, task in enumerate(TASKS):
        if task.prompt.strip()[:80] in text:
            return i, task
    raise KeyError(f"no scripted task in {text[:80]!r}")


def respond(messages: list[dict[str, str]]) -> str:
    """The scripted answer to a conversation (see the module docstring)."""
    first_user = next(m["content"] for m in messages if m["role"] == "user")
    i, task = task_of(first_user)
    tried = any(m["role"] == "assistant" for m in messages)
    if i % 3 == 0 or (i % 3 == 1 and tried):
        return "Here it is:\n```python\n" + task.canonical_solutions[0] + "\n```\n"
    return WRONG


def chat_policy(messages: list[dict[str, str]]) -> str:
    """``respond``, with the delay and call log of the module docstring."""
    delay = float(os.environ.get("CODEGYM_TEST_POLICY_DELAY", "0"))
    if delay:
        time.sleep(delay)
    calls = os.environ.get("CODEGYM_TEST_POLICY_CALLS")
    if calls:
        with Path(calls).open("a") as f:
            f.write(f"{task_of(messages[0]['content'])[1].task_id}\n")
    return respond(messages)


def text_policy(text: str) -> str:
    """A text policy: the bare program (single mode runs it as is)."""
    i, task = task_of(text)
    return task.canonical_solutions[0] if i % 3 == 0 else "print('wrong')\n"


text_policy.codegym_input = "text"  # type: ignore[attr-defined]
