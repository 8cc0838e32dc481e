"""Does any input make the analysis raise instead of answering? Random crops, flips and resamplings.

The node must answer every study: "reported" or "not assessable" with a reason, never an exception that
leaves a study without a result. Each trial takes one of the real scans in ../shared/data, cuts a random
box out of it (each side cut by up to a third with chance 0.6), flips it along random axes (chance 0.3)
and resamples it to random spacings of 0.75-2 times its own (chance 0.2), then analyses it. One line per
trial: status, bodies found, the input's description and the reason; at the end the number that raised
(with their tracebacks above).

    .venv/bin/python benchmarks/random_crops.py [--trials 80] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import time
import traceback
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.pipeline import analyze_volume
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume

DATA = Path(__file__).resolve().parents[2] / "shared/data"
CASES = {"tcia": "tcia-pancreas-ct-cb-001", "ts-example": "ts-example-abdomen/ct.nii.gz",
         "verse19-007": "verse19-007/ct.nii.gz", "verse19-006": "verse19-006/ct.nii.gz"}


def variant(image: sitk.Image, rng: random.Random) -> tuple[sitk.Image, str]:
    """A random box of the image, perhaps flipped and resampled, and what was done."""
    size = image.GetSize()
    lo = [rng.randint(0, s // 3) if rng.random() < 0.6 else 0 for s in size]
    hi = [s - (rng.randint(0, s // 3) if rng.random() < 0.6 else 0) for s in size]
    out = image[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    text = f"crop {lo}-{hi}"
    if rng.random() < 0.3:
        axes = [rng.random() < 0.5 for _ in range(3)]
        out = sitk.Flip(out, axes)
        text += f" flip {axes}"
    if rng.random() < 0.2:
        spacing = [s * rng.choice([0.75, 1.0, 1.5, 2.0]) for s in out.GetSpacing()]
        new_size = [max(2, int(round(n * s / t))) for n, s, t in zip(out.GetSize(), out.GetSpacing(), spacing)]
        out = sitk.Resample(out, new_size, sitk.Transform(), sitk.sitkLinear, out.GetOrigin(), spacing,
                            out.GetDirection(), -1024.0, sitk.sitkFloat32)
        text += f" resampled to {np.round(spacing, 2).tolist()} mm"
    return out, text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    images = {name: as_lps(load_volume(DATA / path).image) for name, path in CASES.items() if (DATA / path).exists()}
    if not images:
        print(f"{DATA} holds none of the real cases")
        return 0
    rng = random.Random(args.seed)
    raised = 0
    for trial in range(args.trials):
        name = rng.choice(sorted(images))
        image, text = variant(images[name], rng)
        if min(image.GetSize()) < 2:
            continue
        t = time.perf_counter()
        try:
            result = analyze_volume(image, None)
        except Exception:  # noqa: BLE001 - what this benchmark counts
            raised += 1
            print(f"{trial:3d} RAISED {name} {text}")
            traceback.print_exc()
            continue
        print(f"{trial:3d} {result.status:15s} {len(result.vertebrae):2d} bodies {time.perf_counter() - t:4.1f} s  "
              f"{name} {text}  {result.reason or ''}")
    print(f"raised: {raised} of {args.trials}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
