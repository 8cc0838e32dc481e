"""Compare analysis results with truth: the literature's metrics.

Truth comes in two forms:
* phantom ``truth.json`` (schema screening-node/truth/v1): labels, body centroids, keypoints,
  heights and grades of every vertebra (only those with ``visible`` true are scored);
* a real case's ``truth.json`` (as in ../shared/data): a vertebra mask with ``mask_labels`` and
  optional ``genant_grades`` and ``peer_heights`` (TotalSegmentator's spine report). The truth
  position of a vertebra is then its mask centroid, which includes the posterior elements: the
  body centre lies 8-10 mm anterior of it, so localisation errors on mask truth carry that offset,
  and identification uses the usual rule (right label, within 20 mm), which tolerates it.

Metrics: identification rate (right label within 20 mm), localisation error by region, height
MAE, grade confusion matrix, exact grade agreement, sensitivity / specificity for grade >= 2 with
grade-1 vertebrae left out of the negatives (Zakharov et al.).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from screening_node.analysis.results import TRUTH_SCHEMA, StudyResult

ID_DISTANCE_MM = 20.0


@dataclass(frozen=True)
class TruthVertebra:
    label: str
    centroid: tuple[float, float, float]
    heights: dict[str, float] | None
    grade: int | None


@dataclass
class Evaluation:
    truth_count: int = 0
    identified: int = 0
    localisation_mm: dict[str, list[float]] = field(default_factory=lambda: {"cervical": [], "thoracic": [],
                                                                              "lumbar": []})
    height_errors: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=lambda: [[0] * 4 for _ in range(4)])
    graded_truth: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, other: "Evaluation") -> None:
        self.truth_count += other.truth_count
        self.identified += other.identified
        for k, v in other.localisation_mm.items():
            self.localisation_mm[k].extend(v)
        self.height_errors.extend(other.height_errors)
        for i in range(4):
            for j in range(4):
                self.confusion[i][j] += other.confusion[i][j]
        self.graded_truth += other.graded_truth
        self.misses.extend(other.misses)

    def summary(self) -> dict[str, Any]:
        c = np.array(self.confusion)
        graded = int(c.sum())
        tp = int(c[2:, 2:].sum())
        fn = int(c[2:, :2].sum())
        tn = int(c[0, :2].sum())
        fp = int(c[0, 2:].sum())
        loc = {k: (round(float(np.mean(v)), 2) if v else None) for k, v in self.localisation_mm.items()}
        all_loc = [x for v in self.localisation_mm.values() for x in v]
        return {
            "truth_vertebrae": self.truth_count,
            "identified": self.identified,
            "identification_rate": round(self.identified / self.truth_count, 4) if self.truth_count else None,
            "localisation_error_mm": {**loc, "all": round(float(np.mean(all_loc)), 2) if all_loc else None},
            "height_mae_mm": round(float(np.mean(self.height_errors)), 3) if self.height_errors else None,
            "heights_compared": len(self.height_errors),
            "grade_confusion": {"rows": "truth grade 0-3", "cols": "predicted grade 0-3", "matrix": self.confusion},
            "graded_truth_vertebrae": self.graded_truth,
            "graded_pairs": graded,
            "grade_exact_agreement": round(float(np.trace(c)) / graded, 4) if graded else None,
            "sensitivity_grade2plus": round(tp / (tp + fn), 4) if tp + fn else None,
            "specificity_grade2plus": round(tn / (tn + fp), 4) if tn + fp else None,
            "misses": self.misses,
        }


def region(label: str) -> str:
    return {"C": "cervical", "T": "thoracic", "L": "lumbar"}.get(label[0], "lumbar")


def load_truth(path: Path) -> list[TruthVertebra]:
    """Truth vertebrae of a phantom truth.json or a real case's mask truth.json."""
    path = Path(path)
    data = json.loads(path.read_text())
    if data.get("schema") == TRUTH_SCHEMA:
        return [TruthVertebra(v["label"], tuple(v["centroid_lps_mm"]), dict(v["heights_mm"]), v.get("grade"))
                for v in data["vertebrae"] if v.get("visible", True)]
    if "mask" in data and "mask_labels" in data:
        return _mask_truth(path.parent, data)
    raise ValueError(f"{path}: neither a {TRUTH_SCHEMA} document nor a mask truth (mask + mask_labels)")


def _mask_truth(folder: Path, data: dict[str, Any]) -> list[TruthVertebra]:
    import SimpleITK as sitk
    mask = sitk.ReadImage(str(folder / data["mask"]))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask, sitk.sitkUInt16))
    grades = data.get("genant_grades") or {}
    peer = _peer_heights(folder, data.get("peer_heights"))
    out = []
    for value in stats.GetLabels():
        label = data["mask_labels"].get(str(value))
        if label is None:
            continue
        out.append(TruthVertebra(label, tuple(stats.GetCentroid(value)), peer.get(label), grades.get(label)))
    return out


def _peer_heights(folder: Path, text: str | None) -> dict[str, dict[str, float]]:
    """TotalSegmentator's spine report heights, when the truth names one (its first word is the file)."""
    if not text:
        return {}
    report = folder / text.split(":")[0].split()[0]
    if not report.is_file():
        return {}
    res = json.loads(report.read_text()).get("results", {})
    out: dict[str, dict[str, float]] = {}
    for key, value in res.items():
        parts = key.split("_")  # vertebrae_L1_height_posterior_mm
        if len(parts) == 5 and parts[0] == "vertebrae" and parts[2] == "height":
            out.setdefault(parts[1], {})[parts[3]] = float(value)
    return {k: v for k, v in out.items() if len(v) == 3}


def evaluate_pair(result: StudyResult, truth: list[TruthVertebra], name: str = "") -> Evaluation:
    ev = Evaluation()
    predicted = {v.label: v for v in result.vertebrae if v.label}
    for t in truth:
        ev.truth_count += 1
        p = predicted.get(t.label)
        dist = None if p is None else float(np.linalg.norm(np.subtract(p.centroid_lps_mm, t.centroid)))
        if p is None or dist is None or dist > ID_DISTANCE_MM:
            ev.misses.append(f"{name}{':' if name else ''}{t.label}" + ("" if dist is None else f" ({dist:.0f} mm)"))
        else:
            ev.identified += 1
            ev.localisation_mm[region(t.label)].append(dist)
        if t.grade is not None:
            ev.graded_truth += 1
        if p is None or dist is None or dist > ID_DISTANCE_MM or not p.assessable:
            continue
        if t.heights and p.heights_mm:
            ev.height_errors.extend(abs(p.heights_mm[k] - t.heights[k]) for k in ("anterior", "middle", "posterior"))
        if t.grade is not None and p.grade is not None:
            ev.confusion[int(t.grade)][int(p.grade)] += 1
    return ev


def find_pairs(pairs_dir: Path) -> list[tuple[str, Path, Path]]:
    """(name, results.json, truth.json) for each subfolder holding both (results may be one level deeper)."""
    out = []
    for sub in sorted(p for p in Path(pairs_dir).iterdir() if p.is_dir()):
        truth = sub / "truth.json"
        results = sorted(sub.rglob("results.json"))
        if truth.is_file() and results:
            out.append((sub.name, results[0], truth))
    return out


def evaluate_paths(pairs: list[tuple[str, Path, Path]]) -> dict[str, Any]:
    total = Evaluation()
    per_case = {}
    for name, res_path, truth_path in pairs:
        ev = evaluate_pair(StudyResult.read(res_path), load_truth(truth_path), name if len(pairs) > 1 else "")
        per_case[name] = {k: v for k, v in ev.summary().items() if k in ("identification_rate", "height_mae_mm",
                                                                        "grade_exact_agreement", "misses")}
        total.add(ev)
    return {"cases": len(pairs), "summary": total.summary(), "per_case": per_case}
