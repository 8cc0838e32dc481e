"""Contrast-filled blood read as unenhanced blood before the spine is looked for.

In an arterial phase (CT angiography, a pulmonary embolism study, a pancreas or liver protocol) the
aorta holds 300-500 HU of contrast: as bright as cortical bone blurred by 3 mm slices, and it runs
beside the vertebral bodies as a continuous column, where the bodies are cut by their discs. The spine
search counts cortical bone and took the aorta for the column (30 phantoms in a late arterial phase,
aorta 420 HU: 24 not assessable, 3 of 343 vertebrae identified). Bone is never uniform: cortex, marrow
and their texture spread its values by 100-300 HU, while a pool of contrast blood varies only with the
image noise. So a region at
the cortical level, as thick as a large vessel, longer than any vertebral body and uniform, is blood:
it is read as unenhanced blood (BLOOD_UNENHANCED_HU) by every later stage.

The search runs on the CT binned to VESSEL_GRID_MM or a little more (noise is averaged, thin bone is kept: it is
only ever excluded). Arrays are numpy (z, y, x) of the image's own grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis import thresholds as T


@dataclass(frozen=True)
class BloodPool:
    """One region of contrast-filled blood: its volume and its median density."""

    volume_ml: float
    median_hu: float


Box = tuple[slice, ...]
POOL, EDGE = 2, 1  # a pool's binned voxels, and the binned voxel's reach around them (the lumen's blurred edge)


@dataclass(frozen=True)
class PoolOnGrid:
    """A pool found, and where it lies on the image's grid (numpy z, y, x): a box and a mask in it (POOL where
    the binned blood lies, EDGE for the binned voxel's reach around it, 0 elsewhere)."""

    pool: BloodPool
    box: Box
    mask: np.ndarray


def find_contrast_blood(image: sitk.Image) -> list[PoolOnGrid]:
    """The contrast-filled blood at the cortical level: each pool and where it lies on the image's grid."""
    factors = [max(1, int(np.ceil(T.VESSEL_GRID_MM / s - 1e-6))) for s in image.GetSpacing()]
    binned = sitk.BinShrink(image, factors)  # averaged in the image's own type (a cast first copies the whole CT)
    if binned.GetPixelID() != sitk.sitkFloat32:
        binned = sitk.Cast(binned, sitk.sitkFloat32)
    hu = sitk.GetArrayViewFromImage(binned)
    spacing = np.array(binned.GetSpacing(), dtype=float)[::-1]  # z, y, x
    # A pool is where a cube as thick as a large vessel fits inside the cortical level: cortex, laminae and
    # ribs are thinner, and a vessel's narrow contacts with bone are cut there. (A cube: the erosion and
    # dilation are separable, three times faster than a ball's on a 512 x 512 x 134 scan.)
    cube = tuple(int(2 * max(1, round(T.VESSEL_MIN_RADIUS_MM / h)) + 1) for h in spacing)
    regions, _ = ndimage.label(_thick((hu >= T.CORTEX_LOW_HU), cube))
    found: list[PoolOnGrid] = []
    full_shape = tuple(image.GetSize()[::-1])
    margin = [int(np.ceil(max(spacing) / h)) for h in spacing]  # one binned voxel's reach, at least
    for k, box in enumerate(ndimage.find_objects(regions), start=1):
        for part, median in _blood_parts(hu[box], regions[box] == k, cube, spacing):
            pool = BloodPool(round(float(part.sum() * spacing.prod()) / 1000.0, 1), round(median, 1))
            # The lumen's edge, blurred between blood and wall, lies up to one binned voxel outside.
            grown = tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, hu.shape))
            inside = np.zeros([s.stop - s.start for s in grown], dtype=bool)
            inside[tuple(slice(s.start - g.start, s.stop - g.start) for s, g in zip(box, grown))] = part
            reach = ndimage.binary_dilation(inside, np.ones([2 * m + 1 for m in margin], dtype=bool))
            local = np.where(inside, POOL, np.where(reach, EDGE, 0)).astype(np.uint8)
            found.append(PoolOnGrid(pool, *_on_full_grid(local, grown, factors, full_shape)))
    return found


def without_contrast_blood(image: sitk.Image) -> tuple[sitk.Image, list[BloodPool]]:
    """The image with its contrast-filled blood read as unenhanced blood, and the pools; the image itself
    where there is none. Only what could pass for cortex is replaced (CORTEX_LOW_HU or more): marrow and soft
    tissue in a binned voxel the blood shares stay. In a pool's binned voxels, values up to VESSEL_CAP_SPREADS
    spreads above its median (its noise; denser bone stays); in the reach around them, where the lumen's edge
    falls to the wall, only up to one spread above it, so that a body's cortex touching the vessel stays. (A 3
    mm phantom series of 0.75 mm pixels, rolled: replacing whatever lay up to 4 spreads above the median in
    both took 1-6 mL of vertebral bone per scan, and with the front of rolled bodies, their levels.)"""
    found = find_contrast_blood(image)
    if not found:
        return image, []
    out = sitk.Image(image)  # shares the CT's buffer until its first write: the CT is copied once, not twice
    for f in found:
        region = sitk.GetArrayFromImage(out[_xyz(f.box)])  # as written so far: pools' boxes may overlap
        dense = region >= T.CORTEX_LOW_HU
        in_pool = (f.mask == POOL) & (region <= f.pool.median_hu + T.VESSEL_CAP_SPREADS * T.VESSEL_MAX_SPREAD_HU)
        on_edge = (f.mask == EDGE) & (region <= f.pool.median_hu + T.VESSEL_MAX_SPREAD_HU)
        region[dense & (in_pool | on_edge)] = T.BLOOD_UNENHANCED_HU
        out[_xyz(f.box)] = sitk.GetImageFromArray(region)  # pasted in place
    return out, [f.pool for f in found]


def _xyz(box: Box) -> tuple[slice, ...]:
    """A numpy (z, y, x) box as SimpleITK's (x, y, z) slices."""
    return box[::-1]


def _thick(mask: np.ndarray, cube: tuple[int, ...]) -> np.ndarray:
    """Where a cube of the given size (voxels) fits inside the mask: its opening."""
    inside = mask.view(np.uint8)
    return ndimage.maximum_filter(ndimage.minimum_filter(inside, size=cube), size=cube).astype(bool)


def _blood_parts(hu: np.ndarray, region: np.ndarray, cube: tuple[int, ...], spacing: np.ndarray
                 ) -> list[tuple[np.ndarray, float]]:
    """The parts of one thick region at the cortical level that are blood, with their median HU: the region
    itself where it is long and uniform. Where it is long but not uniform, pools of different densities or
    bone merged with it on the binned grid (the arterial phantoms' aorta at 420 HU merged with the heart's
    350 HU and the blurred cortex of bodies 3 mm behind it: one region of median 376 and spread 52), its
    values are taken a band at a time, commonest first (VESSEL_MAX_BANDS): the band's thick, long part is
    blood where the region's values within its outline (the band's noise holes closed) are uniform too."""
    if not _long(region, spacing):
        return []  # no longer than a vertebral body is wide
    median, spread = _median_spread(hu[region])
    if spread <= T.VESSEL_MAX_SPREAD_HU:
        return [(region, median)]
    found = []
    remaining = region.copy()
    local = ndimage.uniform_filter(hu, 3)  # the bands are taken on local means: noise would break a pool into pieces
    for _ in range(T.VESSEL_MAX_BANDS):
        values = local[remaining]
        if values.size == 0:
            break
        counts, edges = np.histogram(values, bins=np.arange(T.CORTEX_LOW_HU, values.max() + 20.0, 10.0))
        commonest = float(edges[int(np.argmax(ndimage.uniform_filter1d(counts, 3)))] + 5.0)
        band = remaining & (np.abs(local - commonest) <= T.VESSEL_MAX_SPREAD_HU)
        parts, n = ndimage.label(_thick(band, cube))
        for k in range(1, n + 1):
            part = parts == k
            if not _long(part, spacing):
                continue
            outline = ndimage.binary_closing(part, np.ones(cube, dtype=bool)) & region
            median, spread = _median_spread(hu[outline])
            if spread <= T.VESSEL_MAX_SPREAD_HU:
                found.append((outline, median))
        remaining &= ~band
    return found


def _long(mask: np.ndarray, spacing: np.ndarray) -> bool:
    """Whether a mask reaches VESSEL_MIN_EXTENT_MM along one of the grid's axes."""
    others = [tuple(a for a in range(mask.ndim) if a != axis) for axis in range(mask.ndim)]
    spans = [np.flatnonzero(mask.any(axis=axes)) for axes in others]
    return any(len(i) and (i[-1] - i[0] + 1) * h >= T.VESSEL_MIN_EXTENT_MM for i, h in zip(spans, spacing))


def _median_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 x the median absolute deviation)."""
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def blood_note(pools: list[BloodPool]) -> str | None:
    """The result's note on the blood set aside, or None."""
    if not pools:
        return None
    volume = sum(p.volume_ml for p in pools)
    densest = max(p.median_hu for p in pools)
    return (f"contrast-filled blood as dense as cortical bone ({volume:.0f} mL, up to {densest:.0f} HU: the aorta "
            "or the heart in an arterial phase) was read as unenhanced blood, so that it is not taken for the spine")


def _on_full_grid(binned: np.ndarray, box: Box, factors: list[int], shape: tuple[int, ...]) -> tuple[Box, np.ndarray]:
    """A mask on a box of the binned grid (BinShrink factors in x, y, z) carried to the full grid: the full
    grid's box and the mask there. Voxels that BinShrink left out at the far edges take their neighbour's
    value."""
    f_zyx = factors[::-1]
    full = binned
    for axis, f in enumerate(f_zyx):
        full = np.repeat(full, f, axis=axis)
    starts = [s.start * f for s, f in zip(box, f_zyx)]
    stops = [min(n, st + m) for st, m, n in zip(starts, full.shape, shape)]
    # the last binned voxel along an axis also stands for the full voxels BinShrink dropped
    pad = [(0, n - sp if s.stop * f >= (n // f) * f else 0) for s, f, n, sp in zip(box, f_zyx, shape, stops)]
    full = np.pad(full[tuple(slice(0, sp - st) for st, sp in zip(starts, stops))], pad, mode="edge")
    full_box = tuple(slice(st, st + m) for st, m in zip(starts, full.shape))
    return full_box, full
