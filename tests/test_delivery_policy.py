"""Delivery policy against a real DICOM peer that refuses: pynetdicom SCP in-process.

Backoff schedule, status classification, refusal -> dead letter after the
documented attempts, one association per destination per batch, presentation
contexts, network errors up to max_attempts, and the ``outbox`` CLI.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, SecondaryCaptureImageStorage
from pynetdicom import AE, evt
from sqlalchemy import select

from screening_node.audit.db import Database
from screening_node.audit.models import Delivery, DeliveryAttempt, Event
from screening_node.cli import main as cli_main
from screening_node.config import Settings, load_settings
from screening_node.delivery.backoff import (REFUSAL_MAX_ATTEMPTS, backoff_delay, classify_status,
                                             refusal_attempt_limit)
from screening_node.delivery.outbox import DeliveryError, enqueue, utcnow
from screening_node.delivery.service import DeliveryService
from tests.pacs import _free_port, write_sc_objects
from tests.synthetic_ct import write_series


class Peer:
    """A C-STORE SCP answering every object with ``status``; counts associations and stores."""

    def __init__(self, status: int, sop_classes=(SecondaryCaptureImageStorage, CTImageStorage),
                 transfer_syntaxes=(ExplicitVRLittleEndian, ImplicitVRLittleEndian)) -> None:
        self.status = status
        self.associations = 0
        self.stored: list[str] = []
        self.transfer_syntaxes: list[str] = []
        self.port = _free_port()
        ae = AE(ae_title="REFUSER")
        for sop in sop_classes:
            ae.add_supported_context(sop, list(transfer_syntaxes))
        handlers = [(evt.EVT_C_STORE, self._store), (evt.EVT_ACCEPTED, self._accepted)]
        self._lock = threading.Lock()
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)

    @property
    def destination(self) -> str:
        return f"REFUSER@127.0.0.1:{self.port}"

    def _accepted(self, event) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            self.associations += 1

    def _store(self, event) -> int:  # type: ignore[no-untyped-def]
        with self._lock:
            self.stored.append(str(event.request.AffectedSOPInstanceUID))
            self.transfer_syntaxes.append(str(event.context.transfer_syntax))
        return self.status

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def peer_factory():  # type: ignore[no-untyped-def]
    peers: list[Peer] = []

    def make(status: int, **kwargs) -> Peer:  # type: ignore[no-untyped-def]
        peers.append(Peer(status, **kwargs))
        return peers[-1]
    yield make
    for peer in peers:
        peer.close()


def settings_for(tmp_path: Path, destination: str, **delivery: object) -> Settings:
    overrides = {"storage.data_dir": str(tmp_path / "node"), "delivery.destinations": [destination],
                 "delivery.backoff_initial_s": 0.1, "delivery.backoff_max_s": 0.4, "delivery.max_attempts": 8}
    overrides.update({f"delivery.{k}": v for k, v in delivery.items()})
    return load_settings(None, overrides, environ={})


def drain(service: DeliveryService, rounds: int) -> None:
    """Run ``rounds`` rounds, each an hour after the last, so backoff never makes a test wait."""
    start = utcnow()
    for n in range(rounds):
        service.run_once(now=start + timedelta(hours=n))


def rows(db: Database) -> list[Delivery]:
    with db.session() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def attempts_of(db: Database, delivery_id: int) -> list[DeliveryAttempt]:
    with db.session() as session:
        return list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                                    .order_by(DeliveryAttempt.id)))


def test_backoff_schedule_doubles_from_initial_and_caps() -> None:
    assert [backoff_delay(n, 5, 600) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert backoff_delay(1000, 5, 600) == 600
    jittered = [backoff_delay(n, 5, 600, jitter=0.1, key=42) for n in range(1, 8)]
    assert jittered == [backoff_delay(n, 5, 600, jitter=0.1, key=42) for n in range(1, 8)]  # deterministic
    for n, delay in enumerate(jittered, start=1):
        assert min(5 * 2 ** (n - 1), 600) <= delay <= min(5 * 2 ** (n - 1) * 1.1, 600)
    assert len({backoff_delay(1, 5, 600, jitter=0.1, key=k) for k in range(20)}) > 10  # spread between rows
    with pytest.raises(ValueError):
        backoff_delay(0, 5, 600)


def test_status_classification_policy() -> None:
    for ok in (0x0000, 0xB000, 0xB006, 0xB007):
        assert classify_status(ok) == "success"
    for permanent in (0xA900, 0xA9FF, 0xC000, 0xC123, 0x0122, 0x0117, 0x0124):
        assert classify_status(permanent) == "permanent"
    for transient in (0xA700, 0xA7FF, 0x0110, 0x0211):
        assert classify_status(transient) == "transient_refusal"
    assert refusal_attempt_limit(8) == REFUSAL_MAX_ATTEMPTS and refusal_attempt_limit(1) == 1


def test_out_of_resources_refusal_goes_dead_after_limited_attempts(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0xA700)
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    files = write_sc_objects(tmp_path / "objects", 3)
    with db.session() as session:
        enqueue(session, files, settings.delivery.destinations)
    service = DeliveryService(settings, db)
    drain(service, REFUSAL_MAX_ATTEMPTS + 2)
    assert peer.associations == REFUSAL_MAX_ATTEMPTS  # one association per batch, not per object
    assert len(peer.stored) == 3 * REFUSAL_MAX_ATTEMPTS
    for row in rows(db):
        assert row.state == "dead" and row.attempts == REFUSAL_MAX_ATTEMPTS
        assert "0xA700" in row.last_error and "refused 3 times" in row.last_error
        tries = attempts_of(db, row.id)
        assert [(a.outcome, a.status_code) for a in tries] == [("failure_status", 0xA700)] * REFUSAL_MAX_ATTEMPTS
    with db.session() as session:
        dead_events = session.scalars(select(Event).where(Event.kind == "delivery.dead")).all()
        assert len(dead_events) == 3 and all(e.outcome == "failure" for e in dead_events)
    db.dispose()


def test_permanent_refusal_is_dead_after_one_attempt(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0xA900)
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    with db.session() as session:
        enqueue(session, write_sc_objects(tmp_path / "objects", 2), settings.delivery.destinations)
    drain(DeliveryService(settings, db), 3)
    assert peer.associations == 1
    assert [(r.state, r.attempts) for r in rows(db)] == [("dead", 1)] * 2
    assert all("0xA900" in r.last_error and "permanent" in r.last_error for r in rows(db))
    db.dispose()


def test_warning_status_counts_as_sent(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0xB007)
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    with db.session() as session:
        enqueue(session, write_sc_objects(tmp_path / "objects", 1), settings.delivery.destinations)
    drain(DeliveryService(settings, db), 2)
    [row] = rows(db)
    assert row.state == "sent" and row.attempts == 1 and "0xB007" in row.last_error
    db.dispose()


def test_sop_class_not_accepted_by_peer_is_dead_with_reason(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0x0000, sop_classes=(CTImageStorage,))
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    ct = write_series(tmp_path / "ct", n_slices=2)
    sc = write_sc_objects(tmp_path / "objects", 1)
    with db.session() as session:
        enqueue(session, ct + sc, settings.delivery.destinations)
    drain(DeliveryService(settings, db), 2)
    assert [r.state for r in rows(db)] == ["sent", "sent", "dead"]  # CT goes, SC has no accepted context
    assert "did not accept SOP class" in rows(db)[2].last_error
    assert len(peer.stored) == 2 and peer.associations == 1
    db.dispose()


def test_implicit_only_peer_gets_reencoded_objects(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0x0000, transfer_syntaxes=(ImplicitVRLittleEndian,))
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    with db.session() as session:
        enqueue(session, write_sc_objects(tmp_path / "objects", 1), settings.delivery.destinations)
    drain(DeliveryService(settings, db), 1)
    assert [r.state for r in rows(db)] == ["sent"]
    assert peer.transfer_syntaxes == [ImplicitVRLittleEndian]
    db.dispose()


def test_unreachable_destination_gives_up_after_max_attempts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"NOBODY@127.0.0.1:{_free_port()}", max_attempts=3)
    db = Database(settings.database_url)
    with db.session() as session:
        enqueue(session, write_sc_objects(tmp_path / "objects", 2), settings.delivery.destinations)
    drain(DeliveryService(settings, db, timeout_s=5), 5)
    for row in rows(db):
        assert row.state == "dead" and row.attempts == 3 and "gave up after 3 attempts" in row.last_error
        assert [a.outcome for a in attempts_of(db, row.id)] == ["network_error"] * 3
    db.dispose()


def test_bad_files_are_refused_at_enqueue_or_dead_at_send(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0x0000)
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    with pytest.raises(DeliveryError, match="not a readable DICOM file"), db.session() as session:
        enqueue(session, [junk], settings.delivery.destinations)
    [gone] = write_sc_objects(tmp_path / "objects", 1)
    with db.session() as session:
        enqueue(session, [gone], settings.delivery.destinations)
    gone.unlink()
    drain(DeliveryService(settings, db), 2)
    [row] = rows(db)
    assert row.state == "dead" and row.attempts == 1 and "no longer exists" in row.last_error
    assert peer.associations == 0
    db.dispose()


def test_outbox_cli_lists_and_requeues_dead_letters(peer_factory, tmp_path: Path, capsys) -> None:
    peer = peer_factory(0xC000)
    settings = settings_for(tmp_path, peer.destination)
    db = Database(settings.database_url)
    with db.session() as session:
        enqueue(session, write_sc_objects(tmp_path / "objects", 2), settings.delivery.destinations)
    drain(DeliveryService(settings, db), 1)
    data_dir = ["--data-dir", str(settings.data_dir)]

    assert cli_main(["outbox", "--json", *data_dir]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(d["state"], d["attempts"]) for d in listed] == [("dead", 1)] * 2
    assert "0xC000" in listed[0]["last_error"] and listed[0]["destination"] == peer.destination

    assert cli_main(["outbox", "--retry", str(listed[0]["id"]), *data_dir]) == 0
    assert "requeued 1 delivery" in capsys.readouterr().out
    assert cli_main(["outbox", "--retry", str(listed[0]["id"]), *data_dir]) == 1  # pending now, not dead
    assert "not dead" in capsys.readouterr().err
    assert cli_main(["outbox", "--retry-dead", *data_dir]) == 0
    assert "requeued 1 delivery" in capsys.readouterr().out

    peer.status = 0x0000  # the PACS was fixed
    drain(DeliveryService(settings, db), 1)
    assert cli_main(["outbox", *data_dir]) == 0
    table = capsys.readouterr().out
    assert table.count(" sent ") == 2
    with db.session() as session:
        requeued = session.scalars(select(Event).where(Event.kind == "delivery.requeued")).all()
        assert len(requeued) == 2 and {e.actor for e in requeued} == {"cli"}
    assert [(r.state, r.attempts) for r in rows(db)] == [("sent", 1)] * 2  # attempts restart after requeue
    db.dispose()


def test_two_senders_on_one_database_send_each_object_once(peer_factory, tmp_path: Path) -> None:
    peer = peer_factory(0x0000)
    settings = settings_for(tmp_path, peer.destination)
    setup = Database(settings.database_url)
    with setup.session() as session:
        enqueue(session, write_sc_objects(tmp_path / "objects", 24), settings.delivery.destinations)
    setup.dispose()
    databases = [Database(settings.database_url) for _ in range(2)]  # own engines, as two processes would
    services = [DeliveryService(settings, db, batch_size=4) for db in databases]
    counts = [0, 0]
    barrier = threading.Barrier(2)

    def sender(index: int) -> None:
        barrier.wait()
        while (attempted := services[index].run_once()) > 0:
            counts[index] += attempted

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(counts) == 24 and sorted(peer.stored) == sorted(set(peer.stored)) and len(peer.stored) == 24
    assert [(r.state, r.attempts) for r in rows(databases[0])] == [("sent", 1)] * 24
    for db in databases:
        db.dispose()


def test_two_processes_queueing_the_same_objects_both_succeed_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "PACS@127.0.0.1:11112")
    files = write_sc_objects(tmp_path / "objects", 6)
    databases = [Database(settings.database_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    returned: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def queue(index: int) -> None:
        barrier.wait()
        try:
            with databases[index].session() as session:
                returned[index] = [d.id for d in enqueue(session, files, settings.delivery.destinations)]
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=queue, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert returned[0] == returned[1] and len(set(returned[0])) == 6
    assert len(rows(databases[0])) == 6
    with databases[0].session() as session:
        queued = session.scalars(select(Event).where(Event.kind == "delivery.queued")).all()
        assert sorted(json.loads(e.detail)["new_deliveries"] for e in queued) == [0, 6]
    for db in databases:
        db.dispose()
