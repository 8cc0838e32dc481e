"""The voxel grid of a phantom and the distance-based painting of shapes on it.

Internally a phantom is rendered on a *canonical* grid: numpy array order
``(z, y, x)``, identity direction, voxel ``[k, j, i]`` at patient LPS position
``origin + (i*sx, j*sy, k*sz)``. The DICOM writer maps it to the acquisition
order (feet-first flips x and z). Shapes are described by an *inward distance*
``d`` in mm (positive inside, negative outside, about the true distance near the
surface), evaluated only inside each shape's bounding box; ``d`` gives both the
anti-aliased occupancy (partial volume) and the cortical shell of bones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Canonical grid: ``shape`` is (nz, ny, nx); ``origin`` and ``spacing`` are LPS (x, y, z) mm."""

    shape: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]

    def axis(self, dim: int) -> np.ndarray:
        """World coordinates (mm) along LPS axis ``dim`` (0 = x, 1 = y, 2 = z)."""
        n = self.shape[2 - dim]
        return (self.origin[dim] + self.spacing[dim] * np.arange(n)).astype(np.float32)

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices (z, y, x) of the voxels inside the LPS box [lo, hi]; None when empty."""
        slices = []
        for dim in (2, 1, 0):
            n = self.shape[2 - dim]
            a = int(np.floor((lo[dim] - self.origin[dim]) / self.spacing[dim]))
            b = int(np.ceil((hi[dim] - self.origin[dim]) / self.spacing[dim])) + 1
            a, b = max(a, 0), min(b, n)
            if a >= b:
                return None
            slices.append(slice(a, b))
        return tuple(slices)  # type: ignore[return-value]

    def coords(self, box: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable world coordinates x (1,1,nx), y (1,ny,1), z (nz,1,1) of a box."""
        z = self.axis(2)[box[0]][:, None, None]
        y = self.axis(1)[box[1]][None, :, None]
        x = self.axis(0)[box[2]][None, None, :]
        return x, y, z

    @property
    def extent_lo(self) -> np.ndarray:
        return np.array(self.origin, float)

    @property
    def extent_hi(self) -> np.ndarray:
        return np.array(self.origin, float) + np.array(self.spacing) * (np.array(self.shape[::-1]) - 1)


def to_local(x: np.ndarray, y: np.ndarray, z: np.ndarray, centre: np.ndarray, frame: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World (broadcastable x, y, z) -> local coordinates along the columns of ``frame`` (3x3)."""
    dx, dy, dz = x - np.float32(centre[0]), y - np.float32(centre[1]), z - np.float32(centre[2])
    f = frame.astype(np.float32)
    return (dx * f[0, 0] + dy * f[1, 0] + dz * f[2, 0],
            dx * f[0, 1] + dy * f[1, 1] + dz * f[2, 1],
            dx * f[0, 2] + dy * f[1, 2] + dz * f[2, 2])


def local_box(centre: np.ndarray, frame: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World bounding box of the local box ``[-half, half]`` around ``centre``."""
    extent = np.abs(frame) @ np.asarray(half, float)
    return centre - extent, centre + extent


def ellipse_inward(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """Inward distance (mm, first order) to the ellipse u^2/a^2 + v^2/b^2 = 1."""
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    grad = np.sqrt((u / (a * a)) ** 2 + (v / (b * b)) ** 2)
    grad = np.maximum(grad, np.float32(1e-6))
    return np.where(r > 1e-6, (1.0 - r) * r / grad, np.minimum(a, b)).astype(np.float32)


def ellipsoid_inward(u: np.ndarray, v: np.ndarray, w: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Inward distance (mm, first order) to an axis-aligned ellipsoid."""
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (w / c) ** 2)
    grad = np.sqrt((u / (a * a)) ** 2 + (v / (b * b)) ** 2 + (w / (c * c)) ** 2)
    grad = np.maximum(grad, np.float32(1e-6))
    return np.where(r > 1e-6, (1.0 - r) * r / grad, np.minimum(np.minimum(a, b), c)).astype(np.float32)


def segment_distance(x: np.ndarray, y: np.ndarray, z: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance (mm) from world points to the segment p-q."""
    d = (q - p).astype(np.float32)
    length2 = float(d @ d) or 1e-6
    px, py, pz = x - np.float32(p[0]), y - np.float32(p[1]), z - np.float32(p[2])
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / np.float32(length2), 0.0, 1.0)
    return np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)


class Canvas:
    """An inward-distance field over one bounding box, built as a union (max) of pieces.

    Used for shapes made of many pieces (a rib from capsules, a tube along the
    spine) so that the cortical shell follows the union's surface, not each piece's.
    """

    def __init__(self, grid: Grid, lo: np.ndarray, hi: np.ndarray) -> None:
        self.grid = grid
        self.box = grid.box(lo, hi)
        shape = tuple(s.stop - s.start for s in self.box) if self.box else (0, 0, 0)
        self.d = np.full(shape, -1e3, np.float32)

    def add_capsule(self, p: np.ndarray, q: np.ndarray, radius: float) -> None:
        """Union with the capsule of ``radius`` around segment p-q (world mm)."""
        margin = radius + 3
        self.add_field(np.minimum(p, q) - margin, np.maximum(p, q) + margin,
                       lambda x, y, z: np.float32(radius) - segment_distance(x, y, z, p, q))

    def add_field(self, lo: np.ndarray, hi: np.ndarray, inward) -> None:  # type: ignore[no-untyped-def]
        """Union with a shape given as ``inward(x, y, z)`` (world mm), evaluated only inside [lo, hi]."""
        if self.box is None:
            return
        sub = self.grid.box(lo, hi)
        if sub is None:
            return
        inner = tuple(slice(max(s.start, b.start), min(s.stop, b.stop)) for s, b in zip(sub, self.box))
        if any(s.start >= s.stop for s in inner):
            return
        d = inward(*self.grid.coords(inner))  # type: ignore[arg-type]
        view = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(inner, self.box))
        np.maximum(self.d[view], d, out=self.d[view])

    def add_polyline(self, points: np.ndarray, radii: np.ndarray | float) -> None:
        radii = np.broadcast_to(np.asarray(radii, float), (len(points),))
        for a, b, r in zip(points[:-1], points[1:], radii[:-1]):
            self.add_capsule(a, b, float(r))


def occupancy(d: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume fraction from an inward distance (linear ramp one voxel wide)."""
    return np.clip(0.5 + d / np.float32(width), 0.0, 1.0)


SPARSE_FRACTION = 0.15 # below this share of touched voxels, paint only those (a pelvis canvas is mostly air)


def paint(volume: np.ndarray, box: tuple[slice, slice, slice] | None, d: np.ndarray,
          value: float | Callable[[np.ndarray], np.ndarray] | np.ndarray, width: float,
          labels: np.ndarray | None = None, label: int = 0) -> None:
    """Blend ``value`` into ``volume[box]`` with the occupancy of ``d`` (painter's order: later wins).

    ``value`` is a constant HU, a function of the inward distance (a bone's cortical shell), evaluated
    only where the shape touches the voxels, which is what makes large sparse canvases cheap, or an
    array of HU shaped like ``d`` (a textured marrow).
    """
    if box is None or d.size == 0:
        return
    touched = d > np.float32(-0.5 * width)
    count = int(np.count_nonzero(touched))
    if count == 0:
        return
    region = volume[box]
    where = Ellipsis if count > SPARSE_FRACTION * d.size else touched  # a mostly-touched box: no gather
    d_touched = d[where]
    alpha = occupancy(d_touched, width)
    if isinstance(value, np.ndarray):
        hu = value[where]
    else:
        hu = value(d_touched) if callable(value) else np.float32(value)
    current = region[where]  # a view when dense, a copy when gathered
    current += alpha * (hu - current)
    if where is not Ellipsis:
        region[where] = current
    if labels is not None:
        painted = labels[box][where]
        painted[alpha >= 0.5] = label
        labels[box][where] = painted


def bone(cortical: float, marrow: float, shell: float) -> Callable[[np.ndarray], np.ndarray]:
    """The HU of a bone as a function of inward distance, for ``paint``."""
    return lambda d: bone_value(d, cortical, marrow, shell)


def bone_value(d: np.ndarray, cortical: float, marrow: float, shell: float) -> np.ndarray:
    """HU of a bone at inward distance ``d``: cortical shell ``shell`` mm thick around marrow."""
    t = marrow_fraction(d, shell)
    return np.float32(cortical) + t * np.float32(marrow - cortical)


def marrow_fraction(d: np.ndarray, shell: float) -> np.ndarray:
    """How much of a bone's voxel at inward distance ``d`` is marrow rather than its cortical shell (0..1)."""
    return np.clip((d - shell) / np.float32(0.5) + 0.5, 0.0, 1.0)
