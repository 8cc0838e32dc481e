"""The vertebral bodies' centre line on a straightened volume (rows, ap, lat; see straighten.py).

The coarse spine path runs through body, canal or arch; straightening again along the bodies'
centres puts every body upright on the straightened axis, where discs and endplates are read.
On each cross-section the body is a cortical ring (its marrow may be dark): the centres of the
lobes the cortex encloses are the candidates, and one smooth track through them by dynamic
programming is the centre line. Blurred 3 mm scans, whose thin cortex stays below the cortical
level, fall back to thresholded density profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.walls import segments
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding


def body_offsets(st: Straightened) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate centre lines of the vertebral bodies, likeliest first: per row, the ap and lat offset (mm)
    of the body centre from the current curve.

    First from the cortical frames of the cross-sections (one smooth track through the lobes the
    cortex encloses, whatever the marrow density). Where too few rows show a body or the canal
    behind it (blurred 3 mm scans, whose thin cortex stays below the cortical level), from density
    profiles on the curve's own mid-sagittal plane; where enough rows show the canal but too few
    (BODY_RING_MIN_SHARE) a body, the profiles' line is offered after the track (a 3 mm sagittal
    reformat of an osteoporotic chest: the canal's ring closed on most sections, the bodies' side walls,
    averaged across the slabs, on 29 of 335, and the track straightened nothing); and, where the curve
    runs MIRROR_AXIS_OFF_MM or more (median) from the planes the cross-sections mirror about, on those
    planes before the curve's own: the caller keeps the
    one along which more bodies are measured, the first on a tie (pipeline.straightened_spine). Neither is
    right everywhere: on a 3 mm osteoporotic chest phantom whose path ran down one side of the arch, the
    curve's plane cut a pedicle and put the bodies in the canal; on ts-example's lower field, whose path
    also ran beside the arch, the curve's plane measured L5 and the mirror planes' line none. On a tie the
    vertebrae's own midline is the better evidence: on two 3 mm scoliotic phantoms each line measured as
    many bodies, and the curve's plane put a crop's T12 and L1 18-23 mm beside their middles (their ribs
    then read from there, every level two off).
    """
    ap_c, lat_c, seen = _enclosed_body_centres(st)
    candidates = []
    if seen >= T.BODY_RING_MIN_SHARE:
        candidates.append((_fill_smooth(ap_c), _fill_smooth(lat_c)))
        if np.isfinite(ap_c).mean() >= T.BODY_RING_MIN_SHARE:
            return candidates
    candidates.append(_profile_body_offsets(st))
    axis_mm = mirror_axis_offsets(st.volume, st.half_lat, st.step_mm)
    if np.median(np.abs(axis_mm)) >= T.MIRROR_AXIS_OFF_MM:
        candidates.insert(len(candidates) - 1, _profile_offsets_on_mirror_planes(st, axis_mm))
    return candidates


def _enclosed_body_centres(st: Straightened) -> tuple[np.ndarray, np.ndarray, float]:
    """Per row: centre (ap, lat mm from the curve) of the body's inscribed circle in cortex-enclosed bone,
    and the share of rows that show a body or the canal behind it.

    On a cross-section the body is a cortical ring (filled by marrow that may be dark); the arch and
    processes are thin, a contrast-filled aorta holds no cortex. Each row offers the centres of its
    filled lobes (_row_lobes); one smooth track through them (_track_lobes) is the body's centre line.
    Rows through a disc, or whose lobes the track passes by (the canal where the body's ring is open),
    are NaN; a row showing that canal still tells that the cross-sections read the spine.
    """
    v = st.volume
    h = st.step_mm
    # The body lies in front of the path (which runs through body, canal or arch): a large lumbar
    # body's front can be ~60 mm ahead of a path in the arch, its centre at most BODY_RING_BEHIND_MM behind.
    a1 = min(v.shape[1], st.half_ap + int(T.BODY_RING_BEHIND_MM / h) + 1)
    sections = v[:, :a1, :]
    enclosed = _enclosed(sections > T.CORTEX_LOW_HU)  # every row's in one pass: one call per row cost a third more
    lobes = [_row_lobes(sections[r], st.half_ap, st.half_lat, h, enclosed[r]) for r in range(len(sections))]
    ap_c, lat_c = _track_lobes(lobes, h)
    shows_canal = np.array([any(lobe.canal for lobe in row) for row in lobes], dtype=bool)
    seen = float((np.isfinite(ap_c) | shows_canal).mean()) if lobes else 0.0
    return ap_c, lat_c, seen


@dataclass(frozen=True)
class _Lobe:
    ap: float     # mm from the curve
    lat: float
    score: float  # how body-like: the front lobe of its row scores highest
    canal: bool = False  # the canal: a dark middle with a wall in front (CANAL_CORE_SHARE)


def _row_lobes(section: np.ndarray, half_ap: int, half_lat: int, h: float,
               enclosed: np.ndarray | None = None) -> list[_Lobe]:
    """Centres of the cortex-enclosed lobes of one cross-section (ap from the front, lat), scored.

    Where the pedicles and laminae close a ring around the canal, the filled canal is a second lobe
    behind the body, as wide as a thoracic body (radius ~14 mm). A lobe is a local maximum of the
    inscribed-circle radius at least BODY_LOBE_SHARE as deep as the deepest one, near the curve's
    midline. The front lobe is the body's; a lobe with a cortical wall on the midline in front of it is
    the canal behind a body whose ring did not close (cut by the edge of the field of view, or a thin
    cortex blurred by 3 mm slices); a lobe with a dark middle and a wall in front at BODY_RING_LOW_HU
    is that canal, which the track leaves out (TRACK_CANAL_SCORE). When the front lobe is the canal
    behind an osteoporotic body whose ring closes only at BODY_RING_LOW_HU, that body is put in front
    of it (_body_before_canal). ``enclosed``: what the cortex encloses (_enclosed), when already known.
    """
    cortex = section > T.CORTEX_LOW_HU
    low = section > T.BODY_RING_LOW_HU
    centres, depth = _lobe_centres(cortex, half_lat, h, enclosed)
    scores = [T.TRACK_FRONT_SCORE if k == 0 else T.TRACK_OTHER_SCORE for k in range(len(centres))]
    canal = [_is_canal(section, low, i, j, float(depth[i, j]), h) for i, j in centres]
    for k, (i, j) in enumerate(centres):
        if canal[k]:
            scores[k] = T.TRACK_CANAL_SCORE
        elif _bone_ahead(cortex, i, j, float(depth[i, j]), h):
            scores[k] = T.TRACK_CUT_SCORE
    if centres:
        body = _body_before_canal(section, low, centres[0], float(depth[centres[0]]), half_lat, h)
        if body is not None:
            centres.insert(0, body)
            scores = [T.TRACK_FRONT_SCORE, T.TRACK_OTHER_SCORE] + scores[1:]
            canal.insert(0, False)
    lobes = []
    for (i, j), score, is_canal in zip(centres, scores, canal):
        lat = (j - half_lat) * h
        lobes.append(_Lobe((i - half_ap) * h, lat, score - T.TRACK_LAT_COST * abs(lat), is_canal))
    return lobes


def _is_canal(section: np.ndarray, low: np.ndarray, i: int, j: int, radius: float, h: float,
              share: float = T.CANAL_CORE_SHARE) -> bool:
    """Whether the lobe at (i, j) is the spinal canal: cord and fluid in its middle (``share`` of its radius;
    CANAL_CORE_SHARE keeps clear of its own blurred ring) and a wall in front of it in ``low`` (the
    section above BODY_RING_LOW_HU: the body)."""
    return _middle_hu(section, i, j, radius, h, share) <= T.CANAL_MAX_HU and _bone_ahead(low, i, j, radius, h)


def _lobe_centres(cortex: np.ndarray, half_lat: int, h: float, enclosed: np.ndarray | None = None
                  ) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Centres (ap, lat index) of the lobes the cortex mask encloses, front to back, and the depth map (mm)."""
    if cortex.sum() < 10:
        return [], np.zeros(cortex.shape)
    enclosed = _enclosed(cortex) if enclosed is None else enclosed
    depth = ndimage.distance_transform_edt(enclosed) * h
    deepest = float(depth.max())
    if deepest < T.BODY_RING_MIN_RADIUS_MM:
        return [], depth
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
    return sorted(found.values()), depth


def _enclosed(cortex: np.ndarray) -> np.ndarray:
    """What a cortex mask encloses on each cross-section: the mask closed by one pixel, and every background
    region that does not reach the section's edge (4-connected) filled. ``cortex`` is one section (ap, lat)
    or a stack of them (rows, ap, lat); the structures reach within a section only, so a stack gives each
    section what it gets alone (scipy's binary_fill_holes, done by labelling: one pass for the stack)."""
    within = (1,) * (cortex.ndim - 2)  # the middle plane of a 3 x 3 x 3 structure for a stack
    square, cross = np.zeros((3,) * cortex.ndim, bool), np.zeros((3,) * cortex.ndim, bool)
    square[within] = True
    cross[within] = ndimage.generate_binary_structure(2, 1)
    closed = ndimage.binary_closing(cortex, square, iterations=1)
    regions, _ = ndimage.label(~closed, cross)
    edges = np.concatenate([regions[..., 0, :].ravel(), regions[..., -1, :].ravel(),
                            regions[..., :, 0].ravel(), regions[..., :, -1].ravel()])
    return ~np.isin(regions, edges[edges > 0])


def _body_before_canal(section: np.ndarray, low: np.ndarray, lobe: tuple[int, int], radius: float, half_lat: int,
                       h: float) -> tuple[int, int] | None:
    """Centre of the body in front of a front lobe that is the canal, or None when the lobe is no canal.

    A thin osteoporotic cortex blurred by 3 mm slices leaves the body's ring open at the cortical
    level while the pedicles and laminae close the canal's, so the canal is the front lobe. It is
    the canal when its middle is dark (CANAL_MAX_HU: cord and fluid, not marrow), a wall crosses
    the midline in front of it at BODY_RING_LOW_HU, and a lobe enclosed at that level adjoins it
    there (CANAL_BODY_GAP_MM; a contrast-filled aorta in front of a body is set off by fat) as a
    ring, darker inside than at its rim (a contrast-filled vessel is not). ``low`` is the section above
    BODY_RING_LOW_HU. The canal's middle is judged over half its radius here, not CANAL_CORE_SHARE (the
    quarter-radius test found more bodies in front of it and graded 3 mm phantoms worse).
    """
    i, j = lobe
    if not _is_canal(section, low, i, j, radius, h, share=0.5):
        return None
    centres, depth = _lobe_centres(low, half_lat, h)
    ahead = [(a, b) for a, b in centres if a < i - radius / h]  # centres in front of the canal's circle
    if not ahead:
        return None
    a, b = ahead[-1]  # the nearest lobe in front
    radius_ahead = float(depth[a, b])
    gap = float(np.hypot(a - i, b - j)) * h - radius_ahead - radius
    if gap > T.CANAL_BODY_GAP_MM or _middle_hu(section, a, b, radius_ahead, h) >= _rim_hu(section, a, b, radius_ahead, h):
        return None  # set off from the canal, or no darker inside than at its rim: a contrast-filled vessel
    return a, b


def _middle_hu(section: np.ndarray, i: int, j: int, radius: float, h: float, share: float = 0.5) -> float:
    """Mean HU over the middle of a lobe: a square reaching ``share`` of its inscribed radius to each side."""
    r = max(1, int(share * radius / h))
    return float(section[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean())


def _rim_hu(section: np.ndarray, i: int, j: int, radius: float, h: float) -> float:
    """Mean HU on the rim of a lobe's inscribed circle (from 2 mm inside to 1 mm outside its radius):
    a body's cortex there is brighter than its marrow; a contrast-filled vessel is no brighter at its edge."""
    ap, lat = np.ogrid[:section.shape[0], :section.shape[1]]
    d = np.hypot(ap - i, lat - j) * h
    return float(section[(d >= radius - 2.0) & (d <= radius + 1.0)].mean())


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
        if not row_lobes:
            continue  # a disc or an empty row: nothing to link
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
    ap_c = _front_segment_centres(st, v[:, :, c_lat - 5:c_lat + 6].mean(axis=2))
    rows = v.shape[0]
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


def _front_segment_centres(st: Straightened, mid: np.ndarray) -> np.ndarray:
    """Per row: the AP centre (mm from the curve) of the body on a mid-sagittal slab ``mid`` (rows, ap)."""
    # Osteoporotic marrow can be as dark as muscle: a body is then only its cortical frame on this
    # plane. Filling what the cortex encloses makes every body a solid segment again.
    filled = ndimage.binary_fill_holes(ndimage.binary_closing(mid > T.CORTEX_LOW_HU, iterations=2))
    mid = np.where(filled, np.maximum(mid, T.CORTEX_LOW_HU), mid)
    mid = ndimage.maximum_filter1d(mid, size=15, axis=0)
    mid = ndimage.gaussian_filter1d(mid, 1.0, axis=1)
    ap_c = np.full(mid.shape[0], np.nan)
    for r in range(mid.shape[0]):
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
    return _fill_smooth(ap_c)


def _profile_offsets_on_mirror_planes(st: Straightened, axis_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body centres from density profiles on the planes the cross-sections are mirror-symmetric about.

    Where the coarse path ran down one side of the arch (an osteoporotic body's thin cortex, blurred by
    3 mm slices, adds little bone on the midline, and the paired pedicles, pillars and rib heads win), the
    curve's own plane cuts a pedicle, where body, pedicle and lamina make one long segment: the body was
    put in the canal, 8-14 mm behind its middle, and no level was found. The mid-sagittal slab is then
    taken on each row's mirror plane, and that plane is the body's lateral centre.
    """
    v = st.volume
    axis = st.half_lat + np.rint(axis_mm / st.step_mm).astype(int)
    cols = np.clip(axis[:, None] + np.arange(-5, 6)[None, :], 0, v.shape[2] - 1)  # (rows, 11)
    mid = np.take_along_axis(v, np.broadcast_to(cols[:, None, :], (v.shape[0], v.shape[1], cols.shape[1])),
                             axis=2).mean(axis=2)  # (rows, ap)
    return _front_segment_centres(st, mid), _fill_smooth(axis_mm)


def mirror_axis_offsets(v: np.ndarray, c_lat: int, h: float) -> np.ndarray:
    """Per row of a straightened volume (rows, ap, lat): the lateral offset (mm) of the plane its cross-section
    is most mirror-symmetric about, within MIRROR_AXIS_REACH_MM of the curve, median-smoothed over a vertebra.

    A vertebra with its arch, processes and rib heads is left-right symmetric about its mid-sagittal plane,
    whatever its marrow; a coarse path can run down one side of the paired arch where an osteoporotic
    body's thin cortex adds little on the midline (3 mm phantoms whose back walls face the canal: the
    plane found lies within 1 mm of the body's middle where the curve ran 3-12 mm beside it).
    """
    bone = np.clip(v, 0.0, T.MIRROR_AXIS_CLIP_HU).astype(np.float32)
    # Every shift compares the same span, whole: near the volume's edge a shortened span of muscle, about
    # as uniform as soft tissue is, correlated 0.84-0.86 with its mirror image, as well as the vertebra
    # about its own plane (0.81-0.87), or better (a 3 mm scoliotic phantom: the plane put 20 mm to the
    # wrong side).
    reach = int(T.MIRROR_AXIS_REACH_MM / h)
    span = min(int(T.MIRROR_AXIS_SPAN_MM / h), min(c_lat, v.shape[2] - 1 - c_lat) - reach)
    shifts = np.arange(-reach, reach + 1)
    scores = np.full((v.shape[0], len(shifts)), -np.inf)
    d = np.arange(1, span + 1)
    for k, s in enumerate(shifts):
        a, b = bone[:, :, c_lat + s - d], bone[:, :, c_lat + s + d]
        norm = np.sqrt((a * a).sum(axis=(1, 2)) * (b * b).sum(axis=(1, 2)))
        scores[:, k] = np.where(norm > 0, (a * b).sum(axis=(1, 2)) / np.maximum(norm, 1e-6), -np.inf)
    best = shifts[np.argmax(scores, axis=1)] * h
    return ndimage.median_filter(best.astype(float), size=int(T.MIRROR_AXIS_SMOOTH_MM / h) | 1, mode="nearest")


def _fill_smooth(x: np.ndarray) -> np.ndarray:
    """Per-row offsets with gaps (NaN) interpolated, outliers removed and smoothed into a gentle curve.

    The straightened planes must not fan out across a body (BODY_TRACK_SMOOTH_MM): a step between two
    bodies' centres becomes a long, gentle bend.
    """
    ok = np.isfinite(x)
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    x = np.interp(idx, idx[ok], x[ok])
    x = ndimage.median_filter(x, size=31, mode="nearest")
    return ndimage.gaussian_filter1d(x, T.BODY_TRACK_SMOOTH_MM, mode="nearest")


def offsets_through_bodies(rows: int, centres: list[tuple[float, float]]) -> np.ndarray | None:
    """Per row: offset (mm, in depth or to the side) of a track through measured body centres, or None
    when it would not move.

    ``centres`` holds (row, offset mm) of the bodies whose outline was measured, cranial to caudal. The
    first track follows cross-sections (or density profiles on thick slices) smoothed over several
    bodies; in a strong lordosis it lags behind the bodies (ts-example L3-L5: 7-11 mm behind their
    centres), the planes cut the lower lumbar bodies obliquely and fan out across them. The measured
    outlines say where each body's centre is; a track through them is linear between bodies, constant
    beyond the ends, smoothed like the first (BODY_TRACK_SMOOTH_MM).
    """
    if len(centres) < 2 or max(abs(ap) for _, ap in centres) < T.RECENTRE_MIN_MM:
        return None
    r, ap = np.array(centres).T
    track = np.interp(np.arange(rows), r, ap)
    return ndimage.gaussian_filter1d(track, T.BODY_TRACK_SMOOTH_MM, mode="nearest")


def end_curves(st: Straightened, bodies: list[BodyFinding], centres: np.ndarray,
               track: np.ndarray) -> tuple[np.ndarray, bool]:
    """``track`` (per row, LPS) with each end where the curve crosses the outermost measured body END_CURVE_OFF_DEG
    or more off the chord to the next one's centre replaced, from the field's end to the second measured body,
    by the parabola through the three outermost measured centres; and whether an end was replaced.

    Why: beyond the outermost measured body the offset track (offsets_through_bodies) is held constant against
    the curve it corrects, so the field's first body keeps whatever direction the coarse path had there. On a
    3 mm phantom field ending in T9 the coarse path wandered from the bodies to the arches over its top 50 mm;
    the curve passed within a millimetre of T9's centre yet crossed it 20 degrees off its axis, and T9 read a
    false grade 2. The bodies' centres say which way the column runs; the parabola keeps its bend (T9's axis
    lies 3 degrees off the chord to T10). Only where the three outermost bodies share their discs and their two
    chords bend less than END_CHORD_MAX_BEND_DEG: a misread centre bends them more, and a parabola through it
    would turn the end wrongly. ``bodies``: the measured bodies, cranial first; ``centres``: their centres
    (LPS, one row each)."""
    out = track.copy()
    rows = np.arange(len(st.points), dtype=float)
    replaced = False
    n = len(bodies)
    for outermost in ((0, 1, 2), (n - 1, n - 2, n - 3)):
        if n < 3 or not all(bodies[min(a, b)].bottom_disc == bodies[max(a, b)].top_disc
                            for a, b in zip(outermost, outermost[1:])):
            continue
        r1, r2, r3 = (bodies[i].centre_row for i in outermost)
        c1, c2, c3 = (centres[i] for i in outermost)
        chord, next_chord = c2 - c1, c3 - c2
        if _angle_deg(chord, next_chord) > T.END_CHORD_MAX_BEND_DEG:
            continue
        if _angle_deg(chord, st.tangents[int(round(r1))], either_way=True) < T.END_CURVE_OFF_DEG:
            continue
        span = rows <= r2 if r1 < r2 else rows >= r2
        r = rows[span]
        lagrange = [(r - rj) * (r - rk) / ((ri - rj) * (ri - rk)) for ri, rj, rk in ((r1, r2, r3), (r2, r1, r3), (r3, r1, r2))]
        parabola = lagrange[0][:, None] * c1 + lagrange[1][:, None] * c2 + lagrange[2][:, None] * c3
        # the parabola alone beyond the outermost body, handing over to the track towards the second
        w = np.clip((r - r2) / (r1 - r2), 0.0, 1.0)[:, None]
        out[span] = w * parabola + (1 - w) * track[span]
        replaced = True
    return out, replaced


def _angle_deg(a: np.ndarray, b: np.ndarray, either_way: bool = False) -> float:
    """Angle (degrees) between two directions (``either_way``: as lines, whichever way each points)."""
    cos = float(a @ b) / (float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0)
    return float(np.degrees(np.arccos(np.clip(abs(cos) if either_way else cos, -1.0, 1.0))))
