"""(Alternative to benchmarks/phantom_eval.py, written in parallel; scores with analysis/evaluate.py.) Accuracy of the analytic engine on a batch of random phantoms.

    .venv/bin/python benchmarks/phantom_eval_alt.py --n 30 --out /tmp/phantom_eval [--fast]

Each phantom draws its field of view, curvature, scoliosis (|angle| <= 20 deg), bone density and
fractures (every type and grade) from its seed; it is written to OUT/case_NNN with truth.json,
analysed into OUT/case_NNN/result, and the batch is scored with the same code as
`screening-node evaluate --pairs-dir OUT`.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from screening_node.analysis.evaluate import evaluate_paths, find_pairs
from screening_node.analysis.pipeline import analyze_path
from screening_node.phantom import FractureSpec, PhantomOptions, fast_options, generate_phantom

FOVS = ("trunk", "chest", "abdomen", "lumbar", "spine-crop")
LEVELS = ("T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")


def random_options(seed: int, fast: bool) -> PhantomOptions:
    rng = random.Random(seed)
    fractures: list[FractureSpec] = []
    taken: set[int] = set()
    for _ in range(rng.choice((0, 1, 1, 2))):
        i = rng.randrange(len(LEVELS))
        if any(abs(i - j) <= 1 for j in taken):  # a crush needs normal neighbours
            continue
        taken.add(i)
        fractures.append(FractureSpec(LEVELS[i], rng.choice((1, 2, 3)), rng.choice(("wedge", "biconcave", "crush"))))
    opts = dict(seed=seed, fov=rng.choice(FOVS), fractures=tuple(fractures),
                kyphosis=rng.uniform(20, 55), lordosis=rng.uniform(30, 60), scoliosis=rng.uniform(-20, 20),
                bone_density=rng.choice(("normal", "osteopenic", "osteoporotic")), format="nifti")
    return fast_options(**opts) if fast else PhantomOptions(**opts, pixel_spacing=1.0, slice_thickness=1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed0", type=int, default=100)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fast", action="store_true", help="1.5 mm pixels, 3 mm slices (default: 1 mm voxels)")
    args = ap.parse_args()
    times = []
    for k in range(args.n):
        case = args.out / f"case_{k:03d}"
        if not (case / "truth.json").is_file():
            generate_phantom(random_options(args.seed0 + k, args.fast), case)
        t = time.perf_counter()
        result = analyze_path(case / "ct.nii.gz", case / "result")
        times.append(time.perf_counter() - t)
        print(f"{case.name}: {result.status} {len(result.vertebrae)} bodies {times[-1]:.1f} s", flush=True)
    report = evaluate_paths(find_pairs(args.out))
    report["analysis_seconds_median"] = sorted(times)[len(times) // 2]
    (args.out / "evaluation.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
