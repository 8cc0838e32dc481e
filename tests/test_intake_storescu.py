"""Real senders against a real node: DCMTK storescu, a careless pynetdicom peer, bad objects."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

from tests.conftest import assert_same_volume, gdcm_reference, shared_case
from tests.node_process import NodeProcess, cli, storescu

pytestmark = pytest.mark.slow


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spooled(data_dir: Path) -> dict[str, Path]:
    """SOP Instance UID -> spooled file."""
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p
            for p in (data_dir / "spool").rglob("*.dcm")}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with NodeProcess(tmp_path_factory.mktemp("node") / "data", stable_age=1.5, extra=["--no-analysis"]) as proc:
        yield proc


def _assert_spooled_series_equals_gdcm_reader(node, files, folder: Path) -> None:
    """The volume the node builds from what it received equals SimpleITK's GDCM reader on the originals."""
    from screening_node.imaging.volume import load_volume

    spooled = _spooled(node.data_dir)
    uids = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files]
    assert_same_volume(load_volume([spooled[uid] for uid in uids]).image, gdcm_reference(folder))


def test_tcia_series_arrives_complete_and_byte_identical(node):
    case = shared_case("tcia-pancreas-ct-cb-001")
    files = sorted(case.glob("*.dcm"))
    sent = storescu(node.port, files)
    assert sent.returncode == 0, sent.stderr
    series_uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    rows = node.wait_for(lambda rows: any(r["series_uid"] == series_uid and r["state"] != "receiving" for r in rows))
    row = next(r for r in rows if r["series_uid"] == series_uid)
    assert row["instances"] == 134
    assert row["routing"]["eligible"] is True and row["routing"]["reason"].startswith("eligible")
    spooled = _spooled(node.data_dir)
    for path in files:
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        original = pydicom.dcmread(path)
        stored = pydicom.dcmread(spooled[uid])
        assert stored.PixelData == original.PixelData
        assert stored.PatientName == original.PatientName
    _assert_spooled_series_equals_gdcm_reader(node, files, case)


def test_jpeg2000_series_keeps_its_compressed_pixel_data(node):
    case = shared_case("ts-example-dicom-j2k") / "fixed"
    files = sorted(p for p in case.iterdir() if p.is_file())
    sent = storescu(node.port, files, extra=["-xv"])  # propose JPEG 2000 lossless as is
    assert sent.returncode == 0, sent.stderr
    series_uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    rows = node.wait_for(lambda rows: any(r["series_uid"] == series_uid and r["state"] != "receiving" for r in rows))
    row = next(r for r in rows if r["series_uid"] == series_uid)
    assert row["instances"] == 20 and row["state"] == "skipped"
    assert "20 slices" in row["routing"]["reason"]  # too short to screen, and it says so
    spooled = _spooled(node.data_dir)
    for path in files:
        original = pydicom.dcmread(path)
        stored = pydicom.dcmread(spooled[original.SOPInstanceUID])
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert stored.PixelData == original.PixelData  # the encapsulated JPEG 2000 stream, untouched
    _assert_spooled_series_equals_gdcm_reader(node, files, case)


def test_careless_peer_with_empty_uids_is_refused_recorded_and_node_keeps_serving(node):
    case = shared_case("ts-example-dicom-j2k") / "raw"
    files = sorted(p for p in case.iterdir() if p.is_file())[:3]
    ae = AE(ae_title="CARELESS")
    ae.add_requested_context(CTImageStorage, [pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID])
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", node.port)
    assert assoc.is_established
    statuses = [_send_as_is(assoc, path, message_id) for message_id, path in enumerate(files, start=1)]
    assert all(s is not None and s >= 0xA000 for s in statuses), statuses
    assert assoc.send_c_echo().Status == 0  # still serving on the same association
    assoc.release()
    quarantine = list((node.data_dir / "quarantine").rglob("*.dcm"))
    assert len(quarantine) >= 3
    assert "Study Instance UID is missing" in node.log() or "SOP Class UID is missing" in node.log()


def _send_as_is(assoc, path: Path, message_id: int) -> int | None:
    """Send a file's data set bytes untouched, the command filled from its file meta (as a careless peer does).

    pynetdicom's own send_c_store refuses a data set without SOP Class UID, so the C-STORE request is
    built here from its primitives.
    """
    from io import BytesIO

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pynetdicom.dimse_primitives import C_STORE

    ds = pydicom.dcmread(path)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    request.AffectedSOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    request.Priority = 2
    request.DataSet = BytesIO(buffer.getvalue())
    context = next(cx for cx in assoc.accepted_contexts if cx.abstract_syntax == CTImageStorage)
    assoc._reactor_checkpoint.clear()  # pause the reactor, as send_c_store does, to read our response
    while not assoc._is_paused:
        time.sleep(0.001)
    try:
        assoc.dimse.send_msg(request, context.context_id)
        _, response = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    return None if response is None else response.Status


def test_other_sop_classes_are_refused_at_negotiation(node):
    ae = AE(ae_title="MRSCANNER")
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", node.port)
    if assoc.is_established:
        accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == MRImageStorage]
        assoc.release()
        assert accepted == []
    else:
        assert assoc.is_rejected or assoc.is_aborted


def _tiny_ct(tmp_path: Path, sop_uid: str, value: int, name: str = "TEST^PATIENT") -> Path:
    from tests.synthetic_ct import write_series

    return write_series(tmp_path, n_slices=1, sop_uids=[sop_uid], fill=value, patient_name=name)[0]


def test_resend_is_idempotent_conflict_is_quarantined_traversal_is_harmless(node, tmp_path):
    uid = generate_uid()
    first = _tiny_ct(tmp_path / "a", uid, 10)
    assert storescu(node.port, [first]).returncode == 0
    assert storescu(node.port, [first]).returncode == 0  # identical resend
    spooled = [p for p in (node.data_dir / "spool").rglob("*.dcm")
               if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == uid]
    assert len(spooled) == 1
    assert pydicom.dcmread(spooled[0]).PixelData == pydicom.dcmread(first).PixelData
    stored_sha = _sha(spooled[0])
    other = _tiny_ct(tmp_path / "b", uid, 99)  # same UID, different pixels
    assert storescu(node.port, [other]).returncode == 0
    assert _sha(spooled[0]) == stored_sha, "the stored object must not be overwritten"
    kept = [p for p in (node.data_dir / "quarantine").rglob("*.dcm")
            if pydicom.dcmread(p).get("SOPInstanceUID") == uid]
    assert len(kept) == 1 and pydicom.dcmread(kept[0]).PixelData == pydicom.dcmread(other).PixelData
    # Every spooled path stays inside the spool, whatever the UIDs look like.
    for path in (node.data_dir / "spool").rglob("*"):
        assert path.resolve().is_relative_to((node.data_dir / "spool").resolve())


def test_logs_carry_no_patient_identifiers(node, tmp_path):
    path = _tiny_ct(tmp_path, generate_uid(), 5, name="SECRET^NAME")
    assert storescu(node.port, [path]).returncode == 0
    assert "SECRET" not in node.log()


def test_late_instance_reopens_and_forced_completion(tmp_path):
    from tests.synthetic_ct import write_series

    with NodeProcess(tmp_path / "data", stable_age=1000, extra=["--no-analysis"]) as proc:  # never completes by itself
        files = write_series(tmp_path / "s", n_slices=3)
        assert storescu(proc.port, files[:2]).returncode == 0
        series_uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
        assert proc.status()[0]["state"] == "receiving"
        out = cli("complete", series_uid, "--data-dir", str(proc.data_dir))
        assert "completed" in out.stdout
        row = proc.status()[0]
        assert row["completion_forced"] is True and row["state"] == "skipped"  # 2 slices: not screened
        assert storescu(proc.port, files[2:]).returncode == 0  # a late instance
        row = proc.status()[0]
        assert row["state"] == "receiving" and row["reopened"] == 1 and row["instances"] == 3
        assert cli("complete", "--all", "--data-dir", str(proc.data_dir)).returncode == 0
        assert proc.status()[0]["state"] == "skipped"
