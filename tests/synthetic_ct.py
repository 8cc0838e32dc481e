"""Small synthetic CT series written with pydicom, for tests that must not depend on ../shared."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def write_series(folder: Path, *, n_slices: int = 5, rows: int = 16, columns: int = 16, spacing: float = 2.0,
                 pixel_spacing: float = 1.0, sop_uids: Sequence[str] | None = None, fill: int = 0,
                 patient_name: str = "TEST^PATIENT", orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
                 origin: Sequence[float] = (-8.0, -8.0, 0.0), body_part: str = "ABDOMEN",
                 image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"), study_uid: str | None = None,
                 series_uid: str | None = None, slope: float = 1.0, intercept: float = -1024.0,
                 pixels: np.ndarray | None = None) -> list[Path]:
    """Write ``n_slices`` CT slices stacked along the orientation's normal; returns the file paths.

    ``pixels`` (z, y, x) stored values override ``fill``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    row_cos, col_cos = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row_cos, col_cos)
    paths = []
    for index in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uids[index] if sop_uids else generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientAge = patient_name, "ID0001", "F", "070Y"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20260101", "120000", "ACC1", "1"
        ds.Modality, ds.Manufacturer, ds.BodyPartExamined = "CT", "TEST", body_part
        ds.SeriesNumber, ds.InstanceNumber = 2, index + 1
        ds.ImageType = list(image_type)
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        position = np.array(origin, float) + index * spacing * normal
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.PixelSpacing = [pixel_spacing, pixel_spacing]
        ds.SliceThickness = spacing
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.KVP, ds.ConvolutionKernel = 120, "STANDARD"
        plane = pixels[index] if pixels is not None else np.full((rows, columns), fill, np.uint16)
        ds.PixelData = plane.astype(np.uint16).tobytes()
        path = folder / f"slice{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
