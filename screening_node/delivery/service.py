"""The delivery service: a background thread that sends due outbox rows to the PACS.

``run_once`` is the unit of work (claim due rows, one association per
destination, record every result); ``start``/``stop`` wrap it in a polling
thread so ``serve`` can run it beside intake and the analysis worker. State
lives only in the database: a new service on the same database picks up
where the last one stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import defaultdict
from datetime import datetime, timedelta

from screening_node.audit.db import Database
from screening_node.config import Destination, Settings
from screening_node.delivery.backoff import DEFAULT_JITTER
from screening_node.delivery.outbox import DEFAULT_LEASE, ClaimedDelivery, claim_due, record_result, utcnow
from screening_node.delivery.scu import OutgoingObject, SendResult, send_batch

log = logging.getLogger(__name__)


class DeliveryService:
    """Sends the outbox; safe to run in several processes against one database."""

    def __init__(self, settings: Settings, db: Database, *, batch_size: int = 64,
                 lease: timedelta = DEFAULT_LEASE, jitter: float = DEFAULT_JITTER,
                 timeout_s: float | None = None) -> None:
        self.settings = settings
        self.db = db
        self.batch_size = batch_size
        self.lease = lease
        self.jitter = jitter
        self.timeout_s = timeout_s if timeout_s is not None else min(settings.node.network_timeout_s, 30.0)
        self.actor = f"delivery:{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> int:
        """Send every due delivery (up to one batch); returns how many were attempted."""
        with self.db.session() as session:
            claims = claim_due(session, now=now, lease=self.lease, limit=self.batch_size)
        if not claims:
            return 0
        by_destination: dict[str, list[ClaimedDelivery]] = defaultdict(list)
        for claim in claims:
            by_destination[claim.destination].append(claim)
        for destination, group in by_destination.items():
            results = self._send(destination, group)
            finished_at = now if now is not None else utcnow()
            with self.db.session() as session:
                states = [record_result(session, claim, results[claim.delivery_id], self.settings.delivery,
                                        now=finished_at, actor=self.actor, jitter=self.jitter)
                          for claim in group]
            log.info("delivery to %s: %d sent, %d to retry, %d dead", destination, states.count("sent"),
                     states.count("pending"), states.count("dead"))
        return len(claims)

    def _send(self, destination: str, group: list[ClaimedDelivery]) -> dict[int, SendResult]:
        results: dict[int, SendResult] = {}
        sendable = []
        for claim in group:
            if claim.path.is_file():
                sendable.append(OutgoingObject(claim.delivery_id, claim.path, claim.sop_class_uid))
            else:
                results[claim.delivery_id] = SendResult("local_error", None, f"file {claim.path} no longer exists")
        if sendable:
            try:
                target = Destination.parse(destination)
            except Exception as exc:  # a hand-edited row; never let it stop the loop
                return {**results, **{o.key: SendResult("local_error", None, str(exc)) for o in sendable}}
            results.update(send_batch(target, sendable, calling_ae_title=self.settings.delivery.calling_ae_title,
                                      timeout_s=self.timeout_s, max_pdu=self.settings.node.max_pdu))
        return results

    def start(self) -> None:
        """Poll for due deliveries every ``delivery.poll_interval_s`` in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask the loop to stop after the current batch and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                attempted = self.run_once()
            except Exception:  # a database hiccup must not end delivery for good
                log.exception("delivery round failed; trying again in %.1f s",
                              self.settings.delivery.poll_interval_s)
                attempted = 0
            if attempted < self.batch_size:
                self._stop.wait(self.settings.delivery.poll_interval_s)
