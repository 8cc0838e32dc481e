"""truth.json: the exact answer for a phantom, in patient LPS millimetres.

Schema ``screening-node/truth/v1`` (constants from analysis/results.py). Per
vertebra: label, body centroid, the six Genant keypoints (points on the outer
surface of the superior / inferior endplates, on the body's mid-sagittal plane,
anterior and posterior ones 1.5 mm inside the walls), the three heights (the
distances between paired keypoints), grade, morphology, height_loss (fraction:
1 - min/max, or for a crush 1 - posterior / mean posterior of the neighbours),
visible (all keypoints inside the scanned volume) and mask_label (its value in
labels.nii.gz: LEVELS index + 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from screening_node.analysis.results import HEIGHT_KEYPOINTS, KEYPOINT_NAMES, LEVELS, TRUTH_SCHEMA
from screening_node.phantom.anatomy import VertebraPlan
from screening_node.phantom.degeneration import Degeneration
from screening_node.phantom.render import PhantomVolume
from screening_node.phantom.roll import Roll
from screening_node.phantom.skeleton import mask_label


def body_centroid(v: VertebraPlan, step_mm: float = 0.5) -> np.ndarray:
    """Centroid (LPS) of the body's solid, integrated on a fine local grid."""
    s = v.shape
    hz = max(s.top_a, s.top_p, s.bot_a, s.bot_p) + 1
    xs = np.arange(-s.ax, s.ax + step_mm, step_mm, dtype=np.float32)[None, None, :]
    ys = np.arange(-s.ay, s.ay + step_mm, step_mm, dtype=np.float32)[None, :, None]
    zs = np.arange(-hz, hz + step_mm, step_mm, dtype=np.float32)[:, None, None]
    inside = s.inward(xs, ys, zs) >= 0
    zz, yy, xx = np.nonzero(inside)
    local = np.array([xs.ravel()[xx].mean(), ys.ravel()[yy].mean(), zs.ravel()[zz].mean()], float)
    return v.to_world(local)


def _inside(point: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    return bool(np.all(point >= lo) and np.all(point <= hi))


def vertebra_truth(v: VertebraPlan, lo: np.ndarray, hi: np.ndarray, roll: Roll | None = None) -> dict[str, Any]:
    """One vertebra's truth; with ``roll``, its positions and frame turned as the rendered anatomy was."""
    keypoints = {name: v.to_world(p) for name, p in v.shape.keypoints_local().items()}
    heights = {h: float(np.linalg.norm(keypoints[a] - keypoints[b])) for h, (a, b) in HEIGHT_KEYPOINTS.items()}
    centroid = body_centroid(v)
    frame = v.frame
    if roll is not None:
        keypoints = {name: roll.point(p) for name, p in keypoints.items()}
        centroid = roll.point(centroid)
        frame = roll.matrix @ frame
    visible = all(_inside(p, lo, hi) for p in keypoints.values()) and _inside(centroid, lo, hi)
    return {
        "label": v.label,
        "centroid_lps_mm": [round(float(c), 4) for c in centroid],
        "keypoints_lps_mm": {name: [round(float(c), 4) for c in keypoints[name]] for name in KEYPOINT_NAMES},
        "heights_mm": {k: round(h, 4) for k, h in heights.items()},
        "grade": int(v.grade),
        "morphology": v.morphology,
        "height_loss": round(float(v.height_loss), 5),
        "neighbour_posterior_mm": None if v.neighbour_posterior_mm is None else round(v.neighbour_posterior_mm, 4),
        "visible": visible,
        "mask_label": mask_label(v.label),
        "trabecular_hu": round(float(v.trabecular_hu), 1),
        "local_frame_lps": [[round(float(c), 6) for c in frame[:, i]] for i in range(3)],
    }


def degeneration_truth(change: Degeneration) -> dict[str, Any]:
    """What degenerative change was painted (none of it is part of a vertebral body's truth)."""
    listed: dict[str, Any] = {
        "osteophytes": [{"level": s.level, "endplate": s.end, "length_mm": round(s.length_mm, 1)}
                        for s in change.spurs],
        "vacuum_discs_below": list(change.vacuum_discs),  # the upper level of each disc with a gas cleft
        "aortic_plaques": len(change.plaques)}
    if change.nodes:  # listed only where drawn, so that phantoms without them keep their bytes
        listed["schmorl_nodes"] = [{"level": n.level, "endplate": n.end, "centre_local_mm": [round(n.x_mm, 1),
                                    round(n.y_mm, 1)], "width_mm": round(2 * n.radius_mm, 1),
                                    "depth_mm": round(n.depth_mm, 1)} for n in change.nodes]
    return listed


def build_truth(volume: PhantomVolume, *, study_uid: str, series_uid: str, geometry: dict[str, Any],
                options_dict: dict[str, Any]) -> dict[str, Any]:
    grid = volume.grid
    half = np.array(grid.spacing) / 2
    lo, hi = grid.extent_lo - half, grid.extent_hi + half
    vertebrae = [vertebra_truth(v, lo, hi, volume.roll) for v in volume.plan.vertebrae]
    return {
        "schema": TRUTH_SCHEMA,
        "vertebrae": vertebrae,
        "patient": dict(volume.patient),
        "degeneration": degeneration_truth(volume.degeneration),
        "options": options_dict,
        "study_uid": study_uid,
        "series_uid": series_uid,
        "label_map": {str(LEVELS.index(name) + 1): name for name in LEVELS},
        "label_map_note": "labels.nii.gz: vertebral bodies only, value = index in LEVELS + 1; 0 = background",
        "geometry": geometry,
        "conventions": {"positions": "patient LPS mm (x: patient left, y: posterior, z: head)",
                        "height_loss": "fraction 0..1", "keypoint_inset_mm": 1.5},
    }


def write_truth(path: Path, truth: dict[str, Any]) -> Path:
    path.write_text(json.dumps(truth, indent=1, sort_keys=False) + "\n")
    return path
