"""Reference answers for the evaluator: phantom truth.json or a vertebra mask plus expert grades.

Two forms are read into one `Truth`:

* phantom truth (schema ``screening-node/truth/v1``): exact body centroids, keypoints, heights
  and grades in patient LPS mm;
* mask truth (``/work/shared/data/*/truth.json``: ``mask`` + ``mask_labels`` + ``genant_grades``,
  optionally ``body_mask`` and ``peer_heights``): one label per whole vertebra.

Why the body centroid is estimated for mask truth: our results give the centre of the vertebral
BODY, while a whole-vertebra mask centroid includes the posterior elements and lies 8-10 mm
posterior of it. Comparing the two directly would spend half of the 20 mm identification
tolerance on anatomy. So, per vertebra:

1. with a body mask (TotalSegmentator ``vertebrae_body``, label 1 = bodies): the centroid of the
   vertebra label intersected with the body label (exact);
2. otherwise: the centroid of the vertebra's *thick core*, the voxels whose distance to the
   mask surface is at least half the label's maximum (``CORE_FRACTION``). The body is the
   thickest part of a vertebra (half-height ~ 10-13 mm) while pedicles, laminae and processes are
   thin plates and rods (half-thickness ~ 3-5 mm), so the core lies in the body. On the
   TotalSegmentator case this estimate lies within a few mm of the body-mask centroid
   (tests/test_evaluate.py checks it).

The whole-vertebra centroid is kept too, so the evaluator can also report the literature's rule
against it. All positions are patient LPS mm (SimpleITK physical space, whatever the file's
orientation, e.g. VerSe's PIR).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis.results import TRUTH_SCHEMA

CORE_FRACTION = 0.5  # voxels at >= this fraction of the label's deepest point form its "core" (the body)
HEIGHT_NAMES = ("anterior", "middle", "posterior")


@dataclass(frozen=True)
class TruthVertebra:
    label: str
    centroid_lps_mm: tuple[float, float, float]  # centre of the vertebral body
    visible: bool = True  # False: cut by the field of view (phantom truth), not counted
    vertebra_centroid_lps_mm: tuple[float, float, float] | None = None  # whole vertebra (mask truth)
    heights_mm: dict[str, float] | None = None
    keypoints_lps_mm: dict[str, tuple[float, float, float]] | None = None
    grade: int | None = None
    morphology: str | None = None
    height_loss: float | None = None


@dataclass(frozen=True)
class Truth:
    kind: str  # "phantom" | "mask"
    vertebrae: tuple[TruthVertebra, ...]
    source: str
    centroid_rule: str
    peer_heights: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> heights (a peer's answer)
    peer_name: str | None = None

    def by_label(self) -> dict[str, TruthVertebra]:
        return {v.label: v for v in self.vertebrae}


def _point(values: Any) -> tuple[float, float, float]:
    x, y, z = (float(c) for c in values)
    return (x, y, z)


def load_truth(path: Path | str) -> Truth:
    """Read a truth.json (or a folder holding one) of either form."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    if not path.is_file():
        raise FileNotFoundError(f"truth file {path} does not exist")
    data = json.loads(path.read_text())
    if data.get("schema") == TRUTH_SCHEMA:
        return phantom_truth(data, source=str(path))
    if "mask" in data and "mask_labels" in data:
        return mask_truth(data, path.parent, source=str(path))
    raise ValueError(f"{path}: neither {TRUTH_SCHEMA} nor a mask truth (mask + mask_labels)")


def phantom_truth(data: dict[str, Any], source: str = "") -> Truth:
    vertebrae = []
    for v in data["vertebrae"]:
        kps = v.get("keypoints_lps_mm")
        vertebrae.append(TruthVertebra(
            label=v["label"], centroid_lps_mm=_point(v["centroid_lps_mm"]), visible=bool(v.get("visible", True)),
            heights_mm={k: float(h) for k, h in v["heights_mm"].items()} if v.get("heights_mm") else None,
            keypoints_lps_mm={k: _point(p) for k, p in kps.items()} if kps else None,
            grade=None if v.get("grade") is None else int(v["grade"]), morphology=v.get("morphology"),
            height_loss=None if v.get("height_loss") is None else float(v["height_loss"])))
    return Truth("phantom", tuple(vertebrae), source, "exact body centroid (phantom)")


def _file_token(value: str | None) -> str | None:
    """'name.nii.gz (description)' -> 'name.nii.gz' (the shared truth files annotate their paths)."""
    if not value:
        return None
    return value.split()[0].rstrip(":,;")


def mask_truth(data: dict[str, Any], folder: Path, source: str = "") -> Truth:
    mask = sitk.ReadImage(str(folder / _file_token(data["mask"])))  # type: ignore[operator]
    body_name = _file_token(data.get("body_mask"))
    body = sitk.ReadImage(str(folder / body_name)) if body_name and (folder / body_name).is_file() else None
    names = {int(k): v for k, v in data["mask_labels"].items()}
    grades = {k: int(g) for k, g in (data.get("genant_grades") or {}).items()}
    centres = mask_centroids(mask, names, body)
    vertebrae = tuple(
        TruthVertebra(label=label, centroid_lps_mm=body_c, vertebra_centroid_lps_mm=whole_c, grade=grades.get(label))
        for label, (whole_c, body_c) in centres.items())
    peer, peer_name = {}, None
    peer_file = _file_token(data.get("peer_heights"))
    if peer_file and (folder / peer_file).is_file():
        peer, peer_name = read_totalseg_heights(folder / peer_file), peer_file
    rule = ("body centroid from the body mask" if body is not None
            else f"body centroid estimated as the vertebra's thick core (>= {CORE_FRACTION:.0%} of max depth)")
    return Truth("mask", vertebrae, source, rule, peer, peer_name)


def mask_centroids(mask: sitk.Image, names: dict[int, str], body: sitk.Image | None = None
                   ) -> dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]:
    """label -> (whole-vertebra centroid, body centroid), LPS mm, cranial first."""
    labels = sitk.GetArrayViewFromImage(mask).astype(np.int32)  # numpy (z, y, x)
    body_arr = None
    if body is not None:
        body_arr = sitk.GetArrayViewFromImage(body)
        if body_arr.shape != labels.shape:
            raise ValueError("body mask and vertebra mask differ in size")
    spacing_zyx = np.array(mask.GetSpacing()[::-1], float)
    out: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {}
    boxes = ndimage.find_objects(labels)
    for value, box in enumerate(boxes, start=1):
        if box is None or value not in names:
            continue
        pad = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        region = labels[pad] == value
        offset = np.array([s.start for s in pad], float)
        whole = np.argwhere(region).mean(axis=0) + offset
        if body_arr is not None and np.any(region & (body_arr[pad] == 1)):
            core = region & (body_arr[pad] == 1)
        else:
            depth = ndimage.distance_transform_edt(region, sampling=spacing_zyx)
            core = depth >= CORE_FRACTION * depth.max()
        body_c = np.argwhere(core).mean(axis=0) + offset
        out[names[value]] = (_physical(mask, whole), _physical(mask, body_c))
    z_of = {k: v[0][2] for k, v in out.items()}
    return dict(sorted(out.items(), key=lambda kv: -z_of[kv[0]]))


def _physical(image: sitk.Image, index_zyx: np.ndarray) -> tuple[float, float, float]:
    """numpy (z, y, x) continuous index -> LPS mm."""
    return _point(image.TransformContinuousIndexToPhysicalPoint([float(c) for c in index_zyx[::-1]]))


def read_totalseg_heights(path: Path) -> dict[str, dict[str, float]]:
    """TotalSegmentator spine report -> {level: {anterior, middle, posterior}} in mm."""
    results = json.loads(Path(path).read_text()).get("results", {})
    out: dict[str, dict[str, float]] = {}
    for key, value in results.items():
        parts = key.split("_")  # vertebrae_L1_height_posterior_mm
        if len(parts) == 5 and parts[0] == "vertebrae" and parts[2] == "height" and parts[3] in HEIGHT_NAMES:
            out.setdefault(parts[1], {})[parts[3]] = float(value)
    return {k: v for k, v in out.items() if len(v) == 3}
