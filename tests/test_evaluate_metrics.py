"""Evaluator metrics: hand-built results/truth pairs, mask truth geometry, real truth files, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from screening_node.analysis.evaluate_metrics import (IDENTIFICATION_MM, compare, evaluate_pairs, find_pairs,
                                                      format_report, summarize)
from screening_node.analysis.evaluate_truth import load_truth, mask_centroids, phantom_truth, read_totalseg_heights
from screening_node.analysis.results import KEYPOINT_NAMES, TRUTH_SCHEMA, StudyResult, Vertebra
from tests.conftest import shared_case

LEVELS = ["T11", "T12", "L1", "L2", "L3"]
GRADES = {"T11": 0, "T12": 2, "L1": 1, "L2": 3, "L3": 0}


def _truth_vertebra(i: int, label: str) -> dict:
    z = -30.0 * i
    kps = {}
    for name in KEYPOINT_NAMES:
        dz = 12.0 if name.startswith("superior") else -12.0
        dy = {"anterior": -15.0, "middle": 0.0, "posterior": 15.0}[name.split("_")[1]]
        kps[name] = [0.0, dy, z + dz]
    return {"label": label, "centroid_lps_mm": [0.0, 0.0, z], "keypoints_lps_mm": kps,
            "heights_mm": {"anterior": 24.0, "middle": 24.0, "posterior": 24.0}, "grade": GRADES[label],
            "morphology": "normal", "height_loss": 0.1 * GRADES[label], "visible": True, "mask_label": i + 1}


def phantom_truth_dict() -> dict:
    vs = [_truth_vertebra(i, label) for i, label in enumerate(LEVELS)]
    vs.append({**_truth_vertebra(5, "L3"), "label": "L4", "visible": False})  # cut by the FOV: not counted
    return {"schema": TRUTH_SCHEMA, "vertebrae": vs}


def result_from(truth: dict, *, shift=(0.0, 0.0, 0.0), relabel: dict | None = None, grades: dict | None = None,
                heights_delta: float = 0.0, unassessable: tuple[str, ...] = (), status: str = "reported",
                grade_ranges: dict | None = None) -> StudyResult:
    out = []
    for i, tv in enumerate(truth["vertebrae"]):
        if not tv["visible"]:
            continue
        label = (relabel or {}).get(tv["label"], tv["label"])
        assessable = tv["label"] not in unassessable
        out.append(Vertebra(
            label=label, label_confidence=0.9,
            centroid_lps_mm=tuple(np.add(tv["centroid_lps_mm"], shift)),
            keypoints_lps_mm={k: tuple(np.add(p, shift)) for k, p in tv["keypoints_lps_mm"].items()},
            heights_mm={k: h + heights_delta for k, h in tv["heights_mm"].items()} if assessable else None,
            height_loss=tv["height_loss"] if assessable else None,
            grade=(grades or GRADES).get(tv["label"]) if assessable else None, morphology="normal",
            assessable=assessable, reason=None if assessable else "cut by the field of view", mask_label=i + 1,
            grade_range=(grade_ranges or {}).get(tv["label"]) if assessable else None))
    return StudyResult(status=status, reason=None, engine="analytic", vertebrae=tuple(out))  # type: ignore[arg-type]


def test_perfect_result_scores_perfectly() -> None:
    truth = phantom_truth_dict()
    matches, outcome = compare(result_from(truth), phantom_truth(truth), "c")
    report = summarize(matches, [outcome])
    assert report["vertebrae"] == 5  # the invisible L4 is not counted
    assert report["identification_rate"] == 1.0
    assert report["localisation_mm"]["all"]["max"] == 0.0
    assert report["height_mae_mm"]["all"] == 0.0 and report["keypoint_error_mm"]["max"] == 0.0
    assert report["grades"]["exact_agreement"] == 1.0
    b = report["grade_ge2"]
    assert (b["tp"], b["fn"], b["tn"], b["fp"], b["excluded_truth_grade1"]) == (2, 0, 2, 0, 1)
    assert report["grades"]["confusion_truth_rows_pred_cols"] == [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                                   [0, 0, 0, 1]]
    assert report["patients"]["tp"] == 1


def test_identification_needs_the_right_label_and_20_mm() -> None:
    truth = phantom_truth_dict()
    t = phantom_truth(truth)
    near, o = compare(result_from(truth, shift=(0, 0, IDENTIFICATION_MM - 0.5)), t)
    assert summarize(near, [o])["identification_rate"] == 1.0
    far, _ = compare(result_from(truth, shift=(0, IDENTIFICATION_MM + 0.5, 0)), t)
    assert not any(m.identified for m in far)
    assert all(m.pred_grade is None and m.height_errors_mm is None for m in far)  # nothing credited when not identified
    # One level off (every label shifted cranially): bodies found, none identified.
    off = {"T11": "T10", "T12": "T11", "L1": "T12", "L2": "L1", "L3": "L2"}
    shifted, o = compare(result_from(truth, relabel=off), t)
    r = summarize(shifted, [o])
    assert r["identification_rate"] == 0.0
    assert r["detection_mm"]["max"] == 0.0
    assert r["localisation_mm"]["all"]["n"] == 4 and r["localisation_mm"]["all"]["median"] == 30.0


def test_heights_grades_and_unassessed_bodies() -> None:
    truth = phantom_truth_dict()
    t = phantom_truth(truth)
    wrong = {"T11": 2, "T12": 1, "L1": 3, "L2": 3, "L3": 0}  # one false positive, one miss, grade-1 truth ignored
    matches, o = compare(result_from(truth, grades=wrong, heights_delta=0.6, unassessable=("L3",)), t)
    r = summarize(matches, [o])
    assert r["height_mae_mm"]["all"] == pytest.approx(0.6) and r["height_mae_mm"]["n_vertebrae"] == 4
    b = r["grade_ge2"]
    assert (b["tp"], b["fn"], b["tn"], b["fp"]) == (1, 1, 0, 1)
    assert b["sensitivity"] == 0.5 and b["specificity"] == 0.0
    assert b["unassessed_negatives"] == 1 and r["grades"]["not_graded_by_truth_grade"] == [1, 0, 0, 0]
    assert r["grades"]["exact_agreement"] == 0.25


def test_grade_ranges_are_scored_against_the_truth_grade() -> None:
    truth = phantom_truth_dict()
    wrong = {"T11": 1, "T12": 1, "L1": 1, "L2": 2, "L3": 0}  # T11, T12 and L2 wrong
    ranges = {"T11": (0, 2), "T12": (1, 1), "L1": (1, 1), "L2": (2, 3), "L3": (0, 0)}  # T11's across the 2 line
    matches, o = compare(result_from(truth, grades=wrong, grade_ranges=ranges), phantom_truth(truth))
    report = summarize(matches, [o])
    assert report["grade_range"] == {"n": 5, "spanning_more_than_one": 2, "crossing_grade2": 1, "holding_truth": 4,
                                     "wrong": 3, "wrong_spanning": 2, "wrong_holding_truth": 2}
    report["per_vertebra"] = []
    assert "wrong grades flagged 2/3, truth within their range 2/3" in format_report(report)


def test_not_assessable_study_is_left_out_of_patient_metrics() -> None:
    truth = phantom_truth_dict()
    matches, o = compare(result_from(truth, status="not_assessable"), phantom_truth(truth))
    r = summarize(matches, [o])
    assert r["cases_not_assessable"] == 1
    assert r["patients"]["tp"] + r["patients"]["fn"] == 0 and r["patients"]["not_assessable_with_truth_fracture"] == 1


def _mask_image(direction: tuple[float, ...]) -> sitk.Image:
    """Two "vertebrae": a thick body block plus a thin posterior plate each (numpy z, y, x; 1 mm voxels)."""
    arr = np.zeros((80, 60, 40), np.uint8)
    for value, z0 in ((20, 5), (21, 45)):
        arr[z0:z0 + 25, 5:35, 5:35] = value  # body: 25 x 30 x 30 mm
        arr[z0 + 8:z0 + 16, 35:58, 5:35] = value  # posterior arch: an 8 mm plate, posterior (+y index)
    image = sitk.GetImageFromArray(arr)
    image.SetDirection(direction)
    image.SetOrigin((10.0, -20.0, 30.0))
    return image


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), (0, 0, -1, 1, 0, 0, 0, -1, 0)])
def test_mask_body_centroid_ignores_posterior_elements(direction: tuple[float, ...]) -> None:
    image = _mask_image(direction)
    centres = mask_centroids(image, {20: "L1", 21: "L2"})
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(image)
    for value, label, z0 in ((20, "L1", 5), (21, "L2", 45)):
        whole, body = centres[label]
        assert np.allclose(whole, stats.GetCentroid(value), atol=1e-6)  # same LPS as SimpleITK's own centroid
        true_body = image.TransformContinuousIndexToPhysicalPoint((19.5, 19.5, z0 + 12.0))  # (x, y, z) index
        assert np.linalg.norm(np.subtract(body, true_body)) < 1.0
        assert np.linalg.norm(np.subtract(whole, true_body)) > 3.0  # the whole-vertebra centroid is pulled back


def test_core_estimate_matches_the_body_mask_on_a_real_case() -> None:
    case = shared_case("ts-example-abdomen")
    data = json.loads((case / "truth.json").read_text())
    names = {int(k): v for k, v in data["mask_labels"].items()}
    mask = sitk.ReadImage(str(case / "totalseg_vertebrae.nii.gz"))
    exact = mask_centroids(mask, names, sitk.ReadImage(str(case / "totalseg_vertebrae_body.nii.gz")))
    estimate = mask_centroids(mask, names, None)
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert np.linalg.norm(np.subtract(exact[level][1], estimate[level][1])) < 2.5, level
        assert np.linalg.norm(np.subtract(exact[level][1], exact[level][0])) > 7.0, level  # why we estimate
    truth = load_truth(case)
    assert truth.kind == "mask" and truth.peer_heights["L1"] == {"anterior": 21.0, "middle": 24.0, "posterior": 27.0}
    assert read_totalseg_heights(case / "totalseg_spine_report.json").keys() == {"L1", "L2", "L3", "L4", "L5"}


def test_verse_truth_reads_grades_in_lps() -> None:
    case = shared_case("verse19-007")
    truth = load_truth(case / "truth.json")
    labels = [v.label for v in truth.vertebrae]
    assert labels == ["T9", "T10", "T11", "T12", "L1", "L2", "L3"]  # cranial first: z (head) decreasing
    assert {v.label: v.grade for v in truth.vertebrae}["L1"] == 2
    for v in truth.vertebrae:  # body centre anterior (-y in LPS) of the whole-vertebra centroid
        assert v.vertebra_centroid_lps_mm is not None and v.centroid_lps_mm[1] < v.vertebra_centroid_lps_mm[1] - 4


def test_batch_of_pair_folders_and_readable_report(tmp_path: Path) -> None:
    truth = phantom_truth_dict()
    for i, grades in enumerate((GRADES, {**GRADES, "T12": 0})):
        case = tmp_path / "pairs" / f"case{i}"
        (case / "result").mkdir(parents=True)
        (case / "truth.json").write_text(json.dumps(truth))
        result_from(truth, grades=grades).write(case / "result" / "results.json")
    (tmp_path / "pairs" / "empty").mkdir()  # no files: not a pair
    found = find_pairs(tmp_path / "pairs")
    assert [name for _, _, name in found] == ["case0", "case1"]
    report = evaluate_pairs([(r, t) for r, t, _ in found], [n for _, _, n in found])
    assert report["cases"] == 2 and report["vertebrae"] == 10
    assert report["grade_ge2"]["sensitivity"] == 0.75 and report["patients"]["fn"] == 0
    json.dumps(report)  # the --json form serialises
    single = evaluate_pairs([(found[0][0], found[0][1])])
    text = format_report(single)
    assert "identification rate      1.000" in text and "\nT12   yes" in text
    with pytest.raises(FileNotFoundError):
        evaluate_pairs([(found[0][0], tmp_path / "nope")])
