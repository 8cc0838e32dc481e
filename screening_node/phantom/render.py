"""From options to a CT volume in memory: plan the anatomy, choose the field of view, render.

Partial volume: each slice is the mean of ``m`` sub-slices spread over the
slice thickness (a box slice profile), every structure is anti-aliased in-plane
over one pixel, then a small in-plane Gaussian stands for the scanner's PSF.
Noise is white Gaussian noise smoothed in-plane (so it is correlated like CT
noise) and scaled to ``options.noise`` HU. With ``options.texture`` the vertebral bodies' marrow
carries a trabecular mottle (phantom/texture.py).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from screening_node.imaging.volume import block_means
from screening_node.phantom.anatomy import SpinePlan, apply_fractures, build_spine, parse_levels_for
from screening_node.phantom.body import Torso, build_torso, paint_organs, paint_table, paint_trunk
from screening_node.phantom.degeneration import (Degeneration, paint_degeneration, plan_degeneration,
                                                 plan_schmorl_nodes)
from screening_node.phantom.grid import Grid
from screening_node.phantom.options import PhantomOptions
from screening_node.phantom.roll import Roll, roll_arrays
from screening_node.phantom.skeleton import paint_ribs, paint_sacrum_pelvis, paint_spine, paint_sternum
from screening_node.phantom.texture import Texture

PSF_SIGMA_MM = 0.45
SLAB_SLICES = 32  # fixed, never derived from the thread count: each slab seeds its own noise
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
    degeneration: Degeneration = Degeneration()
    roll: Roll | None = None  # the anatomy was turned so after rendering (options.roll)


STREAMS = ("anatomy", "fracture", "noise", "patient", "degeneration", "texture", "schmorl")  # append only: an index seeds its stream
DRAWN_WHERE_USED = ("noise", "degeneration", "texture", "schmorl")  # per slab, vertebra or option, not in rngs()


def stream(seed: int, name: str, *more: int) -> np.random.Generator:
    """One independent seeded stream, so that e.g. adding a fracture never changes the noise."""
    return np.random.default_rng([seed, STREAMS.index(name), *more])


def rngs(seed: int) -> dict[str, np.random.Generator]:
    """The whole-phantom streams (the noise has one stream per slab: see ``_slab_noise``)."""
    return {name: stream(seed, name) for name in STREAMS if name not in DRAWN_WHERE_USED}


def plan_anatomy(options: PhantomOptions) -> tuple[SpinePlan, Torso, dict[str, Any]]:
    streams = rngs(options.seed)
    plan = build_spine(options, streams["anatomy"])
    apply_fractures(plan, options, streams["fracture"])
    if options.texture > 0:  # one stream per vertebra: the texture never changes the anatomy's draws
        for index, v in enumerate(plan.vertebrae):
            v.texture = Texture.draw(stream(options.seed, "texture", index), options.texture)
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


def _paint_bones(volume: np.ndarray, grid: Grid, plan: SpinePlan, torso: Torso, change: Degeneration) -> None:
    width = grid.spacing[0]
    paint_spine(volume, grid, plan, width)
    paint_degeneration(volume, grid, plan, change, width)
    paint_ribs(volume, grid, plan, torso, width)
    paint_sternum(volume, grid, plan, torso, width)
    paint_sacrum_pelvis(volume, grid, plan, torso, width)


def _noise_gain(sigma_px: float) -> float:
    """Standard deviation of white unit noise after the in-plane Gaussian of ``sigma_px``."""
    delta = np.zeros((1, 25, 25), np.float32)
    delta[0, 12, 12] = 1.0
    return float(np.sqrt((gaussian_filter(delta, (0, sigma_px, sigma_px), truncate=3.0) ** 2).sum()))


def _slab_noise(shape: tuple[int, ...], seed: int, slab_index: int, scale: float) -> np.ndarray:
    """White Gaussian noise of one slab from its own seeded stream (so threads never change the bytes)."""
    rng = stream(seed, "noise", slab_index)
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise *= np.float32(scale)
    return noise


def _render_slab(options: PhantomOptions, grid: Grid, plan: SpinePlan, torso: Torso, change: Degeneration,
                 slab_index: int, hu: np.ndarray, labels: np.ndarray) -> None:
    """Render slices ``[k0, k1)`` of the phantom into ``hu`` and ``labels`` (views of the whole volume).

    Soft tissue changes slowly along z and is drawn once at the slice centres; bones are drawn at
    ``sub`` positions across the slice thickness and averaged (the slice's partial volume). Every
    step is in-plane or per slice, so slabs are independent and run in parallel.
    """
    k0 = slab_index * SLAB_SLICES
    k1 = min(k0 + SLAB_SLICES, grid.shape[0])
    slab = Grid((k1 - k0, grid.shape[1], grid.shape[2]),
                (grid.origin[0], grid.origin[1], grid.origin[2] + k0 * grid.spacing[2]), grid.spacing)
    thickness = options.slice_thickness
    sub = int(np.clip(np.ceil(thickness / max(grid.spacing[0], 1.0)), 1, 4))
    soft = np.empty(slab.shape, np.float32)
    _paint_soft(soft, slab, plan, torso, options)
    accumulated = None
    for j in range(sub):
        shift = (j + 0.5) / sub * thickness - thickness / 2
        shifted = replace(slab, origin=(slab.origin[0], slab.origin[1], slab.origin[2] + shift))
        canvas = soft if j == sub - 1 else soft.copy()  # the last position may overwrite the soft tissue
        _paint_bones(canvas, shifted, plan, torso, change)
        if accumulated is None:
            accumulated = canvas
        else:
            accumulated += canvas
    assert accumulated is not None
    if sub > 1:
        accumulated /= sub
    # one in-plane Gaussian blurs the image (scanner PSF) and correlates the noise added just before it
    sigma_px = max(PSF_SIGMA_MM / grid.spacing[0], NOISE_CORRELATION_PX)
    if options.noise > 0:
        accumulated += _slab_noise(slab.shape, options.seed, slab_index, options.noise / _noise_gain(sigma_px))
    gaussian_filter(accumulated, (0, sigma_px, sigma_px), output=accumulated, truncate=3.0)
    np.clip(accumulated, -1024, 3071, out=accumulated)
    np.rint(accumulated, out=accumulated)
    hu[k0:k1] = accumulated
    _paint_labels(labels[k0:k1], slab, plan)


def render_volume(options: PhantomOptions, workers: int | None = None) -> PhantomVolume:
    """The whole phantom in memory (nothing written): HU int16 and labels uint8, numpy (z, y, x).

    Rendered in slabs of ``SLAB_SLICES`` on a thread pool (numpy and scipy release the GIL); each
    slab draws its noise from a stream seeded by its index, so the bytes do not depend on ``workers``.
    """
    if options.plane == "sagittal":
        return sagittal_reformat(options, workers)
    plan, torso, patient = plan_anatomy(options)
    change = plan_degeneration(plan, options.degeneration, stream(options.seed, "degeneration"))
    if options.schmorl_nodes > 0:  # their own stream: the rest of the change is drawn as without them
        change = replace(change, nodes=plan_schmorl_nodes(plan, options.schmorl_nodes, stream(options.seed, "schmorl")))
    grid = choose_grid(options, plan, torso)
    hu = np.empty(grid.shape, np.int16)
    labels = np.zeros(grid.shape, np.uint8)
    n_slabs = -(-grid.shape[0] // SLAB_SLICES)
    workers = workers or min(4, os.cpu_count() or 1)
    if workers == 1:
        for i in range(n_slabs):
            _render_slab(options, grid, plan, torso, change, i, hu, labels)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for done in [pool.submit(_render_slab, options, grid, plan, torso, change, i, hu, labels)
                         for i in range(n_slabs)]:
                done.result()
    roll = None
    if options.roll:
        roll = Roll.about_field(grid, options.roll)
        hu, labels = roll_arrays(hu, labels, grid, roll)
    return PhantomVolume(hu, labels, grid, plan, torso, options, patient, change, roll)


def sagittal_reformat(options: PhantomOptions, workers: int | None = None) -> PhantomVolume:
    """A sagittal multiplanar reformat, as a scanner's console makes one from thin slices: the phantom rendered
    on axial slices as thin as its pixels, then averaged across the patient (along x) in slabs of the slice
    thickness (a whole number of pixels, at least one). Fine along the spine, thick across it. The grid stays
    canonical (z, y, x) with x the slab axis; dicom_writer.acquisition stores it as sagittal slices."""
    plan, torso, _ = plan_anatomy(options)
    pixel = choose_grid(options, plan, torso).spacing[0]
    thin = render_volume(options.with_(plane="axial", slice_thickness=pixel), workers)
    per_slab = max(1, int(round(options.slice_thickness / pixel)))
    nz, ny, nx = thin.hu.shape
    slabs = nx // per_slab
    hu = np.rint(block_means(thin.hu, (1, 1, per_slab))).astype(np.int16)
    labels = np.ascontiguousarray(thin.labels[:, :, per_slab // 2:slabs * per_slab:per_slab])  # each slab's middle
    g = thin.grid
    grid = Grid((nz, ny, slabs), (round(g.origin[0] + (per_slab - 1) / 2 * pixel, 3), g.origin[1], g.origin[2]),
                (per_slab * pixel, pixel, pixel))
    return replace(thin, hu=hu, labels=labels, grid=grid, options=options)


def _paint_labels(labels: np.ndarray, grid: Grid, plan: SpinePlan) -> None:
    """Body labels on the exact slice positions (occupancy >= 0.5), cranial bodies first."""
    from screening_node.phantom.skeleton import paint_body

    scratch = np.zeros(grid.shape, np.float32)
    for v in plan.vertebrae:
        paint_body(scratch, grid, v, grid.spacing[0], labels)
