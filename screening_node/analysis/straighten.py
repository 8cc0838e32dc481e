"""Straighten the CT along a curve: planes orthogonal to the curve become rows of a new volume.

Each plane's column direction R is patient posterior made orthogonal to the curve, so the plane
through the curve and R is the vertebra's mid-sagittal plane wherever the patient lies square, and
the straightened spine does not twist. Rotation-minimising frames (double reflection, Wang et al.
2008), used first, turn about the curve by the solid angle its tangent sweeps: a body centre line
that swung 10 mm sideways where the kyphosis tilts the spine turned every plane below by 20 degrees
(a 3 mm phantom; ts-example 8 degrees), and the "mid-sagittal" plane cut each body obliquely.
The straightened volume has axes (row, ap, lat): row = arc length from the cranial end (1 mm),
ap = offset along R (columns run anterior -> posterior; where the vertebrae are turned about the
spine's axis, R follows their own anterior -> posterior axis instead, see roll.py), lat = offset
along S = T x R. Every straightened position maps back to patient LPS with `to_lps`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.imaging.geometry import lps_direction_to_index, lps_to_index

SAMPLE_ROWS = 32     # rows interpolated per block: a block's index grid stays ~10 MB
SAMPLE_THREADS = 2   # the machines this runs on have two cores or more


SLICE_THICKNESS_KEY = "screening_node|slice_thickness_mm"  # the image's own key for its overlapping slices' thickness


def mark_slice_thickness(image: sitk.Image, thickness_mm: float | None) -> None:
    """Mark ``image`` with its slices' thickness (read back by slice_thickness_of), or clear the mark (None)."""
    if image.HasMetaDataKey(SLICE_THICKNESS_KEY):
        image.EraseMetaData(SLICE_THICKNESS_KEY)
    if thickness_mm is not None:
        image.SetMetaData(SLICE_THICKNESS_KEY, f"{float(thickness_mm):g}")


def slice_thickness_of(image: sitk.Image) -> float | None:
    """The thickness (mm) of the image's slices, along its third axis, where the image carries one larger than
    their spacing (overlapping slices: 3 mm every 2 mm or every 1.5 mm), else None. The analysis sets it
    from the series' SliceThickness or the user (pipeline._run); a slice averages the anatomy over its
    thickness, however closely the slices are placed. (A private key, not DICOM's 0018|0050 that SimpleITK's
    readers may carry: that one belongs to the stored slices, whose axis as_lps can move.)"""
    if not image.HasMetaDataKey(SLICE_THICKNESS_KEY):
        return None
    try:
        thickness = float(image.GetMetaData(SLICE_THICKNESS_KEY))
    except ValueError:
        return None
    return thickness if thickness > image.GetSpacing()[2] else None


@dataclass(frozen=True)
class SliceStack:
    """Where the CT's slices lie (its third image axis): a straightened sample between two slices is their
    linear mix, and on thick slices a fit that knows which two reads an endplate twice as closely
    (slice_sampling.py)."""
    origin: np.ndarray     # LPS of voxel index (0, 0, 0)
    index_row: np.ndarray  # (3,) a point's continuous slice index is index_row @ (point - origin)
    spacing_mm: float
    thickness_mm: float | None = None  # where the slices overlap (thicker than they are apart), their thickness

    @classmethod
    def of(cls, image: sitk.Image) -> SliceStack | None:
        """The slice stack of an image (its third axis, as lps_to_index counts it); None where its slices are
        not SLICES_OVER_PIXELS times as far apart as its pixels: a grid as coarse within the slices as across
        them (ts-example's 3 mm cubes) was resampled, its voxels interpolated rather than averaged over a
        slice, and the slices' sampling is not what made it. Slices known to overlap (slice_thickness_of) are
        slices however close (3 mm every 1.5 mm on 1.5 mm pixels)."""
        spacing = image.GetSpacing()
        thickness = slice_thickness_of(image)
        if thickness is None and spacing[2] < T.SLICES_OVER_PIXELS * max(spacing[0], spacing[1]):
            return None
        unit_steps = lps_direction_to_index(image, np.eye(3))  # row i: index change per mm along LPS axis i
        return cls(np.asarray(image.GetOrigin(), dtype=float), unit_steps[:, 2].copy(), float(spacing[2]),
                   thickness)

    @property
    def thickness_over_spacing(self) -> float:
        """How many times as thick as they are apart the slices are (1 where they do not overlap)."""
        return 1.0 if self.thickness_mm is None else self.thickness_mm / self.spacing_mm

    def index(self, points_lps: np.ndarray) -> np.ndarray:
        """Continuous slice index of LPS points (..., 3)."""
        return (np.asarray(points_lps, dtype=float) - self.origin) @ self.index_row


class SpineSampling(NamedTuple):
    """How finely the CT samples the spine at a row: its samples' spacing along the spine and a voxel's
    extent there (larger where the slices overlap)."""
    spacing_mm: float
    thickness_mm: float


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
    rolls: np.ndarray | None = None  # (rows,) where the column directions follow the vertebrae's own (roll.py):
                                     # each row's roll (radians) about the patient's long axis; else None
    row_spacing_mm: np.ndarray | None = None  # (rows,) the CT's sample spacing along each row's tangent
    lat_spacing_mm: float | None = None  # the CT's sample spacing across the spine (median over the rows' lateral
                                         # directions): an axial series' pixels, a sagittal one's slices
    slices: SliceStack | None = None  # where the CT's slices lie, to tell which ones each sample mixed
    row_thickness_mm: np.ndarray | None = None  # (rows,) the voxel's extent along each row's tangent with the
                                                # slices as thick as they are (only where they overlap)

    @property
    def turned(self) -> bool:
        """Whether the column directions follow the vertebrae's own rather than patient posterior."""
        return self.rolls is not None

    def thick_sampling_at(self, row: float) -> SpineSampling | None:
        """The CT's sample spacing and voxel extent along the spine at the row nearest ``row`` where the spacing
        is MODELLED_BLUR_SPACING_MM or more (thick slices: the endplate fits model their blur,
        endplates.slice_blur, and their sampling, slice_sampling.py); None where it is finer or not known. The
        extent is the slices' thickness where they overlap (3 mm slices every 2 mm: each averages 3 mm).
        Sampled closer, the shell fit finds the blur itself (3 mm slices every 1.5 mm read better so)."""
        if self.row_spacing_mm is None:
            return None
        i = int(np.clip(round(row), 0, len(self.row_spacing_mm) - 1))
        spacing = float(self.row_spacing_mm[i])
        if spacing < T.MODELLED_BLUR_SPACING_MM:
            return None
        return SpineSampling(spacing, spacing if self.row_thickness_mm is None
                             else max(spacing, float(self.row_thickness_mm[i])))

    @property
    def coarse_across(self) -> bool:
        """Whether the CT samples across the spine at THICK_SLICE_MM or coarser (a sagittal series' slices):
        there a body's side walls and anything read beside its mid-sagittal plane are averaged over the slices."""
        return self.lat_spacing_mm is not None and self.lat_spacing_mm >= T.THICK_SLICE_MM

    def guide(self) -> tuple[np.ndarray, np.ndarray] | None:
        """What another straightening along this spine needs to keep its column directions: the curve's
        points and their rolls where the planes were turned to the vertebrae's own, else None."""
        return (self.points, self.rolls) if self.rolls is not None else None

    def to_lps(self, row: np.ndarray | float, ap_mm: np.ndarray | float, lat_mm: np.ndarray | float) -> np.ndarray:
        """LPS of (fractional row, ap offset mm, lat offset mm); broadcasting, returns (..., 3)."""
        point, col, lat = self.plane_at(row)
        return point + np.asarray(ap_mm, float)[..., None] * col + np.asarray(lat_mm, float)[..., None] * lat

    def plane_at(self, row: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The curve's point and the column and lateral directions at fractional rows (linear between
        rows), each (..., 3): a plane's LPS positions are point + ap * col + lat * lat."""
        row = np.clip(np.asarray(row, dtype=float), 0, len(self.points) - 1)
        r0 = np.floor(row).astype(int)
        r1 = np.minimum(r0 + 1, len(self.points) - 1)
        w = (row - r0)[..., None]

        def lerp(a: np.ndarray) -> np.ndarray:
            return a[r0] * (1 - w) + a[r1] * w

        return lerp(self.points), lerp(self.col_dirs), lerp(self.lat_dirs)


def _tangents(points: np.ndarray) -> np.ndarray:
    """Unit tangents of a polyline (central differences), in its direction."""
    t = np.gradient(points, axis=0)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def posterior_frames(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangents, column directions R (patient posterior made orthogonal to the tangent) and S = T x R."""
    t = _tangents(points)
    return (t, *_frames(t, 0.0))


def _frames(t: np.ndarray, rolls: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """R: patient posterior turned by ``rolls`` about the long axis, square to each tangent
    (rolled_posterior; no roll: patient posterior made square), and S = T x R."""
    r = rolled_posterior(rolls, t)
    return r, np.cross(t, r)


def rolled_posterior(rolls: np.ndarray | float, tangents: np.ndarray) -> np.ndarray:
    """Column directions (unit, square to each tangent) of a spine turned by ``rolls`` (radians, per
    tangent) about the patient's long (S) axis: patient posterior made square to the tangent the spine
    had before the turn, then turned with it. (A turn about S by a, x towards y, takes posterior
    (0, 1, 0) to (-sin a, cos a, 0).)

    A patient rolls about the table's axis, not about each vertebra's own. Where the column runs
    upright the two are the same turn; where it leans in the sagittal plane (the sacrum, 40-60 degrees)
    a roll of 30 degrees about S turns the planes 37-49 degrees about the column. Turning each plane by
    the roll about its own tangent left the tcia series, turned 30 degrees, with planes at S1 14-20
    degrees short of its vertebrae: one ala out of the rows, its sacrum one body low, every level one off.
    """
    a = np.broadcast_to(np.asarray(rolls, dtype=float), tangents.shape[:1])
    c, s = np.cos(a), np.sin(a)
    tx, ty, tz = tangents[:, 0], tangents[:, 1], tangents[:, 2]
    before = np.stack([c * tx + s * ty, -s * tx + c * ty, tz], axis=1)  # the tangent turned back by the roll
    post = np.array([0.0, 1.0, 0.0]) - before[:, 1:2] * before
    post /= np.linalg.norm(post, axis=1, keepdims=True)
    return np.stack([c * post[:, 0] - s * post[:, 1], s * post[:, 0] + c * post[:, 1], post[:, 2]], axis=1)


def straighten(image: sitk.Image, points: np.ndarray, half_ap: int, half_lat: int,
               array: np.ndarray | None = None, step_mm: float = 1.0,
               guide: tuple[np.ndarray, np.ndarray] | None = None) -> Straightened:
    """Sample the CT on planes orthogonal to the curve (linear interpolation, -1024 outside).

    Rows are the curve's points (1 mm apart); ap and lat are sampled every step_mm, half_ap and
    half_lat samples to each side (so index half_ap is offset 0). The column directions are patient
    posterior, or, with a ``guide`` (points and rolls along the same spine, see Straightened.guide),
    patient posterior turned by the roll at the guide's nearest point (rolled_posterior).
    """
    if guide is None:
        t, r, s = posterior_frames(points)
        return sample_planes(image, points, t, r, s, half_ap, half_lat, array, step_mm)
    t, r, s, rolls = guided_frames(points, *guide)
    return sample_planes(image, points, t, r, s, half_ap, half_lat, array, step_mm, rolls=rolls)


def guided_frames(points: np.ndarray, guide_points: np.ndarray, guide_rolls: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tangents, column directions R, S = T x R and the rolls along a polyline whose roll is the guide's
    at the guide point nearest each point (R: rolled_posterior)."""
    t = _tangents(points)
    nearest = np.argmin(((points[:, None, :] - guide_points[None, :, :]) ** 2).sum(axis=2), axis=1)
    rolls = guide_rolls[nearest]
    return (t, *_frames(t, rolls), rolls)


def sample_planes(image: sitk.Image, points: np.ndarray, t: np.ndarray, r: np.ndarray, s: np.ndarray,
                  half_ap: int, half_lat: int, array: np.ndarray | None = None, step_mm: float = 1.0,
                  rolls: np.ndarray | None = None) -> Straightened:
    """Sample the CT on the planes spanned by the frames (r, s) at the points (rows of a Straightened).

    A plane's sample positions are linear in (ap, lat), so their voxel indices are too: each row's index
    grid is built from its point's index and its frame vectors in index units, without the LPS grid.
    Blocks of rows are interpolated on SAMPLE_THREADS threads (scipy's interpolation releases the GIL);
    each block writes its own rows, so the result does not depend on the thread count.
    """
    arr = sitk.GetArrayViewFromImage(image) if array is None else array
    ap = np.arange(-half_ap, half_ap + 1, dtype=float) * step_mm
    lat = np.arange(-half_lat, half_lat + 1, dtype=float) * step_mm
    base = lps_to_index(image, points)[:, ::-1]  # numpy (z, y, x) of each row's point
    r_idx = lps_direction_to_index(image, r)[:, ::-1]
    s_idx = lps_direction_to_index(image, s)[:, ::-1]
    out = np.empty((len(points), ap.size, lat.size), dtype=np.float32)

    def sample_rows(start: int) -> None:
        sl = slice(start, start + SAMPLE_ROWS)
        coords = (base[sl].T[:, :, None, None] + ap[None, None, :, None] * r_idx[sl].T[:, :, None, None]
                  + lat[None, None, None, :] * s_idx[sl].T[:, :, None, None])
        ndimage.map_coordinates(arr, coords, output=out[sl], order=1, cval=-1024.0, prefilter=False)

    with ThreadPoolExecutor(max_workers=SAMPLE_THREADS) as pool:
        list(pool.map(sample_rows, range(0, len(points), SAMPLE_ROWS)))
    thickness = slice_thickness_of(image)
    return Straightened(out, points, t, r, s, half_ap, half_lat, step_mm, rolls, voxel_extent_along(image, t),
                        float(np.median(voxel_extent_along(image, s))), SliceStack.of(image),
                        None if thickness is None else voxel_extent_along(image, t, thickness))


def voxel_extent_along(image: sitk.Image, directions: np.ndarray, slice_thickness_mm: float | None = None
                       ) -> np.ndarray:
    """Per LPS unit direction (n, 3): the CT voxel's extent along it, the root sum of squares of its sizes
    projected (the third size the slice thickness when known and larger: overlapping thick slices blur as
    much). That is the width of the blur a voxel adds across a surface square to the direction (the spread
    of a sum of independent box profiles), so an isotropic grid is as fine along a tilted spine as along an axis."""
    axes = np.array(image.GetDirection()).reshape(3, 3)  # columns: the image axes in LPS
    spacing = np.array(image.GetSpacing(), dtype=float)
    if slice_thickness_mm:  # the slices are stacked along the third axis
        spacing[2] = max(spacing[2], float(slice_thickness_mm))
    return np.sqrt(np.sum((np.atleast_2d(directions) @ axes * spacing) ** 2, axis=1))


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
