"""Synthetic CT phantoms: truth on the surfaces, grades in their bands, geometry through DICOM and back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy.ndimage import map_coordinates

from screening_node.analysis.results import HEIGHT_KEYPOINTS, KEYPOINT_NAMES, LEVELS, TRUTH_SCHEMA
from screening_node.cli import main as cli_main
from screening_node.phantom import FractureSpec, PhantomOptions, generate_phantom, render_phantom
from screening_node.phantom.fractures import GRADE_BANDS, grade_of

FRACTURES = tuple(FractureSpec.parse(s) for s in ("T8:1:biconcave", "L1:2:wedge", "L3:3:crush", "T11:3:wedge"))
# small and fast: 128 x 128 pixels of 3 mm, 4 mm slices
SMALL = dict(matrix=128, pixel_spacing=3.0, slice_thickness=4.0, fractures=FRACTURES)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_phantom(PhantomOptions(seed=11, **SMALL), tmp_path_factory.mktemp("hfs"))


@pytest.fixture(scope="module")
def small_ffs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_phantom(PhantomOptions(seed=11, feet_first=True, **SMALL), tmp_path_factory.mktemp("ffs"))


@pytest.fixture(scope="module")
def fine():  # type: ignore[no-untyped-def]
    """A fine, noise-free crop around T10-L4 to check the truth against the image."""
    options = PhantomOptions(seed=5, fov="spine-crop", levels=("T10", "L4"), matrix=128, pixel_spacing=0.8,
                             slice_thickness=1.0, noise=0.0, fractures=FRACTURES[1:])
    return render_phantom(options)


def _sample(volume, points_lps: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    grid = volume.grid
    index = (np.asarray(points_lps) - np.array(grid.origin)) / np.array(grid.spacing)  # (x, y, z)
    return map_coordinates(volume.hu.astype(np.float32), index[:, ::-1].T, order=1)


def test_truth_schema_and_heights_match_keypoints(small) -> None:  # type: ignore[no-untyped-def]
    truth = small.truth
    assert truth["schema"] == TRUTH_SCHEMA
    assert truth["study_uid"] == small.study_uid and truth["series_uid"] == small.series_uid
    for v in truth["vertebrae"]:
        assert set(v["keypoints_lps_mm"]) == set(KEYPOINT_NAMES)
        for height, (upper, lower) in HEIGHT_KEYPOINTS.items():
            distance = np.linalg.norm(np.subtract(v["keypoints_lps_mm"][upper], v["keypoints_lps_mm"][lower]))
            assert abs(distance - v["heights_mm"][height]) < 1e-3
            assert v["keypoints_lps_mm"][upper][2] > v["keypoints_lps_mm"][lower][2]  # superior is cranial
        assert v["mask_label"] == LEVELS.index(v["label"]) + 1
        assert truth["label_map"][str(v["mask_label"])] == v["label"]


def test_heights_grow_caudally_within_literature_ranges(small) -> None:  # type: ignore[no-untyped-def]
    normal = {v["label"]: v["heights_mm"]["posterior"] for v in small.truth["vertebrae"] if v["grade"] == 0}
    assert 12 < normal["T1"] < 17 and 24 < normal["L5"] < 30
    assert normal["T2"] < normal["T6"] < normal["T10"] < normal["L2"] < normal["L4"]


def test_each_requested_grade_lands_in_its_band(small) -> None:  # type: ignore[no-untyped-def]
    by_label = {v["label"]: v for v in small.truth["vertebrae"]}
    for spec in FRACTURES:
        v = by_label[spec.level]
        assert (v["grade"], v["morphology"]) == (spec.grade, spec.morphology)
        h = v["heights_mm"]
        if spec.morphology == "crush":
            i = LEVELS.index(spec.level)
            neighbours = [by_label[LEVELS[j]]["heights_mm"]["posterior"] for j in (i - 1, i + 1)]
            loss = 1 - h["posterior"] / np.mean(neighbours)
            assert 1 - min(h.values()) / max(h.values()) < 0.2  # the body keeps its own proportions
        else:
            loss = 1 - min(h.values()) / max(h.values())
            lowest = min(h, key=h.get)  # type: ignore[arg-type]
            assert lowest == {"wedge": "anterior", "biconcave": "middle"}[spec.morphology]
        assert abs(loss - v["height_loss"]) < 1e-3
        lo, hi = GRADE_BANDS[spec.grade]
        assert lo < loss < hi and grade_of(loss) == spec.grade
    for v in small.truth["vertebrae"]:
        if v["label"] not in {f.level for f in FRACTURES}:
            assert v["grade"] == 0 and v["morphology"] == "normal" and v["height_loss"] < 0.2


def test_keypoints_lie_on_the_body_surface(fine) -> None:  # type: ignore[no-untyped-def]
    from screening_node.phantom.truth import vertebra_truth

    grid = fine.grid
    checked = 0
    for plan in fine.plan.vertebrae:
        v = vertebra_truth(plan, grid.extent_lo, grid.extent_hi)
        if not v["visible"]:
            continue
        axis = plan.frame[:, 2]  # cranial axis of the body
        for name, point in v["keypoints_lps_mm"].items():
            outward = axis if name.startswith("superior") else -axis
            inside, outside = _sample(fine, np.array([np.add(point, -1.0 * outward), np.add(point, 1.5 * outward)]))
            assert inside > 150 > outside, (v["label"], name, inside, outside)
            checked += 1
    assert checked >= 6 * 5


def test_labels_unique_ordered_and_in_the_mask(small) -> None:  # type: ignore[no-untyped-def]
    vertebrae = small.truth["vertebrae"]
    labels = [v["label"] for v in vertebrae]
    assert len(set(labels)) == len(labels)
    assert [LEVELS.index(label) for label in labels] == sorted(LEVELS.index(label) for label in labels)
    z = [v["centroid_lps_mm"][2] for v in vertebrae]
    assert all(a > b for a, b in zip(z, z[1:]))
    mask = sitk.ReadImage(str(small.labels_nifti))
    array = sitk.GetArrayFromImage(mask)  # numpy (z, y, x)
    for v in vertebrae:
        if not v["visible"]:
            continue
        index = mask.TransformPhysicalPointToIndex(v["centroid_lps_mm"])  # SimpleITK (x, y, z)
        assert array[index[2], index[1], index[0]] == v["mask_label"], v["label"]
        voxels = np.argwhere(array == v["mask_label"])[:, ::-1]
        centroid = np.array([mask.TransformContinuousIndexToPhysicalPoint(p.tolist()) for p in voxels]).mean(0)
        assert np.linalg.norm(centroid - v["centroid_lps_mm"]) < 3.0, v["label"]


@pytest.mark.parametrize("which", ["small", "small_ffs"])
def test_geometry_round_trips_through_dicom_and_simpleitk(which: str, request) -> None:  # type: ignore[no-untyped-def]
    result = request.getfixturevalue(which)
    geometry = result.truth["geometry"]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(result.out_dir / "dicom")))
    image = reader.Execute()
    assert np.allclose(image.GetOrigin(), geometry["origin_lps_mm"], atol=1e-3)
    assert np.allclose(image.GetSpacing(), geometry["spacing_mm"], atol=1e-4)
    assert np.allclose(image.GetDirection(), geometry["direction"], atol=1e-6)
    nifti = sitk.ReadImage(str(result.ct_nifti))
    assert np.allclose(nifti.GetOrigin(), image.GetOrigin(), atol=1e-3)
    assert np.allclose(nifti.GetDirection(), image.GetDirection(), atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(image).astype(np.int16), sitk.GetArrayFromImage(nifti))
    first = pydicom.dcmread(result.dicom_files[0], stop_before_pixels=True)
    if which == "small_ffs":
        assert first.PatientPosition == "FFS" and [float(v) for v in first.ImageOrientationPatient] == [-1, 0, 0, 0, 1, 0]
        assert float(first.ImagePositionPatient[2]) > float(
            pydicom.dcmread(result.dicom_files[1], stop_before_pixels=True).ImagePositionPatient[2])
    else:
        assert first.PatientPosition == "HFS" and [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    # the same LPS point has the same label in either acquisition
    labels = sitk.ReadImage(str(result.labels_nifti))
    for v in result.truth["vertebrae"]:
        if v["visible"]:
            index = labels.TransformPhysicalPointToIndex(v["centroid_lps_mm"])
            assert labels[index] == v["mask_label"]


def test_head_first_and_feet_first_hold_the_same_anatomy(small, small_ffs) -> None:  # type: ignore[no-untyped-def]
    hfs = sitk.GetArrayFromImage(sitk.ReadImage(str(small.ct_nifti)))
    ffs = sitk.GetArrayFromImage(sitk.ReadImage(str(small_ffs.ct_nifti)))
    assert np.array_equal(hfs, ffs[::-1, :, ::-1])
    assert small.truth["vertebrae"] == small_ffs.truth["vertebrae"]
    assert small.study_uid != small_ffs.study_uid


def test_dciodvfy_reports_no_errors(small, small_ffs) -> None:  # type: ignore[no-untyped-def]
    files = [small.dicom_files[0], small.dicom_files[len(small.dicom_files) // 2], small_ffs.dicom_files[-1]]
    for path in files:
        run = subprocess.run(["/usr/bin/dciodvfy", str(path)], capture_output=True, text=True)
        report = run.stdout + run.stderr
        assert "Error" not in report, report
    ds = pydicom.dcmread(files[0])
    assert ds.Modality == "CT" and list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert ds.BodyPartExamined and ds.ConvolutionKernel and ds.KVP and ds.PatientAge and ds.PatientSex
    assert float(ds.SliceThickness) == 4.0 and float(ds.SpacingBetweenSlices) == 4.0
    assert ds.RescaleIntercept == -1024 and ds.PixelRepresentation == 0
    uids = {(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID,
             pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in small.dicom_files[::10]}
    assert uids == {(small.study_uid, small.series_uid)}


@pytest.mark.parametrize("syntax", ["implicit", "rle", "jpeg-ls", "jpeg2000"])
def test_lossless_transfer_syntaxes_decode_to_the_same_pixels(syntax: str, small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    options = PhantomOptions(seed=11, transfer_syntax=syntax, levels=("L1", "L1"), format="dicom", **SMALL)
    result = generate_phantom(options, tmp_path)
    reference = PhantomOptions(seed=11, levels=("L1", "L1"), format="dicom", **SMALL)
    expected = generate_phantom(reference, tmp_path / "reference")
    for path, ref in zip(result.dicom_files, expected.dicom_files):
        ds = pydicom.dcmread(path)
        assert np.array_equal(ds.pixel_array, pydicom.dcmread(ref).pixel_array)
    run = subprocess.run(["/usr/bin/dciodvfy", str(result.dicom_files[0])], capture_output=True, text=True)
    assert "Error" not in run.stdout + run.stderr


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    options = PhantomOptions(seed=3, levels=("L2", "L3"), preview=True, **SMALL)
    a, b = generate_phantom(options, tmp_path / "a"), generate_phantom(options, tmp_path / "b")
    files = sorted(p.relative_to(a.out_dir) for p in a.out_dir.rglob("*") if p.is_file())
    assert len(files) > 5 and "preview.png" in {f.name for f in files}
    for name in files:
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    c = generate_phantom(options.with_(seed=4), tmp_path / "c")
    assert (c.out_dir / "ct.nii.gz").read_bytes() != (a.out_dir / "ct.nii.gz").read_bytes()
    assert c.study_uid != a.study_uid


def test_bytes_do_not_depend_on_the_number_of_render_threads() -> None:
    """Slabs seed their own noise, so one thread and several give the same volume (more than one slab)."""
    from screening_node.phantom.render import SLAB_SLICES, render_volume

    options = PhantomOptions(seed=7, fov="lumbar", matrix=96, pixel_spacing=2.4, slice_thickness=1.0,
                             scoliosis=12.0, fractures=FRACTURES[1:3])
    one, three = render_volume(options, workers=1), render_volume(options, workers=3)
    assert one.hu.shape[0] > 2 * SLAB_SLICES
    assert np.array_equal(one.hu, three.hu) and np.array_equal(one.labels, three.labels)
    assert one.hu.std() > 100  # a real image, not an empty one


def test_variants_appear_in_truth() -> None:
    from screening_node.phantom.render import plan_anatomy

    def levels(**changes):  # type: ignore[no-untyped-def]
        return [v.label for v in plan_anatomy(PhantomOptions(**changes))[0].vertebrae]

    assert "T13" in levels(rib_pairs=13) and "T12" in levels(rib_pairs=13)
    assert "T12" not in levels(rib_pairs=11) and "T11" in levels(rib_pairs=11)
    assert "L6" in levels(lumbar=6) and "L6" not in levels()
    with pytest.raises(ValueError, match="L6"):
        PhantomOptions(fractures=(FractureSpec.parse("L6:2:wedge"),))


def test_fields_of_view_cut_the_expected_levels() -> None:
    from screening_node.phantom.render import choose_grid, plan_anatomy
    from screening_node.phantom.truth import vertebra_truth

    def visible(**changes):  # type: ignore[no-untyped-def]
        options = PhantomOptions(matrix=64, **changes)
        plan, torso, _ = plan_anatomy(options)
        grid = choose_grid(options, plan, torso)
        return {v.label for v in plan.vertebrae if vertebra_truth(v, grid.extent_lo, grid.extent_hi)["visible"]}

    trunk, chest, abdomen, lumbar = (visible(fov=f) for f in ("trunk", "chest", "abdomen", "lumbar"))
    assert {"T1", "T8", "L1", "L5", "S1"} <= trunk and "C3" not in trunk
    assert {"T2", "T12"} <= chest and "L4" not in chest
    assert {"L1", "L5"} <= abdomen and "T5" not in abdomen
    assert {"L1", "L5"} <= lumbar and "T8" not in lumbar
    assert visible(fov="spine-crop") == {"T9", "T10", "T11", "T12", "L1", "L2", "L3"}
    assert visible(levels=("T6", "T9")) == {"T6", "T7", "T8", "T9"}


def test_random_fractures_follow_the_prevalence() -> None:
    from screening_node.phantom.render import plan_anatomy

    none = plan_anatomy(PhantomOptions(fracture_prevalence=0.0))[0]
    assert all(v.grade == 0 for v in none.vertebrae)
    every = plan_anatomy(PhantomOptions(seed=2, fracture_prevalence=1.0))[0]
    graded = [v for v in every.vertebrae if v.grade]
    assert {v.label for v in graded} == {f"T{i}" for i in range(4, 13)} | {f"L{i}" for i in range(1, 6)}
    for v in graded:
        assert grade_of(v.height_loss) == v.grade
    # A requested crush keeps normal neighbours (its grade is defined by them); the rest still fracture.
    crushed = plan_anatomy(PhantomOptions(seed=2, fracture_prevalence=1.0,
                                          fractures=(FractureSpec("T8", 2, "crush"),)))[0]
    grades = {v.label: v.grade for v in crushed.vertebrae}
    assert grades["T7"] == grades["T9"] == 0 and grades["T8"] == 2 and grades["T6"] and grades["T10"]


def test_the_back_wall_faces_the_canal_on_the_midline(fine) -> None:  # type: ignore[no-untyped-def]
    # The neural arch joins the body beside the canal (the pedicles); on the midline the body's back wall
    # faces the epidural space. Arch bone painted there made the back wall read 1-5 mm too far back.
    checked = 0
    for plan in fine.plan.vertebrae:
        wall = plan.shape.ay - plan.shape.post_concavity
        points = [plan.centre + plan.frame @ np.array([0.0, wall + d, 0.0]) for d in (-1.0, 1.5)]
        inside, behind = _sample(fine, np.array(points))
        if inside == 0.0:
            continue  # outside the field
        assert inside > 400 and behind < 120, (plan.label, inside, behind)
        checked += 1
    assert checked >= 5


def test_bone_density_sets_trabecular_hu(fine) -> None:  # type: ignore[no-untyped-def]
    from screening_node.phantom.render import plan_anatomy

    for density, (lo, hi) in {"normal": (195, 250), "osteopenic": (115, 150), "osteoporotic": (55, 100)}.items():
        plan = plan_anatomy(PhantomOptions(bone_density=density))[0]
        assert all(lo <= v.trabecular_hu <= hi for v in plan.vertebrae if v.grade == 0)
    centre = fine.plan.by_label("L2").centre
    assert 180 < _sample(fine, centre[None])[0] < 260  # normal density, noise off


def test_cli_writes_the_folder_and_rejects_bad_input(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cli"
    code = cli_main(["phantom", "--out", str(out), "--seed", "2", "--matrix", "80", "--pixel-spacing", "5",
                     "--slice-thickness", "8", "--fracture", "L2:2:biconcave", "--levels", "L1-L3",
                     "--feet-first", "--no-contrast", "--preview"])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"dicom", "ct.nii.gz", "labels.nii.gz", "truth.json", "preview.png"}
    assert cli_main(["phantom", "--out", str(tmp_path / "bad"), "--fracture", "L2:4:wedge"]) == 2
    assert "grade must be 1, 2 or 3" in capsys.readouterr().err
    assert cli_main(["phantom", "--out", str(tmp_path / "bad"), "--fracture", "L6:1:wedge"]) == 2


def test_rib_heads_of_ribs_2_to_9_sit_across_the_disc_above() -> None:
    """Ribs 2-9 articulate with two bodies, so bone flanks their discs; a lumbar disc stays open at the sides."""
    options = PhantomOptions(seed=5, fov="spine-crop", levels=("T5", "L2"), matrix=128, pixel_spacing=1.0,
                             slice_thickness=1.0, noise=0.0)
    volume = render_phantom(options)
    plan = volume.plan

    def disc_flanks(upper: str, lower: str) -> np.ndarray:
        """Per side, the highest HU across the rib head's place (beside the back of the body, 0.5-1.1 of the
        body's half-width out) on the mid-plane of the disc: the head's cortex, if a head is there."""
        u, v = plan.by_label(upper), plan.by_label(lower)
        top = v.to_world([0.0, 0.0, 0.5 * v.shape.heights()["posterior"]])
        bottom = u.to_world([0.0, 0.0, -0.5 * u.shape.heights()["posterior"]])
        mid = 0.5 * (top + bottom)
        out = np.linspace(0.5, 1.1, 13) * v.shape.ax
        return np.array([_sample(volume, np.array([mid + v.frame @ np.array([side * x, v.shape.ay * 0.7, 0.0])
                                                   for x in out])).max() for side in (-1, 1)])

    for upper, lower in (("T5", "T6"), ("T7", "T8"), ("T8", "T9")):
        assert (disc_flanks(upper, lower) > 250).all(), (upper, lower)  # rib heads of ribs 6, 8, 9
    assert (disc_flanks("T9", "T10") < 150).all()  # rib 10 articulates with T10 alone
    assert (disc_flanks("L1", "L2") < 150).all()


def test_a_rolled_phantom_turns_its_anatomy_and_truth_together() -> None:
    """--roll turns the rendered anatomy about the long axis and the truth with it: the labels at the turned
    truth centroids are the vertebrae's, a keypoint samples the same HU as in the square rendering, and the
    frames turn by the roll (positive: the back towards the patient's right, -x)."""
    from screening_node.phantom.render import render_volume
    from screening_node.phantom.truth import vertebra_truth

    options = PhantomOptions(seed=5, fov="spine-crop", levels=("T12", "L2"), matrix=128, pixel_spacing=0.8,
                             slice_thickness=1.0, noise=0.0)
    square, rolled = render_volume(options), render_volume(options.with_(roll=20.0))
    assert square.roll is None and rolled.roll is not None
    grid = rolled.grid
    lo, hi = grid.extent_lo, grid.extent_hi
    for plan in rolled.plan.vertebrae:
        before, after = vertebra_truth(plan, lo, hi), vertebra_truth(plan, lo, hi, rolled.roll)
        if not after["visible"]:
            continue
        index = np.rint((np.array(after["centroid_lps_mm"]) - grid.origin) / grid.spacing).astype(int)
        assert rolled.labels[index[2], index[1], index[0]] == after["mask_label"], plan.label
        posterior = np.array(after["local_frame_lps"][1])
        turned = np.degrees(np.arctan2(-posterior[0], posterior[1]) - np.arctan2(-before["local_frame_lps"][1][0],
                                                                                  before["local_frame_lps"][1][1]))
        assert abs(turned - 20.0) < 1e-3, (plan.label, turned)
        for name in ("superior_middle", "inferior_middle"):
            hu_square = _sample(square, np.array([before["keypoints_lps_mm"][name]]))[0]
            hu_rolled = _sample(rolled, np.array([after["keypoints_lps_mm"][name]]))[0]
            assert abs(hu_rolled - hu_square) < 60.0, (plan.label, name, hu_square, hu_rolled)


def test_trabecular_texture_mottles_the_marrow_and_nothing_else() -> None:
    """The texture adds spread to the bodies' marrow only; the cortex, the truth and every draw stay the same."""
    from scipy.ndimage import binary_dilation, binary_erosion

    from screening_node.phantom.render import render_volume

    options = PhantomOptions(seed=6, fov="spine-crop", levels=("L1", "L3"), matrix=96, pixel_spacing=1.0,
                             slice_thickness=1.0, noise=0.0, fractures=(FractureSpec("L2", 2, "wedge"),))
    flat, mottled = render_volume(options), render_volume(options.with_(texture=80.0))
    assert all(v.texture is None for v in flat.plan.vertebrae)
    assert [v.shape for v in flat.plan.vertebrae] == [v.shape for v in mottled.plan.vertebrae]
    assert np.array_equal(flat.labels, mottled.labels)
    for label in ("L1", "L2", "L3"):
        marrow = binary_erosion(flat.labels == LEVELS.index(label) + 1, iterations=3)
        a, b = flat.hu[marrow].astype(float), mottled.hu[marrow].astype(float)
        assert a.std() < 5  # flat marrow without noise
        assert 30 < b.std() < 70  # the scanner's blur keeps about 0.6 of the 80 HU field
        assert abs(b.mean() - a.mean()) < 15  # zero-mean: the density is the same
    away = ~binary_dilation(flat.labels > 0, iterations=3)  # beyond the bodies' partial volume and blur
    assert np.array_equal(flat.hu[away], mottled.hu[away]) and flat.hu[away].std() > 100


def test_texture_is_the_same_field_wherever_it_is_sampled() -> None:
    """Drawn per vertebra from its own stream: the same seed gives the same field, sampled pointwise or in
    a block, and its spread is the one asked for."""
    from screening_node.phantom.texture import Texture

    field = Texture.draw(np.random.default_rng(1), 80.0)
    again = Texture.draw(np.random.default_rng(1), 80.0)
    x = np.linspace(-20, 20, 41, dtype=np.float32)
    block = field.at(x[None, None, :], x[None, :, None], x[:, None, None])
    assert np.array_equal(block, again.at(x[None, None, :], x[None, :, None], x[:, None, None]))
    point = field.at(np.float32(x[3]), np.float32(x[7]), np.float32(x[11]))
    assert np.isclose(point, block[11, 7, 3], atol=1e-3)
    assert 60 < block.std() < 100 and abs(block.mean()) < 20
