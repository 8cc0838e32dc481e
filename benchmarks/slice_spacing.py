"""Does a scan read the same at another slice spacing? A real series resampled along its slice axis.

Clinical series come at 0.6-3 mm slice spacing. The tcia series (3 mm) is resampled here to thinner
slices (B-spline: the same information, only sampled more finely), analysed again, and compared body by
body with the native analysis: labels, grades, and every height that moved by more than --tolerance mm.
A measurement that depends on how finely the same blur is sampled is fragile; this shows where.

    .venv/bin/python benchmarks/slice_spacing.py [--series ../shared/data/tcia-pancreas-ct-cb-001]
        [--spacings 1.0 1.5 2.0] [--tolerance 2.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.pipeline import analyze_volume
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume


def resliced(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """The LPS-ordered image resampled along its slice (third) axis to spacing_mm, in-plane untouched."""
    spacing = list(image.GetSpacing())
    size = list(image.GetSize())
    size[2] = int(round((size[2] - 1) * spacing[2] / spacing_mm)) + 1
    spacing[2] = spacing_mm
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkBSpline, image.GetOrigin(), spacing,
                         image.GetDirection(), -1024.0, sitk.sitkFloat32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/tcia-pancreas-ct-cb-001")
    ap.add_argument("--spacings", nargs="+", type=float, default=[1.0, 1.5, 2.0])
    ap.add_argument("--tolerance", type=float, default=2.0)
    args = ap.parse_args()
    if not args.series.exists():
        print(f"series {args.series} not found (../shared/data is not checked out here)", file=sys.stderr)
        return 2
    image = as_lps(load_volume(args.series).image)
    native = analyze_volume(image, None).vertebrae
    print(f"native {image.GetSpacing()[2]:.2f} mm:", " ".join(f"{v.label or '?'}:{v.grade}" for v in native))
    for spacing in args.spacings:
        found = analyze_volume(resliced(image, spacing), None).vertebrae
        print(f"{spacing:.2f} mm:", " ".join(f"{v.label or '?'}:{v.grade}" for v in found), flush=True)
        for v in native:
            if not found:
                break
            other = min(found, key=lambda f: float(np.linalg.norm(np.subtract(f.centroid_lps_mm, v.centroid_lps_mm))))
            if v.heights_mm and other.heights_mm:
                moved = {k: round(other.heights_mm[k] - v.heights_mm[k], 1) for k in v.heights_mm}
                if max(abs(d) for d in moved.values()) > args.tolerance:
                    print(f"    {v.label}: native {v.heights_mm}, moved {moved}")
            elif v.heights_mm and not other.heights_mm:
                print(f"    {v.label}: native {v.heights_mm}, now not measured ({other.reason})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
