"""(Alternative to benchmarks/analysis.py, written in parallel by the analysis engine's replacement engineer.) Speed and peak memory of the analytic engine (issue 4 goal: < 5 s and < 2.5 GB on 2 cores).

    .venv/bin/python benchmarks/analysis_speed_alt.py [--repeats 3] [--cache /tmp/bench_phantom] [CT ...]

Cases: a 512 x 512 x ~400 phantom (generated once into --cache) and any real CT given (DICOM
folder or volume file). Each repeat runs in a fresh process so its peak resident memory
(getrusage ru_maxrss) is its own. Reported per case: median analysis seconds, the median time
to read the volume (the peer measured in the same run: the ratio says how much the analysis
costs on top of loading), the ratio, and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from screening_node.imaging.volume import load_volume
t = time.perf_counter(); vol = load_volume(Path(sys.argv[1])); load_s = time.perf_counter() - t
from screening_node.analysis.pipeline import analyze_volume
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter(); r = analyze_volume(vol, Path(d)); analyse_s = time.perf_counter() - t
print(json.dumps({"load_s": load_s, "analyse_s": analyse_s, "status": r.status, "size": list(vol.image.GetSize()),
                  "stages": r.timings_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ensure_phantom(cache: Path) -> Path:
    ct = cache / "ct.nii.gz"
    if not ct.is_file():
        from screening_node.phantom import PhantomOptions, generate_phantom
        generate_phantom(PhantomOptions(seed=7, fov="trunk", matrix=512, slice_thickness=1.5, format="nifti"), cache)
    return ct


def measure(path: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    analyse = statistics.median(r["analyse_s"] for r in runs)
    load = statistics.median(r["load_s"] for r in runs)
    return {"case": str(path), "size": runs[0]["size"], "status": runs[0]["status"],
            "analyse_s_median": round(analyse, 2), "load_s_median": round(load, 2),
            "analyse_over_load": round(analyse / load, 2) if load else None,
            "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in runs)), "stages_last": runs[-1]["stages"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_phantom"))
    ap.add_argument("--no-phantom", action="store_true")
    args = ap.parse_args()
    cases = ([] if args.no_phantom else [ensure_phantom(args.cache)]) + list(args.cases)
    for case in cases:
        print(json.dumps(measure(case, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
