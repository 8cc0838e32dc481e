"""Our body heights beside a peer's, and beside the peer's own body mask measured our way.

ts-example-abdomen carries TotalSegmentator's spine report (anterior / middle / posterior heights
of L1-L5, "at 15/50/85 % of the body, 1.5 mm steps") and its vertebral-body mask. A difference
between our heights and the report mixes two things: where our endplates are, and how the peer
measures. This separates them: it straightens the CT along our spine curve (the one the bodies
are measured on), maps the peer's body mask into the same frame, and measures the mask's extent
along the straightened axis on the mid-sagittal plane at 15 / 50 / 85 % of the mask's depth. Our
heights come from the same analysis run.

    .venv/bin/python benchmarks/peer_heights.py [--case ../shared/data/ts-example-abdomen]

Prints one row per level: ours, the peer's mask measured in our frame, the peer's report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis import thresholds as T
from screening_node.analysis.pipeline import analyze_volume, measured_spine
from screening_node.analysis.stages import get_engine

NAMES = ("anterior", "middle", "posterior")
FRACTIONS = (0.15, 0.5, 0.85)  # the peer's stated positions, anterior to posterior


def mask_heights(image: sitk.Image, points: np.ndarray, mask: np.ndarray) -> list[float] | None:
    """Extent (mm, along the straightened axis) of a body mask on our mid-sagittal plane at FRACTIONS of
    its depth, or None when the mask does not reach that plane."""
    eng = get_engine("analytic")
    frame = eng.straighten(image, points, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM,
                           mask.astype(np.float32) * 1000.0)
    v = frame.volume
    cl = frame.half_lat
    plane = v[:, :, cl - 1:cl + 2].mean(axis=2) > 500.0  # (rows, ap) at 1 mm
    cols = np.flatnonzero(plane.any(axis=0))
    if cols.size == 0:
        return None
    out = []
    for frac in FRACTIONS:
        rows = np.flatnonzero(plane[:, int(round(cols.min() + frac * (cols.max() - cols.min())))])
        out.append(float(rows.max() - rows.min() + 1) * frame.step_mm if rows.size else float("nan"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ts-example-abdomen")
    args = ap.parse_args()
    if not args.case.is_dir():
        print(f"case folder {args.case} not found (../shared/data is not checked out here)", file=sys.stderr)
        return 2
    truth = json.loads((args.case / "truth.json").read_text())
    peer = json.loads((args.case / "totalseg_spine_report.json").read_text())["results"]
    image = sitk.ReadImage(str(args.case / "ct.nii.gz"), sitk.sitkFloat32)
    result = analyze_volume(image, None)
    ours = {v.label: v.heights_mm for v in result.vertebrae if v.label}
    points = measured_spine(get_engine("analytic"), image)[0].points
    vertebra_ids = sitk.GetArrayFromImage(sitk.ReadImage(str(args.case / truth["mask"])))
    body = sitk.GetArrayFromImage(sitk.ReadImage(str(args.case / "totalseg_vertebrae_body.nii.gz"))) == 1
    ids = {label: int(k) for k, label in truth["mask_labels"].items()}
    print("level   ours a/m/p          peer mask, our frame   peer report")
    for level in ("L1", "L2", "L3", "L4", "L5"):
        mine = ours.get(level)
        masked = mask_heights(image, points, (vertebra_ids == ids[level]) & body)
        report = [peer[f"vertebrae_{level}_height_{n}_mm"] for n in NAMES]
        fmt = lambda xs: "   -    -    -" if xs is None else " ".join(f"{x:4.1f}" for x in xs)  # noqa: E731
        print(f"{level:5s}  {fmt(None if mine is None else [mine[n] for n in NAMES]):16s}   "
              f"{fmt(masked):20s}   {fmt(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
