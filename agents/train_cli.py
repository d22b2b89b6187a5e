"""``codegym train stepcoder|rlef``: train a model with PPO on a codegym environment.

Examples::

    codegym train stepcoder --model tiny --tasks toy --steps 50 --out runs/sc
    codegym train stepcoder --model ./my-model --no-cccs --no-fgo --out runs/vanilla
    codegym train rlef --model tiny --steps 50 --out runs/rlef --set max_turns=2
    codegym train rlef --out runs/rlef --resume

Settings come from the dataclass defaults (the papers' values), the model's preset (the tiny
model has its own), ``--config FILE.toml``, ``--set key=value`` and the flags, in that order.
``--help-config`` lists every key.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from codegym.errors import UsageError

_EPILOG = "Every config key: codegym train ALGO --help-config"


def add_subcommands(subparsers: Any) -> None:
    """Register ``codegym train`` with its two algorithms."""
    train = subparsers.add_parser(
        "train",
        help="train a model with PPO (StepCoder or RLEF)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    algos = train.add_subparsers(dest="algorithm", required=True)
    for name, help_text in (
        ("stepcoder", "StepCoder: PPO on CodeCompletion-v0 with CCCS and FGO"),
        ("rlef", "RLEF: multi-turn PPO on MultiTurnRepair-v0 from execution feedback"),
    ):
        p = algos.add_parser(name, help=help_text, description=help_text, epilog=_EPILOG)
        _common_options(p)
        if name == "stepcoder":
            p.add_argument("--no-cccs", action="store_true", help="no curriculum: full generation")
            p.add_argument("--no-fgo", action="store_true", help="no fine-grained optimisation")
        else:
            p.add_argument("--single-turn", action="store_true", help="one attempt per episode")
            p.add_argument("--token-value", action="store_true", help="token-level value + GAE")
            p.add_argument("--no-feedback", action="store_true", help="retry without the failures")
        p.set_defaults(func=run_train)


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help='"tiny", a local model folder or a hub name')
    p.add_argument("--tasks", default=None, help='task source (default "toy", train split)')
    p.add_argument("--steps", type=int, default=None, help="PPO steps")
    p.add_argument("--out", type=Path, default=None, help="run directory (required)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--sandbox", default=None, help="docker (default), process, auto or ray")
    p.add_argument("--advantage", choices=["gae", "grpo"], default=None)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--config", type=Path, default=None, help="TOML file of config keys")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    p.add_argument("--help-config", action="store_true", help="list every config key and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("model", "tasks", "steps", "seed", "sandbox", "advantage"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if getattr(args, "no_cccs", False):
        out["cccs"] = False
    if getattr(args, "no_fgo", False):
        out["fgo"] = False
    if getattr(args, "single_turn", False):
        out["single_turn"] = True
    if getattr(args, "token_value", False):
        out["token_value"] = True
    if getattr(args, "no_feedback", False):
        out["feedback"] = False
    return out


def _field_doc(source: str, name: str) -> str:
    """The ``#:`` comment lines just above the first ``    name:`` field line in ``source``."""
    idx = source.find(f"\n    {name}:")
    if idx < 0:
        return ""
    before = source[:idx].splitlines()
    docs: list[str] = []
    while before and before[-1].strip().startswith("#:"):
        docs.insert(0, before.pop().strip()[2:].strip())
    return " ".join(docs)


def config_help(cls: type) -> str:
    """Every settable key of ``cls`` with its default and the ``#:`` comment documenting it
    (the algorithm's own module first, then the shared :mod:`agents.config`)."""
    import inspect

    sources = [inspect.getsource(sys.modules[cls.__module__])]
    sources.append(inspect.getsource(sys.modules["agents.config"]))
    lines = []
    for f in dataclasses.fields(cls):
        if f.init:
            doc = next((d for d in (_field_doc(src, f.name) for src in sources) if d), "")
            lines.append(f"{f.name} = {f.default!r}\n    {doc}")
    return "\n".join(lines)


def run_train(args: argparse.Namespace) -> int:
    """``codegym train ALGO``: build the config, print it, train."""
    import transformers

    from agents.config import build_config, config_from_dict, parse_overrides
    from agents.trainer import ALGORITHMS, train

    transformers.utils.logging.disable_progress_bar()  # per-shard bars would drown the run's
    cls, _ = ALGORITHMS[args.algorithm]
    if args.help_config:
        print(config_help(cls))
        return 0
    if args.out is None:
        raise UsageError("--out DIR is required: the run directory (metrics, checkpoints)")
    overrides = parse_overrides(args.set, cls) | _flag_overrides(args)
    if args.resume and (args.out / "config.json").exists() and args.config is None:
        # resume the run as it was configured; flags may still change e.g. --steps
        saved = json.loads((args.out / "config.json").read_text())
        base = config_from_dict(cls, saved)
        config = config_from_dict(cls, dataclasses.asdict(base) | overrides)
        preset = saved.get("preset", "")
    else:
        config, preset = build_config(
            cls, model=overrides.get("model", "tiny"), toml=args.config, overrides=overrides
        )
    main_rank = os.environ.get("RANK", "0") == "0"
    if main_rank:
        print(f"codegym train {args.algorithm}: preset {preset!r}, run directory {args.out}")
        for key, value in config.to_dict().items():
            print(f"  {key} = {value!r}")
    try:
        last = train(
            config, args.out, resume=args.resume, preset=preset, progress=not args.no_progress
        )
    except KeyboardInterrupt as stop:
        print(f"codegym train: {stop or 'interrupted'}", file=sys.stderr)
        return 130
    if main_rank:
        print(
            f"done: {config.steps} steps; last checkpoint {last}; metrics in {args.out}/metrics.csv"
        )
    return 0


__all__ = ["add_subcommands", "config_help", "run_train"]
