"""The node's database schema: what was received, decided, analysed and delivered.

Portable between SQLite (default) and PostgreSQL (several workers): plain types,
timezone-aware UTC timestamps, no database-specific features. The schema is
changed only through Alembic migrations in ``migrations/versions``; a test
checks these models and the migrations agree.

Identifying patient fields live in their own columns (for the PACS
administrator); log text uses ``Study.study_key``, a pseudonym.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes even for timezone-aware columns: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


UID = String(64)
TS = DateTime(timezone=True)


class Association(Base):
    """One DICOM association from a peer (modality, PACS, or a careless sender)."""

    __tablename__ = "associations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    peer_ae_title: Mapped[str | None] = mapped_column(String(16))
    peer_address: Mapped[str | None] = mapped_column(String(64))
    peer_port: Mapped[int | None] = mapped_column(Integer)
    called_ae_title: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(TS)
    instances_stored: Mapped[int] = mapped_column(Integer, default=0)
    instances_failed: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(32), default="open")  # open, released, aborted, rejected


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, unique=True)
    study_key: Mapped[str] = mapped_column(String(32), unique=True)  # pseudonym used in logs
    patient_id: Mapped[str | None] = mapped_column(String(64))
    patient_name: Mapped[str | None] = mapped_column(String(324))
    patient_birth_date: Mapped[str | None] = mapped_column(String(8))
    patient_sex: Mapped[str | None] = mapped_column(String(16))
    patient_age: Mapped[str | None] = mapped_column(String(4))
    accession_number: Mapped[str | None] = mapped_column(String(16))
    study_date: Mapped[str | None] = mapped_column(String(8))
    study_description: Mapped[str | None] = mapped_column(String(64))
    first_received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    state: Mapped[str] = mapped_column(String(32), default="receiving")
    series: Mapped[list["Series"]] = relationship(back_populates="study", order_by="Series.id")


class Series(Base):
    """A series and its lifecycle: receiving -> complete -> (routed) -> analysed / skipped / ..."""

    __tablename__ = "series"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    series_uid: Mapped[str] = mapped_column(UID, unique=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String(64))
    body_part: Mapped[str | None] = mapped_column(String(64))
    protocol_name: Mapped[str | None] = mapped_column(String(64))
    image_type: Mapped[str | None] = mapped_column(String(128))
    convolution_kernel: Mapped[str | None] = mapped_column(String(64))
    slice_thickness_mm: Mapped[float | None] = mapped_column(Float)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    first_received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    state: Mapped[str] = mapped_column(String(32), default="receiving", index=True)
    completed_at: Mapped[datetime | None] = mapped_column(TS)
    completion_forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    eligible: Mapped[bool | None] = mapped_column(Boolean)
    routing_reason: Mapped[str | None] = mapped_column(Text)
    routed_at: Mapped[datetime | None] = mapped_column(TS)
    study: Mapped[Study] = relationship(back_populates="series")


class Instance(Base):
    __tablename__ = "instances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    association_id: Mapped[int | None] = mapped_column(ForeignKey("associations.id"))
    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(UID)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)  # relative to the spool directory
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class QuarantinedObject(Base):
    """An object kept aside and not used: a conflicting duplicate, unreadable or unidentifiable data."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    association_id: Mapped[int | None] = mapped_column(ForeignKey("associations.id"))
    sop_instance_uid: Mapped[str | None] = mapped_column(String(128))
    series_uid: Mapped[str | None] = mapped_column(String(128))
    study_uid: Mapped[str | None] = mapped_column(String(128))
    path: Mapped[str | None] = mapped_column(Text)  # relative to the quarantine directory
    sha256: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class Event(Base):
    """The audit trail: one row per step (who, what, when, outcome)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)  # e.g. association.start, series.complete
    outcome: Mapped[str] = mapped_column(String(32), default="ok")  # ok, warning, failure
    actor: Mapped[str | None] = mapped_column(String(128))  # peer AE, worker id, "cli"
    study_uid: Mapped[str | None] = mapped_column(UID, index=True)
    series_uid: Mapped[str | None] = mapped_column(UID, index=True)
    study_key: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)  # JSON text, no patient identifiers


class Job(Base):
    """Analysis of one series, claimed by one worker at a time (lease)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_available", "state", "available_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="analyze")
    state: Mapped[str] = mapped_column(String(32), default="queued")  # queued, running, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(TS)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    outcome: Mapped[str | None] = mapped_column(String(32))  # reported, not_assessable, failed
    reason: Mapped[str | None] = mapped_column(Text)
    result_dir: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """One object to send to one destination: the persistent outbox."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("destination", "sop_instance_uid", name="uq_delivery_destination_sop"),
                      Index("ix_deliveries_state_next", "state", "next_attempt_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    study_uid: Mapped[str | None] = mapped_column(UID)
    destination: Mapped[str] = mapped_column(String(128))  # AET@HOST:PORT
    object_path: Mapped[str] = mapped_column(Text)
    sop_class_uid: Mapped[str] = mapped_column(UID)
    sop_instance_uid: Mapped[str] = mapped_column(UID)
    state: Mapped[str] = mapped_column(String(32), default="pending")  # pending, sent, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TS)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(32))  # success, failure_status, network_error
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
