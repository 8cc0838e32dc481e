"""Contrast-filled blood set aside before the spine search (vessels.py), and an arterial-phase phantom end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk

from screening_node.analysis import thresholds as T
from screening_node.analysis.evaluate_metrics import compare, summarize
from screening_node.analysis.evaluate_truth import load_truth
from screening_node.analysis.pipeline import analyze_path
from screening_node.analysis.stages import ENGINES, get_engine
from screening_node.analysis.vessels import find_contrast_blood, without_contrast_blood
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume
from screening_node.phantom import fast_options, generate_phantom

SPACING = (1.0, 1.0, 2.0)  # x, y, z mm


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 120 x 120 x 80-slice (160 mm) scene on soft tissue, with noise: an aorta-like tube at 420 HU running
    the whole length, a stack of dense vertebra-like blocks (a 1 mm cortex at 900 HU round 300 HU marrow,
    28 mm tall, 4 mm discs between), and a long bony rod (a 3 mm cortex round textured marrow)."""
    z, y, x = np.mgrid[0:80, 0:120, 0:120].astype(float)
    zmm = z * SPACING[2]
    hu = np.full(z.shape, 40.0)
    tube = (x - 30) ** 2 + (y - 30) ** 2 <= 11.0 ** 2
    hu[tube] = 420.0
    r = np.hypot(x - 75, y - 60)
    in_block = (zmm % 32.0) < 28.0
    hu[(r <= 18) & in_block] = 300.0
    hu[(r > 16.5) & (r <= 18) & in_block] = 900.0
    hu[(r <= 18) & ~in_block] = 90.0  # discs
    rod = np.hypot(x - 30, y - 95) <= 12
    hu[rod] = (260.0 + 120.0 * np.sin(zmm / 3.0) * np.cos(x / 2.0))[rod]  # a trabecular pattern
    hu[rod & (np.hypot(x - 30, y - 95) > 9)] = 800.0
    hu += rng.normal(0.0, 15.0, hu.shape)
    return hu.astype(np.float32), {"tube": tube, "block": (r <= 18), "rod": rod}


def _image(hu: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing(SPACING)
    return image


def test_a_uniform_long_pool_at_the_cortical_level_is_read_as_unenhanced_blood_and_bone_is_left():
    hu, parts = _scene(np.random.default_rng(3))
    out, pools = without_contrast_blood(_image(hu))
    after = sitk.GetArrayViewFromImage(out)
    assert len(pools) == 1 and abs(pools[0].median_hu - 420) < 10
    assert np.median(after[parts["tube"]]) == T.BLOOD_UNENHANCED_HU
    assert np.array_equal(after[parts["block"]], hu[parts["block"]])  # dense bodies, cut by their discs
    assert np.array_equal(after[parts["rod"]], hu[parts["rod"]])  # long bone: cortex and marrow are not uniform


def test_a_pool_touching_dense_bone_is_told_from_it():
    hu, parts = _scene(np.random.default_rng(4))
    z, y, x = np.mgrid[0:80, 0:120, 0:120].astype(float)
    # the vessel widened until its blood touches the blocks' cortex along their whole height
    bridge = (np.abs(y - 45) <= 8) & (np.abs(x - 45) <= 14) & ~parts["tube"] & ~parts["block"]
    hu[bridge] = 420.0 + np.random.default_rng(7).normal(0.0, 15.0, int(bridge.sum()))
    out, pools = without_contrast_blood(_image(hu))
    after = sitk.GetArrayViewFromImage(out)
    assert len(pools) == 1 and abs(pools[0].median_hu - 420) < 10
    assert np.median(after[parts["tube"]]) == T.BLOOD_UNENHANCED_HU
    inner = parts["block"] & (np.hypot(x - 75, y - 60) <= 12)  # the blocks' marrow, clear of the contact
    assert np.array_equal(after[inner], hu[inner])


def test_a_scan_without_such_blood_is_returned_as_it_came():
    hu, parts = _scene(np.random.default_rng(5))
    hu[parts["tube"]] = 250.0 + np.random.default_rng(6).normal(0, 15, int(parts["tube"].sum()))  # portal venous
    image = _image(hu)
    out, pools = without_contrast_blood(image)
    assert pools == [] and out is image


@pytest.fixture(scope="module")
def arterial_phantom(tmp_path_factory):
    out = tmp_path_factory.mktemp("arterial")
    generate_phantom(fast_options(seed=3, fov="abdomen", format="nifti", contrast_phase="arterial"), out)
    return out


def test_an_arterial_phase_phantom_is_read_as_in_the_portal_venous_phase(arterial_phantom, tmp_path):
    """The aorta at 420 HU runs beside the bodies as bright as their blurred cortex: without the blood stage
    the spine search follows it and no level is identified."""
    truth = load_truth(arterial_phantom / "truth.json")
    pools = [f.pool for f in find_contrast_blood(as_lps(load_volume(arterial_phantom / "ct.nii.gz").image))]
    assert 400 <= max(p.median_hu for p in pools) <= 440  # the aorta, rendered at 420 HU
    result = analyze_path(arterial_phantom / "ct.nii.gz", tmp_path / "with")
    assert any("contrast-filled blood" in note for note in result.notes)
    # The summary's straightened view shows the scan as it came: the heart and aorta in front of the spine
    # as bright as they were (drawn from the image with the blood set aside: 3 voxels of 300 HU or more).
    view = np.load(tmp_path / "with" / "sagittal_view.npz")
    front = view["image"][:, :int(view["centre_col"]) - 20]
    assert (front >= 300).sum() >= 100
    matches, outcome = compare(result, truth, "phantom")
    assert summarize(matches, [outcome])["identification_rate"] >= 0.85

    ENGINES["analytic-no-blood"] = dataclasses.replace(get_engine("analytic"), name="analytic-no-blood",
                                                       blood=lambda image: (image, []))
    try:
        without = analyze_path(arterial_phantom / "ct.nii.gz", tmp_path / "without", engine="analytic-no-blood")
    finally:
        del ENGINES["analytic-no-blood"]
    matches, outcome = compare(without, truth, "phantom")
    assert summarize(matches, [outcome])["identification_rate"] < 0.5
