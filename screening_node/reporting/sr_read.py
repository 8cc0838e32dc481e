"""Read our TID 1500 report back into plain values (tests, evaluator, dashboard).

Uses highdicom's SR parsers, so what we check is what any highdicom reader sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes

from screening_node.analysis.results import HEIGHT_NAMES
from screening_node.reporting import codes as sn
from screening_node.reporting.sr import STUDY_SUMMARY_ID


@dataclass
class VertebraValues:
    label: str | None
    tracking_uid: str
    assessable: bool = True
    heights_mm: dict[str, float] = field(default_factory=dict)
    endpoints_lps_mm: dict[str, np.ndarray] = field(default_factory=dict)  # height name -> (2, 3)
    height_loss_percent: float | None = None
    # (lower, upper) measurement uncertainty of the loss, percentage points (TID 310)
    height_loss_uncertainty_percent: tuple[float, float] | None = None
    grade: int | None = None
    morphology: str | None = None
    reason: str | None = None
    segment_number: int | None = None
    segmentation_uid: str | None = None


@dataclass
class ReportValues:
    vertebrae: list[VertebraValues]
    worst_grade: int | None
    fracture_suspected: bool | None
    vertebrae_assessed: int
    study_reason: str | None
    device_name: str | None
    notes: tuple[str, ...] = ()  # the analysis' notes (results.json "notes"), in order


def _texts(group, concept) -> list[str]:
    return [item.TextValue for item in group[0].ContentSequence
            if item.ValueType == "TEXT" and sn.same_code(hd.sr.CodedConcept.from_dataset(item.ConceptNameCodeSequence[0]), concept)]


def _evaluation(group, concept):
    found = group.get_qualitative_evaluations(name=concept)
    return found[0].value if found else None


def _uncertainty(measurement) -> tuple[float, float] | None:
    """(lower, upper) from a measurement's TID 310 properties (content items of its NUM item); None where it
    has none."""
    found: dict[str, float] = {}
    for item in getattr(measurement[0], "ContentSequence", []):
        if item.ValueType != "NUM":
            continue
        name = hd.sr.CodedConcept.from_dataset(item.ConceptNameCodeSequence[0])
        for side, code in (("lower", codes.SCT.RangeOfLowerMeasurementUncertainty),
                           ("upper", codes.SCT.RangeOfUpperMeasurementUncertainty)):
            if sn.same_code(name, code):
                found[side] = float(item.MeasuredValueSequence[0].NumericValue)
    return (found["lower"], found["upper"]) if len(found) == 2 else None


def read_sr_values(path: Path) -> ReportValues:
    sr = hd.sr.srread(path)
    groups = sr.content.get_image_measurement_groups()
    segments = {g.tracking_uid: g for g in sr.content.get_volumetric_roi_measurement_groups()}
    vertebrae: list[VertebraValues] = []
    summary = None
    for g in groups:
        if g.tracking_identifier == STUDY_SUMMARY_ID:
            summary = g
            continue
        v = VertebraValues(label=sn.level_from_code(g.finding_sites[0].value), tracking_uid=g.tracking_uid)
        assess = _evaluation(g, sn.ASSESSABILITY)
        v.assessable = not (assess is not None and sn.same_code(assess, sn.NOT_ASSESSABLE))
        for name in HEIGHT_NAMES:
            found = g.get_measurements(name=sn.HEIGHT_CONCEPTS[name])
            if found:
                v.heights_mm[name] = float(found[0].value)
                coords = found[0].referenced_coordinates
                if coords:
                    v.endpoints_lps_mm[name] = np.asarray(coords[0].value, float)
        loss = g.get_measurements(name=sn.HEIGHT_LOSS)
        v.height_loss_percent = float(loss[0].value) if loss else None
        v.height_loss_uncertainty_percent = _uncertainty(loss[0]) if loss else None
        grade = _evaluation(g, sn.GENANT_GRADE)
        v.grade = None if grade is None else sn.grade_from_code(grade)
        morph = _evaluation(g, sn.MORPHOLOGY)
        v.morphology = None if morph is None else sn.morphology_from_code(morph)
        reasons = _texts(g, sn.REASON_NOT_ASSESSABLE)
        v.reason = reasons[0] if reasons else None
        roi = segments.get(g.tracking_uid)
        if roi is not None:
            item = roi.referenced_segment[0]  # the IMAGE content item "Referenced Segment"
            v.segment_number = int(item.ReferencedSOPSequence[0].ReferencedSegmentNumber)
            v.segmentation_uid = item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        vertebrae.append(v)
    if summary is None:
        raise ValueError(f"{path}: no study summary group")
    worst = _evaluation(summary, sn.WORST_GRADE)
    suspected = _evaluation(summary, sn.FRACTURE_SUSPECTED)
    count = summary.get_measurements(name=sn.VERTEBRAE_ASSESSED)
    reasons = _texts(summary, sn.REASON_NOT_ASSESSABLE)
    notes = tuple(_texts(summary, sn.ANALYSIS_NOTE))
    device = None
    for item in sr.ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeValue == "121013" and item.ValueType == "TEXT":  # Device Observer Name
            device = item.TextValue
    return ReportValues(
        vertebrae=vertebrae, worst_grade=None if worst is None else sn.grade_from_code(worst),
        fracture_suspected=None if suspected is None else sn.same_code(suspected, sn.YES),
        vertebrae_assessed=int(count[0].value) if count else 0, study_reason=reasons[0] if reasons else None,
        device_name=device, notes=notes)
