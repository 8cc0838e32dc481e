"""The same schema and queues on PostgreSQL: migrations, job claims with SKIP LOCKED, outbox claims."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from screening_node.audit import Database
from screening_node.audit.models import Base, Job, Series, Study
from screening_node.jobs import queue
from tests.postgres import postgres_server


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_migrations_build_the_model_schema_on_postgres(pg_url):
    db = Database(pg_url)
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()


def test_concurrent_workers_claim_each_job_once(pg_url):
    db = Database(pg_url)
    with db.session() as s:
        study = Study(study_uid="1.2.840.99.1", study_key="S-PGTEST")
        s.add(study)
        s.flush()
        for n in range(20):
            series = Series(study_id=study.id, series_uid=f"1.2.840.99.1.{n}", state="eligible")
            s.add(series)
            s.flush()
            s.add(Job(series_id=series.id, kind="analyze", state="queued"))
    claims: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            with db.session() as s:
                claimed = queue.claim_next(s, name)
            if claimed is None:
                return
            with lock:
                claims.append(claimed.job_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claims) == sorted(set(claims)) and len(claims) == 20
    db.dispose()


def test_outbox_enqueue_and_claim_on_postgres(pg_url, tmp_path):
    from screening_node.config import Destination
    from screening_node.delivery.outbox import claim_due, enqueue
    from tests.pacs import write_sc_objects

    db = Database(pg_url)
    files = write_sc_objects(tmp_path, count=6)
    destination = Destination("PACS", "127.0.0.1", 11112)
    with db.session() as s:
        assert len(enqueue(s, files, [destination])) == 6
    with db.session() as s:  # queueing again adds nothing (ON CONFLICT DO NOTHING)
        enqueue(s, files, [destination])
    claimed: list[int] = []
    lock = threading.Lock()

    def sender() -> None:
        with db.session() as s:
            got = claim_due(s, limit=4)
        with lock:
            claimed.extend(c.delivery_id for c in got)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 6
    db.dispose()
