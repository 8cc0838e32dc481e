"""``screening-node inspect PATH``: the geometry and soundness of a series or volume file.

Exit codes: 0 the inspection finished (the series may still be not assessable:
``problems`` says so), 2 usage error (PATH does not exist, bad arguments),
1 an unexpected internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from screening_node.config import RoutingSection, load_settings
from screening_node.errors import NotAssessable
from screening_node.imaging.geometry import orientation_code
from screening_node.imaging.volume import is_volume_file, load_volume
from screening_node.intake.routing import decide, facts_from_datasets

GEOMETRY_FIELDS = ("size", "spacing", "origin", "direction", "orientation", "hu_min", "hu_max", "slices")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="show the geometry of a DICOM series or volume file",
        description="Reconstruct PATH (DICOM series folder or file, NIfTI, NRRD or MHA) and print size, spacing, "
                    "origin, direction (LPS), HU range, slices and problems. A series that cannot be a sound "
                    "volume is reported as 'not assessable: <reason>'. Exit codes: 0 inspected (sound or not), "
                    "2 usage error such as a path that does not exist, 1 internal error.")
    parser.add_argument("path", type=Path, help="DICOM series folder (or one file) or a volume file")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: size/spacing/origin [x,y,z], direction (9, row-major), "
                             "hu_min, hu_max, slices, problems, routing; geometry null when not assessable")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="the node's settings, whose routing rules are applied (default: the built-in ones)")
    parser.set_defaults(func=run)


def describe(path: Path, rules: RoutingSection | None = None) -> dict[str, Any]:
    """The inspection report; geometry fields are None when the volume cannot be built. ``routing``: what the
    node's routing rules (``rules``, default the built-in ones) decide for a DICOM series, as it would when
    the series completes (None for a volume file or a series that cannot be built)."""
    kind = "volume file" if is_volume_file(path) else "dicom"
    try:
        volume = load_volume(path)
    except NotAssessable as exc:
        return {"path": str(path), "kind": kind, "study_uid": None, "series_uid": None,
                **{name: None for name in GEOMETRY_FIELDS}, "problems": [f"not assessable: {exc.reason}"],
                "routing": None}
    image = volume.image
    array = sitk.GetArrayViewFromImage(image)  # (z, y, x), no copy
    routing = None
    if kind == "dicom":
        decision = decide(facts_from_datasets(volume.meta.get("series_uid") or "", volume.reference_datasets),
                          rules or RoutingSection())  # the headers the volume was built from, not read again
        routing = {"eligible": decision.eligible, "reason": decision.reason}
    return {
        "path": str(path),
        "kind": kind,
        "study_uid": volume.meta.get("study_uid"),
        "series_uid": volume.meta.get("series_uid"),
        "size": list(image.GetSize()),
        "spacing": [round(v, 6) for v in image.GetSpacing()],
        "origin": [round(v, 6) for v in image.GetOrigin()],
        "direction": [round(v, 8) for v in image.GetDirection()],
        "orientation": orientation_code(image),
        "hu_min": float(np.min(array)),
        "hu_max": float(np.max(array)),
        "slices": int(image.GetSize()[2]),
        "problems": list(volume.problems),
        "routing": routing,
    }


def human(report: dict[str, Any]) -> str:
    """Readable lines for a terminal."""
    if report["size"] is None:
        return f"path       {report['path']}\nproblems   {'; '.join(report['problems'])}"

    def fmt(values: list[float]) -> str:
        return " x ".join(f"{v:g}" for v in values)

    return "\n".join([
        f"path       {report['path']} ({report['kind']})",
        f"size       {fmt(report['size'])} voxels ({report['slices']} slices)",
        f"spacing    {fmt(report['spacing'])} mm",
        f"origin     {', '.join(f'{v:.2f}' for v in report['origin'])} (LPS mm)",
        f"direction  {' '.join(f'{v:.3f}' for v in report['direction'])} (axes point {report['orientation']})",
        f"HU range   {report['hu_min']:.0f} .. {report['hu_max']:.0f}",
        f"problems   {'; '.join(report['problems']) or 'none'}",
        *([f"routing    {report['routing']['reason']}" if report["routing"]["eligible"]
           else f"routing    not screened: {report['routing']['reason']}"] if report["routing"] else []),
    ])


def run(args: argparse.Namespace) -> int:
    if not args.path.exists():
        print(f"screening-node inspect: {args.path} does not exist", file=sys.stderr)
        return 2
    config = getattr(args, "config", None)
    report = describe(args.path, load_settings(config).routing if config is not None else None)
    print(json.dumps(report, indent=1) if args.json else human(report))
    return 0
