"""Write a phantom as a CT Image Storage series (one file per slice) with pydicom.

Acquisition geometry (DICOM conventions, LPS):
- head-first supine (HFS): ImageOrientationPatient [1,0,0, 0,1,0]; columns run to patient left,
  rows to posterior; slices are written in increasing z.
- feet-first supine (FFS): ImageOrientationPatient [-1,0,0, 0,1,0] (the image is mirrored left-right
  as a feet-first scanner reconstructs it) and slices are written in decreasing z, the order the
  table moves. The slice normal (row x column) is then -z, so slice positions increase along it.
The anatomy's LPS positions are the same either way.
- a sagittal reformat (options.plane "sagittal", render.sagittal_reformat): ImageType DERIVED\\SECONDARY\\MPR,
  ImageOrientationPatient [0,1,0, 0,0,-1]; columns run to posterior, rows to the feet, slices from the
  patient's left to right (the normal row x column is -x). Pixels are uint16 (HU + 1024, 12 bits stored)
with RescaleIntercept -1024. UIDs come from the seed and options (pydicom's hash-based
``generate_uid``), dates and times are fixed: the same options give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (UID, CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid)

from screening_node.phantom.grid import Grid

TRANSFER_SYNTAX_UIDS: dict[str, UID] = {
    "explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian, "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless, "jpeg2000": JPEG2000Lossless,
}
STUDY_DATE, STUDY_TIME = "20240315", "101500"
INTERCEPT = -1024


@dataclass(frozen=True)
class SeriesUIDs:
    study: str
    series: str
    frame_of_reference: str
    key: str  # entropy from which the instance UIDs are derived

    @classmethod
    def derive(cls, key: str) -> "SeriesUIDs":
        return cls(str(generate_uid(entropy_srcs=[key, "study"])), str(generate_uid(entropy_srcs=[key, "series"])),
                   str(generate_uid(entropy_srcs=[key, "frame"])), key)

    def instance(self, index: int) -> str:
        return str(generate_uid(entropy_srcs=[self.key, "instance", str(index)]))


@dataclass(frozen=True)
class Acquisition:
    """Where the stored slices lie: numpy (z, y, x) of the stored order, origin, direction (LPS)."""

    pixels: np.ndarray
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 3x3 row-major: columns are the x, y, slice axes (SimpleITK convention)
    spacing: tuple[float, float, float]
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")


SAGITTAL_REFORMAT_TYPE = ("DERIVED", "SECONDARY", "MPR")


def acquisition(hu: np.ndarray, grid: Grid, feet_first: bool, plane: str = "axial") -> Acquisition:
    """The canonical (z, y, x) volume in the order the scanner stores it (a sagittal reformat's order does not
    depend on the direction the table moved)."""
    if plane == "sagittal":
        hi = grid.extent_hi
        pixels = np.ascontiguousarray(hu.transpose(2, 0, 1)[::-1, ::-1, :])  # (x from the left, z from the head, y)
        return Acquisition(pixels, (float(hi[0]), grid.origin[1], float(hi[2])), (0, 0, -1, 1, 0, 0, 0, -1, 0),
                           (grid.spacing[1], grid.spacing[2], grid.spacing[0]), SAGITTAL_REFORMAT_TYPE)
    if not feet_first:
        return Acquisition(hu, grid.origin, (1, 0, 0, 0, 1, 0, 0, 0, 1), grid.spacing)
    hi = grid.extent_hi
    origin = (float(hi[0]), grid.origin[1], float(hi[2]))
    return Acquisition(hu[::-1, :, ::-1], origin, (-1, 0, 0, 0, 1, 0, 0, 0, -1), grid.spacing)


def _base_dataset(uids: SeriesUIDs, patient: dict, options_summary: dict, acq: Acquisition) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(acq.image_type)
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = STUDY_TIME
    ds.AccessionNumber = f"PH{options_summary['seed']:08d}"[:16]
    ds.Modality = "CT"
    ds.Manufacturer = "screening-node phantom"
    ds.InstitutionName = "Synthetic"
    ds.ReferringPhysicianName = ""
    ds.StationName = "PHANTOM"
    ds.StudyDescription = "Synthetic CT spine phantom"
    sagittal = options_summary.get("plane") == "sagittal"
    thickness = acq.spacing[2] if sagittal else options_summary["slice_thickness"]  # whole pixels for a reformat
    ds.SeriesDescription = f"Phantom {options_summary['fov']} {thickness:g}mm" + (" sagittal MPR" if sagittal else "")
    ds.ManufacturerModelName = "screening-node phantom"
    ds.PatientName = f"PHANTOM^SEED{options_summary['seed']}"
    ds.PatientID = f"PHANTOM-{options_summary['seed']}"
    ds.PatientBirthDate = ""
    ds.PatientSex = patient["sex"]
    ds.PatientAge = f"{patient['age_years']:03d}Y"
    ds.PatientWeight = str(patient["weight_kg"])
    ds.BodyPartExamined = options_summary["body_part"]
    ds.SliceThickness = f"{thickness:g}"
    ds.SpacingBetweenSlices = f"{acq.spacing[2]:g}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.SoftwareVersions = "screening-node phantom v1"
    ds.ReconstructionDiameter = f"{acq.spacing[0] * acq.pixels.shape[2]:.2f}"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "200"
    ds.Exposure = "100"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS" if options_summary["feet_first"] else "HFS"
    ds.StudyInstanceUID = uids.study
    ds.SeriesInstanceUID = uids.series
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = uids.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [f"{v:g}" for v in (acq.direction[0], acq.direction[3], acq.direction[6],
                                                     acq.direction[1], acq.direction[4], acq.direction[7])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(acq.pixels.shape[1]), int(acq.pixels.shape[2])
    ds.PixelSpacing = [f"{acq.spacing[1]:g}", f"{acq.spacing[0]:g}"]  # row spacing (y), column spacing (x)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(INTERCEPT), "1", "HU"
    return ds


def check_encoder(name: str) -> None:
    """Fail early, and clearly, when pydicom has no working encoder for a compressed syntax.

    With this project's dependencies RLE (pydicom's own encoder), JPEG 2000 (pylibjpeg-openjpeg) work;
    JPEG-LS needs the ``pyjpegls`` package.
    """
    uid = TRANSFER_SYNTAX_UIDS[name]
    if not uid.is_compressed:
        return
    from pydicom.pixels import get_encoder

    encoder = get_encoder(uid)
    if not encoder.is_available:
        missing = "; ".join(str(m) for m in encoder.missing_dependencies)
        raise ValueError(f"transfer syntax {name}: pydicom has no encoder available here ({missing})")


def write_series(folder: Path, hu: np.ndarray, grid: Grid, *, feet_first: bool, transfer_syntax: str,
                 uids: SeriesUIDs, patient: dict, options_summary: dict) -> list[Path]:
    """One file per slice, named by instance number; returns the paths in stored order."""
    if transfer_syntax not in TRANSFER_SYNTAX_UIDS:
        raise ValueError(f"transfer syntax must be one of {', '.join(TRANSFER_SYNTAX_UIDS)}")
    syntax = TRANSFER_SYNTAX_UIDS[transfer_syntax]
    check_encoder(transfer_syntax)
    acq = acquisition(hu, grid, feet_first, options_summary.get("plane", "axial"))
    folder.mkdir(parents=True, exist_ok=True)
    base = _base_dataset(uids, patient, options_summary, acq)
    normal = np.array(acq.direction, float).reshape(3, 3)[:, 2]
    stacked_on = int(np.argmax(np.abs(normal)))  # SliceLocation: the LPS coordinate the slices step along
    paths = []
    for k in range(acq.pixels.shape[0]):
        ds = Dataset()
        ds.update(base)
        sop_uid = uids.instance(k + 1)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        position = np.array(acq.origin) + k * acq.spacing[2] * normal
        ds.ImagePositionPatient = [f"{v:.3f}" for v in position]
        ds.SliceLocation = f"{position[stacked_on]:.3f}"
        stored = (acq.pixels[k].astype(np.int32) - INTERCEPT).astype(np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
        meta.ImplementationVersionName = "SCREENNODE_PH1"
        ds.file_meta = meta
        if syntax.is_compressed:
            ds.PixelData = np.ascontiguousarray(stored).tobytes()
            ds.compress(syntax, stored, generate_instance_uid=False)
        else:
            ds.PixelData = np.ascontiguousarray(stored).tobytes()
            meta.TransferSyntaxUID = syntax
        path = folder / f"CT{k + 1:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
