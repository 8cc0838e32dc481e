"""How far a body's height loss, and so its Genant grade, can be trusted at the CT's sampling.

An endplate lies anywhere between two samples of the CT along the body's axis, and where it lies within
that step (the grid's phase) no reading recovers once the slices are coarser than the endplate's blur:
its position is uncertain by the step over sqrt(12) (a uniform spread over one step). The step is the
CT's resolution along the body's axis: its sampling there, or its slice thickness where that is larger.
A height spans two endplates. On 3 mm slices that is 1.2 mm a height, about 7 points of height loss on a 25 mm body, wider
than the 5 points of Genant's grade 1; on 1 mm voxels 0.4 mm. The loss is given with the spread that
follows, and the grades it spans: a reading whose spread crosses a grade's edge could have read the next
grade on a scan whose grid began a little further on (benchmarks/grid_phase.py).

Nothing here is fitted. It covers the sampling alone: anatomy that misleads a trace (a blob on an
endplate, a rib head over a corner) is not in it.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.genant import grade_from_loss, height_loss, tallest_crush_loss
from screening_node.analysis.results import HEIGHT_KEYPOINTS, HEIGHT_NAMES
from screening_node.analysis.straighten import voxel_extent_along

PHASE_SD_PER_STEP = 1.0 / math.sqrt(12.0)  # a position spread uniformly over one sampling step


def height_sampling_sd(image: sitk.Image, keypoints_lps: dict[str, Sequence[float]],
                       slice_thickness_mm: float | None = None) -> dict[str, float]:
    """Per height (anterior, middle, posterior), its standard deviation (mm) from the CT's sampling: the
    CT's resolution along the height's own direction (straighten.voxel_extent_along: the slice spacing, or
    the slice thickness where it is known and larger, as for measuring at all) for each of its two endplates.

    The thickness counts: slices reconstructed closer than they are thick hold no finer information along
    the spine. The tcia series (3 mm slices) resampled to 1 mm spacing read its native losses within the
    narrower ranges of the resampled reading for 3 of its 12 bodies, within the native 3 mm ones for 9."""
    along = np.array([np.subtract(keypoints_lps[upper], keypoints_lps[lower]) for upper, lower in
                      HEIGHT_KEYPOINTS.values()], dtype=float)
    directions = along / np.maximum(np.linalg.norm(along, axis=1, keepdims=True), 1e-9)
    steps = voxel_extent_along(image, directions, slice_thickness_mm)
    return {name: math.sqrt(2.0) * float(step) * PHASE_SD_PER_STEP for name, step in zip(HEIGHT_KEYPOINTS, steps)}


def loss_spread(heights: dict[str, float], height_sd: dict[str, float], neighbour_posteriors: Sequence[float] = (),
                neighbour_sd: float = 0.0, level: str | None = None) -> float:
    """One standard deviation of genant's height loss from independent spreads of its inputs: each
    height by its own, each neighbour's posterior height by ``neighbour_sd``.

    Each input's share is the larger of the loss's changes when it moves one standard deviation up or down:
    where the lowest height changes places with another (a body of nearly equal heights) the loss bends and
    rises either way, which a derivative or a secant across both would read as no change at all.
    """
    values = [float(heights[n]) for n in HEIGHT_NAMES] + [float(p) for p in neighbour_posteriors]
    sds = [float(height_sd[n]) for n in HEIGHT_NAMES] + [float(neighbour_sd)] * len(neighbour_posteriors)
    return _spread(values, sds, lambda x: height_loss(dict(zip(HEIGHT_NAMES, x[:3])), x[3:], level)[0])


def collapse_spread(tallest: float, tallest_sd: float, neighbour_posteriors: Sequence[float],
                    neighbour_sd: float) -> float:
    """One standard deviation of the crush loss of a body graded from its tallest height alone
    (genant.collapsed_anyway), as loss_spread gives it for genant's own."""
    values = [float(tallest)] + [float(p) for p in neighbour_posteriors]
    sds = [float(tallest_sd)] + [float(neighbour_sd)] * len(neighbour_posteriors)
    return _spread(values, sds, lambda x: tallest_crush_loss(x[0], x[1:]))


def _spread(values: list[float], sds: list[float], loss_of: Callable[[list[float]], float]) -> float:
    """The loss's standard deviation from independent spreads of its inputs (loss_spread)."""
    loss = loss_of(values)
    variance = 0.0
    for i, sd in enumerate(sds):
        if sd <= 0:
            continue
        up, down = list(values), list(values)
        up[i] += sd
        down[i] = max(1e-3, down[i] - sd)
        variance += max(abs(loss_of(up) - loss), abs(loss_of(down) - loss)) ** 2
    return math.sqrt(variance)


def loss_range(loss: float, spread: float) -> tuple[float, float]:
    """The loss one spread either side (never below 0), rounded as the loss is."""
    return round(max(0.0, loss - spread), 4), round(loss + spread, 4)


def grade_range(loss_low: float, loss_high: float) -> tuple[int, int]:
    """The Genant grades a loss within these bounds reads."""
    return grade_from_loss(loss_low), grade_from_loss(loss_high)
