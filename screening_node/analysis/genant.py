"""Genant semi-quantitative grade and morphology from three body heights, and which measured heights can be graded.

Why here and nowhere else: the SR, the summary and the evaluator all trust these
rules; every band edge is in thresholds.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Sequence

import numpy as np

from screening_node.analysis import thresholds as T
from screening_node.analysis.results import HEIGHT_KEYPOINTS

OUT_OF_RANGE_REASON = "measured heights outside the plausible range"
MIDDLE_TOO_TALL_REASON = ("middle height well above both wall heights: an endplate in the middle of the body "
                          "was not traced")
ANTERIOR_TOO_TALL_REASON = ("anterior height far above the posterior one: an endplate at the back of the body was "
                            "not traced")
MERGED_BODIES_REASON = ("as tall as two of its neighbours: probably two bodies with a disc between them that was "
                        "not found")
CROSSED_ENDPLATE_REASON = ("an endplate was read past the neighbouring body's facing endplate, or closer to it than "
                           "the slices can tell apart, across the disc between them: the trace ran into the neighbour")
BULGING_ENDPLATE_REASON = ("an endplate read bulging {:.1f} mm towards its disc beyond the line through its corners "
                           "(endplates are flat or concave): a corner or its middle was misread")


@dataclass(frozen=True)
class GenantRead:
    height_loss: float  # fraction 0..1
    grade: int
    morphology: str  # normal | wedge | biconcave | crush


def grade_from_loss(loss: float) -> int:
    """Genant band of a height-loss fraction: <20 % 0, 20-25 % 1, 25-40 % 2, >40 % 3."""
    if loss > T.GENANT_SEVERE:
        return 3
    if loss >= T.GENANT_MODERATE:
        return 2
    if loss >= T.GENANT_MILD:
        return 1
    return 0


def genant(heights: dict[str, float], neighbour_posteriors: Sequence[float] = (), level: str | None = None
           ) -> GenantRead:
    """Grade one body (``level``: its label, where known).

    Shape reduction r = 1 - min(h)/max(h); crush reduction = 1 - max(h)/median(neighbours' h_p)
    (all heights lower than the neighbours' posterior heights). The larger decides. The median: one
    neighbour measured too tall (two bodies taken for one where a disc was missed) must not make a
    normal body a crush fracture when the others agree with it. At L5 the shape reduction discounts
    the normal L5's shorter back (shape_heights).
    """
    loss, lowest = height_loss(heights, neighbour_posteriors, level)
    grade = grade_from_loss(loss)
    morphology = MORPHOLOGY_OF[lowest] if grade > 0 else "normal"
    return GenantRead(height_loss=round(loss, 4), grade=grade, morphology=morphology)


MORPHOLOGY_OF = {"anterior": "wedge", "middle": "biconcave", "posterior": "crush", "neighbours": "crush"}


def height_loss(heights: dict[str, float], neighbour_posteriors: Sequence[float] = (), level: str | None = None
                ) -> tuple[float, str]:
    """The height loss genant grades, and which height sets it ("neighbours": all of the body's heights
    against its neighbours' posterior ones). Unrounded, so loss_spread can difference it."""
    h = {k: float(heights[k]) for k in ("anterior", "middle", "posterior")}
    hmax = max(h.values())
    if hmax <= 0:
        raise ValueError("heights must be positive")
    shape = shape_heights(h, level)
    shape_loss = 1.0 - min(shape.values()) / max(shape.values())
    crush_loss = 0.0
    if len(neighbour_posteriors) >= T.CRUSH_MIN_NEIGHBOURS:
        crush_loss = tallest_crush_loss(hmax, neighbour_posteriors)
    if crush_loss > shape_loss:
        return crush_loss, "neighbours"
    return shape_loss, min(shape, key=shape.get)  # type: ignore[arg-type]


def tallest_crush_loss(tallest: float, neighbour_posteriors: Sequence[float]) -> float:
    """How far the body's tallest height lies below the median of its neighbours' posterior heights (0 when
    not below): the crush reduction."""
    ref = float(median(neighbour_posteriors))
    return max(0.0, 1.0 - tallest / ref) if ref > 0 else 0.0


def collapsed_anyway(heights: dict[str, float], neighbour_posteriors: Sequence[float], failure: str
                     ) -> GenantRead | None:
    """The grade of a body whose shape was not traced but which is collapsed whatever its shape, or None.

    A failed trace of the shape (a middle far above both walls, a front far above the back, an endplate
    bulging towards its disc) misreads one of its endplates, so its heights cannot be compared with each
    other. A height that the misread endplate makes too tall only lowers the loss read from the tallest
    height; one it makes too short lowers the tallest only where it was the tallest, and a collapsed body's
    heights differ little. Where even the tallest lies COLLAPSE_MIN_LOSS or more below the median of at
    least COLLAPSE_MIN_REFERENCES neighbours' posterior heights (collapsed_failed_traces: on both sides),
    the body has lost at least that much, and is graded a crush from it. (Ten phantom batches: 26 bodies
    refused so with two references; 5 of them, all grade 2-3 fractures, read 25 % or more; the 16 normal
    ones and one grade 1 read at most 12 %.) Failures that misplace the body itself (a trace crossing into
    the neighbour, two bodies taken for one, heights out of any body's range) are not graded so.
    """
    shape_failure = failure in (MIDDLE_TOO_TALL_REASON, ANTERIOR_TOO_TALL_REASON) \
        or failure.startswith(BULGING_ENDPLATE_REASON.split("{")[0])
    if not shape_failure or len(neighbour_posteriors) < T.COLLAPSE_MIN_REFERENCES:
        return None
    loss = tallest_crush_loss(max(float(h) for h in heights.values()), neighbour_posteriors)
    if loss < T.COLLAPSE_MIN_LOSS:
        return None
    return GenantRead(height_loss=round(loss, 4), grade=grade_from_loss(loss), morphology="crush")


def shape_heights(heights: dict[str, float], level: str | None) -> dict[str, float]:
    """The heights the shape reduction compares: the measured ones, except at L5 a posterior height below
    the taller of the other two, which counts as that divided by L5_NORMAL_POSTERIOR_SHARE (never above
    the taller one). A normal L5 is shorter behind than in front (lordosis), which r = 1 - min/max read
    as a posterior "crush"; a posterior deficit counts only beyond the normal one. An L5 wedge (front
    lowest) and an L5 shorter in the middle are graded as anywhere else.
    """
    taller = max(heights["anterior"], heights["middle"])
    if level != "L5" or heights["posterior"] >= taller:
        return heights
    return {**heights, "posterior": min(taller, heights["posterior"] / T.L5_NORMAL_POSTERIOR_SHARE)}


def implausible_heights(heights: dict[str, float], neighbour_posteriors: Sequence[float] = ()) -> str | None:
    """Why these heights cannot be graded, or None when they can.

    Grading trusts the three heights; these are the measurements no vertebral body gives, so a wrong
    trace is reported as such instead of as a fracture (or as a normal body): a height out of the
    range any body has, a middle far above both walls (endplates are flat or concave, and a fracture
    lowers the middle first), a front far taller than the back (only L5 is taller in front, by ~10 %),
    or a body as tall as two of its neighbours (a missed disc; against one neighbour alone that could
    as well be the neighbour crushed to half its height).
    """
    h = [float(heights[k]) for k in ("anterior", "middle", "posterior")]
    if not all(T.BODY_MIN_HEIGHT_MM <= x <= T.BODY_MAX_HEIGHT_MM for x in h):
        return OUT_OF_RANGE_REASON
    if h[1] > (1 + T.MIDDLE_MAX_EXCESS) * max(h[0], h[2]):
        return MIDDLE_TOO_TALL_REASON
    if h[0] > (1 + T.ANTERIOR_MAX_EXCESS) * h[2]:
        return ANTERIOR_TOO_TALL_REASON
    if len(neighbour_posteriors) >= T.MERGED_MIN_REFERENCES \
            and max(h) >= T.MERGED_BODY_RATIO * float(median(neighbour_posteriors)):
        return MERGED_BODIES_REASON
    return None


def crossed_endplates(endplate_rows: list[dict[str, float] | None],
                      min_gaps_mm: list[float] | None = None) -> list[str | None]:
    """Per body (cranial -> caudal, each the next one's neighbour across a disc): CROSSED_ENDPLATE_REASON
    where one of its endplate keypoints lies past the neighbour's facing one, or closer to it than
    ``min_gaps_mm`` (per disc, the one below each body but the last; none: 0), else None.

    ``endplate_rows``: per body, the position along the spine (mm, growing caudally; the straightened
    row) of each keypoint, by keypoint name; None for a body not measured.

    On thick slices two endplates closer than the slices' blur (endplates.slice_blur: 1.6 mm at 3 mm)
    are one bright band, not two surfaces with a disc between: on six batches of 3 mm phantoms each of
    the 8 facing pairs read 0-1.5 mm apart had a keypoint 3.8-5.4 mm off, read across the disc at the
    band's far side (a false grade 2 or 3 in three of them), and none of the 6 read 1.5-2 mm apart.
    On thin slices only an actual crossing counts: a disc can narrow to a millimetre.

    A disc has a thickness, so a body's inferior endplate lies above the next body's superior one in every
    column. Where the two cross, one edge was read across the disc in the neighbour: on 3 mm phantoms every
    crossing (26 among 4425 facing pairs of five batches, none at 1 mm) had a keypoint 3.8-5.4 mm off,
    where the thin discs of the small upper and mid-thoracic bodies blur into their endplates;
    those bodies made most false grades >= 2. The keypoint read in the neighbour is the one that stands
    out from its own endplate towards the disc (an endplate is flat or concave; measured: the right one
    in 25 of the 26), and its body is a failed trace.
    """
    reasons: list[str | None] = [None] * len(endplate_rows)
    gaps = min_gaps_mm or [0.0] * max(len(endplate_rows) - 1, 0)
    for i, (upper, lower) in enumerate(zip(endplate_rows, endplate_rows[1:])):
        if upper is None or lower is None:
            continue
        for column, (superior, inferior) in HEIGHT_KEYPOINTS.items():
            bottom, top = upper[inferior], lower[superior]
            if top - bottom >= gaps[i]:
                continue
            others = [pair for name, pair in HEIGHT_KEYPOINTS.items() if name != column]
            out_of_upper = bottom - sum(upper[i] for _, i in others) / len(others)
            out_of_lower = sum(lower[s] for s, _ in others) / len(others) - top
            reasons[i if out_of_upper > out_of_lower else i + 1] = CROSSED_ENDPLATE_REASON
    return reasons


def endplate_bulge(keypoints_lps: dict[str, Sequence[float]]) -> float:
    """How far (mm) an endplate's middle keypoint stands out towards its disc beyond the line through its two
    corners, the larger of the body's two endplates (negative: concave), along the body's axis (the mean
    of its three heights' directions, so a body tilted against the planes reads as upright)."""
    k = {name: np.asarray(p, dtype=float) for name, p in keypoints_lps.items()}
    axis = sum(k[s] - k[i] for s, i in HEIGHT_KEYPOINTS.values())
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    bulges = []
    for side, outward in (("superior", 1.0), ("inferior", -1.0)):
        front, middle, back = (k[f"{side}_{name}"] for name in ("anterior", "middle", "posterior"))
        span = back - front
        across = span - axis * float(span @ axis)  # the corner-to-corner run square to the axis
        share = float((middle - front) @ across) / max(float(across @ across), 1e-9)
        bulges.append(outward * float((middle - (front + share * span)) @ axis))
    return max(bulges)


def bulging_endplates(keypoints_lps: list[dict[str, Sequence[float]] | None]) -> list[str | None]:
    """Per body, BULGING_ENDPLATE_REASON where an endplate bulges ENDPLATE_MAX_BULGE_MM or more towards its
    disc (endplate_bulge), else None (also for a body not measured).

    An endplate is flat or concave, and a fracture sinks its middle: a middle standing out towards the disc
    means a corner read inside the body (the ts-example scan cropped by one column read L1's upper back
    corner 8 mm below its middle, its back 24.3 mm instead of 30.1, and the wedge graded 0) or a middle
    read short of its endplate."""
    out: list[str | None] = []
    for kp in keypoints_lps:
        bulge = endplate_bulge(kp) if kp is not None else None
        out.append(BULGING_ENDPLATE_REASON.format(bulge) if bulge is not None and bulge >= T.ENDPLATE_MAX_BULGE_MM
                   else None)
    return out


def failed_traces(heights: list[dict[str, float] | None], referable: list[bool],
                  misread: list[str | None] | None = None) -> tuple[list[str | None], list[list[float]]]:
    """Per body: why its heights are a failed trace (None: they can be graded), and its crush reference.

    ``referable``: per body, whether it may be a neighbour's reference: one Genant grades apply to (T1-L5),
    and C7 above T1 (pipeline._measure).
    ``misread``: per body, a failed trace its keypoints show (an endplate read across the disc,
    crossed_endplates, or bulging towards it, bulging_endplates), judged first.

    A failed trace is judged against every measured neighbour (the median outvotes one failed
    neighbour), then left out of the other bodies' crush references: a "T3" measured over T3 and T4
    made T2 a grade-3 crush.
    """
    misread = misread or [None] * len(heights)
    failed = [None if h is None else misread[i] or implausible_heights(h, _neighbour_posteriors(heights, referable, i))
              for i, h in enumerate(heights)]
    kept = _kept(heights, failed)
    return failed, [_neighbour_posteriors(kept, referable, i) for i in range(len(heights))]


def _kept(heights: list[dict[str, float] | None], failed: list[str | None]) -> list[dict[str, float] | None]:
    """The heights that may be crush references: a failed trace's are none (failed_traces)."""
    return [None if reason is not None else h for h, reason in zip(heights, failed)]


def _neighbour_posteriors(heights: list[dict[str, float] | None], referable: list[bool], i: int) -> list[float]:
    """Posterior heights of the measured, referable bodies (failed_traces) nearest body i: up to
    CRUSH_REFERENCE_PER_SIDE on each side, looked for within that many places (a body in between may be
    unmeasured), as many above as below where both sides have one.

    Two per side, not one: with a median over them (genant) a single neighbour measured as two bodies
    does not turn a normal body into a crush fracture, and neither does a fractured neighbour. As many
    on each side: heights grow by ~1 mm a level down the spine, so two above and one below would set
    the reference low (a grade-2 crush of L4 read as grade 1 against L2, L3 and L5).
    """
    above, below = _neighbour_sides(heights, referable, i)
    return above + below


def _neighbour_sides(heights: list[dict[str, float] | None], referable: list[bool], i: int
                     ) -> tuple[list[float], list[float]]:
    """_neighbour_posteriors' references above and below body i, each side nearest first."""
    reach = T.CRUSH_REFERENCE_PER_SIDE
    sides = [[heights[j]["posterior"] for j in range(i + step, i + step * (reach + 1), step)  # type: ignore[index]
              if 0 <= j < len(heights) and heights[j] is not None and referable[j]]
             for step in (-1, 1)]
    if all(sides):
        n = min(len(side) for side in sides)
        sides = [side[:n] for side in sides]
    return sides[0], sides[1]


def collapsed_failed_traces(heights: list[dict[str, float] | None], referable: list[bool],
                            failed: list[str | None]) -> list[GenantRead | None]:
    """Per body: its grade where its trace failed but it is collapsed anyway (collapsed_anyway), else None.

    Only against measured neighbours on both sides (failed traces left out, as for every crush reference):
    the crop of verse19-007 cut by two bottom slices split its cut top body at a false disc, and the 6-10 mm
    fragment, whose endplates bulged, read 58 % below the two bodies under it, a false grade 3; with nothing
    measured above, a body at the end of the measured run is not graded so.
    """
    kept = _kept(heights, failed)
    out: list[GenantRead | None] = []
    for i, (h, reason) in enumerate(zip(heights, failed)):
        above, below = _neighbour_sides(kept, referable, i)
        out.append(collapsed_anyway(h, above + below, reason) if h is not None and reason is not None
                   and above and below else None)
    return out
