"""Bones of the phantom: vertebral bodies, discs, posterior elements, canal and cord, ribs,
sternum, sacrum and pelvis. Positions are LPS mm; each vertebra is drawn in its own frame.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from screening_node.analysis.results import LEVELS
from screening_node.phantom.anatomy import SpinePlan, VertebraPlan
from screening_node.phantom.body import Torso
from screening_node.phantom.fractures import BodyShape
from screening_node.phantom.grid import (Canvas, Grid, bone, bone_value, ellipse_inward, ellipsoid_inward,
                                         local_box, marrow_fraction, paint, to_local)
from screening_node.phantom.texture import Texture

DISC_HU = 85.0
CSF_HU = 10.0
CORD_HU = 35.0
CARTILAGE_HU = 120.0
BODY_SHELL_MM = 1.0  # cortical shell of a vertebral body


def mask_label(label: str) -> int:
    """Value of a level's body in labels.nii.gz: its index in LEVELS plus one (C1 = 1, L1 = 21, S1 = 27)."""
    return LEVELS.index(label) + 1


def paint_body(volume: np.ndarray, grid: Grid, v: VertebraPlan, width: float,
               labels: np.ndarray | None = None) -> None:
    half = np.array([v.shape.ax + 2, v.shape.ay + 2, max(v.shape.top_p, v.shape.top_a, v.shape.bot_a,
                                                          v.shape.bot_p) + 2])
    box = grid.box(*local_box(v.centre, v.frame, half))
    if box is None:
        return
    lx, ly, lz = to_local(*grid.coords(box), v.centre, v.frame)
    d = v.shape.inward(lx, ly, lz)
    value = bone(v.cortical_hu, v.trabecular_hu, BODY_SHELL_MM)
    if v.texture is not None:
        value = _textured_body(d, lx, ly, lz, v, v.texture)
    paint(volume, box, d, value, width, labels, mask_label(v.label) if labels is not None else 0)


def _textured_body(d: np.ndarray, lx: np.ndarray, ly: np.ndarray, lz: np.ndarray, v: VertebraPlan,
                   texture: Texture) -> np.ndarray:
    """A body's HU with its trabecular texture added to the marrow (the field is evaluated there only)."""
    hu = bone_value(d, v.cortical_hu, v.trabecular_hu, BODY_SHELL_MM)
    fraction = marrow_fraction(d, BODY_SHELL_MM)
    marrow = fraction > 0
    shape = d.shape
    points = [np.broadcast_to(c, shape)[marrow] for c in (lx, ly, lz)]
    hu[marrow] += fraction[marrow] * texture.at(*points)
    return hu


def paint_disc(volume: np.ndarray, grid: Grid, upper: VertebraPlan, lower: VertebraPlan, width: float) -> None:
    """Disc between two bodies: an elliptic cylinder between their centres, hidden inside the bodies."""
    centre = 0.5 * (upper.centre + lower.centre)
    axis = upper.centre - lower.centre
    half_len = float(np.linalg.norm(axis)) / 2
    from screening_node.phantom.anatomy import frame_from_tangent

    frame = frame_from_tangent(axis)
    ax = 0.5 * (upper.shape.ax + lower.shape.ax) + 0.7
    ay = 0.5 * (upper.shape.ay + lower.shape.ay) + 0.7
    gap = half_len - 0.5 * (upper.shape.heights()["posterior"] + lower.shape.heights()["posterior"]) / 2
    box = grid.box(*local_box(centre, frame, np.array([ax + 2, ay + 2, half_len + 2])))
    if box is None:
        return
    lx, ly, lz = to_local(*grid.coords(box), centre, frame)
    shrink = np.where(np.abs(lz) <= gap + 0.5, 0.0, 0.7).astype(np.float32)  # no bulge beside a body
    d = np.minimum(ellipse_inward(lx, ly, ax, ay) - shrink, half_len - np.abs(lz))
    paint(volume, box, d, DISC_HU, width)


EPIDURAL_MM = 0.5  # the anterior epidural space on the midline: the dura lies against the posterior ligament


def _canal_centre_y(v: VertebraPlan) -> float:
    """The canal's middle (local y): its front EPIDURAL_MM behind the body's back wall on the midline. The
    canal is painted as a tube of the radii's mean (paint_canal), the arch's opening is the ellipse of the
    radii: both fronts lie there or behind."""
    rx, ry = v.canal_radii
    return v.shape.ay - v.shape.post_concavity + EPIDURAL_MM + max(ry, 0.5 * (rx + ry))


def posterior_elements(grid: Grid, v: VertebraPlan) -> Canvas:
    """Pedicles and laminae (an arch around the canal), spinous, transverse and articular processes."""
    rx, ry = v.canal_radii
    hp = v.shape.heights()["posterior"]
    yc = _canal_centre_y(v)
    region, level = v.region, v.label
    spin_len = {"C": 20.0, "T": 36.0, "L": 30.0, "S": 15.0}[region] + (10.0 if level == "C7" else 0.0)
    n = int(level[1:]) if level[1:].isdigit() else 0
    tilt = {"C": 20.0, "L": 5.0, "S": 30.0}.get(region, 60.0 if 5 <= n <= 9 else 40.0)
    spin_r = {"C": 3.5, "T": 4.5, "L": 6.5, "S": 4.0}[region]
    tp_len = {"C": 12.0, "T": 24.0, "L": 30.0, "S": 0.0}[region] + (4.0 if level == "L3" else 0.0)
    tp_back = {"C": 0.1, "T": 0.5, "L": 0.1, "S": 0.0}[region]
    reach = ry + 6 + spin_len + 10
    lo, hi = local_box(v.centre + v.frame @ np.array([0, yc + reach / 2 - 5, -5.0]), v.frame,
                       np.array([rx + tp_len + 12, reach / 2 + 8, hp / 2 + spin_len * 0.9 + 6]))
    canvas = Canvas(grid, lo, hi)
    if canvas.box is None:
        return canvas
    lx, ly, lz = to_local(*grid.coords(canvas.box), v.centre, v.frame)
    d_outer = ellipse_inward(lx, ly - yc, rx + 6.5, ry + 6.0)
    d_canal = -ellipse_inward(lx, ly - yc, rx, ry)
    d_front = ly - (v.shape.ay - v.shape.post_concavity - 0.5)  # arch starts at the body's back wall ...
    # ... beside the canal (the pedicles): in front of the canal the body's back wall faces the epidural space
    d_beside_canal = np.maximum(np.abs(lx) - rx, ly - yc)
    d_z = 0.42 * hp - np.abs(lz - 0.08 * hp)
    np.maximum(canvas.d, _min_all([d_outer, d_canal, d_front, d_beside_canal, d_z]), out=canvas.d)
    world = v.to_world
    t = np.radians(tilt)
    base = np.array([0.0, yc + ry + 4.0, 0.0])
    tip = base + np.array([0.0, spin_len * np.cos(t), -spin_len * np.sin(t)])
    canvas.add_capsule(world(base), world(tip), spin_r)
    for side in (-1.0, 1.0):
        if tp_len:
            # from the junction of pedicle and lamina, beside the back half of the canal
            p = np.array([side * (rx + 3.0), yc + 0.5 * ry, 0.1 * hp])
            q = p + np.array([side * tp_len * 0.9, tp_len * tp_back, 0.0])
            canvas.add_capsule(world(p), world(q), 4.0 if region == "T" else 3.5)
        art = np.array([side * (rx + 2.5), yc + 2.0, 0.0])
        canvas.add_capsule(world(art), world(art + [0, 1.0, 0.55 * hp]), 3.5)
        canvas.add_capsule(world(art + [0, 4.0, 0]), world(art + [0, 6.0, -0.55 * hp]), 3.5)
    return canvas


def paint_canal(volume: np.ndarray, grid: Grid, plan: SpinePlan, width: float) -> None:
    """CSF-filled canal along the whole spine, with the cord down to the L1-L2 disc."""
    verts = plan.vertebrae
    s_values = np.arange(verts[0].s_mm - 20, verts[-1].s_mm + 1e-6, 6.0)
    ss = [v.s_mm for v in verts]
    offset = np.interp(s_values, ss, [_canal_centre_y(v) for v in verts])
    radius = np.interp(s_values, ss, [0.5 * sum(v.canal_radii) for v in verts])
    points = np.array([point + frame @ np.array([0.0, o, 0.0])
                       for (point, frame), o in zip((plan.at(float(s)) for s in s_values), offset)])
    canal = Canvas(grid, points.min(0) - 15, points.max(0) + 15)
    canal.add_polyline(points, radius)
    paint(volume, canal.box, canal.d, CSF_HU, width)
    cord_end = 0.5 * (plan.by_label("L1").s_mm + plan.by_label("L2").s_mm)
    keep = s_values <= cord_end
    cord = Canvas(grid, points[keep].min(0) - 8, points[keep].max(0) + 8)
    cord.add_polyline(points[keep], np.where(s_values[keep] < plan.by_label("T1").s_mm, 5.5, 4.5))
    paint(volume, cord.box, cord.d, CORD_HU, width)


RIB_END_DEG = {1: -72, 2: -72, 3: -72, 4: -72, 5: -72, 6: -72, 7: -72, 8: -60, 9: -45, 10: -30, 11: 0, 12: 25,
               13: 40}
RIB_DROP_MM = {1: 22, 2: 35, 3: 45, 4: 55, 5: 60, 6: 62, 7: 62, 8: 60, 9: 55, 10: 50, 11: 35, 12: 25, 13: 20}
RIB_SCALE = {1: 0.62, 2: 0.8, 3: 0.92}


CROSS_DISC_RIBS = range(2, 10)  # the heads of ribs 2-9 articulate with two bodies, across the disc above


def _rib_head(plan: SpinePlan, v: VertebraPlan, side: float) -> np.ndarray:
    """Centre of a rib head (LPS mm) at the back of the body beside the pedicle.

    The heads of ribs 2-9 sit on the disc between their own body and the one above (demifacets on
    both), so on a cross-section through a thoracic disc bone reaches in from both sides: the disc
    does not break the body's lateral outline as a lumbar disc does. Ribs 1 and 10-12 articulate
    with their own body only.
    """
    x, y = side * v.shape.ax * 0.8, v.shape.ay * 0.7
    hp = v.shape.heights()["posterior"]
    n = int(v.label[1:])
    if n not in CROSS_DISC_RIBS:
        return v.to_world([x, y, 0.3 * hp])
    above = plan.by_label(f"T{n - 1}")  # T1-T8: every plan holds the whole column
    top = v.to_world([x, y, 0.5 * hp])
    bottom_above = above.to_world([x, y, -0.5 * above.shape.heights()["posterior"]])
    return 0.5 * (top + bottom_above)


def paint_ribs(volume: np.ndarray, grid: Grid, plan: SpinePlan, torso: Torso, width: float) -> None:
    """One rib pair per thoracic vertebra, from the body and transverse process around the chest."""
    thoracic = [v for v in plan.vertebrae if v.region == "T"]
    count = len(thoracic)
    for v in thoracic:
        n = int(v.label[1:])
        number = n if n < count - 1 else 12 - (count - n)  # the last two ribs are the short, floating ones
        hp = v.shape.heights()["posterior"]
        rx, _ = v.canal_radii
        yc = _canal_centre_y(v)
        for side in (-1.0, 1.0):
            head = _rib_head(plan, v, side)
            tubercle = v.to_world([side * (rx + 3.0 + 22.0), yc + 9.0, 0.1 * hp])
            z0 = float(tubercle[2])
            scale = RIB_SCALE.get(n, 1.0)
            a0, b0, ycage = (float(x) for x in torso.cage(np.array(z0)))
            a0, b0 = a0 * scale + 9, b0 * scale + 9
            beta_s = np.arctan2((tubercle[1] - ycage) / b0, max(side * (tubercle[0] - torso.xc) / a0, 0.05))
            beta_e = np.radians(RIB_END_DEG[number])
            points = [head, tubercle]
            for f in np.linspace(0.0, 1.0, 26)[1:]:
                beta = beta_s + f * (beta_e - beta_s)
                z = z0 - RIB_DROP_MM[number] * f ** 1.4
                a, b, yz = (float(x) for x in torso.cage(np.array(z)))
                a, b = a * scale + 9, b * scale + 9
                points.append(np.array([torso.xc + side * a * np.cos(beta), yz + b * np.sin(beta), z]))
            points = np.array(points)
            rib = Canvas(grid, points.min(0) - 8, points.max(0) + 8)
            rib.add_polyline(points, 5.0 if n == 1 else 4.5)
            paint(volume, rib.box, rib.d, bone(650.0, 180.0, 0.9), width)
            if number <= 10:  # costal cartilage towards the sternum
                end = points[-1]
                target = np.array([torso.xc + side * 14.0, end[1] - 8.0, end[2] + (0 if number <= 7 else 25)])
                cart = Canvas(grid, np.minimum(end, target) - 8, np.maximum(end, target) + 8)
                cart.add_capsule(end, target, 4.5)
                paint(volume, cart.box, cart.d, CARTILAGE_HU, width)


def paint_sternum(volume: np.ndarray, grid: Grid, plan: SpinePlan, torso: Torso, width: float) -> None:
    z_top, z_bot = plan.z_of("T3") + 5, plan.z_of("T9")
    zs = np.linspace(z_top, z_bot, 8)
    a, b, yc = torso.cage(zs)
    front = yc - b - 10.0
    lines = [np.stack([np.full_like(zs, torso.xc + dx * (1.4 if i < 2 else 1.0)), front, zs], 1)
             for dx in (-9.0, 0.0, 9.0) for i in [0]]
    sternum = Canvas(grid, np.min([l.min(0) for l in lines], 0) - 12, np.max([l.max(0) for l in lines], 0) + 12)
    for line in lines:
        sternum.add_polyline(line, 6.0)
    paint(volume, sternum.box, sternum.d, bone(600.0, 220.0, 1.0), width)


def paint_sacrum_pelvis(volume: np.ndarray, grid: Grid, plan: SpinePlan, torso: Torso, width: float) -> None:
    """S2-S5 fused segments, sacral alae, iliac wings, hips and pubis."""
    s1 = plan.by_label("S1")
    marrow, cortex = s1.trabecular_hu, s1.cortical_hu * 0.8
    for s, height, w, depth in plan.sacrum:
        centre, frame = plan.at(s)
        seg = VertebraPlan("S", "S", s, centre, frame,
                           BodyShape.normal(w / 2, depth / 2, 1.0, height + 2.0, height + 2.0), marrow, cortex)
        paint_body(volume, grid, seg, width)
    pelvis = Canvas(grid, s1.centre - np.array([200, 160, 200]), s1.centre + np.array([200, 160, 90]))
    if pelvis.box is None:
        return
    ax = s1.shape.ax

    def ellipsoid(centre: np.ndarray, frame: np.ndarray, semi: tuple[float, float, float]) -> None:
        lo, hi = local_box(centre, frame, np.array(semi) + 2)
        pelvis.add_field(lo, hi, lambda x, y, z: ellipsoid_inward(*to_local(x, y, z, centre, frame), *semi))

    for side in (-1.0, 1.0):
        ellipsoid(s1.to_world([side * (ax + 14.0), 6.0, -14.0]), s1.frame, (20.0, 17.0, 26.0))  # sacral ala
        joint = s1.to_world([side * (ax + 30.0), 14.0, -10.0])
        wing_dir = np.array([side * 0.62, -0.78, 0.0])
        normal = np.array([0.78, side * 0.62, 0.0])
        frame = np.stack([normal, wing_dir, np.array([0, 0, 1.0])], 1)
        ellipsoid(joint + 52.0 * wing_dir + np.array([0, 0, 22.0]), frame, (6.0, 62.0, 52.0))  # iliac wing
        hip = joint + 48.0 * wing_dir + np.array([side * 12.0, 0, -88.0])
        pelvis.add_capsule(hip, hip, 24.0)  # femoral head
        pelvis.add_capsule(joint + np.array([0, 0, -5.0]), hip + np.array([0, 10.0, 10.0]), 10.0)
        pelvis.add_capsule(hip, hip + np.array([side * 38.0, 5.0, -30.0]), 14.0)
        pelvis.add_capsule(hip + np.array([side * 38.0, 5.0, -30.0]), hip + np.array([side * 45.0, 8.0, -180.0]), 14.0)
        pelvis.add_capsule(hip + np.array([0, 12.0, -15.0]), hip + np.array([-side * 25, 30.0, -60.0]), 10.0)
        pubis = np.array([torso.xc + side * 8.0, hip[1] - 45.0, hip[2] - 25.0])
        pelvis.add_capsule(hip + np.array([-side * 10, -20.0, -10.0]), pubis, 9.0)
    paint(volume, pelvis.box, pelvis.d, bone(650.0, 220.0, 1.2), width)


def paint_spine(volume: np.ndarray, grid: Grid, plan: SpinePlan, width: float,
                labels: np.ndarray | None = None) -> None:
    """Discs, bodies, posterior elements, then the canal and cord carved through them."""
    verts = plan.vertebrae
    for upper, lower in zip(verts[:-1], verts[1:]):
        paint_disc(volume, grid, upper, lower, width)
    for v in verts:
        paint_body(volume, grid, v, width, labels)
    for v in verts:
        canvas = posterior_elements(grid, v)
        if canvas.box is not None:
            paint(volume, canvas.box, canvas.d, bone(750.0, 250.0, 1.0), width)
    paint_canal(volume, grid, plan, width)


def _min_all(arrays: list[np.ndarray]) -> np.ndarray:
    """Intersection of shapes: the minimum of their inward distances (broadcasting)."""
    return reduce(np.minimum, arrays)
