"""Accepting one received instance: check it, spool it durably, index it.

Decides the C-STORE status. Nothing received is lost: an object we cannot use
(missing identifiers, unreadable, a conflicting duplicate) is kept in the
quarantine directory with a recorded reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from screening_node.audit.db import Database
from screening_node.audit.events import record_event, study_key
from screening_node.audit.models import Instance, Job, QuarantinedObject, Series, Study
from screening_node.intake.spool import (discard, is_valid_uid, publish, quarantine_relpath, sha256_bytes,
                                         spool_relpath, write_atomic, write_durable_temp)

log = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
ACCEPTED_SOP_CLASSES = (CT_IMAGE_STORAGE, ENHANCED_CT_IMAGE_STORAGE)

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_DATASET_MISMATCH = 0xA900
STATUS_CANNOT_UNDERSTAND = 0xC000

# Series states after which a new instance re-opens the series.
CLOSED_SERIES_STATES = frozenset({"complete", "eligible", "skipped", "superseded", "analysing", "reported",
                                  "not_assessable", "failed"})


@dataclass(frozen=True)
class StoreOutcome:
    status: int
    kind: str  # stored, duplicate, conflict_quarantined, refused
    reason: str | None = None


def _text(ds: Dataset, keyword: str, limit: int) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text[:limit]


def _number(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


class InstanceStore:
    """Durable, idempotent storage of received instances (one per node process, thread-safe)."""

    def __init__(self, db: Database, spool_dir: Path, quarantine_dir: Path) -> None:
        self.db = db
        self.spool_dir = spool_dir
        self.quarantine_dir = quarantine_dir
        # series UID -> (series id, study id): rows never disappear, so the cache cannot go stale.
        self._series_ids: dict[str, tuple[int, int]] = {}

    # -- refusal and quarantine ------------------------------------------------
    def quarantine(self, raw: bytes, reason: str, *, association_id: int | None, actor: str | None,
                   tag: str, sop_instance_uid: str | None = None, series_uid: str | None = None,
                   study_uid: str | None = None) -> str:
        """Keep ``raw`` aside with ``reason``; returns the relative path."""
        digest = sha256_bytes(raw)
        rel = quarantine_relpath(tag, digest)
        write_atomic(self.quarantine_dir / rel, raw)
        with self.db.session() as session:
            session.add(QuarantinedObject(association_id=association_id, sop_instance_uid=(sop_instance_uid or None) and sop_instance_uid[:128],
                                          series_uid=(series_uid or None) and series_uid[:128],
                                          study_uid=(study_uid or None) and study_uid[:128],
                                          path=str(rel), sha256=digest, reason=reason))
            record_event(session, "instance.quarantined", outcome="warning", actor=actor,
                         study_uid=study_uid if is_valid_uid(study_uid) else None,
                         series_uid=series_uid if is_valid_uid(series_uid) else None,
                         detail={"reason": reason, "quarantine_path": str(rel)})
        log.warning("instance quarantined (%s): %s", tag, reason)
        return str(rel)

    def check_identifiers(self, ds: Dataset, context_sop_class: str) -> str | None:
        """Why this dataset cannot be indexed, or None when its identifiers are sound."""
        sop_class = ds.get("SOPClassUID", "")
        if not sop_class:
            return "SOP Class UID is missing or empty in the data set"
        if sop_class not in ACCEPTED_SOP_CLASSES:
            return f"SOP Class UID {sop_class!s:.64} is not CT or Enhanced CT Image Storage"
        if sop_class != context_sop_class:
            return "SOP Class UID in the data set differs from the negotiated presentation context"
        for keyword, name in (("SOPInstanceUID", "SOP Instance UID"), ("StudyInstanceUID", "Study Instance UID"),
                              ("SeriesInstanceUID", "Series Instance UID")):
            value = ds.get(keyword, "")
            if not value:
                return f"{name} is missing or empty"
            if not is_valid_uid(str(value)):
                return f"{name} is not a valid DICOM UID (digits and dots, at most 64 characters)"
        return None

    # -- storing ---------------------------------------------------------------
    def store(self, raw: bytes, ds: Dataset, *, transfer_syntax: str, association_id: int | None,
              actor: str | None) -> StoreOutcome:
        """Spool and index one checked instance. ``raw`` is the complete Part 10 file.

        Order matters for "nothing received is lost": the bytes are fsynced to a
        temporary file first; the index row is inserted (the SOP Instance UID is
        unique, so a second copy fails here); the file is renamed into place;
        then the transaction commits and the sender hears success.
        """
        sop_uid = str(ds.SOPInstanceUID)
        study_uid = str(ds.StudyInstanceUID)
        series_uid = str(ds.SeriesInstanceUID)
        key = study_key(study_uid)
        digest = sha256_bytes(raw)
        rel = spool_relpath(key, series_uid, sop_uid)
        final = self.spool_dir / rel
        tmp = write_durable_temp(final.parent, raw)
        try:
            for _ in range(3):
                try:
                    self._index(ds, rel, final, tmp, len(raw), digest, key, sop_uid, study_uid, series_uid,
                                transfer_syntax, association_id, actor)
                    return StoreOutcome(STATUS_SUCCESS, "stored")
                except IntegrityError:
                    self._series_ids.pop(series_uid, None)
                    outcome = self._already_stored(tmp, digest, sop_uid, study_uid, series_uid, association_id, actor)
                    if outcome is not None:
                        return outcome
                    # The unique race was on the study or series row (two senders at once): try again.
            return StoreOutcome(STATUS_OUT_OF_RESOURCES, "refused", "database contention: please resend")
        finally:
            discard(tmp)  # no-op once published

    def _index(self, ds: Dataset, rel: Path, final: Path, tmp: Path, size: int, digest: str, key: str,
               sop_uid: str, study_uid: str, series_uid: str, transfer_syntax: str,
               association_id: int | None, actor: str | None) -> None:
        now = datetime.now(timezone.utc)
        number = _number(ds, "InstanceNumber")
        with self.db.session() as session:
            ids = self._series_ids.get(series_uid)
            if ids is None:
                study = self._upsert_study(session, ds, study_uid, key, now)
                series = self._upsert_series(session, ds, study, series_uid, now, actor)
                ids = (series.id, study.id)
            session.execute(insert(Instance).values(
                series_id=ids[0], association_id=association_id, sop_instance_uid=sop_uid,
                sop_class_uid=str(ds.SOPClassUID), transfer_syntax_uid=transfer_syntax,
                instance_number=int(number) if number is not None else None, path=str(rel), size_bytes=size,
                sha256=digest, received_at=now))
            # Fast path: the series is still receiving. Otherwise this instance re-opens it.
            updated = session.execute(
                update(Series).where(Series.id == ids[0], Series.state == "receiving")
                .values(instance_count=Series.instance_count + 1, last_received_at=now)).rowcount
            if updated == 0:
                series = session.get(Series, ids[0])
                assert series is not None
                self._reopen(session, series, actor)
                series.instance_count += 1
                series.last_received_at = now
            publish(tmp, final)  # durable under its name before the commit says it is there
        self._series_ids[series_uid] = ids

    def _already_stored(self, tmp: Path, digest: str, sop_uid: str, study_uid: str, series_uid: str,
                        association_id: int | None, actor: str | None) -> StoreOutcome | None:
        """The outcome for a SOP Instance UID we already hold, or None if we do not hold it."""
        with self.db.session() as session:
            existing = session.scalars(select(Instance).where(Instance.sop_instance_uid == sop_uid)).first()
            if existing is None:
                return None
            if existing.sha256 == digest:
                record_event(session, "instance.duplicate", actor=actor, study_uid=study_uid,
                             series_uid=series_uid, detail={"identical": True})
                return StoreOutcome(STATUS_SUCCESS, "duplicate")
        reason = "a different object arrived under an already stored SOP Instance UID; the stored one is kept"
        self.quarantine(tmp.read_bytes(), reason, association_id=association_id, actor=actor, tag="conflict",
                        sop_instance_uid=sop_uid, series_uid=series_uid, study_uid=study_uid)
        return StoreOutcome(STATUS_SUCCESS, "conflict_quarantined", reason)

    @staticmethod
    def _upsert_study(session: Session, ds: Dataset, study_uid: str, key: str, now: datetime) -> Study:
        study = session.scalars(select(Study).where(Study.study_uid == study_uid)).first()
        if study is None:
            study = Study(study_uid=study_uid, study_key=key, patient_id=_text(ds, "PatientID", 64),
                          patient_name=_text(ds, "PatientName", 324), patient_birth_date=_text(ds, "PatientBirthDate", 8),
                          patient_sex=_text(ds, "PatientSex", 16), patient_age=_text(ds, "PatientAge", 4),
                          accession_number=_text(ds, "AccessionNumber", 16), study_date=_text(ds, "StudyDate", 8),
                          study_description=_text(ds, "StudyDescription", 64), first_received_at=now,
                          last_received_at=now, state="receiving")
            session.add(study)
            session.flush()
        elif study.state != "receiving" and study.state not in ("reported", "not_assessable", "failed"):
            study.state = "receiving"
        return study

    @staticmethod
    def _reopen(session: Session, series: Series, actor: str | None) -> None:
        """A late instance for a closed series: receive again, cancel its queued job, record it."""
        previous = series.state
        series.state = "receiving"
        series.reopened_count += 1
        series.completed_at = None
        series.completion_forced = False
        for job in session.scalars(select(Job).where(Job.series_id == series.id, Job.state == "queued")):
            job.state, job.outcome, job.reason = "cancelled", "cancelled", "series re-opened by a late instance"
        record_event(session, "series.reopened", outcome="warning", actor=actor, study_uid=series.study.study_uid,
                     series_uid=series.series_uid, detail={"previous_state": previous,
                                                           "reopened_count": series.reopened_count})
        log.warning("study %s: late instance re-opened a %s series", series.study.study_key, previous)

    @staticmethod
    def _upsert_series(session: Session, ds: Dataset, study: Study, series_uid: str, now: datetime,
                       actor: str | None) -> Series:
        series = session.scalars(select(Series).where(Series.series_uid == series_uid)).first()
        if series is None:
            number = _number(ds, "SeriesNumber")
            series = Series(study_id=study.id, series_uid=series_uid, modality=_text(ds, "Modality", 16),
                            series_number=int(number) if number is not None else None,
                            series_description=_text(ds, "SeriesDescription", 64),
                            body_part=_text(ds, "BodyPartExamined", 64), protocol_name=_text(ds, "ProtocolName", 64),
                            image_type=_text(ds, "ImageType", 128), convolution_kernel=_text(ds, "ConvolutionKernel", 64),
                            slice_thickness_mm=_number(ds, "SliceThickness"), instance_count=0,
                            first_received_at=now, last_received_at=now, state="receiving")
            session.add(series)
            session.flush()
            record_event(session, "series.started", actor=actor, study_uid=study.study_uid, series_uid=series_uid)
        elif series.state in CLOSED_SERIES_STATES:
            InstanceStore._reopen(session, series, actor)
        return series
