"""Transitional anatomy: 11 or 13 rib pairs, six lumbar vertebrae (issue 4: the result says so and lowers the
label confidence instead of guessing silently), on phantoms of the whole trunk, C7 to the sacrum, in view;
and chest fields whose only anchor is the first rib (T1)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from screening_node.analysis.evaluate_metrics import nearest_truth
from screening_node.analysis.evaluate_truth import load_truth
from screening_node.analysis.labelling import _first_rib_candidates, _rib_count_conflict, _short_last_rib
from screening_node.analysis.pipeline import analyze_path
from screening_node.analysis.results import StudyResult
from screening_node.analysis.vertebrae import BodyFinding
from screening_node.phantom import PhantomOptions, fast_options, generate_phantom


@pytest.mark.parametrize(("t1", "t12", "s1", "conflict"), [
    ([2], 13, 19, False),     # twelve rib-bearing vertebrae
    ([2], 14, 20, True),      # thirteen
    ([2], 12, 18, True),      # eleven
    ([3, 2], 13, 19, False),  # the two readings of the first rib disagree: either start gives twelve
    ([3, 2], 15, 21, True),   # thirteen or fourteen
    ([2], None, 19, False),   # no clear last rib: T1 to the sacrum is seventeen bodies
    ([2], None, 20, True),    # ... eighteen
    ([], 13, 19, False),      # no first rib in view: nothing to count
])
def test_the_rib_bearing_vertebrae_are_counted_where_both_ends_show(t1, t12, s1, conflict) -> None:
    note = _rib_count_conflict(t1, t12, s1)
    assert (note is not None) == conflict
    if conflict:
        assert note.startswith("labelling conflict")


def test_every_reading_of_the_first_rib_is_a_candidate_for_the_count() -> None:
    rib = [False, False, True, True, True, True]
    assert _first_rib_candidates(3, 3, rib) == [3, 2]  # T1's short rib: the body above shows a rib's length
    assert _first_rib_candidates(3, 2, [False, True, True, True, True]) == [2, 1, 3]
    assert _first_rib_candidates(2, None, rib) == []  # only the own-rows reading: no count
    assert _first_rib_candidates(None, None, rib) == []


@pytest.mark.parametrize(("rib_pairs", "lumbar", "conflict"), [
    (12, 5, None),
    (13, 5, "13 rib-bearing vertebrae"),
    (11, 5, "rib-bearing vertebrae"),  # 3 mm slices: a thin upper thoracic disc missed as well, 10 counted
    (12, 6, "6 rib-free vertebrae"),
])
def test_a_trunk_with_other_than_twelve_ribs_or_five_lumbar_vertebrae_says_so(tmp_path: Path, rib_pairs: int,
                                                                               lumbar: int, conflict: str | None) -> None:
    generate_phantom(fast_options(seed=7, fov="trunk", format="nifti", rib_pairs=rib_pairs, lumbar=lumbar), tmp_path)
    result = analyze_path(tmp_path / "ct.nii.gz", None)
    notes = [n for n in result.notes if n.startswith("labelling conflict")]
    confidences = {v.label_confidence for v in result.vertebrae if v.label is not None}
    if conflict is None:
        assert notes == [] and confidences == {0.95}
    else:
        assert any(conflict in n for n in notes), result.notes
        assert max(confidences) <= 0.5


def _nearest_truth_levels(case: Path, result: StudyResult) -> list[tuple[str, str]]:
    """(our label, the level of the nearest visible truth body) for every labelled body the field does not cut
    (a body cut at the field's end lies nearer its neighbour's centre)."""
    return [(v.label, tv.label) for v, tv, _ in nearest_truth(result, load_truth(case))
            if "cut by the field" not in (v.reason or "")]


@pytest.mark.parametrize("options", [
    # 3 mm: T1's short first rib reaches 58 mm with the rows below, no unmistakable rib: T2 was taken for T1
    fast_options(seed=5, fov="chest", levels=("C5", "T10"), format="nifti", kyphosis=36.64579963182824,
                 lordosis=51.09013480518644, scoliosis=0.23502884061471363, patient_size="large",
                 bone_density="osteoporotic", noise=14.418965181854277),
    # 1 mm: C7 reaches T1's first rib through their facet joints with the rows below (64 mm): C7 was taken for T1
    PhantomOptions(seed=3, fov="chest", levels=("C5", "T10"), format="nifti", kyphosis=25.849893504340223,
                   lordosis=56.33596320579278, scoliosis=-7.63232389768833, patient_size="large",
                   bone_density="osteopenic", noise=13.096088454766416, matrix=400, pixel_spacing=1.0,
                   slice_thickness=1.0),
], ids=["short-first-rib-3mm", "c7-reaching-the-first-rib-1mm"])
def test_a_chest_field_without_the_lowest_ribs_is_labelled_from_its_first_rib(tmp_path: Path,
                                                                               options: PhantomOptions) -> None:
    generate_phantom(options, tmp_path)
    result = analyze_path(tmp_path / "ct.nii.gz", None)
    assert any("counted down from the first rib-bearing vertebra" in n for n in result.notes), result.notes
    pairs = _nearest_truth_levels(tmp_path, result)
    right = [ours == truth for ours, truth in pairs if ours.startswith("T")]
    assert len(right) >= 8 and all(right), pairs


def _body(top: float | None, bottom: float | None, cut: bool = False) -> BodyFinding:
    return BodyFinding(top_disc=top, bottom_disc=bottom, centre_row=0.5 * ((top or 0.0) + (bottom or 0.0)),
                       ap_range=(-15.0, 15.0), lat_half_width=20.0, keypoints=None, reason=None, cut_by_fov=cut)


def test_a_short_last_rib_at_the_field_end_leaves_the_body_above_it_as_t12() -> None:
    """A chest field ending in L2: L1 reaches 52 and 40 mm (a short rib or a long transverse process) and
    the cut L2 below it shows no rib head, so no rib-free body follows the ribs and no T12 was found. The
    last body with an unmistakable rib is taken for T12 (the short one, index 3, is L1); not where a body
    below could still show a rib, nor where the last "rib" is an unmistakable one."""
    volume = np.zeros((140, 3, 3), np.float32)
    volume[112:] = -3024.0  # the field ends 4 mm below L2's upper disc
    st = SimpleNamespace(volume=volume, half_ap=1, half_lat=1)
    bodies = [_body(0, 25), _body(25, 50), _body(50, 78), _body(78, 108), _body(108, None, cut=True)]
    rib = [True, True, True, True, False]
    sure = [True, True, True, False, False]
    assert _short_last_rib(st, bodies, rib, sure) == 3  # type: ignore[arg-type]
    assert _short_last_rib(st, bodies[:4] + [_body(108, 136)], rib, sure) is None  # type: ignore[arg-type]
    assert _short_last_rib(st, bodies, rib, [True] * 4 + [False]) is None  # type: ignore[arg-type]
    assert _short_last_rib(st, bodies[:4], rib[:4], sure[:4]) == 3  # type: ignore[arg-type]
    volume[112:] = 0.0  # the field shows L2 to its lower disc: its rib head would show
    assert _short_last_rib(st, bodies, rib, sure) is None  # type: ignore[arg-type]
