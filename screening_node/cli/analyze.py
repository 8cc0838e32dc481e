"""``screening-node analyze PATH --out DIR [--json]``: analyse one CT series or volume file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from screening_node.analysis.results import StudyResult
from screening_node.analysis.thresholds import SUSPECT_MIN_GRADE


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("analyze", help="analyse one CT series (DICOM folder) or volume file",
                              description="Find the spine, measure vertebral body heights and grade "
                                          "compression fractures (Genant). Writes DIR/results.json, "
                                          "DIR/body_mask.nii.gz and DIR/sagittal_view.npz; for DICOM input "
                                          "also the DICOM SEG, TID 1500 SR and summary image (seg.dcm, "
                                          "sr.dcm, summary.dcm, summary.png).")
    p.add_argument("path", type=Path, help="DICOM series folder, DICOM files folder, or NIfTI/NRRD/MHA file")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="result folder")
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    p.add_argument("--engine", default="analytic", choices=("analytic", "neural"),
                   help="analysis engine (default analytic)")
    p.add_argument("--slice-thickness", type=_positive_mm, metavar="MM",
                   help="the slices' thickness, for a volume file resampled from thicker slices (NIfTI, NRRD and "
                        "MHA carry none): it widens the grade ranges and the too-coarse check as a DICOM series' "
                        "SliceThickness does. A DICOM series' own SliceThickness must not be contradicted")
    p.add_argument("--suspect-grade", type=int, choices=(1, 2, 3), default=SUSPECT_MIN_GRADE, metavar="{1,2,3}",
                   help="the worst grade from which the study is 'fracture suspected' (default "
                        f"{SUSPECT_MIN_GRADE}: moderate; 1 flags mild deformities too; the node's setting is "
                        "analysis.suspect_min_grade)")
    p.set_defaults(func=run)


def _positive_mm(text: str) -> float:
    """A length in mm greater than 0 (argparse reports anything else as a usage error, exit 2)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of mm, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from screening_node.analysis.pipeline import RESULTS_NAME, analyze_volume, load_for_analysis
    from screening_node.analysis.stages import EngineNotAvailable
    from screening_node.errors import NotAssessable

    if not args.path.exists():
        print(f"screening-node analyze: {args.path} does not exist", file=sys.stderr)
        return 2
    try:
        volume = load_for_analysis(args.path)
    except NotAssessable as exc:
        result = StudyResult(status="not_assessable", reason=exc.reason, engine=args.engine, vertebrae=(),
                             input={"path": str(args.path)}, suspect_min_grade=args.suspect_grade)
        result.write(args.out / RESULTS_NAME)
        volume = None
    if volume is not None and args.slice_thickness is not None:
        own = volume.meta.get("slice_thickness")
        if own is not None and abs(float(own) - args.slice_thickness) > 0.01:
            print(f"screening-node analyze: the series says its slices are {float(own):g} mm thick; "
                  f"--slice-thickness {args.slice_thickness:g} contradicts it", file=sys.stderr)
            return 2
    if volume is not None:
        try:
            result = analyze_volume(volume, args.out, engine=args.engine, path=str(args.path),
                                    slice_thickness_mm=args.slice_thickness, suspect_min_grade=args.suspect_grade)
        except EngineNotAvailable as exc:
            print(f"screening-node analyze: {exc}", file=sys.stderr)
            return 2
    report_lines: list[str] = []
    if volume is not None and volume.reference_datasets:  # DICOM input: the objects the PACS gets
        from screening_node.reporting import write_report_objects

        objects = write_report_objects(result, args.out, volume.reference_datasets, volume.image)
        report_lines = [f"wrote {p}" for p in (objects.seg, objects.sr, objects.summary_dcm, objects.summary_png) if p]
        report_lines += [f"no {name}: {reason}" for name, reason in objects.missing.items()]
    if args.json:
        print((args.out / RESULTS_NAME).read_text())
    else:
        print(format_table(result))
        print("\n".join(report_lines))
    return 0


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _grade_cell(grade: int | None, grades: tuple[int, int] | None) -> str:
    """The grade, with the grades its sampling spread spans where that is more than one: "2 (1-2)"."""
    if grade is None:
        return "-"
    if grades is None or grades[0] == grades[1]:
        return str(grade)
    return f"{grade} ({grades[0]}-{grades[1]})"


def format_table(result: StudyResult) -> str:
    """A table a person reads at a glance. Beside the loss, its spread at the CT's sampling (one standard
    deviation, analysis/uncertainty.py); beside a grade, the grades that spread spans where they differ."""
    lines = [f"status: {result.status}" + (f" ({result.reason})" if result.reason else ""),
             f"max grade: {_grade_cell(result.max_grade, result.max_grade_range)}   "
             f"fracture suspected: {result.fracture_suspected} (from grade {result.suspect_min_grade})"]
    lines += [f"note: {n}" for n in result.notes]
    lines.append(f"{'level':<6}{'conf':>5} {'ant':>6}{'mid':>6}{'post':>6} {'loss%':>6}{'+-':>5} {'grade':<8} "
                 f"{'morphology':<10} reason")
    for v in result.vertebrae:
        h = v.heights_mm or {}
        loss = None if v.height_loss is None else 100 * v.height_loss
        spread = None if v.height_loss_spread is None else 100 * v.height_loss_spread
        lines.append(f"{v.label or '?':<6}{v.label_confidence:>5.2f} {_fmt(h.get('anterior')):>6}"
                     f"{_fmt(h.get('middle')):>6}{_fmt(h.get('posterior')):>6} {_fmt(loss):>6}{_fmt(spread):>5} "
                     f"{_grade_cell(v.grade, v.grade_range):<8} {v.morphology or '-':<10} {v.reason or ''}")
    total = sum(result.timings_s.values())
    lines.append(f"time: {total:.1f} s")
    return "\n".join(lines)
