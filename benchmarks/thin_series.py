"""Memory and time of the node's whole path on a long thin-slice series, against reading it alone.

A chest-abdomen-pelvis CT reconstructed at 0.625 mm holds a thousand slices or more: the series the node
is most likely to be sent that is largest. This renders a trunk phantom as such a DICOM series (512 x 512,
0.8 mm pixels, 0.625 mm slices: 1037 slices, an L1 grade 2 wedge) and measures, each in a fresh process:

* peer: SimpleITK's GDCM series reader reading the series as float32, as our volume holds it (the least
  any reader of the whole series needs);
* node: ``screening-node analyze DIR --out OUT``, which does what the node's worker does with a study:
  load, analyse, write results.json, the body mask, the SEG, the SR and the summary image.

Reported: peak resident memory (VmHWM of the child), wall time (median over --repeats), and their ratios
to the peer.

    .venv/bin/python benchmarks/thin_series.py [--repeats 3] [--work /tmp/thin_series] [--series thin|matrix1024]

``--series matrix1024``: the largest matrix instead, 327 slices of 1024 x 1024 at 0.4 mm (an abdomen at
1.25 mm), whose pixels the node averages 2 x 2 as it reads them (imaging.volume.in_plane_blocks).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = """
import sys, SimpleITK as sitk
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[1]))
reader.SetOutputPixelType(sitk.sitkFloat32)
image = reader.Execute()
print(image.GetSize())
"""


SERIES = {  # name: phantom options beside an L1 grade 2 wedge
    "thin": dict(seed=21, fov="trunk", matrix=512, pixel_spacing=0.8, slice_thickness=0.625, slice_spacing=0.625),
    # a fine matrix as some scanners reconstruct bone or lung: 1024 x 1024 pixels of 0.4 mm, 1.25 mm slices
    "matrix1024": dict(seed=5, fov="abdomen", matrix=1024, pixel_spacing=0.4, slice_thickness=1.25),
}


def render(work: Path, name: str = "thin") -> Path:
    """The series (rendered once into ``work``)."""
    from screening_node.phantom import PhantomOptions, generate_phantom
    from screening_node.phantom.options import FractureSpec

    folder = work / ("phantom" if name == "thin" else f"phantom-{name}")
    series = folder / "dicom"
    if not series.exists():
        generate_phantom(PhantomOptions(**SERIES[name], format="dicom", fractures=(FractureSpec("L1", 2, "wedge"),)),
                         folder)
    return series


def peak_of(command: list[str]) -> tuple[float, float, str]:
    """(peak MB, wall s, stdout) of a child process, its peak read by GNU time's maximum resident set size."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024.0, wall, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "thin_series")
    ap.add_argument("--series", choices=sorted(SERIES), default="thin",
                    help="thin: 1037 slices of 512 x 512 (default); matrix1024: 327 slices of 1024 x 1024")
    args = ap.parse_args()
    series = render(args.work, args.series)
    peer, node = [], []
    for _ in range(args.repeats):
        peer.append(peak_of([sys.executable, "-c", PEER, str(series)])[:2])
        with tempfile.TemporaryDirectory() as out:
            mb, wall, stdout = peak_of([sys.executable, "-m", "screening_node", "analyze", str(series), "--out", out])
            node.append((mb, wall))
    summary = next((line for line in stdout.splitlines() if line.startswith("max grade")), "")
    p_mb, p_s = statistics.median(m for m, _ in peer), statistics.median(s for _, s in peer)
    n_mb, n_s = statistics.median(m for m, _ in node), statistics.median(s for _, s in node)
    matrix = SERIES[args.series]["matrix"]
    print(f"series: {len(list(series.iterdir()))} slices of {matrix} x {matrix} ({series})")
    print(f"peer (GDCM read, float32)   peak {p_mb:7.0f} MB   {p_s:6.1f} s")
    print(f"node (analyze + objects)    peak {n_mb:7.0f} MB   {n_s:6.1f} s   x peer: memory {n_mb / p_mb:.2f}, "
          f"time {n_s / p_s:.2f}")
    print(f"(medians of {args.repeats}; {summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
