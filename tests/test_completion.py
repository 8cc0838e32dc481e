"""Stable-age completion, routing in the database, superseded series, re-opening."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pydicom
from pydicom.uid import generate_uid

from screening_node.audit import Database
from screening_node.audit.models import Event, Job, Series
from screening_node.config import load_settings
from screening_node.intake.completion import complete_due_series
from screening_node.intake.store import InstanceStore
from tests.synthetic_ct import write_series


def _store_files(store: InstanceStore, files) -> None:
    for path in files:
        ds = pydicom.dcmread(path)
        outcome = store.store(path.read_bytes(), ds, transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
                              association_id=None, actor="TEST")
        assert outcome.status == 0


def test_best_series_is_queued_others_superseded_and_late_instance_reopens(tmp_path):
    settings = load_settings(None, {"storage.data_dir": str(tmp_path), "intake.stable_age_s": 30.0}, environ={})
    db = Database(settings.database_url)
    store = InstanceStore(db, settings.spool_dir, settings.quarantine_dir)
    study = generate_uid()
    thick = write_series(tmp_path / "thick", n_slices=45, spacing=3.0, study_uid=study, rows=8, columns=8)
    thin_uid = generate_uid()
    thin = write_series(tmp_path / "thin", n_slices=110, spacing=1.0, study_uid=study, rows=8, columns=8,
                        series_uid=thin_uid)
    scout = write_series(tmp_path / "scout", n_slices=1, study_uid=study, rows=8, columns=8,
                         image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    for files in (thick, thin[:-1], scout):
        _store_files(store, files)
    now = datetime.now(timezone.utc)
    assert complete_due_series(db.session().__enter__(), settings, now) == []  # not stable yet
    with db.session() as session:
        done = complete_due_series(session, settings, now + timedelta(seconds=31))
    assert len(done) == 3
    with db.session() as session:
        by_uid = {s.series_uid: s for s in session.query(Series)}
        states = sorted(s.state for s in by_uid.values())
        assert states == ["eligible", "skipped", "superseded"]
        assert by_uid[thin_uid].state == "eligible" and by_uid[thin_uid].eligible is True
        superseded = next(s for s in by_uid.values() if s.state == "superseded")
        assert superseded.eligible is False and "superseded by series" in superseded.routing_reason
        jobs = session.query(Job).all()
        assert [j.series_id for j in jobs] == [by_uid[thin_uid].id] and jobs[0].state == "queued"
    _store_files(store, thin[-1:])  # a late instance re-opens the chosen series and cancels its job
    with db.session() as session:
        series = session.query(Series).filter_by(series_uid=thin_uid).one()
        assert series.state == "receiving" and series.reopened_count == 1
        assert session.query(Job).one().state == "cancelled"
        assert session.query(Event).filter_by(kind="series.reopened").count() == 1
    with db.session() as session:
        complete_due_series(session, settings, datetime.now(timezone.utc) + timedelta(seconds=31))
    with db.session() as session:
        series = session.query(Series).filter_by(series_uid=thin_uid).one()
        assert series.state == "eligible" and series.instance_count == 110
        assert session.query(Job).filter_by(state="queued").count() == 1


def _route_study(tmp_path, *series_files, **settings_given) -> dict[str, tuple[str, str, list[str]]]:
    """Store the series, complete and route them: per series UID, its state, routing reason and job states."""
    settings = load_settings(None, {"storage.data_dir": str(tmp_path / "node"), "intake.stable_age_s": 30.0,
                                    **{f"routing.{k}": v for k, v in settings_given.items()}}, environ={})
    db = Database(settings.database_url)
    store = InstanceStore(db, settings.spool_dir, settings.quarantine_dir)
    for files in series_files:
        _store_files(store, files)
    with db.session() as session:
        complete_due_series(session, settings, datetime.now(timezone.utc) + timedelta(seconds=31))
    with db.session() as session:
        return {s.series_uid: (s.state, s.routing_reason, [j.state for j in session.query(Job).filter_by(series_id=s.id)])
                for s in session.query(Series)}


def _sagittal_reformat(folder, study: str, series_uid: str):
    """41 sagittal slabs 3 mm apart (123 mm across), 140 rows of 1 mm along the spine: a DERIVED MPR."""
    return write_series(folder, n_slices=41, spacing=3.0, rows=140, columns=8, study_uid=study, series_uid=series_uid,
                        orientation=(0, 1, 0, 0, 0, -1), origin=(60.0, -4.0, 0.0),
                        image_type=("DERIVED", "SECONDARY", "MPR"))


def _axial_and_reformat(tmp_path, n_slices: int, spacing: float, **settings_given):
    """One study: an axial series of ``n_slices`` ``spacing`` mm apart and a sagittal reformat, routed; the
    routing outcome per series UID, and the axial and sagittal series UIDs."""
    study, sagittal_uid, axial_uid = generate_uid(), generate_uid(), generate_uid()
    axial = write_series(tmp_path / "axial", n_slices=n_slices, spacing=spacing, study_uid=study,
                         series_uid=axial_uid, rows=8, columns=8)
    reformat = _sagittal_reformat(tmp_path / "sagittal", study, sagittal_uid)
    return _route_study(tmp_path, axial, reformat, **settings_given), axial_uid, sagittal_uid


def test_a_sagittal_reformat_is_screened_when_the_axial_slices_are_too_thick(tmp_path):
    routed, axial_uid, sagittal_uid = _axial_and_reformat(tmp_path, 45, 5.0)
    assert routed[axial_uid][0] == "skipped" and "exceeds 3.5 mm" in routed[axial_uid][1]
    state, reason, jobs = routed[sagittal_uid]
    assert state == "eligible" and "where no axial series is" in reason, reason
    assert jobs == ["queued"]


def test_an_eligible_axial_series_supersedes_the_sagittal_reformat(tmp_path):
    routed, axial_uid, sagittal_uid = _axial_and_reformat(tmp_path, 60, 3.0)
    assert routed[axial_uid][0] == "eligible" and routed[axial_uid][2] == ["queued"]
    state, reason, jobs = routed[sagittal_uid]
    assert state == "superseded" and "an axial series before a sagittal reformat" in reason and jobs == []


def test_a_department_may_screen_the_reformat_before_thick_axial_slices(tmp_path):
    routed, axial_uid, sagittal_uid = _axial_and_reformat(tmp_path, 60, 3.0, sagittal_before_axial_thicker_than_mm=2.5)
    assert routed[sagittal_uid][0] == "eligible" and routed[sagittal_uid][2] == ["queued"]
    state, reason, _ = routed[axial_uid]
    assert state == "superseded" and "a sagittal series before axial slices thicker than 2.5 mm" in reason
