"""``screening-node serve``: run the node (receive, complete, route, analyse, report, deliver)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from screening_node.cli.common import add_state_options, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the DICOM node",
                                   description="Run the Storage SCP and the screening pipeline until stopped.")
    add_state_options(parser)
    parser.add_argument("--port", type=int, help="TCP port to listen on (overrides node.port)")
    parser.add_argument("--ae-title", help="our AE title (overrides node.ae_title)")
    parser.add_argument("--stable-age", type=float, metavar="SECONDS",
                        help="seconds without new instances before a series is complete (overrides intake.stable_age_s)")
    parser.add_argument("--destination", action="append", metavar="AET@HOST:PORT",
                        help="send results here by C-STORE (repeatable; replaces delivery.destinations)")
    parser.add_argument("--no-analysis", action="store_true", help="only receive and route (no analysis worker)")
    parser.set_defaults(func=run)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, **{"node.port": args.port, "node.ae_title": args.ae_title,
                                           "intake.stable_age_s": args.stable_age,
                                           "delivery.destinations": args.destination})
    configure_logging(settings.logging.level)
    from screening_node.node import Node

    node = Node(settings, analyse=not args.no_analysis, deliver=not args.no_analysis)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node.start()
    print(f"screening-node: {settings.node.ae_title} listening on {settings.node.host}:{node.port} "
          f"(data in {settings.data_dir})", flush=True)
    try:
        stop.wait()
    finally:
        node.stop()
        print("screening-node: stopped", flush=True)
    return 0
