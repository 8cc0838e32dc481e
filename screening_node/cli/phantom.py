"""``screening-node phantom``: write a synthetic CT spine with exact ground truth.

Writes into --out: dicom/ (CT series), ct.nii.gz, labels.nii.gz (vertebral
bodies, value = index in LEVELS + 1), truth.json (schema screening-node/truth/v1,
patient LPS mm) and, with --preview, preview.png. Same seed and options, same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from screening_node.phantom.options import (BONE_DENSITIES, CONTRAST_PHASES, DEGENERATIONS, FORMATS, FOVS,
                                            PATIENT_SIZES, PLANES, TRANSFER_SYNTAXES, FractureSpec, PhantomOptions,
                                            parse_level_range)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("phantom", help="write a synthetic CT spine phantom with exact ground truth",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fov", choices=FOVS, default="trunk", help="field of view (default trunk)")
    p.add_argument("--levels", metavar="FIRST-LAST", help="scan only these levels, e.g. T9-L3")
    p.add_argument("--fracture", action="append", default=[], metavar="LEVEL:GRADE:MORPHOLOGY",
                   help="e.g. L1:3:wedge (grade 1-3; wedge, biconcave or crush); repeatable")
    p.add_argument("--fracture-prevalence", type=float, default=0.0, metavar="P",
                   help="chance of a random fracture at each other T4-L5 level (default 0)")
    p.add_argument("--kyphosis", type=float, default=40.0, metavar="DEGREES", help="thoracic kyphosis (40)")
    p.add_argument("--lordosis", type=float, default=50.0, metavar="DEGREES", help="lumbar lordosis (50)")
    p.add_argument("--scoliosis", type=float, default=0.0, metavar="DEGREES",
                   help="coronal Cobb angle, positive convex to the patient's left (0)")
    p.add_argument("--roll", type=float, default=0.0, metavar="DEGREES",
                   help="the patient lying turned about the long axis, positive the back towards the right (0)")
    p.add_argument("--patient-size", choices=PATIENT_SIZES, default="medium")
    p.add_argument("--bone-density", choices=BONE_DENSITIES, default="normal")
    p.add_argument("--degeneration", choices=DEGENERATIONS, default="none",
                   help="osteophytes, vacuum discs and calcified aortic plaques of an ageing spine (default none)")
    p.add_argument("--schmorl-nodes", type=float, default=0.0, metavar="P",
                   help="chance of a Schmorl's node at each T6-L5 endplate (default 0)")
    p.add_argument("--noise", type=float, default=12.0, metavar="HU", help="noise standard deviation (12 HU)")
    p.add_argument("--texture", type=float, default=0.0, metavar="HU",
                   help="standard deviation of the vertebral bodies' trabecular texture (default 0: flat marrow)")
    p.add_argument("--slice-thickness", type=float, default=2.0, metavar="MM")
    p.add_argument("--slice-spacing", type=float, default=None, metavar="MM", help="default: the thickness")
    p.add_argument("--pixel-spacing", type=float, default=None, metavar="MM",
                   help="default: field of view / matrix")
    p.add_argument("--matrix", type=int, default=None, metavar="N", help="N x N pixels (512; spine-crop 128)")
    p.add_argument("--plane", choices=PLANES, default="axial",
                   help="the stored slices: axial (default) or a sagittal reformat (DERIVED MPR) of slices as thin as "
                        "the pixels, averaged across the patient over --slice-thickness")
    p.add_argument("--feet-first", action="store_true", help="feet-first supine (FFS) instead of HFS")
    p.add_argument("--transfer-syntax", choices=TRANSFER_SYNTAXES, default="explicit",
                   help="DICOM encoding, all lossless (default explicit VR little endian)")
    p.add_argument("--format", choices=FORMATS, default="both", help="dicom, nifti or both (default)")
    p.add_argument("--rib-pairs", type=int, choices=(11, 12, 13), default=12,
                   help="thoracic vertebrae with ribs: 11, 12 or 13 (T13)")
    p.add_argument("--lumbar", type=int, choices=(5, 6), default=5, help="lumbar vertebrae: 5 or 6 (L6)")
    p.add_argument("--contrast", action=argparse.BooleanOptionalAction, default=True,
                   help="contrast-enhanced vessels and organs (default on)")
    p.add_argument("--contrast-phase", choices=CONTRAST_PHASES, default="venous",
                   help="portal venous (aorta ~250 HU, the default) or late arterial (aorta ~420 HU, as in a CT "
                        "angiogram)")
    p.add_argument("--preview", action="store_true", help="also write preview.png")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> PhantomOptions:
    return PhantomOptions(
        seed=args.seed, fov=args.fov, levels=parse_level_range(args.levels) if args.levels else None,
        fractures=tuple(FractureSpec.parse(f) for f in args.fracture),
        fracture_prevalence=args.fracture_prevalence, kyphosis=args.kyphosis, lordosis=args.lordosis,
        scoliosis=args.scoliosis, roll=args.roll, patient_size=args.patient_size, bone_density=args.bone_density,
        degeneration=args.degeneration, schmorl_nodes=args.schmorl_nodes,
        noise=args.noise, texture=args.texture, slice_thickness=args.slice_thickness, slice_spacing=args.slice_spacing,
        pixel_spacing=args.pixel_spacing, matrix=args.matrix, plane=args.plane, feet_first=args.feet_first,
        contrast=args.contrast, contrast_phase=args.contrast_phase, rib_pairs=args.rib_pairs, lumbar=args.lumbar,
        transfer_syntax=args.transfer_syntax, format=args.format, preview=args.preview)


def run(args: argparse.Namespace) -> int:
    try:
        options = options_from_args(args)
    except ValueError as error:
        print(f"screening-node phantom: {error}", file=sys.stderr)
        return 2
    from screening_node.phantom.generate import generate_phantom

    try:
        result = generate_phantom(options, args.out)
    except ValueError as error:
        print(f"screening-node phantom: {error}", file=sys.stderr)
        return 2
    fractured = [f"{v['label']}:{v['grade']}:{v['morphology']} ({100 * v['height_loss']:.0f}%)"
                 for v in result.truth["vertebrae"] if v["grade"]]
    visible = [v["label"] for v in result.truth["vertebrae"] if v["visible"]]
    print(json.dumps({"out": str(result.out_dir), "truth": str(result.truth_path),
                      "dicom_files": len(result.dicom_files), "study_uid": result.study_uid,
                      "series_uid": result.series_uid,
                      "visible": f"{visible[0]}-{visible[-1]}" if visible else None,
                      "fractures": fractured, "seconds": {k: round(v, 2) for k, v in result.timings_s.items()}},
                     indent=1))
    return 0
