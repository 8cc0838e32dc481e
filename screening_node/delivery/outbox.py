"""The persistent outbox: what to send where, claimed, retried and audited in the database.

All delivery state lives in the ``deliveries`` table, so pending objects
survive a restart. A sender *claims* due rows by pushing ``next_attempt_at``
one lease into the future inside a transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite's single writer lock gives the same guarantee), so two
processes never send the same object at once, and a claim whose sender died
mid-send becomes due again when the lease ends. Every attempt adds a
``delivery_attempts`` row and an audit event (delivery id and destination only:
no patient identifiers). The retry policy is in ``backoff``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Sequence

from pydicom import dcmread
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from screening_node.audit.events import record_event
from screening_node.audit.models import Delivery, DeliveryAttempt, as_utc, utcnow
from screening_node.config import DeliverySection, Destination
from screening_node.delivery.backoff import (DEFAULT_JITTER, backoff_delay, classify_status,
                                             refusal_attempt_limit)
from screening_node.delivery.scu import SendResult
from screening_node.errors import ScreeningNodeError

DEFAULT_LEASE = timedelta(minutes=5)


class DeliveryError(ScreeningNodeError):
    """An object cannot be put in the outbox (unreadable file, no SOP UIDs) or a bad outbox request."""


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due delivery taken by one sender, detached from the session."""

    delivery_id: int
    destination: str
    path: Path
    sop_class_uid: str
    study_uid: str | None
    attempts_before: int


def _object_uids(path: Path) -> tuple[str, str, str | None]:
    """(SOP class UID, SOP instance UID, study UID) from a file's header."""
    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        raise DeliveryError(f"cannot queue {path}: not a readable DICOM file ({exc})") from exc
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    sop_instance = ds.get("SOPInstanceUID") or (meta.get("MediaStorageSOPInstanceUID") if meta else None)
    if not sop_class or not sop_instance:
        raise DeliveryError(f"cannot queue {path}: no SOP Class/Instance UID in its header")
    study = ds.get("StudyInstanceUID")
    return str(sop_class), str(sop_instance), str(study) if study else None


def _insert_ignoring_duplicates(session: Session):  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT DO NOTHING for the node's two database dialects."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise DeliveryError(f"the outbox supports SQLite and PostgreSQL, not {dialect}")
    return insert(Delivery).on_conflict_do_nothing(index_elements=["destination", "sop_instance_uid"])


def enqueue(session: Session, files: Sequence[Path], destinations: Sequence[Destination | str], *,
            job_id: int | None = None, study_uid: str | None = None) -> list[Delivery]:
    """Queue each file for each destination; idempotent per (destination, SOP instance).

    Returns one ``Delivery`` per (file, destination): the new row, or the existing
    one when that object was already queued for that destination (in any state).
    The insert skips an existing (destination, SOP instance) in the database
    itself, so two processes queueing the same object at once both succeed.
    """
    headers = [(Path(f).resolve(), *_object_uids(Path(f))) for f in files]
    targets = [str(d) if isinstance(d, Destination) else str(Destination.parse(d)) for d in destinations]
    out: list[Delivery] = []
    created = 0
    now = utcnow()
    for path, sop_class, sop_instance, file_study in headers:
        for target in targets:
            inserted = session.execute(_insert_ignoring_duplicates(session).values(
                job_id=job_id, study_uid=study_uid or file_study, destination=target, object_path=str(path),
                sop_class_uid=sop_class, sop_instance_uid=sop_instance, state="pending", attempts=0,
                next_attempt_at=now, created_at=now))
            created += inserted.rowcount
            out.append(session.scalars(select(Delivery).where(Delivery.destination == target,
                                                              Delivery.sop_instance_uid == sop_instance)).one())
    study_for_event = study_uid or next((h[3] for h in headers if h[3]), None)
    record_event(session, "delivery.queued", actor="delivery", study_uid=study_for_event,
                 detail={"job_id": job_id, "objects": len(headers), "destinations": targets,
                         "new_deliveries": created, "already_queued": len(out) - created})
    return out


def claim_due(session: Session, *, now: datetime | None = None, lease: timedelta = DEFAULT_LEASE,
              limit: int = 64) -> list[ClaimedDelivery]:
    """Take up to ``limit`` pending deliveries that are due, oldest first, for one lease.

    Each row is taken by a conditional UPDATE (still pending and still due) and
    counts as ours only if that UPDATE changed it: the check runs under the
    write lock, so two senders cannot both take a row even on SQLite, where the
    SELECT before it runs without one.
    """
    now = now or utcnow()
    claimed: list[ClaimedDelivery] = []
    tried: set[int] = set()
    while len(claimed) < limit:  # rows another sender took meanwhile are skipped, not the end of the queue
        query = (select(Delivery.id, Delivery.destination, Delivery.object_path, Delivery.sop_class_uid,
                        Delivery.study_uid, Delivery.attempts)
                 .where(Delivery.state == "pending", Delivery.next_attempt_at <= now)
                 .order_by(Delivery.next_attempt_at, Delivery.id)
                 .limit(limit - len(claimed)))
        if tried:
            query = query.where(Delivery.id.not_in(tried))
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = session.execute(query).all()
        if not candidates:
            break
        for row in candidates:
            tried.add(row.id)
            taken = session.execute(
                update(Delivery)
                .where(Delivery.id == row.id, Delivery.state == "pending", Delivery.next_attempt_at <= now)
                .values(next_attempt_at=now + lease)
                .execution_options(synchronize_session=False))
            if taken.rowcount == 1:
                claimed.append(ClaimedDelivery(row.id, row.destination, Path(row.object_path),
                                               row.sop_class_uid, row.study_uid, row.attempts))
    return claimed


def _decide(result: SendResult, attempts: int, policy: DeliverySection) -> tuple[str, str | None]:
    """(new state, why it is dead) for a delivery after its ``attempts``-th attempt."""
    if result.outcome == "success":
        return "sent", None
    if result.outcome in ("not_accepted", "local_error"):
        return "dead", "permanent: not retried"
    if result.outcome == "failure_status":
        assert result.status_code is not None
        if classify_status(result.status_code) == "permanent":
            return "dead", "permanent refusal: not retried"
        limit = refusal_attempt_limit(policy.max_attempts)
        if attempts >= limit:
            return "dead", f"refused {attempts} times (limit {limit} for refusals)"
        return "pending", None
    if attempts >= policy.max_attempts:
        return "dead", f"gave up after {attempts} attempts (delivery.max_attempts)"
    return "pending", None


def record_result(session: Session, claim: ClaimedDelivery, result: SendResult, policy: DeliverySection, *,
                  now: datetime | None = None, actor: str = "delivery", jitter: float = DEFAULT_JITTER) -> str:
    """Write one attempt's outcome (attempt row, audit event, next state); returns the new state."""
    now = now or utcnow()
    row = session.get(Delivery, claim.delivery_id)
    if row is None:
        raise DeliveryError(f"delivery {claim.delivery_id} vanished while being sent")
    row.attempts += 1
    attempt_outcome = {"success": "success", "failure_status": "failure_status", "not_accepted": "failure_status",
                       "network_error": "network_error", "local_error": "local_error"}[result.outcome]
    session.add(DeliveryAttempt(delivery_id=row.id, at=now, outcome=attempt_outcome,
                                status_code=result.status_code, detail=result.detail))
    state, dead_reason = _decide(result, row.attempts, policy)
    detail: dict[str, Any] = {"delivery_id": row.id, "destination": row.destination, "attempt": row.attempts,
                              "outcome": attempt_outcome, "state": state}
    if result.status_code is not None:
        detail["status"] = f"0x{result.status_code:04X}"
    row.state = state
    if state == "sent":
        row.sent_at = now
        if result.status_code:  # a warning status: stored, but say what the PACS said
            row.last_error = result.detail
    else:
        detail["error"] = result.detail
        if state == "pending":
            delay = backoff_delay(row.attempts, policy.backoff_initial_s, policy.backoff_max_s,
                                  jitter=jitter, key=row.id)
            row.next_attempt_at = now + timedelta(seconds=delay)
            row.last_error = result.detail
            detail["retry_in_s"] = round(delay, 3)
        else:
            row.last_error = f"{result.detail} [{dead_reason}]"
            detail["dead_reason"] = dead_reason
    event_outcome = "ok" if state == "sent" else ("warning" if state == "pending" else "failure")
    record_event(session, "delivery.attempt", outcome=event_outcome, actor=actor, study_uid=row.study_uid,
                 detail=detail)
    if state == "dead":
        record_event(session, "delivery.dead", outcome="failure", actor=actor, study_uid=row.study_uid,
                     detail={"delivery_id": row.id, "destination": row.destination, "attempts": row.attempts,
                             "reason": row.last_error})
    return state


def requeue(session: Session, *, delivery_id: int | None = None, all_dead: bool = False,
            actor: str = "cli") -> list[int]:
    """Put dead letters back in the queue (attempts start again from zero); audited."""
    if delivery_id is not None:
        row = session.get(Delivery, delivery_id)
        if row is None:
            raise DeliveryError(f"no delivery with id {delivery_id}")
        if row.state != "dead":
            raise DeliveryError(f"delivery {delivery_id} is {row.state}, not dead: nothing to requeue")
        rows = [row]
    elif all_dead:
        rows = list(session.scalars(select(Delivery).where(Delivery.state == "dead").order_by(Delivery.id)))
    else:
        raise DeliveryError("say which delivery to requeue (an id) or all dead letters")
    now = utcnow()
    for row in rows:
        record_event(session, "delivery.requeued", actor=actor, study_uid=row.study_uid,
                     detail={"delivery_id": row.id, "destination": row.destination,
                             "previous_attempts": row.attempts, "previous_error": row.last_error})
        row.state, row.attempts, row.next_attempt_at = "pending", 0, now
    session.flush()
    return [row.id for row in rows]


def describe(row: Delivery) -> dict[str, Any]:
    """One delivery as plain JSON-able values (for the CLI and the dashboard)."""
    def iso(value: datetime | None) -> str | None:
        value = as_utc(value)
        return value.isoformat() if value else None
    return {"id": row.id, "job_id": row.job_id, "destination": row.destination, "state": row.state,
            "attempts": row.attempts, "sop_class_uid": row.sop_class_uid, "object": Path(row.object_path).name,
            "next_attempt_at": iso(row.next_attempt_at) if row.state == "pending" else None,
            "created_at": iso(row.created_at), "sent_at": iso(row.sent_at), "last_error": row.last_error}
