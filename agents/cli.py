"""The agents' ``codegym`` subcommands: ``pretrain`` (build the bundled tiny model).

Registered through ``add_subcommands(subparsers)`` like every other part of the CLI. Heavy
imports (torch, transformers) happen only when a subcommand runs, so ``codegym --help`` and
the sandbox commands stay fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from codegym.errors import UsageError

_PRETRAIN_EPILOG = """\
The model is cached under ~/.cache/codegym/models/tiny-<hash>/ ($CODEGYM_CACHE replaces
~/.cache/codegym); "--model tiny" everywhere else loads the default build. A build with
--seed or --set is cached under its own hash: load it with --model PATH (printed at the end).

examples:
  codegym pretrain                      # (re)build the default tiny model
  codegym pretrain --if-missing         # build only when it is not cached yet
  codegym pretrain --seed 1 --set sft_steps=400
"""


def add_subcommands(subparsers: Any) -> None:
    """Register ``pretrain``."""
    parser = subparsers.add_parser(
        "pretrain",
        help="build the bundled tiny model (tokenizer + GPT-2 + SFT on toy train tasks)",
        description="Build the bundled tiny model: a byte-level BPE tokenizer and a small "
        "GPT-2, supervised-fine-tuned on the toy suite's train split in the formats of both "
        "environments. Deterministic per seed; a few minutes on 2 CPU cores.",
        epilog=_PRETRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TinyConfig field, e.g. sft_steps=400 (repeatable)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="keep a cached model with these settings instead of rebuilding it",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from agents.tiny import TinyConfig, tiny_model_path

    changes = parse_overrides(TinyConfig, args.overrides)
    if args.seed is not None:
        changes["seed"] = args.seed
    config = TinyConfig(**changes)
    path = tiny_model_path(config, rebuild=not args.if_missing, progress=not args.quiet)
    report = json.loads((path / "build.json").read_text())
    print(
        f"tiny model: {path}\n"
        f"  {report['parameters']:,} parameters, vocabulary {report['vocab_size']}, "
        f"{config.sft_steps} SFT steps on {report['tasks']} toy train tasks "
        f"(final loss {report['loss_last_20']:.3f}); built in {report['build_seconds']:.0f} s"
    )
    return 0


def parse_overrides(config_class: type, items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}`` typed as the dataclass field's default.

    Raises:
        UsageError: an item without ``=``, an unknown key, or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--set {item!r}: write KEY=VALUE, e.g. --set sft_steps=400")
        if key not in fields:
            raise UsageError(
                f"--set {item!r}: {config_class.__name__} has no field {key!r}; "
                f"fields: {', '.join(sorted(fields))}"
            )
        kind: Any = type(fields[key].default)
        try:
            out[key] = kind(text.strip())
        except ValueError as e:
            raise UsageError(
                f"--set {item!r}: {key} must be of type {kind.__name__}, got {text.strip()!r}"
            ) from e
    return out
