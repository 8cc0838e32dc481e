"""``screening-node evaluate``: compare results.json with truth.json (one pair or a batch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="compare analysis results with truth (phantom or mask truth)",
                              description="Identification rate, localisation error by region, height MAE, grade "
                                          "confusion, sensitivity/specificity for grade >= 2.")
    p.add_argument("--results", type=Path, action="append", default=[], metavar="R",
                   help="results.json or a folder holding it (repeat with --truth for several pairs)")
    p.add_argument("--truth", type=Path, action="append", default=[], metavar="T",
                   help="truth.json or a folder holding it")
    p.add_argument("--pairs-dir", type=Path, metavar="DIR",
                   help="batch: every subfolder holds truth.json and (somewhere below) results.json")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def _file(path: Path, name: str) -> Path:
    return path / name if path.is_dir() else path


def run(args: argparse.Namespace) -> int:
    from screening_node.analysis.evaluate_metrics import evaluate_pairs, find_pairs, format_report

    pairs: list[tuple[Path, Path]] = []
    names: list[str] = []
    if args.pairs_dir:
        if not args.pairs_dir.is_dir():
            print(f"screening-node evaluate: {args.pairs_dir} is not a folder", file=sys.stderr)
            return 2
        for results, truth, name in find_pairs(args.pairs_dir):
            pairs.append((results, truth))
            names.append(name)
    if len(args.results) != len(args.truth):
        print("screening-node evaluate: give --results and --truth the same number of times", file=sys.stderr)
        return 2
    for r, t in zip(args.results, args.truth):
        pairs.append((_file(r, "results.json"), _file(t, "truth.json")))
        names.append(r.name if r.is_dir() else r.parent.name)
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if not pairs or missing:
        print("screening-node evaluate: " + (f"missing {', '.join(missing)}" if missing else "nothing to evaluate"),
              file=sys.stderr)
        return 2
    try:
        report = evaluate_pairs(pairs, names)
    except ValueError as exc:
        print(f"screening-node evaluate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_report(report))
    return 0
