"""``screening-node outbox``: what was sent to the PACS, what waits, what gave up; requeue dead letters."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select

from screening_node.audit.db import Database
from screening_node.audit.models import Delivery
from screening_node.cli.common import add_state_options, settings_from_args
from screening_node.delivery.outbox import DeliveryError, describe, requeue


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("outbox", help="list deliveries to the PACS; requeue dead letters",
                                   description="List the delivery outbox (state, attempts, last error) or put "
                                               "dead letters back in the queue. Requeueing is audited.")
    add_state_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per delivery")
    parser.add_argument("--state", choices=("pending", "sent", "dead"), help="only deliveries in this state")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--retry", type=int, metavar="ID", help="requeue the dead delivery ID")
    group.add_argument("--retry-dead", action="store_true", help="requeue every dead delivery")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    db = Database(settings.database_url)
    try:
        if args.retry is not None or args.retry_dead:
            try:
                with db.session() as session:
                    ids = requeue(session, delivery_id=args.retry, all_dead=args.retry_dead, actor="cli")
            except DeliveryError as exc:
                print(f"screening-node outbox: {exc}", file=sys.stderr)
                return 1
            if args.json:
                print(json.dumps({"requeued": ids}))
            else:
                print(f"requeued {len(ids)} deliver{'y' if len(ids) == 1 else 'ies'}"
                      + (f": {', '.join(map(str, ids))}" if ids else ""))
            return 0
        with db.session() as session:
            query = select(Delivery).order_by(Delivery.id)
            if args.state:
                query = query.where(Delivery.state == args.state)
            rows = [describe(row) for row in session.scalars(query)]
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("outbox is empty")
        return 0
    print(f"{'id':>5} {'state':8} {'tries':>5}  {'destination':32} {'object':28} last error")
    for row in rows:
        print(f"{row['id']:>5} {row['state']:8} {row['attempts']:>5}  {row['destination'][:32]:32} "
              f"{row['object'][:28]:28} {row['last_error'] or ''}")
    return 0
