"""Typed analysis results and their one JSON form (``results.json``).

The CLI, the SR writer, the summary image, the dashboard, the evaluator and
the tests all read this form; nothing else defines it. All positions are
patient LPS millimetres.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from screening_node.analysis.thresholds import SUSPECT_MIN_GRADE

RESULTS_SCHEMA = "screening-node/results/v1"
TRUTH_SCHEMA = "screening-node/truth/v1"

KEYPOINT_NAMES: tuple[str, ...] = (
    "superior_anterior", "superior_middle", "superior_posterior",
    "inferior_anterior", "inferior_middle", "inferior_posterior",
)
HEIGHT_NAMES: tuple[str, ...] = ("anterior", "middle", "posterior")
# Each height runs between these two keypoints (superior endplate point, inferior endplate point).
HEIGHT_KEYPOINTS: dict[str, tuple[str, str]] = {
    "anterior": ("superior_anterior", "inferior_anterior"),
    "middle": ("superior_middle", "inferior_middle"),
    "posterior": ("superior_posterior", "inferior_posterior"),
}


def keypoint_heights(keypoints_lps: dict[str, Any]) -> dict[str, float]:
    """Anterior, middle and posterior heights (mm): the distances between the keypoint pairs (LPS mm)."""
    return {h: float(np.linalg.norm(np.subtract(keypoints_lps[s], keypoints_lps[i])))
            for h, (s, i) in HEIGHT_KEYPOINTS.items()}


LEVELS: tuple[str, ...] = (
    "C1", "C2", "C3", "C4", "C5", "C6", "C7",
    "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "T13",
    "L1", "L2", "L3", "L4", "L5", "L6", "S1",
)
GRADED_LEVELS: frozenset[str] = frozenset(
    ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "T13",
     "L1", "L2", "L3", "L4", "L5", "L6"])
Morphology = Literal["normal", "wedge", "biconcave", "crush"]
Point = tuple[float, float, float]


def level_index(label: str) -> int:
    """Cranio-caudal order of a level name (C1 = 0)."""
    return LEVELS.index(label)


def _pair(value: Any, kind: type) -> Any:
    """A stored [low, high] pair as a tuple of ``kind``, or None (results written before it existed)."""
    return None if value is None else (kind(value[0]), kind(value[1]))


@dataclass(frozen=True)
class Vertebra:
    label: str | None
    label_confidence: float
    centroid_lps_mm: Point
    keypoints_lps_mm: dict[str, Point] | None
    heights_mm: dict[str, float] | None
    height_loss: float | None
    grade: int | None
    morphology: str | None
    assessable: bool
    reason: str | None = None
    mask_label: int | None = None  # value of this body in the body-mask volume, if one was written
    # the loss one standard deviation either side from the CT's sampling alone, and the grades that spans
    # (analysis/uncertainty.py); None where no grade is given
    height_loss_range: tuple[float, float] | None = None
    grade_range: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vertebra":
        keypoints = data.get("keypoints_lps_mm")
        return cls(
            label=data.get("label"),
            label_confidence=float(data.get("label_confidence", 0.0)),
            centroid_lps_mm=tuple(float(v) for v in data["centroid_lps_mm"]),  # type: ignore[arg-type]
            keypoints_lps_mm={k: tuple(float(c) for c in v) for k, v in keypoints.items()} if keypoints else None,  # type: ignore[misc]
            heights_mm={k: float(v) for k, v in data["heights_mm"].items()} if data.get("heights_mm") else None,
            height_loss=None if data.get("height_loss") is None else float(data["height_loss"]),
            grade=data.get("grade"),
            morphology=data.get("morphology"),
            assessable=bool(data.get("assessable", False)),
            reason=data.get("reason"),
            mask_label=data.get("mask_label"),
            height_loss_range=_pair(data.get("height_loss_range"), float),
            grade_range=_pair(data.get("grade_range"), int),
        )

    @property
    def height_loss_spread(self) -> float | None:
        """How far the loss's range reaches above the loss (one spread; the range stops at 0 below), or None."""
        if self.height_loss is None or self.height_loss_range is None:
            return None
        return self.height_loss_range[1] - self.height_loss

    @property
    def grade_uncertain(self) -> bool:
        """The grade could read one other at the CT's sampling (its range spans more than one grade)."""
        return self.grade_range is not None and self.grade_range[0] != self.grade_range[1]


@dataclass(frozen=True)
class StudyResult:
    status: Literal["reported", "not_assessable"]
    reason: str | None
    engine: str
    vertebrae: tuple[Vertebra, ...]
    input: dict[str, Any] = field(default_factory=dict)  # study_uid, series_uid, path
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # e.g. labelling conflicts, said plainly
    body_mask_path: str | None = None  # label volume (one value per body), relative to results.json
    # the worst grade from which the study is "fracture suspected" (settings: analysis.suspect_min_grade)
    suspect_min_grade: int = SUSPECT_MIN_GRADE

    @property
    def max_grade(self) -> int | None:
        grades = [v.grade for v in self.vertebrae if v.assessable and v.grade is not None]
        return max(grades) if grades else None

    @property
    def max_grade_range(self) -> tuple[int, int] | None:
        """The worst grade's range at the CT's sampling: the largest low end and the largest high end."""
        ranges = [v.grade_range for v in self.vertebrae if v.assessable and v.grade_range is not None]
        if not ranges:
            return None
        return max(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def fracture_suspected(self) -> bool:
        """Whether the worst grade reaches suspect_min_grade (a worklist's flag; the grades say the rest)."""
        return (self.max_grade or 0) >= self.suspect_min_grade

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RESULTS_SCHEMA,
            "input": dict(self.input),
            "status": self.status,
            "reason": self.reason,
            "engine": self.engine,
            "vertebrae": [v.to_dict() for v in self.vertebrae],
            "patient": {"max_grade": self.max_grade, "max_grade_range": self.max_grade_range,
                        "fracture_suspected": self.fracture_suspected,
                        "suspect_min_grade": self.suspect_min_grade},
            "notes": list(self.notes),
            "body_mask_path": self.body_mask_path,
            "timings_s": dict(self.timings_s),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudyResult":
        if data.get("schema") != RESULTS_SCHEMA:
            raise ValueError(f"not a {RESULTS_SCHEMA} document (schema={data.get('schema')!r})")
        return cls(
            status=data["status"], reason=data.get("reason"), engine=data.get("engine", "analytic"),
            vertebrae=tuple(Vertebra.from_dict(v) for v in data.get("vertebrae", [])),
            input=dict(data.get("input", {})), timings_s=dict(data.get("timings_s", {})),
            notes=tuple(data.get("notes", [])), body_mask_path=data.get("body_mask_path"),
            # results written before the setting existed were suspected from grade 1
            suspect_min_grade=int((data.get("patient") or {}).get("suspect_min_grade", 1)),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> "StudyResult":
        return cls.from_dict(json.loads(Path(path).read_text()))
