"""``screening-node inspect``: JSON contract, readable form, not-assessable reports, exit codes."""

from __future__ import annotations

import argparse
import json

import numpy as np
import SimpleITK as sitk

from screening_node.cli.inspect import run
from tests.conftest import shared_case
from tests.node_process import cli
from tests.synthetic_ct import write_series

CONTRACT = {"size", "spacing", "origin", "direction", "hu_min", "hu_max", "slices", "problems"}


def _inspect(capsys, path, *, as_json: bool):
    code = run(argparse.Namespace(path=path, json=as_json))
    out = capsys.readouterr().out
    return code, (json.loads(out) if as_json else out)


def test_json_contract_through_the_real_command(tmp_path):
    write_series(tmp_path / "ok", n_slices=4, spacing=2.0, origin=(-8, -8, 50), fill=1100)
    result = cli("inspect", str(tmp_path / "ok"), "--json")
    report = json.loads(result.stdout)
    assert CONTRACT <= set(report)
    assert report["size"] == [16, 16, 4] and report["spacing"] == [1.0, 1.0, 2.0]
    assert report["origin"] == [-8.0, -8.0, 50.0] and report["direction"] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert report["hu_min"] == report["hu_max"] == 76.0 and report["slices"] == 4 and report["problems"] == []
    missing = cli("inspect", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and missing.stdout == ""


def test_not_assessable_is_a_finished_inspection(tmp_path, capsys):
    files = write_series(tmp_path, n_slices=4)
    files[1].unlink()
    code, report = _inspect(capsys, tmp_path, as_json=True)
    assert code == 0 and CONTRACT <= set(report)
    assert all(report[key] is None for key in CONTRACT - {"problems"})
    assert len(report["problems"]) == 1 and report["problems"][0].startswith("not assessable: gap in the slice")
    code, text = _inspect(capsys, tmp_path, as_json=False)
    assert code == 0 and "not assessable: gap in the slice positions" in text


def test_readable_form_names_geometry_and_problems(tmp_path, capsys):
    write_series(tmp_path, n_slices=3, spacing=7.5, orientation=(-1, 0, 0, 0, 1, 0))
    code, text = _inspect(capsys, tmp_path, as_json=False)
    lines = dict(line.split(None, 1) for line in text.strip().splitlines())
    assert code == 0 and lines["size"].startswith("16 x 16 x 3 voxels")
    assert lines["spacing"] == "1 x 1 x 7.5 mm" and "axes point RPI" in lines["direction"]
    assert "slice step 7.5 mm is coarse" in lines["problems"]


def test_volume_file_report(tmp_path, capsys):
    image = sitk.GetImageFromArray(np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 5)
    image.SetSpacing((0.5, 0.75, 3.0))
    image.SetDirection((0, 0, -1, 1, 0, 0, 0, -1, 0))
    sitk.WriteImage(image, str(tmp_path / "v.nrrd"))
    code, report = _inspect(capsys, tmp_path / "v.nrrd", as_json=True)
    assert code == 0 and report["kind"] == "volume file" and report["size"] == [4, 3, 2]
    assert report["orientation"] == "PIR" and report["direction"] == [0, 0, -1, 1, 0, 0, 0, -1, 0]
    assert (report["hu_min"], report["hu_max"], report["problems"]) == (-5.0, 18.0, [])


def test_real_series_report_matches_gdcm(capsys):
    folder = shared_case("tcia-pancreas-ct-cb-001")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reference = reader.Execute()
    code, report = _inspect(capsys, folder, as_json=True)
    array = sitk.GetArrayViewFromImage(reference)
    assert code == 0 and report["size"] == list(reference.GetSize()) and report["slices"] == 134
    np.testing.assert_allclose(report["origin"], reference.GetOrigin(), atol=1e-3)
    assert (report["hu_min"], report["hu_max"]) == (float(array.min()), float(array.max()))
    assert report["problems"] == []


def test_the_routing_decision_is_shown_as_the_node_would_make_it(tmp_path, capsys):
    write_series(tmp_path / "axial", n_slices=4, spacing=2.0)
    code, text = _inspect(capsys, tmp_path / "axial", as_json=False)
    assert code == 0 and "routing    not screened: 4 slices, fewer than the 40 required" in text
    write_series(tmp_path / "sagittal", n_slices=41, spacing=3.0, rows=140, columns=8, pixel_spacing=1.0,
                 orientation=(0, 1, 0, 0, 0, -1), origin=(60.0, -4.0, 0.0), image_type=("DERIVED", "SECONDARY", "MPR"))
    code, report = _inspect(capsys, tmp_path / "sagittal", as_json=True)
    assert report["routing"]["eligible"] and "where no axial series is" in report["routing"]["reason"]
    config = tmp_path / "node.toml"
    config.write_text("[routing]\nsagittal_reformats = false\n")
    code = run(argparse.Namespace(path=tmp_path / "sagittal", json=True, config=config))
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and not report["routing"]["eligible"] and "not an original primary" in report["routing"]["reason"]
