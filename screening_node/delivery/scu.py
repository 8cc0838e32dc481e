"""C-STORE SCU: send a batch of files to one destination over one association.

Each SOP class in the batch gets presentation contexts for Explicit VR Little
Endian and Implicit VR Little Endian (pynetdicom re-encodes an uncompressed data
set to whichever the peer accepts); a file stored in another transfer syntax
(e.g. compressed CT, if ever forwarded) also gets a context for its own syntax.
The function never raises for network trouble: every file gets a ``SendResult``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from screening_node.config import Destination
from screening_node.delivery.backoff import classify_status

log = logging.getLogger(__name__)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
MAX_CONTEXTS = 128  # DICOM PS3.8: presentation context ids are odd numbers 1..255

Outcome = Literal["success", "failure_status", "network_error", "not_accepted", "local_error"]


@dataclass(frozen=True)
class OutgoingObject:
    """One file to send; ``key`` is the caller's handle (the delivery id)."""

    key: int
    path: Path
    sop_class_uid: str


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    status_code: int | None
    detail: str


def _transfer_syntax(path: Path) -> str | None:
    try:
        meta = dcmread(path, stop_before_pixels=True, specific_tags=[]).file_meta
        return str(meta.TransferSyntaxUID)
    except Exception:  # an unreadable file is reported at send time
        return None


def _contexts(objects: Sequence[OutgoingObject]) -> list[tuple[str, list[str]]]:
    """(SOP class, transfer syntaxes) pairs to propose, uncompressed first, within the 128 limit."""
    wanted: dict[tuple[str, tuple[str, ...]], None] = {}
    for obj in objects:
        wanted[(obj.sop_class_uid, UNCOMPRESSED)] = None
    for obj in objects:
        ts = _transfer_syntax(obj.path)
        if ts and ts not in UNCOMPRESSED:
            wanted[(obj.sop_class_uid, (ts,))] = None
    return [(sop, list(ts)) for sop, ts in list(wanted)[:MAX_CONTEXTS]]


def send_batch(destination: Destination, objects: Sequence[OutgoingObject], *, calling_ae_title: str,
               timeout_s: float = 30.0, max_pdu: int = 0) -> dict[int, SendResult]:
    """Send ``objects`` to ``destination`` in one association; a result for every key."""
    results: dict[int, SendResult] = {}
    if not objects:
        return results
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout_s
    ae.maximum_pdu_size = max_pdu
    for sop_class, syntaxes in _contexts(objects):
        ae.add_requested_context(sop_class, syntaxes)
    try:
        assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title,
                             max_pdu=max_pdu)
    except Exception as exc:  # DNS failure, bad address: still a network problem
        reason = f"cannot connect to {destination}: {exc}"
        return {obj.key: SendResult("network_error", None, reason) for obj in objects}
    if not assoc.is_established:
        if assoc.is_rejected:
            reason = f"association rejected by {destination}"
            rsp = getattr(assoc.acceptor, "primitive", None)
            if rsp is not None and rsp.result_str:
                reason += f" ({rsp.result_str}, {rsp.source_str}, {rsp.reason_str})"
        elif assoc.is_aborted:
            reason = f"association aborted by {destination} during negotiation"
        else:
            reason = f"no association with {destination} (connection refused or timed out)"
        return {obj.key: SendResult("network_error", None, reason) for obj in objects}
    try:
        for obj in objects:
            if not assoc.is_established:
                results[obj.key] = SendResult("network_error", None,
                                              f"association with {destination} ended before this object was sent")
                continue
            results[obj.key] = _send_one(assoc, obj, destination)
    finally:
        if assoc.is_established:
            assoc.release()
    return results


def _send_one(assoc, obj: OutgoingObject, destination: Destination) -> SendResult:  # type: ignore[no-untyped-def]
    try:
        dataset = dcmread(obj.path)
    except Exception as exc:
        return SendResult("local_error", None, f"cannot read {obj.path.name}: {exc}")
    try:
        status = assoc.send_c_store(dataset)
    except ValueError as exc:  # no accepted presentation context for this SOP class / syntax
        return SendResult("not_accepted", None, f"{destination} did not accept SOP class "
                          f"{obj.sop_class_uid} in any proposed transfer syntax ({exc})")
    except Exception as exc:
        return SendResult("network_error", None, f"sending to {destination} failed: {exc}")
    if not status or "Status" not in status:
        return SendResult("network_error", None,
                          f"no C-STORE response from {destination} (timeout or association aborted)")
    code = int(status.Status)
    comment = str(status.get("ErrorComment", "") or "")
    if code == 0x0000:
        return SendResult("success", code, "stored")
    text = f"C-STORE status 0x{code:04X} from {destination}" + (f": {comment}" if comment else "")
    if classify_status(code) == "success":
        return SendResult("success", code, f"stored with warning: {text}")
    return SendResult("failure_status", code, text)
