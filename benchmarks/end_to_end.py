"""End-to-end latency: last instance received -> SR stored in the PACS, minus the stable age.

    .venv/bin/python benchmarks/end_to_end.py [--repeats 3] [--slices 400] [--stable-age 2]

Real parts only: a phantom CT study (``screening-node phantom``) is sent by DCMTK
storescu to a node started as ``screening-node serve`` that delivers to Orthanc on
loopback. The clock starts when storescu returns (the last instance is stored and
acknowledged) and stops when Orthanc's REST API lists the study's SR. The stable
age is subtracted: it is a configured wait, not work. Each repeat uses a phantom
of its own seed (new UIDs). Prints each latency, the median, and the node's own
job timings from results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.node_process import NodeProcess  # noqa: E402
from tests.pacs import Orthanc  # noqa: E402

SR_3D = "1.2.840.10008.5.1.4.1.1.88.34"
TRUNK_LENGTH_MM = 646.0  # cranio-caudal extent of the trunk phantom: slice thickness sets the slice count


def make_phantom(out: Path, seed: int, slices: int) -> list[Path]:
    subprocess.run([sys.executable, "-m", "screening_node", "phantom", "--out", str(out), "--seed", str(seed),
                    "--fov", "trunk", "--slice-thickness", f"{TRUNK_LENGTH_MM / slices:.2f}", "--format", "dicom",
                    "--fracture", "L1:2:wedge"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    files = sorted(p for p in (out / "dicom").iterdir() if p.is_file())
    if len(files) < slices:
        print(f"note: the trunk phantom has {len(files)} slices (asked {slices})", file=sys.stderr)
    return files


def wait_for_sr(orthanc: Orthanc, study_uid: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for orthanc_id in orthanc.instances():
            tags = orthanc.instance_tags(orthanc_id)
            if tags.get("StudyInstanceUID") == study_uid and tags.get("SOPClassUID") == SR_3D:
                return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError("no SR in Orthanc")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--stable-age", type=float, default=2.0)
    args = parser.parse_args()
    latencies, timings = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        orthanc = Orthanc(tmp / "orthanc")
        orthanc.start()
        node = NodeProcess(tmp / "node", stable_age=args.stable_age,
                           extra=["--destination", orthanc.destination],
                           env={"SCREENING_NODE_DELIVERY_POLL_INTERVAL_S": "0.2"})
        try:
            for repeat in range(args.repeats):
                files = make_phantom(tmp / f"phantom{repeat}", 100 + repeat, args.slices)
                study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
                sent = subprocess.run(["/usr/bin/storescu", "-aec", "SCREENING", "127.0.0.1", str(node.port),
                                       *map(str, files)], env={**os.environ, "TCP_NODELAY": "1"},
                                      capture_output=True, text=True)
                if sent.returncode != 0:
                    raise RuntimeError(sent.stderr[-2000:])
                last_received = time.monotonic()
                stored = wait_for_sr(orthanc, study_uid, timeout=600)
                latency = stored - last_received - args.stable_age
                latencies.append(latency)
                row = next(r for r in node.status() if r["study_uid"] == study_uid and r["job"])
                results = json.loads((Path(row["job"]["result_dir"]) / "results.json").read_text())
                timings.append(results.get("timings_s", {}))
                print(f"repeat {repeat + 1}: {len(files)} slices, latency {latency:.2f} s "
                      f"(stable age {args.stable_age:g} s excluded)", flush=True)
        finally:
            node.stop()
            orthanc.stop()
    print(f"median latency: {statistics.median(latencies):.2f} s over {len(latencies)} repeats "
          f"(goal: under 10 s for a 400-slice study)")
    print(f"analysis stage timings of the last repeat (s): {json.dumps(timings[-1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
