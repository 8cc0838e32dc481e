"""The vertebrae's roll about the spine's axis: found on a rolled phantom, and planes turned to it."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import SimpleITK as sitk

from screening_node.analysis import thresholds as T
from screening_node.analysis.centreline import find_centreline
from screening_node.analysis.pipeline import measured_spine
from screening_node.analysis.roll import turn_from_posterior_deg, turned_note
from screening_node.analysis.stages import ANALYTIC
from screening_node.analysis.straighten import guided_frames, posterior_frames, rolled_posterior
from screening_node.phantom import fast_options, generate_phantom
from screening_node.phantom.roll import rolled_image


def _roll(image: sitk.Image) -> np.ndarray | None:
    line = find_centreline(image)
    return ANALYTIC.roll(ANALYTIC.straighten(image, line.points_lps, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM))


def test_a_rolled_phantoms_roll_is_found_and_its_planes_follow_it(tmp_path):
    """A phantom never rolls: its estimate stays under ROLL_MIN_DEG and its planes are not turned. Turned
    25 degrees, the estimate is 25 within 4, and the measured spine's column directions point along the
    turned anatomy's posterior (within 5 degrees), not along patient posterior."""
    generate_phantom(fast_options(seed=1, fov="abdomen", format="nifti"), tmp_path)
    image = sitk.ReadImage(str(tmp_path / "ct.nii.gz"), sitk.sitkFloat32)
    still = _roll(image)
    assert still is None or np.degrees(np.abs(still)).max() < T.ROLL_MIN_DEG
    assert not measured_spine(ANALYTIC, image)[0].turned
    roll = -25.0  # the back towards the patient's left
    turned, _ = rolled_image(image, roll)
    angles = np.degrees(_roll(turned))
    assert np.abs(np.abs(angles) - 25.0).max() <= 4.0, angles.round(1)
    st, bodies = measured_spine(ANALYTIC, turned)
    assert st.turned and bodies
    # Turned by the roll about S (x towards y), patient posterior (0, 1, 0) becomes (-sin, cos, 0).
    posterior = np.array([-math.sin(math.radians(roll)), math.cos(math.radians(roll)), 0.0])
    rows = [int(round(b.centre_row)) for b in bodies]
    cols = st.col_dirs[rows] * [1.0, 1.0, 0.0]  # in the axial plane
    cols /= np.linalg.norm(cols, axis=1, keepdims=True)
    off = np.degrees(np.arccos(np.clip(cols @ posterior, -1.0, 1.0)))
    assert off.max() < 5.0, off.round(1)
    # The results' note tells how far, in the sense of --roll; a square straightening has none.
    assert np.abs(turn_from_posterior_deg(st)[rows] - roll).max() < 5.0
    note = turned_note(st, rows)
    assert note is not None and abs(int(re.search(r"([+-]\d+) degrees at the median body", note)[1]) - roll) < 5
    assert turned_note(measured_spine(ANALYTIC, image)[0], rows) is None


def test_guided_frames_turn_patient_posterior_by_the_guides_roll_square_to_the_curve():
    """Each frame is orthonormal; its column direction is patient posterior turned by the roll at the
    nearest guide point (here the roll grows to 30 degrees along a slanted line); an upright curve's is
    posterior turned about the long axis, (-sin, cos, 0)."""
    z = np.linspace(100.0, -100.0, 201)
    points = np.stack([0.2 * z, np.zeros_like(z), z], axis=1)
    rolls = np.radians(np.linspace(0.0, 30.0, len(z)))
    t, r, s, got = guided_frames(points + [0.0, 3.0, 0.0], points, rolls)
    for a, b in ((t, r), (t, s), (r, s)):
        assert np.abs(np.einsum("ij,ij->i", a, b)).max() < 1e-9
    for v in (t, r, s):
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert np.allclose(np.cross(t, r), s)
    assert np.allclose(got, rolls) and np.allclose(r, rolled_posterior(rolls, t))
    upright = rolled_posterior(rolls, np.tile([0.0, 0.0, -1.0], (len(z), 1)))
    assert np.allclose(upright, np.stack([-np.sin(rolls), np.cos(rolls), np.zeros_like(z)], axis=1))


@pytest.mark.parametrize("lean_deg", [0.0, 45.0, 60.0])
def test_a_leaning_segment_turned_about_the_long_axis_keeps_its_own_posterior(lean_deg):
    """A patient rolls about the table's axis. A segment leaning in the sagittal plane (the sacrum, 40-60
    degrees) turned 30 degrees about S: its planes' column direction is the turned segment's own
    posterior, which lies 30 degrees about its curve only where it stands upright (leaning 45: 39)."""
    lean, roll = math.radians(lean_deg), math.radians(30.0)
    before = np.array([0.0, math.sin(lean), -math.cos(lean)])  # caudal, leaning back
    own_posterior = np.array([0.0, 1.0, 0.0]) - before[1] * before
    own_posterior /= np.linalg.norm(own_posterior)
    turn = np.array([[math.cos(roll), -math.sin(roll), 0.0], [math.sin(roll), math.cos(roll), 0.0], [0.0, 0.0, 1.0]])
    tangent = turn @ before
    got = rolled_posterior(roll, tangent[None, :])[0]
    assert np.allclose(got, turn @ own_posterior)
    _, square, _ = posterior_frames(np.stack([np.zeros(3), tangent, 2 * tangent]))
    about_curve = math.degrees(math.acos(float(np.clip(got @ square[1], -1.0, 1.0))))
    # seen along the leaning curve the turn is tan(about) = tan(roll) / cos(lean): 30, 39.2, 49.1 degrees
    assert about_curve == pytest.approx(math.degrees(math.atan(math.tan(roll) / math.cos(lean))), abs=1e-6)


def test_a_mirror_axis_about_the_curve_is_read_as_the_roll_about_the_long_axis():
    """roll_about_long_axis inverts rolled_posterior on a leaning curve, to its 0.1 degree grid."""
    from screening_node.analysis.roll import roll_about_long_axis
    from screening_node.analysis.straighten import Straightened

    rows = 50
    lean = math.radians(45.0)
    points = np.arange(rows)[:, None] * np.array([0.1, math.sin(lean), -math.cos(lean)])
    t, r, s = posterior_frames(points)
    st = Straightened(np.zeros((rows, 3, 3), np.float32), points, t, r, s, 1, 1)
    for angle in np.radians([-35.0, -10.0, 0.0, 20.0, 40.0]):
        roll = roll_about_long_axis(st, 25, float(angle))
        axis = math.cos(angle) * r[25] + math.sin(angle) * s[25]
        off = math.degrees(math.acos(float(np.clip(rolled_posterior(roll, t[25:26])[0] @ axis, -1.0, 1.0))))
        assert off < 0.1


def test_no_roll_is_claimed_where_no_window_shows_a_mirror_axis():
    """Sections with no mirror symmetry (noise) give no estimate, without a warning, and the planes stay."""
    import warnings

    from screening_node.analysis.roll import roll_angles
    from screening_node.analysis.straighten import Straightened

    rows = 200
    volume = np.random.default_rng(0).normal(400.0, 300.0, (rows, 121, 81)).astype(np.float32)
    z = np.linspace(100.0, -100.0, rows)
    points = np.stack([np.zeros(rows), np.zeros(rows), z], axis=1)
    st = Straightened(volume, points, np.tile([0.0, 0.0, -1.0], (rows, 1)), np.tile([0.0, 1.0, 0.0], (rows, 1)),
                      np.tile([-1.0, 0.0, 0.0], (rows, 1)), 60, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert roll_angles(st) is None
