"""Thick slices modelled as sampled: which slices a straightened row mixed, and the endplate fit on them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage, special

from screening_node.analysis.shell import sampled_shell_surface
from screening_node.analysis.slice_sampling import column_block, column_sampling
from screening_node.analysis.straighten import SliceStack, Straightened, straighten


def _straight_column(rows: int, slice_rows: tuple[float, float] | None, thickness: float | None = None) -> Straightened:
    """A straightened frame on a straight curve running down the patient (row r at z = -r mm); with
    ``slice_rows`` (first centre, spacing) a CT whose slices are centred at those rows, ``thickness`` mm thick
    where they overlap."""
    points = np.stack([np.zeros(rows), np.zeros(rows), -np.arange(rows, dtype=float)], axis=1)
    tangents = np.tile([0.0, 0.0, -1.0], (rows, 1))
    col_dirs = np.tile([0.0, 1.0, 0.0], (rows, 1))
    st = Straightened(np.zeros((rows, 9, 9), np.float32), points, tangents, col_dirs, np.cross(tangents, col_dirs),
                      4, 4)
    if slice_rows is None:
        return st
    first, spacing = slice_rows
    stack = SliceStack(np.array([0.0, 0.0, -first]), np.array([0.0, 0.0, -1.0 / spacing]), spacing, thickness)
    return dataclasses.replace(st, row_spacing_mm=np.full(rows, spacing), slices=stack,
                               row_thickness_mm=None if thickness is None else np.full(rows, thickness))


def test_the_slice_stack_of_an_image_counts_slices_as_its_index_does() -> None:
    image = sitk.Image(4, 5, 6, sitk.sitkFloat32)
    image.SetSpacing((0.8, 0.8, 3.0))
    image.SetOrigin((-10.0, 20.0, -50.0))
    image.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, -1))  # rows and slices run against L/P and S: the signs matter
    stack = SliceStack.of(image)
    for index in ([0, 0, 0], [1.5, 2.0, 3.25], [3, 4, 5]):
        point = image.TransformContinuousIndexToPhysicalPoint(index)
        assert stack.index(np.array(point)) == pytest.approx(index[2])


def test_a_grid_as_coarse_within_its_slices_as_across_them_has_no_stack_to_model() -> None:
    # 3 mm cubes (ts-example) were resampled: their voxels are interpolated, not averaged over a slice.
    image = sitk.Image(4, 5, 6, sitk.sitkFloat32)
    image.SetSpacing((3.0, 3.0, 3.0))
    assert SliceStack.of(image) is None
    image.SetSpacing((1.5, 1.5, 3.0))  # a scanner's thick slices (pixels averaged to the analysis's 1.5 mm)
    assert SliceStack.of(image) is not None


def test_each_row_mixes_the_two_slices_around_it_as_linear_interpolation_does() -> None:
    st = _straight_column(60, (10.4, 3.0))
    rows = np.arange(20, 30)
    sampling = column_sampling(st, 4.0, 4, rows)
    assert sampling is not None
    assert sampling.box_rows == pytest.approx(3.0)
    assert np.allclose(sampling.weights.sum(axis=1), 1.0)
    for i, row in enumerate(rows):
        below = 10.4 + 3.0 * np.floor((row - 10.4) / 3.0)  # the slice centre at or above the row
        mix = {round(c, 6): 0.0 for c in sampling.centres[i]}
        for c, w in zip(sampling.centres[i], sampling.weights[i]):
            mix[round(c, 6)] += w
        expected = {round(below, 6): 1.0 - (row - below) / 3.0, round(below + 3.0, 6): (row - below) / 3.0}
        assert {c: w for c, w in mix.items() if w > 1e-9} == pytest.approx(
            {c: w for c, w in expected.items() if w > 1e-9})


def test_a_finely_sampled_spine_or_an_unknown_stack_is_not_modelled() -> None:
    st = _straight_column(60, (10.4, 3.0))
    assert column_sampling(dataclasses.replace(st, row_spacing_mm=np.full(60, 1.0)), 4.0, 4, np.arange(20, 30)) is None
    assert column_sampling(_straight_column(60, None), 4.0, 4, np.arange(20, 30)) is None


def test_the_column_block_weights_are_the_profiles() -> None:
    from screening_node.analysis.endplates import _column_profile
    rng = np.random.default_rng(3)
    v = rng.normal(size=(5, 12, 9))
    for ap in (3.0, 4.3, 6.75):
        block = column_block(ap, 4, v.shape[1])
        mixed = sum(w * v[:, a, c] for a, c, w in block)
        assert np.allclose(mixed, _column_profile(v, ap, 4))


def _sampled_profile(surface: float, first: float, spacing: float, rng: np.random.Generator | None = None,
                     n: int = 40, thickness: float | None = None) -> np.ndarray:
    """1 mm rows of a superior endplate (tissue, a 1 mm cortex from ``surface`` on, marrow), scanned in
    slices as thick as they are apart (or ``thickness`` mm) centred at rows ``first`` + k * spacing (each
    averaging the anatomy, blurred by the scanner, over its thickness), interpolated linearly to the rows.
    With ``rng`` the cortex, marrow and blur are drawn, and the shell's thickness too (0.5-1.5 mm, the model
    takes 1)."""
    shell, cortex, marrow, sigma = 1.0, 800.0, 150.0, 0.5
    if rng is not None:
        shell, cortex, marrow, sigma = (rng.uniform(0.5, 1.5), rng.uniform(400, 1000), rng.uniform(60, 250),
                                        rng.uniform(0.3, 0.7))
    centres = first + spacing * np.arange(-12, 30)
    z = centres[:, None] + np.linspace(-0.5, 0.5, 61)[None, :] * (thickness or spacing)
    anatomy = (40.0 + (cortex - 40.0) * special.ndtr((z - surface) / sigma)
               + (marrow - cortex) * special.ndtr((z - surface - shell) / sigma))
    return np.maximum(np.interp(np.arange(float(n)), centres, anatomy.mean(axis=1)), 30.0)


@pytest.mark.parametrize("first", [0.0, 0.75, 1.5, 2.25])
def test_the_sampled_fit_finds_the_surface_wherever_the_slices_fall(first: float) -> None:
    # The Gaussian stand-in for the slices (slice_blur) errs with the slices' phase; the sampled model
    # is the scan itself, so on a noise-free profile it finds the surface at every phase.
    from screening_node.analysis.endplates import slice_blur
    from screening_node.analysis.shell import shell_surface
    surface = 16.4
    prof = _sampled_profile(surface, first, 3.0)
    st = _straight_column(40, (first, 3.0))
    lo, hi = 10, 25
    sampling = column_sampling(st, 4.0, 4, np.arange(lo, hi))
    assert sampling is not None
    fitted = sampled_shell_surface(prof, lo, hi, +1, 15.0, sampling)
    assert fitted is not None and abs(fitted - surface) <= 0.05
    gaussian = shell_surface(prof, 11, 20, +1, 15.0, slice_blur(st, 16))
    assert gaussian is not None and abs(gaussian - surface) > 0.1  # what the sampled model mends


def test_on_thick_slices_the_endplate_is_read_closer_with_the_slices_sampling_modelled() -> None:
    # The mean of the Gaussian and the sampled fits (endplates._endplate_surface) against the Gaussian alone.
    from screening_node.analysis.endplates import _edge, _endplate_surface, _ThickColumn, slice_blur
    rng = np.random.default_rng(11)
    errors: dict[str, list[float]] = {"gaussian": [], "with sampling": []}
    for _ in range(120):
        surface, first = rng.uniform(15.0, 18.0), rng.uniform(0.0, 3.0)
        prof = _sampled_profile(surface, first, 3.0, rng) + rng.normal(0.0, 4.0, 40)
        st = _straight_column(40, (first, 3.0))
        rough = _edge(np.gradient(ndimage.gaussian_filter1d(prof, 0.8)), 5, 30, +1)
        assert rough is not None
        blur = slice_blur(st, 16)
        errors["gaussian"].append(_endplate_surface(prof, rough, +1, blur) - surface)
        errors["with sampling"].append(_endplate_surface(prof, rough, +1, blur, _ThickColumn(st, 4.0, 4, 32.0))
                                       - surface)
    # Cortices 0.5-1.5 mm thick (the models take 1 mm) and 4 HU of noise: 0.91 -> 0.68 mm here.
    mean_abs = {k: float(np.mean(np.abs(v))) for k, v in errors.items()}
    assert mean_abs["with sampling"] < 0.9 * mean_abs["gaussian"], mean_abs


def test_straightening_keeps_the_stack_it_sampled() -> None:
    image = sitk.Image(20, 20, 12, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 3.0))
    image.SetOrigin((-10.0, -10.0, -30.0))
    points = np.stack([np.zeros(25), np.zeros(25), -np.arange(25, dtype=float)], axis=1)
    st = straighten(image, points, 3, 3)
    assert st.slices is not None and st.slices.spacing_mm == 3.0
    assert st.slices.index(np.array([0.0, 0.0, -24.0])) == pytest.approx(2.0)


def test_overlapping_slices_are_a_stack_as_thick_as_the_series_says() -> None:
    # 3 mm slices every 2 mm on 1.5 mm pixels: a grid nearly as coarse within its slices as across them, which
    # alone tells a resampled volume; marked with its thickness (pipeline._carry_slice_thickness), a stack.
    from screening_node.analysis.endplates import slice_blur
    from screening_node.analysis.pipeline import _carry_slice_thickness
    from screening_node.analysis.straighten import slice_thickness_of
    image = sitk.Image(20, 20, 18, sitk.sitkFloat32)
    image.SetSpacing((1.5, 1.5, 2.0))
    image.SetOrigin((-15.0, -15.0, -34.0))
    assert SliceStack.of(image) is None
    _carry_slice_thickness(image, image, 2.0)  # as thick as they are apart: nothing to mark
    assert slice_thickness_of(image) is None
    _carry_slice_thickness(image, image, 3.0)
    assert slice_thickness_of(image) == 3.0
    stack = SliceStack.of(image)
    assert stack is not None and stack.thickness_over_spacing == pytest.approx(1.5)
    points = np.stack([np.zeros(25), np.zeros(25), -np.arange(25, dtype=float)], axis=1)
    st = straighten(image, points, 3, 3)
    sampling = st.thick_sampling_at(12)
    assert sampling is not None and sampling == pytest.approx((2.0, 3.0))
    assert slice_blur(st, 12) == pytest.approx(np.sqrt(3.0 ** 2 / 12 + 2.0 ** 2 / 6 + 0.5 ** 2))
    sampled = column_sampling(st, 3.0, 3, np.arange(5, 20))
    assert sampled is not None and sampled.box_rows == pytest.approx(3.0)
    # sampled every 1.5 mm, the free shell fit finds the blur itself, however thick the slices
    closer = sitk.Image(20, 20, 24, sitk.sitkFloat32)
    closer.SetSpacing((1.5, 1.5, 1.5))
    closer.SetOrigin((-15.0, -15.0, -34.5))
    _carry_slice_thickness(closer, closer, 3.0)
    assert straighten(closer, points, 3, 3).thick_sampling_at(12) is None
    # a sagittal series, whose slices as_lps turns across the spine's rows, is not marked
    sagittal = sitk.Image(24, 20, 20, sitk.sitkFloat32)
    sagittal.SetDirection((0, 0, 1, 1, 0, 0, 0, -1, 0))
    _carry_slice_thickness(image, sagittal, 3.0)
    assert slice_thickness_of(image) is None


def test_on_overlapping_slices_the_sampled_fit_takes_them_as_thick_as_they_are() -> None:
    surface, lo, hi = 16.4, 10, 25
    errors: dict[str, list[float]] = {"as thick": [], "as apart": []}
    for first in np.arange(0.0, 2.0, 0.25):
        prof = _sampled_profile(surface, first, 2.0, thickness=3.0)
        sampling = column_sampling(_straight_column(40, (first, 2.0), thickness=3.0), 4.0, 4, np.arange(lo, hi))
        assert sampling is not None
        for name, model in (("as thick", sampling), ("as apart", dataclasses.replace(sampling, box_rows=2.0))):
            fitted = sampled_shell_surface(prof, lo, hi, +1, 15.0, model)
            errors[name].append(np.inf if fitted is None else abs(fitted - surface))
    assert max(errors["as thick"]) <= 0.05, errors
    assert max(errors["as apart"]) > 0.1, errors  # taken as thick as they are apart, it misses the 3 mm blur


def test_the_analysis_leaves_no_mark_on_the_callers_image() -> None:
    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.analysis.straighten import SLICE_THICKNESS_KEY
    image = sitk.Image(40, 40, 30, sitk.sitkFloat32) - 1000.0  # air: nothing to find
    image.SetSpacing((1.0, 1.0, 1.5))
    result = analyze_volume(image, None, slice_thickness_mm=3.0)
    assert result.status == "not_assessable"
    assert not image.HasMetaDataKey(SLICE_THICKNESS_KEY)
