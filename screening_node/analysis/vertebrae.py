"""Discs and vertebral bodies along the straightened spine.

All arrays here are straightened volumes (row, ap, lat) at 1 mm (see straighten.py), centred on
the bodies (body_centre.py): rows run cranial -> caudal, ap anterior -> posterior, lat along S.
Discs are narrow minima of the body-core intensity where the lateral cortices vanish; each body
between two discs is measured by endplates.py (walls and the six Genant keypoints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage, signal

from screening_node.analysis import thresholds as T
from screening_node.analysis.endplates import ENDPLATES_CUT, ENDPLATES_NOT_FOUND, body_keypoints
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.walls import ap_extent, lat_half_width

OUTLINE_NOT_FOUND = "body outline not found on the mid-sagittal plane"
UNSEEN_DISC = ("one of two vertebrae whose disc was not seen (a span of two pitches, split at its middle "
               "to count the levels): not measured")


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

    @property
    def ap_centre(self) -> float:
        """The body's centre between its walls (mm from the curve): where its centroid and midline are taken."""
        return float(np.mean(self.ap_range))

    @property
    def whole(self) -> bool:
        """Both of the body's discs are in view (not cut by the field, not a fused span)."""
        return self.top_disc is not None and self.bottom_disc is not None


def disc_rows(bodies: list[BodyFinding]) -> list[float]:
    """Rows of the discs that bound the bodies, cranial -> caudal."""
    return sorted({d for b in bodies for d in (b.top_disc, b.bottom_disc) if d is not None})


def same_discs(first: list[float], again: list[float]) -> bool:
    """Whether two disc lists (rows of one straightening) pair one to one, each disc the other's nearest.

    A disc of one list may go unpaired only beyond the other's ends (a cut body at the edge of the
    field, whose disc one straightening shows and the other does not). Pairing has no distance limit
    (a disc tilted against the first planes maps 10 mm off), so a disc found inside a body, paired with
    a real one beyond the other list's end, would pass: the second list may also hold no body shorter
    than SAME_DISCS_MIN_SPAN of the first's shortest (a crop of verse19-007 cut in T10: T11 read 17 mm
    tall between a false disc and its lower one, where the first straightening read 29, a false crush).
    """
    if not first or not again:
        return not first and not again
    if len(first) > 1 and len(again) > 1 and \
            float(np.diff(again).min()) < T.SAME_DISCS_MIN_SPAN * float(np.diff(first).min()):
        return False

    def nearest(x: float, rows: list[float]) -> float:
        return min(rows, key=lambda r: abs(r - x))

    for mine, other in ((first, again), (again, first)):
        for x in mine:
            paired = nearest(nearest(x, other), mine) == x
            if not paired and other[0] <= x <= other[-1]:
                return False
    return True


def body_block(st: Straightened, body: BodyFinding, ap: tuple[float, float], rows_below: int = 0) -> np.ndarray:
    """The straightened volume over the body's rows, from disc to disc (12 rows from its centre where a disc
    is not in view; plus rows_below), within the ap range (mm from the curve), every lateral column."""
    v = st.volume
    h = st.step_mm
    r0 = int(body.top_disc if body.top_disc is not None else body.centre_row - 12)
    r1 = int(body.bottom_disc if body.bottom_disc is not None else body.centre_row + 12) + rows_below
    r0, r1 = max(0, r0), min(v.shape[0], r1 + 1)
    a0, a1 = max(0, int(st.half_ap + ap[0] / h)), min(v.shape[1], int(st.half_ap + ap[1] / h) + 1)
    return v[r0:r1, a0:a1, :]


def mid_sagittal(st: Straightened) -> np.ndarray:
    """The mid-sagittal plane (rows, ap) the walls are found on: a 7 mm wide slab, smoothed along ap."""
    cl = st.half_lat
    return ndimage.gaussian_filter1d(st.volume[:, :, cl - 3:cl + 4].mean(axis=2), 1.0, axis=1)


def find_bodies(st: Straightened) -> tuple[list[BodyFinding], np.ndarray]:
    """Discs and bodies along the straightened axis; returns bodies cranial -> caudal and the core profile."""
    v = st.volume
    ca, cl = st.half_ap, st.half_lat
    core = v[:, ca - 8:ca + 9, cl - 6:cl + 7].mean(axis=(1, 2))
    core_s = ndimage.gaussian_filter1d(core, 1.5)
    valid = core > -500  # rows inside the scanned volume
    discs = find_discs(core_s, lateral_walls(v, ca, cl), valid)
    mid = mid_sagittal(st)  # AP extent of the body per row
    first, last = _valid_span(valid)
    bounds = [None] + discs + [None]
    bodies = []
    for k, (top, bottom) in enumerate(zip(bounds[:-1], bounds[1:])):
        if top is None and bottom is None:
            break  # no disc at all: no body can be delimited
        if top is not None and bottom is not None and _two_vertebrae(discs, k - 1):
            for r0, r1 in ((top, 0.5 * (top + bottom)), (0.5 * (top + bottom), bottom)):
                centre, ap_range, lat_w = _outline(v, mid, r0, r1, ca, cl)
                bodies.append(BodyFinding(float(r0), float(r1), centre, ap_range or (-15.0, 15.0), lat_w, None,
                                          UNSEEN_DISC))
            continue
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
        centre, ap_range, lat_w = _outline(v, mid, r0, r1, ca, cl)
        if fused:
            bodies.append(BodyFinding(float(top), None, centre, ap_range or (-15.0, 15.0), lat_w, None,
                                      "no disc below within a vertebra's pitch (fused sacrum or a missed disc)"))
            continue
        if top is None or bottom is None:
            bodies.append(BodyFinding(top, bottom, centre, ap_range or (-15.0, 15.0), lat_w, None,
                                      "cut by the field of view", cut_by_fov=True))
            continue
        if ap_range is None:
            bodies.append(BodyFinding(top, bottom, centre, (-15.0, 15.0), lat_w, None, OUTLINE_NOT_FOUND))
            continue
        kps, reason = body_keypoints(v, st, top, bottom, ap_range)
        bodies.append(BodyFinding(float(top), float(bottom), centre, ap_range, lat_w, kps, reason))
    return _outline_from_neighbours(v, st, bodies), core_s


def _outline(v: np.ndarray, mid: np.ndarray, r0: float, r1: float, ca: int, cl: int
             ) -> tuple[float, tuple[float, float] | None, float]:
    """Centre row, AP extent (None: not found) and lateral half width of a body spanning rows r0..r1."""
    centre = 0.5 * (r0 + r1)
    ap_range = ap_extent(mid, int(r0), int(r1), ca)
    return centre, ap_range, lat_half_width(v, int(centre), ca + int(np.mean(ap_range) if ap_range else 0), cl)


def _two_vertebrae(discs: list[int], k: int) -> bool:
    """Whether the span from disc k to disc k + 1 holds two vertebrae: it is at least TWO_VERTEBRAE_PITCHES
    of the local pitch (the median of the PITCH_NEIGHBOURS nearest other spans of one vertebra each).

    The pitch changes by ~10 % per level, so no single vertebra is that much taller than its neighbours.
    A disc that no evidence showed (a thin upper thoracic disc blurred by 3 mm slices, osteophytes across
    it) or a block vertebra leaves such a span; taken as one body, every level above it was one off.
    """
    a, b = discs[k], discs[k + 1]
    others = [s for s in _single_vertebra_spans(discs) if (s[2], s[3]) != (a, b)]
    if not others or b - a > T.BODY_MAX_PITCH_MM:
        return False
    return b - a >= T.TWO_VERTEBRAE_PITCHES * _pitch_near(others, a, b)


def _outline_from_neighbours(v: np.ndarray, st: Straightened, bodies: list[BodyFinding]) -> list[BodyFinding]:
    """Bodies whose walls were not found, measured between their neighbours' walls.

    The walls are found where endplates close the body's columns at both discs; a collapsed body
    (a wedge whose front endplates lie far inside its discs, a crush a few mm tall) closes too few,
    so its outline fails most often where it matters most (3 mm and 1 mm phantoms: 22 of 57 such
    bodies had a grade 2-3 fracture). The front and back walls of the column run on smoothly from
    vertebra to vertebra, so the mean wall positions of the nearest whole body with its own outline on
    each side (within two places: collapsed bodies can come in runs) are the body's; its endplates are
    then looked for there as for any body. So are those of a body whose own outline, a wall far off its
    neighbours' walls, measured nothing: the front of a grade 3 wedge, a thin cortex in front of a
    contrast-filled organ as dense as osteoporotic marrow, and the outline ran on into the organ
    (1 mm phantom T12, its front wall placed 25 mm into the liver), or out of the field (a grade 3 wedge
    of a tight 1 mm crop, framed 48 mm forward to the crop's edge: "anterior endplates cut by the field").
    """
    def outlined(j: int) -> bool:
        return 0 <= j < len(bodies) and bodies[j].whole and bodies[j].reason not in (OUTLINE_NOT_FOUND, UNSEEN_DISC)

    too_deep = {k for k in range(len(bodies)) if outlined(k) and _deeper_than_neighbours(bodies, k, outlined)}

    def own_outline(j: int) -> bool:
        return outlined(j) and j not in too_deep

    out = list(bodies)
    for k, b in enumerate(bodies):
        if (b.reason not in (OUTLINE_NOT_FOUND, *ENDPLATES_NOT_FOUND, *ENDPLATES_CUT) and k not in too_deep) \
                or not b.whole:
            continue
        # the nearest whole body with its own outline on each side, within two places
        nearest = (next((j for j in (k + step, k + 2 * step) if own_outline(j)), None) for step in (-1, 1))
        walls = [bodies[j].ap_range for j in nearest if j is not None]
        if not walls:
            continue
        ap_range = (float(np.mean([w[0] for w in walls])), float(np.mean([w[1] for w in walls])))
        if b.reason != OUTLINE_NOT_FOUND and k not in too_deep \
                and np.abs(np.subtract(b.ap_range, ap_range)).max() <= T.WALL_OFF_NEIGHBOURS_MM:
            continue  # its own outline, in line with its neighbours': its endplates are missing for another reason
        kps, _ = body_keypoints(v, st, int(b.top_disc), int(b.bottom_disc), ap_range)  # type: ignore[arg-type]
        if kps is not None:  # a borrowed outline that measures nothing leaves the body as it was
            out[k] = replace(b, ap_range=ap_range, keypoints=kps, reason=None)
    return out


def _deeper_than_neighbours(bodies: list[BodyFinding], k: int, outlined: Callable[[int], bool]) -> bool:
    """Whether body k's own outline is OUTLINE_DEPTH_OVER_NEIGHBOURS times as deep as the deepest of its outlined
    neighbours (within two places on each side, at least two of them), or deeper: no body is, so its outline ran
    on into the canal or the arch behind it (its posterior wall at a lamina) or into an organ in front.

    Against the deepest and never one alone: a neighbour's outline can be too shallow itself (first outlines
    down to half their neighbours'), and so was ts-example's top of S1 in its lower field (20.8 mm beside L5's
    39.6, the only other outline in view: L5 took it and read a false trace into S1)."""
    depths = [bodies[j].ap_range[1] - bodies[j].ap_range[0] for j in (k - 2, k - 1, k + 1, k + 2) if outlined(j)]
    own = bodies[k].ap_range[1] - bodies[k].ap_range[0]
    return len(depths) >= 2 and own >= T.OUTLINE_DEPTH_OVER_NEIGHBOURS * max(depths)


def find_discs(core: np.ndarray, walls: np.ndarray, valid: np.ndarray) -> list[int]:
    """Disc rows: a minimum of the body core whose lateral cortical walls vanish too.

    A plain core minimum is not enough: the fatty centre of a body can be as dark as a disc.
    But inside a body the lateral cortical walls stay bright, while at a disc they are gone
    (the lateral walls are also unaffected by the sagittal tilt of lordotic discs).
    """
    minima, _ = signal.find_peaks(-core, prominence=0.5 * T.DISC_PROMINENCE_HU)
    found: list[tuple[int, float]] = []
    weak: list[_Dip] = []  # core minima without the wall evidence
    n = len(core)
    for m in minima:
        if not valid[m]:
            continue
        depth, width = _dip(core, int(m))
        if width > T.DISC_MAX_WIDTH_MM or depth < T.DISC_WEAK_PROMINENCE_HU:
            continue
        around = walls[max(0, m - 20):min(n, m + 21)]
        ratio = walls[max(0, m - 2):m + 3].min() / max(float(np.median(around)), 1.0)
        weak.append(_Dip(int(m), float(depth), float(ratio), float(width)))
        if depth >= T.DISC_PROMINENCE_HU and ratio <= T.DISC_WALL_RATIO:
            found.append((int(m), float(depth) * (1.0 - ratio)))
    if not found:
        # Rib heads articulate across the thoracic discs, so the lateral walls seldom vanish there (tcia
        # cut below T12, 3 mm: wall ratios 0.74-1.0 at every disc). A field with no disc that passes the
        # wall test (a chest CT ending above the lumbar spine) starts from its sharp core dips, as deep
        # as a confident disc's and narrower than a marrow centre, the sharpest first; the gaps between
        # them are filled as usual.
        found = [(d.row, d.sharpness) for d in weak if d.depth >= T.DISC_PROMINENCE_HU and not d.broad]
    kept: list[tuple[int, float]] = []
    for m, score in sorted(found, key=lambda x: -x[1]):  # strongest first, then enforce the minimal pitch
        if all(abs(m - k) >= T.DISC_MIN_SPACING_MM for k, _ in kept):
            kept.append((m, score))
    discs = sorted(m for m, _ in kept)
    return _fill_gaps(discs, weak, valid, walls)


@dataclass(frozen=True)
class _Dip:
    """A minimum of the body core along the straightened axis: a disc candidate."""
    row: int
    depth: float       # HU below the lower of the endplates beside it
    wall_ratio: float  # the lateral walls there, as a fraction of their level around it
    width: float = 0.0  # rows at half depth (0: unknown)

    @property
    def broad(self) -> bool:
        """At least MARROW_DIP_MIN_WIDTH_MM wide at half depth: a body's fatty marrow centre, not a disc."""
        return self.width >= T.MARROW_DIP_MIN_WIDTH_MM

    def marrow(self, pitch: float) -> bool:
        """Whether this is a body's marrow centre rather than a disc, where the local pitch is known: broad,
        or at least MARROW_WIDTH_SHARE of the pitch wide at half depth. A small upper thoracic body's dark
        centre on 3 mm slices is no wider than a lumbar disc (7 rows), yet deeper than the thin, blurred
        discs beside it."""
        return self.broad or self.width >= T.MARROW_WIDTH_SHARE * pitch

    @property
    def sharpness(self) -> float:
        """Depth per row of width: a disc is a thin dark layer between bright endplates, a dark marrow
        centre a broad bowl across most of its body."""
        return self.depth / max(self.width, 1.0)


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


def _fill_gaps(discs: list[int], weak: list[_Dip], valid: np.ndarray, walls: np.ndarray
               ) -> list[int]:
    """Where the pitch of confident discs leaves room for a missed disc, take the likeliest weak candidate.

    The vertebral pitch changes slowly along the spine (upper thoracic ~20 mm, lower lumbar ~38 mm),
    so a gap of 1.5 local pitches (or an end of the spine longer than 0.6 pitch) holds a disc the wall
    test missed (e.g. beside the sacral alae, or a sclerotic endplate). Inside the spine the local pitch
    is the median of the nearest confident intervals (a fill must not shrink the pitch that judges the
    next gap); beyond an end it is the median of that end's intervals, fills included (the confident
    discs may all lie far away, in a taller region). A single spine-wide pitch would split tall lumbar
    bodies and miss discs between short thoracic ones. Where even the local pitch comes from a taller
    region (3 mm slices blur thin upper thoracic discs below the confident level), a shorter interval is
    still split by a dip that breaks the lateral walls 0.6 pitch from both ends. From a single confident
    disc a mid-spine pitch is expected on both sides.
    """
    if not discs:
        return discs
    out = list(discs)
    # Intervals between confident discs only (fills must not shrink the pitch), one vertebra each: an
    # interval taller than any vertebra holds a missed disc and is no pitch.
    confident = _single_vertebra_spans(discs)

    def pitch(a: float, b: float) -> float:
        """Expected pitch near rows a..b, from the nearest confident intervals other than a..b itself;
        without one, from the intervals found so far, else a mid-spine vertebra's (TYPICAL_PITCH_MM)."""
        single = confident or _single_vertebra_spans(out)
        if not single:
            return T.TYPICAL_PITCH_MM
        return _pitch_near([s for s in single if (s[2], s[3]) != (a, b)] or single, a, b)

    first, last = _valid_span(valid)
    for _ in range(30):  # each fill can open the next end gap
        # Beyond an end disc the next one is expected one local pitch further on: the median of the
        # intervals at that end, filled ones included (the pitch changes slowly, and the confident discs
        # may all lie in a taller region of the spine, e.g. the lumbar one of a thin-sliced chest).
        p0, p1 = _end_pitches(out)
        # (lo, hi, expected row, pitch, the dips that may be marrow centres there)
        below = out[-1] + p1
        measured_below = len(out) >= 2 and out[-1] in discs and out[-2] in discs
        windows = [(out[0] - 1.3 * p0, out[0] - 0.6 * p0, out[0] - p0, p0, weak),
                   (out[-1] + 0.6 * p1, out[-1] + 1.3 * p1, below, p1,
                    _clear_of_the_next_disc(weak, below, p1) if measured_below else weak)]
        added = False
        for a, b in zip(out[:-1], out[1:]):
            p = pitch(a, b)
            if b - a > 1.5 * p:
                windows.append((a + 0.6 * p, b - 0.6 * p, None, p, weak))
            else:
                # Thin upper thoracic discs on 3 mm slices are rarely confident, so the pitch may come
                # from the taller lower spine and hide a missed disc: where a dip breaks the lateral
                # walls 0.6 pitch from both ends, these are two bodies. (Any closer to an end, it is
                # more likely a fracture inside one body.)
                lo, hi = a + 0.6 * p, b - 0.6 * p
                local = _marrow_pitch(weak, a, b, p)  # tells marrow centres from discs (not the gap rules)
                dipping = [d for d in weak if lo <= d.row <= hi and d.wall_ratio <= T.DISC_FILL_WALL_RATIO]
                if dipping:
                    out.append(_likeliest_disc(dipping, None, local))
                    added = True
                    continue
                split = _between_marrow_centres(weak, a, b, local)
                if split is not None and split not in out:
                    out.append(split)
                    added = True
        for lo, hi, expected, window_pitch, centre_dips in windows:
            lo, hi = max(lo, first), min(hi, last)
            cands = [d for d in weak if lo <= d.row <= hi and d.row not in out]
            local = _marrow_pitch(weak, lo, hi, window_pitch)
            if not any(not d.marrow(local) and d.wall_ratio <= T.DISC_FILL_WALL_RATIO for d in cands):
                # No dip of a disc's shape here, but two bodies' marrow centres one pitch apart may straddle
                # it (thin upper thoracic discs on 3 mm slices): a marrow-like candidate is a marrow centre.
                between = _marrow_midpoint(centre_dips, lo, hi, local)
                if between is not None and between not in out:
                    out.append(between)
                    added = True
                    continue
            if cands:
                out.append(_likeliest_disc(cands, expected, local))
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


def _between_marrow_centres(weak: list[_Dip], a: int, b: int, pitch: float) -> int | None:
    """A disc between two bodies' marrow centres inside the interval a..b, or None.

    Each body holds one marrow-like dip at most (_Dip.marrow at the local pitch), its fatty marrow
    centre; two of them, MARROW_CENTRES_APART of the interval apart, are two bodies, and
    the sharpest narrow dip between them is their disc (halfway between them when the disc leaves no
    dip of its own). It is how a disc shows whose lateral walls osteophytes bridge (3 mm slices of a
    degenerate thoracic spine); only at a thoracic pitch (_thin_discs_possible).
    """
    if not _thin_discs_possible(pitch):
        return None
    centres = [d for d in weak if a < d.row < b and d.marrow(pitch)]
    if len(centres) < 2:
        return None
    upper, lower = min(centres, key=lambda d: d.row), max(centres, key=lambda d: d.row)
    if lower.row - upper.row < T.MARROW_CENTRES_APART * (b - a):
        return None
    narrow = [d for d in weak if upper.row < d.row < lower.row and not d.marrow(pitch)]
    disc = max(narrow, key=lambda d: d.sharpness).row if narrow else int(round(0.5 * (upper.row + lower.row)))
    # each part at least the smallest vertebra's pitch
    return disc if min(disc - a, b - disc) >= T.DISC_MIN_SPACING_MM else None


def _clear_of_the_next_disc(weak: list[_Dip], expected: float, pitch: float) -> list[_Dip]:
    """The dips that may be marrow centres below a caudal end vertebra between two confident discs: none
    nearer the row where the next disc is expected (one pitch on) than NEXT_DISC_SHARE of the pitch, halfway
    to where a marrow centre is (half a pitch on).

    On 3 mm slices a lumbar disc the wall test missed dips 8 rows wide, as broad as a marrow centre
    (ts-example with 45 HU noise added: the L5/S1 disc 3 rows from where it was expected); taken for one, it
    and L5's own centre placed a disc halfway between them, 10 mm into L5 (a false 51 % crush). The spine's
    pitch grows caudally, so where the end's own confident discs measure it the expected row is not too near
    there. Not used elsewhere: cranially the end pitch may come from a taller region; below a single disc it
    is a mid-spine vertebra's (3 mm chest phantom, fast seed 12, case 2: from its top disc alone, 30 rows,
    where the second body's marrow centre below it lay 29 rows down), and below filled discs it is only as
    good as the fills (fast seed 4 with 30 HU noise, case 17: a chain of fills from one disc read a level
    wrong). The next body's far centre may then lie at the row expected for its disc.
    """
    return [d for d in weak if abs(d.row - expected) >= T.NEXT_DISC_SHARE * pitch]


def _marrow_pitch(weak: list[_Dip], lo: float, hi: float, pitch: float) -> float:
    """The pitch at rows lo..hi where the bodies' marrow centres show it, else ``pitch``.

    Where no disc is confident the expected pitch comes from a taller region (upper thoracic bodies on
    3 mm slices, ~18 mm, judged by the lumbar ~28 mm): two marrow centres two pitches apart then passed
    for neighbours, and a centre between them for a disc. Broad dips half to one and a half expected
    pitches apart are consecutive bodies' centres; the median of the PITCH_NEIGHBOURS such spacings
    nearest the rows is the local pitch, when shorter.
    """
    rows = sorted(d.row for d in weak if d.broad)
    spacings = [(0.5 * (u + w), w - u) for u, w in zip(rows[:-1], rows[1:]) if 0.5 * pitch <= w - u <= 1.5 * pitch]
    if len(spacings) < 2:
        return pitch
    near = sorted(spacings, key=lambda s: abs(s[0] - 0.5 * (lo + hi)))[:T.PITCH_NEIGHBOURS]
    return min(pitch, float(np.median([s[1] for s in near])))


def _marrow_midpoint(weak: list[_Dip], lo: float, hi: float, pitch: float) -> int | None:
    """Halfway between two consecutive marrow centres (marrow-like dips) about one pitch apart, when that
    lies in the window lo..hi, or None; only at a thoracic pitch (_thin_discs_possible)."""
    if not _thin_discs_possible(pitch):
        return None
    centres = sorted(d.row for d in weak if d.marrow(pitch))
    for u, w in zip(centres[:-1], centres[1:]):
        mid = int(round(0.5 * (u + w)))
        if lo <= mid <= hi and 0.6 * pitch <= w - u <= 1.4 * pitch:
            return mid
    return None


def _thin_discs_possible(pitch: float) -> bool:
    """Whether a disc at this local pitch can be too thin to dip the core (then only the marrow centres on
    either side place it): upper and mid thoracic discs (3-6 mm) blurred by 3 mm slices. Where the pitch is
    a lumbar one (LUMBAR_MIN_PITCH_MM) the disc is 8-12 mm tall and dips the core on any slices the heights
    are measured on; a dip taken there for a marrow centre is the disc itself, broadened by its tilt (tcia
    with 45 HU noise added, 3 mm: the L5/S1 disc, 9 rows wide and 141 HU deep, and L5's own mottle passed
    for two marrow centres; the disc placed halfway between them, 11 mm into L5, made L5 a 40 % crush)."""
    return pitch < T.LUMBAR_MIN_PITCH_MM


def _end_pitches(discs: list[int]) -> tuple[float, float]:
    """Expected pitch beyond the cranial and the caudal end disc: the median of that end's intervals, or,
    with one disc only, a mid-spine vertebra's (TYPICAL_PITCH_MM)."""
    if len(discs) < 2:
        return T.TYPICAL_PITCH_MM, T.TYPICAL_PITCH_MM
    return (float(np.median(np.diff(discs[:T.PITCH_NEIGHBOURS]))),
            float(np.median(np.diff(discs[-T.PITCH_NEIGHBOURS:]))))


def _pitch_near(spans: list[tuple[float, int, int, int]], a: float, b: float) -> float:
    """The local pitch at rows a..b: the median length of the PITCH_NEIGHBOURS spans (from
    _single_vertebra_spans) whose middles lie nearest its middle."""
    near = sorted(spans, key=lambda s: abs(s[0] - 0.5 * (a + b)))[:T.PITCH_NEIGHBOURS]
    return float(np.median([s[1] for s in near]))


def _single_vertebra_spans(discs: list[int]) -> list[tuple[float, int, int, int]]:
    """(middle, length, top, bottom) of the intervals between consecutive disc rows that one vertebra
    can fill (at most BODY_MAX_PITCH_MM)."""
    return [(0.5 * (a + b), b - a, a, b) for a, b in zip(discs[:-1], discs[1:]) if b - a <= T.BODY_MAX_PITCH_MM]


def _likeliest_disc(cands: list[_Dip], expected: float | None, pitch: float) -> int:
    """The likeliest disc among the core dips of a window, where the local pitch is ``pitch``.

    A marrow-like dip (_Dip.marrow: broad, or a third of the pitch wide) competes only when the window holds
    nothing else (3 mm trunk phantom, T4: its centre 92 HU deep, 9 rows wide, walls 0.89, was taken
    over the T4/T5 disc 10 rows below, 24 HU deep, 3 rows wide, walls 0.88). Then a dip where the
    lateral walls dip too (DISC_FILL_WALL_RATIO) is a disc; a dip where they stay at the body's level
    is a dark marrow centre (osteoporotic bodies on 3 mm slices: often deeper than a thin, blurred
    thoracic disc). Those dips compete only when no dip in the window breaks the walls (beside the
    sacral alae the walls stay bright at the disc). Among them: the sharpest, or where a disc is expected,
    the one nearest that row among the clear dips (at least DISC_CLEAR_SHARE as sharp as the sharpest).
    Sharpness, not depth: a disc's dip is narrow, a marrow centre's spans most of its body, and where
    osteophytes bridge a thin disc its walls stay bright while a broad marrow dip's fall nearly as far
    (3 mm thoracic spine of a severely degenerate phantom: disc 55 HU deep, 3 rows wide, wall ratio
    0.70; marrow 109 HU, 13 rows, 0.88). Where every dip is marrow-like, a wall-breaking one counts only when
    at least DISC_CLEAR_SHARE as sharp as the sharpest: above a crushed L1 (13 mm tall, dark) the disc dipped
    93 HU over 10 rows with the walls unbroken, T12's marrow 18 HU over 13 rows with the walls at 0.82; taken
    for the disc (3 mm spine crop, fast seed 12 --prevalence 0.3), the re-centred straightening's discs did not
    pair with the first ones and the crush read 32 % on the first planes (47 % now); on a curve a fraction of a
    mm away it split T12 and every label went one off.
    """
    shaped = [d for d in cands if not d.marrow(pitch)]
    cands = shaped or cands
    pool = [d for d in cands if d.wall_ratio <= T.DISC_FILL_WALL_RATIO]
    if not shaped:
        # No dip has a disc's shape: a broken wall makes a disc only of a clear dip, not of a shallow bowl.
        pool = [d for d in pool if d.sharpness >= T.DISC_CLEAR_SHARE * max(c.sharpness for c in cands)]
    pool = pool or cands
    sharpest = max(pool, key=lambda d: d.sharpness)
    if expected is None:
        return sharpest.row
    clear = [d.row for d in pool if d.sharpness >= T.DISC_CLEAR_SHARE * sharpest.sharpness]
    return min(clear, key=lambda m: abs(m - expected))


def _valid_span(valid: np.ndarray) -> tuple[int, int]:
    """First and last row inside the scanned volume (the whole range when none is)."""
    if not valid.any():
        return 0, len(valid) - 1
    return int(np.argmax(valid)), len(valid) - 1 - int(np.argmax(valid[::-1]))


def lateral_walls(v: np.ndarray, ca: int, cl: int) -> np.ndarray:
    """Per row: the dimmer of the two lateral body walls (max HU 8-32 mm either side, near the curve)."""
    cor = v[:, max(0, ca - 10):ca + 6, :].mean(axis=1)
    left = cor[:, max(0, cl - 32):cl - 8].max(axis=1)
    right = cor[:, cl + 8:cl + 32].max(axis=1)
    return ndimage.gaussian_filter1d(np.minimum(left, right), 1.0)
