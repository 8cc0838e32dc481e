"""The intake service: Storage SCP plus the completion monitor, started and stopped together."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from screening_node.audit.db import Database
from screening_node.config import Settings
from screening_node.intake.completion import complete_due_series
from screening_node.intake.scp import StorageSCP
from screening_node.intake.store import InstanceStore

log = logging.getLogger(__name__)


class IntakeService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        for folder in (settings.spool_dir, settings.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.store = InstanceStore(db, settings.spool_dir, settings.quarantine_dir)
        self.scp = StorageSCP(settings, db, self.store)
        self._port: int | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("intake service is not started")
        return self._port

    def start(self) -> None:
        self._port = self.scp.start()
        self._monitor = threading.Thread(target=self._monitor_loop, name="completion-monitor", daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        self._stop.set()
        self.scp.stop()
        if self._monitor is not None:
            self._monitor.join(10)

    def check_completion(self, now: datetime | None = None) -> list[int]:
        """Complete and route every series that has been stable long enough."""
        with self.db.session() as session:
            return complete_due_series(session, self.settings, now)

    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.settings.intake.check_interval_s):
            try:
                self.check_completion()
            except Exception:
                log.exception("completion monitor: error; will retry")
