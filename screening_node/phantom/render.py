"""From options to a CT volume in memory: plan the anatomy, choose the field of view, render.

Partial volume: each slice is the mean of ``m`` sub-slices spread over the
slice thickness (a box slice profile), every structure is anti-aliased in-plane
over one pixel, then a small in-plane Gaussian stands for the scanner's PSF.
Noise is white Gaussian noise smoothed in-plane (so it is correlated like CT
noise) and scaled to ``options.noise`` HU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from screening_node.phantom.anatomy import SpinePlan, apply_fractures, build_spine, parse_levels_for
from screening_node.phantom.body import Torso, build_torso, paint_organs, paint_table, paint_trunk
from screening_node.phantom.grid import Grid
from screening_node.phantom.options import PhantomOptions
from screening_node.phantom.skeleton import paint_ribs, paint_sacrum_pelvis, paint_spine, paint_sternum

PSF_SIGMA_MM = 0.45
NOISE_CORRELATION_PX = 0.7  # smallest in-plane blur, so that noise is correlated over a few pixels
BODY_PART = {"trunk": "CHEST_TO_PELVIS", "chest": "CHEST", "abdomen": "ABDOMEN", "lumbar": "LSPINE",
             "spine-crop": "SPINE"}
BODY_PART_DICOM = {"trunk": "CHESTABDPELVIS", "chest": "CHEST", "abdomen": "ABDOMENPELVIS", "lumbar": "LSPINE",
                   "spine-crop": "SPINE"}


@dataclass
class PhantomVolume:
    """A rendered phantom: HU (int16) and body labels (uint8), both numpy (z, y, x) on ``grid``."""

    hu: np.ndarray
    labels: np.ndarray
    grid: Grid
    plan: SpinePlan
    torso: Torso
    options: PhantomOptions
    patient: dict[str, Any]


def rngs(seed: int) -> dict[str, np.random.Generator]:
    """Independent seeded streams, so that e.g. adding a fracture never changes the noise."""
    return {name: np.random.default_rng([seed, i]) for i, name in enumerate(("anatomy", "fracture", "noise",
                                                                            "patient"))}


def plan_anatomy(options: PhantomOptions) -> tuple[SpinePlan, Torso, dict[str, Any]]:
    streams = rngs(options.seed)
    plan = build_spine(options, streams["anatomy"])
    apply_fractures(plan, options, streams["fracture"])
    torso = build_torso(plan, options)
    p = streams["patient"]
    age = int(p.integers(55, 86)) if options.bone_density != "normal" else int(p.integers(40, 80))
    sex = "F" if p.random() < 0.6 else "M"
    patient = {"age_years": age, "sex": sex, "size": options.patient_size, "bone_density": options.bone_density,
               "rib_pairs": options.rib_pairs, "lumbar_vertebrae": options.lumbar,
               "weight_kg": {"small": 55, "medium": 75, "large": 105}[options.patient_size]}
    return plan, torso, patient


def choose_grid(options: PhantomOptions, plan: SpinePlan, torso: Torso) -> Grid:
    """Field of view: z range from landmarks (or --levels), x-y square centred on the body or spine."""
    fov = options.fov
    top_of = lambda label: plan.z_of(label, "top")  # noqa: E731
    bottom_of = lambda label: plan.z_of(label, "bottom")  # noqa: E731
    z_s1 = plan.z_of("S1")
    last_t = [v.label for v in plan.vertebrae if v.region == "T"][-1]
    if options.levels:
        first, last = parse_levels_for(plan, options.levels)
        z_hi, z_lo = top_of(first) + 12.0, bottom_of(last) - 12.0
    elif fov == "trunk":
        z_hi, z_lo = top_of("T1") + 35.0, z_s1 - 150.0
    elif fov == "chest":
        z_hi, z_lo = top_of("T1") + 35.0, plan.z_of("L2")
    elif fov == "abdomen":
        z_hi, z_lo = plan.z_of("T10") if "T10" in {v.label for v in plan.vertebrae} else plan.z_of(last_t), \
            z_s1 - 150.0
    elif fov == "lumbar":
        z_hi, z_lo = plan.z_of(last_t), z_s1 - 40.0
    else:  # spine-crop
        z_hi, z_lo = top_of("T9") + 12.0, bottom_of("L3") - 12.0
    if fov in ("lumbar", "spine-crop"):
        mid_z = 0.5 * (z_hi + z_lo)
        sx, sy = torso.spine_xy(np.array(mid_z))
        centre_x, centre_y = float(sx), float(sy) + (20.0 if fov == "spine-crop" else 0.0)
        width = 220.0 if fov == "lumbar" else 120.0
    else:
        zs = np.linspace(z_lo, z_hi, 50)
        a, b, yc = torso.at(zs)
        centre_x = torso.xc
        centre_y = float(0.5 * (np.max(yc + b) + np.min(yc - b)))
        width = float(max(2 * np.max(a), np.max(yc + b) - np.min(yc - b)) + 30.0)
    matrix = options.matrix or (128 if fov == "spine-crop" else 512)
    pixel = options.pixel_spacing or round(width / matrix, 4)
    step = options.spacing_z
    n_slices = int(np.floor((z_hi - z_lo) / step)) + 1
    origin_x = centre_x - pixel * (matrix - 1) / 2
    origin_y = centre_y - pixel * (matrix - 1) / 2
    return Grid((n_slices, matrix, matrix), (round(origin_x, 3), round(origin_y, 3), round(z_lo, 3)),
                (pixel, pixel, step))


def _paint_soft(volume: np.ndarray, grid: Grid, plan: SpinePlan, torso: Torso, options: PhantomOptions) -> None:
    width = grid.spacing[0]
    volume.fill(-1000.0)
    paint_table(volume, grid, torso, width)
    paint_trunk(volume, grid, torso, plan, options, width)
    paint_organs(volume, grid, torso, plan, options, width)


def _paint_bones(volume: np.ndarray, grid: Grid, plan: SpinePlan, torso: Torso) -> None:
    width = grid.spacing[0]
    paint_spine(volume, grid, plan, width)
    paint_ribs(volume, grid, plan, torso, width)
    paint_sternum(volume, grid, plan, torso, width)
    paint_sacrum_pelvis(volume, grid, plan, torso, width)


def _noise_gain(sigma_px: float) -> float:
    """Standard deviation of white unit noise after the in-plane Gaussian of ``sigma_px``."""
    delta = np.zeros((1, 25, 25), np.float32)
    delta[0, 12, 12] = 1.0
    return float(np.sqrt((gaussian_filter(delta, (0, sigma_px, sigma_px), truncate=3.0) ** 2).sum()))


def _add_white_noise(volume: np.ndarray, options: PhantomOptions, scale: float) -> None:
    """White Gaussian noise, slab by slab (bounded memory); the PSF blur that follows correlates it."""
    rng = rngs(options.seed)["noise"]
    for k0 in range(0, volume.shape[0], 32):
        slab = volume[k0:k0 + 32]
        slab += rng.standard_normal(slab.shape, dtype=np.float32) * np.float32(scale)


def render_volume(options: PhantomOptions) -> PhantomVolume:
    """The whole phantom in memory (nothing written): HU int16 and labels uint8, numpy (z, y, x).

    Soft tissue changes slowly along z and is drawn once at the slice centres; bones are drawn at
    ``sub`` positions across the slice thickness and averaged (the slice's partial volume).
    """
    plan, torso, patient = plan_anatomy(options)
    grid = choose_grid(options, plan, torso)
    thickness = options.slice_thickness
    sub = int(np.clip(np.ceil(thickness / max(grid.spacing[0], 1.0)), 1, 4))
    soft = np.empty(grid.shape, np.float32)
    _paint_soft(soft, grid, plan, torso, options)
    if sub == 1:
        accumulated = soft
        _paint_bones(accumulated, grid, plan, torso)
    else:
        accumulated = np.zeros(grid.shape, np.float32)
        scratch = np.empty(grid.shape, np.float32)
        for j in range(sub):
            shift = (j + 0.5) / sub * thickness - thickness / 2
            shifted = replace(grid, origin=(grid.origin[0], grid.origin[1], grid.origin[2] + shift))
            np.copyto(scratch, soft)
            _paint_bones(scratch, shifted, plan, torso)
            accumulated += scratch
        del scratch, soft
        accumulated /= sub
    # one in-plane Gaussian blurs the image (scanner PSF) and correlates the noise added just before it
    sigma_px = max(PSF_SIGMA_MM / grid.spacing[0], NOISE_CORRELATION_PX)
    if options.noise > 0:
        _add_white_noise(accumulated, options, options.noise / _noise_gain(sigma_px))
    gaussian_filter(accumulated, (0, sigma_px, sigma_px), output=accumulated, truncate=3.0)
    np.clip(accumulated, -1024, 3071, out=accumulated)
    hu = np.rint(accumulated).astype(np.int16)
    del accumulated
    labels = np.zeros(grid.shape, np.uint8)
    _paint_labels(labels, grid, plan)
    return PhantomVolume(hu, labels, grid, plan, torso, options, patient)


def _paint_labels(labels: np.ndarray, grid: Grid, plan: SpinePlan) -> None:
    """Body labels on the exact slice positions (occupancy >= 0.5), cranial bodies first."""
    from screening_node.phantom.skeleton import paint_body

    scratch = np.zeros(grid.shape, np.float32)
    for v in plan.vertebrae:
        paint_body(scratch, grid, v, grid.spacing[0], labels)
