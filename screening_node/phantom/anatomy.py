"""The phantom's skeleton plan: which vertebrae, their sizes, and where the spine runs.

Sizes are adult literature-like values (posterior body height, width, depth,
disc below; mm), scaled by patient size with a small seeded jitter. The spine is
a smooth 3-D curve parametrised by arc length, built from a sagittal tangent
angle (cervical lordosis, thoracic kyphosis, lumbar lordosis, sacral kyphosis)
and a coronal one (a thoracolumbar scoliosis), balanced so that T1 sits above
S1. Each vertebra gets a local frame: z along the curve's tangent (cranial), y
towards posterior, x = y cross z (patient left), so bodies tilt with the curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from screening_node.phantom.fractures import BodyShape
from screening_node.phantom.options import PhantomOptions
from screening_node.phantom.texture import Texture

# level: posterior height, width, depth, disc below, anterior/posterior height ratio (normal wedging)
LEVEL_TABLE: dict[str, tuple[float, float, float, float, float]] = {
    "C3": (13.5, 17, 15, 5.0, 1.00), "C4": (13.5, 18, 15.5, 5.0, 1.00), "C5": (13.5, 19, 16, 5.5, 1.00),
    "C6": (13.5, 21, 16, 5.5, 1.00), "C7": (14.5, 24, 17, 5.0, 0.99),
    "T1": (15.0, 27, 18, 4.0, 0.97), "T2": (16.0, 28, 19.5, 4.0, 0.96), "T3": (16.5, 28, 21, 4.0, 0.95),
    "T4": (17.0, 28.5, 23, 4.0, 0.94), "T5": (17.5, 29, 25, 4.5, 0.93), "T6": (18.0, 30, 26, 4.5, 0.92),
    "T7": (18.8, 31, 27, 5.0, 0.92), "T8": (19.5, 32, 28, 5.0, 0.92), "T9": (20.2, 33.5, 29, 5.5, 0.93),
    "T10": (21.0, 35.5, 30, 6.0, 0.94), "T11": (22.0, 38, 31, 6.5, 0.95), "T12": (23.0, 41, 32, 7.0, 0.96),
    "T13": (23.5, 42, 32.5, 7.5, 0.97),
    "L1": (24.5, 43, 33, 8.0, 0.97), "L2": (25.3, 45, 34, 9.0, 0.99), "L3": (26.0, 47, 35, 10.0, 1.01),
    "L4": (26.5, 49, 35, 11.0, 1.04), "L5": (26.5, 51, 35, 11.5, 1.09), "L6": (26.5, 52, 35, 11.5, 1.09),
    "S1": (28.0, 50, 34, 0.0, 1.08),
}
SACRAL_SEGMENTS = ((22.0, 40, 26), (17.0, 30, 20), (13.0, 22, 16), (10.0, 16, 12))  # S2-S5 height, width, depth
SIZE_SCALE = {"small": 0.93, "medium": 1.0, "large": 1.07}
TRABECULAR_HU = {"normal": 225.0, "osteopenic": 135.0, "osteoporotic": 80.0}
CORTICAL_HU = {"normal": 900.0, "osteopenic": 800.0, "osteoporotic": 700.0}
CERVICAL_LORDOSIS_DEG = 20.0
SACRAL_KYPHOSIS_DEG = 60.0
STEP_MM = 0.5


def level_names(options: PhantomOptions) -> list[str]:
    """Modelled levels, cranial first: C3-C7, T1-T{rib pairs}, L1-L{lumbar}, S1."""
    return ([f"C{i}" for i in range(3, 8)] + [f"T{i}" for i in range(1, options.rib_pairs + 1)]
            + [f"L{i}" for i in range(1, options.lumbar + 1)] + ["S1"])


@dataclass
class VertebraPlan:
    """One modelled vertebra: local frame, body shape, tissue values and truth bookkeeping."""

    label: str
    region: str  # C, T, L or S
    s_mm: float  # arc length of the body centre along the spine curve
    centre: np.ndarray  # LPS mm
    frame: np.ndarray  # 3x3, columns = local x (left), y (posterior), z (cranial) in LPS
    shape: BodyShape
    trabecular_hu: float
    cortical_hu: float
    grade: int = 0
    morphology: str = "normal"
    height_loss: float = 0.0
    neighbour_posterior_mm: float | None = None
    texture: Texture | None = None  # the marrow's trabecular texture (options.texture); None: flat marrow

    def to_world(self, local: np.ndarray) -> np.ndarray:
        return self.centre + self.frame @ np.asarray(local, float)

    @property
    def canal_radii(self) -> tuple[float, float]:
        return {"C": (12.0, 7.5), "T": (8.5, 8.0), "L": (11.5, 8.5), "S": (10.0, 5.0)}[self.region]


@dataclass
class SpinePlan:
    """The curve (sampled every STEP_MM of arc length) and the vertebrae on it."""

    s: np.ndarray  # arc length samples
    points: np.ndarray  # (n, 3) LPS
    tangents: np.ndarray  # (n, 3) unit, caudal direction
    vertebrae: list[VertebraPlan]
    sacrum: list[tuple[float, float, float, float]] = field(default_factory=list)  # (s, height, width, depth)

    def at(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Point and local frame (columns x, y, z) at arc length ``s``."""
        i = int(np.clip(round((s - self.s[0]) / STEP_MM), 0, len(self.s) - 1))
        return self.points[i], frame_from_tangent(-self.tangents[i])

    def by_label(self, label: str) -> VertebraPlan:
        for v in self.vertebrae:
            if v.label == label:
                return v
        raise KeyError(label)

    def z_of(self, label: str, where: str = "centre") -> float:
        v = self.by_label(label)
        h = v.shape.heights()["posterior"]
        offset = {"centre": 0.0, "top": h / 2, "bottom": -h / 2}[where]
        return float(v.to_world([0, 0, offset])[2])


def frame_from_tangent(cranial: np.ndarray) -> np.ndarray:
    """Local frame with z = ``cranial``, y = patient posterior made orthogonal to z, x = y cross z."""
    ez = cranial / np.linalg.norm(cranial)
    ey = np.array([0.0, 1.0, 0.0]) - ez[1] * ez
    ey /= np.linalg.norm(ey)
    ex = np.cross(ey, ez)
    return np.stack([ex, ey, ez], axis=1)


def _profile(s: np.ndarray, spans: list[tuple[float, float, float]], sigma_mm: float) -> np.ndarray:
    """Tangent angle (rad) whose curvature is constant on each (start, end, total degrees) span, smoothed."""
    kappa = np.zeros_like(s)
    for start, end, degrees in spans:
        inside = (s >= start) & (s < end)
        if end > start:
            kappa[inside] += np.radians(degrees) / (end - start)
    kappa = gaussian_filter1d(kappa, sigma_mm / STEP_MM, mode="nearest")
    return np.cumsum(kappa) * STEP_MM


def build_spine(options: PhantomOptions, rng: np.random.Generator) -> SpinePlan:
    """Lay the vertebrae along the curve; sizes scaled by patient size with a seeded jitter."""
    scale = SIZE_SCALE[options.patient_size]
    names = level_names(options)
    trab = TRABECULAR_HU[options.bone_density]
    cort = CORTICAL_HU[options.bone_density]
    # arc-length layout: body, disc, body, ...
    layout = []
    s = 0.0
    for name in names:
        hp, width, depth, disc, ratio = LEVEL_TABLE[name]
        jitter = 1.0 + float(np.clip(rng.normal(0, 0.02), -0.04, 0.04))
        hp, width, depth, disc = hp * scale * jitter, width * scale * jitter, depth * scale * jitter, disc * scale
        ha = hp * ratio
        centre_h = 0.5 * (hp + ha)
        layout.append((name, s + centre_h / 2, hp, ha, width, depth))
        s += centre_h + disc
    sacrum = []
    s_sacral = s + 1.0
    for height, width, depth in SACRAL_SEGMENTS:
        sacrum.append((s_sacral + height * scale / 2, height * scale, width * scale, depth * scale))
        s_sacral += height * scale + 1.0
    s_end = s_sacral + 10.0
    s_grid = np.arange(-40.0, s_end + STEP_MM, STEP_MM)
    pos = {name: sc for name, sc, *_ in layout}
    t1, tl, s1 = pos["T1"], pos[names[names.index("S1") - options.lumbar]], pos["S1"]
    theta = _profile(s_grid, [(pos["C3"], t1, CERVICAL_LORDOSIS_DEG), (t1, tl - 8, -options.kyphosis),
                              (tl - 8, s1, options.lordosis), (s1, s_end, -SACRAL_KYPHOSIS_DEG)], 20.0)
    balance = (s_grid >= t1) & (s_grid <= s1)
    theta -= theta[balance].mean()
    t6 = pos["T6"]
    l3 = pos["L3"]
    phi = _profile(s_grid, [(t1, t6, options.scoliosis / 2), (t6, l3, -options.scoliosis),
                            (l3, s1, options.scoliosis / 2)], 25.0)
    direction = np.stack([np.tan(phi), np.tan(theta), -np.ones_like(s_grid)], axis=1)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    points = np.cumsum(direction * STEP_MM, axis=0)
    # anchor: L1 body centre near (0, 30, -250) mm, with a seeded offset of the patient on the table
    anchor = points[int(round((pos["L1"] - s_grid[0]) / STEP_MM))]
    offset = np.array([rng.uniform(-8, 8), 30.0 * scale + rng.uniform(-8, 8), -250.0 + rng.uniform(-20, 20)])
    points = points - anchor + offset
    plan = SpinePlan(s_grid, points, direction, [], sacrum)
    for name, sc, hp, ha, width, depth in layout:
        centre, frame = plan.at(sc)
        region = name[0]
        shape = BodyShape.normal(width / 2, depth / 2, {"C": 1.0, "T": 1.5, "L": 2.5, "S": 1.5}[region], hp, ha)
        plan.vertebrae.append(VertebraPlan(
            label=name, region=region, s_mm=sc, centre=centre.copy(), frame=frame, shape=shape,
            trabecular_hu=trab * (1.0 + float(rng.uniform(-0.06, 0.06))), cortical_hu=cort))
    return plan


RANDOM_LEVELS = ("T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "T13", "L1", "L2", "L3", "L4", "L5", "L6")


def fracture_requests(options: PhantomOptions, plan: SpinePlan, rng: np.random.Generator
                      ) -> list[tuple[str, int, str]]:
    """Requested fractures plus random ones at ``fracture_prevalence`` (never a crush beside another fracture:
    a random crush beside one becomes a wedge, and no random one is placed beside a requested crush)."""
    names = [v.label for v in plan.vertebrae]
    present = set(names)
    requests = [(f.level, f.grade, f.morphology) for f in options.fractures]
    for f in options.fractures:
        if f.level not in present:
            raise ValueError(f"fracture at {f.level}: that level is not in this phantom")
    if options.fracture_prevalence > 0:
        taken = {r[0] for r in requests}
        # A requested crush keeps normal neighbours: its grade is defined by their heights.
        crush_side = {names[j] for f in options.fractures if f.morphology == "crush"
                      for j in (names.index(f.level) - 1, names.index(f.level) + 1) if 0 <= j < len(names)}
        for level in RANDOM_LEVELS:
            draw = rng.random(3)  # always drawn, so one level's choice never shifts another's
            if (level not in present or level in taken or level in crush_side
                    or draw[0] >= options.fracture_prevalence):
                continue
            grade = 1 if draw[1] < 0.5 else 2 if draw[1] < 0.8 else 3
            morphology = "wedge" if draw[2] < 0.6 else "biconcave" if draw[2] < 0.85 else "crush"
            requests.append((level, grade, morphology))
            taken.add(level)
    fractured = {r[0] for r in requests}
    checked = []
    for level, grade, morphology in requests:
        i = names.index(level)
        beside = {names[j] for j in (i - 1, i + 1) if 0 <= j < len(names)} & fractured
        if morphology == "crush" and beside:
            if level in {f.level for f in options.fractures}:
                raise ValueError(f"crush fracture at {level}: its neighbour {sorted(beside)[0]} is fractured too, "
                                 "so the neighbours' heights that define its grade are not normal")
            morphology = "wedge"
        checked.append((level, grade, morphology))
    return sorted(checked, key=lambda r: names.index(r[0]))


def neighbour_posterior(plan: SpinePlan, label: str) -> float:
    """Mean posterior height of the graded neighbours (T1-L6) above and below ``label``."""
    names = [v.label for v in plan.vertebrae]
    i = names.index(label)
    heights = [plan.vertebrae[j].shape.heights()["posterior"] for j in (i - 1, i + 1)
               if 0 <= j < len(names) and names[j][0] in "TL"]
    return float(np.mean(heights))


def apply_fractures(plan: SpinePlan, options: PhantomOptions, rng: np.random.Generator) -> None:
    """Deform the requested bodies so that their truth height loss lands in the grade's band."""
    from screening_node.phantom.fractures import fracture, height_loss, target_reduction

    for level, grade, morphology in fracture_requests(options, plan, rng):
        v = plan.by_label(level)
        r = target_reduction(grade, rng)
        neighbours = neighbour_posterior(plan, level)
        v.shape = fracture(v.shape, morphology, r, neighbours)
        v.grade, v.morphology = grade, morphology
        v.trabecular_hu *= 1.0 + 0.5 * r  # compressed trabeculae are denser
    for v in plan.vertebrae:
        neighbours = neighbour_posterior(plan, v.label) if v.region in "TL" else None
        v.neighbour_posterior_mm = neighbours
        v.height_loss = height_loss(v.morphology, v.shape.heights(), neighbours)


def parse_levels_for(plan: SpinePlan, levels: tuple[str, str]) -> tuple[str, str]:
    """Check that a --levels range exists in this phantom."""
    names = [v.label for v in plan.vertebrae]
    for name in levels:
        if name not in names:
            raise ValueError(f"levels {'-'.join(levels)}: {name} is not in this phantom (modelled: "
                             f"{names[0]}-{names[-1]})")
    return levels
