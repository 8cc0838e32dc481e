"""Write every result object of one study: seg.dcm, sr.dcm, summary.dcm, summary.png.

An object that cannot be made is absent, with its reason in ``ReportObjects.missing``; one
failing object never stops the others (the SR is still written without a SEG reference).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import SimpleITK as sitk
from pydicom.dataset import Dataset

from screening_node.analysis.results import StudyResult
from screening_node.audit.events import study_key
from screening_node.reporting.common import no_phi_warnings
from screening_node.reporting.seg import SegResult, build_seg, tracking_uids
from screening_node.reporting.sr import build_sr
from screening_node.reporting.summary import SagittalView, build_summary_sc, render_summary

log = logging.getLogger(__name__)
SAGITTAL_VIEW_NAME = "sagittal_view.npz"


@dataclass
class ReportObjects:
    """Paths of the objects written; ``missing`` maps an object name to why it is absent."""

    seg: Path | None = None
    sr: Path | None = None
    summary_dcm: Path | None = None
    summary_png: Path | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def dicom_paths(self) -> list[Path]:
        return [p for p in (self.seg, self.sr, self.summary_dcm) if p is not None]


def _check_geometry(mask: sitk.Image, ct_image: sitk.Image) -> None:
    same = (mask.GetSize() == ct_image.GetSize()
            and all(abs(a - b) < 1e-3 for a, b in zip(mask.GetOrigin(), ct_image.GetOrigin()))
            and all(abs(a - b) < 1e-3 for a, b in zip(mask.GetSpacing(), ct_image.GetSpacing()))
            and all(abs(a - b) < 1e-4 for a, b in zip(mask.GetDirection(), ct_image.GetDirection())))
    if not same:
        raise ValueError("the body mask is not in the geometry of the CT volume")


def _write_seg(result: StudyResult, result_dir: Path, sources: Sequence[Dataset], ct_image: sitk.Image,
               objects: ReportObjects, tracking: dict[int, str]) -> SegResult | None:
    if not result.body_mask_path:
        objects.missing["seg"] = "the analysis wrote no body mask"
        return None
    mask_path = result_dir / result.body_mask_path
    if not mask_path.exists():
        objects.missing["seg"] = f"body mask {result.body_mask_path} is missing"
        return None
    try:
        mask = sitk.ReadImage(str(mask_path))
        _check_geometry(mask, ct_image)
        seg = build_seg(result, mask, sources, tracking=tracking)
    except ValueError as exc:  # our own refusals: clear reasons
        objects.missing["seg"] = str(exc)
        return None
    except Exception as exc:  # noqa: BLE001 - a library failure on odd input must not stop the other objects
        objects.missing["seg"] = f"SEG could not be built ({type(exc).__name__}: {exc})"
        return None
    objects.seg = result_dir / "seg.dcm"
    seg.dataset.save_as(objects.seg, enforce_file_format=True)
    return seg


def _write_summary(result: StudyResult, result_dir: Path, sources: Sequence[Dataset],
                   objects: ReportObjects) -> None:
    view_path = result_dir / SAGITTAL_VIEW_NAME
    if not view_path.exists():
        objects.missing["summary"] = f"the analysis wrote no {SAGITTAL_VIEW_NAME}"
        return
    try:
        picture = render_summary(result, SagittalView.load(view_path))
    except (KeyError, ValueError, OSError) as exc:
        objects.missing["summary"] = f"sagittal view unusable: {exc}"
        return
    objects.summary_png = result_dir / "summary.png"
    picture.save(objects.summary_png)
    try:
        sc = build_summary_sc(picture, sources)
    except Exception as exc:  # noqa: BLE001 - the PNG stays; the DICOM copy is reported missing
        objects.missing["summary"] = f"Secondary Capture could not be built ({type(exc).__name__}: {exc})"
        return
    objects.summary_dcm = result_dir / "summary.dcm"
    sc.save_as(objects.summary_dcm, enforce_file_format=True)


def write_report_objects(result: StudyResult, result_dir: Path, source_datasets: Sequence[Dataset],
                         ct_image: sitk.Image) -> ReportObjects:
    """Write SEG, SR and summary (DICOM + PNG) into ``result_dir``; never raises for bad results.

    ``source_datasets``: the CT series' headers (pixel data not needed) in slice order.
    ``ct_image``: the CT volume (LPS) the body mask shares its geometry with.
    """
    result_dir = Path(result_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    objects = ReportObjects()
    if not source_datasets:
        for name in ("seg", "sr", "summary"):
            objects.missing[name] = "no source CT instances were given"
        return objects
    tracking = tracking_uids(result)
    with no_phi_warnings():
        seg = _write_seg(result, result_dir, source_datasets, ct_image, objects, tracking)
        try:
            sr = build_sr(result, source_datasets, seg, tracking=tracking)
        except Exception as exc:  # noqa: BLE001 - recorded as the reason; the summary is still attempted
            objects.missing["sr"] = f"SR could not be built ({type(exc).__name__}: {exc})"
        else:
            objects.sr = result_dir / "sr.dcm"
            sr.save_as(objects.sr, enforce_file_format=True)
        _write_summary(result, result_dir, source_datasets, objects)
    key = study_key(str(result.input.get("study_uid") or source_datasets[0].get("StudyInstanceUID", "")))
    for name, reason in objects.missing.items():
        log.info("study %s: report object %s not made: %s", key, name, reason)
    return objects
