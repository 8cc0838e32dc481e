"""Does a real scan read the same at a lower dose? Each real case with CT-like noise added.

A hospital's scans come at many doses: a low-dose chest or an obese patient's abdomen carries two or three
times the noise of the real cases in ../shared/data. Here each real scan gets white Gaussian noise, blurred
in-plane over about a millimetre (so it is correlated across a few pixels as CT noise is) and scaled to
--noise HU standard deviation, added on its own grid; it is analysed again and compared body by body with
the analysis of the scan as it came (the same comparison as benchmarks/patient_roll.py, with nothing
turned): labels, grades, bodies measured, and every height that moved by more than --tolerance mm.

    .venv/bin/python benchmarks/real_noise.py [--cases ts-example-abdomen verse19-007 ...]
        [--noise 15 30 45] [--seeds 1 2] [--tolerance 2.0]

One row per noise level and seed. The added noise is on top of each scan's own (about 10-15 HU on the 3 mm
voxels of tcia and ts-example, 50 HU on verse19-007's 1 x 1 x 3 mm; README, Known limits, Noise).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

# the same three real cases as patient_roll.py (verse19-006, on which nothing is measured as it comes, is
# left out there too)
from patient_roll import (as_it_came, compare, comparison_parser, data_missing, fracture_line, fracture_summary,
                          reading_line)
from screening_node.analysis.pipeline import analyze_volume

NOISE_BLUR_MM = 0.7  # in-plane blur of the added noise (a Gaussian's sigma), so it is correlated over about a pixel


def with_noise(image: sitk.Image, sd_hu: float, seed: int) -> sitk.Image:
    """The scan plus Gaussian noise of ``sd_hu`` HU, blurred in the slice plane over NOISE_BLUR_MM; voxels
    outside the scanned field (<= -1024) stay so."""
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(array.shape, dtype=np.float32)
    spacing = image.GetSpacing()  # (x, y, z); the array is (z, y, x)
    sigma = (0.0, NOISE_BLUR_MM / spacing[1], NOISE_BLUR_MM / spacing[0])
    noise = ndimage.gaussian_filter(noise, sigma)
    noise *= np.float32(sd_hu / max(float(noise.std()), 1e-6))
    outside = array <= -1024
    array += noise
    array[outside] = -1024
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    return out


def main() -> int:
    ap = comparison_parser(__doc__)
    ap.add_argument("--noise", nargs="+", type=float, default=[15, 30, 45])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    args = ap.parse_args()
    if data_missing():
        return 2
    same_place = sitk.Euler3DTransform()  # nothing moved: bodies are matched where they lie
    for case in args.cases:
        image, native = as_it_came(case)
        measured = sum(v.heights_mm is not None for v in native)
        print(reading_line(case, native), flush=True)
        rows = []
        for sd in args.noise:
            for seed in args.seeds:
                noisy = list(analyze_volume(with_noise(image, sd, seed), None).vertebrae)
                c, changes = compare(native, noisy, same_place, args.tolerance)
                print(f"  +{sd:3.0f} HU seed {seed}  matched {c['matched']:2d}/{len(native):2d}  labels right "
                      f"{c['right']:2d} wrong {c['wrong']:2d}  grades same {c['same_grade']:2d} changed "
                      f"{c['changed_grade']:2d}  measured {c['measured']:2d}/{measured:2d}  {fracture_line(c)} | "
                      + " ".join(changes), flush=True)
                rows.append(c)
        print(f"  all {len(rows)}: {fracture_summary(rows)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
