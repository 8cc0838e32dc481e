"""How well a section matches its mirror image: a vertebra mirrors itself about its mid-sagittal plane.

Shared by the labelling (the midline's lateral shift, labelling.mirror_axis) and the roll estimate (the
mirror line's angle, roll.py); both compare one half of a section with the other half flipped.
"""

from __future__ import annotations

import numpy as np


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
