"""From a CT series (or a research volume file) to one SimpleITK image in patient LPS, HU.

DICOM: slices are ordered by their position along the slice normal (never by
file name or InstanceNumber), each slice's rescale slope / intercept is
applied, and the stack's geometry is checked (``stack.check_stack``).

Two kinds of trouble:

- **Not assessable** (``NotAssessable(reason)``, nothing is built): no DICOM
  images, files of several series, modality other than CT, a single slice,
  missing geometry (ImagePositionPatient / ImageOrientationPatient /
  PixelSpacing), mixed matrix sizes or pixel spacings, mixed orientations,
  non-orthonormal cosines, duplicate positions, gaps, non-uniform spacing,
  gantry tilt (sheared stack), pixel data that cannot be decoded, an
  unreadable or non-3-D volume file.
- **Problems** (``Volume.problems``, the volume is built and can be
  analysed): empty Study / Series Instance UID (results cannot be linked),
  given files that are not DICOM (ignored), slice positions that jitter
  within tolerance (the mean step is used), a coarse slice step.

Pixel type: float32 HU. Exact for integer-valued CT and keeps fractional
rescale slopes; 512 x 512 x 400 is 420 MB (about twice that at the peak,
while SimpleITK copies the array). int16 would halve it but round every
fractional slope, and the analysis works in float anyway.

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
import SimpleITK as sitk
from pydicom.dataset import Dataset

from screening_node.errors import NotAssessable
from screening_node.imaging.dicom_files import DECODE_THREADS, SeriesFile, decode_pixels, read_files
from screening_node.imaging.stack import SliceRef, check_stack, slice_refs_from_dataset

log = logging.getLogger(__name__)

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
PIXEL_TYPE = sitk.sitkFloat32
FILL_SLAB_SLICES = 32  # slices converted to HU at a time (32 x 512 x 512 float32: 34 MB)


@dataclass(frozen=True)
class Volume:
    """A CT volume in patient LPS with HU values (float32), plus where it came from."""

    image: sitk.Image
    meta: dict[str, Any] = field(default_factory=dict)  # study_uid, series_uid, modality, ... (no patient data)
    reference_datasets: tuple[Dataset, ...] = ()  # source headers (no pixels) in slice order; () for volume files
    source_files: tuple[Path, ...] = ()  # in slice order (a multi-frame file appears once)
    problems: tuple[str, ...] = ()  # minor issues that still allow analysis


def is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and any(name.endswith(s) for s in VOLUME_SUFFIXES)


def load_volume(source: Path | str | Sequence[Path | str], *, coarsest_pixel_mm: float | None = None) -> Volume:
    """Build the volume of a DICOM folder, a list of DICOM files, or a NIfTI / NRRD / MHA file.

    ``coarsest_pixel_mm``: a DICOM series' pixels are averaged in blocks of k x k (k per axis, the largest
    whole number whose block stays within it; 1: as stored) while the volume is filled, so a fine matrix is
    never held at its own pixels (in_plane_blocks). None: every pixel as stored. Volume files are read as
    they are.

    Raises ``NotAssessable`` (with a plain reason) when the input cannot be a sound
    volume and ``FileNotFoundError`` when a named path does not exist.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if is_volume_file(path):
            return _load_volume_file(path)
        if path.is_dir():  # a folder may hold READMEs and licences: skipped silently
            return _load_dicom(sorted(p for p in path.rglob("*") if p.is_file()), explicit=False,
                               coarsest_pixel_mm=coarsest_pixel_mm)
        return _load_dicom([path], explicit=True, coarsest_pixel_mm=coarsest_pixel_mm)
    files = [Path(p) for p in source]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of the given files do not exist (first: {missing[0]})")
    return _load_dicom(files, explicit=True, coarsest_pixel_mm=coarsest_pixel_mm)


def in_plane_blocks(spacing_xy: Sequence[float], coarsest_pixel_mm: float | None) -> tuple[int, int]:
    """Pixels averaged per block along x and y: the largest whole number whose block stays within
    ``coarsest_pixel_mm`` (at least 1; 1 and 1 when None)."""
    if coarsest_pixel_mm is None:
        return 1, 1
    return tuple(max(1, int(np.floor(coarsest_pixel_mm / s + 1e-6))) for s in spacing_xy[:2])  # type: ignore[return-value]


def first_block_centre(first_pixel: Sequence[float], direction: Sequence[float], pixel_xy: Sequence[float],
                       blocks: Sequence[int]) -> np.ndarray:
    """LPS centre of a slice's first block of ``blocks`` (x, y) pixels, from its first pixel's centre: half a
    block less half a pixel along each in-plane axis (``direction``: 3 x 3 row-major, columns the x, y, slice
    axes). The origin of a series read in blocks (_load_dicom), and where the SEG finds a frame's block on it."""
    axes = np.asarray(direction, dtype=float).reshape(3, 3)[:, :2]
    offset = np.asarray(pixel_xy, dtype=float) * (np.asarray(blocks, dtype=float) - 1) / 2
    return np.asarray(first_pixel, dtype=float) + axes @ offset


def _load_volume_file(path: Path) -> Volume:
    """NIfTI / NRRD / MetaImage through SimpleITK, which maps their frames to LPS physical space."""
    try:
        image = sitk.ReadImage(str(path), PIXEL_TYPE)
    except RuntimeError as exc:
        raise NotAssessable(f"volume file could not be read ({str(exc).strip().splitlines()[-1][:160]})") from exc
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise NotAssessable(f"volume file is not a 3-D scalar image ({image.GetDimension()}-D, "
                            f"{image.GetNumberOfComponentsPerPixel()} component(s))")
    if min(image.GetSize()) < 2:
        raise NotAssessable("a single slice is not a volume")
    meta = {"study_uid": None, "series_uid": None, "frame_of_reference_uid": None, "modality": None,
            "path": str(path)}
    return Volume(image=image, meta=meta, source_files=(path,))


def _load_dicom(paths: Sequence[Path], *, explicit: bool, coarsest_pixel_mm: float | None = None) -> Volume:
    files, skipped = read_files(paths)  # headers only: the pixels are decoded as the volume is filled (_fill)
    if not files:
        volume_files = [p.name for p in skipped if is_volume_file(p)]
        hint = f" (volume files such as {volume_files[0]} are read when named directly)" if volume_files else ""
        raise NotAssessable(f"no readable DICOM images{hint}")
    series = {str(f.header.get("SeriesInstanceUID", "")) for f in files}
    if len(series) > 1:
        raise NotAssessable(f"files of {len(series)} different series were mixed")
    modalities = {str(f.header.get("Modality", "")) for f in files}
    if modalities != {"CT"}:
        raise NotAssessable(f"modality {'/'.join(sorted(modalities)) or 'missing'} is not CT")
    for f in files:
        if int(f.header.get("NumberOfFrames", 1) or 1) > 1 and "PerFrameFunctionalGroupsSequence" not in f.header:
            raise NotAssessable("multi-frame image without per-frame functional groups: frame positions unknown")
    refs: list[SliceRef] = []
    for f in files:
        refs.extend(slice_refs_from_dataset(f.path, f.header))
    stack = check_stack(refs)  # raises NotAssessable with the reason
    by_path = {f.path: f for f in files}
    blocks = in_plane_blocks(stack.spacing_xyz, coarsest_pixel_mm)
    image = _fill(stack.slices, by_path, blocks)
    pixel = np.array(stack.spacing_xyz[:2], dtype=float)
    image.SetSpacing((pixel[0] * blocks[0], pixel[1] * blocks[1], stack.spacing_xyz[2]))
    image.SetOrigin(tuple(float(v) for v in first_block_centre(stack.origin, stack.direction, pixel, blocks)))
    image.SetDirection(stack.direction)
    ordered = list(dict.fromkeys(ref.path for ref in stack.slices))
    first = by_path[ordered[0]].header
    problems = list(stack.problems)
    meta = _meta(first)
    if blocks != (1, 1):
        meta["in_plane_blocks"] = list(blocks)
        meta["stored_pixel_mm"] = [round(float(v), 4) for v in pixel]
    for key, name in (("study_uid", "Study Instance UID"), ("series_uid", "Series Instance UID")):
        if not meta[key]:
            problems.append(f"{name} is empty: results cannot be linked to the study")
    if explicit and skipped:
        problems.append(f"{len(skipped)} of the given files are not DICOM images and were ignored")
    return Volume(image=image, meta=meta, reference_datasets=tuple(by_path[p].header for p in ordered),
                  source_files=tuple(ordered), problems=tuple(problems))


def _meta(first: Dataset) -> dict[str, Any]:
    """Identifiers and technique of the series (never patient data: that stays in the datasets)."""
    def text(keyword: str) -> str | None:
        value = first.get(keyword)
        return str(value) if value not in (None, "") else None

    thickness = first.get("SliceThickness")
    return {
        "study_uid": text("StudyInstanceUID"),
        "series_uid": text("SeriesInstanceUID"),
        "frame_of_reference_uid": text("FrameOfReferenceUID"),
        "modality": "CT",
        "sop_class_uid": text("SOPClassUID"),
        "transfer_syntax_uid": str(first.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in getattr(
            first, "file_meta", {}) else None,
        "manufacturer": text("Manufacturer"),
        "convolution_kernel": text("ConvolutionKernel"),
        "slice_thickness": float(thickness) if thickness not in (None, "") else None,
    }


def _fill(slices: Sequence[SliceRef], by_path: dict[Path, SeriesFile], blocks: tuple[int, int] = (1, 1)
          ) -> sitk.Image:
    """The float32 HU image (index order as ``slices``; no geometry yet), each ``blocks`` (x, y) of pixels
    averaged into one (a last partial block is left out); each file's stored pixels are decoded when its
    slab is filled and released once used.

    Filled FILL_SLAB_SLICES slices at a time into the image's own buffer: a whole numpy array handed to
    sitk.GetImageFromArray is copied, and the two copies were the node's peak memory (2.2 GB for 1037
    slices of 512 x 512)."""
    first = slices[0]
    image = sitk.Image(first.columns // blocks[0], first.rows // blocks[1], len(slices), PIXEL_TYPE)
    slab = np.empty((min(FILL_SLAB_SLICES, len(slices)), first.rows, first.columns), dtype=np.float32)
    last_use = {ref.path: z for z, ref in enumerate(slices)}
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        for z0 in range(0, len(slices), slab.shape[0]):
            _fill_slab(image, slab[:min(slab.shape[0], len(slices) - z0)], z0, slices, by_path, last_use, pool,
                       blocks)
    return image


def block_means(array: np.ndarray, blocks: Sequence[int]) -> np.ndarray:
    """``array`` averaged (float32) over blocks of ``blocks`` elements per axis (numpy order); a last partial
    block along an axis is left out. The array itself where every block is one element. A series read at a
    coarser pixel (_fill) and the phantom's sagittal reformat (phantom.render) average so."""
    if all(b == 1 for b in blocks):
        return array
    counts = [n // b for n, b in zip(array.shape, blocks)]
    kept = array[tuple(slice(0, c * b) for c, b in zip(counts, blocks))]
    split = [d for c, b in zip(counts, blocks) for d in (c, b)]
    return kept.reshape(split).mean(axis=tuple(range(1, 2 * array.ndim, 2)), dtype=np.float32)


def _fill_slab(image: sitk.Image, part: np.ndarray, z0: int, slices: Sequence[SliceRef],
               by_path: dict[Path, SeriesFile], last_use: dict[Path, int], pool: ThreadPoolExecutor,
               blocks: tuple[int, int] = (1, 1)) -> None:
    """Slices z0 .. z0 + len(part) in HU into ``image``, through the buffer ``part`` (averaged in ``blocks``)."""
    first, chunk = slices[0], slices[z0:z0 + part.shape[0]]
    _decode_missing([by_path[ref.path] for ref in chunk], pool)
    for k, ref in enumerate(chunk):
        z = z0 + k
        source = by_path[ref.path]
        if source.pixels is None:
            raise NotAssessable(f"pixel data could not be decoded ({source.error})")
        frame = _frame(source.pixels, ref)
        if frame.shape != (first.rows, first.columns):
            raise NotAssessable(f"slice {z} has a {frame.shape[-1]}x{frame.shape[0]} pixel matrix, "
                                f"expected {first.columns}x{first.rows}")
        np.multiply(frame, ref.slope, out=part[k], casting="unsafe")
        part[k] += ref.intercept
        if last_use[ref.path] == z:
            source.pixels = None
    image[:, :, z0:z0 + part.shape[0]] = sitk.GetImageFromArray(block_means(part, (1, blocks[1], blocks[0])),
                                                                 isVector=False)


def _decode_missing(sources: Sequence[SeriesFile], pool: ThreadPoolExecutor) -> None:
    """Decode (DECODE_THREADS at a time) the pixels of the files among ``sources`` not yet decoded and not
    known to be undecodable; a failure is kept as the file's error, as read_files keeps it."""
    todo = list({id(s): s for s in sources if s.pixels is None and s.error is None}.values())
    if not todo:
        return
    for source, (pixels, error) in zip(todo, pool.map(lambda s: decode_pixels(s.path), todo)):
        source.pixels, source.error = pixels, error


def _frame(pixels: np.ndarray, ref: SliceRef) -> np.ndarray:
    """One (rows, columns) frame of a decoded file; a shape mismatch is caught by the caller."""
    if ref.frame is None or (pixels.ndim == 2 and ref.frame == 0):  # a one-frame Enhanced CT decodes to 2-D
        return pixels
    if pixels.ndim != 3 or ref.frame >= pixels.shape[0]:
        raise NotAssessable("the number of frames does not match the per-frame functional groups")
    return pixels[ref.frame]
