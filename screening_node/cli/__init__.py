"""The one ``screening-node`` command.

Each subcommand lives in its own module in this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed ``argparse.Namespace`` and returning an exit code). Adding a
command is one module plus one line in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from screening_node import __version__

# Order here is the order in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "phantom",
    "serve",
    "status",
    "complete",
    "inspect",
    "report",
    "outbox",
    "audit",
    "analyze",
    "evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="screening-node",
        description="Screen CT series for vertebral compression fractures.",
    )
    parser.add_argument("--version", action="version", version=f"screening-node {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"screening_node.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
