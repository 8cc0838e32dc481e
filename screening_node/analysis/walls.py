"""The body's outline on the mid-sagittal plane: its anterior and posterior walls, and its half width.

Arrays are straightened volumes (row, ap, lat) at 1 mm (see straighten.py): rows run cranial -> caudal, ap
anterior -> posterior. The walls bound the columns where endplates.py reads the six keypoints.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from screening_node.analysis import thresholds as T
from screening_node.analysis.shell import shell_surface


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    lab, n = ndimage.label(mask)
    return [(s.start, s.stop - 1) for (s,) in ndimage.find_objects(lab)] if n else []


def edge_level(prof: np.ndarray, centre: int) -> float:
    """Half level between the body's own density and soft tissue: adapts to osteoporotic bone."""
    inside = float(np.median(prof[max(0, centre - 4):centre + 5]))
    return max(T.EDGE_MIN_HU, 0.5 * (inside + T.SOFT_TISSUE_HU))


def ap_extent(mid: np.ndarray, top: int, bottom: int, ca: int) -> tuple[float, float] | None:
    """Outer surfaces of the anterior and posterior walls (mm, relative to the curve), or None.

    ``mid`` is the mid-sagittal plane (rows, ap); ``top`` and ``bottom`` the rows of the discs (or
    field-of-view ends) around the body. The body's columns are those closed by an endplate at
    both discs (_framed_mask). Its walls are the pair of cortical ridges around them, each
    fitted with the shell model (_ridge_pair); where the cortex shows no ridge (the basivertebral
    foramen at the back, dense bone), the wall is the half-level step at the end of the framed
    columns (_wall_surface). A plain threshold segment would run on into whatever touches the
    body (a contrast-filled organ or vessel, 100-250 HU; the laminae behind the canal).
    """
    lo = max(0, top - 2)  # every row looked at: the body and its endplates beside the discs
    body, top, bottom = mid[lo:bottom + 3], top - lo, bottom - lo
    prof = np.median(body[_middle_rows(top, bottom)], axis=0)
    peaks = signal.find_peaks(prof, prominence=T.WALL_RIDGE_HU)[0]
    framed = _framed_mask(body, top, bottom)
    walls = None if framed is None else _ridge_pair(body, prof, peaks, framed, top, bottom, ca)
    run = None if walls is not None or framed is None else _framed_columns(framed, ca)
    if run is not None:
        a, b = run
        inner = float(np.median(prof[a:b + 1]))
        ant, post = _wall_surface(prof, peaks, a, -1, inner), _wall_surface(prof, peaks, b, +1, inner)
        walls = None if ant is None or post is None else (ant, post)
    if walls is None:  # no frame shows (thick slices blur the endplates): the bone segment at the curve
        lvl = edge_level(prof, ca)
        segs = [(a, b) for a, b in segments(prof > lvl) if a <= ca + 5 and b >= ca - 5]
        if not segs:
            return None
        a, b = max(segs, key=lambda s: s[1] - s[0])
        walls = (_crossing(prof, a, -1, lvl), _crossing(prof, b, +1, lvl))
    ant, post = walls
    if not T.BODY_MIN_AP_MM <= post - ant <= T.BODY_MAX_AP_MM:
        return None
    return (ant - ca, post - ca)


def _middle_rows(top: int, bottom: int) -> slice:
    """The body's middle 40 % of rows: clear of both endplates (never empty)."""
    return slice(int(top + 0.3 * (bottom - top)), int(bottom - 0.3 * (bottom - top)) + 1)


def _endplate_rows(top: int, bottom: int) -> tuple[slice, slice]:
    """Rows where the superior and the inferior endplate lie: within EDGE_SEARCH_MM inside each disc."""
    reach = int(T.EDGE_SEARCH_MM)
    return slice(max(0, top - 2), top + reach), slice(max(0, bottom - reach), bottom + 3)


def _ridge_pair(mid: np.ndarray, prof: np.ndarray, peaks: np.ndarray, framed: np.ndarray, top: int, bottom: int,
                ca: int) -> tuple[float, float] | None:
    """Wall surfaces from the pair of cortical ridges that frames the body (None: no such pair).

    Candidates are neighbouring ridges of the AP profile a body's depth apart, enclosing framed
    columns only. Of these the body's pair is the one whose interior is most clearly closed by
    endplates: between the walls the row profile rises most at both ends of the body.
    """
    ridges = [int(p) for p in peaks if abs(p - ca) <= T.WALL_RIDGE_REACH_MM and prof[p] >= T.BODY_SEGMENT_HU]
    middle = _middle_rows(top, bottom)
    upper, lower = _endplate_rows(top, bottom)
    best: tuple[float, int, int] | None = None
    for i, a in enumerate(ridges):
        if a - T.CURVE_OFF_BODY_MM > ca:
            break  # the curve never runs in front of the body: ridges wholly behind it frame the canal or arch
        for b in ridges[i + 1:i + 3]:  # the neighbour, or the next one past a ridge inside the body
            if not T.WALL_RIDGE_MIN_SPACING_MM <= b - a <= T.BODY_MAX_AP_MM:
                continue
            if framed[a + 2:b - 1].mean() < T.FRAMED_SHARE:
                continue  # the canal or the space in front of the body lies between these ridges
            rows = mid[:, a + 2:b - 1].mean(axis=1)
            inner = float(np.median(rows[middle]))
            if min(prof[a], prof[b]) < inner + T.WALL_RIDGE_HU or inner < T.MARROW_MIN_HU:
                continue  # walls stand above the marrow they enclose
            if prof[a + 2:b - 1].min() < min(T.SOFT_TISSUE_HU, inner - 2 * T.WALL_RIDGE_HU):
                # fluid between them: the canal, bridged as an unframed gap a few columns wide, with the
                # lamina behind it for a wall (tcia L5 on 1-2 mm slices: its back placed 4 mm into the arch)
                continue
            closure = min(rows[upper].max(), rows[lower].max()) - inner
            if best is None or closure > best[0]:
                best = (closure, a, b)
    if best is None:
        return None
    _, a, b = best
    return _ridge_surface(prof, a, -1), _ridge_surface(prof, b, +1)


def _ridge_surface(prof: np.ndarray, ridge: int, outward: int) -> float:
    """Outer surface of the wall whose cortex is the ridge at ``ridge`` (outward: -1 anterior, +1 posterior).

    The shell model is fitted from SHELL_FIT_OUT_MM outside to SHELL_FIT_IN_MM inside the ridge; if
    the fit fails, the surface of a sharp wall: half a shell outside the ridge.
    """
    if outward < 0:
        lo, hi = ridge - T.SHELL_FIT_OUT_MM, ridge + T.SHELL_FIT_IN_MM + 1
    else:
        lo, hi = ridge - T.SHELL_FIT_IN_MM, ridge + T.SHELL_FIT_OUT_MM + 1
    surface = shell_surface(prof, lo, hi, -outward, float(ridge))
    return ridge + outward * 0.5 * T.CORTEX_SHELL_MM if surface is None else surface


def _framed_mask(mid: np.ndarray, top: int, bottom: int) -> np.ndarray | None:
    """Per AP column of the mid-sagittal plane: is it closed by an endplate at both discs?

    In a body's columns the row profile rises at both ends, into the endplates beside the discs;
    in the canal, in front of the body and through a vessel it runs on flat through the discs.
    """
    if bottom - top < T.BODY_MIN_HEIGHT_MM:
        return None
    # the darker part of the middle rows: a bone island or sclerosis there must not hide the frame
    inner = np.percentile(mid[_middle_rows(top, bottom)], 25, axis=0)
    upper, lower = _endplate_rows(top, bottom)
    marrow = inner >= T.FRAMED_MARROW_MIN_HU
    framed = (np.minimum(mid[upper].max(axis=0), mid[lower].max(axis=0)) - inner >= T.WALL_RIDGE_HU) & marrow
    # bridge a few columns where one endplate is hidden (Schmorl node, vein, bone island); the canal
    # and the space in front of the body are far wider. Fat is never bridged: a strip of it between the
    # anterior wall and tissue framed by osteophytes above and below (ts-example L4) is outside the body.
    return ndimage.binary_closing(framed, np.ones(T.FRAME_GAP_MM + 1, bool)) & marrow


def _framed_columns(framed: np.ndarray, ca: int) -> tuple[int, int] | None:
    """First and last column of the body's run of framed columns at the curve (None: no such run).

    The straightened curve runs through the body's centre, or at worst just behind the body
    (where the centring follows the canal); the laminae and a sloping spinous process behind the
    canal can look framed too, but lie further back.
    """
    near = T.CURVE_OFF_BODY_MM
    runs = [(x, y) for x, y in segments(framed)
            if y - x + 1 >= T.WALL_RIDGE_MIN_SPACING_MM and x - near <= ca <= y + near]
    return runs[0] if runs else None


def _wall_surface(prof: np.ndarray, peaks: np.ndarray, end: int, outward: int, inner: float) -> float | None:
    """Outer surface of the wall at one end of the body's run of columns."""
    near = T.WALL_NEAR_RUN_MM
    bone = max(inner + T.WALL_RIDGE_HU, T.BODY_SEGMENT_HU)
    ridges = [int(p) for p in peaks if abs(p - end) <= near and prof[p] >= bone]
    if not ridges:
        ridges = [int(p) for p in peaks if prof[p] >= bone and _wall_inside_run(prof, int(p), end, outward, inner)]
    if ridges:
        return _ridge_surface(prof, max(ridges, key=lambda p: outward * p), outward)  # the body's last bone
    # no ridge: a step from the body's level down to the tissue outside, placed at half height
    span = prof[max(0, min(end, end + outward * 2 * near)):max(end, end + outward * 2 * near) + 1]
    if len(span) == 0:
        return None
    outside = float(span.min())
    if inner - outside < T.WALL_RIDGE_HU:
        return None  # nothing darker outside: no wall to measure
    start = end - outward * near
    start = start if 0 <= start < len(prof) and prof[start] >= 0.5 * (inner + outside) else end
    return _crossing(prof, start, outward, 0.5 * (inner + outside))


def _wall_inside_run(prof: np.ndarray, ridge: int, end: int, outward: int, inner: float) -> bool:
    """Whether a cortical ridge inside the body's run of framed columns, up to WALL_INSIDE_RUN_MM from its
    end, is the wall: the columns from it to the end are darker than marrow (tissue framed by
    osteophytes above and below runs on in front of a degenerate body: ts-example L5, 5 mm)."""
    depth = outward * (end - ridge)
    if not T.WALL_NEAR_RUN_MM < depth <= T.WALL_INSIDE_RUN_MM:
        return False
    beyond = prof[min(ridge + 2 * outward, end):max(ridge + 2 * outward, end) + 1]
    return len(beyond) > 0 and float(np.median(beyond)) < inner - 0.5 * T.WALL_RIDGE_HU


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
