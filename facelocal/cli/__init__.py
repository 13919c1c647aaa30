"""The ``facelocal`` command. Each subcommand lives in its own module with ``register(subparsers)``;
heavy imports (torch, the server) happen inside the command, so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ("detect", "export", "eval", "bench", "train", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facelocal", description="RetinaFace face localisation")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"facelocal.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"facelocal.cli.{name}":
                raise
            continue
        module.register(subparsers)
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
