"""From a CT series (or a research volume file) to one SimpleITK image in patient LPS, HU.

DICOM: slices are ordered by their position along the slice normal (never by
file name or InstanceNumber), each slice's rescale slope / intercept is
applied, and the stack's geometry is checked. A stack that cannot be a sound
volume (gaps, duplicates, mixed orientations, gantry tilt, missing geometry,
...) raises ``NotAssessable`` with the reason; it never crashes the node.

Pixel type: float32 HU (exact for every integer-valued CT and for fractional
rescale slopes; 512 x 512 x 400 is 420 MB).

Axis order: numpy arrays here are (z, y, x) = (slice, row, column);
SimpleITK sizes, spacings and indices are (x, y, z).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset

from screening_node.errors import NotAssessable
from screening_node.imaging.stack import SliceRef, check_stack, slice_refs_from_dataset

log = logging.getLogger(__name__)

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Volume:
    """A CT volume in patient LPS with HU values, plus where it came from."""

    image: sitk.Image
    meta: dict[str, Any] = field(default_factory=dict)  # study_uid, series_uid, modality, ...
    reference_datasets: tuple[Dataset, ...] = ()  # source headers (no pixels) in slice order
    source_files: tuple[Path, ...] = ()  # in slice order (a multi-frame file appears once)
    problems: tuple[str, ...] = ()  # minor issues that still allow analysis


def is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and any(name.endswith(s) for s in VOLUME_SUFFIXES)


def load_volume(source: Path | str | Sequence[Path | str]) -> Volume:
    """Build the volume of a DICOM folder, a list of DICOM files, or a NIfTI / NRRD / MHA file."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if is_volume_file(path):
            return _load_volume_file(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    else:
        files = [Path(p) for p in source]
    return _load_dicom(files)


def _load_volume_file(path: Path) -> Volume:
    try:
        image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    except RuntimeError as exc:
        raise NotAssessable(f"volume file could not be read ({str(exc).splitlines()[0][:160]})") from exc
    if image.GetDimension() != 3:
        raise NotAssessable(f"volume file has {image.GetDimension()} dimensions, not 3")
    return Volume(image=image, meta={"path": str(path)}, source_files=(path,))


def _read_headers(files: Sequence[Path]) -> list[tuple[Path, Dataset]]:
    headers = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # not DICOM (a README, a DICOMDIR fragment): ignored, counted
            continue
        if "SOPClassUID" in ds and str(ds.SOPClassUID) == "1.2.840.10008.1.3.10":  # DICOMDIR
            continue
        headers.append((path, ds))
    return headers


def _load_dicom(files: Sequence[Path]) -> Volume:
    headers = _read_headers(files)
    if not headers:
        raise NotAssessable("no readable DICOM images")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in headers}
    if len(series) > 1:
        raise NotAssessable(f"files of {len(series)} different series were mixed")
    modalities = {str(ds.get("Modality", "")) for _, ds in headers}
    if modalities != {"CT"}:
        raise NotAssessable(f"modality {'/'.join(sorted(modalities)) or 'missing'} is not CT")
    refs: list[SliceRef] = []
    for path, ds in headers:
        refs.extend(slice_refs_from_dataset(path, ds))
    stack = check_stack(refs)  # raises NotAssessable with the reason
    array = _read_pixels(stack.slices)
    image = sitk.GetImageFromArray(array, isVector=False)
    image.SetSpacing(stack.spacing_xyz)
    image.SetOrigin(stack.origin)
    image.SetDirection(stack.direction)
    ordered_files: list[Path] = []
    for ref in stack.slices:
        if not ordered_files or ordered_files[-1] != ref.path:
            ordered_files.append(ref.path)
    by_path = {path: ds for path, ds in headers}
    first = by_path[stack.slices[0].path]
    meta = {
        "study_uid": str(first.get("StudyInstanceUID", "")) or None,
        "series_uid": str(first.get("SeriesInstanceUID", "")) or None,
        "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "")) or None,
        "modality": "CT",
        "sop_class_uid": str(first.get("SOPClassUID", "")),
    }
    problems = list(stack.problems)
    for key, name in (("study_uid", "Study Instance UID"), ("series_uid", "Series Instance UID")):
        if not meta[key]:
            problems.append(f"{name} is empty: results cannot be linked to the study")
    return Volume(image=image, meta=meta, reference_datasets=tuple(by_path[p] for p in ordered_files),
                  source_files=tuple(ordered_files), problems=tuple(problems))


def _decode_file(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array


def _read_pixels(slices: Sequence[SliceRef]) -> np.ndarray:
    """Decode every slice (threads: the codecs release the GIL) into a float32 (z, y, x) HU array."""
    first = slices[0]
    array = np.empty((len(slices), first.rows, first.columns), dtype=np.float32)
    paths = list(dict.fromkeys(ref.path for ref in slices))

    def decode(path: Path) -> tuple[Path, np.ndarray | Exception]:
        try:
            return path, _decode_file(path)
        except Exception as exc:  # unsupported compression, truncated data
            return path, exc

    decoded: dict[Path, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path, pixels in pool.map(decode, paths):
            if isinstance(pixels, Exception):
                raise NotAssessable(f"pixel data could not be decoded ({type(pixels).__name__}: "
                                    f"{str(pixels).splitlines()[0][:160] if str(pixels) else 'no detail'})")
            decoded[path] = pixels
    for z, ref in enumerate(slices):
        pixels = decoded[ref.path]
        frame = pixels[ref.frame] if ref.frame is not None and pixels.ndim == 3 else pixels
        if frame.shape != (first.rows, first.columns):
            raise NotAssessable(f"slice {z} has matrix {frame.shape[1]}x{frame.shape[0]}, "
                                f"expected {first.columns}x{first.rows}")
        np.multiply(frame, ref.slope, out=array[z], casting="unsafe")
        array[z] += ref.intercept
    return array
