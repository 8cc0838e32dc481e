"""Transitional anatomy: 11 or 13 rib pairs, six lumbar vertebrae (issue 4: the result says so and lowers the
label confidence instead of guessing silently). Phantoms of the whole trunk, C7 to the sacrum, in view."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening_node.analysis.labelling import _first_rib_candidates, _rib_count_conflict
from screening_node.analysis.pipeline import analyze_path
from screening_node.phantom import fast_options, generate_phantom


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
