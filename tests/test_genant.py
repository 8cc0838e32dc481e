"""Genant rules: every band edge, each morphology, crush against the neighbours."""

import numpy as np
import pytest

from screening_node.analysis.genant import genant, grade_from_loss
from screening_node.analysis.results import GRADED_LEVELS


@pytest.mark.parametrize("loss, grade", [
    (0.0, 0), (0.1999, 0), (0.20, 1), (0.2499, 1), (0.25, 2), (0.40, 2), (0.4001, 3), (0.9, 3)])
def test_band_edges(loss, grade):
    assert grade_from_loss(loss) == grade


def _h(a, m, p):
    return {"anterior": a, "middle": m, "posterior": p}


def _graded(labels):
    return [label in GRADED_LEVELS for label in labels]


def test_normal_body_is_grade_0_normal():
    g = genant(_h(25, 24, 26), [26, 26])
    assert (g.grade, g.morphology) == (0, "normal")
    assert g.height_loss == pytest.approx(1 - 24 / 26, abs=1e-4)


def test_wedge_anterior_lowest():
    g = genant(_h(18, 22, 26))
    assert (g.grade, g.morphology) == (2, "wedge")
    assert g.height_loss == pytest.approx(1 - 18 / 26, abs=1e-4)


def test_biconcave_middle_lowest():
    g = genant(_h(26, 15, 26))
    assert (g.grade, g.morphology) == (3, "biconcave")


def test_crush_all_heights_low_against_neighbours():
    # shape alone is normal (loss 4 %), but every height is ~30 % below the neighbours' posterior heights
    g = genant(_h(18, 17.5, 18.2), [26, 26])
    assert g.morphology == "crush"
    assert g.grade == 2
    assert g.height_loss == pytest.approx(1 - 18.2 / 26, abs=1e-4)


def test_a_normal_l5_shorter_behind_is_not_a_crush():
    # tcia's L5 (ant / mid / post 30.1 / 26.1 / 23.3 mm): a normal L5 is 13 % shorter behind (CT morphometry);
    # read with r = 1 - min/max it was a grade 1 "crush" of 23 %, and at L4 the same heights still are
    heights = _h(30.1, 26.1, 23.3)
    at_l4 = genant(heights, [28.9, 28.6], "L4")
    assert (at_l4.grade, at_l4.morphology) == (1, "crush")
    at_l5 = genant(heights, [28.9, 28.6], "L5")
    assert (at_l5.grade, at_l5.morphology) == (0, "normal")
    assert at_l5.height_loss == pytest.approx(1 - 26.1 / 30.1, abs=1e-4)  # the middle is now the lowest


def test_an_l5_is_still_graded_for_a_back_lower_than_a_normal_l5s():
    g = genant(_h(30, 28, 15), [28, 28], "L5")
    assert (g.grade, g.morphology) == (3, "crush")
    assert g.height_loss == pytest.approx(1 - 15 / (0.87 * 30), abs=1e-4)


def test_an_l5_wedge_is_graded_as_at_any_level():
    heights = _h(20, 25, 28)
    assert genant(heights, [28], "L5") == genant(heights, [28], "L4")
    assert genant(heights, [28], "L5").grade == 2


def test_crush_needs_neighbours():
    g = genant(_h(18, 17.5, 18.2), [])
    assert (g.grade, g.morphology) == (0, "normal")


def test_height_loss_is_a_fraction():
    g = genant(_h(10, 20, 30))
    assert 0 <= g.height_loss <= 1


def test_non_positive_heights_rejected():
    with pytest.raises(ValueError):
        genant(_h(0, 0, 0))


def test_one_neighbour_measured_as_two_bodies_does_not_make_a_crush():
    # 3 mm phantom (fast seed 5, case 4): T4 measured 13.6 / 14.0 / 15.9 mm (truth 15.0 / 14.5 / 16.0),
    # but the body above it was measured over two bodies (a missed disc, 32.3 mm). Against the mean of
    # its two adjacent bodies T4 read a crush, grade 2; two bodies each side outvote the one.
    body = _h(13.57, 14.01, 15.92)
    assert genant(body, [32.34, 17.33]).grade == 2  # the old reference: the adjacent bodies only
    g = genant(body, [14.98, 32.34, 17.33, 17.48])
    assert (g.grade, g.morphology) == (0, "normal")


def test_a_crush_still_shows_against_the_median_of_four():
    g = genant(_h(18, 17.5, 18.2), [25, 26, 26, 27])
    assert (g.grade, g.morphology) == (2, "crush")


def test_the_crush_reference_takes_two_measured_graded_bodies_each_side():
    from screening_node.analysis.genant import _neighbour_posteriors

    def p(x):
        return None if x is None else _h(x, x, x)
    heights = [p(10), p(11), None, p(13), p(14), p(15), p(16)]
    labels = ["C7", "T1", "T2", "T3", "T4", "T5", "T6"]
    # body 3 (T3): above it T2 is unmeasured, only T1 within two places; as many below: T4
    assert _neighbour_posteriors(heights, _graded(labels), 3) == [11, 14]
    assert _neighbour_posteriors(heights, _graded(labels), 4) == [13, 15]  # T2 unmeasured: one above, one below
    assert _neighbour_posteriors(heights, _graded(labels), 6) == [15, 14]  # the end of the run: one side only
    assert _neighbour_posteriors(heights, _graded(labels), 1) == [13]  # C7 is not graded, T2 unmeasured


def test_a_crush_above_the_sacrum_is_judged_against_as_many_bodies_above_as_below():
    from screening_node.analysis.genant import _neighbour_posteriors

    # 1 mm phantom (seed 5, case 29): L4 crushed to 20 mm (grade 2), measured to 0.1 mm. S1 is not
    # graded, so below it only L5; with L2 and L3 above as well the reference fell and L4 read grade 1.
    heights = [_h(26.15, 25.27, 26.3), _h(27.75, 26.57, 27.28), _h(20.9, 19.77, 20.05), _h(32.11, 30.93, 29.08),
               _h(31.22, 30.14, 29.45)]
    labels = ["L2", "L3", "L4", "L5", "S1"]
    reference = _neighbour_posteriors(heights, _graded(labels), 2)
    assert reference == [27.28, 29.08]
    assert genant(heights[2], reference).grade == 2
    assert genant(heights[2], [27.28, 26.3, 29.08]).grade == 1  # two above, one below


def test_heights_no_body_has_are_not_graded():
    from screening_node.analysis.genant import (MERGED_BODIES_REASON, MIDDLE_TOO_TALL_REASON, OUT_OF_RANGE_REASON,
                                                implausible_heights)
    assert implausible_heights(_h(15.0, 14.5, 16.0), [15.5, 16.5]) is None
    assert implausible_heights(_h(25.0, 15.0, 26.0), [26.0, 26.0]) is None  # biconcave: the middle lowest
    assert implausible_heights(_h(4.0, 5.0, 5.5)) == OUT_OF_RANGE_REASON
    # 3 mm phantom (fast seed 7, case 12): T3 measured 13.7 / 19.3 / 15.2 mm (truth 14.8 / 14.2 / 15.6);
    # graded a grade 2 wedge from a middle endplate found in the disc
    assert implausible_heights(_h(13.67, 19.34, 15.15), [14.9, 16.1]) == MIDDLE_TOO_TALL_REASON
    assert implausible_heights(_h(13.67, 17.5, 15.15), [14.9, 16.1]) is None  # within 20 % of the taller wall
    # fast seed 5, case 10: "T3" measured 32 mm, T3 and T4 with the disc between them not found
    assert implausible_heights(_h(32.06, 35.01, 32.02), [14.23, 13.95, 14.6, 17.28]) == MERGED_BODIES_REASON
    # a normal body beside crushed ones is no merged body: the median of four reference heights
    assert implausible_heights(_h(26.0, 25.0, 26.5), [12.0, 14.0, 25.5, 27.0]) is None


def test_a_front_far_taller_than_the_back_is_a_failed_trace():
    from screening_node.analysis.genant import ANTERIOR_TOO_TALL_REASON, implausible_heights
    # 3 mm phantom (fast seed 4, case 15): T12 measured 31.7 / 31.2 / 22.2 mm (truth 20.9 / 20.4 / 21.8),
    # graded a grade-2 crush from its "short" back
    assert implausible_heights(_h(31.73, 31.22, 22.17), [21.0, 22.5]) == ANTERIOR_TOO_TALL_REASON
    assert implausible_heights(_h(29.5, 27.3, 27.1), [27.0, 30.0]) is None  # an L5, 9 % taller in front


def test_a_failed_trace_is_no_crush_reference():
    from screening_node.analysis.genant import MERGED_BODIES_REASON
    from screening_node.analysis.genant import failed_traces

    # fast seed 5, case 4: "T3" measured over T3 and T4 (32 mm); T2 was read as a crush against it
    heights = [None, _h(13.37, 13.51, 13.48), _h(13.46, 13.71, 14.98), _h(32.06, 31.86, 32.34),
               _h(13.57, 14.01, 15.92), _h(16.25, 13.31, 17.33)]
    labels = ["C7", "T1", "T2", "T3", "T4", "T5"]
    failed, references = failed_traces(heights, _graded(labels))
    assert failed == [None, None, None, MERGED_BODIES_REASON, None, None]
    assert references[2] == [13.48, 15.92]  # T3 left out; T5 is three places away
    assert references[1] == [14.98]
    assert genant(heights[1], references[1]).grade == 0


def test_against_one_crushed_neighbour_alone_a_normal_body_is_not_two():
    from screening_node.analysis.genant import implausible_heights
    from screening_node.analysis.genant import failed_traces

    # 1 mm phantom (seed 5, case 26): T11 normal (24.1 mm at the back), T12 crushed to 11 mm, L1 and L2
    # not measured. Against T12 alone T11 looked like two bodies, was left out of T12's reference, and
    # the grade-3 crush went ungraded.
    assert implausible_heights(_h(22.6, 22.4, 24.1), [11.14]) is None
    heights = [_h(22.6, 22.4, 24.1), _h(10.78, 10.53, 11.14), None, None]
    failed, references = failed_traces(heights, [True] * 4)
    assert failed == [None, None, None, None]
    assert genant(heights[1], references[1]).grade == 3


def _rows(superior: tuple[float, float, float], inferior: tuple[float, float, float]) -> dict[str, float]:
    """Keypoint positions along the spine (mm, caudal positive) by name, anterior / middle / posterior."""
    names = ("anterior", "middle", "posterior")
    return {**{f"superior_{n}": r for n, r in zip(names, superior)},
            **{f"inferior_{n}": r for n, r in zip(names, inferior)}}


def test_endplates_closer_than_thick_slices_tell_apart_are_a_failed_trace():
    from screening_node.analysis.genant import CROSSED_ENDPLATE_REASON, crossed_endplates

    # 3 mm phantom (fast seed 12, case 23), T5 / T6: the posterior disc (3.8 mm) blurred with both endplates
    # into one band, and T5's inferior posterior corner was read 4.3 mm down at the band's far side, 0.7 mm
    # above T6's; T5 (truth 16.3 / 15.9 / 17.5 mm, grade 0) was graded a grade 2 wedge from a 22.4 mm back.
    upper = _rows((-20.0, -19.0, -20.0), (-3.0, -2.5, 1.0))
    lower = _rows((0.0, 0.5, 1.7), (20.0, 19.5, 20.0))
    assert crossed_endplates([upper, lower]) == [None, None]  # no crossing
    assert crossed_endplates([upper, lower], [1.6]) == [CROSSED_ENDPLATE_REASON, None]  # 3 mm slices' blur
    assert crossed_endplates([upper, lower], [0.5]) == [None, None]


def test_an_endplate_read_across_the_disc_in_the_neighbour_is_a_failed_trace():
    from screening_node.analysis.genant import CROSSED_ENDPLATE_REASON, crossed_endplates, failed_traces

    # 3 mm phantom (fast seed 6, case 6), T2-T4: T3's superior anterior corner was read 4.8 mm up, in T2's
    # endplate, and its inferior posterior one 4.4 mm down, in T4's; T3 (truth 16.0 / 15.4 / 16.9 mm,
    # grade 0) was graded 2 from 20.1 / 16.4 / 22.4 mm.
    t2 = _rows((-27.4, -26.7, -28.6), (-11.4, -13.2, -13.4))
    t3 = _rows((-12.9, -8.2, -9.7), (7.2, 8.2, 12.8))
    t4 = _rows((11.9, 13.1, 11.7), (28.1, 29.3, 28.4))
    assert crossed_endplates([t2, t3, t4]) == [None, CROSSED_ENDPLATE_REASON, None]
    assert crossed_endplates([t2, None, t4]) == [None, None, None]
    # the neighbour's keypoint is the one read across: fast seed 4, case 15, T4's inferior anterior corner
    # 4.5 mm down in T5's endplate, T5's own 0.3 mm off
    other_t4 = _rows((-7.4, -6.5, -8.3), (11.9, 7.0, 6.6))
    other_t5 = _rows((11.0, 12.0, 10.5), (26.9, 27.9, 27.6))
    assert crossed_endplates([other_t4, other_t5]) == [CROSSED_ENDPLATE_REASON, None]
    # a thin disc, its endplates 1 mm apart, and a biconcave body's sunken middle are no crossing
    upper = _rows((-20.0, -17.0, -20.0), (-1.0, -4.0, -1.0))
    lower = _rows((0.0, 0.5, 0.0), (20.0, 19.5, 20.0))
    assert crossed_endplates([upper, lower]) == [None, None]
    heights = [_h(16.0, 13.5, 15.2), _h(20.1, 16.4, 22.4), _h(16.3, 16.3, 16.8)]
    failed, references = failed_traces(heights, [True] * 3, crossed_endplates([t2, t3, t4]))
    assert failed == [None, CROSSED_ENDPLATE_REASON, None]
    assert references[0] == [16.8]  # the failed trace is no crush reference


def test_t1_is_judged_for_crush_against_c7_as_well_as_t2(tmp_path):
    """Heights grow down the spine: against T2 and T3 alone a normal T1 reads 10-15 % short of its crush
    reference. A 3 mm trunk phantom (fast seed 5, case 19) had its normal T1 (14.3 / 13.5 / 14.7 mm) graded
    a grade 2 crush that way; C7 above it, measured though not graded, balances the reference."""
    from screening_node.analysis.pipeline import analyze_path
    from screening_node.phantom import FractureSpec, fast_options, generate_phantom

    generate_phantom(fast_options(seed=5019, fov="trunk", format="nifti", fractures=(FractureSpec("T10", 1, "crush"),),
                                  kyphosis=27.070366995747897, lordosis=64.9941428060875, scoliosis=3.35978172359599,
                                  patient_size="medium", bone_density="normal", noise=8.724926742865865,
                                  feet_first=True), tmp_path)
    result = analyze_path(tmp_path / "ct.nii.gz", None)
    t1 = next(v for v in result.vertebrae if v.label == "T1")
    assert t1.grade is not None and t1.grade < 2, (t1.heights_mm, t1.height_loss, t1.morphology)


def _lps_body(superior_z: tuple[float, float, float], inferior_z: tuple[float, float, float],
              tilt_deg: float = 0.0) -> dict[str, tuple[float, float, float]]:
    """Six LPS keypoints of a body 30 mm deep (anterior y = -15, middle 0, posterior +15) whose endplate points
    lie at these heights along its axis, the body turned by tilt_deg about the left-right axis."""
    t = np.radians(tilt_deg)
    turn = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    out = {}
    for side, heights in (("superior", superior_z), ("inferior", inferior_z)):
        for name, y, z in zip(("anterior", "middle", "posterior"), (-15.0, 0.0, 15.0), heights):
            out[f"{side}_{name}"] = tuple(float(c) for c in turn @ np.array([0.0, y, z]))
    return out


@pytest.mark.parametrize("tilt_deg", [0.0, 25.0])
def test_an_endplate_bulges_by_its_middle_beyond_the_line_through_its_corners(tilt_deg):
    from screening_node.analysis.genant import endplate_bulge

    concave = _lps_body((12.0, 10.5, 12.0), (-12.0, -10.0, -12.0), tilt_deg)  # both middles sunk: biconcave
    assert endplate_bulge(concave) == pytest.approx(-1.5)
    wedge = _lps_body((6.0, 9.0, 12.0), (-12.0, -12.0, -12.0), tilt_deg)  # a wedge's upper endplate slopes
    assert endplate_bulge(wedge) == pytest.approx(0.0, abs=1e-9)
    # ts-example cropped by one column: L1's upper back corner read 8 mm below its middle
    misread = _lps_body((12.0, 11.0, 4.0), (-12.0, -12.5, -13.0), tilt_deg)
    assert endplate_bulge(misread) == pytest.approx(11.0 - 8.0)


def test_a_bulging_endplate_is_a_failed_trace():
    from screening_node.analysis.genant import bulging_endplates

    flat = _lps_body((12.0, 11.5, 12.0), (-12.0, -11.5, -12.0))
    bulging = _lps_body((12.0, 12.0, 12.0), (-12.0, -14.6, -12.0))  # the lower middle 2.6 mm into the disc
    reasons = bulging_endplates([flat, None, bulging])
    assert reasons[:2] == [None, None]
    assert reasons[2] is not None and "bulging 2.6 mm" in reasons[2]


def test_a_body_whose_shape_was_not_traced_is_graded_from_its_tallest_height_when_collapsed_anyway():
    """fast 7 case 13's T4, a grade 3 crush (truth 8.0 / 7.8 / 8.6 mm): its back endplate was misread, 9.7 /
    9.8 / 7.0 mm, a front far above the back. Even its tallest height lies 43 % below its neighbours'
    posterior heights: a grade 3 crush however the back was misread."""
    from screening_node.analysis.genant import ANTERIOR_TOO_TALL_REASON, collapsed_anyway, implausible_heights

    heights, references = _h(9.73, 9.77, 6.96), [16.8, 17.1, 17.3, 17.4]
    assert implausible_heights(heights, references) == ANTERIOR_TOO_TALL_REASON
    read = collapsed_anyway(heights, references, ANTERIOR_TOO_TALL_REASON)
    assert read is not None and (read.grade, read.morphology) == (3, "crush")
    assert read.height_loss == pytest.approx(1 - 9.77 / 17.2, abs=1e-4)


@pytest.mark.parametrize("heights, references, failure", [
    (_h(20.1, 26.0, 21.0), [24.0, 25.0], "middle"),  # a normal body with its middle misread: 4 % below
    (_h(9.7, 9.8, 7.0), [17.0], "anterior"),  # one reference alone could be misread itself
    (_h(9.7, 9.8, 7.0), [17.0, 17.2], "crossed"),  # a trace into the neighbour misplaces the body itself
    (_h(12.0, 17.0, 13.0), [21.0, 22.0], "middle"),  # 21 % below: a mild collapse could be a misplaced endplate
])
def test_a_failed_trace_stays_ungraded_unless_surely_collapsed(heights, references, failure):
    from screening_node.analysis.genant import (ANTERIOR_TOO_TALL_REASON, CROSSED_ENDPLATE_REASON,
                                                MIDDLE_TOO_TALL_REASON, collapsed_anyway)

    reason = {"middle": MIDDLE_TOO_TALL_REASON, "anterior": ANTERIOR_TOO_TALL_REASON,
              "crossed": CROSSED_ENDPLATE_REASON}[failure]
    assert collapsed_anyway(heights, references, reason) is None


def test_a_body_with_an_endplate_read_bulging_is_graded_too_when_collapsed_anyway():
    from screening_node.analysis.genant import BULGING_ENDPLATE_REASON, collapsed_anyway

    read = collapsed_anyway(_h(13.4, 16.4, 13.4), [22.5, 22.9], BULGING_ENDPLATE_REASON.format(2.7))
    assert read is not None and read.grade == 2 and read.height_loss == pytest.approx(1 - 16.4 / 22.7, abs=1e-4)


def test_a_failed_trace_is_graded_collapsed_only_between_measured_neighbours():
    """verse19-007 cut by two bottom slices: its cut top body split at a false disc, and the 6-10 mm fragment,
    its endplates read bulging, lay 58 % below the two bodies under it. With nothing measured above it, it is
    no collapsed body; the same heights between measured neighbours are."""
    from screening_node.analysis.genant import BULGING_ENDPLATE_REASON, collapsed_failed_traces

    fragment, normal = _h(6.0, 10.2, 8.0), _h(22.1, 21.4, 23.6)
    failure = BULGING_ENDPLATE_REASON.format(4.5)
    at_the_end = collapsed_failed_traces([fragment, normal, normal], [True] * 3, [failure, None, None])
    assert at_the_end == [None, None, None]
    between = collapsed_failed_traces([normal, fragment, normal], [True] * 3, [None, failure, None])
    assert between[1] is not None and between[1].grade == 3 and between[0] is None
