"""The analysis worker: every job ends with an outcome and a reason; a bad study never stops it."""

from __future__ import annotations

import pydicom

from screening_node.audit import Database
from screening_node.audit.models import Event, Job, Series
from screening_node.config import load_settings
from screening_node.intake.completion import mark_complete
from screening_node.intake.store import InstanceStore
from screening_node.jobs.worker import AnalysisWorker
from tests.synthetic_ct import write_series


def test_unsound_series_ends_not_assessable_with_reason_and_worker_continues(tmp_path):
    # the missing slice leaves a 4 mm step: allowed by routing here, so that the loader is what refuses it
    settings = load_settings(None, {"storage.data_dir": str(tmp_path / "data"), "routing.min_slices": 3,
                                    "routing.min_z_coverage_mm": 1.0, "routing.max_slice_spacing_mm": 5.0},
                             environ={})
    db = Database(settings.database_url)
    store = InstanceStore(db, settings.spool_dir, settings.quarantine_dir)
    files = write_series(tmp_path / "s", n_slices=6, spacing=2.0)
    for path in files[:2] + files[3:]:  # slice 3 never arrives: a gap
        ds = pydicom.dcmread(path)
        store.store(path.read_bytes(), ds, transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
                    association_id=None, actor="TEST")
    with db.session() as session:
        series = session.query(Series).one()
        mark_complete(session, settings, series, forced=True, actor="test")
    with db.session() as session:
        series = session.query(Series).one()
        assert series.state == "eligible", series.routing_reason  # the gap is not a routing question
    outcomes = []
    worker = AnalysisWorker(settings, db, worker_id="w-test", on_finished=outcomes.append)
    assert worker.run_once() is True
    assert worker.run_once() is False  # nothing else queued
    assert outcomes[0].outcome == "not_assessable" and "gap in the slice positions" in outcomes[0].reason
    with db.session() as session:
        job = session.query(Job).one()
        assert (job.state, job.outcome) == ("done", "not_assessable")
        assert session.query(Series).one().state == "not_assessable"
        kinds = [e.kind for e in session.query(Event).order_by(Event.id)]
        assert "volume.not_assessable" in kinds and kinds[-1] == "job.not_assessable"
    from tests.node_process import cli
    import json

    events = json.loads(cli("audit", "--json", "--data-dir", str(tmp_path / "data"), "--kind", "job").stdout)
    assert [e["kind"] for e in events] == ["job.queued", "job.claimed", "job.not_assessable"]
    assert events[-1]["detail"]["reason"].startswith("gap in the slice positions")
