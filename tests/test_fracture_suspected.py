"""When a study is "fracture suspected": from the worst grade the setting names (default 2, the fracture line)."""

from __future__ import annotations

import pytest

from screening_node.analysis.results import StudyResult, Vertebra
from screening_node.cli.analyze import format_table
from screening_node.config import load_settings
from screening_node.errors import ConfigError


def _study(grade: int, suspect_min_grade: int | None = None) -> StudyResult:
    v = Vertebra(label="T8", label_confidence=0.95, centroid_lps_mm=(0.0, 0.0, 0.0), keypoints_lps_mm=None,
                 heights_mm={"anterior": 16.2, "middle": 16.8, "posterior": 20.4}, height_loss=0.204,
                 grade=grade, morphology="wedge", assessable=True)
    extra = {} if suspect_min_grade is None else {"suspect_min_grade": suspect_min_grade}
    return StudyResult(status="reported", reason=None, engine="analytic", vertebrae=(v,), **extra)


@pytest.mark.parametrize("grade, suspected", [(0, False), (1, False), (2, True), (3, True)])
def test_by_default_a_study_is_suspected_from_a_moderate_grade(grade, suspected):
    result = _study(grade)
    assert result.fracture_suspected is suspected
    assert result.to_dict()["patient"] == {"max_grade": grade, "max_grade_range": None,
                                           "fracture_suspected": suspected, "suspect_min_grade": 2}


def test_the_setting_moves_the_line_and_travels_with_the_result():
    mild = _study(1, suspect_min_grade=1)
    assert mild.fracture_suspected
    again = StudyResult.from_dict(mild.to_dict())
    assert again == mild and again.fracture_suspected
    assert "fracture suspected: True (from grade 1)" in format_table(mild)
    assert not _study(2, suspect_min_grade=3).fracture_suspected


def test_results_written_before_the_setting_read_as_they_were_written():
    """Until 2026-12-03 every grade >= 1 was suspected; an old results.json has no suspect_min_grade."""
    old = _study(1).to_dict()
    del old["patient"]["suspect_min_grade"]
    assert StudyResult.from_dict(old).fracture_suspected


def test_the_node_setting_is_a_genant_grade(tmp_path):
    assert load_settings(None, environ={}).analysis.suspect_min_grade == 2
    s = load_settings(None, environ={"SCREENING_NODE_ANALYSIS_SUSPECT_MIN_GRADE": "1"})
    assert s.analysis.suspect_min_grade == 1
    bad = tmp_path / "n.toml"
    bad.write_text("[analysis]\nsuspect_min_grade = 0\n")
    with pytest.raises(ConfigError, match="analysis.suspect_min_grade"):
        load_settings(bad, environ={})
