"""A patient lying rolled: the rendered phantom turned about the long (S) axis, truth turned with it;
and a real scan turned the same way (rolled_image), for the tests and benchmarks that read it so.

Patients do not always lie square on the table; the analysis must read a vertebra turned about the
spine's axis as well as a square one. The phantom is rendered square, then every slice is turned
about the S axis through the middle of the field (cubic interpolation for HU, nearest for labels; air
where the turn brings in what lay outside the field), and the truth's positions and frames are turned
by the same rotation. The table turns with the patient, which a real table would not; it lies far
behind the spine.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.phantom.body import HU
from screening_node.phantom.grid import Grid


@dataclasses.dataclass(frozen=True)
class Roll:
    """The turn of the anatomy: p -> centre + matrix @ (p - centre), LPS mm."""

    degrees: float
    centre: np.ndarray  # (3,) LPS mm, on the S axis through the middle of the field
    matrix: np.ndarray  # (3, 3)

    @classmethod
    def about_field(cls, grid: Grid, degrees: float) -> "Roll":
        """Positive ``degrees`` turn the anatomy counter-clockwise seen from the head (x towards y): the
        patient's back turns towards the patient's right."""
        a = math.radians(degrees)
        matrix = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
        centre = 0.5 * (grid.extent_lo + grid.extent_hi)
        return cls(degrees, centre, matrix)

    def point(self, p: Any) -> np.ndarray:
        """The turned position of an LPS point (or of each row of an (n, 3) array)."""
        return self.centre + (np.asarray(p, float) - self.centre) @ self.matrix.T


def roll_arrays(hu: np.ndarray, labels: np.ndarray, grid: Grid, roll: Roll) -> tuple[np.ndarray, np.ndarray]:
    """HU and labels (numpy z, y, x on ``grid``) with the anatomy turned by ``roll``, slice by slice (the turn
    is about the S axis, so each slice turns in its own plane). Needs square pixels."""
    sx, sy = grid.spacing[0], grid.spacing[1]
    if abs(sx - sy) > 1e-6:
        raise ValueError("a rolled phantom needs square pixels")
    # An output pixel shows the input at the position the inverse turn brings it to; (y, x) index order.
    inverse = roll.matrix.T[:2, :2]
    m = np.array([[inverse[1, 1], inverse[1, 0]], [inverse[0, 1], inverse[0, 0]]])
    centre = np.array([(roll.centre[1] - grid.origin[1]) / sy, (roll.centre[0] - grid.origin[0]) / sx])
    offset = centre - m @ centre
    out_hu = np.empty_like(hu)
    out_labels = np.empty_like(labels)
    for k in range(hu.shape[0]):
        turned = ndimage.affine_transform(hu[k].astype(np.float32), m, offset, order=3, mode="constant",
                                         cval=HU["air"])
        out_hu[k] = np.clip(np.rint(turned), np.iinfo(hu.dtype).min, np.iinfo(hu.dtype).max)
        out_labels[k] = ndimage.affine_transform(labels[k], m, offset, order=0, mode="constant", cval=0)
    return out_hu, out_labels


def rolled_image(image: sitk.Image, degrees: float) -> tuple[sitk.Image, sitk.Euler3DTransform]:
    """A scan with its content turned as ``--roll`` turns a phantom: by ``degrees`` about the S axis through
    the middle of its field, positive the back towards the patient's right, resampled on its own grid
    (B-spline, -1024 where the turn brings in what lay outside). Also the transform that maps a turned
    position back into the unturned scan."""
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    back = sitk.Euler3DTransform()
    back.SetCenter(centre)
    back.SetRotation(0.0, 0.0, math.radians(-degrees))  # the output shows the input at back(x)
    return sitk.Resample(image, image, back, sitk.sitkBSpline, -1024.0, sitk.sitkFloat32), back
