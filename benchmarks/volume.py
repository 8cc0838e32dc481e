"""Series reconstruction speed and memory: load_volume against SimpleITK's GDCM series reader.

    .venv/bin/python benchmarks/volume.py [--series DIR] [--copies N] [--repeats 3]

Both read the same files in the same run, alternating, each in a fresh
process (so the peak resident memory is the reader's own, after imports).
``--copies N`` stacks N copies of the series along z (new UIDs, shifted
positions) to reach 512 x 512 x ~400. Prints median seconds, peak memory above
the imports, and the ratio ours / GDCM.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERIES = REPO.parent / "shared" / "data" / "tcia-pancreas-ct-cb-001"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, SimpleITK as sitk
from screening_node.imaging.volume import load_volume
folder, which = Path(sys.argv[1]), sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if which == "ours":
    image = load_volume(folder).image
else:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "size": image.GetSize(),
                  "pixel": image.GetPixelIDTypeAsString()}))
"""


def stacked_copies(series: Path, copies: int, target: Path) -> Path:
    """``copies`` copies of the series one above the other (z shifted by the series' extent)."""
    files = sorted(p for p in series.iterdir() if p.suffix == ".dcm")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    z = [float(h.ImagePositionPatient[2]) for h in headers]
    extent = max(z) - min(z) + (max(z) - min(z)) / (len(z) - 1)
    series_uid = generate_uid()
    for copy in range(copies):
        for index, path in enumerate(files):
            ds = pydicom.dcmread(path)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            position = [float(v) for v in ds.ImagePositionPatient]
            ds.ImagePositionPatient = [position[0], position[1], position[2] + copy * extent]
            ds.save_as(target / f"c{copy}-{index:04d}.dcm")
    return target


def measure(folder: Path, which: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), which], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-volume-") as tmp:
        folder = args.series if args.copies == 1 else stacked_copies(args.series, args.copies, Path(tmp))
        runs: dict[str, list[dict]] = {"ours": [], "gdcm": []}
        for _ in range(args.repeats):
            for which in runs:
                runs[which].append(measure(folder, which))
        summary = {which: {"seconds": statistics.median(r["seconds"] for r in rs),
                           "peak_mb": statistics.median(r["peak_mb"] for r in rs),
                           "size": rs[0]["size"], "pixel": rs[0]["pixel"]} for which, rs in runs.items()}
        if args.copies != 1:
            shutil.rmtree(tmp, ignore_errors=True)
    for which, s in summary.items():
        print(f"{which:5s} {s['seconds']:.2f} s  peak +{s['peak_mb']:.0f} MB  {s['size']} {s['pixel']}")
    print(f"ratio ours/gdcm: time {summary['ours']['seconds'] / summary['gdcm']['seconds']:.2f}, "
          f"memory {summary['ours']['peak_mb'] / summary['gdcm']['peak_mb']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
