"""A fine matrix (1024 x 1024, 0.4 mm pixels) is read for analysis at a coarser pixel, and its SEG still lies on
the series' own frames.

The analysis reads the spine on 1 mm planes; a 1024 x 1024 series of 327 slices held at its own pixels took
2.7 GB (`benchmarks/thin_series.py --series matrix1024`). Its pixels are averaged in blocks as it is read
(imaging.volume.in_plane_blocks), and the body mask made on that grid is repeated over each block when the
SEG's frames are made (reporting.seg.source_frame_labels).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from screening_node.imaging.volume import in_plane_blocks, load_volume
from screening_node.reporting.seg import source_frame_labels
from tests.node_process import REPO
from tests.synthetic_ct import write_series


def test_blocks_stay_within_the_coarsest_pixel():
    assert in_plane_blocks((0.4, 0.4, 1.0), 1.0) == (2, 2)
    assert in_plane_blocks((0.3, 0.49, 1.0), 1.0) == (3, 2)
    assert in_plane_blocks((0.5, 0.5, 1.0), 1.0) == (2, 2)
    assert in_plane_blocks((0.6, 0.8, 1.0), 1.0) == (1, 1)
    assert in_plane_blocks((0.4, 0.4, 1.0), None) == (1, 1)


@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, 1, 0), (0, 1, 0, 0, 0, -1)],
                         ids=["head-first", "feet-first", "sagittal"])
def test_a_fine_series_is_read_as_the_mean_of_its_blocks_at_their_centres(tmp_path, orientation):
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 3000, size=(4, 9, 7)).astype(np.uint16)  # odd sizes: a last partial block
    files = write_series(tmp_path, n_slices=4, rows=9, columns=7, pixel_spacing=0.4, spacing=1.0,
                         orientation=orientation, pixels=stored)
    fine, coarse = load_volume(files), load_volume(files, coarsest_pixel_mm=1.0)
    assert coarse.image.GetSize() == (3, 4, 4)
    np.testing.assert_allclose(coarse.image.GetSpacing(), (0.8, 0.8, 1.0))
    hu = sitk.GetArrayFromImage(fine.image)  # (z, y, x) in stored order
    expected = hu[:, :8, :6].reshape(4, 4, 2, 3, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(coarse.image), expected, rtol=1e-6)
    for x, y in ((0, 0), (2, 3)):  # a block's centre is the mean of its four pixels' positions
        corners = [fine.image.TransformIndexToPhysicalPoint((2 * x + i, 2 * y + j, 1)) for i in (0, 1) for j in (0, 1)]
        np.testing.assert_allclose(coarse.image.TransformIndexToPhysicalPoint((x, y, 1)), np.mean(corners, axis=0),
                                   atol=1e-4)
    assert coarse.meta["in_plane_blocks"] == [2, 2] and "in_plane_blocks" not in fine.meta


def test_the_seg_frames_repeat_the_coarse_mask_over_each_block_as_resampling_would(tmp_path):
    files = write_series(tmp_path, n_slices=3, rows=10, columns=9, pixel_spacing=0.4, spacing=1.0)
    coarse = load_volume(files, coarsest_pixel_mm=1.0)
    labels = np.random.default_rng(5).integers(0, 4, size=(3, 5, 4)).astype(np.uint8)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(coarse.image)
    frames = source_frame_labels(mask, coarse.reference_datasets)
    plane_grid_frames = [sitk.GetArrayFromImage(sitk.Resample(
        mask, sitk.ReadImage(str(path)), sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID()))[0]
        for path in coarse.source_files]
    for frame, resampled in zip(frames, plane_grid_frames):
        assert frame().shape == (10, 9)
        np.testing.assert_array_equal(frame(), resampled)


@pytest.mark.slow
def test_a_fine_matrix_is_analysed_at_a_coarser_pixel_and_its_seg_lies_on_its_own_frames(tmp_path):
    phantom = tmp_path / "phantom"
    subprocess.run([sys.executable, "-m", "screening_node", "phantom", "--out", str(phantom), "--seed", "5",
                    "--fov", "spine-crop", "--matrix", "384", "--pixel-spacing", "0.33", "--slice-thickness", "2",
                    "--fracture", "L1:2:wedge", "--format", "dicom"], check=True, cwd=REPO, capture_output=True)
    out = tmp_path / "result"
    run = subprocess.run([sys.executable, "-m", "screening_node", "analyze", str(phantom / "dicom"), "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "pixels of 0.33 x 0.33 mm averaged 3 x 3 as the series was read: analysed at 0.99 x 0.99 mm" in run.stdout
    assert "L1 " in run.stdout and "wedge" in run.stdout
    seg = pydicom.dcmread(out / "seg.dcm")
    assert (seg.Rows, seg.Columns) == (384, 384)
    check = subprocess.run(["/usr/bin/dciodvfy", str(out / "seg.dcm")], capture_output=True, text=True)
    assert not [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
    (out / "seg.dcm").unlink()  # `report` rebuilds it from the results, reading the CT as the analysis did
    again = subprocess.run([sys.executable, "-m", "screening_node", "report", str(out), str(phantom / "dicom")],
                           cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and "not made" not in again.stdout, again.stdout
    np.testing.assert_array_equal(pydicom.dcmread(out / "seg.dcm").pixel_array, seg.pixel_array)


def test_frames_off_the_mask_grid_are_resampled_into_arrays_of_their_own(tmp_path):
    # The resampled frame was a view of an image nobody held any more: it read freed memory.
    files = write_series(tmp_path, n_slices=3, rows=10, columns=9, pixel_spacing=0.4, spacing=1.0)
    volume = load_volume(files)
    labels = np.random.default_rng(7).integers(0, 4, size=(3, 10, 9)).astype(np.uint8)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(volume.image)
    mask.SetOrigin(tuple(np.add(volume.image.GetOrigin(), (0.15, 0.0, 0.0))))  # off the frames' grid
    frames = [frame() for frame in source_frame_labels(mask, volume.reference_datasets)]
    for frame, path in zip(frames, volume.source_files):
        expected = sitk.GetArrayFromImage(sitk.Resample(mask, sitk.ReadImage(str(path)), sitk.Transform(),
                                                        sitk.sitkNearestNeighbor, 0, mask.GetPixelID()))[0]
        np.testing.assert_array_equal(frame, expected)
    assert any(frame.any() for frame in frames)
