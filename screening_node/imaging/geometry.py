"""Voxel index <-> patient LPS mm for many points at once, and orientation helpers.

SimpleITK's ``TransformIndexToPhysicalPoint`` takes one point per call; these
helpers do the same arithmetic on (N, 3) arrays:

    lps = origin + D @ (spacing * index_xyz)        D = direction as a 3 x 3 matrix

Axis order, always: ``index_xyz`` is SimpleITK order (x = column, y = row,
z = slice); ``index_zyx`` is numpy order, the order of
``sitk.GetArrayFromImage(image)[z, y, x]``. Points are patient LPS millimetres.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from numpy.typing import ArrayLike


PLANE_TOLERANCE = 0.95  # a slice normal this close (|cosine|) to a patient axis names the plane: ~18 degrees


def slice_plane(normal: ArrayLike) -> str:
    """axial, sagittal or coronal: the patient axis a slice normal (LPS) lies within PLANE_TOLERANCE of;
    oblique otherwise. Routing decides by it, and the analysis says when it read sagittal slices."""
    magnitude = np.abs(np.asarray(normal, dtype=float))
    axis = int(np.argmax(magnitude))
    return ("sagittal", "coronal", "axial")[axis] if magnitude[axis] >= PLANE_TOLERANCE else "oblique"


def direction_matrix(image: sitk.Image) -> np.ndarray:
    """The 3 x 3 direction matrix; column k is the LPS direction of index axis k (x, y, z)."""
    return np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)


def index_to_lps(image: sitk.Image, index_xyz: ArrayLike) -> np.ndarray:
    """LPS mm of continuous (x, y, z) indices; shape (..., 3) in, (..., 3) out."""
    index = np.asarray(index_xyz, dtype=float)
    scaled = index * np.asarray(image.GetSpacing(), dtype=float)
    return scaled @ direction_matrix(image).T + np.asarray(image.GetOrigin(), dtype=float)


def lps_to_index(image: sitk.Image, points_lps: ArrayLike) -> np.ndarray:
    """Continuous (x, y, z) indices of LPS points; shape (..., 3) in, (..., 3) float out.

    Round (``np.rint``) for the nearest voxel; values outside [0, size - 1] are outside the image.
    """
    offsets = np.asarray(points_lps, dtype=float) - np.asarray(image.GetOrigin(), dtype=float)
    return lps_direction_to_index(image, offsets)


def lps_direction_to_index(image: sitk.Image, vectors_lps: ArrayLike) -> np.ndarray:
    """LPS displacement vectors (mm) in continuous (x, y, z) index units; shape (..., 3) in and out.
    The linear part of ``lps_to_index``: a step along the vector moves the index by this much."""
    # the inverse, not the transpose: the direction may not be exactly orthogonal
    local = np.asarray(vectors_lps, dtype=float) @ np.linalg.inv(direction_matrix(image)).T
    return local / np.asarray(image.GetSpacing(), dtype=float)


def lps_to_voxel_zyx(image: sitk.Image, points_lps: ArrayLike) -> np.ndarray:
    """Nearest voxel of each LPS point as integer numpy indices (z, y, x); shape (..., 3)."""
    return np.rint(lps_to_index(image, points_lps)[..., ::-1]).astype(np.int64)


def voxel_zyx_to_lps(image: sitk.Image, index_zyx: ArrayLike) -> np.ndarray:
    """LPS mm of numpy (z, y, x) indices (integer or continuous); shape (..., 3)."""
    return index_to_lps(image, np.asarray(index_zyx, dtype=float)[..., ::-1])


def inside(image: sitk.Image, index_xyz: ArrayLike) -> np.ndarray:
    """Whether continuous (x, y, z) indices fall within the voxel grid (centres 0 .. size - 1, +- half a voxel)."""
    index = np.asarray(index_xyz, dtype=float)
    size = np.asarray(image.GetSize(), dtype=float)
    return np.all((index >= -0.5) & (index < size - 0.5), axis=-1)


def orientation_code(image: sitk.Image) -> str:
    """Three letters naming where the x, y, z index axes point (e.g. "LPS" for axial head-first supine,
    "PIR" for VerSe files), following the DICOM convention of SimpleITK's DICOMOrient filter."""
    return str(sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()))


def reorient(image: sitk.Image, code: str = "LPS") -> sitk.Image:
    """The same voxels permuted / flipped so the index axes point as ``code`` says; world positions unchanged."""
    return sitk.DICOMOrient(image, code)


def as_lps(image: sitk.Image) -> sitk.Image:
    """The image itself when its index axes already point L, P, S; else its voxels permuted / flipped so they
    do (never resampled). Analyses that bin or scan voxels in index order read every storage of a scan alike."""
    return image if orientation_code(image) == "LPS" else reorient(image, "LPS")
