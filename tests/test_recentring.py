"""The spine straightened again through the measured bodies, in depth and to the side (pipeline)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from screening_node.analysis import thresholds as T
from screening_node.analysis.centreline import resample_by_arclength
from screening_node.analysis.mirror import mirror_axis
from screening_node.analysis.pipeline import _recentred_on_bodies, _Timer, straightened_spine
from screening_node.analysis.stages import ANALYTIC
from screening_node.phantom import fast_options, generate_phantom


def _axes(st, bodies) -> np.ndarray:
    """Each measured body's mirror axis (mm to the side of the curve)."""
    return np.array([mirror_axis(st, b, (b.ap_centre - 25, b.ap_centre + 45))[0]
                     for b in bodies if b.whole and b.keypoints is not None])


def test_planes_beside_the_bodies_mid_sagittal_planes_are_moved_towards_them(tmp_path) -> None:
    """Straightened 8 mm to the side of the bodies' centre line (as the first track lagged at tcia's L5 and
    S1, 10 mm beside their mirror axes), the bodies' mirror axes lie 3-8 mm off the curve; straightened
    again through the measured bodies none lies RECENTRE_MIN_MM off, and on average they lie less than
    half as far off as before (bodies whose axis lies within MIRROR_MIN_SHIFT_MM place the track on the
    curve, so the move is partial: 4.9 -> 2.3 mm on this phantom)."""
    generate_phantom(fast_options(seed=1, fov="abdomen", format="nifti"), tmp_path)
    image = sitk.ReadImage(str(tmp_path / "ct.nii.gz"), sitk.sitkFloat32)
    array = sitk.GetArrayViewFromImage(image)
    centred, _ = straightened_spine(ANALYTIC, image, array)
    rows = np.arange(len(centred.points))
    beside = resample_by_arclength(centred.to_lps(rows, np.zeros(len(rows)), np.full(len(rows), 8.0)), T.STRAIGHT_MM)
    st = ANALYTIC.straighten(image, beside, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM, array, guide=centred.guide())
    bodies, _ = ANALYTIC.bodies(st)
    before = _axes(st, bodies)
    assert len(before) >= 5 and np.abs(before).max() >= 6.0, before
    again, found = _recentred_on_bodies(ANALYTIC, image, array, st, bodies, _Timer())
    assert again is not st
    after = _axes(again, found)
    assert len(after) >= len(before) - 1, after
    assert np.abs(after).max() < T.RECENTRE_MIN_MM, after
    assert np.abs(after).mean() < 0.6 * np.abs(before).mean(), (before, after)
