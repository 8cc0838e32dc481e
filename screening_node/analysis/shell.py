"""The cortical shell of a bone surface as the CT sees it, and its sub-voxel fit to a 1-D profile.

Why a model: the scanner's blur moves a profile's steepest slope off the bone's outer surface, by an amount
that depends on the cortex's thickness and density; fitting the blurred shell puts the surface where it is.
Both the walls (walls.py) and the endplates (endplates.py) are placed so.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from screening_node.analysis import thresholds as T
from screening_node.analysis.slice_sampling import ColumnSampling

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


def sampled_shell_surface(prof: np.ndarray, lo: int, hi: int, inward: int, guess: float,
                          sampling: ColumnSampling) -> float | None:
    """Sub-voxel outer surface of a cortical shell crossed by a thick-slice profile whose rows are linear
    mixes of slices (``sampling``, one row per row of prof[lo:hi]).

    The same shell (tissue, a CORTEX_SHELL_MM cortex, marrow), averaged over each slice's thickness
    (a box) and the scanner's own blur (SCANNER_BLUR_MM), taken at the slices' centres and mixed as the
    straightening mixed them. Free: the three densities and the surface. A window of few slices holds
    few samples, so the fit is given more rows inside the edge (the caller's window) than shell_surface.
    Given the surface the model is linear in the densities, so they are solved for directly at every
    surface on a SAMPLED_FIT_STEP_MM grid across the window, and the best surface is refined between its
    grid neighbours (bounded Brent). A general least-squares fit of all four, started at the edge, finds a
    nearer local minimum where the window holds two (tcia: 31 of 36 heights the same, five 0.6-0.8 mm
    apart), and took 1.5 s more of a 5 s analysis.
    Returns a position on prof's axis, or None as shell_surface does.
    """
    lo, hi = max(0, int(lo)), min(len(prof), int(hi))
    y = np.asarray(prof[lo:hi], dtype=float)
    if len(y) < 5 or sampling.centres.shape[0] != len(y):
        return None
    u = (np.arange(lo, hi) - guess) * inward
    x = (sampling.centres - guess) * inward  # the slices' centres, inward coordinate
    weights, half = sampling.weights, 0.5 * sampling.box_rows

    def solved(surfaces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best densities (outside, shell, marrow) and residual sum of squares at each surface."""
        d = x[None, :, :] - surfaces[:, None, None]
        step_a = (weights * _box_step(d, half, T.SCANNER_BLUR_MM)).sum(axis=2)
        step_b = (weights * _box_step(d - T.CORTEX_SHELL_MM, half, T.SCANNER_BLUR_MM)).sum(axis=2)
        design = np.stack([1.0 - step_a, step_a - step_b, step_b], axis=2)  # (surfaces, rows, 3)
        gram = np.einsum("grj,grk->gjk", design, design) + 1e-9 * np.eye(3)
        densities = np.linalg.solve(gram, np.einsum("grj,r->gj", design, y)[..., None])[..., 0]
        residual = np.einsum("grj,gj->gr", design, densities) - y
        return densities, (residual ** 2).sum(axis=1)

    grid = np.arange(u.min(), u.max() + 1e-9, T.SAMPLED_FIT_STEP_MM)
    _, rss = solved(grid)
    best = int(np.argmin(rss))
    low, high = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    refined = optimize.minimize_scalar(lambda s: float(solved(np.array([s]))[1][0]), bounds=(low, high),
                                       method="bounded", options={"xatol": 1e-3})
    surface = float(refined.x)
    outside, shell, marrow = solved(np.array([surface]))[0][0]
    if not u.min() + 1.0 <= surface <= u.max() - 1.0 or max(shell, marrow) - outside < T.WALL_RIDGE_HU:
        return None
    return guess + inward * surface


def _box_step(x: np.ndarray, half: float, sigma: float) -> np.ndarray:
    """A unit step at 0, blurred by a Gaussian (sigma) and averaged over a box of half width ``half``."""
    return (_integrated_step(x + half, sigma) - _integrated_step(x - half, sigma)) / (2.0 * half)


def _integrated_step(x: np.ndarray, sigma: float) -> np.ndarray:
    """The integral of the Gaussian-blurred unit step from -inf to x."""
    z = x / sigma
    return x * special.ndtr(z) + sigma * np.exp(-0.5 * z * z) / _SQRT_2PI
