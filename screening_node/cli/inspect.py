"""``screening-node inspect PATH``: the geometry and soundness of a series or volume file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from screening_node.errors import NotAssessable
from screening_node.imaging.volume import load_volume


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="show the geometry of a DICOM series or volume file",
                                   description="Reconstruct PATH (DICOM folder, NIfTI, NRRD or MHA) and print "
                                               "size, spacing, origin, direction, HU range, slices and problems. "
                                               "Exit 0 when inspected (sound or not), 2 for usage errors.")
    parser.add_argument("path", type=Path, help="DICOM series folder or volume file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def describe(path: Path) -> dict[str, Any]:
    """The inspection report; geometry fields are None when the volume cannot be built."""
    try:
        volume = load_volume(path)
    except NotAssessable as exc:
        return {"path": str(path), "size": None, "spacing": None, "origin": None, "direction": None,
                "hu_min": None, "hu_max": None, "slices": None, "problems": [f"not assessable: {exc.reason}"]}
    image = volume.image
    array = sitk.GetArrayViewFromImage(image)
    return {
        "path": str(path),
        "study_uid": volume.meta.get("study_uid"),
        "series_uid": volume.meta.get("series_uid"),
        "size": list(image.GetSize()),
        "spacing": [round(v, 6) for v in image.GetSpacing()],
        "origin": [round(v, 6) for v in image.GetOrigin()],
        "direction": [round(v, 8) for v in image.GetDirection()],
        "hu_min": float(np.min(array)),
        "hu_max": float(np.max(array)),
        "slices": int(image.GetSize()[2]),
        "problems": list(volume.problems),
    }


def run(args: argparse.Namespace) -> int:
    if not args.path.exists():
        print(f"screening-node inspect: {args.path} does not exist", file=sys.stderr)
        return 2
    report = describe(args.path)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    if report["size"] is None:
        print(f"{args.path}: {report['problems'][0]}")
        return 0
    fmt = lambda values: " x ".join(f"{v:g}" for v in values)  # noqa: E731
    print(f"path       {report['path']}")
    print(f"size       {fmt(report['size'])} voxels ({report['slices']} slices)")
    print(f"spacing    {fmt(report['spacing'])} mm")
    print(f"origin     {', '.join(f'{v:.2f}' for v in report['origin'])} (LPS mm)")
    print(f"direction  {' '.join(f'{v:.3f}' for v in report['direction'])}")
    print(f"HU range   {report['hu_min']:.0f} .. {report['hu_max']:.0f}")
    print(f"problems   {'; '.join(report['problems']) or 'none'}")
    return 0
