"""The analytic engine on real CT (../shared/data): the targets it meets today."""

from __future__ import annotations

import functools
import re

import pytest

from screening_node.analysis.evaluate_metrics import compare, summarize
from screening_node.analysis.evaluate_truth import load_truth, read_totalseg_heights
from screening_node.analysis.pipeline import analyze_path
from tests.conftest import shared_case


def test_ts_example_abdomen_lumbar_levels_and_heights(tmp_path):
    case = shared_case("ts-example-abdomen")
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    matches, outcome = compare(result, load_truth(case / "truth.json"), "ts-example-abdomen")
    lumbar = [m for m in matches if m.label in ("L1", "L2", "L3", "L4", "L5")]
    ev = summarize(lumbar, [outcome])
    assert ev["identification_rate"] == 1.0, [m.label for m in lumbar if not m.identified]
    peer = ev["peer_height_mae_mm"]["all"]  # vs TotalSegmentator's spine report
    assert peer is not None and peer < 4.0, ev["peer_height_mae_mm"]
    lumbar_found = {v.label: v for v in result.vertebrae if v.label in ("L1", "L2", "L3", "L4", "L5")}
    peer_heights = read_totalseg_heights(case / "totalseg_spine_report.json")
    # every lumbar body measured (L2 was not while the curve bent at L2/L3), L2-L5 none graded a fracture
    assert all(v.assessable for v in lumbar_found.values()), {k: v.reason for k, v in lumbar_found.items()}
    assert all(v.grade is not None and v.grade < 2 for k, v in lumbar_found.items() if k != "L1")
    # L1 is a wedge by the peer's own heights too (21 / 24 / 27 mm: 22 %). Its front reads within 3 mm of
    # the peer's on planes that hold the patient's posterior direction (3.7 mm taller on planes turned 8
    # degrees about the spine by rotation-minimising frames); its back, read at the corner, 3.1 mm taller
    # than the peer's, read 15 % in: 27 %, grade 2.
    l1 = lumbar_found["L1"].heights_mm
    assert l1 is not None and abs(l1["anterior"] - peer_heights["L1"]["anterior"]) <= 3.0, l1
    assert lumbar_found["L1"].grade in (1, 2) and lumbar_found["L1"].morphology == "wedge"
    # The lordotic L4 and L5: measured on planes square to them (the spine is straightened again
    # through the measured bodies' centres) and inside their anterior walls (osteophytes frame the
    # tissue in front), each height within 3 mm of the peer's (L5's anterior was 6.7 mm short).
    for level in ("L4", "L5"):
        ours = lumbar_found[level].heights_mm
        assert ours is not None
        assert all(abs(ours[h] - peer_heights[level][h]) <= 3.0 for h in ours), (level, ours, peer_heights[level])


def test_verse19_007_levels(tmp_path):
    case = shared_case("verse19-007")
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    matches, outcome = compare(result, load_truth(case / "truth.json"), "verse19-007")
    ev = summarize(matches, [outcome])
    assert ev["identified"] >= 6, [m.label for m in matches if not m.identified]
    labels = [v.label for v in result.vertebrae]
    assert {"T10", "T11", "T12", "L1"} <= set(labels)


@pytest.mark.parametrize("name", ["verse19-006"])
def test_small_crop_ends_as_a_finished_result(tmp_path, name):
    case = shared_case(name)
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    assert result.status in ("reported", "not_assessable")
    assert (tmp_path / "results.json").is_file()


def test_verse19_006_no_anchor_is_said_not_guessed(tmp_path):
    """L4 and L5 only, no rib, no sacrum, no ilium in view: the crop holds no labelling anchor. The
    curve runs in the right facet column there; measured from it, a transverse process passed for an
    ilium and the node claimed S1 (confidence 0.8)."""
    case = shared_case("verse19-006")
    result = analyze_path(case / "ct.nii.gz", tmp_path)
    assert [v.label for v in result.vertebrae if v.label is not None] == []
    assert any("no labelling anchor" in n for n in result.notes), result.notes



def test_ts_example_lower_field_is_labelled_from_the_sacrum_and_measured_as_the_whole(tmp_path):
    """The lower 60 % of ts-example (its L4 cut, L5, the top of S1; a pelvic field without the
    lowest ribs). The iliac crest joins L5 in the rows below it and reached 110 mm, a "rib", so the
    sacrum below it was refused and nothing was labelled; and L5, the only measured body, was read on
    planes oblique to it (no second straightening: 19.1 mm in front) and graded 2, a false fracture."""
    import SimpleITK as sitk

    from screening_node.analysis.pipeline import analyze_volume

    case = shared_case("ts-example-abdomen")
    ct = sitk.ReadImage(str(case / "ct.nii.gz"), sitk.sitkFloat32)
    direction = ct.GetDirection()
    assert abs(direction[8]) > 0.99 and direction[8] > 0  # slices along z, the first one caudal
    size = list(ct.GetSize())
    lower = sitk.RegionOfInterest(ct, [size[0], size[1], int(round(0.6 * size[2]))], [0, 0, 0])
    whole = {v.label: v for v in analyze_volume(ct, None).vertebrae}
    result = analyze_volume(lower, tmp_path)
    labels = [v.label for v in result.vertebrae]
    assert labels[-3:] == ["L4", "L5", "S1"], (labels, result.notes)
    l5 = next(v for v in result.vertebrae if v.label == "L5")
    assert l5.assessable and l5.grade == 0, (l5.heights_mm, l5.grade)
    assert all(abs(l5.heights_mm[h] - whole["L5"].heights_mm[h]) <= 2.0 for h in l5.heights_mm), \
        (l5.heights_mm, whole["L5"].heights_mm)


def test_tcia_full_series_t6_to_l5_labelled_and_measured(tmp_path):
    """The full abdominal DICOM series (3 mm): T5 (cut) to L5 and S1, the lowest ribs and the sacrum in
    agreement; every body from T6 to L5 measured and none graded a fracture. T7 and T8 (fronts bony
    over their discs) and L5 (canal and lamina taken for its walls) were unmeasured before 2026-12-01."""
    case = shared_case("tcia-pancreas-ct-cb-001")
    result = analyze_path(case, tmp_path)
    levels = [f"T{i}" for i in range(6, 13)] + [f"L{i}" for i in range(1, 6)]
    labels = [v.label for v in result.vertebrae]
    assert labels[labels.index("T6"):labels.index("T6") + 13] == levels + ["S1"], labels
    assert result.vertebrae[0].label == "T5" and result.vertebrae[0].label_confidence >= 0.9
    found = {v.label: v for v in result.vertebrae}
    unmeasured = {lv: found[lv].reason for lv in levels if not found[lv].assessable}
    assert not unmeasured, unmeasured
    assert all(found[lv].grade is not None and found[lv].grade < 2 for lv in levels)
    # its L5 is 23 % shorter behind than in front, as many normal L5s are (13 % on average): no crush
    assert found["L5"].grade == 0, found["L5"]


@functools.lru_cache(maxsize=1)
def _tcia_whole():
    """The tcia series (3 mm axial slices, z along the image's third axis) and its labels by body centre,
    loaded and analysed once for every test that cuts it."""
    import numpy as np

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.imaging.volume import load_volume

    image = load_volume(shared_case("tcia-pancreas-ct-cb-001")).image
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    whole = [(v.label, np.array(v.centroid_lps_mm)) for v in analyze_volume(image, None).vertebrae if v.label]
    return image, whole


def _tcia_slab(z_min: float, z_max: float):
    """The tcia series cut to the slices with z_min <= z <= z_max (LPS mm), and the whole series' labels."""
    import numpy as np
    import SimpleITK as sitk

    image, whole = _tcia_whole()
    z = np.array([image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(image.GetSize()[2])])
    keep = np.flatnonzero((z >= z_min) & (z <= z_max))
    size = list(image.GetSize())
    return sitk.RegionOfInterest(image, size[:2] + [int(keep.size)], [0, 0, int(keep[0])]), whole


def _whole_scan_label(whole, centroid) -> str | None:
    """The whole series' label of the body within 12 mm of centroid along the long axis (z), or None.

    The level is where a body lies along the spine; across it, where it is read depends on the planes: a
    slab whose one measured body cannot re-centre them reads its bodies where its first curve runs, and
    since the whole series is re-centred on the bodies' mirror axes its L4 and L5 lie 8 mm to the side of
    the slab's (12.3 mm in all from the slab's L4, cut at its centre).
    """
    import numpy as np

    label, distance = min(((lab, abs(float(np.asarray(centroid)[2] - c[2]))) for lab, c in whole),
                          key=lambda t: t[1])
    return label if distance <= 12.0 else None


@pytest.mark.parametrize("z_min, min_graded", [(308.8, 6), (383.0, 3)])
def test_tcia_chest_field_ending_above_l1_is_split_and_graded_but_not_labelled_one_off(tmp_path, z_min,
                                                                                          min_graded):
    """The tcia series cut 12 mm below T12's centre (z 320.8), or 8 mm below T10's (z 375.0): a chest CT
    ending above the lumbar spine. No disc broke the lateral walls there (rib heads sit across thoracic
    discs), so no body was separated and the scan was not assessable; T12, cut 23 mm below its upper disc,
    shows its rib only 47 mm out, as a rib-free L1 would, so taking it for L1 put every level one off; and
    T6-T9, flanked in every row by overlapping ribs as S1 is by its alae, went ungraded without lungs
    beside them counting. Its bodies are now graded; with no anchor in view, without a level."""
    from screening_node.analysis.pipeline import analyze_volume

    slab, whole = _tcia_slab(z_min, 1000.0)
    result = analyze_volume(slab, tmp_path)
    assert result.status == "reported", result.reason
    graded = [v for v in result.vertebrae if v.grade is not None]
    assert len(graded) >= min_graded and all(v.grade < 2 for v in graded), \
        [(v.heights_mm, v.grade) for v in graded]
    wrong = [(v.label, _whole_scan_label(whole, v.centroid_lps_mm)) for v in result.vertebrae
             if v.label is not None and v.label != _whole_scan_label(whole, v.centroid_lps_mm)]
    assert not wrong, (wrong, result.notes)


@pytest.mark.parametrize("z_max, first", [(289.1, "L1"), (219.3, "L3"), (182.0, "L4")])
def test_tcia_abdominal_field_starting_in_the_lumbar_spine_counts_up_from_s1_not_from_l5(tmp_path, z_max, first):
    """The tcia series from L1's, L3's or L4's centre down (an abdomen-pelvis or a pelvic CT without the
    lowest ribs). The iliac crest beside L5 flanks it on one side (99 mm); S1 below it is flanked on both
    sides in every row. With no T12 to count from, L5 was taken for S1 and every level was one off (from
    L1); below L4's 54 mm transverse process (a "rib"), or below a cut L4, the sacrum was refused and
    nothing was labelled (from L3, from L4)."""
    from screening_node.analysis.pipeline import analyze_volume

    slab, whole = _tcia_slab(-1000.0, z_max)
    result = analyze_volume(slab, tmp_path)
    pairs = [(v.label, _whole_scan_label(whole, v.centroid_lps_mm)) for v in result.vertebrae]
    matched = [(mine, theirs) for mine, theirs in pairs if theirs is not None]
    levels = ["L1", "L2", "L3", "L4", "L5", "S1"]
    assert [theirs for _, theirs in matched][-3:] == ["L4", "L5", "S1"], pairs
    assert all(mine == theirs for mine, theirs in matched), (pairs, result.notes)
    assert matched[0][1] in levels[levels.index(first):levels.index(first) + 2], pairs


@pytest.mark.parametrize("degrees", [20.0, -20.0])
def test_tcia_with_the_patient_rolled_reads_as_unrolled(degrees):
    """The tcia series turned 20 degrees about the long axis (a patient lying rolled): the planes are
    turned to the vertebrae's own mirror axis, so T7-L4 keep their labels, are measured and none is
    graded a fracture. Before (planes square to patient posterior): -20 (the back towards the patient's
    left) found 5 of the 14 bodies and measured 5; +20 graded T7 a grade 2 and left T9, T10 and L2-L5
    unmatched."""
    import numpy as np

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.phantom.roll import rolled_image

    image, whole = _tcia_whole()
    turned, back = rolled_image(image, degrees)  # back: a turned position into the unturned series
    result = analyze_volume(turned, None)
    found = {}
    for v in result.vertebrae:
        label = _whole_scan_label(whole, np.array(back.TransformPoint(v.centroid_lps_mm)))
        if label is not None:
            found[label] = v
    levels = [f"T{i}" for i in range(7, 13)] + [f"L{i}" for i in range(1, 5)]
    assert {lv: found[lv].label for lv in levels if lv in found} == {lv: lv for lv in levels}
    assert all(found[lv].grade is not None and found[lv].grade < 2 for lv in levels), \
        {lv: (found[lv].grade, found[lv].reason) for lv in levels}
    # The notes tell an administrator the planes were turned, and how far (the series' own roll is 2-5).
    turned = [n for n in result.notes if n.startswith("the vertebrae lie turned")]
    assert len(turned) == 1 and abs(int(re.search(r"([+-]\d+) degrees at the median body", turned[0])[1]) - degrees) <= 7


def test_tcia_rolled_30_degrees_keeps_its_labels():
    """The tcia series turned 30 degrees the other way (the back towards the patient's left). Its sacrum's
    windows are too unclear for a roll of their own, so the roll found above is held there. Held as an
    angle about each plane's own curve it turned the planes at S1, where the column leans, 14-20 degrees
    short of the vertebrae: one ala fell out of the rows, the sacrum was read one body low and all 11
    matched bodies were one level off. Held as a roll about the long axis, every matched body keeps
    its label."""
    import numpy as np

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.phantom.roll import rolled_image

    image, whole = _tcia_whole()
    turned, back = rolled_image(image, -30.0)
    result = analyze_volume(turned, None)
    pairs = [(v.label, _whole_scan_label(whole, np.array(back.TransformPoint(v.centroid_lps_mm))))
             for v in result.vertebrae]
    matched = [(mine, theirs) for mine, theirs in pairs if theirs is not None]
    assert len(matched) >= 10, pairs
    assert all(mine == theirs for mine, theirs in matched), (pairs, result.notes)


def test_verse19_007_rolled_without_an_anchor_still_grades_its_fractures():
    """verse19-007 (a crop 99 mm wide) turned 10 degrees about the long axis: its ribs leave the crop and no
    anchor names the levels, yet the grade 2 T12 and L1 are graded 2: T12, crushed below lumbar size and
    its rib out of view, lies between a rib-bearing T11 and a lumbar-sized L1, and T1-L5 is one unbroken
    run (it was left ungraded, "level could not be labelled"). L1, a biconcave grade 2 whose middle reads
    29 % short unturned, is graded 1 or 2 turned: its middle reads 0.9-1.4 mm taller on the turned planes
    (26 % with the planes turned about each curve, 22 % about the long axis, 2026-12-02)."""
    import numpy as np
    import SimpleITK as sitk

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.imaging.geometry import as_lps
    from screening_node.phantom.roll import rolled_image

    image = as_lps(sitk.ReadImage(str(shared_case("verse19-007") / "ct.nii.gz"), sitk.sitkFloat32))
    truth = load_truth(shared_case("verse19-007") / "truth.json")
    turned, back = rolled_image(image, 10.0)
    result = analyze_volume(turned, None)
    assert all(v.label is None for v in result.vertebrae)  # no anchor in this turned crop
    grades = {}
    for t in truth.vertebrae:
        if t.label in ("T12", "L1"):
            v = min(result.vertebrae, key=lambda v: float(np.linalg.norm(
                np.array(back.TransformPoint(v.centroid_lps_mm)) - np.array(t.centroid_lps_mm))))
            grades[t.label] = v.grade
    assert grades["T12"] == 2 and grades["L1"] in (1, 2), grades


def test_tcia_cut_one_row_reads_t6_under_its_faint_disc_as_a_normal_body():
    """The tcia series one row shorter (the same voxels, indexed from the next row). Its T5/T6 disc is
    nearly bony (244 HU against 310-345 HU marrow): below it the profile rises in two steps with no dip
    between, and the inner step, a little steeper than half the outer one on this grid, was read as T6's
    middle endplate, 5 mm in. T6 was then only left unmeasured because its back corner was read 12 mm in
    too (looked for within 5 mm of that middle); with the back read at the disc it was a false grade 3.
    The inner step is the marrow's, not the endplate: T6 is measured and graded below 2."""
    image, whole = _tcia_whole()
    from screening_node.analysis.pipeline import analyze_volume
    result = analyze_volume(image[:, 1:, :], None)
    t6 = [v for v in result.vertebrae if _whole_scan_label(whole, v.centroid_lps_mm) == "T6"]
    assert len(t6) == 1 and t6[0].assessable, [(v.label, v.reason) for v in t6]
    assert t6[0].grade is not None and t6[0].grade < 2, (t6[0].heights_mm, t6[0].height_loss)


@pytest.mark.parametrize("variant", ["as it came", "top slice cut", "half a pixel on"])
def test_verse19_007_t12_is_read_at_its_rims_on_every_grid(variant):
    """verse19-007's T12 (an expert's grade 2): its superior endplate is depressed, 6-7 mm deep at the
    middle, while its back rim lies 1 mm from the disc. The corner endplates were looked for within 5 mm
    of the middle one only, so the back corner was taken 11 mm in, and with the crop's top slice cut or
    the anatomy half a pixel on, T12 was refused (its back far shorter than its front). Looked for from
    the disc, the rim is found on each grid, and T12 reads grade 2 or 3 (41.6 % as it came, range 2-3)."""
    import numpy as np
    import SimpleITK as sitk

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.imaging.geometry import as_lps

    image = as_lps(sitk.ReadImage(str(shared_case("verse19-007") / "ct.nii.gz"), sitk.sitkFloat32))
    if variant == "top slice cut":
        image = image[:, :, :image.GetSize()[2] - 1]
    elif variant == "half a pixel on":
        offset = [0.5 * s if d < 2 else 0.0 for d, s in enumerate(image.GetSpacing())]
        image = sitk.Resample(image, image, sitk.TranslationTransform(3, offset), sitk.sitkBSpline, -1024.0,
                              sitk.sitkFloat32)
    truth = next(t for t in load_truth(shared_case("verse19-007") / "truth.json").vertebrae if t.label == "T12")
    result = analyze_volume(image, None)
    t12 = min(result.vertebrae, key=lambda v: float(np.linalg.norm(np.subtract(v.centroid_lps_mm,
                                                                                truth.centroid_lps_mm))))
    assert t12.assessable, t12.reason
    assert t12.grade is not None and t12.grade >= 2, (t12.heights_mm, t12.height_loss)
    assert t12.heights_mm is not None and t12.heights_mm["posterior"] > 22.0, t12.heights_mm  # T11's and L1's: 24-25


def test_verse19_007_l1s_rims_are_read_nearest_the_wall_with_two_slices_cut():
    """verse19-007's L1 (an expert's grade 2, biconcave: its middle 18 mm against 23-25 at the corners) with
    the crop's two top slices cut. Its endplates slope down towards the middle, so a corner read 3-5 mm in
    stands lower than the rim: the sharpest of the back corner's columns lay 5 mm in, the back read 23.4 mm
    instead of 25.4 and L1 22 % (grade 1). Where the middle sinks inside the corners' lines, the rims are
    read on the sharp column nearest the wall: L1 reads grade 2 as it does on the crop as it came."""
    import numpy as np
    import SimpleITK as sitk

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.imaging.geometry import as_lps

    image = as_lps(sitk.ReadImage(str(shared_case("verse19-007") / "ct.nii.gz"), sitk.sitkFloat32))
    truth = next(t for t in load_truth(shared_case("verse19-007") / "truth.json").vertebrae if t.label == "L1")
    result = analyze_volume(image[:, :, :image.GetSize()[2] - 2], None)
    l1 = min(result.vertebrae, key=lambda v: float(np.linalg.norm(np.subtract(v.centroid_lps_mm,
                                                                               truth.centroid_lps_mm))))
    assert l1.assessable and l1.grade is not None and l1.grade >= 2, (l1.heights_mm, l1.height_loss, l1.reason)
    assert l1.heights_mm is not None and l1.heights_mm["posterior"] > 24.5, l1.heights_mm
