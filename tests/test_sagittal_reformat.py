"""A sagittal reformat (MPR) as departments archive it: the phantom writes one, and the analysis measures it at
its resolution along the spine, not at its slices' thickness across it.

Many departments keep only thick axial slices (5 mm, which no height is measured on) and the sagittal and
coronal reformats made from the thin ones; the sagittal is fine along the spine and thick across it.
"""

from __future__ import annotations

import numpy as np
import pydicom
import SimpleITK as sitk

from screening_node.analysis.pipeline import analyze_path, analyze_volume
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume
from screening_node.phantom import PhantomOptions, generate_phantom
from screening_node.phantom.options import FractureSpec

LUMBAR_SAGITTAL = dict(seed=21, fov="lumbar", plane="sagittal", pixel_spacing=1.0, matrix=224,
                       fractures=(FractureSpec("L2", 2, "wedge"),))


def test_the_phantom_stores_a_sagittal_reformat_as_a_scanner_console_does(tmp_path):
    made = generate_phantom(PhantomOptions(**{**LUMBAR_SAGITTAL, "slice_thickness": 3.0, "matrix": 96,
                                              "pixel_spacing": 1.5}), tmp_path)
    first, second = (pydicom.dcmread(p) for p in made.dicom_files[:2])
    assert list(first.ImageType) == ["DERIVED", "SECONDARY", "MPR"]
    assert [float(v) for v in first.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
    assert float(first.SliceThickness) == 3.0  # two 1.5 mm pixels per slab
    step = np.subtract([float(v) for v in second.ImagePositionPatient], [float(v) for v in first.ImagePositionPatient])
    np.testing.assert_allclose(step, [-3.0, 0, 0], atol=1e-3)  # slices from the patient's left to right
    assert (first.Rows, first.Columns) == (made.truth["geometry"]["size_xyz"][1], 96)
    assert made.truth["geometry"]["plane"] == "sagittal"
    from_dicom = as_lps(load_volume(tmp_path / "dicom").image)
    from_nifti = as_lps(sitk.ReadImage(str(made.ct_nifti)))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(from_dicom), sitk.GetArrayViewFromImage(from_nifti))
    np.testing.assert_allclose(from_dicom.GetOrigin(), from_nifti.GetOrigin(), atol=1e-3)
    labels = as_lps(sitk.ReadImage(str(made.labels_nifti)))
    l3 = next(v for v in made.truth["vertebrae"] if v["label"] == "L3")
    index = labels.TransformPhysicalPointToIndex(l3["centroid_lps_mm"])
    assert labels[index] == int(next(k for k, name in made.truth["label_map"].items() if name == "L3"))


def test_a_sagittal_reformat_is_measured_at_its_resolution_along_the_spine(tmp_path):
    # Slabs 4 mm thick across the spine, 1 mm pixels along it. The thickness used to be applied to the volume's
    # third axis after it was turned to LPS, which for a sagittal series is the spine's own: 4 mm "along the
    # spine", more than 3.5 mm, and nothing was measured.
    made = generate_phantom(PhantomOptions(**{**LUMBAR_SAGITTAL, "slice_thickness": 4.0, "format": "dicom"}),
                            tmp_path / "phantom")
    result = analyze_path(made.out_dir / "dicom", None)
    assert result.status == "reported", result.reason
    read = {v.label: v for v in result.vertebrae if v.assessable}
    truth = {v["label"]: v for v in made.truth["vertebrae"]}
    assert {"L1", "L2", "L3", "L4"} <= set(read)
    assert read["L2"].grade == 2 and read["L2"].morphology == "wedge"
    assert all(read[level].grade == 0 for level in ("L1", "L3", "L4"))
    errors = [abs(read[level].heights_mm[k] - truth[level]["heights_mm"][k])  # type: ignore[index]
              for level in read if level in truth for k in ("anterior", "middle", "posterior")]
    assert np.mean(errors) < 0.6, errors
    # the grade's spread is that of 1 mm sampling: a 4 mm one would span two grades at L2 (31 % on 3 mm axial)
    assert read["L2"].grade_range == (2, 2)
    assert "read on sagittal slices: 4 mm across the spine, 1 mm along it" in " ".join(result.notes), result.notes


def test_on_thick_sagittal_slices_a_body_is_read_on_its_own_mid_sagittal_plane(tmp_path):
    # Case 17 of `phantom_eval.py --preset 1mm --plane sagittal --slice-thickness 3 --seed 4`: an osteoporotic
    # chest with 19 degrees of scoliosis and a grade 3 biconcave T9. Averaged across 3 mm slabs, the bodies'
    # side walls break up and the body-centre track lies a few mm to the side; T9 was read 4 mm beside its
    # middle, beside the depression, and graded 0 while its mirror axis was not taken within 4 mm of the curve.
    options = PhantomOptions(seed=4017, fov="chest", fractures=(FractureSpec("T9", 3, "biconcave"),),
                             kyphosis=20.80285210884551, lordosis=32.124841546075395, scoliosis=18.770872045924122,
                             patient_size="small", bone_density="osteoporotic", noise=19.364579987292892,
                             slice_thickness=3.0, plane="sagittal", pixel_spacing=1.0, matrix=400, format="nifti")
    made = generate_phantom(options, tmp_path)
    result = analyze_volume(load_volume(made.ct_nifti), None, slice_thickness_mm=3.0)
    t9 = next(v for v in result.vertebrae if v.label == "T9")
    truth = next(v for v in made.truth["vertebrae"] if v["label"] == "T9")
    assert t9.grade == 3 and t9.morphology == "biconcave", t9
    assert abs(t9.centroid_lps_mm[0] - truth["centroid_lps_mm"][0]) < 2.0


def test_the_mirror_axis_is_trusted_nearer_the_curve_where_the_slices_run_along_the_spine():
    from screening_node.analysis import thresholds as T
    from screening_node.analysis.mirror import min_midline_shift
    from screening_node.analysis.straighten import Straightened

    def straightened(lat_spacing: float | None) -> Straightened:
        empty = np.zeros((1, 3))
        return Straightened(np.zeros((1, 1, 1), np.float32), empty, empty, empty, empty, 0, 0,
                            lat_spacing_mm=lat_spacing)

    assert min_midline_shift(straightened(None)) == min_midline_shift(straightened(0.8)) == T.MIRROR_MIN_SHIFT_MM
    assert min_midline_shift(straightened(3.0)) == T.MIRROR_MIN_SHIFT_THICK_MM < T.MIRROR_MIN_SHIFT_MM


def test_where_few_sections_close_a_body_ring_the_density_profiles_offer_a_centre_line_too(tmp_path):
    # Case 9 of the same batch: an osteoporotic chest, 12 degrees of scoliosis. On 3 mm sagittal slabs the
    # canal's ring closes on most sections but the bodies' on 29 of 335, so the track through the rings
    # straightened nothing: 9 bodies found for 15, two taken as one, no level named, a false grade 2.
    options = PhantomOptions(seed=4009, fov="chest", kyphosis=58.16463205434908, lordosis=32.77561259647714,
                             scoliosis=-11.816568704504316, patient_size="small", bone_density="osteoporotic",
                             noise=18.925834621241236, slice_thickness=3.0, plane="sagittal", pixel_spacing=1.0,
                             matrix=400, format="nifti")
    made = generate_phantom(options, tmp_path)
    result = analyze_volume(load_volume(made.ct_nifti), None, slice_thickness_mm=3.0)
    truth = {v["label"]: np.array(v["centroid_lps_mm"]) for v in made.truth["vertebrae"] if v["visible"]}
    read = {v.label: np.array(v.centroid_lps_mm) for v in result.vertebrae if v.label in truth}
    assert set(read) == set(truth) - {"C6"} or set(read) == set(truth), sorted(read)
    assert all(np.linalg.norm(read[label] - truth[label]) < 20 for label in read)
    assert all(v.grade in (0, None) for v in result.vertebrae)  # no fracture in this patient


def _read_on_3mm_slabs(options: PhantomOptions, tmp_path) -> tuple[dict, dict]:
    """The phantom rendered and analysed as a 3 mm sagittal reformat: its readings and its truth, by level."""
    made = generate_phantom(options, tmp_path)
    result = analyze_volume(load_volume(made.ct_nifti), None, slice_thickness_mm=3.0)
    return {v.label: v for v in result.vertebrae}, {v["label"]: v for v in made.truth["vertebrae"]}


def _seed5_abdomen(seed: int, fractures: tuple[FractureSpec, ...], **anatomy: object) -> PhantomOptions:
    """A case of `phantom_eval.py --preset 1mm --plane sagittal --slice-thickness 3 --seed 5`, as drawn."""
    return PhantomOptions(seed=seed, fov="abdomen", fractures=fractures, patient_size="large", slice_thickness=3.0,
                          plane="sagittal", pixel_spacing=1.0, matrix=400, format="nifti", **anatomy)  # type: ignore[arg-type]


def test_a_severe_wedge_s_front_corner_is_sought_along_its_tilted_plate(tmp_path):
    # Case 7: L4 a grade 3 wedge (13 mm at the front, 29 mm at the back). Its upper plate sinks 6.6 mm from the
    # back corner to the middle and 7.3 mm more to the front, past ENDPLATE_TILT_MM from the middle, where the
    # front corner was sought: "anterior endplates not found", the fracture not graded.
    options = _seed5_abdomen(5007, (FractureSpec("L1", 2, "crush"), FractureSpec("L4", 3, "wedge")),
                             kyphosis=52.69136438589277, lordosis=37.042945402390444, scoliosis=-0.9946102659733889,
                             bone_density="osteopenic", noise=17.884888713931666)
    read, truth = _read_on_3mm_slabs(options, tmp_path)
    assert read["L4"].grade == 3 and read["L4"].morphology == "wedge", read["L4"]
    assert abs(read["L4"].heights_mm["anterior"] - truth["L4"]["heights_mm"]["anterior"]) < 1.5
    assert all(read[level].grade == 0 for level in ("L2", "L3", "L5"))


def test_the_spine_is_recentred_again_after_a_round_that_measured_many_more_bodies(tmp_path):
    # Case 26: T12 a grade 3 crush (10.7 mm tall between neighbours of 22-25 mm), 19 degrees of scoliosis.
    # The first curve ran 25 mm in front of the bodies around T12; straightened once through the three bodies
    # measured on it, six were measured but T12 still lay 30 degrees off its planes: not graded.
    options = _seed5_abdomen(5026, (FractureSpec("L2", 3, "biconcave"), FractureSpec("T12", 3, "crush")),
                             kyphosis=39.1211120987817, lordosis=61.174215669925914, scoliosis=18.713864569301236,
                             bone_density="osteoporotic", noise=13.495504095416456)
    read, _ = _read_on_3mm_slabs(options, tmp_path)
    assert read["T12"].grade == 3 and read["T12"].morphology == "crush", read["T12"]
    assert read["L2"].grade == 3 and read["L2"].morphology == "biconcave", read["L2"]
    assert all(read[level].grade == 0 for level in ("T11", "L1", "L3", "L4", "L5"))


def test_on_thick_sagittal_slabs_a_fracture_s_bowl_is_not_taken_for_a_schmorl_node(tmp_path):
    # Case 24: T6 a grade 2 biconcave fracture (middle 11.3 mm, corners 16.4 and 17.8). The focal-pit rule reads
    # the plate on side planes beside the middle; averaged across 3 mm slabs they read the bowl shallow, as a
    # node's pit beside the plate, and the middle was moved out 2.5 mm: read 14.5 mm, graded 0.
    options = PhantomOptions(seed=5024, fov="trunk", fractures=(FractureSpec("L1", 2, "wedge"),
                                                                 FractureSpec("T6", 2, "biconcave")),
                             kyphosis=44.75134551559975, lordosis=62.98278309140267, scoliosis=6.899570055230228,
                             patient_size="medium", bone_density="osteoporotic", noise=10.426199360663178,
                             slice_thickness=3.0, plane="sagittal", pixel_spacing=1.0, matrix=400, format="nifti")
    read, truth = _read_on_3mm_slabs(options, tmp_path)
    assert read["T6"].grade == 2 and read["T6"].morphology == "biconcave", read["T6"]
    assert abs(read["T6"].heights_mm["middle"] - truth["T6"]["heights_mm"]["middle"]) < 1.0


def test_on_thick_sagittal_slabs_a_schmorl_node_is_still_read_across(tmp_path):
    # Case 17 of the same batch with Schmorl's nodes at 30 % of T6-L5 endplates: T7 holds one in each endplate
    # (9.6 and 6.7 mm wide, 3.2 mm deep). With the focal-pit rule left out on sagittal slabs, as the side
    # planes cannot tell a node there, T7's middle read 2.5 mm short, a false grade 2. The midline columns
    # 6 mm before and behind the middle tell it (PIT_NEAR_MM), and the grade 3 bowl of T9 stays a fracture.
    options = PhantomOptions(seed=4017, fov="chest", fractures=(FractureSpec("T9", 3, "biconcave"),),
                             kyphosis=20.80285210884551, lordosis=32.124841546075395, scoliosis=18.770872045924122,
                             patient_size="small", bone_density="osteoporotic", schmorl_nodes=0.3,
                             noise=19.364579987292892, slice_thickness=3.0, plane="sagittal", pixel_spacing=1.0,
                             matrix=400, format="nifti")
    made = generate_phantom(options, tmp_path)
    assert {n["endplate"] for n in made.truth["degeneration"]["schmorl_nodes"] if n["level"] == "T7"} == {"top", "bottom"}
    result = analyze_volume(load_volume(made.ct_nifti), None, slice_thickness_mm=3.0)
    read = {v.label: v for v in result.vertebrae}
    truth = next(v for v in made.truth["vertebrae"] if v["label"] == "T7")
    assert read["T7"].grade == 0, read["T7"]
    assert abs(read["T7"].heights_mm["middle"] - truth["heights_mm"]["middle"]) < 1.0  # type: ignore[index]
    assert read["T9"].grade == 3 and read["T9"].morphology == "biconcave", read["T9"]
