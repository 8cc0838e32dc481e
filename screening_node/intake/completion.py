"""Series completion (stable age) and the routing decision that follows it.

DICOM has no "series finished" message, so a series is complete when no
instance arrived for ``stable_age_s``. A late instance re-opens it (see
``store.py``); it then completes and is routed again. An administrator can
force completion with ``screening-node complete``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening_node.audit.events import record_event
from screening_node.audit.models import Instance, Job, Series, Study, as_utc
from screening_node.config import Settings
from screening_node.intake.routing import SeriesFacts, choose_best, decide, facts_from_files, preference_reason

log = logging.getLogger(__name__)

ACTIVE_JOB_STATES = ("queued", "running", "done")


def complete_due_series(session: Session, settings: Settings, now: datetime | None = None) -> list[int]:
    """Mark series without new instances for the stable age as complete and route them."""
    now = now or datetime.now(timezone.utc)
    threshold = now - timedelta(seconds=settings.intake.stable_age_s)
    receiving = session.scalars(select(Series).where(Series.state == "receiving")).all()
    due = [s for s in receiving if as_utc(s.last_received_at) <= threshold]
    # Complete every due series first, then route each study once, so that series of one study
    # that finish together compete for screening in one decision.
    for series in due:
        _complete(session, series, forced=False, actor="stable-age", now=now)
    for study in {s.study_id: s.study for s in due}.values():
        route_study(session, settings, study, actor="stable-age")
    return [s.id for s in due]


def mark_complete(session: Session, settings: Settings, series: Series, *, forced: bool, actor: str,
                  now: datetime | None = None) -> None:
    """Complete one series now (the administrator's ``complete`` command) and route its study."""
    _complete(session, series, forced=forced, actor=actor, now=now or datetime.now(timezone.utc))
    route_study(session, settings, series.study, actor=actor)


def _complete(session: Session, series: Series, *, forced: bool, actor: str, now: datetime) -> None:
    series.state = "complete"
    series.completed_at = now
    series.completion_forced = forced
    record_event(session, "series.complete", actor=actor, study_uid=series.study.study_uid,
                 series_uid=series.series_uid, detail={"instances": series.instance_count, "forced": forced})


def _series_files(session: Session, settings: Settings, series: Series) -> list[Path]:
    rel = session.scalars(select(Instance.path).where(Instance.series_id == series.id)).all()
    return [settings.spool_dir / p for p in rel]


def route_study(session: Session, settings: Settings, study: Study, *, actor: str) -> None:
    """Decide every complete, not yet routed series of a study; queue the best eligible one."""
    pending = [s for s in study.series if s.state == "complete"]
    facts: dict[int, SeriesFacts] = {}
    for series in pending:
        try:
            series_facts = facts_from_files(series.series_uid, _series_files(session, settings, series))
        except Exception as exc:  # unreadable header: a reason, never a crash
            _decide(session, series, False, f"headers could not be read ({type(exc).__name__}: {exc})", actor)
            series.state = "skipped"
            continue
        decision = decide(series_facts, settings.routing)
        _decide(session, series, decision.eligible, decision.reason, actor)
        if decision.eligible:
            facts[series.id] = series_facts
        else:
            series.state = "skipped"
    if not facts:
        return
    # Already screened (or being screened) from another series of this study?
    screened = [s for s in study.series if s.id not in facts and _has_active_job(session, s, ("running", "done"))]
    if screened:
        for series_id in facts:
            series = session.get(Series, series_id)
            assert series is not None
            series.state, series.eligible = "superseded", False
            series.routing_reason = f"superseded: study already screened from series {_name(screened[0])}"
            _event_superseded(session, series, actor)
        return
    queued = [s for s in study.series if s.id not in facts and _has_active_job(session, s, ("queued",))]
    for series in queued:  # compete with the series already waiting
        facts[series.id] = facts_from_files(series.series_uid, _series_files(session, settings, series))
    best = choose_best(list(facts.values()), settings.routing)
    for series_id in facts:
        series = session.get(Series, series_id)
        assert series is not None
        if series.series_uid == best.series_uid:
            series.state = "eligible"
            if not _has_active_job(session, series, ("queued",)):
                session.add(Job(series_id=series.id, kind="analyze", state="queued"))
                record_event(session, "job.queued", actor=actor, study_uid=study.study_uid,
                             series_uid=series.series_uid)
        else:
            for job in session.scalars(select(Job).where(Job.series_id == series.id, Job.state == "queued")):
                job.state, job.outcome, job.reason = "cancelled", "cancelled", "a better series arrived"
            series.state, series.eligible = "superseded", False
            why = preference_reason(best, facts[series_id], settings.routing)
            series.routing_reason = (f"superseded by series {best.series_number if best.series_number is not None else best.series_uid}"
                                     f" ({why}); {series.routing_reason}")
            _event_superseded(session, series, actor)


def _name(series: Series) -> str:
    return str(series.series_number) if series.series_number is not None else series.series_uid


def _has_active_job(session: Session, series: Series, states: tuple[str, ...]) -> bool:
    return session.scalars(select(Job.id).where(Job.series_id == series.id, Job.state.in_(states))).first() is not None


def _decide(session: Session, series: Series, eligible: bool, reason: str, actor: str) -> None:
    series.eligible = eligible
    series.routing_reason = reason
    series.routed_at = datetime.now(timezone.utc)
    record_event(session, "routing.decision", actor=actor, study_uid=series.study.study_uid,
                 series_uid=series.series_uid, detail={"eligible": eligible, "reason": reason})


def _event_superseded(session: Session, series: Series, actor: str) -> None:
    record_event(session, "routing.superseded", actor=actor, study_uid=series.study.study_uid,
                 series_uid=series.series_uid, detail={"reason": series.routing_reason})
