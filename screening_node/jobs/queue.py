"""The analysis job queue in the database: claim with a lease, finish, retry.

Portable between SQLite and PostgreSQL. On PostgreSQL a claim uses
``SELECT ... FOR UPDATE SKIP LOCKED`` so several workers never take the same
job; on SQLite the database-wide write lock gives the same guarantee. A lease
(``lease_until``) lets another worker take over a job whose worker died.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from screening_node.audit.events import record_event
from screening_node.audit.models import Job, Series, utcnow

DEFAULT_LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 3  # a job that crashed a worker this often is failed, not retried forever


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run a job, detached from the session."""

    job_id: int
    series_id: int
    series_uid: str
    study_uid: str
    attempt: int


def claim_next(session: Session, worker_id: str, *, now: datetime | None = None,
               lease: timedelta = DEFAULT_LEASE) -> ClaimedJob | None:
    """Take the oldest due job (queued, or running with an expired lease), or None."""
    now = now or utcnow()
    query = (
        select(Job)
        .where(or_(Job.state == "queued", (Job.state == "running") & (Job.lease_until < now)))
        .where(Job.available_at <= now)
        .order_by(Job.available_at, Job.id)
        .limit(1)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job = session.scalars(query).first()
    if job is None:
        return None
    series = session.get(Series, job.series_id)
    assert series is not None
    if job.state == "running":
        record_event(session, "job.lease_expired", outcome="warning", actor=worker_id,
                     study_uid=series.study.study_uid, series_uid=series.series_uid,
                     detail={"job_id": job.id, "previous_worker": job.claimed_by})
    if job.attempts >= MAX_ATTEMPTS:
        job.state, job.outcome, job.finished_at = "failed", "failed", now
        job.reason = f"gave up after {job.attempts} attempts that did not finish (worker crash or timeout)"
        series.state = "failed"
        record_event(session, "job.failed", outcome="failure", actor=worker_id,
                     study_uid=series.study.study_uid, series_uid=series.series_uid,
                     detail={"job_id": job.id, "reason": job.reason})
        session.flush()
        return claim_next(session, worker_id, now=now, lease=lease)
    job.state = "running"
    job.claimed_by = worker_id
    job.attempts += 1
    job.started_at = now
    job.lease_until = now + lease
    series.state = "analysing"
    record_event(session, "job.claimed", actor=worker_id, study_uid=series.study.study_uid,
                 series_uid=series.series_uid, detail={"job_id": job.id, "attempt": job.attempts})
    session.flush()
    return ClaimedJob(job.id, series.id, series.series_uid, series.study.study_uid, job.attempts)


def finish(session: Session, job_id: int, *, outcome: str, reason: str | None,
           result_dir: str | None, worker_id: str) -> None:
    """Record a finished job: ``reported``, ``not_assessable`` or ``failed`` (an error)."""
    job = session.get(Job, job_id)
    assert job is not None
    series = session.get(Series, job.series_id)
    assert series is not None
    job.state = "failed" if outcome == "failed" else "done"
    job.outcome, job.reason, job.result_dir = outcome, reason, result_dir
    job.finished_at, job.lease_until = utcnow(), None
    series.state = outcome
    series.study.state = outcome
    record_event(session, f"job.{outcome}", outcome="failure" if outcome == "failed" else "ok",
                 actor=worker_id, study_uid=series.study.study_uid, series_uid=series.series_uid,
                 detail={"job_id": job_id, "reason": reason})


def requeue(session: Session, series_id: int, *, actor: str) -> Job:
    """Queue a (re-)analysis of a series, e.g. after it was re-opened by a late instance."""
    job = Job(series_id=series_id, kind="analyze", state="queued")
    session.add(job)
    series = session.get(Series, series_id)
    assert series is not None
    record_event(session, "job.queued", actor=actor, study_uid=series.study.study_uid,
                 series_uid=series.series_uid, detail={"reason": "requested"})
    session.flush()
    return job
