"""Bodies turned against the straightened planes, measured again square to their own axis.

The straightening follows the bodies' centres smoothed over several levels, so where the spine turns
sharply a body's discs lie 10-20 degrees off the planes (tcia L4 and L5), and the columns read across
such a body cross its endplates obliquely: a body turned 25 degrees read 26.8 / 33.0 / 26.8 mm for 30 /
30 / 30 (tests/test_body_axis.py). A vertebral body is rigid; a reader measures it on a sagittal plane
with its endplates level. So where both discs of a body lean the same way (disc_tilt: the disc's darkest
row per column across the body's depth, a robust line, taken only where the columns agree), the body is
read again on planes square to its axis, a straight local frame through its centre (no fanning), and its
keypoints are mapped back onto the straightened volume.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, stats

from screening_node.analysis import thresholds as T
from screening_node.analysis.endplates import body_keypoints
from screening_node.analysis.genant import implausible_heights
from screening_node.analysis.results import keypoint_heights
from screening_node.analysis.straighten import Straightened, lps_to_straightened, sample_planes
from screening_node.analysis.vertebrae import BodyFinding, mid_sagittal
from screening_node.analysis.walls import ap_extent


TILTED_REASON = "a disc tilted {:.0f} degrees against the straightened planes, and no endplates found square to the body's axis"


def disc_tilt(st: Straightened, disc_row: float, ap_range: tuple[float, float]) -> float | None:
    """Slope (rows per mm of depth) of a disc on the mid-sagittal plane across a body's depth, or None.

    Per column over the middle of the body's depth, the darkest row within DISC_TILT_REACH_MM of the
    disc's row (the disc's soft tissue or gas between two endplates); Theil-Sen's line through them,
    which one column's misread (a vessel, an osteophyte) does not move.
    """
    v = st.volume
    cl = st.half_lat
    ant, post = ap_range
    inset = T.DISC_TILT_INSET_SHARE * (post - ant)
    r0 = max(0, int(round(disc_row - T.DISC_TILT_REACH_MM)))
    r1 = min(v.shape[0] - 1, int(round(disc_row + T.DISC_TILT_REACH_MM)))
    if r1 - r0 < 4:
        return None
    cols = np.arange(ant + inset, post - inset + 1e-6, 1.0)
    idx = np.rint(cols).astype(int) + st.half_ap
    ok = (idx >= 0) & (idx < v.shape[1])
    cols, idx = cols[ok], idx[ok]
    if len(cols) < T.DISC_TILT_MIN_COLUMNS:
        return None
    plane = ndimage.gaussian_filter(v[r0:r1 + 1, :, cl - 3:cl + 4].mean(axis=2), 1.0)[:, idx]
    darkest = np.argmin(plane, axis=0)
    inside = (darkest > 0) & (darkest < plane.shape[0] - 1)  # a minimum at the window's end is no disc
    if inside.sum() < T.DISC_TILT_MIN_COLUMNS:
        return None
    slope, _, low, high = stats.theilslopes(r0 + darkest[inside], cols[inside])
    if low <= 0.0 <= high or high - low > T.DISC_TILT_MAX_SPREAD:
        # No tilt that the columns agree on: a level disc, or darkest rows that jump between the disc
        # and a marrow centre darker than it (osteoporotic bone; 3 mm phantoms read thoracic discs 19-30
        # degrees off that way, and the bodies turned to them read 5-14 mm short).
        return None
    return float(slope)


def square_tilted_bodies(image: sitk.Image, array: np.ndarray, st: Straightened, bodies: list[BodyFinding]) -> list[BodyFinding]:
    """The bodies, each whole one turned as a whole against the planes (_turned_as_a_whole) read again on
    planes square to its axis (its keypoints mapped back onto ``st``). One that cannot be read there (or
    reads heights no body has: a tcia cut's L4 read its back 18 mm on its own frame, 29 on the first) keeps
    its first reading, unless a disc of it lies DISC_TILT_UNREADABLE_DEG or more off the planes: the
    corner endplates are looked for between the disc's middle row (give or take DISC_MIDDLE_MARGIN_MM) and
    ENDPLATE_TILT_MM past the middle one, ~15 mm away, so beyond ~18 degrees one corner's own endplate lies
    outside that window and another edge is read (reasoned and measured with a window within ENDPLATE_TILT_MM
    of the middle on both sides, before 2026-12-03; with the limit lifted since, the four real tables,
    grid_phase.py, patient_roll.py and two phantom batches read identically: no case here reaches it now, and
    it stays as a guard; verse19-006
    L4, read across planes 27 degrees off its lower disc while a lateral centring of the track was tried:
    21.0 / 25.5 / 32.3 mm, a false grade 2 wedge); it is then not measured (TILTED_REASON)."""
    out = list(bodies)
    for i, body in enumerate(bodies):
        if not body.whole:
            continue
        slopes = [disc_tilt(st, d, body.ap_range) for d in (body.top_disc, body.bottom_disc)]  # type: ignore[arg-type]
        if not _turned_as_a_whole(slopes):
            continue
        again = _read_square(image, array, st, body, slopes)  # type: ignore[arg-type]
        if again is not None and implausible_heights(_heights(st, again.keypoints)) is None:  # type: ignore[arg-type]
            out[i] = again
            continue
        steepest = float(np.degrees(np.arctan(max(abs(s) for s in slopes))))  # type: ignore[arg-type]
        if steepest >= T.DISC_TILT_UNREADABLE_DEG:
            out[i] = dataclasses.replace(body, keypoints=None, reason=TILTED_REASON.format(steepest))
    return out


def _turned_as_a_whole(slopes: list[float | None]) -> bool:
    """Whether both of a body's discs lean the same way, each BODY_TILT_MIN_DEG or more off its planes.

    One tilted disc alone says less about the body than about its neighbour: the disc beside a wedge
    fracture leans with the fracture's endplate (3 mm phantoms: the normal L3 above a grade 3 wedge,
    turned by half its lower disc's 22 degrees, read its middle 3.6 mm tall), and the L5/S1 disc leans
    with the sacrum (ts-example: 38 degrees, L5's own endplates 5-15).
    """
    top, bottom = slopes
    if top is None or bottom is None:
        return False
    limit = np.tan(np.radians(T.BODY_TILT_MIN_DEG))
    return bool(min(abs(top), abs(bottom)) >= limit and top * bottom > 0)


def _read_square(image: sitk.Image, array: np.ndarray, st: Straightened, body: BodyFinding,
                 slopes: list[float]) -> BodyFinding | None:
    """The body read on a straight local frame along its own axis (square to the mean of its discs),
    keypoints mapped onto ``st``; None when its walls or endplates do not show there.

    Turning the frame further, until the corner-to-corner lines lie level on average, was tried: it made
    ts-example's L5 (a wedge on 3 mm voxels) read its middle 29.2 mm on the whole scan and 25.1 on its
    lower crop; turned by the discs alone both read 24.9-25.1.
    """
    r = int(round(body.centre_row))
    centre = st.to_lps(body.centre_row, body.ap_centre, 0.0)
    axis, col = _turned(st.tangents[r], st.col_dirs[r], float(np.mean(slopes)))
    read = _read_on_frame(image, array, st, body, slopes, centre, axis, col)
    if read is None:
        return None
    keypoints, local = read
    mapped = {}
    for name, kp in keypoints.items():
        back = lps_to_straightened(st, local.to_lps(*kp), body.centre_row)
        if back is None:
            return None
        mapped[name] = back
    return dataclasses.replace(body, keypoints=mapped, reason=None)


def _heights(st: Straightened, keypoints: dict[str, tuple[float, float, float]]) -> dict[str, float]:
    """Anterior, middle and posterior heights (mm, LPS) of keypoints on ``st``."""
    return keypoint_heights({name: st.to_lps(*kp) for name, kp in keypoints.items()})


def _turned(axis: np.ndarray, col: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """The frame (axis, column direction) turned square to a plate that drops `slope` rows per mm of depth:
    the new axis leans -slope mm of depth per row."""
    new_axis = axis - slope * col
    new_col = col + slope * axis
    return new_axis / np.linalg.norm(new_axis), new_col / np.linalg.norm(new_col)


def _read_on_frame(image: sitk.Image, array: np.ndarray, st: Straightened, body: BodyFinding, slopes: list[float],
                   centre: np.ndarray, axis: np.ndarray, col: np.ndarray) -> tuple[dict, Straightened] | None:
    """Keypoints of the body on the straight frame through ``centre`` along ``axis`` (and that frame);
    ``slopes``: its discs' tilts on ``st`` (top, bottom)."""
    lat = np.cross(axis, col)
    n = int(np.ceil(0.5 * (body.bottom_disc - body.top_disc) + T.BODY_TILT_MARGIN_MM))  # type: ignore[operator]
    offsets = np.arange(-n, n + 1, dtype=float)
    k = len(offsets)
    local = sample_planes(image, centre[None, :] + offsets[:, None] * axis[None, :], np.tile(axis, (k, 1)),
                          np.tile(col, (k, 1)), np.tile(lat, (k, 1)), T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM,
                          array)
    mid = mid_sagittal(local)
    depth = (body.ap_range[0] - body.ap_centre, body.ap_range[1] - body.ap_centre)
    discs = [_local_disc_row(st, mid, local.half_ap, d, slope, body.ap_centre, (centre, axis, n), depth)
             for d, slope in zip((body.top_disc, body.bottom_disc), slopes)]
    if discs[0] is None or discs[1] is None:
        return None
    top, bottom = discs
    walls = ap_extent(mid, top, bottom, local.half_ap)
    if walls is None:
        return None
    keypoints, _ = body_keypoints(local.volume, local, top, bottom, walls)
    return None if keypoints is None else (keypoints, local)


def _local_disc_row(st: Straightened, mid: np.ndarray, half_ap: int, disc_row: float, slope: float, ap_centre: float,
                    frame: tuple[np.ndarray, np.ndarray, int], depth: tuple[float, float]) -> int | None:
    """Row of a disc on the local frame (``mid``: its mid-sagittal plane; ``frame``: its centre, axis and
    centre row): where the disc's plane crosses the body's axis (its row on the core of ``st``, carried
    along its tilt ``slope`` to the body's centre column), at the darkest row there across the body's
    middle columns (within DISC_LOCAL_REACH_MM); None outside the local frame."""
    centre, axis, n = frame
    at_centre = st.to_lps(disc_row + slope * ap_centre, ap_centre, 0.0)
    expected = int(round(float((at_centre - centre) @ axis))) + n
    reach = int(T.DISC_LOCAL_REACH_MM)
    lo, hi = expected - reach, expected + reach
    if lo < 1 or hi >= mid.shape[0] - 1:
        return None
    inset = T.DISC_TILT_INSET_SHARE * (depth[1] - depth[0])
    a0 = half_ap + int(round(depth[0] + inset))
    a1 = half_ap + int(round(depth[1] - inset))
    if a1 - a0 < T.DISC_TILT_MIN_COLUMNS:
        return None
    block = mid[lo:hi + 1, a0:a1 + 1]
    band = np.where((block > T.OUTSIDE_FOV_HU).all(axis=1), block.mean(axis=1), np.inf)  # never outside the scan
    if not np.isfinite(band).any():
        return None
    return lo + int(np.argmin(band))
