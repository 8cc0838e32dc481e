"""Reconstruction: ordering, orientation, rescale, every failure reason, Enhanced CT, volume files."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

from screening_node.errors import NotAssessable
from screening_node.imaging.volume import load_volume
from tests.conftest import shared_case
from tests.node_process import cli
from tests.synthetic_ct import write_series


def _gdcm_reference(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.mark.parametrize("case", ["tcia-pancreas-ct-cb-001", "ts-example-dicom-j2k/fixed"])
def test_real_series_equal_simpleitk_gdcm_reader(case):
    folder = shared_case(case.split("/")[0]) / "/".join(case.split("/")[1:])
    volume = load_volume(folder)
    reference = _gdcm_reference(folder)
    assert volume.image.GetSize() == reference.GetSize()
    np.testing.assert_allclose(volume.image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(volume.image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(volume.image.GetDirection(), reference.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(volume.image),
                                  sitk.GetArrayViewFromImage(reference).astype(np.float32))
    assert volume.problems == () and len(volume.reference_datasets) == reference.GetSize()[2]


def test_order_comes_from_positions_not_files_or_instance_numbers(tmp_path):
    pixels = np.arange(6, dtype=np.uint16)[:, None, None] * 100 + np.zeros((6, 4, 4), np.uint16)
    files = write_series(tmp_path, n_slices=6, rows=4, columns=4, pixels=pixels)
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)
    for path in files:  # InstanceNumber no longer follows position
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = random.Random(str(path)).randint(1, 1000)
        ds.save_as(path)
    volume = load_volume(shuffled)
    values = sitk.GetArrayFromImage(volume.image)[:, 0, 0]
    np.testing.assert_array_equal(values, np.arange(6) * 100 - 1024)


@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, 1, 0), (-1, 0, 0, 0, -1, 0),
                                         (0.8660254, 0.5, 0, -0.5, 0.8660254, 0)])
def test_a_bright_voxel_lands_at_its_lps_position(tmp_path, orientation):
    """Head-first, feet-first, prone-like and rotated cosines: world positions survive."""
    pixels = np.zeros((5, 8, 8), np.uint16)
    pixels[3, 2, 5] = 3000  # slice 3, row 2, column 5
    origin = np.array([10.0, -20.0, 300.0])
    spacing, pixel = 2.5, 0.7
    files = write_series(tmp_path, n_slices=5, rows=8, columns=8, spacing=spacing, pixel_spacing=pixel,
                         orientation=orientation, origin=tuple(origin), pixels=pixels)
    row_cos, col_cos = np.array(orientation[:3]), np.array(orientation[3:])
    expected = origin + 3 * spacing * np.cross(row_cos, col_cos) + 5 * pixel * row_cos + 2 * pixel * col_cos
    volume = load_volume(list(reversed(files)))
    array = sitk.GetArrayViewFromImage(volume.image)
    z, y, x = np.unravel_index(np.argmax(array), array.shape)
    found = volume.image.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))
    np.testing.assert_allclose(found, expected, atol=1e-4)


def test_per_slice_rescale_is_applied(tmp_path):
    files = write_series(tmp_path, n_slices=3, fill=1000)
    ds = pydicom.dcmread(files[1])
    ds.RescaleSlope, ds.RescaleIntercept = 2, -2048
    ds.save_as(files[1])
    values = sitk.GetArrayFromImage(load_volume(tmp_path).image)[:, 0, 0]
    np.testing.assert_array_equal(values, [-24, -48, -24])


def _edit(path, **values):
    ds = pydicom.dcmread(path)
    for key, value in values.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


@pytest.mark.parametrize("damage, reason", [
    (lambda f: f[2].unlink(), "gap in the slice positions"),
    (lambda f: _edit(f[2], ImagePositionPatient=pydicom.dcmread(f[1]).ImagePositionPatient), "duplicate slice"),
    (lambda f: _edit(f[2], ImageOrientationPatient=[1, 0, 0, 0, 0.9950042, 0.0998334]), "mixed slice orientations"),
    (lambda f: [_edit(p, ImagePositionPatient=[-8.0, -8.0 + 0.6 * i, 2.0 * i]) for i, p in enumerate(f)], "gantry tilt"),
    (lambda f: _edit(f[1], ImagePositionPatient=None), "missing geometry"),
    (lambda f: _edit(f[0], PixelSpacing=None), "missing geometry"),
    (lambda f: [p.unlink() for p in f[1:]], "single slice"),
    (lambda f: _edit(f[1], Rows=8, PixelData=b"\0" * 8 * 16 * 2), "mixed matrix sizes"),
    (lambda f: _edit(f[0], Modality="MR"), "not CT"),
    (lambda f: _edit(f[0], SeriesInstanceUID=generate_uid()), "different series"),
    (lambda f: _edit(f[3], PixelData=b"\0" * 10), "pixel data could not be decoded"),
])
def test_unsound_stacks_are_not_assessable_with_a_reason(tmp_path, damage, reason):
    files = write_series(tmp_path, n_slices=6)
    damage(files)
    with pytest.raises(NotAssessable) as caught:
        load_volume(tmp_path)
    assert reason in str(caught.value), str(caught.value)


def _enhanced_from(files, path):
    """An Enhanced CT (multi-frame, functional groups) holding the same slices."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    slices = [pydicom.dcmread(p) for p in files]
    ds = copy.deepcopy(slices[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope",
                    "RescaleIntercept", "SliceThickness"):
        delattr(ds, keyword)
    shared = Dataset()
    orientation, measures, transform = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = slices[0].ImageOrientationPatient
    measures.PixelSpacing, measures.SliceThickness = slices[0].PixelSpacing, slices[0].SliceThickness
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1, -1024, "HU"
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for s in reversed(slices):  # frames stored in the opposite order: position decides
        frame, position = Dataset(), Dataset()
        position.ImagePositionPatient = s.ImagePositionPatient
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.NumberOfFrames = len(slices)
    ds.PixelData = b"".join(s.PixelData for s in reversed(slices))
    ds.save_as(path)


def test_enhanced_ct_gives_the_same_volume_as_single_frames(tmp_path):
    pixels = (np.arange(5 * 16 * 16, dtype=np.uint16).reshape(5, 16, 16) % 3000)
    files = write_series(tmp_path / "single", n_slices=5, pixels=pixels, orientation=(-1, 0, 0, 0, 1, 0))
    (tmp_path / "multi").mkdir()
    _enhanced_from(files, tmp_path / "multi" / "enhanced.dcm")
    single, multi = load_volume(tmp_path / "single"), load_volume(tmp_path / "multi")
    assert single.image.GetSize() == multi.image.GetSize()
    np.testing.assert_allclose(single.image.GetOrigin(), multi.image.GetOrigin())
    np.testing.assert_allclose(single.image.GetDirection(), multi.image.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(single.image), sitk.GetArrayViewFromImage(multi.image))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_volume_files_round_trip(tmp_path, suffix):
    image = sitk.GetImageFromArray(np.random.default_rng(0).integers(-1000, 2000, (6, 7, 8)).astype(np.int16))
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((12.0, -30.0, 400.0))
    image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    path = tmp_path / f"v{suffix}"
    sitk.WriteImage(image, str(path))
    volume = load_volume(path)
    np.testing.assert_allclose(volume.image.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(volume.image.GetDirection(), image.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(volume.image), sitk.GetArrayViewFromImage(image))


def test_inspect_json_contract(tmp_path):
    write_series(tmp_path / "ok", n_slices=4, spacing=2.0, origin=(-8, -8, 50))
    report = json.loads(cli("inspect", str(tmp_path / "ok"), "--json").stdout)
    assert report["size"] == [16, 16, 4] and report["spacing"] == [1.0, 1.0, 2.0]
    assert report["origin"] == [-8.0, -8.0, 50.0] and len(report["direction"]) == 9
    assert report["hu_min"] == report["hu_max"] == -1024.0 and report["slices"] == 4 and report["problems"] == []
    files = write_series(tmp_path / "bad", n_slices=4)
    files[1].unlink()
    report = json.loads(cli("inspect", str(tmp_path / "bad"), "--json").stdout)
    assert report["size"] is None and report["problems"][0].startswith("not assessable: gap")
    missing = cli("inspect", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
