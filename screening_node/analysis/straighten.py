"""Straighten the CT along a curve: planes orthogonal to the curve become rows of a new volume.

Frames are rotation-minimising (double reflection, Wang et al. 2008, ACM TOG 27(1)) so the
straightened spine does not twist. The straightened volume has axes (row, ap, lat):
row = arc length from the cranial end (1 mm), ap = offset along the column direction R (which
starts as patient posterior, so columns run anterior -> posterior), lat = offset along
S = T x R. Every straightened position maps back to patient LPS with `to_lps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.imaging.geometry import lps_to_index


@dataclass(frozen=True)
class Straightened:
    volume: np.ndarray       # (rows, n_ap, n_lat) float32 HU
    points: np.ndarray       # (rows, 3) LPS of the curve
    tangents: np.ndarray     # (rows, 3) unit, cranial -> caudal
    col_dirs: np.ndarray     # (rows, 3) unit R, anterior -> posterior
    lat_dirs: np.ndarray     # (rows, 3) unit S = T x R
    half_ap: int             # ap index of offset 0
    half_lat: int            # lat index of offset 0
    step_mm: float = 1.0     # sample spacing along ap and lat (rows are always 1 mm)

    def to_lps(self, row: np.ndarray | float, ap_mm: np.ndarray | float, lat_mm: np.ndarray | float) -> np.ndarray:
        """LPS of (fractional row, ap offset mm, lat offset mm); broadcasting, returns (..., 3)."""
        row = np.clip(np.asarray(row, dtype=float), 0, len(self.points) - 1)
        r0 = np.floor(row).astype(int)
        r1 = np.minimum(r0 + 1, len(self.points) - 1)
        w = (row - r0)[..., None]

        def lerp(a: np.ndarray) -> np.ndarray:
            return a[r0] * (1 - w) + a[r1] * w

        return (lerp(self.points) + np.asarray(ap_mm, float)[..., None] * lerp(self.col_dirs)
                + np.asarray(lat_mm, float)[..., None] * lerp(self.lat_dirs))


def rotation_minimising_frames(points: np.ndarray, first_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangents, reference vectors R and S = T x R along a polyline (double reflection method)."""
    t = np.gradient(points, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    r = np.zeros_like(points)
    r0 = first_ref - np.dot(first_ref, t[0]) * t[0]
    r[0] = r0 / np.linalg.norm(r0)
    for i in range(len(points) - 1):
        v1 = points[i + 1] - points[i]
        c1 = float(v1 @ v1)
        if c1 < 1e-12:
            r[i + 1] = r[i]
            continue
        rl = r[i] - (2 / c1) * (v1 @ r[i]) * v1
        tl = t[i] - (2 / c1) * (v1 @ t[i]) * v1
        v2 = t[i + 1] - tl
        c2 = float(v2 @ v2)
        r[i + 1] = rl if c2 < 1e-12 else rl - (2 / c2) * (v2 @ rl) * v2
        r[i + 1] /= np.linalg.norm(r[i + 1])
    s = np.cross(t, r)
    return t, r, s


def straighten(image: sitk.Image, points: np.ndarray, half_ap: int, half_lat: int,
               array: np.ndarray | None = None, step_mm: float = 1.0) -> Straightened:
    """Sample the CT on planes orthogonal to the curve (linear interpolation, -1024 outside).

    Rows are the curve's points (1 mm apart); ap and lat are sampled every step_mm, half_ap and
    half_lat samples to each side (so index half_ap is offset 0).
    """
    t, r, s = rotation_minimising_frames(points, np.array([0.0, 1.0, 0.0]))  # R starts posterior
    return sample_planes(image, points, t, r, s, half_ap, half_lat, array, step_mm)


def sample_planes(image: sitk.Image, points: np.ndarray, t: np.ndarray, r: np.ndarray, s: np.ndarray,
                  half_ap: int, half_lat: int, array: np.ndarray | None = None, step_mm: float = 1.0) -> Straightened:
    """Sample the CT on the planes spanned by the frames (r, s) at the points (rows of a Straightened)."""
    arr = sitk.GetArrayViewFromImage(image) if array is None else array
    ap = np.arange(-half_ap, half_ap + 1, dtype=float) * step_mm
    lat = np.arange(-half_lat, half_lat + 1, dtype=float) * step_mm
    out = np.empty((len(points), ap.size, lat.size), dtype=np.float32)
    chunk = 64
    for start in range(0, len(points), chunk):
        sl = slice(start, start + chunk)
        lps = (points[sl, None, None, :] + ap[None, :, None, None] * r[sl, None, None, :]
               + lat[None, None, :, None] * s[sl, None, None, :])
        idx = lps_to_index(image, lps)[..., ::-1]  # numpy (z, y, x)
        out[sl] = ndimage.map_coordinates(arr, np.moveaxis(idx, -1, 0), order=1, cval=-1024.0, prefilter=False)
    return Straightened(out, points, t, r, s, half_ap, half_lat, step_mm)


def lps_to_straightened(st: Straightened, p: np.ndarray, near_row: float) -> tuple[float, float, float] | None:
    """(row, ap mm, lat mm) of an LPS point on a straightened volume: the inverse of ``to_lps`` near a row.

    The point lies on the plane of the row where its offset along the tangent changes sign; of the sign
    changes (planes fan out far from the curve) the one nearest ``near_row``. None off every plane.
    """
    along = np.einsum("ij,ij->i", p[None, :] - st.points, st.tangents)
    cross = np.nonzero((along[:-1] >= 0) & (along[1:] < 0) | (along[:-1] <= 0) & (along[1:] > 0))[0]
    if not len(cross):
        return None
    i = int(cross[np.argmin(np.abs(cross - near_row))])
    w = float(along[i] / (along[i] - along[i + 1])) if along[i] != along[i + 1] else 0.0
    off = p - (st.points[i] * (1 - w) + st.points[i + 1] * w)  # interpolated as to_lps does
    col = st.col_dirs[i] * (1 - w) + st.col_dirs[i + 1] * w
    lat = st.lat_dirs[i] * (1 - w) + st.lat_dirs[i + 1] * w
    return i + w, float(off @ col), float(off @ lat)
