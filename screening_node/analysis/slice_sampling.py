"""Which CT slices each row of a straightened column mixed, on a thick-slice series: what the sampled
shell fit (shell.sampled_shell_surface) models.

Why: a straightened row between two slices is their linear mix (straighten.py interpolates linearly),
so a profile along the spine is a broken line through the slices' values. Each slice averages the
anatomy over its thickness. A Gaussian standing for both (the blur slice_blur gives) moves a fitted
endplate by up to 0.7 mm with the slices' phase: on four batches of 3 mm phantoms a normal body's
middle endplate read 0.5 mm in at one phase and 0.9 mm out at another, most of the 1.1 mm spread of its
error. The endplate is read as the mean of that fit and one of the slices' own sampling
(endplates._endplate_surface): on the simulated 3 mm profiles of tests/test_slice_sampling.py it errs
0.68 mm (mean) against the Gaussian's 0.91.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from screening_node.analysis.straighten import Straightened


@dataclass(frozen=True)
class ColumnSampling:
    """How each row of a column's profile was made from slices: row i is sum_j weights[i, j] times the
    slice-averaged anatomy at row position centres[i, j] (the slices' centres, in rows along the column)."""
    centres: np.ndarray   # (rows, m)
    weights: np.ndarray   # (rows, m), each row sums to 1
    box_rows: float       # a slice's extent along the column, rows (its thickness crossed obliquely)


def column_block(ap: float, cl: int, n_ap: int) -> list[tuple[int, int, float]]:
    """(ap index, lat index, weight) of the straightened columns that endplates._column_profile averages
    for a column at fractional ap index ``ap`` and lat index ``cl``: ap columns i-1 .. i+2 mixed as the
    fractional position falls, five lat columns, all equal."""
    i = int(np.floor(ap))
    f = ap - i
    lo = max(0, i - 1)
    ap_cols = list(range(lo, min(i + 3, n_ap)))
    if len(ap_cols) < 4:
        ap_weights = [1.0 / len(ap_cols)] * len(ap_cols)
    else:
        ap_weights = [(1 - f) / 3, 1 / 3, 1 / 3, f / 3]
    return [(a, c, w / 5) for a, w in zip(ap_cols, ap_weights) for c in range(cl - 2, cl + 3)]


def column_sampling(st: Straightened, ap: float, cl: int, rows: np.ndarray) -> ColumnSampling | None:
    """The slices each of ``rows`` (row indices of the column at fractional ap index ``ap``, lat index
    ``cl``) mixed; None where the CT samples the spine finely (under MODELLED_BLUR_SPACING_MM along it), where the
    shell fit finds the blur itself, or where the straightening kept no slice geometry.

    Each of the column's straightened columns crosses the slices at its own rows (a plane tilted
    against the slices crosses them at different heights front and back), so the mix is built per
    column and weighted as the profile averages them. A slice is taken as thick as the slices are apart, or
    where they overlap, as thick as the series says (SliceStack.thickness_mm).
    """
    rows = np.asarray(rows, dtype=float)
    if st.slices is None or st.thick_sampling_at(float(rows.mean())) is None:
        return None
    block = np.array(column_block(ap, cl, st.volume.shape[1]))  # (m, 3): ap index, lat index, weight
    a_mm = (block[:, 0] - st.half_ap) * st.step_mm
    l_mm = (block[:, 1] - st.half_lat) * st.step_mm
    k = _slice_index(st, rows, a_mm, l_mm)                 # (rows, m)
    # Columns that cross the slices at the same rows (the lat columns of an axial series) mix alike: merged,
    # the fit evaluates the model at a fifth of the positions.
    _, first, group = np.unique(np.round(k, 4), axis=1, return_index=True, return_inverse=True)
    group = np.asarray(group).reshape(-1)
    k, a_mm, l_mm = k[:, first], a_mm[first], l_mm[first]
    block = np.column_stack([block[first, :2], np.bincount(group, weights=block[:, 2])])
    per_row = _slice_index(st, rows + 1.0, a_mm, l_mm) - k  # slices crossed per row along each column
    if np.any(np.abs(per_row) < 1e-6):
        return None  # a column runs along a slice: no stack to model
    phase = k - np.floor(k)
    centres = np.concatenate([rows[:, None] - phase / per_row, rows[:, None] + (1.0 - phase) / per_row], axis=1)
    weights = np.concatenate([block[None, :, 2] * (1.0 - phase), block[None, :, 2] * phase], axis=1)
    box_rows = float(np.median(1.0 / np.abs(per_row))) * st.slices.thickness_over_spacing
    return ColumnSampling(centres, weights, box_rows)


def _slice_index(st: Straightened, rows: np.ndarray, a_mm: np.ndarray, l_mm: np.ndarray) -> np.ndarray:
    """Continuous slice index (rows, columns) of the straightened positions (row, a_mm, l_mm): linear in the
    offsets on each row's plane, so one plane lookup per row serves every column."""
    assert st.slices is not None
    point, col, lat = st.plane_at(rows)
    base = st.slices.index(point)
    return (base[:, None] + (col @ st.slices.index_row)[:, None] * a_mm[None, :]
            + (lat @ st.slices.index_row)[:, None] * l_mm[None, :])
