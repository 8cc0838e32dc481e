"""How wide a sagittal reformat must be to be labelled and graded (routing.min_sagittal_width_mm).

    .venv/bin/python benchmarks/sagittal_width.py --batch /tmp/pe1mm [--thickness 3] [--widths 80 120 0] [--n N]

``--batch``: a folder made by ``phantom_eval.py --preset 1mm`` (each case's ct.nii.gz on 1 mm voxels and its
truth.json). Each case is turned into a sagittal reformat as a console makes one: slabs of ``--thickness`` mm
averaged across the patient, kept within half the width to each side of the spine (the truth's median body
centre; 0: the whole field), stored as sagittal slices (PIR), and analysed with that thickness. Prints the
evaluation (identification, heights, grades) per width.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.evaluate_metrics import evaluate_pairs
from screening_node.analysis.pipeline import analyze_volume
from screening_node.imaging.volume import block_means


def sagittal_slabs(case: Path, thickness_mm: int, width_mm: float) -> sitk.Image:
    """The case's 1 mm CT as sagittal slabs ``thickness_mm`` thick, ``width_mm`` across the spine (0: all)."""
    image = sitk.DICOMOrient(sitk.ReadImage(str(case / "ct.nii.gz"), sitk.sitkFloat32), "LPS")
    if any(abs(s - 1.0) > 1e-3 for s in image.GetSpacing()):
        raise SystemExit(f"{case}: needs 1 mm voxels (phantom_eval.py --preset 1mm)")
    voxels = sitk.GetArrayFromImage(image)  # z, y, x
    lo, hi = 0, voxels.shape[2]
    if width_mm:
        truth = json.loads((case / "truth.json").read_text())
        centre_x = float(np.median([v["centroid_lps_mm"][0] for v in truth["vertebrae"] if v.get("visible", True)]))
        middle = centre_x - image.GetOrigin()[0]
        lo, hi = int(max(0, middle - width_mm / 2)), int(min(voxels.shape[2], middle + width_mm / 2))
    out = sitk.GetImageFromArray(block_means(voxels[:, :, lo:hi], (1, 1, thickness_mm)))
    origin = list(image.GetOrigin())
    origin[0] += lo + (thickness_mm - 1) / 2
    out.SetOrigin(origin)
    out.SetSpacing((float(thickness_mm), 1.0, 1.0))
    return sitk.DICOMOrient(out, "PIR")  # stored as sagittal slices: columns posterior, rows to the feet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=Path, required=True, help="a phantom_eval.py --preset 1mm output folder")
    ap.add_argument("--thickness", type=int, default=3, help="slab thickness, whole mm (default 3)")
    ap.add_argument("--widths", type=float, nargs="+", default=[80.0, 120.0, 0.0],
                    help="widths across the spine in mm, 0 for the whole field (default 80 120 0)")
    ap.add_argument("--n", type=int, default=None, help="only the first N cases")
    args = ap.parse_args(argv)
    cases = sorted(p for p in args.batch.iterdir() if (p / "truth.json").is_file())[:args.n]
    for width in args.widths:
        with tempfile.TemporaryDirectory() as tmp:
            pairs = []
            for case in cases:
                out = Path(tmp) / case.name
                analyze_volume(sagittal_slabs(case, args.thickness, width), out, slice_thickness_mm=args.thickness)
                pairs.append((out, case))
            report = evaluate_pairs(pairs, [c.name for c in cases])
        grades, ge2 = report["grades"], report["grade_ge2"]
        figure = lambda value, digits: "-" if value is None else f"{value:.{digits}f}"  # noqa: E731
        print(f"width {'whole field' if not width else f'{width:.0f} mm'}: identification "
              f"{figure(report['identification_rate'], 3)}, height MAE {figure(report['height_mae_mm']['all'], 2)} mm, "
              f"grade agreement {figure(grades['exact_agreement'], 3)}, grade >= 2 sensitivity "
              f"{figure(ge2['sensitivity'], 2)} specificity {figure(ge2['specificity'], 3)}, graded without a level {report['graded_without_level']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
