"""``screening-node report RESULT_DIR CT``: make the DICOM result objects of one analysed study.

Reads RESULT_DIR/results.json (and the body mask and sagittal view beside it), rebuilds the CT
series, and writes seg.dcm, sr.dcm, summary.dcm and summary.png into RESULT_DIR. Objects that
cannot be made are listed with their reason. Exit 0 when at least the SR was written, 1 when
nothing could be made, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from screening_node.analysis.results import StudyResult
from screening_node.analysis.pipeline import load_for_analysis
from screening_node.errors import NotAssessable
from screening_node.reporting import write_report_objects


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="write SEG, SR and summary image for an analysed study",
                                   description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("result_dir", type=Path, help="folder holding results.json from the analysis")
    parser.add_argument("ct", type=Path, help="the CT series that was analysed (DICOM folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results_path = args.result_dir / "results.json"
    if not results_path.exists() or not args.ct.exists():
        print(f"screening-node report: {results_path if not results_path.exists() else args.ct} does not exist",
              file=sys.stderr)
        return 2
    try:
        result = StudyResult.read(results_path)
        volume = load_for_analysis(args.ct)  # as the analysis read it: its mask's grid
    except (ValueError, NotAssessable) as exc:
        print(f"screening-node report: {exc}", file=sys.stderr)
        return 2
    if not volume.reference_datasets:
        print("screening-node report: the CT is not a DICOM series (results must go into its study)",
              file=sys.stderr)
        return 2
    objects = write_report_objects(result, args.result_dir, list(volume.reference_datasets), volume.image)
    written = {name: str(path) for name, path in (("seg", objects.seg), ("sr", objects.sr),
                                                  ("summary_dcm", objects.summary_dcm),
                                                  ("summary_png", objects.summary_png)) if path is not None}
    if args.json:
        print(json.dumps({"written": written, "missing": objects.missing}, indent=1))
    else:
        for name, path in written.items():
            print(f"{name:12s} {path}")
        for name, reason in objects.missing.items():
            print(f"{name:12s} not made: {reason}")
    return 0 if objects.sr is not None else 1
