"""``screening-node analyze`` on a DICOM series also writes the objects the PACS receives."""

from __future__ import annotations

import subprocess

from screening_node.phantom.generate import generate_phantom
from screening_node.phantom.options import fast_options
from tests.node_process import cli


def test_analyze_dicom_writes_seg_sr_and_summary(tmp_path):
    generate_phantom(fast_options(seed=3, fov="lumbar", format="dicom"), tmp_path / "phantom")
    out = tmp_path / "out"
    result = cli("analyze", str(tmp_path / "phantom" / "dicom"), "--out", str(out))
    for name in ("results.json", "seg.dcm", "sr.dcm", "summary.dcm", "summary.png"):
        assert (out / name).exists(), f"{name} missing:\n{result.stdout}"
        assert f"wrote {out / name}" in result.stdout or name == "results.json"
    for name in ("seg.dcm", "sr.dcm", "summary.dcm"):
        check = subprocess.run(["/usr/bin/dciodvfy", str(out / name)], capture_output=True, text=True)
        assert "Error" not in check.stderr + check.stdout, (name, check.stderr[-2000:])
