"""TID 1500 Measurement Report (Comprehensive 3D SR) of the vertebral heights and Genant grades.

Per vertebra, two measurement groups share one Tracking Identifier and Tracking UID:

- a TID 1501 group with the finding site, the three heights (mm) each inferred from a
  SCOORD3D POLYLINE of its two endplate points in the CT frame of reference, the height loss
  (%), the Genant grade and morphology (coded), and the reason when not assessable;
- a TID 1411 volumetric ROI group that points at the vertebra's segment in our SEG.

Two groups because TID 1411's ROI measurements (TID 1419) may not carry their own
coordinates, and TID 1501 cannot reference a segment. A last TID 1501 group summarises the
study: worst grade, fracture suspected yes/no, number of vertebrae assessed.
"""

from __future__ import annotations

from typing import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from screening_node.analysis.results import HEIGHT_KEYPOINTS, HEIGHT_NAMES, StudyResult, Vertebra
from screening_node.reporting import codes as sn
from screening_node.reporting.common import (
    ALGORITHM_NAME, DEVICE_SERIAL, MANUFACTURER, MODEL_NAME, SOFTWARE_VERSION, SR_SERIES,
    copy_patient_study, reference_dataset,
)
from screening_node.reporting.seg import SegResult, segment_label, tracking_uids

STUDY_SUMMARY_ID = "Study summary"


def device_uid() -> str:
    """A stable UID for this software version as an observer device."""
    return generate_uid(entropy_srcs=[MODEL_NAME, SOFTWARE_VERSION])


def observation_context() -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(), name=f"{MODEL_NAME} {SOFTWARE_VERSION}", manufacturer_name=MANUFACTURER,
        model_name=MODEL_NAME, serial_number=DEVICE_SERIAL,
    )
    return hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))


def algorithm(engine: str) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name=f"{ALGORITHM_NAME} ({engine} engine)", version=SOFTWARE_VERSION)


def _height_measurements(v: Vertebra, frame_of_reference_uid: str, site: hd.sr.FindingSite) -> list[hd.sr.Measurement]:
    if not v.heights_mm:
        return []
    out = []
    for name in HEIGHT_NAMES:
        if name not in v.heights_mm:
            continue
        coordinates = None
        if v.keypoints_lps_mm:
            top, bottom = HEIGHT_KEYPOINTS[name]
            points = np.array([v.keypoints_lps_mm[top], v.keypoints_lps_mm[bottom]], dtype=float)
            coordinates = [hd.sr.CoordinatesForMeasurement3D(
                graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE, graphic_data=points,
                frame_of_reference_uid=frame_of_reference_uid)]
        out.append(hd.sr.Measurement(
            name=sn.HEIGHT_CONCEPTS[name], value=float(v.heights_mm[name]), unit=sn.MM,
            finding_sites=[site], referenced_coordinates=coordinates))
    return out


def _evaluations(v: Vertebra) -> list[hd.sr.QualitativeEvaluation]:
    if not v.assessable:
        return [hd.sr.QualitativeEvaluation(sn.ASSESSABILITY, sn.NOT_ASSESSABLE)]
    out = []
    if v.grade is not None:
        out.append(hd.sr.QualitativeEvaluation(sn.GENANT_GRADE, sn.GRADE_CODES[int(v.grade)]))
    if v.morphology is not None:
        out.append(hd.sr.QualitativeEvaluation(sn.MORPHOLOGY, sn.MORPHOLOGY_CODES[v.morphology]))
    return out


def _loss_uncertainty(v: Vertebra) -> hd.sr.MeasurementProperties | None:
    """The height loss's spread at the CT's sampling (analysis/uncertainty.py) as TID 310's ranges of lower and
    upper measurement uncertainty, in the loss's own percentage points."""
    if v.height_loss_range is None or v.height_loss is None:
        return None
    low, high = v.height_loss_range
    return hd.sr.MeasurementProperties(
        lower_measurement_uncertainty=round(100.0 * (float(v.height_loss) - low), 3),
        upper_measurement_uncertainty=round(100.0 * (high - float(v.height_loss)), 3))


def _add_text(group: hd.sr.MeasurementsAndQualitativeEvaluations, name: hd.sr.CodedConcept, text: str) -> None:
    """Free text: a reason not assessable, an analysis note (TID 1501 qualitative evaluations may be TEXT;
    highdicom builds CODE only)."""
    group[0].ContentSequence.append(hd.sr.TextContentItem(
        name=name, value=text[:1024], relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))


def vertebra_groups(v: Vertebra, engine: str, frame_of_reference_uid: str, series_uid: str,
                    seg: SegResult | None, index: int, tracking_uid: str) -> list:
    tracking = hd.sr.TrackingIdentifier(uid=tracking_uid, identifier=segment_label(v))
    site = hd.sr.FindingSite(sn.vertebra_code(v.label))
    measurements = _height_measurements(v, frame_of_reference_uid, site)
    if v.assessable and v.height_loss is not None:
        measurements.append(hd.sr.Measurement(
            name=sn.HEIGHT_LOSS, value=round(100.0 * float(v.height_loss), 3), unit=sn.PERCENT,
            finding_sites=[site], properties=_loss_uncertainty(v)))
    values = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, finding_sites=[site], algorithm_id=algorithm(engine),
        measurements=measurements or None, qualitative_evaluations=_evaluations(v) or None)
    if not v.assessable:
        _add_text(values, sn.REASON_NOT_ASSESSABLE, v.reason or "not stated by the analysis")
    groups: list = [values]
    if seg is not None and index in seg.segment_numbers:
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, finding_sites=[site], algorithm_id=algorithm(engine),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=seg.dataset.SOPClassUID, sop_instance_uid=seg.dataset.SOPInstanceUID,
                segment_number=seg.segment_numbers[index],
                source_series=hd.sr.SourceSeriesForSegmentation(series_uid))))
    return groups


def summary_group(result: StudyResult) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    assessed = sum(1 for v in result.vertebrae if v.assessable)
    site = hd.sr.FindingSite(sn.VERTEBRAL_COLUMN)
    evaluations = []
    if result.max_grade is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(sn.WORST_GRADE, sn.GRADE_CODES[result.max_grade]))
    if assessed:
        evaluations.append(hd.sr.QualitativeEvaluation(
            sn.FRACTURE_SUSPECTED, sn.YES if result.fracture_suspected else sn.NO))
    else:
        evaluations.append(hd.sr.QualitativeEvaluation(sn.ASSESSABILITY, sn.NOT_ASSESSABLE))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=STUDY_SUMMARY_ID),
        finding_sites=[site], algorithm_id=algorithm(result.engine),
        measurements=[hd.sr.Measurement(name=sn.VERTEBRAE_ASSESSED, value=assessed, unit=sn.COUNT)],
        qualitative_evaluations=evaluations)
    if not assessed:
        _add_text(group, sn.REASON_NOT_ASSESSABLE, result.reason or "no vertebra could be assessed")
    for note in result.notes:  # how the levels were counted, a body graded from its tallest height, ...
        _add_text(group, sn.ANALYSIS_NOTE, note)
    return group


def build_sr(result: StudyResult, source_datasets: Sequence[Dataset], seg: SegResult | None = None,
             series_uid: str | None = None, tracking: dict[int, str] | None = None) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 report of ``result`` on the source CT series (and its SEG, when one was made)."""
    ref = reference_dataset(source_datasets)
    tracking = tracking or tracking_uids(result)
    groups: list = []
    for index, vertebra in enumerate(result.vertebrae):
        groups += vertebra_groups(vertebra, result.engine, ref.FrameOfReferenceUID, ref.SeriesInstanceUID,
                                  seg, index, tracking[index])
    groups.append(summary_group(result))
    report = hd.sr.MeasurementReport(
        observation_context=observation_context(), procedure_reported=sn.PROCEDURE,
        imaging_measurements=groups, title=sn.REPORT_TITLE)
    evidence = list(source_datasets) + ([seg.dataset] if seg is not None else [])
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=series_uid or hd.UID(),
        series_number=SR_SERIES.number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, series_description=SR_SERIES.description)
    sr.CodingSchemeIdentificationSequence = [sn.coding_scheme_identification()]
    copy_patient_study(sr, ref)
    return sr
