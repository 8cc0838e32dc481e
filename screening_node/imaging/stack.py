"""The geometry of a stack of CT slices: ordering and the checks that make it a volume.

Each slice (a single-frame image or one frame of an Enhanced CT) becomes a
``SliceRef``. ``check_stack`` orders them along the slice normal and decides
whether they form a regular grid. Hard failures raise ``NotAssessable``;
tolerable irregularities (position jitter within tolerance, a coarse
step) are returned as ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from pydicom.dataset import Dataset

from screening_node.errors import NotAssessable

ORIENTATION_TOLERANCE = 1e-3  # direction cosines that differ less are the same orientation
DUPLICATE_TOLERANCE_MM = 0.01  # two slices closer than this along the normal are duplicates
SPACING_RELATIVE_TOLERANCE = 0.02  # steps within 2 % of the median are uniform (scanner rounding)
SPACING_ABSOLUTE_TOLERANCE_MM = 0.02
TILT_TOLERANCE = 0.01  # in-plane drift per mm of stack: above this the stack is sheared (gantry tilt)
ORTHONORMAL_TOLERANCE = 1e-3
PIXEL_SPACING_TOLERANCE_MM = 1e-4  # "0.976562" and "0.9765625" are the same pixel spacing
JITTER_REPORTED_MM = 0.005  # position jitter (within tolerance) above this is reported as a problem
COARSE_STEP_MM = 5.0  # a slice step above this still builds, but is reported as a problem


@dataclass(frozen=True)
class SliceRef:
    path: Path
    frame: int | None  # index of the frame in a multi-frame file, None for single-frame
    position: tuple[float, float, float] | None  # ImagePositionPatient, LPS mm
    orientation: tuple[float, ...] | None  # ImageOrientationPatient (row cosines, column cosines)
    pixel_spacing: tuple[float, float] | None  # (between rows = y, between columns = x), mm
    rows: int
    columns: int
    slope: float
    intercept: float


@dataclass(frozen=True)
class Stack:
    slices: tuple[SliceRef, ...]  # ordered along the normal (ascending)
    origin: tuple[float, float, float]
    spacing_xyz: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 numbers, row-major, columns are the x, y, z axis directions
    problems: tuple[str, ...]


def _floats(value: object, count: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return values if len(values) == count else None


def _first(group: Dataset | None, sequence: str, keyword: str) -> object:
    if group is None or sequence not in group or not group[sequence].value:
        return None
    return group[sequence].value[0].get(keyword)


def slice_refs_from_dataset(path: Path, ds: Dataset) -> Iterator[SliceRef]:
    """One ref per slice (single-frame) or per frame (Enhanced CT, functional groups)."""
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else None
        for index, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
            def pick(sequence: str, keyword: str) -> object:
                value = _first(frame, sequence, keyword)
                return value if value is not None else _first(shared, sequence, keyword)

            slope = pick("PixelValueTransformationSequence", "RescaleSlope")
            intercept = pick("PixelValueTransformationSequence", "RescaleIntercept")
            yield SliceRef(path, index,
                           _floats(pick("PlanePositionSequence", "ImagePositionPatient"), 3),  # type: ignore[arg-type]
                           _floats(pick("PlaneOrientationSequence", "ImageOrientationPatient"), 6),
                           _floats(pick("PixelMeasuresSequence", "PixelSpacing"), 2),  # type: ignore[arg-type]
                           rows, columns,
                           float(slope) if slope not in (None, "") else 1.0,  # type: ignore[arg-type]
                           float(intercept) if intercept not in (None, "") else 0.0)  # type: ignore[arg-type]
        return
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    yield SliceRef(path, None, _floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
                   _floats(ds.get("ImageOrientationPatient"), 6), _floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
                   rows, columns,
                   float(slope) if slope not in (None, "") else 1.0,
                   float(intercept) if intercept not in (None, "") else 0.0)


def check_stack(refs: Sequence[SliceRef]) -> Stack:
    """Order slices along the normal and verify they form a regular 3-D grid."""
    if len(refs) < 2:
        raise NotAssessable("a single slice is not a volume")
    missing = [name for name, ok in (("ImagePositionPatient", all(r.position for r in refs)),
                                     ("ImageOrientationPatient", all(r.orientation for r in refs)),
                                     ("PixelSpacing", all(r.pixel_spacing for r in refs))) if not ok]
    if missing:
        raise NotAssessable(f"missing geometry: {', '.join(missing)} absent on some slices")
    if len({(r.rows, r.columns) for r in refs}) > 1:
        raise NotAssessable("mixed matrix sizes within the series")
    pixel_spacings = np.array([r.pixel_spacing for r in refs], dtype=float)
    if np.abs(pixel_spacings - pixel_spacings[0]).max() > PIXEL_SPACING_TOLERANCE_MM:
        raise NotAssessable("mixed pixel spacing within the series")
    orientations = np.array([r.orientation for r in refs], dtype=float)
    if np.abs(orientations - orientations[0]).max() > ORIENTATION_TOLERANCE:
        raise NotAssessable("mixed slice orientations within the series")
    row_cos, col_cos = orientations[0, :3], orientations[0, 3:]
    if (abs(np.linalg.norm(row_cos) - 1) > ORTHONORMAL_TOLERANCE or abs(np.linalg.norm(col_cos) - 1) > ORTHONORMAL_TOLERANCE
            or abs(np.dot(row_cos, col_cos)) > ORTHONORMAL_TOLERANCE):
        raise NotAssessable("image orientation cosines are not orthonormal")
    normal = np.cross(row_cos, col_cos)
    positions = np.array([r.position for r in refs], dtype=float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along, positions = along[order], positions[order]
    ordered = tuple(refs[i] for i in order)
    steps = np.diff(along)
    if np.any(steps < DUPLICATE_TOLERANCE_MM):
        count = int(np.sum(steps < DUPLICATE_TOLERANCE_MM))
        raise NotAssessable(f"{count} duplicate slice position(s)")
    # In-plane drift between slices: a tilted gantry shears the stack.
    drift = positions - positions[0] - np.outer(along - along[0], normal)
    extent = along[-1] - along[0]
    if np.linalg.norm(drift, axis=1).max() > TILT_TOLERANCE * extent + 0.05:
        raise NotAssessable("gantry tilt: slices are not stacked along their normal (sheared volume)")
    # The regular step is the one most slices share; missing slices only ever make steps longer.
    usual = float(np.median(steps[steps <= steps.min() * 1.1]))
    tolerance = max(SPACING_ABSOLUTE_TOLERANCE_MM, SPACING_RELATIVE_TOLERANCE * usual)
    irregular = np.abs(steps - usual) > tolerance
    if np.any(irregular):
        gaps = steps[irregular]
        if np.any(gaps > 1.5 * usual):
            missing_slices = int(np.sum(np.round(gaps[gaps > 1.5 * usual] / usual) - 1))
            raise NotAssessable(f"gap in the slice positions: about {missing_slices} slice(s) missing "
                                f"(steps of {gaps.max():.2f} mm where {usual:.2f} mm is usual)")
        raise NotAssessable(f"non-uniform slice spacing ({steps.min():.2f} to {steps.max():.2f} mm)")
    # Uniform: the mean step spans first to last slice exactly (a median would let rounding accumulate).
    step = float((along[-1] - along[0]) / (len(along) - 1))
    problems: list[str] = []
    deviation = float(np.abs(along - along[0] - step * np.arange(len(along))).max())
    if deviation > JITTER_REPORTED_MM:
        problems.append(f"slice positions deviate up to {deviation:.3f} mm from a uniform {step:.3f} mm step "
                        "(within tolerance; the uniform step is used)")
    if step > COARSE_STEP_MM:
        problems.append(f"slice step {step:.1f} mm is coarse: heights along the body axis are imprecise")
    spacing_y, spacing_x = ordered[0].pixel_spacing  # type: ignore[misc]
    direction = np.column_stack([row_cos, col_cos, normal])
    return Stack(slices=ordered, origin=tuple(float(v) for v in positions[0]),  # type: ignore[arg-type]
                 spacing_xyz=(float(spacing_x), float(spacing_y), step),
                 direction=tuple(float(v) for v in direction.flatten()), problems=tuple(problems))
