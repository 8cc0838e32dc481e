"""Our body heights beside a peer's, and beside the peer's own body mask measured our way and its way.

ts-example-abdomen carries TotalSegmentator's spine report (anterior / middle / posterior heights
of L1-L5) and its vertebral-body mask. A difference between our heights and the report mixes two
things: where our endplates are, and how the peer measures. This separates them.

- "peer mask, our frame": the CT straightened along our spine curve (the one the bodies are
  measured on), the peer's body mask mapped into the same frame, its extent along the straightened
  axis on the mid-sagittal plane at 15 / 50 / 85 % of the mask's depth.
- "peer mask, its way": the procedure the peer's spine report describes, written out here from
  that description (its code is not used): the height axis runs from the previous to the next
  vertebra's body centroid (a 3 mm eroded mask), the depth axis is square to it on the sagittal
  plane; on each sagittal slice across the middle half of the body's width (5 mm steps) the body is
  crossed at 15 / 50 / 85 % of its depth and the slice whose three heights differ most is kept.
  "mid slice" is the same on the slice through the centroid.

    .venv/bin/python benchmarks/peer_heights.py [--case ../shared/data/ts-example-abdomen]

Prints one row per level (anterior / middle / posterior mm): ours, the peer's mask in our frame,
the peer's mask its way (worst slice, then mid slice), the peer's report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.pipeline import analyze_volume, measured_spine
from screening_node.analysis.stages import get_engine
from screening_node.imaging.geometry import as_lps

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


def _exit_point(mask2d: np.ndarray, start: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
    """The last point (voxel units, 1/8 voxel steps) inside a 2-D mask, read with linear interpolation
    above 0.5, on the ray from ``start``; None when the start itself is outside."""
    t = np.arange(0.0, 2.0 * max(mask2d.shape), 0.125)
    points = start[:, None] + t[None, :] * direction[:, None]
    inside = ndimage.map_coordinates(mask2d.astype(np.float32), points, order=1, mode="constant") > 0.5
    if not inside[0]:
        return None
    k = int(np.argmin(inside)) - 1 if not inside.all() else len(t) - 1
    return points[:, k]


def _heights_on_slice(body: np.ndarray, eroded: np.ndarray, centre: np.ndarray, height_axis: np.ndarray,
                      depth_axis: np.ndarray, spacing: float) -> list[float] | None:
    """Heights (mm; anterior, middle, posterior) of a body on one sagittal slice (ap, si voxel arrays):
    the eroded mask's depth through the centre, crossed at 15 / 50 / 85 % of it along the height axis."""
    front = _exit_point(eroded, centre, depth_axis)
    back = _exit_point(eroded, centre, -depth_axis)
    if front is None or back is None:
        return None
    out = []
    for fraction in FRACTIONS:  # anterior first
        at = front + fraction * (back - front)
        top, bottom = _exit_point(body, at, height_axis), _exit_point(body, at, -height_axis)
        if top is None or bottom is None:
            return None
        out.append(float(np.linalg.norm(top - bottom)) * spacing)
    return out


def peer_way_heights(ids: np.ndarray, body: np.ndarray, ids_by_level: dict[str, int], spacing: float
                     ) -> dict[str, tuple[list[float] | None, list[float] | None]]:
    """Per lumbar level: (worst-slice heights, mid-slice heights) of the peer's body mask, its way.

    ``ids`` and ``body`` are (lat, ap, si) arrays with ap growing forwards and si upwards (RAS voxel
    order) at isotropic ``spacing``.
    """
    order = [level for level in ("T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1") if level in ids_by_level]
    masks, centroids = {}, {}
    for level in order:
        mask = (ids == ids_by_level[level]) & body
        if not mask.any():
            continue
        eroded = ndimage.binary_erosion(mask, np.ones((3,) * 3, bool), iterations=max(1, round(3.0 / spacing)))
        masks[level] = (mask, eroded if eroded.any() else mask)
        centroids[level] = np.argwhere(masks[level][1]).mean(axis=0)
    present = [level for level in order if level in masks]
    out = {}
    for k, level in enumerate(present):
        if not level.startswith("L"):
            continue
        before = centroids[present[k - 1]] if k > 0 else centroids[level]
        after = centroids[present[k + 1]] if k + 1 < len(present) else centroids[level]
        axis = (after - before)[1:]  # on the sagittal plane (ap, si)
        height_axis = axis / np.linalg.norm(axis)
        depth_axis = np.array([height_axis[1], -height_axis[0]])
        depth_axis *= np.sign(depth_axis[0]) or 1.0  # pointing forwards
        mask, eroded = masks[level]
        centre = centroids[level]
        xs = np.flatnonzero(eroded.any(axis=(1, 2)))
        margin = int(round(0.25 * (xs[-1] - xs[0] + 1)))
        worst, spread = None, -1.0
        for x in range(xs[0] + margin, xs[-1] - margin + 1, max(1, int(round(5.0 / spacing)))):
            h = _heights_on_slice(mask[x], eroded[x], centre[1:], height_axis, depth_axis, spacing)
            if h is not None and max(h) - min(h) > spread:
                worst, spread = h, max(h) - min(h)
        x = int(round(centre[0]))
        out[level] = (worst, _heights_on_slice(mask[x], eroded[x], centre[1:], height_axis, depth_axis, spacing))
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
    points = measured_spine(get_engine("analytic"), as_lps(image))[0].points  # as analyze_volume reads it
    masks = [sitk.ReadImage(str(args.case / name)) for name in (truth["mask"], "totalseg_vertebrae_body.nii.gz")]
    vertebra_ids = sitk.GetArrayFromImage(masks[0])
    body = sitk.GetArrayFromImage(masks[1]) == 1
    ids = {label: int(k) for k, label in truth["mask_labels"].items()}
    ras = [sitk.DICOMOrient(mask, "RAS") for mask in masks]
    spacing = ras[0].GetSpacing()
    if max(spacing) - min(spacing) > 1e-3:
        print("the peer's way is measured here on isotropic voxels only", file=sys.stderr)
        return 2
    ids_ras, body_ras = (sitk.GetArrayFromImage(image).transpose(2, 1, 0) for image in ras)  # (lat, ap, si)
    theirs = peer_way_heights(ids_ras, body_ras == 1, ids, float(spacing[0]))
    fmt = lambda xs: "   -    -    -" if xs is None else " ".join(f"{x:4.1f}" for x in xs)  # noqa: E731
    print(f"{'level':5s}  {'ours':14s}   {'peer mask, our frame':20s}   {'its way, worst slice':20s}   "
          f"{'its way, mid slice':18s}   peer report")
    for level in ("L1", "L2", "L3", "L4", "L5"):
        mine = ours.get(level)
        masked = mask_heights(image, points, (vertebra_ids == ids[level]) & body)
        worst, mid = theirs.get(level, (None, None))
        report = [peer[f"vertebrae_{level}_height_{n}_mm"] for n in NAMES]
        print(f"{level:5s}  {fmt(None if mine is None else [mine[n] for n in NAMES]):14s}   "
              f"{fmt(masked):20s}   {fmt(worst):20s}   {fmt(mid):18s}   {fmt(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
