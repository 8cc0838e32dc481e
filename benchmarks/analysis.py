"""Speed and memory of the analysis (issue 4 goal: < 5 s and < 2.5 GB on 2 cores).

Inputs: a 512 x 512 x 400 phantom (trunk, cropped to 400 central slices) and the real cases in
../shared/data that exist. Each input is measured in a FRESH child process (so peak memory is
that input's alone):

* load: ``load_volume`` of the file or DICOM folder (the peer: reading the same data);
* peer filter: one SimpleITK SmoothingRecursiveGaussian (sigma 1 mm) pass over the volume, a unit
  of "one full-volume filter" on this machine;
* analyse: ``analyze_volume(volume, out_dir)`` with every output written, repeated --repeats
  times; the median is reported, with its ratio to both peers;
* peak RSS of the child (VmHWM) and the increase over the RSS after the
  volume was loaded (what the analysis itself adds).

    .venv/bin/python benchmarks/analysis.py [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL = {
    "ts-example-abdomen (NIfTI 3 mm)": SHARED / "ts-example-abdomen" / "ct.nii.gz",
    "verse19-007 (NIfTI 1x1x3 mm PIR)": SHARED / "verse19-007" / "ct.nii.gz",
    "tcia-pancreas-ct-cb-001 (DICOM, 134 slices)": SHARED / "tcia-pancreas-ct-cb-001",
}


def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited through fork/exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def child(path: Path, repeats: int) -> dict[str, Any]:
    """Runs in a fresh process: load, peer filter, repeated analysis; JSON on stdout."""
    import SimpleITK as sitk

    from screening_node.analysis.pipeline import analyze_volume
    from screening_node.imaging.volume import load_volume

    t = time.perf_counter()
    volume = load_volume(path)
    load_s = time.perf_counter() - t
    rss_loaded = _rss_mb()
    t = time.perf_counter()
    sitk.SmoothingRecursiveGaussian(volume.image, 1.0)
    peer_s = time.perf_counter() - t
    times, status = [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            result = analyze_volume(volume, Path(d))
            times.append(time.perf_counter() - t)
            status = result.status
    return {"size_xyz": list(volume.image.GetSize()), "spacing_mm": [round(s, 3) for s in volume.image.GetSpacing()],
            "load_s": round(load_s, 3), "peer_gaussian_s": round(peer_s, 3),
            "analyze_s": [round(x, 3) for x in times], "status": status, "rss_after_load_mb": round(rss_loaded),
            "peak_rss_mb": round(_rss_mb()), "stage_s": result.timings_s}


def make_phantom(folder: Path) -> Path:
    """512 x 512 x 400 trunk phantom (NIfTI), 400 central slices of a 1.25 mm-step trunk."""
    import SimpleITK as sitk

    from screening_node.phantom import PhantomOptions, generate_phantom

    path = folder / "phantom_512x512x400.nii.gz"
    if not path.exists():
        res = generate_phantom(PhantomOptions(seed=7, fov="trunk", matrix=512, slice_thickness=1.25,
                                              format="nifti"), folder / "phantom")
        image = sitk.ReadImage(str(res.ct_nifti))
        nz = image.GetSize()[2]
        start = max(0, (nz - 400) // 2)
        sitk.WriteImage(image[:, :, start:start + 400], str(path), useCompression=True)
    return path


def measure(name: str, path: Path, repeats: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--repeats", str(repeats)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"input": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    med = statistics.median(data["analyze_s"])
    return {"input": name, **data, "analyze_median_s": round(med, 3),
            "ratio_to_load": round(med / data["load_s"], 2) if data["load_s"] else None,
            "ratio_to_gaussian": round(med / data["peer_gaussian_s"], 2) if data["peer_gaussian_s"] else None,
            "analysis_added_mb": data["peak_rss_mb"] - data["rss_after_load_mb"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "analysis_bench")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--make-phantom", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make_phantom:
        make_phantom(args.make_phantom)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    # The phantom is rendered in its own process so its memory never counts against an analysis.
    subprocess.run([sys.executable, __file__, "--make-phantom", str(args.work)], check=True)
    inputs = {"phantom 512x512x400 (trunk)": args.work / "phantom_512x512x400.nii.gz"}
    inputs.update({k: v for k, v in REAL.items() if v.exists()})
    rows = [measure(name, path, args.repeats) for name, path in inputs.items()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'input':<46}{'size':>16}{'load s':>8}{'gauss s':>8}{'analyse s':>10}{'x load':>8}{'x gauss':>8}"
          f"{'peak MB':>9}{'added MB':>9}  status")
    for r in rows:
        if "error" in r:
            print(f"{r['input']:<46} ERROR {r['error']}")
            continue
        size = "x".join(str(n) for n in r["size_xyz"])
        print(f"{r['input']:<46}{size:>16}{r['load_s']:>8.2f}{r['peer_gaussian_s']:>8.2f}{r['analyze_median_s']:>10.2f}"
              f"{r['ratio_to_load']:>8.2f}{r['ratio_to_gaussian']:>8.2f}{r['peak_rss_mb']:>9}{r['analysis_added_mb']:>9}"
              f"  {r['status']}")
    print(f"(median of {args.repeats} analyses per input, each input in a fresh process; stages of the last run:)")
    for r in rows:
        if "stage_s" in r:
            print(f"  {r['input']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stage_s"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
