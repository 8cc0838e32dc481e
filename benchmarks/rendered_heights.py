"""How far a phantom batch's rendered endplates sit from its truth, beside how far ours do.

A height error on thick-slice phantoms mixes two things: where we put the endplates, and where the
rendered CT puts them (3 mm slices sampled at two depths, 1.5 mm pixels). This reads the raw CT (no
straightening, none of our code) along each truth body's own axis through each truth keypoint and
takes the rendered endplate where the profile, walking outwards from the cortical peak, falls halfway
to the tissue outside. That crude level is itself biased outwards on thick slices (a thin cortex
blurred over 3 mm), so compare classes with each other, not the absolute figures: a bias that the
rendered images share with our heights is the phantom's, one they do not share is ours.

    .venv/bin/python benchmarks/rendered_heights.py DIR [DIR ...]

DIR is a `phantom_eval.py --out` folder (case*/ct.nii.gz, truth.json, result/results.json). Prints
per class (normal, and grade 2-3 wedge / biconcave / crush) and height: rendered - truth, ours - truth.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import map_coordinates

from screening_node.analysis.results import HEIGHT_KEYPOINTS
from screening_node.imaging.geometry import lps_to_index

STEPS_MM = np.arange(-6.0, 6.01, 0.25)  # along the outward normal from the truth keypoint
PEAK_WINDOW_MM = (-3.0, 1.5)            # the cortical peak is looked for here (inside is negative)


def rendered_offset(image: sitk.Image, array: np.ndarray, point: np.ndarray, outward: np.ndarray) -> float | None:
    """Outward distance (mm) from a truth keypoint to the rendered endplate's half-level crossing."""
    pts = point[None] + STEPS_MM[:, None] * outward[None]
    idx = lps_to_index(image, pts)  # (x, y, z)
    values = map_coordinates(array, [idx[:, 2], idx[:, 1], idx[:, 0]], order=1, cval=-1000.0)
    window = np.flatnonzero((STEPS_MM >= PEAK_WINDOW_MM[0]) & (STEPS_MM <= PEAK_WINDOW_MM[1]))
    peak = int(window[np.argmax(values[window])])
    half = 0.5 * (values[peak] + float(np.min(values[peak:])))
    j = peak
    while j + 1 < len(values) and values[j + 1] > half:
        j += 1
    if j + 1 >= len(values):
        return None
    fraction = (values[j] - half) / max(values[j] - values[j + 1], 1e-6)
    return float(STEPS_MM[j] + fraction * (STEPS_MM[1] - STEPS_MM[0]))


def body_class(truth_vertebra: dict) -> str | None:
    grade = truth_vertebra.get("grade") or 0
    if grade == 0:
        return "normal"
    return f"{truth_vertebra.get('morphology')} grade 2-3" if grade >= 2 else None


def case_rows(case: Path) -> list[tuple[str, str, float, float]]:
    """(class, height, rendered - truth, ours - truth) for every body of one case that we measured."""
    truth = json.loads((case / "truth.json").read_text())
    results = json.loads((case / "result" / "results.json").read_text())
    ours = {v["label"]: v["heights_mm"] for v in results["vertebrae"] if v["label"] and v["heights_mm"]}
    image = sitk.ReadImage(str(case / "ct.nii.gz"), sitk.sitkFloat32)
    array = np.asarray(sitk.GetArrayViewFromImage(image))
    rows = []
    for tv in truth["vertebrae"]:
        cls = body_class(tv)
        keypoints = {n: np.array(p) for n, p in (tv.get("keypoints_lps_mm") or {}).items()}
        if cls is None or not keypoints or tv["label"] not in ours:
            continue
        axis = keypoints["superior_middle"] - keypoints["inferior_middle"]
        axis /= np.linalg.norm(axis)
        offsets = {n: rendered_offset(image, array, p, axis if n.startswith("superior") else -axis)
                   for n, p in keypoints.items()}
        for height, (sup, inf) in HEIGHT_KEYPOINTS.items():
            if offsets[sup] is None or offsets[inf] is None:
                continue
            rows.append((cls, height, offsets[sup] + offsets[inf],  # type: ignore[operator]
                         ours[tv["label"]][height] - tv["heights_mm"][height]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args()
    table: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for folder in args.dirs:
        for case in sorted(folder.glob("case[0-9]*")):
            for cls, height, rendered, ours in case_rows(case):
                table[(cls, height)].append((rendered, ours))
    print(f"{'class':22s} {'height':10s} {'n':>5s} {'rendered-truth':>15s} {'ours-truth':>11s}")
    for (cls, height), values in sorted(table.items()):
        x = np.array(values)
        print(f"{cls:22s} {height:10s} {len(x):5d} {x[:, 0].mean():+15.2f} {x[:, 1].mean():+11.2f}")


if __name__ == "__main__":
    main()
