"""``screening-node analyze`` on a DICOM series also writes the objects the PACS receives."""

from __future__ import annotations

import json
import subprocess

from screening_node.phantom.generate import generate_phantom
from screening_node.phantom.options import fast_options
from tests.node_process import cli


def test_analyze_dicom_writes_seg_sr_and_summary(tmp_path):
    generate_phantom(fast_options(seed=3, fov="lumbar", format="dicom"), tmp_path / "phantom")
    out = tmp_path / "out"
    result = cli("analyze", str(tmp_path / "phantom" / "dicom"), "--out", str(out), "--suspect-grade", "1")
    for name in ("results.json", "seg.dcm", "sr.dcm", "summary.dcm", "summary.png"):
        assert (out / name).exists(), f"{name} missing:\n{result.stdout}"
        assert f"wrote {out / name}" in result.stdout or name == "results.json"
    for name in ("seg.dcm", "sr.dcm", "summary.dcm"):
        check = subprocess.run(["/usr/bin/dciodvfy", str(out / name)], capture_output=True, text=True)
        assert "Error" not in check.stderr + check.stdout, (name, check.stderr[-2000:])
    patient = json.loads((out / "results.json").read_text())["patient"]
    assert patient["suspect_min_grade"] == 1 and "(from grade 1)" in result.stdout
    assert patient["fracture_suspected"] is ((patient["max_grade"] or 0) >= 1)
    refused = cli("analyze", str(tmp_path / "phantom" / "dicom"), "--out", str(out), "--suspect-grade", "0",
                  check=False)
    assert refused.returncode == 2 and "--suspect-grade" in refused.stderr


def _loss_spreads(out) -> dict[str, float]:
    data = json.loads((out / "results.json").read_text())
    return {v["label"]: v["height_loss_range"][1] - v["height_loss"] for v in data["vertebrae"]
            if v["assessable"] and v["height_loss_range"] is not None}


def test_a_volume_file_resampled_from_thick_slices_is_read_at_the_thickness_given(tmp_path):
    """A NIfTI file holds no slice thickness: a 3 mm series resampled to 1 mm spacing reads as a 1 mm scan,
    its grade ranges a third as wide as the 3 mm series' own. ``--slice-thickness`` tells the thickness;
    the ranges are then the 3 mm series' again (within a quarter), the result says the thickness was
    given, and a thickness past what can be measured is said, not measured. A DICOM series' own
    SliceThickness is not overruled."""
    import SimpleITK as sitk

    generate_phantom(fast_options(seed=3, fov="lumbar", format="nifti"), tmp_path / "phantom")
    native = sitk.ReadImage(str(tmp_path / "phantom" / "ct.nii.gz"))
    assert native.GetSpacing()[2] == 3.0
    size = list(native.GetSize()[:2]) + [int(round(native.GetSize()[2] * 3.0))]
    spacing = list(native.GetSpacing()[:2]) + [1.0]
    fine = sitk.Resample(native, size, sitk.Transform(), sitk.sitkLinear, native.GetOrigin(), spacing,
                         native.GetDirection(), -1024.0, native.GetPixelID())
    sitk.WriteImage(fine, str(tmp_path / "resampled.nii.gz"))

    cli("analyze", str(tmp_path / "phantom" / "ct.nii.gz"), "--out", str(tmp_path / "native"))
    cli("analyze", str(tmp_path / "resampled.nii.gz"), "--out", str(tmp_path / "unknown"))
    given = cli("analyze", str(tmp_path / "resampled.nii.gz"), "--out", str(tmp_path / "given"),
                "--slice-thickness", "3")
    native_spread, unknown, known = (_loss_spreads(tmp_path / d) for d in ("native", "unknown", "given"))
    shared = sorted(set(native_spread) & set(unknown) & set(known))
    assert len(shared) >= 4, (native_spread, unknown, known)
    for level in shared:
        assert unknown[level] < 0.5 * native_spread[level], (level, unknown[level], native_spread[level])
        assert abs(known[level] - native_spread[level]) <= 0.25 * native_spread[level], (level, known, native_spread)
    assert "slices taken as 3 mm thick, as given" in given.stdout

    cli("analyze", str(tmp_path / "resampled.nii.gz"), "--out", str(tmp_path / "coarse"), "--slice-thickness", "5")
    coarse = json.loads((tmp_path / "coarse" / "results.json").read_text())
    assert coarse["status"] == "not_assessable" and "too coarse" in coarse["reason"]

    generate_phantom(fast_options(seed=3, fov="lumbar", format="dicom"), tmp_path / "series")
    refused = cli("analyze", str(tmp_path / "series" / "dicom"), "--out", str(tmp_path / "refused"),
                  "--slice-thickness", "1", check=False)
    assert refused.returncode == 2 and "contradicts" in refused.stderr
