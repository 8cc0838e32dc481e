"""Soft tissues of the phantom: trunk outline (skin, fat, muscle), lungs, organs, vessels.

The trunk's cross-section at each height is an ellipse placed relative to the
spine (the back follows the spine's sagittal curve), sized by landmarks: the
neck above T1, the chest, the abdomen and the pelvis. All painting happens in
painter's order on a canonical grid (see grid.py); HU values are typical
unenhanced or portal-venous values.
"""

from __future__ import annotations

from dataclasses import dataclass

from functools import reduce

import numpy as np

from screening_node.phantom.anatomy import SpinePlan
from screening_node.phantom.grid import Canvas, Grid, ellipse_inward, ellipsoid_inward, paint
from screening_node.phantom.options import PhantomOptions

FAT_MM = {"small": 8.0, "medium": 18.0, "large": 32.0}
SIZE_XY = {"small": (0.86, 0.86), "medium": (1.0, 1.0), "large": (1.15, 1.28)}
HU = {"air": -1000.0, "skin": 30.0, "fat": -100.0, "muscle": 45.0, "lung": -850.0, "liver": 58.0,
      "spleen": 50.0, "kidney": 35.0, "blood": 42.0, "bladder": 8.0, "table": 150.0, "heart": 45.0}
HU_CONTRAST = {"liver": 105.0, "spleen": 120.0, "kidney": 170.0, "blood": 250.0, "heart": 200.0}
# Late arterial phase (a CT angiogram, a pancreas or liver protocol): the aorta at 300-500 HU, the heart's
# chambers bright, the organs only starting to enhance; the veins below the kidneys not yet opacified.
HU_ARTERIAL = {"liver": 70.0, "spleen": 110.0, "kidney": 150.0, "blood": 420.0, "vein": 90.0, "heart": 350.0}


@dataclass(frozen=True)
class Torso:
    """Trunk outline as functions of z (mm): half width a, half depth b, centre (xc, yc), fat thickness."""

    z_knots: np.ndarray  # increasing
    a_knots: np.ndarray
    b_knots: np.ndarray
    back_knots: np.ndarray  # distance from the spine curve to the skin of the back
    spine_z: np.ndarray  # spine curve z (increasing) and its x, y there
    spine_x: np.ndarray
    spine_y: np.ndarray
    xc: float
    fat: float

    def at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """a, b, yc at heights z."""
        a = np.interp(z, self.z_knots, self.a_knots)
        b = np.interp(z, self.z_knots, self.b_knots)
        back = np.interp(z, self.z_knots, self.back_knots)
        y_spine = np.interp(z, self.spine_z, self.spine_y)
        return a, b, y_spine + back - b

    def spine_xy(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.interp(z, self.spine_z, self.spine_x), np.interp(z, self.spine_z, self.spine_y)

    def cage(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Half axes and centre y of the inside of the chest wall (ribs lie just outside it)."""
        a, b, yc = self.at(z)
        return a - self.fat - 18.0, b - self.fat - 18.0, yc


def build_torso(plan: SpinePlan, options: PhantomOptions) -> Torso:
    sx, sy = SIZE_XY[options.patient_size]
    z = {name: plan.z_of(name) for name in ("T1", "T4", "T8", "L3", "S1")}
    z["T1top"] = plan.z_of("T1", "top")
    last_t = [v.label for v in plan.vertebrae if v.region == "T"][-1]
    z["T12"] = plan.z_of(last_t)
    rows = [  # z, half width, half depth, back (spine centre to skin)
        (z["S1"] - 400, 175, 100, 75), (z["S1"] - 100, 175, 100, 75), (z["S1"], 168, 105, 75),
        (z["L3"], 155, 110, 80), (z["T12"], 155, 110, 70), (z["T8"], 160, 110, 65), (z["T4"], 150, 100, 62),
        (z["T1top"], 110, 80, 60), (z["T1top"] + 40, 62, 56, 58), (z["T1top"] + 400, 62, 56, 58),
    ]
    rows.sort()
    fat = FAT_MM[options.patient_size]
    knots = np.array(rows, float)
    order = np.argsort(plan.points[:, 2])
    return Torso(knots[:, 0], knots[:, 1] * sx, knots[:, 2] * sy, knots[:, 3] + (sy - 1) * 60 + fat - 18,
                 plan.points[order, 2], plan.points[order, 0], plan.points[order, 1],
                 float(plan.by_label("L1").centre[0]), fat)


def paint_trunk(volume: np.ndarray, grid: Grid, torso: Torso, plan: SpinePlan, options: PhantomOptions,
                width: float) -> None:
    """Skin, fat, muscle, lungs and diaphragm, slab by slab over the whole cross-section."""
    x, y, zs = grid.axis(0)[None, None, :], grid.axis(1)[None, :, None], grid.axis(2)
    last_t = [v.label for v in plan.vertebrae if v.region == "T"][-1]
    z_t10 = plan.z_of(last_t) + 2 * (plan.z_of("T8") - plan.z_of("T9"))
    z_apex = plan.z_of("T1", "top") + 22.0
    chunk = 16
    for k0 in range(0, len(zs), chunk):
        z = zs[k0:k0 + chunk][:, None, None]
        a, b, yc = (v.astype(np.float32) for v in torso.at(z))
        box = (slice(k0, k0 + z.shape[0]), slice(None), slice(None))
        d = ellipse_inward(x - torso.xc, y - yc, a, b)
        paint(volume, box, d, HU["skin"], width)
        paint(volume, box, d - 2.0, HU["fat"], width)
        paint(volume, box, d - torso.fat, HU["muscle"], width)
        if z.min() > z_apex + 10 or z.max() < z_t10 - 80:
            continue
        ca, cb, _ = (v.astype(np.float32) for v in torso.cage(z))
        lung_box = grid.box(np.array([torso.xc - ca.max() - 2, (yc - cb).min() - 2, z.min()]),
                            np.array([torso.xc + ca.max() + 2, (yc + cb).max() + 2, z.max()]))
        if lung_box is None:
            continue
        box = (box[0], lung_box[1], lung_box[2])
        lx, ly = x[:, :, lung_box[2]], y[:, lung_box[1], :]
        d_cage = ellipse_inward(lx - torso.xc, ly - yc, ca, cb) - 4.0
        sx_, sy_ = (v.astype(np.float32) for v in torso.spine_xy(z))
        d_spine = -ellipse_inward(lx - sx_, ly - sy_, 42.0, 38.0)
        d_mediastinum = np.abs(lx - torso.xc) - 22.0
        u = np.clip((np.abs(lx - torso.xc) - 0.35 * ca) / (0.65 * ca), 0, None)
        v = np.clip((ly - yc) / cb, 0, None)
        dome = np.where(lx < torso.xc, z_t10 + 8.0, z_t10 - 8.0).astype(np.float32)
        d_diaphragm = z - (dome - 40.0 * u ** 2 - 55.0 * v ** 2)
        d_apex = z_apex - z - 30.0 * np.clip((0.55 * ca - np.abs(lx - torso.xc)) / (0.55 * ca), 0, None) ** 2
        d = _min_all([d_cage, d_spine, d_mediastinum, d_diaphragm, d_apex])
        paint(volume, box, d, HU["lung"], width)


def _ellipsoid(volume: np.ndarray, grid: Grid, centre: np.ndarray, semi: tuple[float, float, float],
               value: float, width: float, limit=None) -> None:  # type: ignore[no-untyped-def]
    box = grid.box(centre - np.array(semi) - 3, centre + np.array(semi) + 3)
    if box is None:
        return
    x, y, z = grid.coords(box)
    d = ellipsoid_inward(x - centre[0], y - centre[1], z - centre[2], *semi)
    if limit is not None:
        d = np.minimum(d, limit(x, y, z))
    paint(volume, box, d, value, width)


def paint_organs(volume: np.ndarray, grid: Grid, torso: Torso, plan: SpinePlan, options: PhantomOptions,
                 width: float) -> None:
    """Liver, spleen, kidneys, heart, bladder, aorta and inferior vena cava."""
    hu = {**HU, **(HU_CONTRAST if options.contrast else {})}
    arterial = options.contrast and options.contrast_phase == "arterial"
    hu = {**hu, "vein": hu["blood"], **(HU_ARTERIAL if arterial else {})}
    last_t = [v.label for v in plan.vertebrae if v.region == "T"][-1]
    z_t12, z_t8 = plan.z_of(last_t), plan.z_of("T8")
    z_t10 = z_t12 + 2 * (z_t8 - plan.z_of("T9"))
    z_l1 = plan.z_of("L1")
    ca, cb, yc = (float(v) for v in torso.cage(np.array(z_t12)))
    xc = torso.xc

    def below_diaphragm(side: float):  # type: ignore[no-untyped-def]
        dome = z_t10 + (8.0 if side < 0 else -8.0) - 3.0
        def limit(x, y, z):  # type: ignore[no-untyped-def]
            u = np.clip((np.abs(x - xc) - 0.35 * ca) / (0.65 * ca), 0, None)
            v = np.clip((y - yc) / cb, 0, None)
            return (dome - 40.0 * u ** 2 - 55.0 * v ** 2) - z
        return limit

    paint_bowel(volume, grid, torso, plan, width, np.random.default_rng([options.seed, 4]))
    l1 = plan.by_label("L1")
    for side, dz in ((+1.0, 0.0), (-1.0, -15.0)):  # perirenal fat
        centre = l1.centre + l1.frame @ np.array([side * (l1.shape.ax + 45.0), 5.0, -15.0 + dz])
        _ellipsoid(volume, grid, centre, (38.0, 34.0, 68.0), HU["fat"], width)
    _ellipsoid(volume, grid, np.array([xc - 0.42 * ca, yc - 0.05 * cb, z_t12 + 5]), (0.58 * ca, 0.85 * cb, 95.0),
               hu["liver"], width, below_diaphragm(-1))
    _ellipsoid(volume, grid, np.array([xc + 0.62 * ca, yc + 0.4 * cb, z_t12 + 15]), (30.0, 45.0, 55.0),
               hu["spleen"], width, below_diaphragm(+1))
    l1 = plan.by_label("L1")
    for side, dz in ((+1.0, 0.0), (-1.0, -15.0)):
        centre = l1.centre + l1.frame @ np.array([side * (l1.shape.ax + 45.0), 5.0, -15.0 + dz])
        _ellipsoid(volume, grid, centre, (28.0, 24.0, 55.0), hu["kidney"], width)
    t8 = plan.by_label("T8")
    heart = t8.centre + np.array([25.0, -t8.shape.ay - 62.0, -12.0])
    _ellipsoid(volume, grid, heart, (64.0, 50.0, 58.0), hu["heart"], width)
    z_hip = plan.z_of("S1") - 100.0
    _, b_hip, yc_hip = (float(v) for v in torso.at(np.array(z_hip)))
    _ellipsoid(volume, grid, np.array([xc, yc_hip - 0.45 * b_hip, z_hip + 20.0]), (45.0, 35.0, 38.0),
               hu["bladder"], width)
    # great vessels along the spine: aorta left-anterior (T4-L4), IVC right-anterior (L4 up into the liver)
    for vessel in (AORTA, IVC):
        s0, s1 = plan.by_label(vessel.start).s_mm, plan.by_label(vessel.end).s_mm
        points = np.array([vessel.centre(plan, float(s))[0] for s in np.arange(s0, s1 + 1e-6, 8.0)])
        radius = vessel.radius
        canvas = Canvas(grid, points.min(0) - radius - 2, points.max(0) + radius + 2)
        canvas.add_polyline(points, radius)
        paint(volume, canvas.box, canvas.d, hu["blood" if vessel is AORTA else "vein"], width)
    del z_l1


def paint_bowel(volume: np.ndarray, grid: Grid, torso: Torso, plan: SpinePlan, width: float,
                rng: np.random.Generator) -> None:
    """Mesenteric fat with small-bowel loops (some holding gas) and a gas-filled colon frame."""
    z_top, z_bot = plan.z_of("L1") + 10.0, plan.z_of("S1") - 50.0
    z_mid = 0.5 * (z_top + z_bot)
    a, b, yc = (float(v) for v in torso.cage(np.array(z_mid)))
    spine_front = float(torso.spine_xy(np.array(z_mid))[1]) - plan.by_label("L3").shape.ay - 25.0
    centre = np.array([torso.xc, 0.5 * (yc - b + spine_front), z_mid])
    semi = (0.72 * a, max(0.5 * (spine_front - (yc - b)) - 6.0, 20.0), 0.5 * (z_top - z_bot))
    _ellipsoid(volume, grid, centre, semi, -85.0, width)
    loops = Canvas(grid, centre - np.array(semi) - 25, centre + np.array(semi) + 25)
    gas = Canvas(grid, centre - np.array(semi) - 25, centre + np.array(semi) + 25)
    for _ in range(45):
        start = centre + rng.uniform(-0.8, 0.8, 3) * np.array(semi)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        end = start + direction * rng.uniform(30, 80)
        radius = float(rng.uniform(9, 14))
        loops.add_capsule(start, end, radius)
        if rng.random() < 0.3:
            gas.add_capsule(start, end, radius - 4.0)
    colon = np.array([[-0.85, 0.3, -0.6], [-0.85, -0.1, 0.9], [0.0, -0.7, 1.0], [0.85, -0.1, 0.9], [0.85, 0.3, -0.8]])
    colon_points = centre + colon * np.array([semi[0], semi[1], semi[2]])
    loops.add_polyline(colon_points, 20.0)
    gas.add_polyline(colon_points, 14.0)
    for canvas in (loops, gas):  # keep every loop inside the abdomen
        if canvas.box is not None:
            x, y, z = grid.coords(canvas.box)
            inside = ellipsoid_inward(x - centre[0], y - centre[1], z - centre[2], *semi) + 8.0
            np.minimum(canvas.d, inside, out=canvas.d)
    paint(volume, loops.box, loops.d, 35.0, width)
    paint(volume, gas.box, gas.d, -950.0, width)


@dataclass(frozen=True)
class Vessel:
    """A great vessel running beside the spine, in front of the bodies, from one level to another."""

    start: str
    end: str
    side: float      # +1 the patient's left, -1 the right
    radius: float    # at the start; it narrows by a fifth towards the end
    lateral: float   # its offset from the spine's midline as a share of the bodies' half width

    def centre(self, plan: SpinePlan, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Centre (LPS mm) and the spine's local frame there, at arc length ``s``. The vessel is painted
        ``radius`` wide all along; its centre keeps a narrowing radius's distance from the bodies."""
        s0, s1 = plan.by_label(self.start).s_mm, plan.by_label(self.end).s_mm
        p, frame = plan.at(s)
        ax, ay = _body_half_axes(plan, s)
        r = self.radius * (1.0 - 0.2 * (s - s0) / max(s1 - s0, 1.0))
        return p + frame @ np.array([self.side * (self.lateral * ax + 6.0), -(ay + r + 3.0), 0.0]), frame


AORTA = Vessel("T4", "L4", +1.0, 12.0, 0.35)
IVC = Vessel("T11", "L4", -1.0, 11.0, 0.6)


def _body_half_axes(plan: SpinePlan, s: float) -> tuple[float, float]:
    ss = [v.s_mm for v in plan.vertebrae]
    return (float(np.interp(s, ss, [v.shape.ax for v in plan.vertebrae])),
            float(np.interp(s, ss, [v.shape.ay for v in plan.vertebrae])))


def paint_table(volume: np.ndarray, grid: Grid, torso: Torso, width: float) -> None:
    """A flat scanner table 8 mm thick, 20 mm behind the most posterior skin."""
    _, b, yc = torso.at(torso.z_knots)
    top = float(np.max(yc + b)) + 20.0
    box = grid.box(np.array([-230.0, top, -1e5]), np.array([230.0, top + 8.0, 1e5]))
    if box is None:
        return
    x, y, _ = grid.coords(box)
    d = np.minimum(np.minimum(y - top, top + 8.0 - y), 230.0 - np.abs(x)) + 0 * x
    paint(volume, box, np.broadcast_to(d, tuple(s.stop - s.start for s in box)).copy(), HU["table"], width)


def _min_all(arrays: list[np.ndarray]) -> np.ndarray:
    """Intersection of shapes: the minimum of their inward distances (broadcasting)."""
    return reduce(np.minimum, arrays)
