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

from screening_node.analysis.results import StudyResult, Vertebra
from screening_node.reporting import write_report_objects
from screening_node.reporting.common import PATIENT_STUDY_KEYWORDS
from screening_node.reporting.sr_read import read_sr_values  # noqa: F401
from tests.conftest import dcmtk_tool

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


def _mask_like(ct: sitk.Image) -> sitk.Image:
    """Label volume in the CT volume's geometry: each box filled with its mask value (LPS tests)."""
    size = ct.GetSize()  # (x, y, z)
    labels = np.zeros(size[::-1], np.uint16)  # numpy (z, y, x)
    for k in range(size[2]):
        for j in range(size[1]):
            for i in range(size[0]):
                x, y, z = ct.TransformIndexToPhysicalPoint((i, j, k))
                for value, xs, ys, zs in BOXES.values():
                    if xs[0] <= x <= xs[1] and ys[0] <= y <= ys[1] and zs[0] <= z <= zs[1]:
                        labels[k, j, i] = value
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
        vertebrae.append(Vertebra(
            label=label, label_confidence=0.9, centroid_lps_mm=tuple(np.mean([xs, ys, zs], axis=1)),
            keypoints_lps_mm=kp, heights_mm=h, height_loss=1 - min(h.values()) / max(h.values()),
            grade=grade, morphology=morph, assessable=True, mask_label=value))
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


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("reporting")
    paths = _write_ct(root / "ct")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in sorted(paths)])
    ct = reader.Execute()
    result_dir = root / "result"
    result_dir.mkdir()
    sitk.WriteImage(_mask_like(ct), str(result_dir / "body_mask.nii.gz"))
    _sagittal_view(result_dir / "sagittal_view.npz")
    result = _result()
    result.write(result_dir / "results.json")
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    objects = write_report_objects(result, result_dir, sources, ct)
    return {"result": result, "objects": objects, "sources": sources, "ct": ct, "dir": result_dir, "root": root}


def test_smoke(study):
    print(study["objects"])
