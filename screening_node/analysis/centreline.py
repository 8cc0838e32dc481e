"""Spine centre line: a smooth curve through the vertebral column, cranial to caudal, in LPS mm.

Method: resample the CT to an axis-aligned LPS grid at thresholds.COARSE_MM, turn HU into a
soft bone indicator, smooth it so the thick continuous column outweighs ribs, sternum and a
contrast-filled aorta, weight by a prior that the spine sits left-right central in the body, take
the best position per slice with a bounded step from the previous one (a dynamic-programming
path), and smooth the path. Arrays in this module are numpy (z, y, x) of the coarse LPS grid, with
z increasing towards superior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.errors import NotAssessable


@dataclass(frozen=True)
class Centreline:
    points_lps: np.ndarray  # (n, 3) LPS mm, ordered cranial -> caudal, roughly 1 mm apart


WINDOW_WHOLE_MAX_VOXELS = 128 * 2**20  # up to this many voxels (512 MB of float32) the cortical indicator is
                                      # windowed in one pass; above it a slab at a time (0.2-0.3 s slower on
                                      # 512 x 512 x 400, but 1 GB less at the peak of a 1037-slice series)
SLAB_SLICES = 128  # slices windowed at a time above that (128 x 512 x 512 float32: 134 MB)


def resample_axis_aligned(image: sitk.Image, spacing_mm: float, default: float = -1024.0) -> sitk.Image:
    """Resample onto an identity-direction (LPS-aligned) grid covering the image's bounding box."""
    size = np.array(image.GetSize())
    corners = []
    for i in (0, size[0] - 1):
        for j in (0, size[1] - 1):
            for k in (0, size[2] - 1):
                corners.append(image.TransformContinuousIndexToPhysicalPoint((float(i), float(j), float(k))))
    corners = np.array(corners)
    lo, hi = corners.min(0), corners.max(0)
    # A box exactly a whole number of samples long keeps its last sample whatever the float noise in the
    # image's origin (a 1e-5 mm shift dropped the last coarse slice and moved the curve's far end by 28 mm).
    new_size = [int(np.floor((hi[d] - lo[d]) / spacing_mm + 1e-3)) + 1 for d in range(3)]
    return sitk.Resample(image, new_size, sitk.Transform(), sitk.sitkLinear, tuple(lo.tolist()),
                         (spacing_mm,) * 3, (1, 0, 0, 0, 1, 0, 0, 0, 1), default, sitk.sitkFloat32)


def find_centreline(image: sitk.Image) -> Centreline:
    """Locate the column; raises NotAssessable when no spine-like column is present."""
    coarse = resample_axis_aligned(image, T.COARSE_MM)
    arr = sitk.GetArrayViewFromImage(coarse)  # (z, y, x); z up = superior
    h = T.COARSE_MM
    bone = cortical_fraction(image, coarse)
    score = ndimage.gaussian_filter(bone, sigma=(T.SPINE_AXIAL_SMOOTH_MM / h, T.SPINE_SMOOTH_MM / h,
                                                 T.SPINE_SMOOTH_MM / h))
    # Left-right prior: the spine lies near the middle of the body outline of each slice.
    body = arr > T.AIR_HU
    nz, ny, nx = arr.shape
    xs = np.arange(nx)
    midline = np.full(nz, np.nan)  # body-outline centre per slice (index), NaN for tight crops
    tight = np.zeros(nz, bool)
    for k in range(nz):
        cols = body[k].any(axis=0)
        if cols.sum() < 3:
            score[k] = 0
            continue
        idx = np.flatnonzero(cols)
        width = idx[-1] - idx[0] + 1
        if width * h < T.SPINE_TIGHT_CROP_MM:  # a crop around the spine: weighted by its mirror plane below
            tight[k] = True
            continue
        xc = 0.5 * (idx[0] + idx[-1])
        midline[k] = xc
        score[k] *= np.exp(-0.5 * ((xs - xc) / (0.18 * width)) ** 2)[None, :]
    max_step = max(1, int(round(T.SPINE_MAX_STEP_MM / h)))
    path = _dp_path(score, max_step=max_step)
    if tight.mean() >= 0.5:
        # On a tight crop the path may run in a facet column, beside the body: judged against the bone's
        # mirror plane, and found again near it when it runs that far off. (A crop is a crop in most of
        # its slices; a trunk's few narrow slices at the neck are not worth the search: 0.2 s.)
        mirror = _mirror_planes(bone, tight, h)
        path_x = np.array([i for _, i in path], float)
        if np.median(np.abs(path_x - mirror)[tight]) * h > T.SPINE_MIRROR_MAX_OFF_MM:
            weight = np.exp(-0.5 * ((xs[None, :] - mirror[tight, None]) * h / T.SPINE_MIRROR_SIGMA_MM) ** 2)
            score[tight] *= weight[:, None, :]
            path = _dp_path(score, max_step=max_step)
    strength = np.array([score[k, j, i] for k, (j, i) in enumerate(path)])
    present = strength > 0.25 * np.percentile(strength, 90)
    # Below the sacrum the path can follow the pelvic ring out to a hip: the spine never lies that far
    # from the body's midline, so keep the longest run of slices near it.
    path_x = np.array([i for _, i in path], float)  # lateral index per slice
    off_midline = np.abs(path_x - midline) * h
    present &= ~(off_midline > T.SPINE_MAX_OFF_MIDLINE_MM)  # NaN (tight crop) compares False: kept
    present = _longest_run(present, max_gap=3)
    kept = _drop_sideways_tail(path_x, present, h)
    left_sideways = bool((present & ~kept).any())
    present = kept
    ks = np.flatnonzero(present)
    if ks.size * h < T.MIN_SPINE_LENGTH_MM or strength.max() < 0.05:
        raise NotAssessable("no vertebral column found in the field of view")
    k0, k1 = ks[0], ks[-1]
    pts_idx = np.array([(path[k][1], path[k][0], k) for k in range(k0, k1 + 1)], dtype=float)  # (x, y, z)
    sig = T.SPINE_PATH_SMOOTH_MM / h
    pts_idx[:, 0] = ndimage.gaussian_filter1d(ndimage.median_filter(pts_idx[:, 0], 7, mode="nearest"), sig, mode="nearest")
    pts_idx[:, 1] = ndimage.gaussian_filter1d(ndimage.median_filter(pts_idx[:, 1], 7, mode="nearest"), sig, mode="nearest")
    origin = np.array(coarse.GetOrigin())
    lps = origin + pts_idx * h
    lps = lps[::-1]  # cranial (high z) first
    if left_sideways:
        lps = _continue_caudally(lps, h)
    return Centreline(points_lps=resample_by_arclength(lps, 1.0))


def cortical_fraction(image: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """Share of cortical bone in each voxel of the coarse ``reference`` grid (numpy z, y, x).

    The column is found by its cortical bone (body shells, pedicles, laminae, processes), not by its
    marrow: osteoporotic marrow (~80 HU) is darker than a contrast-filled aorta (200-400 HU), which
    would otherwise win. The indicator is computed on the original voxels and block-averaged before
    resampling, so a 1 mm cortex is not lost between 3 mm samples.
    """
    factors = [max(1, int(round(T.COARSE_MM / s))) for s in image.GetSpacing()]
    if max(factors) == 1:
        fraction = _window(image)
    elif np.prod(image.GetSize(), dtype=np.int64) <= WINDOW_WHOLE_MAX_VOXELS:
        fraction = sitk.BinShrink(_window(image), factors)
    else:
        fraction = _block_averaged_fraction(image, factors)
    coarse = sitk.Resample(fraction, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(coarse)


def _window(image: sitk.Image) -> sitk.Image:
    """clip((HU - low) / (high - low), 0, 1) in one multi-threaded pass, as float32."""
    if image.GetPixelID() != sitk.sitkFloat32:
        image = sitk.Cast(image, sitk.sitkFloat32)  # the window's output has the input's pixel type
    return sitk.IntensityWindowing(image, T.CORTEX_LOW_HU, T.CORTEX_HIGH_HU, 0.0, 1.0)


def _block_averaged_fraction(image: sitk.Image, factors: list[int]) -> sitk.Image:
    """The cortical indicator block-averaged by ``factors`` (x, y, z), as sitk.BinShrink of the whole
    window gives it, but made a slab of slices at a time: the window of the whole volume is a float32
    copy as large as the CT (1.1 GB for 1037 slices of 512 x 512, 0.625 mm), which was the analysis's
    peak memory there. Each slab holds a whole number of blocks along z, so the blocks and their averages
    are the same as the whole volume's."""
    fz = factors[2]
    step = fz * max(1, SLAB_SLICES // fz)
    nz = image.GetSize()[2]
    slabs, first = [], None
    for z0 in range(0, nz - fz + 1, step):
        shrunk = sitk.BinShrink(_window(image[:, :, z0:min(nz, z0 + step)]), factors)
        if first is None:
            first = shrunk
        slabs.append(sitk.GetArrayViewFromImage(shrunk).copy())
    if first is None:  # fewer slices than one block: BinShrink of the whole keeps one
        return sitk.BinShrink(_window(image), factors)
    out = sitk.GetImageFromArray(np.concatenate(slabs, axis=0))
    out.SetOrigin(first.GetOrigin())
    out.SetSpacing(first.GetSpacing())
    out.SetDirection(first.GetDirection())
    return out


def _mirror_planes(bone: np.ndarray, slices: np.ndarray, h: float) -> np.ndarray:
    """Per slice: the lateral index (x) that the bone of ``slices`` is most mirror-symmetric about.

    A vertebra is left-right symmetric about its mid-sagittal plane; on a tight crop that plane is the
    only sign of where the column's middle lies (the dense facet columns to each side outweigh a thin,
    osteoporotic body in the bone indicator). The per-slice planes are smoothed by a median over
    SPINE_MIRROR_SMOOTH_MM (a slice through a disc or a rotated segment can be off); slices not in
    ``slices`` take the nearest judged value.
    """
    nz, _, nx = bone.shape
    xs = np.arange(nx)
    margin = min(nx // 4, max(1, int(round(T.SPINE_MIRROR_SIGMA_MM / h))))
    candidates = np.arange(2 * margin, 2 * (nx - 1 - margin) + 1)  # mirror axis at candidate / 2
    planes = np.full(nz, np.nan)
    for k in np.flatnonzero(slices):
        section = bone[k]
        energy = float((section * section).sum())
        if energy <= 0:
            continue
        best, best_score = np.nan, -np.inf
        for c in candidates:
            mirrored = c - xs
            inside = (mirrored >= 0) & (mirrored < nx)
            a, b = section[:, xs[inside]], section[:, mirrored[inside]]
            norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
            if norm <= 0:
                continue
            # correlation with the mirror image, discounted where the overlap is a narrow strip
            value = float((a * b).sum()) / norm * np.sqrt(inside.sum() / nx)
            if value > best_score:
                best, best_score = c / 2.0, value
        planes[k] = best
    known = np.isfinite(planes)
    if not known.any():
        return np.full(nz, (nx - 1) / 2.0)
    ks = np.arange(nz)
    planes = np.interp(ks, ks[known], planes[known])
    size = max(1, int(round(T.SPINE_MIRROR_SMOOTH_MM / h)) | 1)
    return ndimage.median_filter(planes, size=size, mode="nearest")


def _drop_sideways_tail(x: np.ndarray, present: np.ndarray, h: float) -> np.ndarray:
    """Drop the caudal end of the path where it runs sideways: there it follows the pelvic ring, not the sacrum.

    At the level of S1 the sacral alae and the sacro-iliac joints join the spine to the ilia, and the
    thick bone from each joint down to the acetabulum outweighs the thinner lower sacrum, so the path can
    leave the column there towards a hip. The sacrum itself continues the column in its sagittal plane (it
    curves backwards, never sideways), and no spine inclines as steeply to the side over half a vertebra
    (SPINE_MAX_LATERAL_SLOPE): the caudal run of such slices is not the column. Slices are indices of
    ``x`` (the path's lateral index per slice, slice 0 caudal); ``present`` is returned with that run off.
    """
    ks = np.flatnonzero(present)
    if not ks.size:
        return present
    w = max(1, int(round(T.SPINE_SIDEWAYS_RUN_MM / h)))
    k0 = k = int(ks[0])
    while k + w <= int(ks[-1]) and abs(x[k + w] - x[k]) >= T.SPINE_MAX_LATERAL_SLOPE * w:
        k += 1
    if k > k0:  # the run began where the path first stepped that way off the column
        side = np.sign(x[k0] - x[k])
        while k < int(ks[-1]) and (x[k] - x[k + 1]) * side > 0:
            k += 1
    out = present.copy()
    out[:k] = False
    return out


def _continue_caudally(lps: np.ndarray, h: float) -> np.ndarray:
    """Continue the curve (cranial first, LPS) straight on past its caudal end by SACRUM_CONTINUE_MM.

    Where the path left the column sideways (at the sacro-iliac joints, beside S1) the curve ends inside
    S1; the sacrum goes on in the column's direction, so S1 is straightened whole.
    """
    n = min(len(lps) - 1, max(1, int(round(T.SPINE_SIDEWAYS_RUN_MM / h))))
    if n < 1:
        return lps
    direction = lps[-1] - lps[-1 - n]
    norm = float(np.linalg.norm(direction))
    if norm <= 0:
        return lps
    steps = np.arange(1, int(T.SACRUM_CONTINUE_MM / h) + 1) * h
    return np.concatenate([lps, lps[-1] + steps[:, None] * (direction / norm)[None, :]])


def _longest_run(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """The longest run of True in mask, bridging gaps of up to max_gap False entries."""
    bridged = ndimage.binary_closing(mask, np.ones(2 * max_gap + 1, bool)) | mask
    labels, n = ndimage.label(bridged)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return mask & (labels == 1 + int(np.argmax(sizes)))


def _dp_path(score: np.ndarray, max_step: int) -> list[tuple[int, int]]:
    """Best (y, x) per slice maximising summed score with |step| <= max_step between slices."""
    nz = score.shape[0]
    acc = score[0].copy()
    back = []
    size = 2 * max_step + 1
    offsets = [(dy, dx) for dy in range(-max_step, max_step + 1) for dx in range(-max_step, max_step + 1)]
    for k in range(1, nz):
        best = ndimage.maximum_filter(acc, size=size, mode="constant", cval=-np.inf)
        # argmax of the neighbourhood: recover by comparing shifted copies (cheap: size**2 shifts)
        arg = np.zeros(acc.shape, dtype=np.int16)
        for n, (dy, dx) in enumerate(offsets):
            shifted = np.full_like(acc, -np.inf)
            ys = slice(max(0, dy), acc.shape[0] + min(0, dy))
            yd = slice(max(0, -dy), acc.shape[0] + min(0, -dy))
            xs_ = slice(max(0, dx), acc.shape[1] + min(0, dx))
            xd = slice(max(0, -dx), acc.shape[1] + min(0, -dx))
            shifted[yd, xd] = acc[ys, xs_]
            arg[shifted == best] = n
        back.append(arg)
        acc = best + score[k]
    j, i = np.unravel_index(int(np.argmax(acc)), acc.shape)
    path = [(int(j), int(i))]
    for k in range(nz - 2, -1, -1):
        dy, dx = offsets[int(back[k][j, i])]
        j, i = j + dy, i + dx
        path.append((int(j), int(i)))
    return path[::-1]


def resample_by_arclength(points: np.ndarray, step_mm: float) -> np.ndarray:
    """Points along a polyline at equal arc-length steps (linear interpolation)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return points[:1]
    t = np.arange(0.0, s[-1] + 1e-6, step_mm)
    return np.stack([np.interp(t, s, points[:, d]) for d in range(3)], axis=1)
