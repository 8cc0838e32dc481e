"""Reconstruction: ordering, orientation, rescale, every failure reason, Enhanced CT, volume files."""

from __future__ import annotations

import copy
import random

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

from screening_node.errors import NotAssessable
from screening_node.imaging.volume import load_volume
from tests.conftest import assert_same_volume, gdcm_reference, shared_case
from tests.synthetic_ct import write_series


@pytest.mark.parametrize("case", ["tcia-pancreas-ct-cb-001", "ts-example-dicom-j2k/fixed"])
def test_real_series_equal_simpleitk_gdcm_reader(case):
    folder = shared_case(case.split("/")[0]) / "/".join(case.split("/")[1:])
    volume = load_volume(folder)
    reference = gdcm_reference(folder)
    assert_same_volume(volume.image, reference)
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
                                         (0.8660254, 0.5, 0, -0.5, 0.8660254, 0), (1, 0, 0, 0, 0, -1),
                                         (0, 1, 0, 0, 0, -1)],
                         ids=["head-first-supine", "feet-first-descending-z", "prone-like", "rotated-30deg",
                              "coronal", "sagittal"])
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


def _enhanced_from(files, path, *, per_frame=False):
    """An Enhanced CT (multi-frame, functional groups) holding the same slices, frames in reverse order.

    ``per_frame``: orientation, pixel measures and rescale in every frame's group (each slice's own
    rescale) instead of the shared group.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    slices = [pydicom.dcmread(p) for p in files]
    ds = copy.deepcopy(slices[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope",
                    "RescaleIntercept", "SliceThickness"):
        delattr(ds, keyword)

    def groups(s):
        orientation, measures, transform = Dataset(), Dataset(), Dataset()
        orientation.ImageOrientationPatient = s.ImageOrientationPatient
        measures.PixelSpacing, measures.SliceThickness = s.PixelSpacing, s.SliceThickness
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = \
            s.RescaleSlope, s.RescaleIntercept, "HU"
        return {"PlaneOrientationSequence": Sequence([orientation]), "PixelMeasuresSequence": Sequence([measures]),
                "PixelValueTransformationSequence": Sequence([transform])}

    shared = Dataset()
    if not per_frame:
        for keyword, value in groups(slices[0]).items():
            setattr(shared, keyword, value)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for s in reversed(slices):  # frames stored in the opposite order: position decides
        frame, position = Dataset(), Dataset()
        position.ImagePositionPatient = s.ImagePositionPatient
        frame.PlanePositionSequence = Sequence([position])
        if per_frame:
            for keyword, value in groups(s).items():
                setattr(frame, keyword, value)
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.NumberOfFrames = len(slices)
    ds.PixelData = b"".join(s.PixelData for s in reversed(slices))
    ds.save_as(path)


@pytest.mark.parametrize("per_frame", [False, True], ids=["shared-groups", "per-frame-groups"])
def test_enhanced_ct_gives_the_same_volume_as_single_frames(tmp_path, per_frame):
    pixels = (np.arange(5 * 16 * 16, dtype=np.uint16).reshape(5, 16, 16) % 3000)
    files = write_series(tmp_path / "single", n_slices=5, pixels=pixels, orientation=(-1, 0, 0, 0, 1, 0))
    if per_frame:  # each frame its own rescale
        _edit(files[2], RescaleSlope=2, RescaleIntercept=-2048)
    (tmp_path / "multi").mkdir()
    _enhanced_from(files, tmp_path / "multi" / "enhanced.dcm", per_frame=per_frame)
    single, multi = load_volume(tmp_path / "single"), load_volume(tmp_path / "multi")
    assert single.image.GetSize() == multi.image.GetSize() == (16, 16, 5)
    np.testing.assert_allclose(single.image.GetSpacing(), multi.image.GetSpacing())
    np.testing.assert_allclose(single.image.GetOrigin(), multi.image.GetOrigin())
    np.testing.assert_allclose(single.image.GetDirection(), multi.image.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(single.image), sitk.GetArrayViewFromImage(multi.image))
    assert multi.source_files == (tmp_path / "multi" / "enhanced.dcm",) and len(multi.reference_datasets) == 1
    assert multi.problems == ()


def test_multi_frame_without_functional_groups_is_not_assessable(tmp_path):
    files = write_series(tmp_path / "single", n_slices=3)
    ds = pydicom.dcmread(files[0])
    ds.NumberOfFrames = 3
    ds.PixelData = b"".join(pydicom.dcmread(p).PixelData for p in files)
    (tmp_path / "multi").mkdir()
    ds.save_as(tmp_path / "multi" / "legacy.dcm")
    with pytest.raises(NotAssessable, match="multi-frame image without per-frame functional groups"):
        load_volume(tmp_path / "multi")


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


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"],
                         ids=["rle", "jpeg-ls-lossless", "jpeg-2000-lossless"])
def test_compressed_series_equal_the_uncompressed_one(tmp_path, syntax):
    pixels = (np.arange(4 * 64 * 64, dtype=np.uint16).reshape(4, 64, 64) * 7) % 4000  # J2K needs >= 64 pixels
    shape = {"n_slices": 4, "rows": 64, "columns": 64, "pixels": pixels, "orientation": (1, 0, 0, 0, 0, -1)}
    plain, packed = write_series(tmp_path / "plain", **shape), write_series(tmp_path / "packed", **shape)
    for path in packed:
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(path)
    assert str(pydicom.dcmread(packed[0]).file_meta.TransferSyntaxUID) == syntax
    expected, volume = load_volume(plain), load_volume(packed)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(volume.image), sitk.GetArrayViewFromImage(expected.image))
    assert volume.image.GetOrigin() == expected.image.GetOrigin()
    assert volume.meta["transfer_syntax_uid"] == syntax


def test_unsupported_compression_is_not_assessable(tmp_path):
    from pydicom.encaps import encapsulate

    files = write_series(tmp_path, n_slices=3)
    ds = pydicom.dcmread(files[1])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG-2 video: no decoder for CT frames
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x11" * 60])
    ds["PixelData"].VR = "OB"
    ds.save_as(files[1])
    with pytest.raises(NotAssessable, match="pixel data could not be decoded"):
        load_volume(tmp_path)


@pytest.mark.parametrize("damage, reason", [
    (lambda f: _edit(f[1], PixelSpacing=[1.5, 1.5]), "mixed pixel spacing"),
    (lambda f: [_edit(p, ImageOrientationPatient=[1, 0, 0, 0.3, 1, 0]) for p in f], "not orthonormal"),
    (lambda f: [_edit(p, ImagePositionPatient=[-8.0, -8.0, [0, 2, 4, 7, 9, 11][i]]) for i, p in enumerate(f)],
     "non-uniform slice spacing"),
    (lambda f: [p.unlink() for p in f] and f[0].write_text("not dicom"), "no readable DICOM images"),
    (lambda f: _edit(f[4], PixelData=None), "pixel data could not be decoded (no pixel data)"),
])
def test_more_unsound_stacks(tmp_path, damage, reason):
    files = write_series(tmp_path, n_slices=6)
    damage(files)
    with pytest.raises(NotAssessable) as caught:
        load_volume(tmp_path)
    assert reason in str(caught.value), str(caught.value)


def test_minor_problems_still_build_the_volume(tmp_path):
    files = write_series(tmp_path / "jitter", n_slices=5, spacing=2.0)
    _edit(files[2], ImagePositionPatient=[-8.0, -8.0, 4.01])  # within tolerance
    (tmp_path / "jitter" / "notes.txt").write_text("a note beside the slices")
    volume = load_volume([*files, tmp_path / "jitter" / "notes.txt"])
    assert volume.image.GetSpacing()[2] == pytest.approx(2.0)
    assert any("deviate up to 0.010 mm" in p for p in volume.problems), volume.problems
    assert any("1 of the given files are not DICOM" in p for p in volume.problems), volume.problems
    assert load_volume(tmp_path / "jitter").problems == volume.problems[:1]  # a folder's other files are not news
    coarse = load_volume(write_series(tmp_path / "coarse", n_slices=3, spacing=7.5))
    assert coarse.problems == ("slice step 7.5 mm is coarse: heights along the body axis are imprecise",)
    no_uid = write_series(tmp_path / "uid", n_slices=3)
    for path in no_uid:
        _edit(path, StudyInstanceUID="")
    assert load_volume(no_uid).problems == ("Study Instance UID is empty: results cannot be linked to the study",)


def test_references_follow_slice_order_without_pixels(tmp_path):
    files = write_series(tmp_path, n_slices=4, orientation=(-1, 0, 0, 0, 1, 0))  # normal (0, 0, -1): z descends
    volume = load_volume(list(reversed(files)))
    assert volume.source_files == tuple(files)  # ascending along the normal, whatever order they came in
    assert [float(ds.ImagePositionPatient[2]) for ds in volume.reference_datasets] == [0.0, -2.0, -4.0, -6.0]
    assert all("PixelData" not in ds for ds in volume.reference_datasets)
    assert volume.reference_datasets[0].PatientName == "TEST^PATIENT"
    assert volume.meta["modality"] == "CT" and volume.meta["series_uid"] == pydicom.dcmread(files[0]).SeriesInstanceUID
    with pytest.raises(FileNotFoundError):
        load_volume([*files, tmp_path / "gone.dcm"])


def test_raw_j2k_case_with_empty_uids_builds_with_problems():
    folder = shared_case("ts-example-dicom-j2k") / "raw"
    volume = load_volume(folder)
    assert volume.image.GetSize() == (512, 512, 20)
    assert volume.meta["study_uid"] is None and volume.meta["series_uid"] is None
    assert [p.split(" is empty")[0] for p in volume.problems] == ["Study Instance UID", "Series Instance UID"]


@pytest.mark.parametrize("case", ["verse19-006", "verse19-007"])
def test_real_nifti_keeps_world_positions(case):
    """A PIR NIfTI: same physical space as SimpleITK's own reader, voxels untouched."""
    path = shared_case(case) / "ct.nii.gz"
    reference = sitk.ReadImage(str(path))
    volume = load_volume(path)
    assert volume.image.GetPixelID() == sitk.sitkFloat32 and volume.reference_datasets == ()
    np.testing.assert_allclose(volume.image.GetOrigin(), reference.GetOrigin())
    np.testing.assert_allclose(volume.image.GetDirection(), reference.GetDirection())
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(volume.image),
                                  sitk.GetArrayViewFromImage(reference).astype(np.float32))
