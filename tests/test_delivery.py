"""Delivery to a real PACS (Orthanc on loopback): arrival, outage and retry, restart of the node."""

from __future__ import annotations

import time
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlalchemy import func, select

from screening_node.audit.db import Database
from screening_node.audit.models import Delivery, DeliveryAttempt, Event
from screening_node.config import Settings, load_settings
from screening_node.delivery.outbox import claim_due, enqueue
from screening_node.delivery.service import DeliveryService
from tests.pacs import Orthanc, write_sc_objects
from tests.synthetic_ct import write_series


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Orthanc:
    server = Orthanc(tmp_path_factory.mktemp("orthanc"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def pacs(orthanc: Orthanc) -> Orthanc:
    """The module's Orthanc, running and empty."""
    orthanc.start()
    orthanc.clear()
    return orthanc


def node_settings(data_dir: Path, destination: str, **delivery: object) -> Settings:
    overrides = {"storage.data_dir": str(data_dir), "delivery.destinations": [destination],
                 "delivery.backoff_initial_s": 0.2, "delivery.backoff_max_s": 0.5,
                 "delivery.poll_interval_s": 0.1, "delivery.calling_ae_title": "SCREENTEST"}
    overrides.update({f"delivery.{k}": v for k, v in delivery.items()})
    return load_settings(None, overrides, environ={})


def wait_for(predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


def states(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Delivery.state).order_by(Delivery.id)))


def test_objects_arrive_in_orthanc_once_per_destination(pacs: Orthanc, tmp_path: Path) -> None:
    settings = node_settings(tmp_path / "node", pacs.destination)
    db = Database(settings.database_url)
    sc_files = write_sc_objects(tmp_path / "objects", 3)
    ct_files = write_series(tmp_path / "ct", n_slices=2)  # CT, as if forwarded
    files = sc_files + ct_files
    with db.session() as session:
        first = [d.id for d in enqueue(session, files, settings.delivery.destinations)]
    with db.session() as session:  # idempotent: the same objects again add nothing
        again = [d.id for d in enqueue(session, files, settings.delivery.destinations)]
        assert session.scalar(select(func.count()).select_from(Delivery)) == len(files)
    assert again == first

    service = DeliveryService(settings, db)
    assert service.run_once() == len(files)
    assert states(db) == ["sent"] * len(files)
    assert service.run_once() == 0

    expected = {str(dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in files}
    stored = pacs.sop_instance_uids()
    assert sorted(stored) == sorted(expected)
    for orthanc_id in pacs.instances():  # the PACS holds what we sent, byte-compatible data sets
        tags = pacs.instance_tags(orthanc_id)
        source = dcmread(expected[tags["SOPInstanceUID"]], stop_before_pixels=True)
        assert tags["SOPClassUID"] == source.SOPClassUID
        assert tags["StudyInstanceUID"] == source.StudyInstanceUID
    with db.session() as session:
        attempts = session.scalars(select(DeliveryAttempt)).all()
        assert [a.outcome for a in attempts] == ["success"] * len(files)
        events = session.scalars(select(Event).where(Event.kind == "delivery.attempt")).all()
        assert len(events) == len(files) and all(e.outcome == "ok" for e in events)
        assert all("Delivery^Test" not in (e.detail or "") and "DLV-TEST" not in (e.detail or "") for e in events)
    db.dispose()


def test_pacs_outage_retries_with_backoff_then_delivers_exactly_once(pacs: Orthanc, tmp_path: Path) -> None:
    settings = node_settings(tmp_path / "node", pacs.destination, max_attempts=50)
    db = Database(settings.database_url)
    files = write_sc_objects(tmp_path / "objects", 3)
    with db.session() as session:
        enqueue(session, files, settings.delivery.destinations, study_uid=None)
    pacs.stop()
    service = DeliveryService(settings, db, jitter=0.0)
    before = time.time()
    assert service.run_once() == 3
    with db.session() as session:
        rows = session.scalars(select(Delivery)).all()
        assert [r.state for r in rows] == ["pending"] * 3 and [r.attempts for r in rows] == [1] * 3
        assert all("127.0.0.1" in (r.last_error or "") for r in rows)
        for row in rows:  # first retry backoff_initial_s (0.2 s) after the failed attempt
            wait = row.next_attempt_at.replace(tzinfo=timezone.utc).timestamp() - before
            assert 0.2 <= wait < 2.0
    assert service.run_once() == 0  # not due yet: backoff holds it back

    service.start()
    try:
        wait_for(lambda: _attempts(db) >= 9)  # at least three failed rounds while the PACS is away
        pacs.start()
        wait_for(lambda: states(db) == ["sent"] * 3)
    finally:
        service.stop()
    assert sorted(pacs.sop_instance_uids()) == sorted(str(dcmread(f).SOPInstanceUID) for f in files)
    with db.session() as session:
        for row in session.scalars(select(Delivery)):
            outcomes = [a.outcome for a in session.scalars(select(DeliveryAttempt)
                                                           .where(DeliveryAttempt.delivery_id == row.id)
                                                           .order_by(DeliveryAttempt.id))]
            assert outcomes[-1] == "success" and outcomes.count("success") == 1
            assert set(outcomes[:-1]) == {"network_error"} and len(outcomes) >= 3
            assert row.attempts == len(outcomes)
        n_events = session.scalar(select(func.count()).select_from(Event).where(Event.kind == "delivery.attempt"))
        assert n_events == session.scalar(select(func.count()).select_from(DeliveryAttempt))
    db.dispose()


def _attempts(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0)


def test_pending_and_interrupted_deliveries_survive_a_restart(pacs: Orthanc, tmp_path: Path) -> None:
    settings = node_settings(tmp_path / "node", pacs.destination)
    files = write_sc_objects(tmp_path / "objects", 4)
    first = Database(settings.database_url)
    with first.session() as session:
        enqueue(session, files, settings.delivery.destinations)
    with first.session() as session:  # a sender claims one object and dies before sending it
        interrupted = claim_due(session, lease=timedelta(seconds=1), limit=1)
    assert len(interrupted) == 1
    first.dispose()

    second = Database(settings.database_url)
    service = DeliveryService(settings, second)
    assert service.run_once() == 3  # the claimed one is left alone while its lease runs
    assert states(second).count("sent") == 3
    wait_for(lambda: service.run_once() == 1, timeout_s=10)  # lease over: retried
    assert states(second) == ["sent"] * 4
    assert len(pacs.instances()) == 4
    second.dispose()


def test_report_objects_from_the_reporting_writers_are_accepted_by_orthanc(pacs: Orthanc, tmp_path: Path) -> None:
    """The node's own SEG, TID 1500 SR and summary image, as the worker queues them, land in the PACS."""
    from screening_node.reporting import write_report_objects
    from tests.test_reporting import prepare_report_inputs

    ct_paths, ct, result_dir, result = prepare_report_inputs(tmp_path)
    objects = write_report_objects(result, result_dir, [dcmread(p, stop_before_pixels=True) for p in ct_paths], ct)
    files = list(objects.dicom_paths)
    assert len(files) >= 2

    settings = node_settings(tmp_path / "node", pacs.destination)
    db = Database(settings.database_url)
    with db.session() as session:
        enqueue(session, files, settings.delivery.destinations)
    assert DeliveryService(settings, db).run_once() == len(files)
    assert states(db) == ["sent"] * len(files)
    sent_classes = sorted(str(dcmread(f, stop_before_pixels=True).SOPClassUID) for f in files)
    assert sorted(pacs.instance_tags(i)["SOPClassUID"] for i in pacs.instances()) == sent_classes
    assert "1.2.840.10008.5.1.4.1.1.66.4" in sent_classes  # Segmentation Storage
    assert {"1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.22"} & set(sent_classes)  # 3D / Enhanced SR
    db.dispose()
