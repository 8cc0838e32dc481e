"""Degenerative change of an ageing spine: marginal osteophytes, vacuum discs, calcified aortic plaques,
Schmorl's nodes.

The screening population is 50-90 years old, and nearly every CT of it shows some of these. Each
imitates something the analysis reads: an osteophyte is cortical bone beside an endplate corner, a
vacuum disc is gas where a disc dip is expected, a calcified plaque on the aorta's back wall is a
cortex-bright line a few mm in front of a vertebral body. A Schmorl's node (disc herniated through an
endplate into the body: a pit 5-10 mm across and a few mm deep, filled with disc tissue and rimmed with
sclerotic bone) is a focal dip of the endplate where a reader measures the middle height. None of them
belongs to the vertebral body's morphometry: truth heights, keypoints and the body label mask are
unchanged (a reader leaves osteophytes out and measures the endplate across a node, which is no
fracture).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from screening_node.phantom.anatomy import SpinePlan, VertebraPlan
from screening_node.phantom.body import AORTA
from screening_node.phantom.grid import Canvas, Grid, bone, ellipse_inward, ellipsoid_inward, local_box, paint, \
    to_local
from screening_node.phantom.skeleton import DISC_HU

# Per grade: levels whose endplates may carry a spur, the chance per endplate, spur length range (mm out
# from the wall), chance of a vacuum cleft in each of the two lowest lumbar discs, number of aortic plaques.
GRADES = {
    "moderate": {"levels": ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"), "spur_chance": 0.5,
                 "spur_mm": (2.0, 4.0), "vacuum_chance": 0.3, "plaques": 4},
    "severe": {"levels": ("T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"),
               "spur_chance": 0.8, "spur_mm": (3.0, 7.0), "vacuum_chance": 0.7, "plaques": 10},
}
SPUR_RISE = {"T": 0.3, "L": 0.45}  # mm a spur rises towards the disc per mm out (thoracic discs are thin)
SPUR_HALF_THICKNESS_MM = (2.0, 0.4)  # at its base and at its tip
VACUUM_HU = -850.0
PLAQUE_HU = 900.0     # calcium in the aortic wall
PLAQUE_RADIUS_MM = 1.0  # a 2 mm thick calcified plaque
NODE_LEVELS = ("T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")  # where nodes are common
NODE_RADIUS_MM = (2.5, 5.0)  # half the pit's width across the endplate
NODE_DEPTH_MM = (2.0, 5.0)  # how far it reaches into the body
NODE_MAX_DEPTH_SHARE = 0.2  # of the body's height: a node does not cross the body
NODE_RIM_MM = 1.0  # its sclerotic rim


@dataclass(frozen=True)
class Spur:
    """An osteophyte along part of one endplate's rim."""

    level: str
    end: str            # "top" or "bottom" endplate
    length_mm: float    # how far it reaches out from the body's wall
    centre_rad: float   # its middle around the rim (local x = a cos t, y = b sin t; -pi/2 is anterior)
    half_span_rad: float


@dataclass(frozen=True)
class Plaque:
    """A calcified plaque in the aortic wall."""

    s_mm: float          # arc length along the spine (the aorta runs beside it)
    length_mm: float
    angle_rad: float     # around the wall: 0 faces the spine (posterior), pi/2 the patient's left


@dataclass(frozen=True)
class SchmorlNode:
    """Disc herniated through one endplate into its body: a half-ellipsoid pit with a sclerotic rim."""

    level: str
    end: str             # "top" or "bottom" endplate
    x_mm: float          # the pit's centre on the endplate, in the body's local frame (x: left)
    y_mm: float          # (y: posterior; 0 is the body's centre)
    radius_mm: float     # half its width
    depth_mm: float      # how far it reaches into the body below the endplate


@dataclass(frozen=True)
class Degeneration:
    spurs: tuple[Spur, ...] = ()
    vacuum_discs: tuple[str, ...] = ()  # the upper level of each disc with a gas cleft (L4 = the L4/L5 disc)
    plaques: tuple[Plaque, ...] = field(default_factory=tuple)
    nodes: tuple[SchmorlNode, ...] = ()


def plan_degeneration(plan: SpinePlan, grade: str, rng: np.random.Generator) -> Degeneration:
    """Where the spurs, clefts and plaques of this grade lie (seeded: the same options, the same change)."""
    if grade == "none":
        return Degeneration()
    g = GRADES[grade]
    present = {v.label for v in plan.vertebrae}
    spurs = []
    for level in g["levels"]:
        if level not in present:
            continue
        for end in ("top", "bottom"):
            if rng.random() < g["spur_chance"]:
                spurs.append(Spur(level, end, float(rng.uniform(*g["spur_mm"])),
                                  float(-np.pi / 2 + rng.uniform(-0.5, 0.5)), float(rng.uniform(0.6, 1.5))))
    vacuum = tuple(level for level in ("L4", "L5") if level in present and rng.random() < g["vacuum_chance"])
    plaques = []
    if AORTA.start in present and AORTA.end in present:
        s0, s1 = plan.by_label(AORTA.start).s_mm, plan.by_label(AORTA.end).s_mm
        for _ in range(g["plaques"]):
            # half of them on the back wall, facing the vertebral bodies
            angle = rng.uniform(-1.0, 1.0) if rng.random() < 0.5 else rng.uniform(-np.pi, np.pi)
            plaques.append(Plaque(float(rng.uniform(s0, s1)), float(rng.uniform(4.0, 15.0)), float(angle)))
    return Degeneration(tuple(spurs), vacuum, tuple(plaques))


def plan_schmorl_nodes(plan: SpinePlan, chance: float, rng: np.random.Generator) -> tuple[SchmorlNode, ...]:
    """Schmorl's nodes at T6-L5, each endplate with ``chance``: central or a little behind the centre,
    where they are usually found (seeded: the same options, the same nodes)."""
    nodes = []
    for v in plan.vertebrae:
        if v.label not in NODE_LEVELS:
            continue
        shape = v.shape
        height = min(shape.heights().values())
        half_depth = 0.5 * (shape.y_p - shape.y_a)
        for end in ("top", "bottom"):
            if rng.random() >= chance:
                continue
            nodes.append(SchmorlNode(
                v.label, end, float(rng.uniform(-0.3, 0.3) * shape.ax),
                float(shape.y_m + rng.uniform(-0.25, 0.35) * half_depth), float(rng.uniform(*NODE_RADIUS_MM)),
                float(min(rng.uniform(*NODE_DEPTH_MM), NODE_MAX_DEPTH_SHARE * height))))
    return tuple(nodes)


def paint_degeneration(volume: np.ndarray, grid: Grid, plan: SpinePlan, change: Degeneration, width: float) -> None:
    """Paint the spurs, vacuum clefts, plaques and nodes (after the spine: they lie beside or inside it)."""
    for spur in change.spurs:
        _paint_spur(volume, grid, plan.by_label(spur.level), spur, width)
    for level in change.vacuum_discs:
        upper = plan.by_label(level)
        below = [v for v in plan.vertebrae if v.s_mm > upper.s_mm]
        if below:
            _paint_vacuum(volume, grid, upper, below[0], width)
    for plaque in change.plaques:
        _paint_plaque(volume, grid, plan, plaque, width)
    for node in change.nodes:
        _paint_node(volume, grid, plan.by_label(node.level), node, width)


def _paint_node(volume: np.ndarray, grid: Grid, v: VertebraPlan, node: SchmorlNode, width: float) -> None:
    """A pit of disc tissue through the endplate into the body, rimmed with sclerotic bone (on the body's
    side of the endplate only: the disc beside it is left as it is)."""
    shape = v.shape
    x0, y0 = np.float32(node.x_mm), np.float32(node.y_mm)
    surface = shape.z_top if node.end == "top" else shape.z_bot
    z0 = float(surface(x0, y0))
    reach = node.radius_mm + NODE_RIM_MM + 2
    box = grid.box(*local_box(v.to_world([node.x_mm, node.y_mm, z0]), v.frame,
                              np.array([reach, reach, node.depth_mm + NODE_RIM_MM + 2])))
    if box is None:
        return
    lx, ly, lz = to_local(*grid.coords(box), v.centre, v.frame)
    sign = 1.0 if node.end == "top" else -1.0
    below = sign * (surface(lx, ly) - lz)  # mm inside the body from this endplate
    u, w, t = lx - x0, ly - y0, lz - np.float32(z0)
    r, h = node.radius_mm, node.depth_mm
    rim = np.minimum(ellipsoid_inward(u, w, t, r + NODE_RIM_MM, r + NODE_RIM_MM, h + NODE_RIM_MM), below)
    paint(volume, box, rim, v.cortical_hu, width)
    pit = np.minimum(ellipsoid_inward(u, w, t, r, r, h), below + np.float32(0.5))  # open through the endplate's cortex
    paint(volume, box, pit, DISC_HU, width)


def _paint_spur(volume: np.ndarray, grid: Grid, v: VertebraPlan, spur: Spur, width: float) -> None:
    """A lip of bone out from the rim of one endplate, tapering, curving towards the disc."""
    shape = v.shape
    length = spur.length_mm
    heights = max(shape.top_a, shape.top_p, shape.bot_a, shape.bot_p)
    box = grid.box(*local_box(v.centre, v.frame, np.array([shape.ax + length + 3, shape.ay + length + 3,
                                                            heights + length + 4])))
    if box is None:
        return
    lx, ly, lz = to_local(*grid.coords(box), v.centre, v.frame)
    out = -ellipse_inward(lx, ly, shape.ax, shape.ay)  # mm outside the wall (negative inside)
    rim = shape.plate(np.clip(ly, shape.y_a, shape.y_p), spur.end)
    sign = 1.0 if spur.end == "top" else -1.0
    rise = SPUR_RISE.get(v.region, SPUR_RISE["L"])
    along = np.clip(out, 0.0, length)
    middle = rim + sign * (rise * along - 0.5)  # starts just inside the endplate's cortex
    base, tip = SPUR_HALF_THICKNESS_MM
    half = base + (tip - base) * along / length
    theta = np.arctan2(ly / shape.ay, lx / shape.ax)
    off = np.abs(np.angle(np.exp(1j * (theta - spur.centre_rad))))
    d = np.minimum.reduce([half - np.abs(lz - middle), length - out, out + 0.5,
                           (spur.half_span_rad - off) * min(shape.ax, shape.ay)]).astype(np.float32)
    paint(volume, box, d, bone(v.cortical_hu, 250.0, 1.0), width)


def _paint_vacuum(volume: np.ndarray, grid: Grid, upper: VertebraPlan, lower: VertebraPlan, width: float) -> None:
    """A flat gas cleft in the middle of the disc between two bodies."""
    bottom = upper.to_world([0.0, upper.shape.y_m, -0.5 * (upper.shape.bot_a + upper.shape.bot_p)])
    top = lower.to_world([0.0, lower.shape.y_m, 0.5 * (lower.shape.top_a + lower.shape.top_p)])
    centre = 0.5 * (bottom + top)
    gap = float(np.linalg.norm(bottom - top))
    semi = (0.45 * upper.shape.ax, 0.35 * upper.shape.ay, max(0.6, min(1.5, 0.2 * gap)))
    box = grid.box(*local_box(centre, upper.frame, np.array(semi) + 2))
    if box is None:
        return
    d = ellipsoid_inward(*to_local(*grid.coords(box), centre, upper.frame), *semi)
    paint(volume, box, d, VACUUM_HU, width)


def _paint_plaque(volume: np.ndarray, grid: Grid, plan: SpinePlan, plaque: Plaque, width: float) -> None:
    """A short calcified streak in the aortic wall, along the vessel."""
    ends = []
    for s in (plaque.s_mm - plaque.length_mm / 2, plaque.s_mm + plaque.length_mm / 2):
        centre, frame = AORTA.centre(plan, s)
        r = AORTA.radius  # the wall
        ends.append(centre + frame @ np.array([r * np.sin(plaque.angle_rad), r * np.cos(plaque.angle_rad), 0.0]))
    canvas = Canvas(grid, np.minimum(*ends) - 4, np.maximum(*ends) + 4)
    canvas.add_capsule(ends[0], ends[1], PLAQUE_RADIUS_MM)
    paint(volume, canvas.box, canvas.d, PLAQUE_HU, width)
