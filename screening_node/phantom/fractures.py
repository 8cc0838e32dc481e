"""Vertebral body shape, normal and fractured, with heights known exactly.

A body is an elliptic cylinder in its local frame (x: patient left, y:
posterior, z: cranial, origin at the body centre) with a concave posterior
wall. Its superior and inferior endplate surfaces are

    z_top(x, y) =  lerp_y(top_a, top_p) - cup_top * bump(x, y)
    z_bot(x, y) = -lerp_y(bot_a, bot_p) + cup_bot * bump(x, y)

where lerp_y interpolates linearly between the anterior (y_a) and posterior
(y_p) keypoint positions and ``bump`` is 1 at the middle keypoint and 0 at the
anterior and posterior keypoints. So the three Genant heights are known in
closed form and a fracture is a change of these few numbers, solved exactly for
the requested height reduction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Genant bands (fraction of height lost) and the target inside each: the middle of the band, with jitter.
GRADE_TARGETS: dict[int, tuple[float, float]] = {1: (0.225, 0.015), 2: (0.325, 0.045), 3: (0.50, 0.06)}
GRADE_BANDS: dict[int, tuple[float, float]] = {0: (0.0, 0.20), 1: (0.20, 0.25), 2: (0.25, 0.40), 3: (0.40, 1.0)}
TOP_SHARE = 0.7  # share of a fracture's height loss taken by the superior endplate (the usual site)
KEYPOINT_INSET_MM = 1.5  # anterior / posterior keypoints lie this far inside the body's wall


@dataclass(frozen=True)
class BodyShape:
    """Endplate surfaces of one vertebral body; all lengths mm in the body's local frame."""

    ax: float  # half width (left-right)
    ay: float  # half depth (anterior-posterior)
    post_concavity: float  # depth of the posterior wall's concavity on the midline
    top_a: float
    top_p: float
    bot_a: float
    bot_p: float
    cup_top: float = 0.5  # normal endplates are slightly concave
    cup_bot: float = 0.5

    @classmethod
    def normal(cls, ax: float, ay: float, post_concavity: float, posterior_height: float,
               anterior_height: float) -> "BodyShape":
        return cls(ax, ay, post_concavity, anterior_height / 2, posterior_height / 2,
                   anterior_height / 2, posterior_height / 2)

    # keypoint positions on the mid-sagittal line (local y)
    @property
    def y_a(self) -> float:
        return -self.ay + KEYPOINT_INSET_MM

    @property
    def y_p(self) -> float:
        return self.ay - self.post_concavity - KEYPOINT_INSET_MM

    @property
    def y_m(self) -> float:
        return 0.5 * (self.y_a + self.y_p)

    @property
    def bump_radii(self) -> tuple[float, float]:
        return 0.8 * self.ax, 0.5 * (self.y_p - self.y_a) - 0.3

    def bump(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        rx, ry = self.bump_radii
        r2 = (x / rx) ** 2 + ((y - self.y_m) / ry) ** 2
        return np.where(r2 < 1.0, (1.0 - r2) ** 2, 0.0).astype(np.float32)

    def _lerp(self, y: np.ndarray, a: float, p: float) -> np.ndarray:
        t = (y - self.y_a) / (self.y_p - self.y_a)
        return (a + t * (p - a)).astype(np.float32)

    def plate(self, y: np.ndarray, end: str) -> np.ndarray:
        """Height of the ``end`` ("top" or "bottom") endplate's plane through its anterior and posterior
        keypoints, without the central cup: the endplate at its rim."""
        if end == "top":
            return self._lerp(y, self.top_a, self.top_p)
        return -self._lerp(y, self.bot_a, self.bot_p)

    def z_top(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.plate(y, "top") - self.cup_top * self.bump(x, y)

    def z_bot(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.plate(y, "bottom") + self.cup_bot * self.bump(x, y)

    def heights(self) -> dict[str, float]:
        """Anterior, middle, posterior heights (mm) between the keypoints."""
        a = self.top_a + self.bot_a
        p = self.top_p + self.bot_p
        m = 0.5 * (a + p) - self.cup_top - self.cup_bot
        return {"anterior": a, "middle": m, "posterior": p}

    def keypoints_local(self) -> dict[str, tuple[float, float, float]]:
        zm_top = 0.5 * (self.top_a + self.top_p) - self.cup_top
        zm_bot = -0.5 * (self.bot_a + self.bot_p) + self.cup_bot
        return {
            "superior_anterior": (0.0, self.y_a, self.top_a),
            "superior_middle": (0.0, self.y_m, zm_top),
            "superior_posterior": (0.0, self.y_p, self.top_p),
            "inferior_anterior": (0.0, self.y_a, -self.bot_a),
            "inferior_middle": (0.0, self.y_m, zm_bot),
            "inferior_posterior": (0.0, self.y_p, -self.bot_p),
        }

    def inward(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Inward distance (mm) at local points: min of wall distance and endplate distances."""
        from screening_node.phantom.grid import ellipse_inward

        d_wall = ellipse_inward(x, y, self.ax, self.ay)
        radius = max(self.ax * 0.45, 6.0)  # posterior concavity: a disc cut out of the back wall
        centre_y = self.ay + radius - self.post_concavity
        d_conc = np.sqrt(x * x + (y - centre_y) ** 2) - radius
        d_z = np.minimum(self.z_top(x, y) - z, z - self.z_bot(x, y))
        return np.minimum(np.minimum(d_wall, d_conc), d_z).astype(np.float32)


def reduction(heights: dict[str, float]) -> float:
    """Genant reduction r = 1 - min/max of the three heights."""
    values = list(heights.values())
    return 1.0 - min(values) / max(values)


def target_reduction(grade: int, rng: np.random.Generator) -> float:
    """Middle of the grade's band with a seeded jitter that stays inside the band."""
    centre, jitter = GRADE_TARGETS[grade]
    return float(centre + rng.uniform(-jitter, jitter))


def grade_of(loss: float) -> int:
    for grade in (3, 2, 1):
        if loss >= GRADE_BANDS[grade][0]:
            return grade
    return 0


def fracture(shape: BodyShape, morphology: str, r: float, neighbour_posterior_mm: float | None = None
             ) -> BodyShape:
    """The body after a fracture of ``morphology`` with height reduction ``r`` (exact).

    wedge: anterior height = (1 - r) * posterior; biconcave: middle = (1 - r) * max(anterior, posterior);
    crush: all heights scaled so posterior = (1 - r) * mean posterior height of the neighbours.
    """
    h = shape.heights()
    if morphology == "wedge":
        loss = h["anterior"] - (1.0 - r) * h["posterior"]
        return replace(shape, top_a=shape.top_a - TOP_SHARE * loss, bot_a=shape.bot_a - (1 - TOP_SHARE) * loss)
    if morphology == "biconcave":
        target_m = (1.0 - r) * max(h["anterior"], h["posterior"])
        cups = 0.5 * (h["anterior"] + h["posterior"]) - target_m
        return replace(shape, cup_top=0.65 * cups, cup_bot=0.35 * cups)
    if morphology == "crush":
        if neighbour_posterior_mm is None:
            raise ValueError("a crush fracture needs the neighbours' posterior height")
        f = (1.0 - r) * neighbour_posterior_mm / h["posterior"]
        return replace(shape, top_a=shape.top_a * f, top_p=shape.top_p * f, bot_a=shape.bot_a * f,
                       bot_p=shape.bot_p * f, cup_top=shape.cup_top * f, cup_bot=shape.cup_bot * f)
    raise ValueError(f"unknown morphology {morphology!r}")


def height_loss(morphology: str, heights: dict[str, float], neighbour_posterior_mm: float | None) -> float:
    """Truth height loss: r of the body, or for a crush its posterior height vs its neighbours'."""
    if morphology == "crush" and neighbour_posterior_mm:
        return 1.0 - heights["posterior"] / neighbour_posterior_mm
    return reduction(heights)
