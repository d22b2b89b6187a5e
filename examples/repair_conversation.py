"""Print MultiTurnRepair-v0 conversations played by a model: what an RLEF agent sees and says.

Plays greedy episodes of ``codegym/MultiTurnRepair-v0`` on held-out toy tasks (the demo's
suite) with a model and prints the first conversation of the kind asked for::

    python examples/repair_conversation.py --model tiny                  # any episode
    python examples/repair_conversation.py --model runs/rlef --want repaired
    python examples/repair_conversation.py --model ./hf-folder --want solved --tasks 100
    python examples/repair_conversation.py --model runs/rlef --min-turns 2   # with feedback

``--model`` takes ``tiny``, a ``codegym train`` run directory (its newest checkpoint) or a
folder written by ``save_pretrained``. ``--want``: ``any`` (the first episode), ``solved``
(passed at turn 1), ``repaired`` (failed turn 1, passed later), ``failed`` or ``cut`` (the
conversation outgrew the model's context before the last turn);
``--min-turns`` also asks for at least that many responses. Prints how many
episodes of each kind it saw; exits 1 if none of the wanted kind turned up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

import codegym  # noqa: F401  (registers the envs)
from codegym.sandbox import make_sandbox
from codegym.tasks import load_tasks

KINDS = ("any", "solved", "repaired", "failed", "cut")


def play(
    model: Any, tokenizer: Any, env: gym.Env, task_id: str
) -> tuple[str, list[dict[str, str]]]:
    """One greedy episode of ``task_id``; returns its kind and the whole conversation."""
    from agents.models import SamplingParams, generate

    obs, _ = env.reset(options={"task_id": task_id})
    params = SamplingParams(temperature=0.0, max_new_tokens=160)
    context = int(getattr(model.config, "n_positions", 0) or model.config.max_position_embeddings)
    turns: list[dict[str, Any]] = []
    while True:
        prompt = tokenizer.apply_chat_template(
            list(obs["messages"]), add_generation_prompt=True, tokenize=False
        )
        if len(tokenizer.encode(prompt)) + params.max_new_tokens > context:
            # the conversation outgrew the model's context (RLEF's trainer cuts it too)
            return "cut", list(obs["messages"])
        response = generate(model, tokenizer, [prompt], params)[0].text
        obs, _reward, terminated, truncated, info = env.step(response)
        turns.append(info)
        if terminated or truncated:
            break
    messages = list(obs["messages"])
    if turns[-1]["passed"]:
        kind = "solved" if len(turns) == 1 else "repaired"
    else:
        kind = "failed"
    return kind, messages


def main(argv: list[str] | None = None) -> int:
    """Play episodes until one of the wanted kind turns up; print it."""
    from agents.models import load_causal_lm
    from codegym.eval.policies import resolve_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, a run directory or a model folder")
    parser.add_argument("--want", choices=KINDS, default="any")
    parser.add_argument("--min-turns", type=int, default=1, help="responses the episode needs")
    parser.add_argument("--tasks", type=int, default=200, help="held-out toy tasks to try")
    parser.add_argument("--sandbox", default="docker")
    args = parser.parse_args(argv)

    path = str(resolve_checkpoint(args.model)) if Path(args.model).is_dir() else args.model
    model, tokenizer = load_causal_lm(path, device="cpu", trainable=False)
    tasks = load_tasks("toy", split="test", n=args.tasks, seed=1)
    seen = dict.fromkeys(KINDS[1:], 0)
    found: tuple[str, str, list[dict[str, str]]] | None = None
    with make_sandbox(args.sandbox) as sandbox:
        env = gym.make("codegym/MultiTurnRepair-v0", tasks=tasks, sandbox=sandbox)
        try:
            for task in tasks:
                kind, messages = play(model, tokenizer, env, task.task_id)
                seen[kind] += 1
                turns = sum(m["role"] == "assistant" for m in messages)
                if args.want in ("any", kind) and turns >= args.min_turns:
                    found = (task.task_id, kind, messages)
                    break
        finally:
            env.close()
    counts = ", ".join(f"{k} {v}" for k, v in seen.items())
    if found is None:
        print(f"no {args.want} episode of {args.min_turns}+ turns in {sum(seen.values())} "
              f"tasks ({counts})")  # fmt: skip
        return 1
    task_id, kind, messages = found
    print(f"# {task_id}: {kind} (episodes played: {counts})\n")
    for message in messages:
        print(f"[{message['role']}]\n{message['content']}\n")
    return 0


if __name__ == "__main__":
    from codegym.errors import UsageError

    try:
        sys.exit(main())
    except UsageError as error:  # a bad --model: one line, as the codegym commands do
        sys.exit(f"repair_conversation.py: error: {error}")
