"""``screening-node complete``: an administrator forces a receiving series to complete now."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select

from screening_node.audit.db import Database
from screening_node.audit.models import Series
from screening_node.cli.common import add_state_options, settings_from_args
from screening_node.intake.completion import mark_complete


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("complete", help="force completion of a receiving series",
                                   description="Mark a series complete without waiting for the stable age, "
                                               "and route it. The decision is recorded as forced.")
    add_state_options(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("series_uid", nargs="?", help="Series Instance UID")
    target.add_argument("--all", action="store_true", help="every series still receiving")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    db = Database(settings.database_url)
    with db.session() as session:
        query = select(Series).where(Series.state == "receiving")
        if not args.all:
            query = query.where(Series.series_uid == args.series_uid)
        targets = session.scalars(query).all()
        if not targets and not args.all:
            known = session.scalars(select(Series).where(Series.series_uid == args.series_uid)).first()
            why = f"it is {known.state}, not receiving" if known else "no such series"
            print(f"screening-node: cannot complete {args.series_uid}: {why}", file=sys.stderr)
            return 1
        for series in targets:
            mark_complete(session, settings, series, forced=True, actor="cli")
            print(f"completed {series.series_uid}: {series.state} ({series.routing_reason})")
    return 0
