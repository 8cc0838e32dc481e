"""Reporting: DICOM SEG, TID 1500 SR and summary image from a synthetic CT study.

The synthetic study is written with pydicom into tmp_path (no ../shared needed): a small CT
series stored feet-first (slice order caudal to cranial reversed) with vertebral-body boxes at
known LPS positions, left-right asymmetric so a flipped or transposed axis moves a centroid.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from screening_node import __version__
from screening_node.analysis.results import StudyResult, Vertebra
from screening_node.analysis.uncertainty import grade_range, loss_range
from screening_node.reporting import write_report_objects
from screening_node.reporting.common import PATIENT_STUDY_KEYWORDS
from screening_node.reporting.seg import build_seg
from screening_node.reporting.sr_read import read_sr_values  # noqa: F401
from tests.conftest import dcmtk_tool, shared_case

ROWS, COLS, SLICES = 64, 56, 44
PIXEL = (1.5, 1.25)  # (row spacing, column spacing) mm
STEP = 2.5  # mm between slices
ORIGIN = (-40.0, -50.0, -300.0)  # LPS of voxel (col 0, row 0) of the most caudal slice
# label, mask value, box in LPS mm: (x0, x1), (y0, y1), (z0, z1); x ranges differ so L/R flips show
BOXES = {
    "T12": (1, (-12.0, 8.0), (-30.0, -10.0), (-225.0, -205.0)),
    "L1": (2, (-6.0, 18.0), (-32.0, -12.0), (-255.0, -233.0)),
    "L2": (3, (-20.0, 2.0), (-28.0, -8.0), (-285.0, -263.0)),
}


def _write_ct(folder: Path) -> list[Path]:
    folder.mkdir()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(SLICES):
        z = ORIGIN[2] + k * STEP
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Reporting", "RPT-001", "19500101", "F"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyID, ds.AccessionNumber, ds.StudyDate, ds.StudyTime = "S1", "ACC123", "20240102", "101500"
        ds.ReferringPhysicianName = "Referrer^Rita"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 3, SLICES - k
        ds.Manufacturer, ds.BodyPartExamined, ds.PositionReferenceIndicator = "Synthetic", "ABDOMEN", ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], z]
        ds.SliceThickness, ds.PixelSpacing = STEP, list(PIXEL)
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ROWS, COLS, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.KVP, ds.AcquisitionNumber = 120, 1
        image = np.full((ROWS, COLS), 40 + 1024, np.int16)
        for _, (_, xs, ys, zs) in BOXES.items():
            if zs[0] <= z <= zs[1]:
                r = (np.arange(ROWS) * PIXEL[0] + ORIGIN[1])[:, None]
                c = (np.arange(COLS) * PIXEL[1] + ORIGIN[0])[None, :]
                image[(r >= ys[0]) & (r <= ys[1]) & (c >= xs[0]) & (c <= xs[1])] = 300 + 1024
        ds.PixelData = image.tobytes()
        ds.save_as(ds.filename, enforce_file_format=True)
        paths.append(Path(ds.filename))
    return paths[::-1]  # source order: cranial first, i.e. descending z (opposite to the volume)


def lps_of_indices(image: sitk.Image, ijk: np.ndarray) -> np.ndarray:
    """LPS mm of SimpleITK (x, y, z) voxel indices, shape (n, 3)."""
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    return np.asarray(image.GetOrigin()) + (ijk * np.asarray(image.GetSpacing())) @ direction.T


def _mask_like(ct: sitk.Image) -> sitk.Image:
    """Label volume in the CT volume's geometry: each box filled with its mask value."""
    size = ct.GetSize()  # (x, y, z)
    zyx = np.indices(size[::-1]).reshape(3, -1).T  # numpy order (z, y, x)
    lps = lps_of_indices(ct, zyx[:, ::-1]).reshape(*size[::-1], 3)
    labels = np.zeros(size[::-1], np.uint16)
    for value, xs, ys, zs in BOXES.values():
        inside = np.ones(labels.shape, bool)
        for axis, (low, high) in enumerate((xs, ys, zs)):
            inside &= (lps[..., axis] >= low) & (lps[..., axis] <= high)
        labels[inside] = value
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(ct)
    return mask


def _keypoints(xs, ys, zs, squash_anterior: float = 0.0) -> dict[str, tuple[float, float, float]]:
    x = (xs[0] + xs[1]) / 2
    ya, ym, yp = ys[0], (ys[0] + ys[1]) / 2, ys[1]  # anterior is smaller y (LPS: +y posterior)
    top, bottom = zs[1], zs[0]
    return {
        "superior_anterior": (x, ya, top - squash_anterior), "superior_middle": (x, ym, top),
        "superior_posterior": (x, yp, top), "inferior_anterior": (x, ya, bottom),
        "inferior_middle": (x, ym, bottom), "inferior_posterior": (x, yp, bottom),
    }


def _heights(kp) -> dict[str, float]:
    return {n: float(np.linalg.norm(np.subtract(kp[f"superior_{n}"], kp[f"inferior_{n}"])))
            for n in ("anterior", "middle", "posterior")}


def _result() -> StudyResult:
    vertebrae = []
    for label, squash, grade, morph in (("T12", 0.0, 0, "normal"), ("L1", 7.0, 2, "wedge")):
        value, xs, ys, zs = BOXES[label]
        kp = _keypoints(xs, ys, zs, squash)
        h = _heights(kp)
        loss = 1 - min(h.values()) / max(h.values())
        spread = loss_range(loss, 0.05)  # the loss's spread at the CT's sampling, as analysis/uncertainty.py gives
        vertebrae.append(Vertebra(
            label=label, label_confidence=0.9, centroid_lps_mm=tuple(np.mean([xs, ys, zs], axis=1)),
            keypoints_lps_mm=kp, heights_mm=h, height_loss=loss, grade=grade, morphology=morph, assessable=True,
            mask_label=value, height_loss_range=spread, grade_range=grade_range(*spread)))
    value, xs, ys, zs = BOXES["L2"]
    vertebrae.append(Vertebra(
        label="L2", label_confidence=0.8, centroid_lps_mm=tuple(np.mean([xs, ys, zs], axis=1)),
        keypoints_lps_mm=None, heights_mm=None, height_loss=None, grade=None, morphology=None,
        assessable=False, reason="inferior endplate outside the scanned range", mask_label=value))
    vertebrae.append(Vertebra(
        label="L3", label_confidence=0.5, centroid_lps_mm=(0.0, -20.0, -300.0), keypoints_lps_mm=None,
        heights_mm=None, height_loss=None, grade=None, morphology=None, assessable=False,
        reason="vertebral body cut by the scan edge"))
    return StudyResult(status="reported", reason=None, engine="analytic", vertebrae=tuple(vertebrae),
                       body_mask_path="body_mask.nii.gz")


def _sagittal_view(path: Path) -> None:
    """Straightened mid-sagittal view: 1 mm pixels, row 0 cranial, columns anterior -> posterior."""
    rows, cols, centre_col = 110, 70, 35
    top = -195.0
    centre = np.array([[0.0, -20.0, top - r] for r in range(rows)])
    image = np.full((rows, cols), 40.0, np.float32)
    for value, xs, ys, zs in BOXES.values():
        r0, r1 = int(top - zs[1]), int(top - zs[0])
        c0, c1 = int(centre_col + ys[0] + 20), int(centre_col + ys[1] + 20)
        image[r0:r1 + 1, c0:c1 + 1] = 300.0
    np.savez(path, image=image, centre_lps=centre, col_dir_lps=np.tile([0.0, 1.0, 0.0], (rows, 1)),
             row_dir_lps=np.tile([0.0, 0.0, -1.0], (rows, 1)), centre_col=np.int64(centre_col))


def prepare_report_inputs(root: Path, *, sagittal_view: bool = True):  # type: ignore[no-untyped-def]
    """A synthetic CT series plus the analysis outputs the writers read; (ct paths, CT image, result dir, result).

    Also used by the delivery and report-command tests, so all three build the same study.
    """
    paths = _write_ct(root / "ct")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in sorted(paths)])
    ct = reader.Execute()
    result_dir = root / "result"
    result_dir.mkdir()
    sitk.WriteImage(_mask_like(ct), str(result_dir / "body_mask.nii.gz"))
    if sagittal_view:
        _sagittal_view(result_dir / "sagittal_view.npz")
    result = _result()
    result.write(result_dir / "results.json")
    return paths, ct, result_dir, result


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("reporting")
    paths, ct, result_dir, result = prepare_report_inputs(root)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    objects = write_report_objects(result, result_dir, sources, ct)
    return {"result": result, "objects": objects, "sources": sources, "ct": ct, "dir": result_dir, "root": root,
            "paths": paths}


def _dciodvfy(path: Path) -> list[str]:
    run = subprocess.run(["/usr/bin/dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return (run.stdout + run.stderr).splitlines()


def test_all_objects_are_written(study):
    objects = study["objects"]
    assert objects.missing == {}
    for path in (objects.seg, objects.sr, objects.summary_dcm, objects.summary_png):
        assert path is not None and path.exists() and path.stat().st_size > 0


def test_every_object_passes_dciodvfy(study):
    for path in study["objects"].dicom_paths:
        lines = _dciodvfy(path)
        errors = [line for line in lines if line.startswith("Error")]
        assert errors == [], f"{path.name}: {errors}"
        # the only warning we accept is dciodvfy not knowing our documented private scheme
        other = [line for line in lines if line.startswith("Warning") and "99SCRNODE" not in line]
        assert other == [], f"{path.name}: {other}"


def test_dsrdump_renders_the_report(study):
    run = subprocess.run([dcmtk_tool("dsrdump"), str(study["objects"].sr)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Imaging Measurement Report" in run.stdout
    assert '"L1 vertebra"' in run.stdout and '"Moderate"' in run.stdout


def test_sr_values_equal_results_json(study):
    result = StudyResult.read(study["dir"] / "results.json")
    values = read_sr_values(study["objects"].sr)
    assert [v.label for v in values.vertebrae] == [v.label for v in result.vertebrae]
    seg = hd.seg.segread(study["objects"].seg)
    for expected, got in zip(result.vertebrae, values.vertebrae):
        assert got.assessable == expected.assessable
        if expected.assessable:
            assert got.heights_mm == pytest.approx(expected.heights_mm, abs=1e-6)
            assert got.height_loss_percent == pytest.approx(100 * expected.height_loss, abs=1e-3)
            low, high = expected.height_loss_range
            assert got.height_loss_uncertainty_percent == pytest.approx(
                (100 * (expected.height_loss - low), 100 * (high - expected.height_loss)), abs=1e-3)
            assert got.grade == expected.grade and got.morphology == expected.morphology
            for name, (top, bottom) in {"anterior": ("superior_anterior", "inferior_anterior"),
                                        "middle": ("superior_middle", "inferior_middle"),
                                        "posterior": ("superior_posterior", "inferior_posterior")}.items():
                np.testing.assert_allclose(
                    got.endpoints_lps_mm[name],
                    [expected.keypoints_lps_mm[top], expected.keypoints_lps_mm[bottom]], atol=1e-4)
        else:
            assert got.reason == expected.reason and got.grade is None and not got.heights_mm
        if expected.mask_label is not None:  # the group names the SEG segment of the same vertebra
            assert got.segmentation_uid == seg.SOPInstanceUID
            description = seg.get_segment_description(got.segment_number)
            assert description.segment_label == f"{expected.label} vertebral body"
            assert description.tracking_uid == got.tracking_uid
        else:
            assert got.segment_number is None
    assert values.worst_grade == result.max_grade == 2
    assert values.fracture_suspected is True
    assert values.vertebrae_assessed == 2
    assert values.device_name == f"screening-node {__version__}"


def _segment_centroids_from_frames(seg) -> dict[int, tuple[np.ndarray, int]]:
    """LPS centroid and voxel count per segment, computed from the SEG's own frame positions."""
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    row_spacing, col_spacing = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    pixels = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    sums: dict[int, list] = {}
    for frame, item in zip(pixels, seg.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ipp = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        rows, cols = np.nonzero(frame)
        lps = ipp + np.outer(cols * col_spacing, iop[:3]) + np.outer(rows * row_spacing, iop[3:])
        acc = sums.setdefault(number, [np.zeros(3), 0])
        acc[0] += lps.sum(axis=0)
        acc[1] += len(rows)
    return {n: (total / count, count) for n, (total, count) in sums.items()}


def test_seg_geometry_round_trip(study):
    """Per-segment LPS centroids and voxel counts equal the body mask's: no flipped or swapped axis."""
    result, ct = study["result"], study["ct"]
    mask = sitk.ReadImage(str(study["dir"] / "body_mask.nii.gz"))
    labels = sitk.GetArrayFromImage(mask)  # numpy (z, y, x)
    seg = hd.seg.segread(study["objects"].seg)
    from_frames = _segment_centroids_from_frames(seg)
    numbers = {seg.get_segment_description(n).segment_label.split()[0]: n for n in seg.segment_numbers}
    assert set(numbers) == {"T12", "L1", "L2"}
    for v in result.vertebrae:
        if v.mask_label is None:
            continue
        zyx = np.argwhere(labels == v.mask_label)
        expected = lps_of_indices(mask, zyx[:, ::-1]).mean(axis=0)
        centroid, count = from_frames[numbers[v.label]]
        assert count == len(zyx)
        np.testing.assert_allclose(centroid, expected, atol=1e-3)
        _, xs, ys, zs = BOXES[v.label]  # and the mask itself is where the boxes are (LPS)
        np.testing.assert_allclose(expected, [np.mean(xs), np.mean(ys), np.mean(zs)], atol=2.0)
    # highdicom's own reading, resampled onto the CT grid, reproduces the mask voxel for voxel
    volume = seg.get_volume(combine_segments=True, relabel=False).to_simpleitk()
    on_ct = sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(volume, sitk.sitkUInt16), ct, sitk.Transform(),
                                                 sitk.sitkNearestNeighbor, 0))
    mapping = {numbers[v.label]: v.mask_label for v in result.vertebrae if v.mask_label is not None}
    relabelled = np.vectorize(lambda n: mapping.get(int(n), 0))(on_ct)
    assert np.array_equal(relabelled, labels)


def test_seg_segment_descriptions(study):
    seg = hd.seg.segread(study["objects"].seg)
    for number in seg.segment_numbers:
        d = seg.get_segment_description(number)
        label = d.segment_label.split()[0]
        assert d.segmented_property_type.scheme_designator == "SCT"
        assert d.segmented_property_type.meaning == f"{label} vertebra"
        assert d.segmented_property_category.value == "91723000"  # Anatomical Structure
        assert d.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        assert d.algorithm_identification[0].AlgorithmVersion == __version__
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == study["sources"][0].SeriesInstanceUID


def test_objects_carry_the_source_patient_and_study(study):
    source = study["sources"][0]
    series_uids = set()
    for path, number in zip(study["objects"].dicom_paths, (9001, 9002, 9003)):
        ds = pydicom.dcmread(path)
        for keyword in PATIENT_STUDY_KEYWORDS:
            assert ds.get(keyword) == source.get(keyword), f"{path.name} {keyword}"
        assert ds.SeriesNumber == number
        assert ds.SeriesDescription.startswith("Vertebral fracture screening - ")
        series_uids.add(ds.SeriesInstanceUID)
    assert len(series_uids) == 3 and source.SeriesInstanceUID not in series_uids


def _colour_near(picture: np.ndarray, x: float, y: float, colour, radius: int = 4) -> bool:
    patch = picture[int(y) - radius:int(y) + radius + 1, int(x) - radius:int(x) + radius + 1].astype(int)
    return bool((np.abs(patch - np.asarray(colour)).sum(axis=-1) < 30).any())


def test_summary_picture_shows_grades_in_colour(study):
    from screening_node.reporting.summary import (
        GRADE_COLOURS, HEADER_PX, LEFT_PX, NOT_ASSESSABLE_COLOUR, SagittalView, scale_for)

    png = np.asarray(Image.open(study["objects"].summary_png).convert("RGB"))
    sc = pydicom.dcmread(study["objects"].summary_dcm)
    assert (sc.Rows, sc.Columns, sc.SamplesPerPixel, sc.PhotometricInterpretation) == (*png.shape[:2], 3, "RGB")
    assert np.array_equal(sc.pixel_array, png)
    view = SagittalView.load(study["dir"] / "sagittal_view.npz")
    s = scale_for(view.image.shape[0])
    assert png.shape[0] >= view.image.shape[0] * s and png.shape[1] >= LEFT_PX + view.image.shape[1] * s
    result = study["result"]
    for v in result.vertebrae:
        if not v.keypoints_lps_mm:
            continue
        row, col = view.to_pixel(v.keypoints_lps_mm["superior_middle"])
        x, y = LEFT_PX + (col + 0.5) * s, HEADER_PX + (row + 0.5) * s
        assert _colour_near(png, x, y, GRADE_COLOURS[v.grade]), v.label
    # a colour at the L1 (moderate) keypoint is orange, not the green of T12: grades are distinguishable
    row, col = view.to_pixel(result.vertebrae[1].keypoints_lps_mm["inferior_posterior"])
    assert not _colour_near(png, LEFT_PX + (col + 0.5) * s, HEADER_PX + (row + 0.5) * s, GRADE_COLOURS[0])
    # the not-assessable level label is drawn in grey in the left margin
    row, _ = view.to_pixel(result.vertebrae[2].centroid_lps_mm)
    assert _colour_near(png[:, :LEFT_PX], 20, HEADER_PX + (row + 0.5) * s, NOT_ASSESSABLE_COLOUR, radius=10)


def test_a_study_wide_reason_is_listed_once(study):
    from screening_node.reporting.summary import summary_lines
    reason = "slices 5.0 mm apart along the spine are too coarse to measure vertebral heights (at most 3.5 mm)"
    vertebrae = tuple(replace(v, assessable=False, grade=None, reason=reason) for v in study["result"].vertebrae)
    vertebrae = (replace(vertebrae[0], reason="cut by the field of view"),) + vertebrae[1:]
    result = replace(study["result"], status="not_assessable", reason=reason, vertebrae=vertebrae)
    lines = summary_lines(result)
    assert lines[0] == f"Study not assessable - {reason}"
    assert sum(reason in line for line in lines) == 1
    assert lines[1].endswith("cut by the field of view")  # a vertebra's own reason is still listed


def test_the_analysis_notes_are_listed_after_the_findings(study):
    """How the levels were counted, and a body graded from its tallest height whose keypoints are not all on
    its endplates: the picture's reader needs them beside the grades."""
    from screening_node.reporting.summary import SagittalView, render_summary, summary_lines
    notes = ("labels counted from the lowest rib-bearing vertebra (T12); sacrum not in view",
             "L1: anterior height far above the posterior one: an endplate at the back of the body was not traced; "
             "even its tallest height lies 43 % below its neighbours' posterior heights, so it is graded a crush "
             "from that height, the least it has lost (its keypoints are not all on its endplates)")
    result = replace(study["result"], notes=notes)
    lines = summary_lines(result)
    assert lines[-2:] == [f"Note: {n}" for n in notes]
    assert lines[:-2] == summary_lines(study["result"])
    view = SagittalView.load(study["dir"] / "sagittal_view.npz")
    with_notes, plain = np.asarray(render_summary(result, view)), np.asarray(render_summary(study["result"], view))
    height = min(len(with_notes), len(plain))
    assert len(with_notes) >= len(plain) and (with_notes[:height] != plain[:height]).any()  # the notes are drawn


def test_a_grade_that_reads_others_at_the_ct_sampling_says_so(study):
    from screening_node.reporting.summary import summary_lines
    l1 = next(v for v in study["result"].vertebrae if v.label == "L1")
    spread = round(l1.height_loss_range[1] - l1.height_loss, 4)
    lines = summary_lines(study["result"])
    line = next(line for line in lines if line.startswith("L1:"))
    assert f"+-{100 * spread:.0f}" in line
    assert ("reads" in line) == l1.grade_uncertain
    uncertain = replace(l1, grade_range=(1, 2))
    only_l1 = replace(study["result"], vertebrae=(uncertain,))
    assert "grade 2 moderate (reads 1-2 at these slices)" in summary_lines(only_l1)[0]


def test_missing_inputs_give_reasons_not_crashes(study, tmp_path):
    empty = StudyResult(status="not_assessable", reason="no spine found in the field of view", engine="analytic",
                        vertebrae=())
    objects = write_report_objects(empty, tmp_path, study["sources"], study["ct"])
    assert objects.seg is None and "body mask" in objects.missing["seg"]
    assert objects.summary_dcm is None and "sagittal_view.npz" in objects.missing["summary"]
    assert objects.sr is not None and not [e for e in _dciodvfy(objects.sr) if e.startswith("Error")]
    values = read_sr_values(objects.sr)
    assert values.vertebrae == [] and values.vertebrae_assessed == 0
    assert values.study_reason == "no spine found in the field of view" and values.fracture_suspected is None

    # a mask in another geometry is refused with a reason; the SR is still written, without segment references
    other = tmp_path / "other"
    other.mkdir()
    small = sitk.Image(8, 8, 8, sitk.sitkUInt16)
    sitk.WriteImage(small, str(other / "body_mask.nii.gz"))
    objects = write_report_objects(replace(study["result"], body_mask_path="body_mask.nii.gz"), other,
                                   study["sources"], study["ct"])
    assert objects.seg is None and "geometry" in objects.missing["seg"]
    assert all(v.segment_number is None for v in read_sr_values(objects.sr).vertebrae)
    assert write_report_objects(empty, tmp_path, [], study["ct"]).missing.keys() == {"seg", "sr", "summary"}

    # sources without a frame of reference: no SEG and no SR (coordinates need one), each with a reason
    broken = tmp_path / "broken"
    broken.mkdir()
    sitk.WriteImage(sitk.ReadImage(str(study["dir"] / "body_mask.nii.gz")), str(broken / "body_mask.nii.gz"))
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in study["paths"]]
    for ds in sources:
        del ds.FrameOfReferenceUID
    objects = write_report_objects(study["result"], broken, sources, study["ct"])
    assert objects.seg is None and objects.sr is None
    assert "FrameOfReferenceUID" in objects.missing["seg"] + objects.missing["sr"]


def test_vertebra_codes_and_private_codes_are_documented():
    from screening_node.analysis.results import LEVELS
    from screening_node.reporting import codes

    for level in LEVELS:
        code = codes.vertebra_code(level)
        assert codes.level_from_code(code) == level
        assert code.scheme_designator == ("99SCRNODE" if level in ("T13", "L6", "S1") else "SCT")
    conformance = (Path(__file__).resolve().parents[1] / "docs" / "conformance.md").read_text()
    for code in codes.private_codes():
        assert f"`{code.value}`" in conformance and code.meaning in conformance, code.value


def _assert_seg_matches_mask(seg_path: Path, mask: sitk.Image, result: StudyResult) -> None:
    """Per-segment voxel count and LPS centroid (from the SEG's frame positions) equal the mask's."""
    seg = hd.seg.segread(seg_path)
    numbers = {seg.get_segment_description(n).segment_label.split()[0]: n for n in seg.segment_numbers}
    from_frames = _segment_centroids_from_frames(seg)
    labels = sitk.GetArrayFromImage(mask)
    for v in result.vertebrae:
        zyx = np.argwhere(labels == v.mask_label)
        centroid, count = from_frames[numbers[v.label]]
        assert count == len(zyx)
        np.testing.assert_allclose(centroid, lps_of_indices(mask, zyx[:, ::-1]).mean(axis=0), atol=1e-3)


def test_multiframe_source_gets_a_seg_on_its_frames(study, tmp_path):
    """An Enhanced (multi-frame) CT source: frame geometry comes from the functional groups."""
    full = [pydicom.dcmread(p) for p in study["paths"]]
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(full, hd.UID(), 4, hd.UID(), 1)
    first, *rest = study["result"].vertebrae[:3]  # the first body relabelled T13: a privately coded level
    result = replace(study["result"], vertebrae=(replace(first, label="T13"), *rest))
    mask = sitk.ReadImage(str(study["dir"] / "body_mask.nii.gz"))
    seg = build_seg(result, mask, [enhanced])
    seg.dataset.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    assert not [e for e in _dciodvfy(tmp_path / "seg.dcm") if e.startswith("Error")]
    assert seg.dataset.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99SCRNODE"
    _assert_seg_matches_mask(tmp_path / "seg.dcm", mask, result)


def test_real_ct_series(tmp_path):
    """A real Philips CT series (TCIA, 134 slices): objects validate and the SEG lands on the boxes."""
    from screening_node.imaging.volume import load_volume

    folder = shared_case("tcia-pancreas-ct-cb-001")
    volume = load_volume(sorted(folder.glob("*.dcm")))
    ct = volume.image
    size = np.asarray(ct.GetSize())
    centre = np.asarray(ct.TransformContinuousIndexToPhysicalPoint((size - 1) / 2.0))
    boxes = {"L1": (1, centre + (-15, 30, 0)), "L2": (2, centre + (10, 35, -40))}  # LPS mm, left-right apart
    labels = np.zeros(size[::-1], np.uint16)  # numpy (z, y, x)
    vertebrae = []
    for label, (value, c) in boxes.items():  # boxes by their corner indices (this CT is axial)
        corners = np.array([ct.TransformPhysicalPointToIndex(tuple(c + s * np.array((20.0, 15.0, 12.0))))
                            for s in (-1, 1)])
        (x0, y0, z0), (x1, y1, z1) = corners.min(axis=0), corners.max(axis=0)
        labels[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] = value
        kp = _keypoints((c[0] - 20, c[0] + 20), (c[1] - 15, c[1] + 15), (c[2] - 12, c[2] + 12))
        h = _heights(kp)
        vertebrae.append(Vertebra(label=label, label_confidence=0.9, centroid_lps_mm=tuple(c), keypoints_lps_mm=kp,
                                  heights_mm=h, height_loss=0.0, grade=0, morphology="normal", assessable=True,
                                  mask_label=value))
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(ct)
    sitk.WriteImage(mask, str(tmp_path / "body_mask.nii.gz"))
    # a straight 'straightened' view: the mid-sagittal CT plane through the boxes, 1 mm pixels
    rows, cols, centre_col = 160, 120, 60
    top = np.array([centre[0], centre[1] + 32 - centre_col, centre[2] + 50])
    grid = sitk.Image(cols, rows, 1, sitk.sitkFloat32)
    grid.SetOrigin(tuple(top))
    grid.SetDirection((0, 0, -1, 1, 0, 0, 0, -1, 0))  # columns +y (A->P), rows -z (cranial->caudal)
    image = sitk.GetArrayFromImage(sitk.Resample(ct, grid, sitk.Transform(), sitk.sitkLinear, -1000.0))[0]
    centre_lps = np.array([top + (0, centre_col, -r) for r in range(rows)])
    np.savez(tmp_path / "sagittal_view.npz", image=image, centre_lps=centre_lps,
             col_dir_lps=np.tile([0.0, 1.0, 0.0], (rows, 1)), row_dir_lps=np.tile([0.0, 0.0, -1.0], (rows, 1)),
             centre_col=np.int64(centre_col))
    result = StudyResult(status="reported", reason=None, engine="analytic", vertebrae=tuple(vertebrae),
                         body_mask_path="body_mask.nii.gz")
    objects = write_report_objects(result, tmp_path, list(volume.reference_datasets), ct)
    assert objects.missing == {}
    for path in objects.dicom_paths:
        assert not [e for e in _dciodvfy(path) if e.startswith("Error")], path.name
    _assert_seg_matches_mask(objects.seg, mask, result)
    values = read_sr_values(objects.sr)
    for got, expected in zip(values.vertebrae, vertebrae):
        assert got.label == expected.label and got.heights_mm == pytest.approx(expected.heights_mm)


def test_a_graded_vertebra_without_a_level_is_reported_under_no_level(study, tmp_path):
    """A crop with no labelling anchor still grades its thoracic and lumbar bodies (label null): the SR
    carries the grade at the finding site 'Vertebra', the SEG names the segment 'Unlabelled', and every
    object stays valid."""
    result = study["result"]
    unlabelled = tuple(replace(v, label=None, label_confidence=0.0) for v in result.vertebrae)
    result = replace(result, vertebrae=unlabelled)
    out = tmp_path / "result"
    out.mkdir()
    for name in ("body_mask.nii.gz", "sagittal_view.npz"):
        (out / name).write_bytes((study["dir"] / name).read_bytes())
    result.write(out / "results.json")
    objects = write_report_objects(result, out, study["sources"], study["ct"])
    for path in objects.dicom_paths:
        errors = [line for line in _dciodvfy(path) if line.startswith("Error")]
        assert errors == [], f"{path.name}: {errors}"
    values = read_sr_values(objects.sr)
    assert [v.label for v in values.vertebrae] == [None] * len(unlabelled)
    assert [v.grade for v in values.vertebrae] == [v.grade for v in unlabelled]
    assert values.worst_grade == 2 and values.fracture_suspected is True
    seg = hd.seg.segread(objects.seg)
    labels = {seg.get_segment_description(n).segment_label for n in seg.segment_numbers}
    assert labels == {"Unlabelled vertebral body"}


@pytest.mark.parametrize("suspect_min_grade, suspected", [(2, False), (1, True)])
def test_a_mild_worst_grade_is_suspected_only_where_the_setting_says_so(study, tmp_path, suspect_min_grade,
                                                                        suspected):
    """The worst grade 1 (mild): by default (from grade 2) the SR says no fracture is suspected and the
    summary's title says from which grade it would; with analysis.suspect_min_grade = 1 it says yes. The
    grades themselves are reported either way."""
    result = study["result"]
    mild = tuple(replace(v, grade=1, grade_range=(1, 1)) if v.grade == 2 else v for v in result.vertebrae)
    result = replace(result, vertebrae=mild, suspect_min_grade=suspect_min_grade)
    out = tmp_path / "result"
    out.mkdir()
    for name in ("body_mask.nii.gz", "sagittal_view.npz"):
        (out / name).write_bytes((study["dir"] / name).read_bytes())
    objects = write_report_objects(result, out, study["sources"], study["ct"])
    assert not [e for e in _dciodvfy(objects.sr) if e.startswith("Error")]
    values = read_sr_values(objects.sr)
    assert values.worst_grade == 1 and values.fracture_suspected is suspected
    assert [v.grade for v in values.vertebrae] == [v.grade for v in mild]


def test_the_sr_carries_the_analysis_notes(study, tmp_path):
    """A reader of the SR in a PACS viewer sees how the levels were counted and how sure they are."""
    notes = ("labels counted from the lowest rib-bearing vertebra (T12); sacrum not in view",
             "the first rib-free body below the last rib-bearing one reaches 56 mm on one side, as a rib does: it "
             "may bear the 12th rib, and the levels one too high")
    result = replace(study["result"], notes=notes)
    out = tmp_path / "result"
    out.mkdir()
    for name in ("body_mask.nii.gz", "sagittal_view.npz"):
        (out / name).write_bytes((study["dir"] / name).read_bytes())
    objects = write_report_objects(result, out, study["sources"], study["ct"])
    lines = _dciodvfy(objects.sr)
    assert not [e for e in lines if e.startswith("Error")]
    assert not [w for w in lines if w.startswith("Warning") and "99SCRNODE" not in w]
    assert read_sr_values(objects.sr).notes == notes
    assert read_sr_values(study["objects"].sr).notes == ()
    run = subprocess.run([dcmtk_tool("dsrdump"), str(objects.sr)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.count('"Analysis note")="') == 2  # dsrdump shortens the texts
