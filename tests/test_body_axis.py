"""Bodies tilted against the straightened planes are measured square to their own axis (analysis/body_axis.py)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.body_axis import disc_tilt, square_tilted_bodies
from screening_node.analysis.results import HEIGHT_KEYPOINTS
from screening_node.analysis.straighten import Straightened, lps_to_straightened, straighten
from screening_node.analysis.vertebrae import find_bodies

CENTRE = np.array([40.0, 60.0, 80.0])  # LPS mm of the middle body's centre (1 mm voxels, origin 0)


def _tilted_column(tilt_deg: float) -> sitk.Image:
    """Three bodies 30 mm tall, 30 mm deep and 40 mm wide, 6 mm discs between them, stacked along an
    axis leaning ``tilt_deg`` posteriorly towards the feet (as L5 above the sacrum): 1 mm cortex at
    700 HU around 200 HU marrow, discs and surroundings 40 HU, blurred like a 1 mm scan."""
    z, y, x = np.mgrid[0:160, 0:120, 0:80].astype(float)
    a = np.radians(tilt_deg)
    caudal = np.array([0.0, np.sin(a), -np.cos(a)])  # LPS
    depth = np.array([0.0, np.cos(a), np.sin(a)])
    rel = np.stack([x - CENTRE[0], y - CENTRE[1], z - CENTRE[2]], axis=-1)
    s, d, lat = rel @ caudal, rel @ depth, rel[..., 0]
    v = np.full(z.shape, 40.0)
    for k in (-1, 0, 1):
        sk = s - 36.0 * k
        outer = (np.abs(sk) <= 15) & (np.abs(d) <= 15) & (np.abs(lat) <= 20)
        inner = (np.abs(sk) <= 14) & (np.abs(d) <= 14) & (np.abs(lat) <= 19)
        v[outer] = 700.0
        v[inner] = 200.0
    image = sitk.GetImageFromArray(ndimage.gaussian_filter(v, 0.8).astype(np.float32))
    image.SetSpacing((1.0, 1.0, 1.0))
    return image


def _vertical_straightening(image: sitk.Image) -> Straightened:
    """Planes square to the scanner's long axis through the middle body's centre (not to the bodies)."""
    rows = np.arange(150, 10, -1.0)
    points = np.stack([np.full(rows.size, CENTRE[0]), np.full(rows.size, CENTRE[1]), rows], axis=1)
    return straighten(image, points, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM)


def _heights(st: Straightened, keypoints: dict) -> dict[str, float]:
    return {h: float(np.linalg.norm(st.to_lps(*keypoints[s]) - st.to_lps(*keypoints[i])))
            for h, (s, i) in HEIGHT_KEYPOINTS.items()}


def _middle_body(st: Straightened, bodies: list) -> int:
    rows = [b.centre_row for b in bodies]
    return int(np.argmin(np.abs(np.array(rows) - (150 - CENTRE[2]))))


def test_a_body_tilted_against_its_planes_is_measured_square_to_its_axis() -> None:
    # Both discs lean 25 degrees the same way (tcia's L4 and L5: 10-21 degrees): read across the planes
    # the columns cross the endplates obliquely, and the middle reads taller than both walls.
    image = _tilted_column(25.0)
    st = _vertical_straightening(image)
    bodies, _ = find_bodies(st)
    i = _middle_body(st, bodies)
    assert bodies[i].whole
    tilt = np.mean([disc_tilt(st, d, bodies[i].ap_range) for d in (bodies[i].top_disc, bodies[i].bottom_disc)])
    assert abs(np.degrees(np.arctan(tilt)) + 25.0) <= 5.0  # the disc climbs to the back
    squared = square_tilted_bodies(image, sitk.GetArrayViewFromImage(image), st, bodies)
    assert squared[i].keypoints is not None and squared[i].keypoints is not bodies[i].keypoints
    h = _heights(st, squared[i].keypoints)
    assert all(abs(h[k] - 30.0) <= 0.8 for k in h), h
    if bodies[i].keypoints is not None:  # read across the planes: the columns cross the endplates obliquely
        first = _heights(st, bodies[i].keypoints)
        assert max(abs(first[k] - 30.0) for k in first) > 1.5, first


def test_a_body_square_to_its_planes_keeps_its_reading() -> None:
    image = _tilted_column(0.0)
    st = _vertical_straightening(image)
    bodies, _ = find_bodies(st)
    squared = square_tilted_bodies(image, sitk.GetArrayViewFromImage(image), st, bodies)
    assert all(a is b for a, b in zip(bodies, squared))


def test_a_point_maps_back_onto_the_straightened_rows() -> None:
    image = _tilted_column(0.0)
    st = _vertical_straightening(image)
    for row, ap, lat in ((40.3, -12.0, 3.0), (75.0, 8.5, -2.5)):
        back = lps_to_straightened(st, st.to_lps(row, ap, lat), row)
        assert back is not None and np.allclose(back, (row, ap, lat), atol=1e-3)
