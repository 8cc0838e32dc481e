"""Body outline on the mid-sagittal plane and the six endplate keypoints of one body.

Arrays are straightened volumes (row, ap, lat) at 1 mm (see straighten.py): rows run cranial ->
caudal, ap anterior -> posterior. This module measures; vertebrae.py decides where bodies are.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.straighten import Straightened


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    lab, n = ndimage.label(mask)
    return [(s.start, s.stop - 1) for (s,) in ndimage.find_objects(lab)] if n else []


def edge_level(prof: np.ndarray, centre: int) -> float:
    """Half level between the body's own density and soft tissue: adapts to osteoporotic bone."""
    inside = float(np.median(prof[max(0, centre - 4):centre + 5]))
    return max(T.EDGE_MIN_HU, 0.5 * (inside + T.SOFT_TISSUE_HU))


def ap_extent(mid: np.ndarray, r0: int, r1: int, ca: int) -> tuple[float, float] | None:
    """Anterior and posterior edge (mm, relative to the curve) of the bone segment holding the centre."""
    prof = np.median(mid[r0:max(r1, r0 + 1)], axis=0)
    lvl = edge_level(prof, ca)
    segs = [(a, b) for a, b in segments(prof > lvl) if a <= ca + 5 and b >= ca - 5]
    if not segs:
        return None
    a, b = max(segs, key=lambda s: s[1] - s[0])
    if not T.BODY_MIN_AP_MM <= b - a + 1 <= T.BODY_MAX_AP_MM:
        return None
    return (_crossing(prof, a, -1, lvl) - ca, _crossing(prof, b, +1, lvl) - ca)


def lat_half_width(v: np.ndarray, r: int, a: int, cl: int) -> float:
    prof = ndimage.gaussian_filter1d(v[r, max(0, a - 5):a + 6, :].mean(axis=0), 1.0)
    lvl = edge_level(prof, cl)
    segs = [(x, y) for x, y in segments(prof > lvl) if x <= cl <= y]
    if not segs:
        return 15.0
    x, y = segs[0]
    return float(np.clip(min(cl - x, y - cl), 8, 35))  # the narrower side: the wider runs into a pedicle/ala


def _crossing(prof: np.ndarray, start: int, step: int, level: float) -> float:
    """Sub-voxel position where prof falls below level walking from start in direction step."""
    i = start
    while 0 <= i + step < len(prof) and prof[i + step] >= level:
        i += step
    j = i + step
    if not 0 <= j < len(prof):
        return float(i)
    a, b = prof[i], prof[j]
    frac = (a - level) / (a - b) if a != b else 0.5
    return i + step * float(np.clip(frac, 0, 1))


def body_keypoints(v: np.ndarray, st: Straightened, top: int, bottom: int, ap_range: tuple[float, float]
               ) -> tuple[dict[str, tuple[float, float, float]] | None, str | None]:
    """Six keypoints: endplate edges at the anterior, middle and posterior measuring columns.

    The middle column is searched next to the discs; the anterior and posterior columns near the
    middle column's endplate (an endplate is one continuous plate, tilted at most a few mm).
    """
    ca, cl = st.half_ap, st.half_lat
    ant, post = ap_range
    out: dict[str, tuple[float, float, float]] = {}
    cols = dict(zip(("anterior", "middle", "posterior"), T.HEIGHT_COLUMNS))
    search = int(T.EDGE_SEARCH_MM)
    mid_sup = mid_inf = None
    for name in ("middle", "anterior", "posterior"):
        a_mm = ant + cols[name] * (post - ant)
        ai = int(round(a_mm)) + ca
        prof = ndimage.gaussian_filter1d(v[:, max(0, ai - 1):ai + 2, cl - 2:cl + 3].mean(axis=(1, 2)), 0.8)
        grad = np.gradient(prof)
        if name == "middle":
            sup = _edge(grad, top - 2, top + search, +1)
            inf = _edge(grad, bottom - search, bottom + 2, -1)
            mid_sup, mid_inf = sup, inf
        else:
            tilt = T.ENDPLATE_TILT_MM
            sup = None if mid_sup is None else _edge(grad, int(mid_sup - tilt), int(mid_sup + tilt) + 1, +1)
            inf = None if mid_inf is None else _edge(grad, int(mid_inf - tilt), int(mid_inf + tilt) + 1, -1)
        if sup is None or inf is None or inf - sup < T.BODY_MIN_HEIGHT_MM:
            return None, f"{name} endplates not found"
        out[f"superior_{name}"] = (sup, a_mm, 0.0)
        out[f"inferior_{name}"] = (inf, a_mm, 0.0)
    return {k: out[k] for k in sorted(out, key=lambda k: (k.split("_")[0] != "superior",
                                                         ("anterior", "middle", "posterior").index(k.split("_")[1])))}, None


def _edge(grad: np.ndarray, lo: int, hi: int, sign: int) -> float | None:
    """Row of the strongest rising (sign +1) or falling (-1) edge in [lo, hi), to sub-voxel by a parabola."""
    lo, hi = max(1, lo), min(len(grad) - 1, hi)
    if hi - lo < 2:
        return None
    g = sign * grad[lo:hi]
    k = int(np.argmax(g))
    if g[k] < T.ENDPLATE_MIN_STEP_HU:
        return None
    i = lo + k
    y0, y1, y2 = sign * grad[i - 1], sign * grad[i], sign * grad[i + 1]
    den = y0 - 2 * y1 + y2
    off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return i + float(np.clip(off, -0.5, 0.5))
