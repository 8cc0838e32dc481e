"""Recording audit events. Every stage calls ``record_event``; detail must hold no PHI."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from screening_node.audit.models import Event


def study_key(study_uid: str) -> str:
    """A stable pseudonym for a study, safe for log text (not reversible without the DB)."""
    return "S-" + hashlib.sha256(study_uid.encode("ascii", "replace")).hexdigest()[:10].upper()


def record_event(session: Session, kind: str, *, outcome: str = "ok", actor: str | None = None,
                 study_uid: str | None = None, series_uid: str | None = None,
                 detail: dict[str, Any] | None = None) -> Event:
    """Add one audit row to ``session`` (committed with the caller's transaction)."""
    row = Event(kind=kind, outcome=outcome, actor=actor, study_uid=study_uid, series_uid=series_uid,
                study_key=study_key(study_uid) if study_uid else None,
                detail=json.dumps(detail, default=str, sort_keys=True) if detail else None)
    session.add(row)
    return row
