"""``screening-node status``: studies and series, their state and routing decision."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy import select

from screening_node.audit.db import Database
from screening_node.audit.models import Job, Series, Study
from screening_node.cli.common import add_state_options, settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="list studies and series with their state",
                                   description="List received studies and series: instance counts, state, "
                                               "routing decision with reason, and analysis outcome.")
    add_state_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON list, one object per series")
    parser.set_defaults(func=run)


def collect(db: Database) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with db.session() as session:
        for series in session.scalars(select(Series).join(Study).order_by(Study.id, Series.id)):
            job = session.scalars(select(Job).where(Job.series_id == series.id).order_by(Job.id.desc())).first()
            rows.append({
                "study_uid": series.study.study_uid,
                "study_key": series.study.study_key,
                "series_uid": series.series_uid,
                "series_number": series.series_number,
                "series_description": series.series_description,
                "modality": series.modality,
                "instances": series.instance_count,
                "state": series.state,
                "reopened": series.reopened_count,
                "completion_forced": series.completion_forced,
                "last_received_at": series.last_received_at.isoformat() if series.last_received_at else None,
                "routing": {"eligible": series.eligible, "reason": series.routing_reason},
                "job": None if job is None else {"id": job.id, "state": job.state, "outcome": job.outcome,
                                                 "reason": job.reason, "result_dir": job.result_dir},
            })
    return rows


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    db = Database(settings.database_url)
    rows = collect(db)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no studies received yet")
        return 0
    print(f"{'study':12} {'series':>6} {'inst':>5}  {'state':14} routing")
    for row in rows:
        routing = row["routing"]
        decision = "-" if routing["eligible"] is None else ("screen" if routing["eligible"] else "skip")
        reason = f": {routing['reason']}" if routing["reason"] else ""
        job = f"  [job {row['job']['state']}" + (f", {row['job']['outcome']}" if row["job"]["outcome"] else "") + "]" if row["job"] else ""
        number = row["series_number"] if row["series_number"] is not None else "?"
        print(f"{row['study_key']:12} {number!s:>6} {row['instances']:>5}  {row['state']:14} {decision}{reason}{job}")
    return 0
