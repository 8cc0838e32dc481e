"""The Storage SCP: pynetdicom application entity and its event handlers.

Accepts C-ECHO and C-STORE of CT and Enhanced CT images only (anything else is
refused at negotiation), in every common lossless and lossy encoding. The
received encoding is stored byte for byte; decoding happens at reconstruction.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any

import pynetdicom
from pydicom.uid import (UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000, JPEG2000Lossless, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless,
                         JPEGLSNearLossless, RLELossless)
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from screening_node.audit.db import Database
from screening_node.audit.events import record_event
from screening_node.audit.models import Association
from screening_node.config import Settings
from screening_node.intake.store import (ACCEPTED_SOP_CLASSES, STATUS_CANNOT_UNDERSTAND, STATUS_DATASET_MISMATCH,
                                         STATUS_OUT_OF_RESOURCES, InstanceStore, StoreOutcome)

log = logging.getLogger(__name__)

ACCEPTED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEGLSNearLossless,
    JPEG2000Lossless, JPEG2000, RLELossless,
)


def _quiet_pynetdicom() -> None:
    """pynetdicom logs request identifiers (patient names, IDs) by default: never."""
    pynetdicom._config.LOG_REQUEST_IDENTIFIERS = False
    pynetdicom._config.LOG_RESPONSE_IDENTIFIERS = False
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


class StorageSCP:
    """Owns the pynetdicom AE, the listening server and per-association bookkeeping."""

    def __init__(self, settings: Settings, db: Database, store: InstanceStore) -> None:
        _quiet_pynetdicom()
        self.settings = settings
        self.db = db
        self.store = store
        node = settings.node
        self.ae = AE(ae_title=node.ae_title)
        self.ae.maximum_pdu_size = node.max_pdu
        self.ae.maximum_associations = node.max_associations
        self.ae.network_timeout = node.network_timeout_s
        self.ae.acse_timeout = node.network_timeout_s
        self.ae.dimse_timeout = node.network_timeout_s
        self.ae.require_called_aet = False
        self.ae.add_supported_context(Verification)
        for sop_class in ACCEPTED_SOP_CLASSES:
            self.ae.add_supported_context(sop_class, list(ACCEPTED_TRANSFER_SYNTAXES))
        self._server: Any = None
        self._assoc_rows: dict[int, int] = {}
        self._counts: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> int:
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
        ]
        self._server = self.ae.start_server((self.settings.node.host, self.settings.node.port), block=False,
                                            evt_handlers=handlers)
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- association bookkeeping -------------------------------------------
    def _on_accepted(self, event: evt.Event) -> None:
        assoc = event.assoc
        with self.db.session() as session:
            row = Association(peer_ae_title=str(assoc.requestor.ae_title)[:16], peer_address=assoc.requestor.address,
                              peer_port=assoc.requestor.port, called_ae_title=str(assoc.acceptor.ae_title)[:16],
                              started_at=datetime.now(timezone.utc), outcome="open")
            session.add(row)
            session.flush()
            record_event(session, "association.accepted", actor=row.peer_ae_title,
                         detail={"association_id": row.id, "peer": f"{row.peer_address}:{row.peer_port}"})
            row_id = row.id
        with self._lock:
            self._assoc_rows[id(assoc)] = row_id
            self._counts[id(assoc)] = [0, 0]

    def _finish_association(self, event: evt.Event, outcome: str) -> None:
        with self._lock:
            row_id = self._assoc_rows.pop(id(event.assoc), None)
            stored, failed = self._counts.pop(id(event.assoc), [0, 0])
        if row_id is None:
            return
        with self.db.session() as session:
            row = session.get(Association, row_id)
            if row is None:
                return
            row.ended_at = datetime.now(timezone.utc)
            row.instances_stored, row.instances_failed, row.outcome = stored, failed, outcome
            record_event(session, f"association.{outcome}", outcome="ok" if outcome == "released" else "warning",
                         actor=row.peer_ae_title, detail={"association_id": row_id, "stored": stored,
                                                          "failed": failed})

    def _on_released(self, event: evt.Event) -> None:
        self._finish_association(event, "released")

    def _on_aborted(self, event: evt.Event) -> None:
        self._finish_association(event, "aborted")

    def _on_conn_close(self, event: evt.Event) -> None:
        self._finish_association(event, "closed")

    def _on_rejected(self, event: evt.Event) -> None:
        requestor = event.assoc.requestor
        with self.db.session() as session:
            session.add(Association(peer_ae_title=str(requestor.ae_title)[:16], peer_address=requestor.address,
                                    peer_port=requestor.port, ended_at=datetime.now(timezone.utc),
                                    outcome="rejected"))
            record_event(session, "association.rejected", outcome="warning", actor=str(requestor.ae_title)[:16])

    # -- DIMSE ---------------------------------------------------------------
    def _on_echo(self, event: evt.Event) -> int:
        return 0x0000

    def _on_store(self, event: evt.Event) -> int:
        assoc_key = id(event.assoc)
        association_id = self._assoc_rows.get(assoc_key)
        actor = str(event.assoc.requestor.ae_title)[:16]
        try:
            outcome = self._store(event, association_id, actor)
        except Exception:  # one bad object never stops the node; the sender may retry
            log.exception("C-STORE handling failed")
            outcome = StoreOutcome(STATUS_OUT_OF_RESOURCES, "refused", "internal error while storing")
        with self._lock:
            counts = self._counts.get(assoc_key)
            if counts is not None:
                counts[0 if outcome.status == 0 else 1] += 1
        if outcome.status != 0:
            log.warning("C-STORE refused with 0x%04X: %s", outcome.status, outcome.reason)
        return outcome.status

    def _store(self, event: evt.Event, association_id: int | None, actor: str) -> StoreOutcome:
        raw = bytes(event.encoded_dataset(include_meta=True))
        transfer_syntax = str(event.context.transfer_syntax)
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
        except Exception as exc:
            reason = f"the data set could not be decoded ({type(exc).__name__})"
            self.store.quarantine(raw, reason, association_id=association_id, actor=actor, tag="unreadable")
            return StoreOutcome(STATUS_CANNOT_UNDERSTAND, "refused", reason)
        problem = self.store.check_identifiers(ds, str(event.context.abstract_syntax))
        if problem is not None:
            status = STATUS_DATASET_MISMATCH if "SOP Class" in problem else STATUS_CANNOT_UNDERSTAND
            self.store.quarantine(raw, problem, association_id=association_id, actor=actor, tag="bad-identifiers",
                                  sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
                                  series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
                                  study_uid=str(ds.get("StudyInstanceUID", "") or ""))
            return StoreOutcome(status, "refused", problem)
        return self.store.store(raw, ds, transfer_syntax=transfer_syntax, association_id=association_id,
                                actor=actor)


__all__ = ["StorageSCP", "ACCEPTED_TRANSFER_SYNTAXES", "UID"]
