"""``screening-node audit``: the audit trail (who, what, when, outcome), newest last."""

from __future__ import annotations

import argparse
import json

from sqlalchemy import or_, select

from screening_node.audit.db import Database
from screening_node.audit.models import Event
from screening_node.cli.common import add_state_options, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="show audit events",
                                   description="Show the audit trail: every association, instance decision, "
                                               "completion, routing decision, job and delivery step.")
    add_state_options(parser)
    parser.add_argument("--study", metavar="UID_OR_KEY", help="only events of this study (UID or S-... key)")
    parser.add_argument("--kind", help="only events whose kind starts with this (e.g. routing, job, delivery)")
    parser.add_argument("--limit", type=int, default=200, help="at most this many of the newest events")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    db = Database(settings_from_args(args).database_url)
    query = select(Event).order_by(Event.id.desc()).limit(args.limit)
    if args.study:
        query = query.where(or_(Event.study_uid == args.study, Event.study_key == args.study))
    if args.kind:
        query = query.where(Event.kind.startswith(args.kind))
    with db.session() as session:
        events = list(reversed(session.scalars(query).all()))
        rows = [{"id": e.id, "at": e.at.isoformat(), "kind": e.kind, "outcome": e.outcome, "actor": e.actor,
                 "study_key": e.study_key, "series_uid": e.series_uid,
                 "detail": json.loads(e.detail) if e.detail else None} for e in events]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        detail = " ".join(f"{k}={v}" for k, v in (row["detail"] or {}).items())
        print(f"{row['at'][:19]} {row['kind']:24} {row['outcome']:8} {row['actor'] or '-':16} "
              f"{row['study_key'] or '-':12} {detail}")
    return 0
