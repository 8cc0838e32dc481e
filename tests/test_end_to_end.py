"""The whole path with real parts: storescu -> node -> analysis -> SEG/SR/SC -> Orthanc.

A phantom CT study is sent to the node with DCMTK storescu; the node delivers
its results to Orthanc; through Orthanc's REST API the CT, SEG, SR and summary
image are found in one study and the SR's values equal results.json. The second
test keeps Orthanc down while the node delivers, then starts it: everything
arrives, once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from screening_node.analysis.results import StudyResult
from screening_node.reporting.sr_read import read_sr_values
from tests.node_process import REPO, NodeProcess, storescu
from tests.pacs import orthanc_server

pytestmark = pytest.mark.slow

SEG, SR_3D, SC = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    subprocess.run([sys.executable, "-m", "screening_node", "phantom", "--out", str(out), "--seed", "11",
                    "--fov", "lumbar", "--fracture", "L2:2:wedge", "--format", "dicom"],
                   check=True, cwd=REPO, capture_output=True)
    return out


def _dicom_files(phantom: Path) -> list[Path]:
    return sorted(p for p in (phantom / "dicom").iterdir() if p.is_file())


def _wait_for_objects(orthanc, study_uid: str, classes: set[str], timeout: float = 300.0) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    found: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        found = {}
        for orthanc_id in orthanc.instances():
            tags = orthanc.instance_tags(orthanc_id)
            if tags.get("StudyInstanceUID") == study_uid:
                found.setdefault(tags.get("SOPClassUID"), []).append(orthanc_id)
        if classes <= set(found):
            return found
        time.sleep(1.0)
    raise AssertionError(f"Orthanc has {sorted(found)} for the study, expected {sorted(classes)}")


def _job_result(node: NodeProcess, series_uid: str, timeout: float = 300.0) -> StudyResult:
    rows = node.wait_for(lambda rows: any(r["series_uid"] == series_uid and r["job"] and r["job"]["state"] in
                                          ("done", "failed") for r in rows), timeout=timeout)
    row = next(r for r in rows if r["series_uid"] == series_uid)
    assert row["job"]["outcome"] == "reported", row
    return StudyResult.read(Path(row["job"]["result_dir"]) / "results.json")


def test_results_arrive_in_the_pacs_next_to_the_ct(tmp_path, phantom):
    files = _dicom_files(phantom)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    with orthanc_server(tmp_path / "orthanc") as orthanc:
        assert storescu(orthanc.dicom_port, files).returncode == 0  # the CT is in the PACS already
        with NodeProcess(tmp_path / "node", stable_age=1.5, extra=["--destination", orthanc.destination]) as node:
            assert storescu(node.port, files).returncode == 0
            result = _job_result(node, header.SeriesInstanceUID)
            found = _wait_for_objects(orthanc, header.StudyInstanceUID, {CT, SEG, SR_3D, SC})
        assert len(orthanc.studies()) == 1
        sr_path = tmp_path / "sr-from-orthanc.dcm"
        sr_path.write_bytes(orthanc.instance_file(found[SR_3D][0]))
    assert len(found[CT]) == len(files) and len(found[SEG]) == len(found[SR_3D]) == len(found[SC]) == 1
    values = read_sr_values(sr_path)
    graded = {v.label: v for v in result.vertebrae if v.assessable}
    assert graded, "the phantom must have assessable vertebrae"
    reported_by_label = {v.label: v for v in values.vertebrae}
    for label, vertebra in graded.items():
        reported = reported_by_label[label]
        for name, height in vertebra.heights_mm.items():
            assert reported.heights_mm[name] == pytest.approx(height, abs=1e-3)
        assert reported.grade == vertebra.grade
    assert values.worst_grade == result.max_grade  # (accuracy itself is tested in the analysis tests)


def test_pacs_down_during_delivery_everything_arrives_once(tmp_path, phantom):
    files = _dicom_files(phantom)
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    orthanc_context = orthanc_server(tmp_path / "orthanc")
    orthanc = orthanc_context.__enter__()
    try:
        orthanc.stop()  # the PACS is down when the results are ready
        env = {"SCREENING_NODE_DELIVERY_BACKOFF_INITIAL_S": "0.5", "SCREENING_NODE_DELIVERY_BACKOFF_MAX_S": "2",
               "SCREENING_NODE_DELIVERY_POLL_INTERVAL_S": "0.2", "SCREENING_NODE_DELIVERY_MAX_ATTEMPTS": "1000"}
        with NodeProcess(tmp_path / "node", stable_age=1.5, extra=["--destination", orthanc.destination],
                         env=env) as node:
            assert storescu(node.port, files).returncode == 0
            _job_result(node, header.SeriesInstanceUID)
            time.sleep(3)  # several failed attempts
            orthanc.start()
            found = _wait_for_objects(orthanc, header.StudyInstanceUID, {SEG, SR_3D, SC})
            time.sleep(3)  # nothing more should come
            found = _wait_for_objects(orthanc, header.StudyInstanceUID, {SEG, SR_3D, SC})
            outbox = subprocess.run([sys.executable, "-m", "screening_node", "outbox", "--json", "--data-dir",
                                     str(node.data_dir)], capture_output=True, text=True, cwd=REPO, check=True)
    finally:
        orthanc_context.__exit__(None, None, None)
    assert all(len(v) == 1 for v in found.values()), found
    import json

    deliveries = json.loads(outbox.stdout)
    assert len(deliveries) == 3 and all(d["state"] == "sent" for d in deliveries)
    assert all(d["attempts"] >= 2 for d in deliveries), "the first attempts must have failed while Orthanc was down"


def test_a_study_kept_as_thick_axial_slices_and_a_sagittal_reformat_is_screened_from_the_reformat(tmp_path):
    # Many departments archive 5 mm axial slices (too coarse to measure heights on) and reformats made from the
    # thin ones. The same patient as a 5 mm axial series and a 3 mm sagittal MPR, in one study.
    made = {}
    for plane, thickness in (("axial", "5"), ("sagittal", "3")):
        out = tmp_path / plane
        subprocess.run([sys.executable, "-m", "screening_node", "phantom", "--out", str(out), "--seed", "12",
                        "--fov", "lumbar", "--fracture", "L3:3:crush", "--format", "dicom", "--plane", plane,
                        "--slice-thickness", thickness, "--pixel-spacing", "1.0", "--matrix", "224"],
                       check=True, cwd=REPO, capture_output=True)
        made[plane] = _dicom_files(out)
    axial = pydicom.dcmread(made["axial"][0], stop_before_pixels=True)
    reformat_files = []
    for path in made["sagittal"]:  # the console's reformat belongs to the acquisition's study and frame
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = axial.StudyInstanceUID, axial.FrameOfReferenceUID
        ds.SeriesNumber = 3
        reformat_files.append(tmp_path / "reformat" / path.name)
        reformat_files[-1].parent.mkdir(exist_ok=True)
        ds.save_as(reformat_files[-1])
    reformat_uid = pydicom.dcmread(reformat_files[0], stop_before_pixels=True).SeriesInstanceUID
    with orthanc_server(tmp_path / "orthanc") as orthanc:
        with NodeProcess(tmp_path / "node", stable_age=1.5, extra=["--destination", orthanc.destination]) as node:
            assert storescu(node.port, made["axial"] + reformat_files).returncode == 0
            result = _job_result(node, reformat_uid)
            found = _wait_for_objects(orthanc, axial.StudyInstanceUID, {SEG, SR_3D, SC})
            seg_path = tmp_path / "seg-from-orthanc.dcm"
            seg_path.write_bytes(orthanc.instance_file(found[SEG][0]))
            status = subprocess.run([sys.executable, "-m", "screening_node", "status", "--json", "--data-dir",
                                     str(node.data_dir)], capture_output=True, text=True, cwd=REPO, check=True)
    l3 = next(v for v in result.vertebrae if v.label == "L3")
    assert l3.grade == 3 and l3.morphology == "crush", l3
    seg = pydicom.dcmread(seg_path)
    assert [float(v) for v in seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
            .ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]  # on the reformat's own planes
    check = subprocess.run(["/usr/bin/dciodvfy", str(seg_path)], capture_output=True, text=True)
    assert not [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")], check.stderr
    assert "exceeds 3.5 mm" in status.stdout and "where no axial series is" in status.stdout
