"""Vertebral bodies, discs and the six Genant keypoints on the straightened spine.

All arrays here are straightened volumes (row, ap, lat) at 1 mm (see straighten.py): rows run
cranial -> caudal, ap anterior -> posterior, lat along S. Discs are minima of the body-core
intensity along the rows; endplates are the half-level crossings between the disc minimum and the
bony endplate next to it, interpolated to sub-millimetre precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from screening_node.analysis import thresholds as T
from screening_node.analysis.endplates import ap_extent, body_keypoints, lat_half_width, segments
from screening_node.analysis.straighten import Straightened


@dataclass(frozen=True)
class BodyFinding:
    """One body in straightened coordinates (rows, ap mm, lat mm relative to the curve)."""
    top_disc: float | None     # row of the disc above (None: cut by the field of view)
    bottom_disc: float | None  # row of the disc below
    centre_row: float
    ap_range: tuple[float, float]  # anterior, posterior edge (mm from the curve)
    lat_half_width: float
    # keypoints as (row, ap mm, lat mm), in KEYPOINT_NAMES order; None when not measurable
    keypoints: dict[str, tuple[float, float, float]] | None
    reason: str | None
    cut_by_fov: bool = False  # the field of view ends inside this body (only part of it is in view)


def body_offsets(st: Straightened) -> tuple[np.ndarray, np.ndarray]:
    """Per row: ap and lat offset (mm) of the vertebral body centre from the current curve.

    First from the cortical frames of the cross-sections (one smooth track through the lobes the
    cortex encloses, whatever the marrow density); where too few rows are on that track (blurred
    3 mm scans, whose thin cortex stays below the cortical level), from density profiles.
    """
    found = _enclosed_body_centres(st)
    if np.isfinite(found[0]).mean() >= T.BODY_RING_MIN_SHARE:
        return _fill_smooth(found[0]), _fill_smooth(found[1])
    return _profile_body_offsets(st)


def _enclosed_body_centres(st: Straightened) -> tuple[np.ndarray, np.ndarray]:
    """Per row: centre (ap, lat mm from the curve) of the body's inscribed circle in cortex-enclosed bone.

    On a cross-section the body is a cortical ring (filled by marrow that may be dark); the arch and
    processes are thin, a contrast-filled aorta holds no cortex. Each row offers the centres of its
    filled lobes (_row_lobes); one smooth track through them (_track_lobes) is the body's centre line.
    Rows through a disc, or whose lobes the track passes by, are NaN.
    """
    v = st.volume
    h = st.step_mm
    # The body lies in front of the path (which runs through body, canal or arch): a large lumbar
    # body's front can be ~60 mm ahead of a path in the arch, its centre at most BODY_RING_BEHIND_MM behind.
    a1 = min(v.shape[1], st.half_ap + int(T.BODY_RING_BEHIND_MM / h) + 1)
    lobes = [_row_lobes(v[r, :a1, :], st.half_ap, st.half_lat, h) for r in range(v.shape[0])]
    return _track_lobes(lobes, h)


@dataclass(frozen=True)
class _Lobe:
    ap: float     # mm from the curve
    lat: float
    score: float  # how body-like: the front lobe of its row scores highest


def _row_lobes(section: np.ndarray, half_ap: int, half_lat: int, h: float) -> list[_Lobe]:
    """Centres of the cortex-enclosed lobes of one cross-section (ap from the front, lat), scored.

    Where the pedicles and laminae close a ring around the canal, the filled canal is a second lobe
    behind the body, as wide as a thoracic body (radius ~14 mm). A lobe is a local maximum of the
    inscribed-circle radius at least BODY_LOBE_SHARE as deep as the deepest one, near the curve's
    midline. The front lobe is the body's; a lobe with a cortical wall on the midline in front of it is
    the canal behind a body whose ring did not close (cut by the edge of the field of view).
    """
    cortex = section > T.CORTEX_LOW_HU
    if cortex.sum() < 10:
        return []
    filled = ndimage.binary_fill_holes(ndimage.binary_closing(cortex, np.ones((3, 3), bool), iterations=1))
    depth = ndimage.distance_transform_edt(filled) * h
    deepest = float(depth.max())
    if deepest < T.BODY_RING_MIN_RADIUS_MM:
        return []
    size = 2 * int(T.BODY_RING_MIN_RADIUS_MM / h) + 1
    peaks = (depth == ndimage.maximum_filter(depth, size=size)) & (
        depth >= max(T.BODY_RING_MIN_RADIUS_MM, T.BODY_LOBE_SHARE * deepest))
    lat_off = np.abs(np.arange(depth.shape[1]) - half_lat) * h
    peaks &= (lat_off <= T.BODY_RING_MAX_LAT_MM)[None, :]
    found: dict[int, tuple[int, int]] = {}
    for i, j in zip(*np.nonzero(peaks)):  # one centre per lobe row-band: the one nearest the midline
        key = int(i * h // T.BODY_RING_MIN_RADIUS_MM)
        if key not in found or abs(j - half_lat) < abs(found[key][1] - half_lat):
            found[key] = (int(i), int(j))
    centres = sorted(found.values())
    lobes = []
    for k, (i, j) in enumerate(centres):
        score = T.TRACK_FRONT_SCORE if k == 0 else T.TRACK_OTHER_SCORE
        if _bone_ahead(cortex, i, j, float(depth[i, j]), h):
            score = T.TRACK_CUT_SCORE
        lat = (j - half_lat) * h
        lobes.append(_Lobe((i - half_ap) * h, lat, score - T.TRACK_LAT_COST * abs(lat)))
    return lobes


def _bone_ahead(cortex: np.ndarray, i: int, j: int, radius: float, h: float) -> bool:
    """Whether a cortical wall crosses the midline in front of the lobe at (i, j), within a body's depth.

    Nothing bony lies in front of a vertebral body on its midline (the aorta has no cortex, the
    sternum is far). A row of a 7 mm strip that is mostly cortex is a wall; speckle in a
    contrast-filled aorta (noise above the cortex level) shows as isolated samples.
    """
    stop = i - int((radius + T.BODY_AHEAD_GAP_MM) / h)
    start = max(0, i - int(T.BODY_MAX_AP_MM / h))
    half = int(T.BODY_AHEAD_HALF_WIDTH_MM / h)
    if stop <= start:
        return False
    strip = cortex[start:stop, max(0, j - half):j + half + 1]
    return bool((strip.mean(axis=1) >= T.BODY_AHEAD_WALL_SHARE).any())


def _track_lobes(lobes: list[list[_Lobe]], h: float) -> tuple[np.ndarray, np.ndarray]:
    """The smoothest, most body-like track through the rows' lobes (dynamic programming).

    A path collects each visited lobe's score, pays TRACK_JUMP_COST per mm it moves between visited
    rows beyond what the body centre itself does (TRACK_WOBBLE_MM, plus TRACK_DRIFT per mm along the
    spine) and TRACK_SKIP_COST per mm of rows it leaves out (discs hold no lobe; rows whose only lobe is the
    canal are better left out than jumped to). Rows left out are NaN.
    """
    rows = len(lobes)
    node_row: list[int] = []
    node_pos: list[tuple[float, float]] = []
    best: list[float] = []
    back: list[int] = []
    max_gap = int(T.TRACK_MAX_GAP_MM / h)
    first = 0  # index of the first node within reach of the current row
    for r, row_lobes in enumerate(lobes):
        while first < len(node_row) and node_row[first] < r - max_gap:
            first += 1
        prev_rows = np.array(node_row[first:])
        prev_pos = np.array(node_pos[first:]).reshape(-1, 2)
        prev_best = np.array(best[first:])
        for lobe in row_lobes:
            value, came = -T.TRACK_SKIP_COST * r * h, -1  # start the track here
            if len(prev_rows):
                gap = (r - prev_rows) * h
                move = np.hypot(prev_pos[:, 0] - lobe.ap, prev_pos[:, 1] - lobe.lat)
                jump = np.maximum(0.0, move - T.TRACK_WOBBLE_MM - T.TRACK_DRIFT * gap)
                total = prev_best - T.TRACK_JUMP_COST * jump - T.TRACK_SKIP_COST * (gap - h)
                k = int(np.argmax(total))
                if total[k] > value:
                    value, came = float(total[k]), first + k
            node_row.append(r)
            node_pos.append((lobe.ap, lobe.lat))
            best.append(value + lobe.score)
            back.append(came)
    ap_c = np.full(rows, np.nan)
    lat_c = np.full(rows, np.nan)
    if not best:
        return ap_c, lat_c
    end = int(np.argmax(np.array(best) - T.TRACK_SKIP_COST * (rows - 1 - np.array(node_row)) * h))
    while end >= 0:
        ap_c[node_row[end]], lat_c[node_row[end]] = node_pos[end]
        end = back[end]
    return ap_c, lat_c


def _profile_body_offsets(st: Straightened) -> tuple[np.ndarray, np.ndarray]:
    """Per row body centre from thresholded density profiles (fallback when no cortical ring shows)."""
    v = st.volume
    c_lat = st.half_lat
    mid = v[:, :, c_lat - 5:c_lat + 6].mean(axis=2)               # (rows, ap)
    # Osteoporotic marrow can be as dark as muscle: a body is then only its cortical frame on this
    # plane. Filling what the cortex encloses makes every body a solid segment again.
    filled = ndimage.binary_fill_holes(ndimage.binary_closing(mid > T.CORTEX_LOW_HU, iterations=2))
    mid = np.where(filled, np.maximum(mid, T.CORTEX_LOW_HU), mid)
    mid = ndimage.maximum_filter1d(mid, size=15, axis=0)
    mid = ndimage.gaussian_filter1d(mid, 1.0, axis=1)
    rows = v.shape[0]
    ap_c = np.full(rows, np.nan)
    for r in range(rows):
        # The path runs through the body, its canal or its arch, so the body's posterior wall is at
        # most a few cm in front of it. The body is the most anterior thick bone segment reaching that
        # far back: a contrast-filled aorta ends further in front, the arch lies behind the body.
        # Osteoporotic marrow falls below the first level; the second still separates it from fat,
        # muscle and the canal's fluid.
        for level in (T.BODY_SEGMENT_HU, T.BODY_SEGMENT_LOW_HU):
            near = [(a, b) for a, b in segments(mid[r] > level)
                    if T.BODY_MIN_AP_MM <= b - a + 1 <= T.BODY_MAX_AP_MM and b - st.half_ap >= -T.BODY_BEHIND_PATH_MM]
            if near:
                a, b = near[0]
                ap_c[r] = 0.5 * (a + b) - st.half_ap
                break
    ap_c = _fill_smooth(ap_c)
    lat_c = np.full(rows, np.nan)
    lat_prof = ndimage.maximum_filter1d(v.mean(axis=1), size=15, axis=0)  # (rows, lat) coarse; refined below
    for r in range(rows):
        a = int(round(ap_c[r])) + st.half_ap
        prof = v[r, max(0, a - 8):a + 9, :].mean(axis=0) if 0 <= a < v.shape[1] else lat_prof[r]
        prof = ndimage.gaussian_filter1d(prof, 1.0)
        segs = [(x, y) for x, y in segments(prof > T.BODY_SEGMENT_HU - 30) if x <= c_lat + 15 and y >= c_lat - 15]
        if segs:
            x, y = max(segs, key=lambda s: s[1] - s[0])
            if y - x + 1 <= 2 * T.STRAIGHT_HALF_LAT_MM:
                lat_c[r] = 0.5 * (x + y) - c_lat
    return ap_c, _fill_smooth(lat_c)


def _fill_smooth(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    x = np.interp(idx, idx[ok], x[ok])
    x = ndimage.median_filter(x, size=31, mode="nearest")
    return ndimage.gaussian_filter1d(x, 8.0, mode="nearest")


def find_bodies(st: Straightened) -> tuple[list[BodyFinding], np.ndarray]:
    """Discs and bodies along the straightened axis; returns bodies cranial -> caudal and the core profile."""
    v = st.volume
    ca, cl = st.half_ap, st.half_lat
    core = v[:, ca - 8:ca + 9, cl - 6:cl + 7].mean(axis=(1, 2))
    core_s = ndimage.gaussian_filter1d(core, 1.5)
    valid = core > -500  # rows inside the scanned volume
    discs = find_discs(core_s, lateral_walls(v, ca, cl), valid)
    # AP extent of the body per row, from the mid-sagittal profile
    mid = ndimage.gaussian_filter1d(v[:, :, cl - 3:cl + 4].mean(axis=2), 1.0, axis=1)
    first = int(np.argmax(valid)) if valid.any() else 0
    last = len(valid) - 1 - int(np.argmax(valid[::-1])) if valid.any() else len(valid) - 1
    bounds = [None] + discs + [None]
    bodies = []
    for k, (top, bottom) in enumerate(zip(bounds[:-1], bounds[1:])):
        if top is None and bottom is None:
            break  # no disc at all: no body can be delimited
        r0 = top if top is not None else max(first, bottom - T.CUT_BODY_MAX_MM)
        r1 = bottom if bottom is not None else min(last, top + T.CUT_BODY_MAX_MM)
        if r1 - r0 < T.BODY_MIN_HEIGHT_MM:
            continue
        fused = top is not None and bottom is not None and bottom - top > T.BODY_MAX_PITCH_MM
        if fused:
            # No vertebra is this tall: below S1 the sacrum is fused (no discs), elsewhere a disc was
            # missed. Only the body under the top disc is placed, one pitch long (its upper neighbour's).
            above = bounds[k - 1] if k > 0 else None
            r1 = min(last, top + (top - above if above is not None else T.CUT_BODY_MAX_MM))
        centre = 0.5 * (r0 + r1)
        ap_range = ap_extent(mid, int(r0), int(r1), ca)
        lat_w = lat_half_width(v, int(centre), ca + int(np.mean(ap_range) if ap_range else 0), cl)
        if fused:
            bodies.append(BodyFinding(float(top), None, centre, ap_range or (-15.0, 15.0), lat_w, None,
                                      "no disc below within a vertebra's pitch (fused sacrum or a missed disc)"))
            continue
        if top is None or bottom is None:
            bodies.append(BodyFinding(top, bottom, centre, ap_range or (-15.0, 15.0), lat_w, None,
                                      "cut by the field of view", cut_by_fov=True))
            continue
        if ap_range is None:
            bodies.append(BodyFinding(top, bottom, centre, (-15.0, 15.0), lat_w, None,
                                      "body outline not found on the mid-sagittal plane"))
            continue
        kps, reason = body_keypoints(v, st, top, bottom, ap_range)
        bodies.append(BodyFinding(float(top), float(bottom), centre, ap_range, lat_w, kps, reason))
    return bodies, core_s


def find_discs(core: np.ndarray, walls: np.ndarray, valid: np.ndarray) -> list[int]:
    """Disc rows: a minimum of the body core whose lateral cortical walls vanish too.

    A plain core minimum is not enough: the fatty centre of a body can be as dark as a disc.
    But inside a body the lateral cortical walls stay bright, while at a disc they are gone
    (the lateral walls are also unaffected by the sagittal tilt of lordotic discs).
    """
    minima, _ = signal.find_peaks(-core, prominence=0.5 * T.DISC_PROMINENCE_HU)
    found: list[tuple[int, float]] = []
    weak: list[tuple[int, float]] = []  # core minima without the wall evidence
    n = len(core)
    for m in minima:
        if not valid[m]:
            continue
        depth, width = _dip(core, int(m))
        if width > T.DISC_MAX_WIDTH_MM or depth < T.DISC_WEAK_PROMINENCE_HU:
            continue
        weak.append((int(m), float(depth)))
        if depth < T.DISC_PROMINENCE_HU:
            continue
        around = walls[max(0, m - 20):min(n, m + 21)]
        ratio = walls[max(0, m - 2):m + 3].min() / max(float(np.median(around)), 1.0)
        if ratio <= T.DISC_WALL_RATIO:
            found.append((int(m), float(depth) * (1.0 - ratio)))
    kept: list[tuple[int, float]] = []
    for m, score in sorted(found, key=lambda x: -x[1]):  # strongest first, then enforce the minimal pitch
        if all(abs(m - k) >= T.DISC_MIN_SPACING_MM for k, _ in kept):
            kept.append((m, score))
    discs = sorted(m for m, _ in kept)
    return _fill_gaps(discs, weak, valid, walls)


def _dip(core: np.ndarray, m: int) -> tuple[float, float]:
    """Depth (HU) of the core minimum at row m below the lower of the two endplates beside it, and its
    width (rows) at half that depth.

    The endplates are the brightest rows within DISC_REACH_MM on either side (osteopenic marrow can be
    flat, so the nearest intensity peak may lie a whole body away). A disc is a narrow dip; a dark
    marrow centre spans most of its body's height.
    """
    reach = int(T.DISC_REACH_MM)
    lo, hi = max(0, m - reach), min(len(core), m + reach + 1)
    depth = min(float(core[lo:m + 1].max()), float(core[m:hi].max())) - float(core[m])
    below = core[lo:hi] < core[m] + 0.5 * depth
    a = b = m - lo
    while a > 0 and below[a - 1]:
        a -= 1
    while b < len(below) - 1 and below[b + 1]:
        b += 1
    return depth, float(b - a + 1)


def _fill_gaps(discs: list[int], weak: list[tuple[int, float]], valid: np.ndarray, walls: np.ndarray
               ) -> list[int]:
    """Where the pitch of confident discs leaves room for a missed disc, take the deepest weak candidate.

    The vertebral pitch changes slowly along the spine (upper thoracic ~20 mm, lower lumbar ~38 mm),
    so a gap of 1.5 local pitches (or an end of the spine longer than 0.6 pitch) holds a disc the wall
    test missed (e.g. beside the sacral alae, or a sclerotic endplate). The local pitch is the median of
    the nearest confident intervals: a single spine-wide pitch would split tall lumbar bodies and
    miss discs between short thoracic ones.
    """
    if len(discs) < 2:
        return discs
    out = list(discs)
    # (middle, length, ends) of the intervals between confident discs only: fills must not shrink the pitch
    spans = [(0.5 * (a + b), b - a, a, b) for a, b in zip(discs[:-1], discs[1:])]

    def pitch(a: float, b: float) -> float:
        """Expected pitch near rows a..b, from the nearest confident intervals other than a..b itself."""
        others = [s for s in spans if (s[2], s[3]) != (a, b)] or spans
        near = sorted(others, key=lambda s: abs(s[0] - 0.5 * (a + b)))[:T.PITCH_NEIGHBOURS]
        return float(np.median([s[1] for s in near]))

    for _ in range(30):  # each fill can open the next end gap
        first = int(np.argmax(valid))
        last = len(valid) - 1 - int(np.argmax(valid[::-1]))
        # Beyond an end disc the next one is expected one local pitch further on: the median of the
        # intervals at that end, filled ones included (the pitch changes slowly, and the confident discs
        # may all lie in a taller region of the spine, e.g. the lumbar one of a thin-sliced chest).
        p0 = float(np.median(np.diff(out[:T.PITCH_NEIGHBOURS])))
        p1 = float(np.median(np.diff(out[-T.PITCH_NEIGHBOURS:])))
        windows = [(out[0] - 1.3 * p0, out[0] - 0.6 * p0, out[0] - p0),
                   (out[-1] + 0.6 * p1, out[-1] + 1.3 * p1, out[-1] + p1)]
        for a, b in zip(out[:-1], out[1:]):
            p = pitch(a, b)
            if b - a > 1.5 * p:
                windows.append((a + 0.6 * p, b - 0.6 * p, None))
        added = False
        for lo, hi, expected in windows:
            lo, hi = max(lo, first), min(hi, last)
            cands = [(m, d) for m, d in weak if lo <= m <= hi and m not in out]
            if cands:
                out.append(_likeliest_disc(cands, expected))
                added = True
                continue
            # Osteoporotic marrow is as dark as disc: no core minimum, but the lateral cortices still vanish.
            # Lateral samples below fat lie outside the patient or the scanned field: no evidence there.
            a, b = int(np.ceil(lo)), int(np.floor(hi)) + 1
            while a < b and walls[a] < T.MARROW_MIN_HU:
                a += 1
            while b > a and walls[b - 1] < T.MARROW_MIN_HU:
                b -= 1
            if b - a >= 3:
                m = a + int(np.argmin(walls[a:b]))
                around = float(np.median(walls[max(0, a - 20):b + 20]))
                dip = a < m < b - 1  # a true dip, not a ramp into the window's edge
                if dip and walls[m] <= T.DISC_GAP_WALL_RATIO * max(around, 1.0) and m not in out:
                    out.append(m)
                    added = True
        out.sort()
        if not added:
            break
    return out


def _likeliest_disc(cands: list[tuple[int, float]], expected: float | None) -> int:
    """The deepest dip in a window, or where a disc is expected, the one nearest that row among the
    clear dips (at least half the deepest; a basivertebral vein mid-body dips less than a disc)."""
    deepest = max(d for _, d in cands)
    if expected is None:
        return max(cands, key=lambda x: x[1])[0]
    clear = [m for m, d in cands if d >= 0.5 * deepest]
    return min(clear, key=lambda m: abs(m - expected))


def lateral_walls(v: np.ndarray, ca: int, cl: int) -> np.ndarray:
    """Per row: the dimmer of the two lateral body walls (max HU 8-32 mm either side, near the curve)."""
    cor = v[:, max(0, ca - 10):ca + 6, :].mean(axis=1)
    left = cor[:, max(0, cl - 32):cl - 8].max(axis=1)
    right = cor[:, cl + 8:cl + 32].max(axis=1)
    return ndimage.gaussian_filter1d(np.minimum(left, right), 1.0)
