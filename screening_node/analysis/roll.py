"""The vertebrae's own rotation about the spine's axis: a patient lying rolled, or a scoliotic column.

Straightening starts each plane's column direction at patient posterior (straighten.py). A vertebra
turned about the spine's axis then lies askew on its planes: the mid-sagittal plane cuts its body
obliquely, its canal and arch sit beside the column, its ribs reach unequally far. On the tcia series
turned 5-30 degrees about the long axis, bodies went unmeasured, levels moved and false grades >= 2
appeared; with the column direction turned by the known angle the unturned reading came back.

A vertebra (body, canal, pedicles, laminae, spinous process) mirrors itself about its mid-sagittal
plane. On sections averaged over a vertebra's worth of rows the angle of that mirror line is found by
search, the windows where the symmetry is clear are kept, and the angles are smoothed along the spine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.mirror import masked_ncc
from screening_node.analysis.straighten import Straightened, rolled_posterior


def roll_angles(st: Straightened) -> np.ndarray | None:
    """Per row of ``st``: the vertebrae's roll (radians) about the patient's long axis, in the sense of
    straighten.rolled_posterior (which turns the planes by it); None where no window shows a clear
    mirror axis.

    Windows of ROLL_WINDOW_MM rows every ROLL_STEP_MM are judged (ROLL_MIN_NCC, ROLL_MAX_SPREAD_DEG);
    each window's mirror axis (an angle about its own curve) is taken as a roll about the long axis;
    these are median-filtered over ROLL_MEDIAN_WINDOWS neighbouring windows (one or two stray windows,
    often at the field's end, do not count) and interpolated between them (held at the ends). A roll
    about the long axis is what a patient lying turned holds along the whole spine, also at the
    sacrum, whose windows are seldom clear (the pelvis beside it is cut unevenly by the field).
    """
    half = int(round(T.ROLL_WINDOW_MM / 2))
    centres, angles = [], []
    for row in range(half, len(st.points) - half, int(T.ROLL_STEP_MM)):
        angle, ncc = mirror_angle(st, row - half, row + half + 1)
        if ncc >= T.ROLL_MIN_NCC:
            centres.append(row)
            angles.append(roll_about_long_axis(st, row, angle))
    if len(angles) < T.ROLL_MIN_WINDOWS:
        return None
    rows, found = np.array(centres), np.array(angles)
    # The column's roll changes slowly; a window far off the rest is the pelvis or an organ, not a vertebra.
    keep = np.abs(found - np.median(found)) <= np.radians(T.ROLL_MAX_SPREAD_DEG)
    rows, found = rows[keep], found[keep]
    if len(found) < T.ROLL_MIN_WINDOWS:
        return None
    smooth = ndimage.median_filter(found, size=min(T.ROLL_MEDIAN_WINDOWS, len(found)), mode="mirror")
    return np.interp(np.arange(len(st.points)), rows, smooth)


def mirror_angle(st: Straightened, start: int, stop: int) -> tuple[float, float]:
    """The angle (radians) of the mirror line of rows start..stop (averaged) through the curve, and
    how well the section matches its mirror image there (normalised correlation, -1 when not judged).

    The line may pass up to ROLL_MAX_SHIFT_MM beside the curve (which runs through body, canal or arch,
    all on the mirror line, but not always on its middle). Bone is compared, soft tissue flattened
    (ROLL_SOFT_HU): organs beside the spine (liver, spleen) are not mirror images. A contrast-filled aorta
    above that level is still compared: phantoms, which never roll, read about +2 degrees.
    """
    rows = st.volume[start:stop]
    k = max(1, int(round(T.ROLL_SAMPLE_MM / st.step_mm)))
    h = k * st.step_mm
    img = np.clip(rows.mean(axis=0), T.ROLL_SOFT_HU, T.MIRROR_CLIP_HU)[::k, ::k]
    inside = (rows > T.OUTSIDE_FOV_HU).all(axis=0)[::k, ::k].astype(np.float32)
    ca, cl = st.half_ap / k, st.half_lat / k
    a = np.arange(img.shape[0]) - ca
    lat = np.arange(img.shape[1]) - cl
    grid_a, grid_l = np.meshgrid(a, lat, indexing="ij")
    coarse = np.radians(np.arange(-T.ROLL_MAX_DEG, T.ROLL_MAX_DEG + 1e-6, T.ROLL_COARSE_DEG))
    best = _best_mirror(img, inside, grid_a, grid_l, (ca, cl), coarse, h)
    fine = best[0] + np.radians(np.arange(-T.ROLL_COARSE_DEG + 1, T.ROLL_COARSE_DEG))
    best = max(best, _best_mirror(img, inside, grid_a, grid_l, (ca, cl), fine, h), key=lambda b: b[1])
    return best


def _best_mirror(img: np.ndarray, inside: np.ndarray, grid_a: np.ndarray, grid_l: np.ndarray,
                 centre: tuple[float, float], angles: np.ndarray, h: float) -> tuple[float, float]:
    """(angle, correlation) of the best mirror line among ``angles`` and lateral shifts: the section is
    turned so each candidate line lies along the ap axis, then compared with its left-right mirror."""
    ca, cl = centre
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    coords = np.stack([ca + grid_a * cos - grid_l * sin, cl + grid_a * sin + grid_l * cos])
    turned = ndimage.map_coordinates(img, coords, order=1, cval=np.nan, prefilter=False)
    valid = ndimage.map_coordinates(inside, coords, order=0, cval=0.0, prefilter=False) > 0
    turned[~valid] = np.nan
    reach = int(round(T.ROLL_MAX_SHIFT_MM / h))
    width = int(round(cl)) - reach - 1
    mid = int(round(cl))
    best = (0.0, -1.0)
    for shift in range(-reach, reach + 1):
        m = mid + shift
        ncc = masked_ncc(turned[:, :, m - width:m][:, :, ::-1], turned[:, :, m + 1:m + 1 + width])
        i = int(np.argmax(ncc))
        if ncc[i] > best[1]:
            best = (float(angles[i]), float(ncc[i]))
    return best


def roll_about_long_axis(st: Straightened, row: int, angle: float) -> float:
    """The roll (radians) about the patient's long axis that turns row's planes by ``angle`` about its
    curve (from its column direction towards its lateral one): the nearest on a ROLL_GRID_DEG grid."""
    axis = np.cos(angle) * st.col_dirs[row] + np.sin(angle) * st.lat_dirs[row]
    grid = np.radians(np.arange(-T.ROLL_GRID_MAX_DEG, T.ROLL_GRID_MAX_DEG + 1e-9, T.ROLL_GRID_DEG))
    dirs = rolled_posterior(grid, np.broadcast_to(st.tangents[row], (grid.size, 3)))
    return float(grid[np.argmax(dirs @ axis)])


def turn_from_posterior_deg(st: Straightened) -> np.ndarray:
    """Per row: the angle (degrees) from patient posterior, made square to the curve, to the row's column
    direction about the curve; positive where the column direction points towards the patient's right
    (the sense of the phantom's --roll: a patient whose back turned that way)."""
    square = rolled_posterior(0.0, st.tangents)
    # Right (-x in LPS) square to the curve: posterior x tangent when the tangent runs cranial -> caudal.
    right = np.cross(square, st.tangents)
    return np.degrees(np.arctan2(np.einsum("ij,ij->i", st.col_dirs, right),
                                 np.einsum("ij,ij->i", st.col_dirs, square)))


def turned_note(st: Straightened, rows: list[int]) -> str | None:
    """For the results' notes, where the planes were turned (Straightened.turned): how far, at the given
    rows (the bodies'), so an administrator sees that the patient lay rolled and how much; else None."""
    if not st.turned or not rows:
        return None
    turn = turn_from_posterior_deg(st)[np.clip(rows, 0, len(st.points) - 1)]
    return (f"the vertebrae lie turned about the spine's axis (a rolled patient or a rotated column): the "
            f"measuring planes were turned with them, {np.median(turn):+.0f} degrees at the median body "
            f"({turn.min():+.0f} to {turn.max():+.0f}; + : the back towards the patient's right)")
