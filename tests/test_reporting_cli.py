"""``screening-node report``: the command writes the objects of an analysed study and names what is missing."""

from __future__ import annotations

import json
import subprocess
import sys


from tests.test_reporting import prepare_report_inputs


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "screening_node", "report", *args], capture_output=True,
                          text=True, timeout=120)


def test_report_command_writes_objects_and_reasons(tmp_path):
    _, _, result_dir, _ = prepare_report_inputs(tmp_path, sagittal_view=False)  # no view: no summary, with the reason

    run = _cli(str(result_dir), str(tmp_path / "ct"), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["written"]) == {"seg", "sr"}
    assert "sagittal_view.npz" in report["missing"]["summary"]
    assert (result_dir / "seg.dcm").exists() and (result_dir / "sr.dcm").exists()

    assert _cli(str(tmp_path / "nowhere"), str(tmp_path / "ct")).returncode == 2
