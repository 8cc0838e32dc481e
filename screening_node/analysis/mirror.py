"""How well a section matches its mirror image: a vertebra mirrors itself about its mid-sagittal plane.

Shared by the labelling (reaches measured from each vertebra's own midline), the re-centring of the
straightened spine on the measured bodies (pipeline: their heights are read on their mid-sagittal planes)
and the roll estimate (the mirror line's angle, roll.py); all compare one half of a section with the
other half flipped.
"""

from __future__ import annotations

import numpy as np

from screening_node.analysis import thresholds as T
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding, body_block


def masked_ncc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per first index: normalised correlation of x[i] and y[i] (each (n, rows, cols)) over the places both
    hold a value (NaN elsewhere: outside the field); -1 where fewer than half do (no judgement), or either
    is flat."""
    both = np.isfinite(x) & np.isfinite(y)
    n = both.sum(axis=(1, 2))
    x, y = np.where(both, x, 0.0), np.where(both, y, 0.0)
    count = np.maximum(n, 1)[:, None, None]
    a = np.where(both, x - x.sum(axis=(1, 2))[:, None, None] / count, 0.0)
    b = np.where(both, y - y.sum(axis=(1, 2))[:, None, None] / count, 0.0)
    norm = np.sqrt((a * a).sum(axis=(1, 2)) * (b * b).sum(axis=(1, 2)))
    ncc = np.divide((a * b).sum(axis=(1, 2)), norm, out=np.full(len(n), -1.0), where=norm > 0)
    ncc[n < 0.5 * both[0].size] = -1.0
    return ncc


def midlines(st: Straightened, bodies: list[BodyFinding]) -> list[float]:
    """Lateral offset (mm from the curve) of each vertebra's own midline: its axis of mirror symmetry.

    A vertebra (body, canal, pedicles, arch) mirrors itself about its midline. On a tight crop the
    curve can run in a facet column, 15-25 mm off it, and a transverse process measured from there
    looks like an ilium. A body's offset is its mirror axis when that symmetry is clear
    (MIRROR_MIN_NCC), lies farther from the curve than min_midline_shift, and a neighbour's clear
    axis agrees within MIRROR_AGREE_MM (the curve is smooth: when it runs beside the column it does
    so over several vertebrae; an axis on one body alone, such as a sacral section at the end of the
    field, is not trusted); otherwise 0.0, the curve.
    """
    mids = [b.ap_centre for b in bodies]
    axes = [mirror_axis(st, b, (mid - 25, mid + 45)) for b, mid in zip(bodies, mids)]
    clear = [ncc >= T.MIRROR_MIN_NCC for _, ncc in axes]
    least = min_midline_shift(st)
    out = []
    for i, (shift, _) in enumerate(axes):
        agreed = any(0 <= j < len(axes) and clear[j] and abs(axes[j][0] - shift) <= T.MIRROR_AGREE_MM
                     for j in (i - 1, i + 1))
        out.append(shift if clear[i] and agreed and abs(shift) > least else 0.0)
    return out


def min_midline_shift(st: Straightened) -> float:
    """How far (mm) a vertebra's mirror axis must lie from the curve to be taken instead of it: MIRROR_MIN_SHIFT_MM,
    or MIRROR_MIN_SHIFT_THICK_MM where the CT samples across the spine coarsely (THICK_SLICE_MM or more: a
    sagittal series' slices). There the curve's own lateral place is the less sure of the two: the bodies'
    side walls run within the slices, and averaged over them they break up, so the body-centre track finds
    fewer rings (body_centre.py), while the mirror axis compares the whole vertebra."""
    return T.MIRROR_MIN_SHIFT_THICK_MM if st.coarse_across else T.MIRROR_MIN_SHIFT_MM


def mirror_axis(st: Straightened, body: BodyFinding, ap: tuple[float, float]) -> tuple[float, float]:
    """The lateral shift (mm from the curve, within MIRROR_MAX_SHIFT_MM) that best correlates the
    vertebra's section (averaged over its rows, MIRROR_HALF_WIDTH_MM to each side) with its mirror
    image, and that correlation (-1 when none could be judged)."""
    block = body_block(st, body, ap)
    if block.size == 0:
        return 0.0, -1.0
    h = st.step_mm
    valid = (block > T.OUTSIDE_FOV_HU).all(axis=0)  # (ap, lat) inside the field in every row
    seen = np.where(valid, np.clip(block, T.AIR_HU, T.MIRROR_CLIP_HU).mean(axis=0), np.nan)
    half = int(round(T.MIRROR_HALF_WIDTH_MM / h))
    reach = int(round(T.MIRROR_MAX_SHIFT_MM / h))
    centres = [c for c in range(st.half_lat - reach, st.half_lat + reach + 1) if half <= c < seen.shape[1] - half]
    if not centres:
        return 0.0, -1.0
    ncc = masked_ncc(np.stack([seen[:, c - half:c][:, ::-1] for c in centres]),
                     np.stack([seen[:, c + 1:c + half + 1] for c in centres]))  # -1: mostly outside the field
    i = int(np.argmax(ncc))
    return (float((centres[i] - st.half_lat) * h), float(ncc[i])) if ncc[i] > -1.0 else (0.0, -1.0)
