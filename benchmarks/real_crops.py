"""Robustness on fields of view we do not have: the real cases cropped and resampled.

The real cases in ../shared/data are few, and each is one field of view. Scans we have not seen start
and end elsewhere (a crop ending inside a body, a lumbar field without the lowest ribs, the pelvis
without the upper lumbar spine) and come at other voxel sizes. This cuts each mask-truth case to its
upper, middle and lower 60 % along the image axis that runs head to foot, and resamples it to 1.5 mm
voxels, then analyses every variant and scores it against the variant's own mask. A vertebra counts
as visible when at least half of its mask voxels are still in the variant.

    .venv/bin/python benchmarks/real_crops.py [--cases verse19-007 ts-example-abdomen] [--data ../shared/data]

Prints one row per variant: identification (right label within 20 mm), detection distance, graded
bodies with a truth grade and how many agree, the patient's worst grade, and the labelling note.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.evaluate_metrics import compare, summarize
from screening_node.analysis.evaluate_truth import _file_token, load_truth
from screening_node.analysis.pipeline import analyze_volume

DEFAULT_CASES = ("verse19-007", "ts-example-abdomen", "verse19-006")
KEEP = 0.6  # each crop keeps this share of the head-to-foot axis
MIN_VISIBLE_SHARE = 0.5  # a vertebra with less of its mask in the variant is not expected to be found


def head_to_foot_axis(image: sitk.Image) -> int:
    """The image axis (x, y, z index) that runs most nearly along patient S-I."""
    direction = np.array(image.GetDirection()).reshape(3, 3)  # columns: the axes in LPS
    return int(np.argmax(np.abs(direction[2, :])))


def variants(ct: sitk.Image, mask: sitk.Image) -> dict[str, tuple[sitk.Image, sitk.Image]]:
    """name -> (CT, mask): the whole case, three 60 % crops (named by patient position) and 1.5 mm voxels."""
    out = {"whole": (ct, mask)}
    axis = head_to_foot_axis(ct)
    size = list(ct.GetSize())
    superior_first = np.array(ct.GetDirection()).reshape(3, 3)[2, axis] < 0  # index 0 is the head end
    for name, start in (("upper", 0.0), ("middle", 0.2), ("lower", 0.4)):
        first = start if superior_first else 1.0 - KEEP - start
        index = [0, 0, 0]
        extent = list(size)
        index[axis] = int(round(first * size[axis]))
        extent[axis] = int(round(KEEP * size[axis]))
        out[name] = (sitk.RegionOfInterest(ct, extent, index), sitk.RegionOfInterest(mask, extent, index))
    spacing = (1.5, 1.5, 1.5)
    new_size = [int(round(n * s / 1.5)) for n, s in zip(size, ct.GetSpacing())]
    out["1.5 mm"] = tuple(sitk.Resample(image, new_size, sitk.Transform(), interp, image.GetOrigin(), spacing,
                                        image.GetDirection(), fill, image.GetPixelID())
                          for image, interp, fill in ((ct, sitk.sitkLinear, -1024), (mask, sitk.sitkNearestNeighbor, 0)))
    return out


def voxel_counts(mask: sitk.Image, names: dict[int, str]) -> dict[str, int]:
    labels = sitk.GetArrayViewFromImage(mask)
    counts = np.bincount(labels.ravel().astype(np.int64))
    return {name: int(counts[value]) if value < counts.size else 0 for value, name in names.items()}


def score(case: Path, name: str, ct: sitk.Image, mask: sitk.Image, full: dict[str, int], work: Path) -> str:
    truth_data = json.loads((case / "truth.json").read_text())
    folder = work / name.replace(" ", "_")
    folder.mkdir()
    sitk.WriteImage(mask, str(folder / _file_token(truth_data["mask"])))
    for key in ("body_mask",):  # the body mask (ts-example) is not cropped along: dropped for the variants
        truth_data.pop(key, None)
    truth_data["peer_heights"] = None
    (folder / "truth.json").write_text(json.dumps(truth_data))
    truth = load_truth(folder)
    names = {int(k): v for k, v in truth_data["mask_labels"].items()}
    here = voxel_counts(mask, names)
    visible = {label for label, n in here.items() if full.get(label) and n >= MIN_VISIBLE_SHARE * full[label]}
    truth = replace(truth, vertebrae=tuple(replace(v, visible=v.label in visible) for v in truth.vertebrae))
    result = analyze_volume(ct, None)
    matches, outcome = compare(result, truth, case=f"{case.name}/{name}")
    summary = summarize(matches, [outcome])
    grades = summary["grades"]
    agree = grades["exact_agreement"]
    detection = summary["detection_mm"]["mean"]
    note = result.notes[0] if result.notes else (result.reason or "")
    return (f"{case.name:<19} {name:<7} identified {summary['identified']}/{summary['vertebrae']}  "
            f"detection {'-' if detection is None else f'{detection:4.1f}'} mm  graded {grades['n_graded']}"
            f"/{grades['n_truth_graded']} agree {'-' if agree is None else f'{agree:.2f}'}  "
            f"worst {result.max_grade}  | {note[:60]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data")
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES))
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"data folder {args.data} not found (../shared/data is not checked out here)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="real_crops_"))
    try:
        for name in args.cases:
            case = args.data / name
            truth_data = json.loads((case / "truth.json").read_text())
            ct = sitk.ReadImage(str(case / _file_token(truth_data.get("ct", "ct.nii.gz"))), sitk.sitkFloat32)
            mask = sitk.ReadImage(str(case / _file_token(truth_data["mask"])))
            full = voxel_counts(mask, {int(k): v for k, v in truth_data["mask_labels"].items()})
            (work / name).mkdir()
            for variant, (v_ct, v_mask) in variants(ct, mask).items():
                print(score(case, variant, v_ct, v_mask, full, work / name), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
