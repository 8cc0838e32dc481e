"""The analysis worker: claim a job, build the volume, analyse, report, queue delivery.

Every job ends as ``reported``, ``not_assessable`` (with the reason) or
``failed`` (with the error); an exception in one study is recorded and the
worker carries on with the next.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from screening_node.audit.db import Database
from screening_node.audit.events import record_event, study_key
from screening_node.audit.models import Instance
from screening_node.config import Settings
from screening_node.errors import NotAssessable
from screening_node.jobs import queue
from screening_node.jobs.queue import ClaimedJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    outcome: str  # reported, not_assessable, failed
    reason: str | None
    result_dir: Path | None


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class AnalysisWorker:
    """Runs analysis jobs from the database queue, one at a time, in a background thread."""

    def __init__(self, settings: Settings, db: Database, *, worker_id: str | None = None,
                 poll_interval_s: float = 0.5,
                 on_finished: Callable[[JobOutcome], None] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.worker_id = worker_id or default_worker_id()
        self.poll_interval_s = poll_interval_s
        self.on_finished = on_finished
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="analysis-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    self._stop.wait(self.poll_interval_s)
            except Exception:  # the queue itself failed (database down): keep trying
                log.exception("analysis worker: queue error; retrying")
                self._stop.wait(max(self.poll_interval_s, 2.0))

    # -- work --------------------------------------------------------------
    def run_once(self) -> bool:
        """Claim and process one job; False when none was due."""
        with self.db.session() as session:
            claimed = queue.claim_next(session, self.worker_id)
        if claimed is None:
            return False
        outcome = self.process(claimed)
        if self.on_finished is not None:
            self.on_finished(outcome)
        return True

    def process(self, job: ClaimedJob) -> JobOutcome:
        key = study_key(job.study_uid)
        result_dir = self.settings.results_dir / key / f"series-{job.series_id}-job-{job.job_id}"
        started = time.monotonic()
        try:
            outcome, reason = self._analyse_and_report(job, result_dir)
        except Exception as exc:  # one bad study never stops the node
            outcome, reason = "failed", f"{type(exc).__name__}: {exc}"
            log.error("study %s job %d failed: %s\n%s", key, job.job_id, reason, traceback.format_exc())
        with self.db.session() as session:
            queue.finish(session, job.job_id, outcome=outcome, reason=reason,
                         result_dir=str(result_dir) if result_dir.exists() else None,
                         worker_id=self.worker_id)
        log.info("study %s job %d: %s%s (%.1f s)", key, job.job_id, outcome,
                 f" ({reason})" if reason else "", time.monotonic() - started)
        return JobOutcome(job.job_id, outcome, reason, result_dir if result_dir.exists() else None)

    def _series_files(self, series_id: int) -> list[Path]:
        with self.db.session() as session:
            paths = session.scalars(select(Instance.path).where(Instance.series_id == series_id)).all()
        return [self.settings.spool_dir / p for p in paths]

    def _analyse_and_report(self, job: ClaimedJob, result_dir: Path) -> tuple[str, str | None]:
        # Imported on first use: the node starts receiving before the analysis stack is loaded.
        from screening_node.analysis.pipeline import analyze_volume, load_for_analysis
        files = self._series_files(job.series_id)
        try:
            volume = load_for_analysis(files)
        except NotAssessable as exc:
            self._record(job, "volume.not_assessable", "warning", {"reason": exc.reason})
            return "not_assessable", exc.reason
        from screening_node.delivery.outbox import enqueue
        from screening_node.reporting import write_report_objects
        self._record(job, "volume.built", "ok", {"size": list(volume.image.GetSize()),
                                                  "problems": list(volume.problems)})
        result = analyze_volume(volume, result_dir, engine=self.settings.analysis.engine,
                                suspect_min_grade=self.settings.analysis.suspect_min_grade)
        self._record(job, "analysis.finished", "ok", {"status": result.status, "reason": result.reason,
                                                       "max_grade": result.max_grade,
                                                       "max_grade_range": result.max_grade_range,
                                                       "vertebrae": len(result.vertebrae)})
        objects = write_report_objects(result, result_dir, volume.reference_datasets, volume.image)
        files_to_send = list(objects.dicom_paths)
        self._record(job, "report.written", "ok", {"objects": [p.name for p in files_to_send],
                                                    "absent": dict(objects.missing)})
        destinations = self.settings.delivery.destinations
        if destinations and files_to_send:
            with self.db.session() as session:
                enqueue(session, files_to_send, destinations, job_id=job.job_id, study_uid=job.study_uid)
        if result.status == "reported":
            return "reported", None
        return "not_assessable", result.reason

    def _record(self, job: ClaimedJob, kind: str, outcome: str, detail: dict) -> None:
        with self.db.session() as session:
            record_event(session, kind, outcome=outcome, actor=self.worker_id, study_uid=job.study_uid,
                         series_uid=job.series_uid, detail={"job_id": job.job_id, **detail})
