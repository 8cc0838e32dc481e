"""Options shared by every command that touches state (the CLI contract)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from screening_node.config import Settings, load_settings
from screening_node.errors import ConfigError


def add_state_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--data-dir DIR``: every stateful command takes both."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="node configuration TOML (defaults apply without one)")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="spool and default SQLite database live here (overrides the file)")


def settings_from_args(args: argparse.Namespace, **overrides: object) -> Settings:
    """Load settings from ``--config``, environment, ``--data-dir`` and per-command overrides.

    Exits with status 2 and a message naming the key when a value is invalid.
    """
    cli_overrides: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "data_dir", None) is not None:
        cli_overrides["storage.data_dir"] = str(args.data_dir)
    try:
        return load_settings(getattr(args, "config", None), cli_overrides)
    except ConfigError as exc:
        print(f"screening-node: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
