"""An example policy: the canonical solution for some HumanEval+ tasks, sometimes for others."""

import random
import zlib

from codegym.tasks import load_tasks

_BY_PROMPT = {t.prompt.strip(): t for t in load_tasks("humaneval+")}
_rng = random.Random(0)


def policy(messages):
    statement = messages[0]["content"]
    task = next(t for p, t in _BY_PROMPT.items() if p in statement)
    bucket = zlib.crc32(task.task_id.encode()) % 3
    if bucket == 0 or (bucket == 1 and _rng.random() < 0.5):
        return "```python\n" + task.canonical_solutions[0] + "\n```"
    return "```python\ndef " + task.entry_point + "(*args):\n    return None\n```"
