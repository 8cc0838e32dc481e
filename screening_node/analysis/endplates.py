"""The six endplate keypoints of one body: where its endplates meet its front, middle and back columns.

Arrays are straightened volumes (row, ap, lat) at 1 mm (see straighten.py): rows run cranial ->
caudal, ap anterior -> posterior. This module measures between the walls walls.py finds; vertebrae.py
decides where bodies are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.results import HEIGHT_KEYPOINTS
from screening_node.analysis.shell import sampled_shell_surface, shell_surface
from screening_node.analysis.slice_sampling import column_sampling
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.walls import lat_half_width


@dataclass(frozen=True)
class _RoughEdges:
    """Endplate edges on one measuring column at their steepest slopes, before the surfaces are fitted."""
    ap_mm: float          # the column's position (mm from the curve)
    lat_mm: float         # its sagittal plane (mm from the curve)
    profile: np.ndarray   # the column's profile along the rows, nothing below soft tissue (the shell is fitted to it)
    superior: float       # steepest-slope rows: where the corner columns search
    inferior: float
    marrow: float         # median between the edges: tells a column inside the body
    strength: float       # slope of the weaker edge (HU/mm): the sharpest corner column is kept


@dataclass(frozen=True)
class _ColumnEdges:
    """Endplate surfaces (rows) found on one measuring column, and the rough edges they were fitted at."""
    rough: _RoughEdges
    superior: float
    inferior: float


Keypoints = dict[str, tuple[float, float, float]]  # name -> (row, ap mm, lat mm) on the straightened volume


def body_keypoints(v: np.ndarray, st: Straightened, top: int, bottom: int, ap_range: tuple[float, float]
                   ) -> tuple[Keypoints | None, str | None]:
    """Six keypoints: the endplates' outer surfaces at the anterior, middle and posterior columns.

    The columns follow six-point morphometry: the corner columns just inside the anterior and
    posterior walls, the middle one halfway. Where a column shows no endplate (an osteophyte or
    ring apophysis at a corner, the basivertebral vein at the back, a focal defect, or a corner
    blurred into the wall on a coarse scan), a reader measures a little further in: of the corner
    positions tried, the one with the sharpest pair of endplate edges is kept (but where the middle sinks
    PIT_MIN_DEPTH_MM or more inside the corners' lines, a bowl, the sharp one nearest the wall: the plate
    still slopes there, and read further in, the rims stood lower and the bowl read shallower; _corners),
    and where none of them
    shows an endplate on the mid-sagittal plane, the one KEYPOINT_DEEP_INSET_MM in; a corner read further
    in than KEYPOINT_INSETS_MM[0] is then carried out along its endplate to there (_carried_to_the_corners).
    The middle keypoints carry the position where they were measured. The middle column's endplates are
    searched next to the discs (followed inwards where a biconcave depression sinks them further), the
    corner columns' near them (an endplate is one plate, tilted a few mm at most; its rim, near the disc,
    where the middle one sank).
    Each edge is found as the steepest slope, then placed on the surface by fitting the blurred
    cortical-shell model (shell_surface).

    Every keypoint lies on the mid-sagittal plane, where a reader measures. The middle column is read
    there alone (a biconcave body's central depression is deepest on the midline). A corner column's
    endplate edges are also read on sagittal planes PARASAGITTAL_MM to either side, and each corner
    keypoint sits at the median of the three planes' rows: an edge read in one 5 mm wide column can be
    off by several mm (a corner blurred by 3 mm slices, noise, a small osteophyte), and a reader looks at
    the neighbouring planes too; a wedge or crush deformity spans the body's width, so the median keeps it.
    """
    ant, post = ap_range
    middle_ap = 0.5 * (ant + post)
    middle, reason = _middle_column([middle_ap + d for d in T.MIDDLE_COLUMN_SHIFTS_MM], v, st, top, bottom)
    if middle is None:
        return None, reason
    middle = _across_focal_pits(middle, v, st, top, bottom, ap_range)
    corners, bridged, reason = _corners(v, st, top, bottom, ap_range, middle)
    if corners is None:
        return None, reason
    out = {"middle": middle, **corners}
    keypoints: Keypoints = {f"{side}_{name}": (getattr(out[name], side), out[name].rough.ap_mm, 0.0)
                            for side in ("superior", "inferior") for name in ("anterior", "middle", "posterior")}
    return _carried_to_the_corners(keypoints, ap_range, bridged), None


def _corners(v: np.ndarray, st: Straightened, top: int, bottom: int, ap_range: tuple[float, float],
             middle: _ColumnEdges) -> tuple[dict[str, _ColumnEdges] | None, set[str], str | None]:
    """The anterior and posterior corner columns' endplates (each the median of three sagittal planes where
    all show them) and the corners that are bridged (read KEYPOINT_DEEP_INSET_MM in on every plane); or None
    and the reason.

    Each candidate column's edges are read once. The sharpest candidate is chosen on each plane; where the
    middle then lies PIT_MIN_DEPTH_MM or more inside the corners' lines (a bowl), the choice is made again
    among the same candidates, nearest the wall (_chosen), and no column is read or fitted twice.
    A corner that shows no endplate near its disc is sought first along the plate's line from the other
    corner through the middle (_plate_slopes: a severe wedge), then KEYPOINT_DEEP_INSET_MM in (bridged). One
    whose columns near the wall show only faint edges on the mid-sagittal plane (a disc thinner than the slices
    vanished there) is read KEYPOINT_DEEP_INSET_MM in too, where that shows a sharper pair
    (_deeper_than_faint_corner).
    """
    ant, post = ap_range
    columns = {"anterior": [ant + inset for inset in T.KEYPOINT_INSETS_MM],
               "posterior": [post - inset for inset in T.KEYPOINT_INSETS_MM]}
    deepest = {"anterior": ant + T.KEYPOINT_DEEP_INSET_MM, "posterior": post - T.KEYPOINT_DEEP_INSET_MM}
    fitted: _Fits = {}  # shell fits by candidate, shared by both choices
    planes: dict[str, list[list[_RoughEdges] | None]] = {}  # per corner: candidates on the mid plane, then beside
    bridged: set[str] = set()
    on_mid_plane: dict[str, list[_RoughEdges]] = {}  # per corner: its candidates on the mid-sagittal plane
    for name in columns:
        on_mid = _candidate_edges(columns[name], v, st, 0.0, top, bottom, middle)
        if on_mid is None:
            return None, bridged, _cut_by_field(name)
        on_mid_plane[name] = on_mid
    floor = T.FAINT_CORNER_SHARE * max([middle.rough.strength] + [c.strength for found in on_mid_plane.values()
                                                                   for c in found])
    for name in columns:
        deeper = _deeper_than_faint_corner(on_mid_plane[name], deepest[name], floor, v, st, top, bottom, middle,
                                           fitted)
        if deeper is not None:
            columns[name], on_mid_plane[name] = [deepest[name]], deeper
            bridged.add(name)
    slopes: dict[str, tuple[float, float] | None] = {name: None for name in columns}
    for name, other in (("anterior", "posterior"), ("posterior", "anterior")):
        on_mid = on_mid_plane[name]
        if _chosen(on_mid, top, bottom, st, False, fitted) is not None:
            continue
        # A severe wedge: the plate sinks past ENDPLATE_TILT_MM from the middle, in line with the other corner.
        seen = _chosen(on_mid_plane[other], top, bottom, st, False, fitted)
        slopes[name] = None if seen is None else _plate_slopes(middle.rough, seen.rough)
        if slopes[name] is not None:
            on_mid = _candidate_edges(columns[name], v, st, 0.0, top, bottom, middle, slopes[name])
            if on_mid is None:
                return None, bridged, _cut_by_field(name)
            if _chosen(on_mid, top, bottom, st, False, fitted) is None:
                slopes[name], on_mid = None, on_mid_plane[name]
        if slopes[name] is None:
            # No endplate near the wall (a front bony over the discs: DISH): further in, on every plane.
            # Not where the field cuts the corner: such a body is only partly in view.
            columns[name] = [deepest[name]]
            on_mid = _candidate_edges(columns[name], v, st, 0.0, top, bottom, middle)
            bridged.add(name)
            if on_mid is None or _chosen(on_mid, top, bottom, st, False, fitted) is None:
                return None, bridged, _not_found(name)
        on_mid_plane[name] = on_mid
    for name in columns:
        planes[name] = [on_mid_plane[name]] + [
            _candidate_edges(columns[name], v, st, lat, top, bottom, middle, slopes[name])
            for lat in (-T.PARASAGITTAL_MM, T.PARASAGITTAL_MM)]

    def read(rims: bool) -> dict[str, _ColumnEdges]:
        out = {}
        for name, candidates in planes.items():
            chosen = [None if c is None else _chosen(c, top, bottom, st, rims, fitted) for c in candidates]
            on_mid = chosen[0]
            assert on_mid is not None  # it showed its endplates above, and the choice only orders them
            if all(e is not None for e in chosen):
                on_mid = dataclasses.replace(on_mid, superior=float(np.median([e.superior for e in chosen])),
                                             inferior=float(np.median([e.inferior for e in chosen])))
            out[name] = on_mid
        return out

    corners = read(rims=False)
    front, back = corners["anterior"], corners["posterior"]
    sunk = _inside_lines(middle.rough.ap_mm, middle.superior, middle.inferior,
                         (front.rough.ap_mm, front.superior, front.inferior),
                         (back.rough.ap_mm, back.superior, back.inferior))
    if max(sunk) >= T.PIT_MIN_DEPTH_MM:
        corners = read(rims=True)
    return corners, bridged, None


def _deeper_than_faint_corner(found: list[_RoughEdges], deep_mm: float, floor: float, v: np.ndarray,
                              st: Straightened, top: int, bottom: int, middle: _ColumnEdges, fitted: _Fits
                              ) -> list[_RoughEdges] | None:
    """The corner read KEYPOINT_DEEP_INSET_MM in (``deep_mm``) where every candidate column near the wall on
    the mid-sagittal plane shows only faint edges (weaker than ``floor``: FAINT_CORNER_SHARE of the body's
    sharpest edge) and that column shows a sharper pair; None where nothing is to be changed.

    A disc thinner than the slices at one corner vanishes there: the kyphotic upper thoracic discs thin
    towards the back, and on 3 mm slices the back of T1-T4 shows a bright band from one body into the next.
    The corner columns then find faint slopes in the band, at or past the discs' middle rows, on every
    sagittal plane alike, so the median of three planes keeps them (3 mm phantoms, fast seed 4 case 4: T1's
    back read 19.0 mm, truth 14.4, a false grade 2, its posterior edges 12-26 HU/mm against 49-64 at the
    front and middle). Further in, where the disc is thick enough to show, the plate is read as where a
    ruler would find it; the corner stays there (bridged: a plate that does not show at the wall is not
    carried out to it).
    """
    if not found or any(c.strength >= floor for c in found):
        return None
    deep = [c for c in _candidate_edges([deep_mm], v, st, 0.0, top, bottom, middle) or [] if c.strength >= floor]
    return deep if deep and _chosen(deep, top, bottom, st, False, fitted) is not None else None


def _candidate_edges(columns: list[float], v: np.ndarray, st: Straightened, lat_mm: float, top: int, bottom: int,
                     middle: _ColumnEdges, slopes: tuple[float, float] | None = None) -> list[_RoughEdges] | None:
    """The rough edges of each candidate corner column (ap mm) that shows them, on the sagittal plane lat_mm
    from the curve, in the columns' order (nearest the wall first); None where one leaves the scanned field.
    ``slopes``: the plates' sinking per mm towards this corner (_plate_slopes), where they reach past
    ENDPLATE_TILT_MM."""
    found = []
    for a_mm in columns:
        rough, cut = _column_edges(v, st, a_mm, lat_mm, top, bottom, middle, slopes)
        if cut:
            return None
        if rough is not None:
            found.append(rough)
    return found


# Shell fits by candidate: keyed by the candidate's id, which the entry keeps alive (a freed candidate's id may
# be given to a new one).
_Fits = dict[int, tuple[_RoughEdges, _ColumnEdges | None]]


def _chosen(found: list[_RoughEdges], top: int, bottom: int, st: Straightened, rims: bool,
            fitted: _Fits) -> _ColumnEdges | None:
    """The endplates of the corner candidate with the sharpest pair of edges whose surfaces fit; with ``rims``,
    of the one nearest the wall among those at least EDGE_SHARE as sharp as the sharpest. The shell fit (the
    slow part) only as needed, and once per candidate (``fitted``)."""
    order = sorted(found, key=lambda c: -c.strength)
    if rims and order:
        sharp = [c for c in found if c.strength >= T.EDGE_SHARE * order[0].strength]
        order = sharp + [c for c in order if all(c is not x for x in sharp)]
    for rough in order:
        if id(rough) not in fitted:
            fitted[id(rough)] = (rough, _surfaces(rough, top, bottom, st))
        edges = fitted[id(rough)][1]
        if edges is not None:
            return edges
    return None


def _plate_slopes(middle: _RoughEdges, seen: _RoughEdges) -> tuple[float, float] | None:
    """How far (rows per mm of depth) each endplate sinks into the body from the corner ``seen`` through the
    middle column, carried on towards the other corner; None where neither would reach past ENDPLATE_TILT_MM
    from the middle at the other corner (there the search already looked).

    A wedge tilts a plate as one plane: a grade 3 wedge of L4 (54 % at the front, 13 mm against 29 mm at the
    back; a sagittal reformat's) had its upper plate 6.6 mm below the back corner's at the middle and 7.3 mm
    further at the front, past ENDPLATE_TILT_MM: "anterior endplates not found". Its front edge lies where the
    line from the back corner through the middle goes on. A wedge collapses one plate: where both lines
    sink more than ENDPLATE_TILT_MM from the other corner to the middle, the body lies across its planes
    (tcia's S1 below the lumbosacral bend, both plates 0.4 rows per mm, read a front 5 mm tall), and the
    search is not carried on.
    """
    reach = abs(middle.ap_mm - seen.ap_mm)
    if reach <= 0:
        return None
    superior = (middle.superior - seen.superior) / reach
    inferior = (seen.inferior - middle.inferior) / reach
    if max(superior, inferior) * reach + T.ENDPLATE_PLANE_SLACK_MM <= T.ENDPLATE_TILT_MM:
        return None
    if min(superior, inferior) * reach > T.ENDPLATE_TILT_MM:
        return None  # both plates converge: a body lying across its planes, no wedge (one plate collapses)
    return max(superior, 0.0), max(inferior, 0.0)


def _inside_lines(ap_mm: float, superior: float, inferior: float, front: tuple[float, float, float],
                  back: tuple[float, float, float]) -> tuple[float, float]:
    """How far (mm) a column's superior and inferior endplate rows lie inside the lines through the corners'
    (each corner: ap mm, superior row, inferior row)."""
    w = (ap_mm - front[0]) / (back[0] - front[0])
    sup = front[1] + w * (back[1] - front[1])
    inf = front[2] + w * (back[2] - front[2])
    return float(superior - sup), float(inf - inferior)


def _carried_to_the_corners(keypoints: Keypoints, ap_range: tuple[float, float], bridged: set[str]) -> Keypoints:
    """The corner keypoints carried out along their endplates' rim lines to KEYPOINT_INSETS_MM[0] inside
    the walls, where they were read further in.

    Six-point morphometry puts the corner points at the body's corners. Where the column just inside the
    wall showed no sharp endplate (the wall's cortex blurs it; an osteophyte, a ring apophysis), the corner
    was read 3-7 mm in; a reader follows the endplate out to the corner. Each endplate's rim runs straight
    from the anterior to the posterior corner (a wedge tilts it, a biconcave depression lies inside it), so
    each corner's row is taken on the line through both corners' readings. Read further in, a tilted plate
    reads a wedge's front too tall and its back too short: on 1 mm phantoms whose back walls face the canal,
    19 of 46 grade 1 fractures were read 0 (agreement 0.928; carried: 0.967).
    A ``bridged`` corner (no endplate near the wall on any plane: a front bony over the discs, DISH) stays
    where it was read: its endplate does not reach the wall, and carried out to the ossified ligament's
    front it read tcia's T8 (rolled 20 degrees) a grade 2 wedge.
    """
    ant, post = ap_range
    inset = T.KEYPOINT_INSETS_MM[0]
    a_front, a_back = keypoints["superior_anterior"][1], keypoints["superior_posterior"][1]
    targets = {"anterior": a_front if "anterior" in bridged else min(a_front, ant + inset),
               "posterior": a_back if "posterior" in bridged else max(a_back, post - inset)}
    if a_back - a_front <= 0 or targets["posterior"] <= targets["anterior"]:
        return keypoints
    carried = dict(keypoints)
    for side in ("superior", "inferior"):
        row_front, row_back = keypoints[f"{side}_anterior"][0], keypoints[f"{side}_posterior"][0]
        for name, a_mm in targets.items():
            w = (a_mm - a_front) / (a_back - a_front)
            carried[f"{side}_{name}"] = (row_front + w * (row_back - row_front), a_mm, 0.0)
    return carried


def _across_focal_pits(middle: _ColumnEdges, v: np.ndarray, st: Straightened, top: int, bottom: int,
                       ap_range: tuple[float, float]) -> _ColumnEdges:
    """The middle column's endplates read across a Schmorl's node: where one lies in a focal pit, at the
    endplate's level beside the pit.

    A node (disc herniated through the endplate: a pit 5-10 mm wide, 2-5 mm deep, rimmed with sclerotic
    bone) usually sits at or just behind the endplate's centre, where the middle height is read; its floor
    reads as the endplate and makes a normal body look biconcave. Readers measure the endplate across it
    (a node is no fracture). A fracture's central depression spans the endplate: on sagittal planes
    PIT_SIDE_PLANE_SHARE of the half width to either side, and on the midline PIT_AP_SHARE of the body's
    depth in front of and behind the middle, it is still about half as deep, while a node, narrower than
    either pair's spacing, leaves at least one of each pair near the plate's level. So where the middle
    endplate lies PIT_MIN_DEPTH_MM or more inside the line through its corners, and one side plane and one
    of the midline's columns before and behind show it less deep than PIT_BOWL_SHARE and PIT_AP_SHARE of
    that, the endplate is moved out to the side plane's depth (never past the corners' line). Nothing is
    moved in a body with an endplate sunk otherwise, or deeper than PIT_MAX_DEPTH_MM, in the middle: a
    biconcave fracture sinks both, and beside a grade 3 bowl in osteoporotic bone the edges can read it as
    shallow as a node (1 mm phantoms: 1.1 and 1.4 mm beside a 6.8 mm deep middle).

    Only where the CT samples the spine finely along it (slice_blur None): on 3 mm slices the edges beside
    the middle read a fracture's sloping bowl far too shallow (a grade 3 one 0.0 and 0.6 mm deep where the
    midline read 4.1), and two grade 2-3 biconcave fractures of a batch of 30 were lost. Where it samples
    the spine coarsely across it (st.coarse_across: a sagittal reformat's slabs), the side planes, averaged
    across the slabs, read bowls shallow too (a grade 2 one of T6 0.24 as deep as its middle, a grade 3 one
    0.16: both read as nodes, their middles 3-6 mm too tall, graded 0); there the midline, sampled finely,
    tells them instead (_narrow_along_the_midline).
    """
    if slice_blur(st, 0.5 * (top + bottom)) is not None:
        return middle
    lines = _corner_lines(v, st, 0.0, ap_range, top, bottom)
    if lines is None:
        return middle
    depth = _depths(middle.rough, lines)
    if max(depth) < T.PIT_MIN_DEPTH_MM:
        return middle
    ant, post = ap_range
    a_mm = middle.rough.ap_mm
    if st.coarse_across:
        # Beside the middle on the midline itself, PIT_NEAR_MM before and behind it.
        side_columns = [(0.0, a_mm - T.PIT_NEAR_MM), (0.0, a_mm + T.PIT_NEAR_MM)]
    else:
        half = lat_half_width(v, int(round(0.5 * (top + bottom))), st.half_ap + int(round(a_mm)), st.half_lat)
        lat = float(np.clip(T.PIT_SIDE_PLANE_SHARE * half, T.PARASAGITTAL_MM, T.PIT_SIDE_PLANE_MAX_MM))
        side_columns = [(-lat, a_mm), (lat, a_mm)]
    ap_step = T.PIT_AP_SHARE * (post - ant)
    beside = []  # both side planes' (or near columns') depths, then both midline columns': (superior, inferior), or None
    for lat_mm, column in side_columns + [(0.0, a_mm - ap_step), (0.0, a_mm + ap_step)]:
        own = lines if lat_mm == 0.0 else _corner_lines(v, st, lat_mm, ap_range, top, bottom)
        rough = None if own is None else _column_edges(v, st, column, lat_mm, top, bottom, None)[0]
        beside.append(None if rough is None or own is None else _depths(rough, own))
    if any(d is None for d in beside):
        return middle  # a side the field or the outline cuts: nothing to tell a node by
    focal, bowl = {}, False
    for k in range(2):
        if depth[k] < T.PIT_MIN_DEPTH_MM:
            continue
        lateral, along = [d[k] for d in beside[:2]], [d[k] for d in beside[2:]]  # type: ignore[index]
        # An edge beside the middle read far outside its corners' line lies in the disc, and one far deeper
        # than the middle's is no plate beside a pit (a node is deepest at its centre): the lines are not to
        # be trusted there (a grade 3 wedge at the field's end read 7.8 mm beside a middle 2.9 mm deep).
        trusted = all(-T.PIT_SIDE_MISREAD_MM < d <= depth[k] + T.PIT_SIDE_MISREAD_MM for d in lateral + along)
        beside_pit = (_narrow_along_the_midline(lateral, depth[k]) if st.coarse_across
                      else min(lateral) < T.PIT_BOWL_SHARE * depth[k])
        if (trusted and depth[k] <= T.PIT_MAX_DEPTH_MM and beside_pit
                and min(along) < T.PIT_AP_SHARE_OF_DEPTH * depth[k]):
            focal[k] = max(min(lateral), 0.0)
        else:
            bowl = True  # sunk around the middle too (or too deep for a node, or not to be told): a fracture's bowl
    if bowl:
        return middle  # a fracture sinks one endplate and a node in the other is no reason to read it smaller
    surfaces = {"superior": middle.superior, "inferior": middle.inferior}
    for k, (end, inward) in enumerate((("superior", +1), ("inferior", -1))):
        if k in focal:
            surfaces[end] -= inward * (depth[k] - focal[k])
    return dataclasses.replace(middle, **surfaces)


def _narrow_along_the_midline(near: list[float], depth: float) -> bool:
    """Whether a middle endplate's pit (``depth`` mm inside its corners' line) is a node's by the midline
    columns PIT_NEAR_MM before and behind the middle (their depths ``near``): both less than PIT_NEAR_SHARE as
    deep. A node is 5-10 mm wide and sits at or just off the middle; a fracture's bowl spans the endplate.
    On 3 mm sagittal reformats (`phantom_eval.py --preset 1mm --plane sagittal --slice-thickness 3`, nodes at
    30 % of T6-L5 endplates) nodes read 0.00-0.16 as deep there, grade 2-3 bowls 0.26-0.57."""
    return max(near) < T.PIT_NEAR_SHARE * depth


def _corner_lines(v: np.ndarray, st: Straightened, lat_mm: float, ap_range: tuple[float, float], top: int,
                  bottom: int) -> tuple[_RoughEdges, _RoughEdges] | None:
    """The corner columns (KEYPOINT_INSETS_MM[1] inside the walls) on one sagittal plane, whose edges give
    the endplates' lines through their rims; None where one shows no endplates."""
    ant, post = ap_range
    inset = T.KEYPOINT_INSETS_MM[1]
    front, back = (_column_edges(v, st, a_mm, lat_mm, top, bottom, None)[0] for a_mm in (ant + inset, post - inset))
    return None if front is None or back is None else (front, back)


def _depths(rough: _RoughEdges, lines: tuple[_RoughEdges, _RoughEdges]) -> tuple[float, float]:
    """How far (mm) a column's superior and inferior edges lie inside the lines through the corners' edges."""
    front, back = lines
    return _inside_lines(rough.ap_mm, rough.superior, rough.inferior, (front.ap_mm, front.superior, front.inferior),
                         (back.ap_mm, back.superior, back.inferior))


def _middle_column(columns: list[float], v: np.ndarray, st: Straightened, top: int, bottom: int
                   ) -> tuple[_ColumnEdges | None, str | None]:
    """The middle column's endplates on the mid-sagittal plane at the first candidate position (ap mm) where
    both show (the middle height is taken halfway whenever it shows there); or None and the reason."""
    for a_mm in columns:
        rough, cut = _column_edges(v, st, a_mm, 0.0, top, bottom, None)
        if cut:
            return None, _cut_by_field("middle")
        edges = None if rough is None else _surfaces(rough, top, bottom, st)
        if edges is not None:
            return edges, None
    return None, _not_found("middle")


def _not_found(name: str) -> str:
    """The reason a column gives when no candidate position shows its endplates (none was cut by the field)."""
    return f"{name} endplates not found"


def _cut_by_field(name: str) -> str:
    """The reason a column gives when a candidate position runs out of the scanned field."""
    return f"{name} endplates cut by the field of view"


ENDPLATES_NOT_FOUND = tuple(_not_found(name) for name in HEIGHT_KEYPOINTS)
ENDPLATES_CUT = tuple(_cut_by_field(name) for name in HEIGHT_KEYPOINTS)


def _column_edges(v: np.ndarray, st: Straightened, a_mm: float, lat_mm: float, top: int, bottom: int,
                  middle: _ColumnEdges | None, slopes: tuple[float, float] | None = None
                  ) -> tuple[_RoughEdges | None, bool]:
    """The endplate edges on one column (None: not found), and whether the column leaves the scanned volume.

    Without ``middle`` (the middle column itself) the edges are searched next to the discs, otherwise
    between the disc and ENDPLATE_TILT_MM past the middle column's, on a column that lies inside the body;
    with ``slopes`` (each plate's sinking per mm from the middle towards this column, _plate_slopes), to
    ENDPLATE_PLANE_SLACK_MM past where the plate's line reaches, where that is further.
    """
    search, margin = int(T.EDGE_SEARCH_MM), T.DISC_MIDDLE_MARGIN_MM
    prof = _column_profile(v, st.half_ap + a_mm, st.half_lat + int(round(lat_mm / st.step_mm)))
    if (prof[max(0, top - search):bottom + search + 1] <= T.OUTSIDE_FOV_HU).any():
        return None, True
    # An endplate edge rises from the disc's soft tissue to bone. Gas in a degenerate disc (the vacuum
    # phenomenon, down to -900 HU) rises to the disc's level more steeply than a thin endplate rises to
    # bone; below soft tissue nothing counts, so that rise is gone.
    floored = np.maximum(prof, T.SOFT_TISSUE_HU)
    grad = _edge_gradient(floored)
    if middle is None:
        # A biconcave body's endplates sink into it at the middle (grade 3: 5-8 mm beyond their rims), so
        # an edge still steepening at the window's inner end is followed inwards, short of the body's middle.
        centre = 0.5 * (top + bottom)
        reach_sup, reach_inf = int(centre - 0.5 * T.BODY_MIN_HEIGHT_MM), int(centre + 0.5 * T.BODY_MIN_HEIGHT_MM)
        sup = _edge(grad, top - 2, top + search, +1, reach=reach_sup, prof=floored, disc=top)
        inf = _edge(grad, bottom - search, bottom + 2, -1, reach=reach_inf, prof=floored, disc=bottom)
        # Osteoporotic marrow can be as dark as the disc: then only the cortical shell shows, and a depressed
        # middle endplate lies past the window in a flat stretch. Where the window shows no edge at all, the
        # edge is looked for on inwards, short of the body's middle.
        if sup is None:
            sup = _edge(grad, top + search, reach_sup + 1, +1)
        if inf is None:
            inf = _edge(grad, reach_inf, bottom - search + 1, -1)
    else:
        # From the disc's middle (never across it: there lies the neighbour's endplate, which faces the
        # other way) to ENDPLATE_TILT_MM past the middle column's edge (a wedge's front sinks further in than
        # its middle). The corners are the endplate's rim, next to the disc however deep its middle sank: a
        # depressed endplate (verse19-007's T12, an expert's grade 2) sinks 6-7 mm at the middle with its back
        # rim 1 mm from the disc, and searched only within ENDPLATE_TILT_MM of the middle, the back corner was
        # read 11 mm in on three of eight grid variants. Where the middle edge was followed into a biconcave
        # depression, the window's inner end is the depression's.
        tilt_sup = tilt_inf = T.ENDPLATE_TILT_MM
        if slopes is not None:
            reach = abs(a_mm - middle.rough.ap_mm)
            tilt_sup = max(tilt_sup, slopes[0] * reach + T.ENDPLATE_PLANE_SLACK_MM)
            tilt_inf = max(tilt_inf, slopes[1] * reach + T.ENDPLATE_PLANE_SLACK_MM)
        # Sunk: followed past the middle column's window (its last row +- the sub-voxel half row).
        sunk_sup = middle.rough.superior > top + search - 0.5
        sunk_inf = middle.rough.inferior < bottom - search - 0.5
        sup_lo = top - margin
        sup_hi = (top + search if sunk_sup else middle.rough.superior) + tilt_sup
        inf_lo = (bottom - search if sunk_inf else middle.rough.inferior) - tilt_inf
        inf_hi = bottom + margin
        sup = _edge(grad, int(sup_lo), int(sup_hi) + 1, +1)
        inf = _edge(grad, int(inf_lo), int(inf_hi) + 1, -1)
    if sup is None or inf is None or inf - sup < T.BODY_MIN_HEIGHT_MM:
        return None, False
    marrow = float(np.median(prof[int(sup) + 2:int(inf) - 1]))
    if middle is not None and marrow < 0.5 * (middle.rough.marrow + T.SOFT_TISSUE_HU):
        return None, False  # a corner column blurred into the tissue outside the wall: not inside the body
    strength = min(grad[int(round(sup))], -grad[int(round(inf))])
    return _RoughEdges(a_mm, lat_mm, floored, sup, inf, marrow, float(strength)), False


def _edge_gradient(prof: np.ndarray) -> np.ndarray:
    """The slope (HU per row) endplate edges are found on: of the profile smoothed by a Gaussian of 0.8 rows,
    so a single noisy row makes no edge."""
    return np.gradient(ndimage.gaussian_filter1d(prof, 0.8))


def _surfaces(rough: _RoughEdges, top: int, bottom: int, st: Straightened) -> _ColumnEdges | None:
    """The endplate surfaces of a column (shell model fitted at each edge); None where one lies across
    the disc's middle (there lies the neighbour's endplate)."""
    margin = T.DISC_MIDDLE_MARGIN_MM
    blur = slice_blur(st, 0.5 * (top + bottom))
    thick = None
    if blur is not None and st.slices is not None:  # thick slices whose stack the straightening kept
        ap, cl = st.half_ap + rough.ap_mm, st.half_lat + int(round(rough.lat_mm / st.step_mm))
        thick = _ThickColumn(st, ap, cl, 0.5 * (rough.superior + rough.inferior))
    superior = _endplate_surface(rough.profile, rough.superior, +1, blur, thick)
    inferior = _endplate_surface(rough.profile, rough.inferior, -1, blur, thick)
    if superior < top - margin or inferior > bottom + margin:
        return None
    return _ColumnEdges(rough, superior, inferior)


def _column_profile(v: np.ndarray, ap: float, cl: int) -> np.ndarray:
    """Mean along the rows of a column 3 mm deep (centred on the fractional ap) and 5 mm wide."""
    i = int(np.floor(ap))
    f = ap - i
    lo = max(0, i - 1)
    block = v[:, lo:i + 3, cl - 2:cl + 3].mean(axis=2)  # columns i-1 .. i+2
    if block.shape[1] < 4:
        return block.mean(axis=1)
    return ((1 - f) * block[:, :3] + f * block[:, 1:4]).mean(axis=1)


@dataclass(frozen=True)
class _ThickColumn:
    """A column of a thick-slice CT, for the sampled shell fit: where it lies, and the row halfway between
    its endplates' edges, which the fit's window does not pass."""
    st: Straightened
    ap: float     # fractional ap index
    cl: int       # lat index
    halfway: float


def _endplate_surface(prof: np.ndarray, rough: float, inward: int, blur: float | None = None,
                      thick: _ThickColumn | None = None) -> float:
    """Endplate surface near the steepest-slope row ``rough``: shell model fitted from the disc's centre
    (the darkest row within EDGE_SEARCH_MM outside) to SHELL_FIT_IN_MM inside the edge.

    On a thick-slice CT (``thick``) one slice often holds the whole edge, and there the surface trades
    against the cortex's density: 1 mm further out is a cortex 100 HU fainter where marrow and disc
    differ by 100 HU. Each model settles the trade its own way. The Gaussian one (blur fixed by
    slice_blur) errs with the slices' phase, by -0.7 to +0.9 mm, and scatters little (0.2 mm at one
    phase). The slices' own sampling (sampled_shell_surface, fitted to SHELL_FIT_IN_THICK_MM inside,
    short of the row halfway to the other endplate) errs little with the phase and scatters 0.5 mm.
    The surface is their mean: on a batch of 30 3 mm phantoms a normal body's middle endplate erred
    0.71-0.74 mm (standard deviation) with the Gaussian model, 0.63-0.77 with the sampled one, 0.62-0.65
    with the mean (benchmarks/phantom_eval.py --preset fast --seed 6).
    """
    r = int(round(rough))
    outer = r - inward * T.SHELL_FIT_OUT_MM
    span = prof[min(r, outer):max(r, outer) + 1]
    if len(span) == 0:
        return rough
    darkest = min(r, outer) + int(np.argmin(span))
    inner = r + inward * T.SHELL_FIT_IN_MM
    surface = shell_surface(prof, min(darkest, inner), max(darkest, inner) + 1, inward, rough, blur)
    if thick is not None:
        sampled = _sampled_surface(prof, rough, inward, darkest, thick)
        if sampled is not None and abs(sampled - rough) <= T.SHELL_MAX_SHIFT_MM:
            surface = sampled if surface is None else 0.5 * (surface + sampled)
    return surface if surface is not None and abs(surface - rough) <= T.SHELL_MAX_SHIFT_MM else rough


def _sampled_surface(prof: np.ndarray, rough: float, inward: int, darkest: int, thick: _ThickColumn) -> float | None:
    """The endplate surface by the slices' own sampling (sampled_shell_surface), fitted from the disc's
    darkest row to SHELL_FIT_IN_THICK_MM inside the edge, short of the row halfway to the other endplate."""
    inner = int(round(rough)) + inward * T.SHELL_FIT_IN_THICK_MM
    inner = int(min(inner, np.floor(thick.halfway)) if inward > 0 else max(inner, np.ceil(thick.halfway)))
    lo, hi = max(0, min(darkest, inner)), min(len(prof), max(darkest, inner) + 1)
    sampling = column_sampling(thick.st, thick.ap, thick.cl, np.arange(lo, hi))
    return None if sampling is None else sampled_shell_surface(prof, lo, hi, inward, rough, sampling)


def slice_blur(st: Straightened, row: float) -> float | None:
    """The blur (a Gaussian's sigma, mm) that thick slices give an endplate near ``row``, or None where the
    CT samples the spine finely enough (under MODELLED_BLUR_SPACING_MM) for the shell fit to find the blur itself.

    A slice averages the anatomy over its thickness (a box: variance t^2 / 12), and the straightening's
    linear interpolation between slices s apart adds a triangle (variance s^2 / 6): for slices as thick as
    they are apart, s^2 / 4, plus the scanner's own blur (SCANNER_BLUR_MM). Overlapping slices (t > s) are
    taken as thick as they are where the series says so (Straightened.thick_sampling_at). With the blur left free, a
    shell sampled only every 3 mm lets the fitted surface trade against the blur and the shell's density:
    on simulated 3 mm profiles (random phase, tilt, cortex and marrow) the surface's error spread 1.15 mm
    with the blur free, 0.87 mm with it fixed so (0.15 mm either way on 1 mm slices).
    """
    sampling = st.thick_sampling_at(row)
    if sampling is None:
        return None
    spacing, thickness = sampling
    return float(np.sqrt(thickness ** 2 / 12 + spacing ** 2 / 6 + T.SCANNER_BLUR_MM ** 2))


def _edge(grad: np.ndarray, lo: int, hi: int, sign: int, reach: int | None = None,
          prof: np.ndarray | None = None, disc: int | None = None) -> float | None:
    """Row of a body's endplate edge in [lo, hi): rising (sign +1, superior) or falling (-1, inferior),
    to sub-voxel by a parabola.

    Across a thin disc (upper thoracic, 3-5 mm) the window also holds the neighbour's cortex: its
    inner side rises (superior) or falls (inferior) as steeply as this body's edge where the marrow
    is osteoporotic. This body's edge is the one that faces the disc from this side: the most caudal
    strong rise for a superior endplate, the most cranial strong fall for an inferior one. But the
    marrow's own mottle dips too (fatty spots, a coarse osteoporotic texture): where the disc is blurred
    away, the edge out of such a dip is as strong, and lies further in. With the profile and the disc's
    middle row given, an edge with bone brighter than its own inner side between it and the disc
    (EDGE_RIDGE_HU more: the endplate's cortex, which it lies past) gives way to the next one out.
    """
    lo, hi = max(1, lo), min(len(grad) - 1, hi)
    if hi - lo < 2:
        return None
    g = sign * grad[lo:hi]
    strongest = float(g.max())
    if strongest < T.ENDPLATE_MIN_STEP_HU:
        return None
    peaks = [k for k in range(len(g)) if g[k] >= T.EDGE_SHARE * strongest
             and (k == 0 or g[k] >= g[k - 1]) and (k == len(g) - 1 or g[k] >= g[k + 1])]
    order = sorted(peaks, reverse=sign > 0)  # the innermost first
    k = order[0]
    if prof is not None and disc is not None:
        for position, candidate in enumerate(order[:-1]):
            row = lo + candidate
            if not (_past_the_cortex(prof, row, sign, disc) or _rises_from_marrow(prof, row, sign, disc, grad)):
                break
            k = order[position + 1]
    i = lo + k
    if reach is not None and k == (len(g) - 1 if sign > 0 else 0):
        # Still steepening at the window's inner end: the edge is the slope's crest further in.
        while 0 < i + sign < len(grad) - 1 and (i + sign - reach) * sign < 0 and sign * grad[i + sign] > sign * grad[i]:
            i += sign
    y0, y1, y2 = sign * grad[i - 1], sign * grad[i], sign * grad[i + 1]
    den = y0 - 2 * y1 + y2
    off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    return i + float(np.clip(off, -0.5, 0.5))


def _rises_from_marrow(prof: np.ndarray, row: int, sign: int, disc: int, grad: np.ndarray | None = None) -> bool:
    """Whether an edge at ``row`` (facing the disc's middle row ``disc`` from below, sign +1, or above, -1)
    rises out of a dip of the marrow rather than out of the disc.

    An endplate's edge rises from the disc's soft tissue (or from disc tissue pressed into a depressed
    endplate) to bone. Noise and the marrow's mottle dip too, and a rise out of such a dip is as steep as a
    blurred thin disc's edge (tcia with 30 HU noise added, 3 mm: T7's middle edge taken 6 mm into the body,
    out of a 270 HU dip in 330 HU marrow, above a 212 HU disc; a false grade 3). Such a rise starts from a
    foot (the profile's low point just outside it, or nearer, a shoulder where the rise flattens: _shoulder)
    that is nearer the marrow than the disc: more than
    EDGE_FOOT_SHARE of the way from the disc's darkest row up to the edge's inner side. Where marrow and disc
    differ by less than EDGE_RIDGE_HU (osteoporotic marrow) no foot is told apart."""
    if (row - disc) * sign <= 1:
        return False
    n = len(prof)
    inner = _inner_side(prof, row, sign)
    darkest = float(prof[min(disc, row):max(disc, row) + 1].min())
    if inner - darkest < T.EDGE_RIDGE_HU:
        return False
    foot = row - sign
    while 0 < foot < n - 1 and (foot - disc) * sign > 0 and prof[foot - sign] < prof[foot]:
        foot -= sign
    slope = sign * (_edge_gradient(prof) if grad is None else grad)
    return bool(prof[_shoulder(slope, row, sign, foot)] - darkest > T.EDGE_FOOT_SHARE * (inner - darkest))


def _shoulder(slope: np.ndarray, row: int, sign: int, foot: int) -> int:
    """Where the rise of an edge at ``row`` begins: its foot (the profile's low point just outside it), or
    nearer, a shoulder where the rise flattens before it steepens again (walking out from the edge, the
    smoothed slope, _edge_gradient's, stops falling while still rising).

    A rise in two steps with no dip between them, out of a faint disc to a plateau and on to brighter bone
    further in (tcia's T6 under a degenerate, nearly bony T5/T6 disc, 244 HU against 310-345 HU marrow), has
    two edges; the inner one is the next step of the marrow, not the endplate, and where it stood a little
    steeper than half the outer one (one grid phase in two) the middle endplate was read 5 mm in."""
    r = row - sign
    while (r - foot) * sign > 0 and 0 < slope[r - sign] < slope[r]:
        r -= sign
    return r


def _past_the_cortex(prof: np.ndarray, row: int, sign: int, disc: int) -> bool:
    """Whether bone EDGE_RIDGE_HU brighter than the inner side of an edge at ``row`` (facing the disc's
    middle row ``disc`` from below, sign +1, or above, -1) lies between the edge and the disc."""
    if (row - disc) * sign <= 1:
        return False
    between = prof[min(disc, row - sign):max(disc, row - sign) + 1]
    return bool(between.max() > _inner_side(prof, row, sign) + T.EDGE_RIDGE_HU)


def _inner_side(prof: np.ndarray, row: int, sign: int) -> float:
    """The profile two rows inside an edge at ``row`` (sign +1: the body lies below it, -1: above): the bone
    the edge rises to, clear of its own slope."""
    return float(prof[int(np.clip(row + 2 * sign, 0, len(prof) - 1))])
