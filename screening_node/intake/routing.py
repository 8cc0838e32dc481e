"""Routing rules: should a complete series be screened? Each decision carries its reason.

Pure functions over ``SeriesFacts`` (what the headers say) and the routing
settings, so every rule is unit-testable without a network or a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pydicom

from screening_node.config import RoutingSection
from screening_node.imaging.geometry import slice_plane

REJECTED_IMAGE_TYPES = ("LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "MPR", "REFORMATTED", "PROJECTION IMAGE",
                        "MIP", "VOLUME", "SECONDARY")
# A sagittal reformat (DERIVED\SECONDARY\MPR or REFORMATTED as vendors write it) is a stack of planar sections;
# these are not: projections, rendered volumes, curved reformats, saved screens.
NOT_SECTION_IMAGE_TYPES = ("LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "PROJECTION IMAGE", "MIP", "MINIP",
                           "VOLUME", "VR", "VRT", "3D", "CPR", "CURVED", "SCREEN SAVE")
HEADER_TAGS = ["Modality", "ImageType", "ImageOrientationPatient", "ImagePositionPatient", "BodyPartExamined",
               "Rows", "Columns", "PixelSpacing",
               "ProtocolName", "SeriesDescription", "StudyDescription", "ConvolutionKernel", "SliceThickness",
               "PatientAge", "PatientBirthDate", "StudyDate", "SeriesNumber", "SOPClassUID", "NumberOfFrames",
               "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"]


@dataclass(frozen=True)
class SeriesFacts:
    """What routing needs to know about one complete series."""

    series_uid: str
    modality: str | None
    image_types: tuple[str, ...]  # the ImageType values of the first instance, upper case
    orientation: tuple[float, ...] | None  # ImageOrientationPatient (6), None when missing or mixed
    positions_along_normal_mm: tuple[float, ...]  # one per slice (frame), sorted
    text_fields: tuple[str, ...]  # body part, protocol, series and study description
    kernel: str | None
    slice_thickness_mm: float | None
    patient_age_years: float | None
    series_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    pixel_spacing_mm: tuple[float, float] | None = None  # PixelSpacing: between rows, between columns

    @property
    def plane(self) -> str | None:
        """axial, sagittal, coronal or oblique (geometry.slice_plane), or None without one orientation."""
        if self.orientation is None:
            return None
        return slice_plane(np.cross(self.orientation[:3], self.orientation[3:]))

    @property
    def in_plane_z_extent_mm(self) -> float | None:
        """How far the image plane reaches along the patient's long axis (a sagittal series' coverage of the
        spine): its rows' and columns' extents projected on z."""
        if self.orientation is None or not (self.rows and self.columns and self.pixel_spacing_mm):
            return None
        along_row, along_column = abs(self.orientation[2]), abs(self.orientation[5])
        return float(along_row * self.columns * self.pixel_spacing_mm[1]
                     + along_column * self.rows * self.pixel_spacing_mm[0])

    @property
    def in_plane_z_step_mm(self) -> float | None:
        """A sagittal or coronal series' pixel along z: its resolution along the spine."""
        if self.orientation is None or not self.pixel_spacing_mm:
            return None
        along_row, along_column = abs(self.orientation[2]), abs(self.orientation[5])
        return float(self.pixel_spacing_mm[1] if along_row >= along_column else self.pixel_spacing_mm[0])

    @property
    def slices(self) -> int:
        return len(self.positions_along_normal_mm)

    @property
    def z_coverage_mm(self) -> float:
        p = self.positions_along_normal_mm
        return float(p[-1] - p[0]) if len(p) > 1 else 0.0

    @property
    def max_spacing_mm(self) -> float | None:
        p = self.positions_along_normal_mm
        return float(np.max(np.diff(p))) if len(p) > 1 else None


@dataclass(frozen=True)
class Decision:
    eligible: bool
    reason: str


def _normalise(text: str) -> str:
    return re.sub(r"[\s_\-^.]+", "", text.upper())


def _age_years(age: str | None, birth: str | None, study_date: str | None) -> float | None:
    if age:
        match = re.fullmatch(r"(\d{1,3})([DWMY])", age.strip().upper())
        if match:
            value = int(match.group(1))
            return value / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[match.group(2)]
    try:
        if birth and study_date:
            b = date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
            s = date(int(study_date[:4]), int(study_date[4:6]), int(study_date[6:8]))
            return (s - b).days / 365.25
    except (ValueError, IndexError):
        return None
    return None


def decide(facts: SeriesFacts, rules: RoutingSection) -> Decision:
    """Apply every rule in order; the first that fails gives the reason. A sagittal series is judged by the
    rules of a sagittal reformat where the settings allow one (routing.sagittal_reformats), and is screened
    only where no axial series of its study is eligible (preference_key)."""
    if (facts.modality or "").upper() not in {m.upper() for m in rules.modalities}:
        return Decision(False, f"modality {facts.modality or 'missing'} is not screened ({', '.join(rules.modalities)} only)")
    if facts.plane == "sagittal" and rules.sagittal_reformats:
        return _decide_sagittal(facts, rules)
    if "ORIGINAL" not in facts.image_types or "PRIMARY" not in facts.image_types:
        return Decision(False, f"not an original primary image series (ImageType {'/'.join(facts.image_types) or 'missing'})")
    rejected = [t for t in facts.image_types if t in REJECTED_IMAGE_TYPES]
    if rejected:
        return Decision(False, f"image type {rejected[0]} is not an axial acquisition")
    if facts.orientation is None:
        return Decision(False, "image orientation missing or mixed within the series")
    if facts.plane != "axial":
        return Decision(False, "slices are not axial (sagittal, coronal or strongly oblique)")
    problem = _body_part_problem(facts, rules)
    if problem is not None:
        return Decision(False, problem)
    if facts.slices < rules.min_slices:
        return Decision(False, f"{facts.slices} slices, fewer than the {rules.min_slices} required")
    if facts.z_coverage_mm < rules.min_z_coverage_mm:
        return Decision(False, f"covers {facts.z_coverage_mm:.0f} mm, less than the {rules.min_z_coverage_mm:.0f} mm required")
    spacing = facts.max_spacing_mm
    if spacing is not None and spacing > rules.max_slice_spacing_mm + 1e-3:
        return Decision(False, f"slice spacing {spacing:.1f} mm exceeds {rules.max_slice_spacing_mm:.1f} mm")
    thick = facts.slice_thickness_mm
    if thick is not None and thick > rules.max_slice_thickness_mm + 1e-3:
        return Decision(False, f"slice thickness {thick:g} mm exceeds {rules.max_slice_thickness_mm:g} mm")
    problem = _age_problem(facts, rules)
    if problem is not None:
        return Decision(False, problem)
    thickness = f", {facts.slice_thickness_mm:g} mm slices" if facts.slice_thickness_mm else ""
    return Decision(True, f"eligible: {facts.modality} original primary axial, {facts.slices} slices, "
                          f"{facts.z_coverage_mm:.0f} mm coverage{thickness}")


def _decide_sagittal(facts: SeriesFacts, rules: RoutingSection) -> Decision:
    """A sagittal series, most often a reformat (DERIVED MPR) of thin slices kept beside thick axial ones: fine
    along the spine (its pixels), thick across it (its slices). It must be a stack of sections (no projection,
    rendering or curved reformat), cover the spine as far as an axial series must, and reach far enough to
    each side for the ribs and the pelvis that label the levels (routing.min_sagittal_width_mm)."""
    not_sections = [t for t in facts.image_types if t in NOT_SECTION_IMAGE_TYPES]
    if not_sections:
        return Decision(False, f"image type {not_sections[0]} is not a stack of sagittal sections")
    problem = _body_part_problem(facts, rules)
    if problem is not None:
        return Decision(False, problem)
    along, step = facts.in_plane_z_extent_mm, facts.in_plane_z_step_mm
    if along is None or step is None:
        return Decision(False, "sagittal series without rows, columns or pixel spacing: its coverage is unknown")
    if along < rules.min_z_coverage_mm:
        return Decision(False, f"sagittal series covers {along:.0f} mm along the spine, less than the "
                               f"{rules.min_z_coverage_mm:.0f} mm required")
    if step > rules.max_slice_spacing_mm + 1e-3:
        return Decision(False, f"sagittal pixels {step:.1f} mm along the spine exceed "
                               f"{rules.max_slice_spacing_mm:.1f} mm")
    spacing, thick = facts.max_spacing_mm, facts.slice_thickness_mm
    width = facts.z_coverage_mm + (spacing or thick or 0.0)  # first to last slice, and half a slab beyond each
    if width < rules.min_sagittal_width_mm:
        return Decision(False, f"sagittal series {width:.0f} mm wide, less than the "
                               f"{rules.min_sagittal_width_mm:.0f} mm required (the ribs and the pelvis beside the "
                               "spine label the levels)")
    if spacing is not None and spacing > rules.max_slice_spacing_mm + 1e-3:
        return Decision(False, f"sagittal slices {spacing:.1f} mm apart exceed {rules.max_slice_spacing_mm:.1f} mm")
    if thick is not None and thick > rules.max_slice_thickness_mm + 1e-3:
        return Decision(False, f"sagittal slices {thick:g} mm thick exceed {rules.max_slice_thickness_mm:g} mm")
    problem = _age_problem(facts, rules)
    if problem is not None:
        return Decision(False, problem)
    thickness = f", {thick:g} mm slices" if thick else ""
    return Decision(True, f"eligible where no axial series is: {facts.modality} sagittal "
                          f"{'/'.join(facts.image_types) or 'series'}, {facts.slices} slices, {width:.0f} mm wide, "
                          f"{along:.0f} mm along the spine, {step:g} mm pixels{thickness}")


def _body_part_problem(facts: SeriesFacts, rules: RoutingSection) -> str | None:
    """Why the body part, protocol and descriptions do not name a chest or abdomen scan, or None."""
    texts = [_normalise(t) for t in facts.text_fields if t]
    for keyword in rules.reject_keywords:
        if any(_normalise(keyword) in t for t in texts):
            return f"body part / protocol names {keyword.lower()}: not a chest or abdomen scan"
    if not texts:
        if not rules.accept_unknown_body_part:
            return "no body part, protocol or description to tell a chest or abdomen scan"
    elif not any(_normalise(k) in t for k in rules.body_part_keywords for t in texts):
        shown = "; ".join(t for t in facts.text_fields if t)[:120]
        return f"body part / protocol / description ({shown}) is not chest, abdomen or trunk"
    return None


def _age_problem(facts: SeriesFacts, rules: RoutingSection) -> str | None:
    """Why the patient's age rules the series out (routing.min_patient_age_years), or None."""
    if rules.min_patient_age_years > 0:
        if facts.patient_age_years is None:
            return "patient age unknown and a minimum age is configured"
        if facts.patient_age_years < rules.min_patient_age_years:
            return f"patient younger than {rules.min_patient_age_years} years"
    return None


def preference_key(facts: SeriesFacts, rules: RoutingSection) -> tuple[int, float, int, int]:
    """Sort key of eligible series: an axial series before a sagittal reformat (the reformat is screened only
    where no axial series is eligible), then thinnest slices, then kernel preference, then more slices.

    With routing.sagittal_before_axial_thicker_than_mm set, an axial series thicker than that goes behind the
    sagittal ones: a reformat made from thin slices reads heights at its pixels (on phantoms, 3 mm sagittal
    slabs graded as 1 mm axial slices do, 3 mm axial slices worse), but a header does not tell whether it
    was made from thin slices, so by default the acquired axial series is trusted first."""
    thickness = facts.slice_thickness_mm or facts.max_spacing_mm or 99.0
    kernel = (facts.kernel or "").upper()
    rank = next((i for i, k in enumerate(rules.kernel_preference) if k.upper() in kernel), len(rules.kernel_preference))
    limit = rules.sagittal_before_axial_thicker_than_mm
    if facts.plane == "sagittal":
        group = 1
    else:
        group = 2 if limit > 0 and thickness > limit + 1e-3 else 0
    return (group, round(thickness, 2), rank, -facts.slices)


def preference_reason(best: SeriesFacts, other: SeriesFacts, rules: RoutingSection) -> str:
    """Why ``best`` is screened rather than ``other`` (preference_key), in the words an administrator reads."""
    if best.plane == "sagittal" and other.plane != "sagittal":
        return (f"a sagittal series before axial slices thicker than {rules.sagittal_before_axial_thicker_than_mm:g} mm "
                "(routing.sagittal_before_axial_thicker_than_mm)")
    if other.plane == "sagittal" and best.plane != "sagittal":
        return "an axial series before a sagittal reformat"
    return "thinner slices or preferred kernel"


def choose_best(candidates: Sequence[SeriesFacts], rules: RoutingSection) -> SeriesFacts:
    return min(candidates, key=lambda f: preference_key(f, rules))


# -- reading facts from spooled headers ---------------------------------------------

def _frames(ds: pydicom.Dataset) -> Iterable[tuple[Sequence[float] | None, Sequence[float] | None]]:
    """(orientation, position) of each frame, for single-frame and Enhanced (multi-frame) CT."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
        for frame in ds.PerFrameFunctionalGroupsSequence:
            orient = None
            for group in (frame, shared):
                if group is not None and "PlaneOrientationSequence" in group:
                    orient = group.PlaneOrientationSequence[0].get("ImageOrientationPatient")
                    break
            pos = None
            if "PlanePositionSequence" in frame:
                pos = frame.PlanePositionSequence[0].get("ImagePositionPatient")
            yield orient, pos
    else:
        yield ds.get("ImageOrientationPatient"), ds.get("ImagePositionPatient")


def _shared_pixel_spacing(ds: pydicom.Dataset) -> Sequence[float] | None:
    """An Enhanced CT's PixelSpacing, kept in its shared functional groups (Pixel Measures)."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    measures = shared[0].get("PixelMeasuresSequence") if shared else None
    return measures[0].get("PixelSpacing") if measures else None


def facts_from_files(series_uid: str, files: Sequence[Path]) -> SeriesFacts:
    """Read the headers (no pixel data) of a series' spooled files."""
    return facts_from_datasets(series_uid, (pydicom.dcmread(path, stop_before_pixels=True) for path in files))


def facts_from_datasets(series_uid: str, datasets: Iterable[pydicom.Dataset]) -> SeriesFacts:
    """The facts of a series from its headers, already read (a Volume's reference_datasets) or read one by
    one (facts_from_files)."""
    orientations: set[tuple[float, ...]] = set()
    positions: list[np.ndarray] = []
    first: pydicom.Dataset | None = None
    for ds in datasets:
        first = first or ds
        for orient, pos in _frames(ds):
            if orient is None or len(orient) != 6:
                orientations.add(())
                continue
            orientations.add(tuple(round(float(v), 4) for v in orient))
            if pos is not None and len(pos) == 3:
                positions.append(np.array([float(v) for v in pos]))
    if first is None:
        raise ValueError("series has no files")
    orientation = next(iter(orientations)) if len(orientations) == 1 and () not in orientations else None
    along: list[float] = []
    if orientation is not None:
        normal = np.cross(orientation[:3], orientation[3:])
        along = sorted(float(np.dot(p, normal)) for p in positions)
    image_type = first.get("ImageType") or []
    image_types = tuple(str(v).upper() for v in (image_type if not isinstance(image_type, str) else [image_type]))
    kernel = first.get("ConvolutionKernel")
    if kernel is not None and not isinstance(kernel, str):
        kernel = "\\".join(str(k) for k in kernel)
    thickness = first.get("SliceThickness")
    number = first.get("SeriesNumber")
    spacing = first.get("PixelSpacing") or _shared_pixel_spacing(first)
    return SeriesFacts(
        series_uid=series_uid,
        modality=first.get("Modality"),
        image_types=image_types,
        orientation=orientation,
        positions_along_normal_mm=tuple(along),
        text_fields=tuple(str(first.get(k) or "") for k in ("BodyPartExamined", "ProtocolName",
                                                                "SeriesDescription", "StudyDescription")),
        kernel=kernel,
        slice_thickness_mm=float(thickness) if thickness not in (None, "") else None,
        patient_age_years=_age_years(first.get("PatientAge"), first.get("PatientBirthDate"), first.get("StudyDate")),
        series_number=int(number) if number not in (None, "") else None,
        rows=int(first.Rows) if first.get("Rows") else None,
        columns=int(first.Columns) if first.get("Columns") else None,
        pixel_spacing_mm=(float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else None,
    )
