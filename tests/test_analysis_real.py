"""The analytic engine on real CT (../shared/data): the targets it meets today."""

from __future__ import annotations

import pytest

from screening_node.analysis.evaluate import evaluate_pair, load_truth
from screening_node.analysis.pipeline import analyze_path
from tests.conftest import shared_case


def test_ts_example_abdomen_lumbar_levels_and_heights(tmp_path):
    case = shared_case("ts-example-abdomen")
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    truth = [t for t in load_truth(case / "truth.json") if t.label in ("L1", "L2", "L3", "L4", "L5")]
    ev = evaluate_pair(result, truth).summary()
    assert ev["identification_rate"] == 1.0, ev["misses"]
    assert ev["height_mae_mm"] is not None and ev["height_mae_mm"] < 4.0  # vs TotalSegmentator's report


def test_verse19_007_levels(tmp_path):
    case = shared_case("verse19-007")
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    ev = evaluate_pair(result, load_truth(case / "truth.json")).summary()
    assert ev["identified"] >= 6, ev["misses"]
    labels = [v.label for v in result.vertebrae]
    assert {"T10", "T11", "T12", "L1"} <= set(labels)


@pytest.mark.parametrize("name", ["verse19-006"])
def test_small_crop_ends_as_a_finished_result(tmp_path, name):
    case = shared_case(name)
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    assert result.status in ("reported", "not_assessable")
    assert (tmp_path / "results.json").is_file()
