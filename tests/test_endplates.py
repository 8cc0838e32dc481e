"""Endplate and wall surfaces: the blurred cortical-shell fit finds the surface, not the blur's edge."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from screening_node.analysis.endplates import shell_surface


def _blurred_shell(surface: float, sigma: float, shell: float = 1.0, n: int = 40, step: float = 0.05,
                   outside: float = 80.0, cortex: float = 800.0, marrow: float = 150.0) -> np.ndarray:
    """1-mm samples of a profile: outside tissue, a cortical shell from ``surface`` inward (+x), marrow,
    blurred by a Gaussian of ``sigma`` mm (rendered finely, then averaged over each 1 mm sample)."""
    x = np.arange(0, n, step)
    fine = np.where(x < surface, outside, np.where(x < surface + shell, cortex, marrow))
    fine = ndimage.gaussian_filter1d(fine, sigma / step)
    return fine.reshape(n, -1).mean(axis=1)


@pytest.mark.parametrize("surface, sigma", [(15.3, 0.6), (15.8, 1.0), (16.1, 1.4)])
def test_shell_fit_finds_the_surface_the_steepest_slope_misses(surface: float, sigma: float) -> None:
    prof = _blurred_shell(surface, sigma)
    centres = np.arange(len(prof)) + 0.5  # sample i covers [i, i + 1)
    steepest = centres[int(np.argmax(np.gradient(prof)))]
    fitted = shell_surface(prof, int(surface) - 5, int(surface) + 5, +1, float(int(surface))) + 0.5
    assert abs(fitted - surface) <= 0.15
    assert abs(steepest - surface) > abs(fitted - surface)  # the reason for the fit


def test_shell_fit_reads_the_other_direction_and_refuses_a_flat_profile() -> None:
    prof = _blurred_shell(15.4, 0.8)[::-1].copy()  # surface faces +x now: inward is -x
    surface_from_start = len(prof) - 15.4          # the surface position on the reversed axis
    fitted = shell_surface(prof, 19, 30, -1, 24.0) + 0.5
    assert abs(fitted - surface_from_start) <= 0.15
    assert shell_surface(np.full(20, 100.0), 2, 15, +1, 8.0) is None


def _thin_disc_profile(disc: tuple[int, int], cortex: float = 450.0, marrow: float = 50.0,
                       disc_hu: float = 90.0, n: int = 60) -> np.ndarray:
    """Rows through two osteoporotic bodies and the thin disc between them (rows disc[0]..disc[1]-1),
    each endplate a 1 mm cortex facing the disc, blurred like a 1 mm scan."""
    prof = np.full(n, marrow)
    prof[disc[0] - 1] = cortex        # upper body's inferior endplate
    prof[disc[0]:disc[1]] = disc_hu
    prof[disc[1]] = cortex            # lower body's superior endplate
    return ndimage.gaussian_filter1d(prof, 0.8)


def test_edges_face_the_disc_where_a_neighbours_cortex_is_as_steep() -> None:
    from screening_node.analysis.endplates import _edge
    prof = _thin_disc_profile((30, 34))
    grad = np.gradient(ndimage.gaussian_filter1d(prof, 0.8))
    # Fatty marrow is darker than the disc: the neighbour cortex's inner side is the steepest edge.
    sup = _edge(grad, 24, 36, +1)
    inf = _edge(grad, 28, 40, -1)
    # The rise into the lower body's endplate (row 34), not the upper cortex's inner side (row ~28);
    # the fall out of the upper body's endplate (row 29), not the lower cortex's inner side (row ~35).
    assert sup is not None and 32.5 <= sup <= 34.0
    assert inf is not None and 29.0 <= inf <= 30.5


def test_fat_in_front_of_a_body_is_not_framed_by_its_endplates() -> None:
    from screening_node.analysis.endplates import _framed_mask
    # Mid-sagittal plane (rows, ap) of a 3 mm scan: discs at rows 4 and 36; the body (marrow 110 HU,
    # endplates 400 HU) in columns 20-49; in front of it, fat blurred to -20 HU whose endplate rows
    # catch the blur of the osteophyte-lined corners (+60 HU).
    plane = np.full((41, 70), 30.0)
    plane[:, 20:50] = 110.0
    plane[[6, 7, 33, 34], 20:50] = 400.0
    plane[:, 8:20] = -20.0
    plane[[6, 7, 33, 34], 8:20] = 40.0
    framed = _framed_mask(plane, 4, 36)
    assert framed is not None
    assert framed[22:48].all()
    assert not framed[8:18].any()
