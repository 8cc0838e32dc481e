"""The cortical shell of a bone surface as the CT sees it, and its sub-voxel fit to a 1-D profile.

Why a model: the scanner's blur moves a profile's steepest slope off the bone's outer surface, by an amount
that depends on the cortex's thickness and density; fitting the blurred shell puts the surface where it is.
Both the walls (walls.py) and the endplates (endplates.py) are placed so.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from screening_node.analysis import thresholds as T

_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


def shell_surface(prof: np.ndarray, lo: int, hi: int, inward: int, guess: float, blur: float | None = None
                  ) -> float | None:
    """Sub-voxel outer surface of a cortical shell crossed by a 1-D profile.

    Model (the CT physics of a bone surface): outside tissue, a thin cortical shell, then marrow,
    blurred by the scanner's point spread (a Gaussian). The blur moves the steepest slope and
    every fixed-level crossing outward from a thin bright shell, by up to the blur width; fitting
    the blurred model instead gives the surface itself. Free: the three densities, the surface
    and the blur; fixed: the shell thickness (its product with the shell density is what the
    blur leaves measurable). ``blur`` fixes the blur too, where the scan's slices set it (slice_blur).
    Returns a position on prof's axis, or None when the fit does not describe a surface inside the window.
    """
    lo, hi = max(0, int(lo)), min(len(prof), int(hi))
    y = np.asarray(prof[lo:hi], dtype=float)
    if len(y) < 5:
        return None
    u = (np.arange(lo, hi) - guess) * inward  # inward coordinate, 0 at the guess
    order = np.argsort(u)
    u, y = u[order], y[order]
    w = T.CORTEX_SHELL_MM

    def residual(p: np.ndarray) -> np.ndarray:
        return shell_model(p, u, w) - y

    def jacobian(p: np.ndarray) -> np.ndarray:
        return shell_model_jacobian(p, u, w)

    s0 = -0.5 * w
    p0 = np.array([y[0], y.max(), y[-1], s0, 1.0])
    bounds = ([-1100.0, -1100.0, -1100.0, u[0], T.SHELL_MIN_BLUR_MM],
              [3000.0, 4000.0, 3000.0, u[-1], T.SHELL_MAX_BLUR_MM])
    if blur is not None:
        p0[4] = blur
        bounds[0][4], bounds[1][4] = blur - 1e-3, blur + 1e-3
    p0 = np.clip(p0, np.add(bounds[0], 1e-6), np.subtract(bounds[1], 1e-6))
    fit = optimize.least_squares(residual, p0, jac=jacobian, bounds=bounds, x_scale=[100.0, 100.0, 100.0, 1.0, 0.5],
                                 xtol=T.SHELL_FIT_XTOL)
    surface = float(fit.x[3])
    outside, shell, marrow = fit.x[:3]
    if not u[0] + 1.0 <= surface <= u[-1] - 1.0 or max(shell, marrow) - outside < T.WALL_RIDGE_HU:
        return None  # pinned to the window's end, or no bone brighter than the tissue outside: not an edge
    return guess + inward * surface


def shell_model(p: np.ndarray, u: np.ndarray, shell_mm: float) -> np.ndarray:
    """The blurred cortical shell at inward positions u: p = (outside, shell, marrow HU, surface, blur mm)."""
    outside, shell, marrow, s, sigma = p
    return (outside + (shell - outside) * special.ndtr((u - s) / sigma)
            + (marrow - shell) * special.ndtr((u - s - shell_mm) / sigma))


def shell_model_jacobian(p: np.ndarray, u: np.ndarray, shell_mm: float) -> np.ndarray:
    """d shell_model / d p, (len(u), 5), in closed form: finite differences cost five more model
    evaluations per step of the fit, and the fits were a third of a 1 mm trunk's analysis time."""
    outside, shell, marrow, s, sigma = p
    a, b = (u - s) / sigma, (u - s - shell_mm) / sigma
    cdf_a, cdf_b = special.ndtr(a), special.ndtr(b)
    pdf_a, pdf_b = np.exp(-0.5 * a * a) / _SQRT_2PI, np.exp(-0.5 * b * b) / _SQRT_2PI
    step_a, step_b = (shell - outside) / sigma, (marrow - shell) / sigma
    return np.column_stack([1.0 - cdf_a, cdf_a - cdf_b, cdf_b,
                            -(step_a * pdf_a + step_b * pdf_b),
                            -(step_a * pdf_a * a + step_b * pdf_b * b)])
