"""Geometry helpers agree with SimpleITK's own point transforms, in both axis orders."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from screening_node.imaging.geometry import (direction_matrix, index_to_lps, inside, lps_to_index, lps_to_voxel_zyx,
                                             orientation_code, reorient, voxel_zyx_to_lps)
from screening_node.imaging.volume import load_volume
from tests.synthetic_ct import write_series


def _oblique_image() -> sitk.Image:
    """A 9 x 7 x 5 image with a rotated, partly flipped direction and anisotropic spacing."""
    rotation = sitk.VersorTransform((0.3, -0.5, 0.8), 0.7).GetMatrix()
    flip = np.diag([1.0, -1.0, 1.0])
    image = sitk.Image(9, 7, 5, sitk.sitkFloat32)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-120.0, 35.5, 410.0))
    image.SetDirection(tuple((np.asarray(rotation).reshape(3, 3) @ flip).flatten()))
    return image


def test_index_to_lps_matches_simpleitk_for_many_points():
    image = _oblique_image()
    index = np.random.default_rng(3).uniform(-1, 9, size=(50, 3))
    expected = np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(i)) for i in index])
    np.testing.assert_allclose(index_to_lps(image, index), expected, atol=1e-9)
    np.testing.assert_allclose(lps_to_index(image, expected), index, atol=1e-9)
    one = index_to_lps(image, [4, 3, 2])  # a single point keeps shape (3,)
    assert one.shape == (3,) and np.allclose(one, image.TransformIndexToPhysicalPoint((4, 3, 2)))
    assert np.allclose(direction_matrix(image)[:, 2], np.asarray(image.GetDirection()).reshape(3, 3)[:, 2])


def test_numpy_order_helpers_find_the_voxel_in_the_array():
    image = _oblique_image()
    array = np.zeros((5, 7, 9), np.float32)  # (z, y, x)
    array[3, 1, 6] = 1.0
    marked = sitk.GetImageFromArray(array)
    marked.CopyInformation(image)
    point = marked.TransformIndexToPhysicalPoint((6, 1, 3))  # SimpleITK order x, y, z
    z, y, x = lps_to_voxel_zyx(marked, [point])[0]
    assert sitk.GetArrayViewFromImage(marked)[z, y, x] == 1.0
    np.testing.assert_allclose(voxel_zyx_to_lps(marked, [[3, 1, 6]])[0], point, atol=1e-9)
    near = np.asarray(point) + 0.2 * direction_matrix(marked)[:, 0]  # a fraction of a voxel along x
    assert tuple(lps_to_voxel_zyx(marked, near)) == (3, 1, 6)


def test_inside_uses_half_voxel_borders():
    image = _oblique_image()
    flags = inside(image, [[0, 0, 0], [-0.49, 3, 2], [-0.51, 3, 2], [8.49, 6, 4], [8.5, 6, 4], [4, 3, 5]])
    assert flags.tolist() == [True, True, False, True, False, False]


@pytest.mark.parametrize("orientation, code", [((1, 0, 0, 0, 1, 0), "LPS"), ((-1, 0, 0, 0, 1, 0), "RPI"),
                                               ((-1, 0, 0, 0, -1, 0), "RAS"), ((0, 1, 0, 0, 0, -1), "PIR")])
def test_reorient_keeps_world_positions(tmp_path, orientation, code):
    pixels = np.zeros((4, 6, 6), np.uint16)
    pixels[1, 4, 2] = 2000
    volume = load_volume(write_series(tmp_path, n_slices=4, rows=6, columns=6, orientation=orientation, pixels=pixels))
    assert orientation_code(volume.image) == code
    lps = reorient(volume.image, "LPS")
    assert orientation_code(lps) == "LPS" and np.allclose(lps.GetDirection(), np.eye(3).flatten())

    def bright_lps(image: sitk.Image) -> np.ndarray:
        array = sitk.GetArrayViewFromImage(image)
        return voxel_zyx_to_lps(image, np.unravel_index(np.argmax(array), array.shape))

    np.testing.assert_allclose(bright_lps(lps), bright_lps(volume.image), atol=1e-6)
