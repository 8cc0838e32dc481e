"""Does a scan read the same when its voxel grid lies a little differently? Crops and sub-voxel shifts.

The anatomy does not care where the scanner's voxel grid starts. A series cut one column, row or slice
shorter holds the same voxels at the same places, only indexed from another start; a series reconstructed
half a voxel further on samples the same blurred anatomy in between. A reading that changes with either is
read from the grid's phase, not from the patient, and a rescan would not repeat it. Each real scan is
analysed as it came, then:

- cropped by one column (x), one row (y), or one or two slices at either end (no voxel changes);
- shifted by half a pixel in-plane or half a slice (B-spline resampling on its own grid, as
  benchmarks/slice_spacing.py does; this also smooths a little, as another reconstruction would not);

and compared body by body with the first analysis (benchmarks/patient_roll.py's comparison, nothing turned):
labels right / wrong, grades same / changed, bodies measured, every height moved by more than --tolerance mm.

    .venv/bin/python benchmarks/grid_phase.py [--cases ts-example-abdomen ...] [--tolerance 2.0]
        [--variants x1 y1 top1 bottom1 top2 bottom2 half-pixel half-slice]
"""

from __future__ import annotations

from collections.abc import Callable

import SimpleITK as sitk

from patient_roll import (as_it_came, compare, comparison_parser, data_missing, fracture_line, fracture_summary,
                          reading_line)
from screening_node.analysis.pipeline import analyze_volume


def _half_voxel_on(image: sitk.Image, axes: tuple[int, ...]) -> sitk.Image:
    """The anatomy moved by half a voxel back along ``axes`` (x, y, z indices) on the same grid (B-spline),
    outside the scan -1024 HU."""
    offset = [0.5 * s if d in axes else 0.0 for d, s in enumerate(image.GetSpacing())]
    return sitk.Resample(image, image, sitk.TranslationTransform(3, offset), sitk.sitkBSpline, -1024.0,
                         sitk.sitkFloat32)


VARIANTS: dict[str, Callable[[sitk.Image], sitk.Image]] = {
    "x1": lambda im: im[1:, :, :],
    "y1": lambda im: im[:, 1:, :],
    "bottom1": lambda im: im[:, :, 1:],  # LPS index order: the first slice is the most inferior
    "top1": lambda im: im[:, :, :im.GetSize()[2] - 1],
    "bottom2": lambda im: im[:, :, 2:],
    "top2": lambda im: im[:, :, :im.GetSize()[2] - 2],
    "half-pixel": lambda im: _half_voxel_on(im, (0, 1)),
    "half-slice": lambda im: _half_voxel_on(im, (2,)),
}


def main() -> int:
    ap = comparison_parser(__doc__)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    if data_missing():
        return 2
    same_place = sitk.Euler3DTransform()  # nothing turned: bodies are matched where they lie
    for case in args.cases:
        image, native = as_it_came(case)
        measured = sum(v.heights_mm is not None for v in native)
        print(reading_line(case, native), flush=True)
        totals = dict(right=0, wrong=0, changed_grade=0, changed_in_range=0, moved=0)
        rows = []
        for name in args.variants:
            found = list(analyze_volume(VARIANTS[name](image), None).vertebrae)
            c, changes = compare(native, found, same_place, args.tolerance)
            unlabelled = c["matched"] - c["right"] - c["wrong"]
            print(f"  {name:10s} matched {c['matched']:2d}/{len(native):2d}  labels right {c['right']:2d} wrong "
                  f"{c['wrong']:2d} none {unlabelled:2d}  grades same {c['same_grade']:2d} changed "
                  f"{c['changed_grade']:2d}  measured {c['measured']:2d}/{measured:2d}  {fracture_line(c)} | "
                  + " ".join(changes), flush=True)
            totals["right"] += c["right"]
            totals["wrong"] += c["wrong"]
            totals["changed_grade"] += c["changed_grade"]
            totals["changed_in_range"] += c["changed_in_range"]
            totals["moved"] += sum("/" in s for s in changes)
            rows.append(c)
        uncertain = sum(v.grade_uncertain for v in native)
        print(f"  all {len(args.variants)}: labels right {totals['right']} wrong {totals['wrong']}, grades changed "
              f"{totals['changed_grade']} ({totals['changed_in_range']} within the first reading's grade range; "
              f"{uncertain} of {sum(v.grade is not None for v in native)} grades span more than one), "
              f"bodies with a height moved > {args.tolerance:g} mm {totals['moved']}; {fracture_summary(rows)}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
