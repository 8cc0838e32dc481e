"""Summary picture: the straightened mid-sagittal view with keypoints, heights and grades.

Input is ``sagittal_view.npz`` from the analysis: ``image`` float32 HU (rows, cols), 1 mm
pixels, row 0 cranial, columns anterior -> posterior; ``centre_lps`` (rows, 3) LPS of pixel
(r, centre_col); ``col_dir_lps`` / ``row_dir_lps`` (rows, 3) unit vectors; ``centre_col``.
So LPS(r, c) = centre_lps[r] + (c - centre_col) * col_dir_lps[r]. The same RGB picture becomes
summary.png and a Secondary Capture image in the CT's study.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from screening_node.analysis.results import HEIGHT_KEYPOINTS, KEYPOINT_NAMES, StudyResult, Vertebra
from screening_node.reporting.codes import GRADE_NAMES
from screening_node.reporting.common import (
    MANUFACTURER, MODEL_NAME, SCREENING_AID_NOTICE, SOFTWARE_VERSION, SUMMARY_SERIES,
    copy_patient_study, reference_dataset,
)

RGB = tuple[int, int, int]
GRADE_COLOURS: dict[int, RGB] = {0: (40, 200, 60), 1: (250, 230, 40), 2: (255, 140, 0), 3: (230, 30, 30)}
NOT_ASSESSABLE_COLOUR: RGB = (150, 150, 150)
WINDOW_LEVEL_HU, WINDOW_WIDTH_HU = 400.0, 1800.0  # bone window: endplates and soft tissue both visible
HEADER_PX, FOOTER_PX, LEFT_PX, PANEL_PX = 44, 40, 110, 420
SEARCH_ROWS_MM = 60  # keypoints are looked for within this distance (rows) of their vertebra


@dataclass(frozen=True)
class SagittalView:
    image: np.ndarray  # (rows, cols) HU
    centre_lps: np.ndarray  # (rows, 3)
    col_dir_lps: np.ndarray  # (rows, 3)
    row_dir_lps: np.ndarray  # (rows, 3)
    centre_col: int

    @classmethod
    def load(cls, path: Path) -> "SagittalView":
        with np.load(path) as data:
            return cls(np.asarray(data["image"], np.float32), np.asarray(data["centre_lps"], float),
                       np.asarray(data["col_dir_lps"], float), np.asarray(data["row_dir_lps"], float),
                       int(data["centre_col"]))

    def to_pixel(self, point, near_row: float | None = None) -> tuple[float, float]:
        """(row, col) of an LPS point: the row whose plane passes closest, then the column offset."""
        offsets = np.asarray(point, float)[None, :] - self.centre_lps
        along = np.einsum("ij,ij->i", offsets, self.row_dir_lps)
        candidates = np.arange(len(along))
        if near_row is not None:
            candidates = candidates[np.abs(candidates - near_row) <= SEARCH_ROWS_MM]
        r = int(candidates[np.argmin(np.abs(along[candidates]))])
        col = self.centre_col + float(offsets[r] @ self.col_dir_lps[r])
        return r + float(along[r]), col


def colour_of(v: Vertebra) -> RGB:
    return GRADE_COLOURS[int(v.grade)] if v.assessable and v.grade is not None else NOT_ASSESSABLE_COLOUR


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _grey(image_hu: np.ndarray) -> np.ndarray:
    low = WINDOW_LEVEL_HU - WINDOW_WIDTH_HU / 2
    scaled = (image_hu - low) / WINDOW_WIDTH_HU * 255.0
    return np.clip(scaled, 0, 255).astype(np.uint8)


def scale_for(rows: int) -> int:
    """Whole-number zoom so a typical 300-600 mm view fills about 900 pixels of height."""
    return int(min(4, max(1, round(900 / max(rows, 1)))))


def _describe(v: Vertebra) -> str:
    name = v.label or "unlabelled"
    if not v.assessable:
        return f"{name}: not assessable - {v.reason or 'no reason given'}"
    grade = "?" if v.grade is None else f"{v.grade} {GRADE_NAMES[int(v.grade)]}"
    if v.grade_uncertain:  # the grades the loss's spread at the CT's sampling spans (analysis/uncertainty.py)
        grade += f" (reads {v.grade_range[0]}-{v.grade_range[1]} at these slices)"  # type: ignore[index]
    loss = "" if v.height_loss is None else f", loss {100 * v.height_loss:.0f}%"
    if v.height_loss_spread is not None:
        loss += f" +-{100 * v.height_loss_spread:.0f}"
    morph = "" if not v.morphology or v.morphology == "normal" else f", {v.morphology}"
    return f"{name}: grade {grade}{loss}{morph}"


def summary_lines(result: StudyResult) -> list[str]:
    """The findings listed beside the picture: one line per vertebra; a reason that holds for the whole
    study (slices too thick to measure) is said once, first, not repeated for every vertebra; then the
    analysis' notes (how the levels were counted and how sure they are, a body graded from its tallest
    height because its keypoints are not all on its endplates, blood set aside), which a reader of the
    picture needs as much as the grades."""
    shared = result.reason if result.status == "not_assessable" else None
    head = [f"Study not assessable - {shared}"] if shared else []
    findings = [_describe(v) for v in result.vertebrae if not (shared and v.reason == shared)]
    return head + findings + [f"Note: {note}" for note in result.notes]


def render_summary(result: StudyResult, view: SagittalView) -> Image.Image:
    """The RGB picture (Pillow) that goes into summary.png and the Secondary Capture."""
    s = scale_for(view.image.shape[0])
    grey = Image.fromarray(_grey(view.image)).resize(
        (view.image.shape[1] * s, view.image.shape[0] * s), Image.Resampling.BILINEAR).convert("RGB")
    lines = summary_lines(result)
    wrapped = [w for line in lines for w in textwrap.wrap(line, 46)]
    panel_h = 40 + 5 * 22 + 30 + 18 * len(wrapped)
    width = LEFT_PX + grey.width + PANEL_PX
    height = HEADER_PX + max(grey.height, panel_h) + FOOTER_PX
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    canvas.paste(grey, (LEFT_PX, HEADER_PX))
    draw = ImageDraw.Draw(canvas)
    big, small = _font(20), _font(14)

    worst = result.max_grade
    assessed = sum(v.assessable for v in result.vertebrae)
    title = "Vertebral fracture screening - "
    title += ("not assessable" if not assessed else
              f"worst grade {worst} ({GRADE_NAMES[worst]})" + (" - fracture suspected" if result.fracture_suspected
                                                              else f" - no fracture suspected (flagged from grade "
                                                                   f"{result.suspect_min_grade})"))
    title_font, size = big, 20
    while size > 10 and draw.textlength(title, font=title_font) > width - 20:  # the title always fits
        size -= 1
        title_font = _font(size)
    draw.text((10, 10), title, fill=(255, 255, 255), font=title_font)

    def xy(row: float, col: float) -> tuple[float, float]:
        return LEFT_PX + (col + 0.5) * s, HEADER_PX + (row + 0.5) * s

    for v in result.vertebrae:
        colour = colour_of(v)
        centre_row, _ = view.to_pixel(v.centroid_lps_mm)
        if v.keypoints_lps_mm:
            pix = {n: view.to_pixel(v.keypoints_lps_mm[n], centre_row) for n in KEYPOINT_NAMES
                   if n in v.keypoints_lps_mm}
            for top, bottom in HEIGHT_KEYPOINTS.values():
                if top in pix and bottom in pix:
                    draw.line([xy(*pix[top]), xy(*pix[bottom])], fill=colour, width=max(2, s))
            for r, c in pix.values():
                x, y = xy(r, c)
                draw.ellipse([x - 2 - s, y - 2 - s, x + 2 + s, y + 2 + s], outline=(255, 255, 255), fill=colour)
        tag = v.label or "?"
        tag += " NA" if not v.assessable else ("" if v.grade is None else f" G{v.grade}")
        _, y = xy(centre_row, 0)
        draw.text((8, y - 8), tag, fill=colour, font=small)

    x0 = LEFT_PX + grey.width + 16
    y = HEADER_PX + 4
    draw.text((x0, y), "Genant grade", fill=(255, 255, 255), font=small)
    y += 24
    legend = [(GRADE_COLOURS[g], f"{g} {GRADE_NAMES[g]}") for g in range(4)]
    legend.append((NOT_ASSESSABLE_COLOUR, "not assessable"))
    for colour, text in legend:
        draw.rectangle([x0, y + 2, x0 + 14, y + 16], fill=colour)
        draw.text((x0 + 22, y), text, fill=(255, 255, 255), font=small)
        y += 22
    y += 12
    for line in wrapped:
        draw.text((x0, y), line, fill=(230, 230, 230), font=small)
        y += 18
    footer = f"{SCREENING_AID_NOTICE}  {MODEL_NAME} {SOFTWARE_VERSION}"
    draw.text((10, height - FOOTER_PX + 12), footer, fill=(255, 255, 255), font=small)
    return canvas


def build_summary_sc(picture: Image.Image, source_datasets: Sequence[Dataset],
                     series_uid: str | None = None) -> hd.sc.SCImage:
    """Secondary Capture (RGB, 8 bit) of the picture in the CT's study.

    Patient orientation (P, F): columns run anterior -> posterior and rows cranial -> caudal
    along the straightened spine (approximately, the view follows the spinal curve).
    """
    ref = reference_dataset(source_datasets)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=np.asarray(picture.convert("RGB"), dtype=np.uint8),
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB, bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT, patient_orientation=("P", "F"),
        series_instance_uid=series_uid or hd.UID(), series_number=SUMMARY_SERIES.number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        series_description=SUMMARY_SERIES.description, transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    sc.ImageComments = SCREENING_AID_NOTICE
    sc.BodyPartExamined = "SPINE"  # unpaired, so Laterality (type 2C) is correctly absent
    sc.BurnedInAnnotation = "NO"  # the picture names no patient
    copy_patient_study(sc, ref)
    return sc
