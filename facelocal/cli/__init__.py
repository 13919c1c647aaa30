"""The ``facelocal`` command. Each subcommand lives in its own module with ``register(subparsers)``;
heavy imports (torch, the server) happen inside the command, so ``--help`` stays fast.

Packages add subcommands through the ``facelocal.commands`` entry point group (the service adds ``serve``),
so the library never imports them."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

SUBCOMMAND_MODULES = ("detect", "export", "eval", "bench", "train")
COMMANDS_ENTRY_POINT = "facelocal.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facelocal", description="RetinaFace face localisation")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"facelocal.cli.{name}").register(subparsers)
    for entry in entry_points(group=COMMANDS_ENTRY_POINT):
        entry.load()(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        print(f"facelocal {args.command}: error: {exc}", file=sys.stderr)
        return 2


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


if __name__ == "__main__":
    sys.exit(main())
