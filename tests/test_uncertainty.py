"""The height loss's spread at the CT's sampling, and the grades it spans (analysis/uncertainty.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from screening_node.analysis.genant import genant
from screening_node.analysis.results import StudyResult, Vertebra
from screening_node.analysis.uncertainty import grade_range, height_sampling_sd, loss_range, loss_spread
from screening_node.cli.analyze import format_table


def _grid(spacing: tuple[float, float, float], direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)
          ) -> sitk.Image:
    image = sitk.Image(8, 8, 8, sitk.sitkInt16)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def _upright(height: float = 25.0, tilt_deg: float = 0.0) -> dict[str, tuple[float, float, float]]:
    """Six keypoints of a body whose heights run along z turned by tilt_deg towards x."""
    t = math.radians(tilt_deg)
    axis = np.array([math.sin(t), 0.0, math.cos(t)])
    out = {}
    for y, name in ((0.0, "anterior"), (15.0, "middle"), (30.0, "posterior")):
        base = np.array([0.0, y, 0.0])
        out[f"inferior_{name}"] = tuple(base)
        out[f"superior_{name}"] = tuple(base + height * axis)
    return out  # type: ignore[return-value]


def test_each_height_is_uncertain_by_two_endplates_placed_anywhere_within_a_sampling_step():
    thick = height_sampling_sd(_grid((0.75, 0.75, 3.0)), _upright())
    assert thick == pytest.approx({n: math.sqrt(2) * 3.0 / math.sqrt(12) for n in thick})
    fine = height_sampling_sd(_grid((1.0, 1.0, 1.0)), _upright(tilt_deg=30))
    assert fine["anterior"] == pytest.approx(math.sqrt(2) / math.sqrt(12))


def test_a_sagittal_series_samples_the_heights_at_its_pixel_not_its_slice_spacing():
    # image columns run anterior-posterior, rows head-feet (0.8 mm pixels), slices left-right 3 mm apart
    sagittal = _grid((0.8, 0.8, 3.0), (0, 0, 1, 1, 0, 0, 0, -1, 0))
    sd = height_sampling_sd(sagittal, _upright())
    assert sd["middle"] == pytest.approx(math.sqrt(2) * 0.8 / math.sqrt(12))


def test_slices_reconstructed_closer_than_they_are_thick_count_at_their_thickness():
    overlapping = _grid((0.75, 0.75, 1.5))
    assert height_sampling_sd(overlapping, _upright())["middle"] == pytest.approx(math.sqrt(2) * 1.5 / math.sqrt(12))
    thick = height_sampling_sd(overlapping, _upright(), slice_thickness_mm=3.0)
    assert thick["middle"] == pytest.approx(math.sqrt(2) * 3.0 / math.sqrt(12))


def test_a_wedges_loss_spreads_by_its_lowest_and_its_tallest_height():
    sd = math.sqrt(2) * 3.0 / math.sqrt(12)
    heights = {"anterior": 20.0, "middle": 22.5, "posterior": 25.0}
    spread = loss_spread(heights, dict.fromkeys(heights, sd))
    front = sd / 25.0  # the front moves the loss by its change over the back
    back = max(abs(20 / (25 + sd) - 0.8), abs(20 / (25 - sd) - 0.8))
    assert spread == pytest.approx(math.hypot(front, back), rel=1e-6)  # the middle, in between, moves nothing


def test_a_body_of_equal_heights_still_has_a_spread():
    """Its loss is 0 and rises whichever height moves: the spread is not read as none."""
    heights = dict.fromkeys(("anterior", "middle", "posterior"), 25.0)
    assert loss_spread(heights, dict.fromkeys(heights, 1.0)) > 0.03


def test_a_crushs_spread_counts_its_neighbours_posterior_heights_too():
    heights = {"anterior": 17.0, "middle": 16.5, "posterior": 17.2}
    neighbours = [25.0, 25.5, 26.0, 26.5]
    alone = loss_spread(heights, dict.fromkeys(heights, 1.0), neighbours, 0.0)
    with_neighbours = loss_spread(heights, dict.fromkeys(heights, 1.0), neighbours, 1.0)
    assert genant(heights, neighbours).morphology == "crush"
    assert 0 < alone < with_neighbours


@pytest.mark.parametrize("loss, spread, grades", [
    (0.271, 0.05, (1, 2)), (0.10, 0.05, (0, 0)), (0.199, 0.06, (0, 2)), (0.45, 0.07, (2, 3)), (0.02, 0.05, (0, 0))])
def test_the_grades_a_spread_spans(loss, spread, grades):
    low, high = loss_range(loss, spread)
    assert low >= 0 and high == pytest.approx(loss + spread, abs=1e-4)
    assert grade_range(low, high) == grades


def test_results_carry_the_range_and_the_table_shows_it():
    v = Vertebra(label="L1", label_confidence=0.95, centroid_lps_mm=(0.0, 0.0, 0.0), keypoints_lps_mm=None,
                 heights_mm={"anterior": 21.9, "middle": 23.8, "posterior": 30.1}, height_loss=0.2713, grade=2,
                 morphology="wedge", assessable=True, height_loss_range=(0.2209, 0.3217), grade_range=(1, 2))
    result = StudyResult(status="reported", reason=None, engine="analytic", vertebrae=(v,))
    again = StudyResult.from_dict(result.to_dict())
    assert again == result and again.vertebrae[0].grade_uncertain
    assert result.to_dict()["patient"]["max_grade_range"] == (1, 2)
    row = [line for line in format_table(result).splitlines() if line.startswith("L1")][0]
    assert "27.1  5.0 2 (1-2)" in row
