"""The ``codegym`` command: ``sandbox build|doctor|cleanup``, ``tasks validate|stats``, ``demo``.

Each sub-package contributes its own subcommands through an ``add_subcommands(subparsers)``
function, so this file only wires them together. Also run as ``python -m codegym``.

Errors in what the user gave or set up (:class:`~codegym.errors.UsageError`, a malformed task
file, a missing input file, a sandbox that cannot start on this machine) are printed as one
line, ``codegym: error: <message>``, with exit status 2; ``--debug`` (anywhere on the command
line) shows their traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: Modules that contribute subcommands, each with ``add_subcommands(subparsers)``.
_SUBCOMMAND_MODULES = (
    "codegym.sandbox.cli",
    "codegym.tasks.cli",
    "codegym.demo",
    "codegym.eval.cli",
    "agents.train_cli",
    "agents.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``codegym`` command."""
    parser = argparse.ArgumentParser(
        prog="codegym",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.add_subcommands(subparsers)
    _add_debug_flag(parser, set())
    return parser


def _add_debug_flag(parser: argparse.ArgumentParser, seen: set[int]) -> None:
    """``--debug`` on the command and every subcommand, so it works in any position."""
    top = not seen
    seen.add(id(parser))
    parser.add_argument(
        "--debug",
        action="store_true",
        # Only the top level sets a default: a subcommand's would overwrite a --debug given
        # before it.
        default=False if top else argparse.SUPPRESS,
        help="show the traceback of errors in input or set-up",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) not in seen:
                    _add_debug_flag(sub, seen)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user's input or set-up is wrong, not that codegym has a bug."""
    from codegym.errors import UsageError
    from codegym.sandbox.base import SandboxSetupError
    from codegym.tasks.task import TaskFormatError

    # FileNotFoundError covers codegym.tasks.DataNotFoundError (a dataset is not there).
    return (UsageError, TaskFormatError, FileNotFoundError, SandboxSetupError)


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codegym`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    user_errors = _user_errors()
    try:
        return int(args.func(args) or 0)
    except user_errors as e:
        if args.debug:
            raise
        print(f"codegym: error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
