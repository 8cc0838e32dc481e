"""The whole node in one process: receive, complete, route, analyse, report, deliver.

``serve`` and ``demo`` both run this. Each part is its own service with
``start()``/``stop()``; they share nothing but the settings and the database,
so the same parts can later run as separate processes (``worker``) against
one PostgreSQL database.
"""

from __future__ import annotations

import logging

from screening_node.audit.db import Database
from screening_node.config import Settings
from screening_node.delivery.service import DeliveryService
from screening_node.intake.service import IntakeService
from screening_node.jobs.worker import AnalysisWorker

log = logging.getLogger(__name__)


class Node:
    def __init__(self, settings: Settings, *, analyse: bool = True, deliver: bool = True) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.intake = IntakeService(settings, self.db)
        self.worker = AnalysisWorker(settings, self.db) if analyse else None
        self.delivery = DeliveryService(settings, self.db) if deliver else None

    @property
    def port(self) -> int:
        return self.intake.port

    def start(self) -> None:
        self.intake.start()
        if self.worker is not None:
            self.worker.start()
        if self.delivery is not None:
            self.delivery.start()
        destinations = ", ".join(str(d) for d in self.settings.delivery.destinations) or "none (results stay on disk)"
        log.info("node %s listening on port %d; data in %s; destinations: %s",
                 self.settings.node.ae_title, self.port, self.settings.data_dir, destinations)

    def stop(self) -> None:
        self.intake.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.delivery is not None:
            self.delivery.stop()
        self.db.dispose()
