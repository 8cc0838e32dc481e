"""Where a scan starts and ends: a full series cut inside each body, labels checked against the whole series.

A chest CT ends somewhere between T10 and L2, an abdomen-pelvis CT starts there; where the field cuts
a body decides which anchors (the lowest ribs, the sacrum) are in view. The tcia series runs from T5
to the sacrum (3 mm slices). This analyses the whole series, then cuts it at axial planes near each
body's centre (its centroid's z plus each offset), keeping the part above (`--keep above`: a chest CT)
or below (`--keep below`: an abdomen-pelvis CT), and compares each cut's labels with the whole
series' labels of the body within 12 mm. The whole series' labels must be right for this to mean
anything (the tcia ones were checked by eye in the summary view).

    .venv/bin/python benchmarks/field_ends.py [--series ../shared/data/tcia-pancreas-ct-cb-001]
        [--keep above|below] [--levels T11 T12 L1 L2] [--offsets -8 0 8]

Prints one row per cut: right / matched labels, wrong ones as `ours(whole series')`, bodies graded,
status and the first note. A body no closer than 12 mm to a whole-series body (a cut one) is `[-]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.pipeline import analyze_volume
from screening_node.analysis.results import StudyResult
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume

MATCH_MM = 12.0  # a cut's body is the whole series' body whose centre lies this close


def slab(image: sitk.Image, z_min: float, z_max: float) -> sitk.Image:
    """The slices of an LPS-ordered image (as_lps) whose centre lies within z_min..z_max (LPS mm)."""
    z = np.array([image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(image.GetSize()[2])])
    keep = np.flatnonzero((z >= z_min) & (z <= z_max))
    size = list(image.GetSize())
    return sitk.RegionOfInterest(image, size[:2] + [int(keep.size)], [0, 0, int(keep[0])])


def compare_labels(result: StudyResult, whole: list[tuple[str, np.ndarray]]) -> tuple[int, int, int, str]:
    """(right, wrong, matched, one token per body) of a cut's labels against the whole series'; a body
    without a label is neither right nor wrong."""
    right = wrong = matched = 0
    tokens = []
    for v in result.vertebrae:
        label, distance = min(((lab, float(np.linalg.norm(np.array(v.centroid_lps_mm) - c))) for lab, c in whole),
                              key=lambda t: t[1])
        mine = v.label or "?"
        if distance > MATCH_MM:
            tokens.append(f"{mine}[-]")
            continue
        matched += 1
        right += v.label == label
        wrong += v.label is not None and v.label != label
        tokens.append(mine if v.label == label else f"{mine}({label})")
    return right, wrong, matched, " ".join(tokens)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/tcia-pancreas-ct-cb-001")
    ap.add_argument("--keep", choices=("above", "below"), default="above")
    ap.add_argument("--levels", nargs="+", default=["T10", "T11", "T12", "L1", "L2"])
    ap.add_argument("--offsets", nargs="+", type=float, default=[-8.0, 0.0, 8.0])
    args = ap.parse_args()
    if not args.series.exists():
        print(f"series {args.series} not found (../shared/data is not checked out here)", file=sys.stderr)
        return 2
    image = as_lps(load_volume(args.series).image)  # slices along S, as the analysis reads them anyway
    whole = [(v.label, np.array(v.centroid_lps_mm)) for v in analyze_volume(image, None).vertebrae if v.label]
    centres = dict(whole)
    print("whole series:", " ".join(label for label, _ in whole))
    totals = [0, 0, 0]
    for level in args.levels:
        for offset in args.offsets:
            z = float(centres[level][2]) + offset
            cut = slab(image, z, np.inf) if args.keep == "above" else slab(image, -np.inf, z)
            result = analyze_volume(cut, None)
            right, wrong, matched, tokens = compare_labels(result, whole)
            graded = sum(v.grade is not None for v in result.vertebrae)
            totals = [totals[0] + right, totals[1] + wrong, totals[2] + matched]
            note = result.notes[0] if result.notes else (result.reason or "")
            where = "ends" if args.keep == "above" else "starts"
            print(f"{where} {offset:+5.0f} mm from {level:3s} centre  right {right:2d}/{matched:2d}  graded {graded:2d}  "
                  f"{result.status:14s} | {tokens} | {note[:80]}", flush=True)
    print(f"bodies matched {totals[2]}: label right {totals[0]}, wrong {totals[1]}, "
          f"none {totals[2] - totals[0] - totals[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
