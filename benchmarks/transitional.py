"""Transitional anatomy: is a spine with 11 or 13 rib pairs or six lumbar vertebrae told, and a usual one not?

Issue 4: when the evidence conflicts (11 or 13 rib pairs, six lumbar vertebrae) the result says so and
lowers the label confidence instead of guessing silently. This renders trunk phantoms (C7 to the sacrum
in view) of each anatomy for each seed, analyses them and prints, per anatomy: scans with a labelling
conflict in their notes, the highest label confidence, and the labels right by the phantom's truth
(the level of the nearest truth body within 20 mm; a 13th rib-bearing vertebra read "T12" is wrong).
A usual spine (12 rib pairs, 5 lumbar) flagged is a false alarm; a transitional one not flagged is a
silent guess.

With --chest, chest fields (C5-T10: no lowest rib, no sacrum) of the usual anatomy instead: the levels are
then counted down from the first rib-bearing vertebra (T1) alone, and a wrong T1 puts every level one off.

    .venv/bin/python benchmarks/transitional.py [--seeds 1 2 3 4 5] [--preset fast|1mm] [--chest] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from phantom_eval import PRESETS, draw_patient  # run as a script: benchmarks/ is on the path

from screening_node.analysis.evaluate_metrics import IDENTIFICATION_MM, nearest_truth
from screening_node.analysis.evaluate_truth import Truth, load_truth
from screening_node.analysis.pipeline import analyze_path
from screening_node.analysis.results import StudyResult
from screening_node.phantom import PhantomOptions, generate_phantom

ANATOMIES = {"12 ribs, 5 lumbar": (12, 5), "13 ribs, 5 lumbar": (13, 5), "11 ribs, 5 lumbar": (11, 5),
             "12 ribs, 6 lumbar": (12, 6)}


def anatomy_options(seed: int, rib_pairs: int, lumbar: int, preset: str, fov: str = "trunk") -> PhantomOptions:
    """A phantom whose curvature, size, bone and noise are drawn from ``seed`` (phantom_eval.draw_patient),
    the same for every anatomy of that seed: only the rib pairs and lumbar count differ."""
    p = PRESETS[preset]
    return PhantomOptions(seed=seed, fov=fov, format="nifti", rib_pairs=rib_pairs, lumbar=lumbar,
                          **draw_patient(np.random.default_rng([seed, 77])), matrix=p["matrix"][fov],
                          pixel_spacing=p["pixel_spacing"], slice_thickness=p["slice_thickness"])


def labels_right(result: StudyResult, truth: Truth) -> tuple[int, int]:
    """(right, labelled): our labelled bodies whose nearest truth body lies within IDENTIFICATION_MM and has
    the same level."""
    pairs = nearest_truth(result, truth)
    return sum(d <= IDENTIFICATION_MM and tv.label == v.label for v, tv, d in pairs), len(pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--preset", choices=("fast", "1mm"), default="fast")
    ap.add_argument("--out", type=Path, default=Path("/tmp/transitional"))
    ap.add_argument("--chest", action="store_true", help="chest fields C5-T10 of the usual anatomy (the T1 anchor)")
    args = ap.parse_args(argv)
    anatomies = {"12 ribs, C5-T10": (12, 5)} if args.chest else ANATOMIES
    print(f"{'anatomy':18s} {'seed':>4s}  conflict  confidence  labels right  notes")
    totals: dict[str, list[int]] = {}
    for name, (rib_pairs, lumbar) in anatomies.items():
        for seed in args.seeds:
            field = "chest" if args.chest else "trunk"
            case = args.out / f"{args.preset}_{field}_r{rib_pairs}_l{lumbar}_s{seed}"
            options = anatomy_options(seed, rib_pairs, lumbar, args.preset, field)
            if args.chest:
                options = options.with_(levels=("C5", "T10"))
            generate_phantom(options, case)
            result = analyze_path(case / "ct.nii.gz", case / "result")
            conflicts = [n for n in result.notes if n.startswith("labelling conflict")]
            confidence = max((v.label_confidence for v in result.vertebrae if v.label is not None), default=0.0)
            right, labelled = labels_right(result, load_truth(case))
            flagged = bool(conflicts)
            t = totals.setdefault(name, [0, 0, 0, 0])
            t[0] += 1
            t[1] += int(flagged)
            t[2] += right
            t[3] += labelled
            short = "; ".join(n.split(":")[1].split("(")[0].strip() for n in conflicts)
            if args.chest:
                short = "; ".join(n[:60] for n in result.notes if "first rib" in n and "counted" not in n)
            print(f"{name:18s} {seed:4d}  {'yes' if flagged else 'no':8s}  {confidence:10.2f}  {right:5d} / {labelled:<4d}  {short}")
    print()
    for name, (n, flagged, right, labelled) in totals.items():
        print(f"{name:18s} flagged {flagged} of {n} scans; labels right {right} of {labelled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
