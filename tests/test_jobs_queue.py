"""The job queue: one claim per job, leases that expire, a crash limit, outcomes recorded."""

from datetime import timedelta

from screening_node.audit import Database
from screening_node.audit.models import Event, Job, Series, Study
from screening_node.jobs import queue


def _db_with_job(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    with db.session() as s:
        study = Study(study_uid="1.2.3", study_key="S-TEST")
        series = Series(study=study, series_uid="1.2.3.4", state="eligible", eligible=True)
        s.add_all([study, series])
        s.flush()
        s.add(Job(series_id=series.id, kind="analyze", state="queued"))
    return db


def test_a_job_is_claimed_once(tmp_path):
    db = _db_with_job(tmp_path)
    with db.session() as s:
        first = queue.claim_next(s, "w1")
    with db.session() as s:
        second = queue.claim_next(s, "w2")
    assert first is not None and first.series_uid == "1.2.3.4" and first.attempt == 1
    assert second is None


def test_expired_lease_is_taken_over_and_crash_limit_fails_the_job(tmp_path):
    db = _db_with_job(tmp_path)
    now = queue.utcnow()
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        with db.session() as s:
            claimed = queue.claim_next(s, f"w{attempt}", now=now, lease=timedelta(seconds=1))
        assert claimed is not None and claimed.attempt == attempt
        now += timedelta(seconds=5)  # the worker died: its lease expires
    with db.session() as s:
        assert queue.claim_next(s, "w-last", now=now) is None
        job = s.query(Job).one()
        assert job.state == "failed" and "gave up after" in job.reason
        assert s.query(Series).one().state == "failed"
        kinds = [e.kind for e in s.query(Event).order_by(Event.id)]
        assert kinds.count("job.lease_expired") == queue.MAX_ATTEMPTS and kinds[-1] == "job.failed"


def test_finish_records_outcome_on_series_and_study(tmp_path):
    db = _db_with_job(tmp_path)
    with db.session() as s:
        claimed = queue.claim_next(s, "w1")
    with db.session() as s:
        queue.finish(s, claimed.job_id, outcome="not_assessable", reason="gantry tilt", result_dir=None,
                     worker_id="w1")
    with db.session() as s:
        job = s.query(Job).one()
        assert (job.state, job.outcome, job.reason) == ("done", "not_assessable", "gantry tilt")
        assert s.query(Series).one().state == "not_assessable"
        assert s.query(Study).one().state == "not_assessable"
