"""Accuracy of the analysis on a batch of random phantoms (issue 4 targets).

Generates N phantoms whose options are drawn from one seeded generator (field of view, sagittal
curvature, scoliosis up to +-20 degrees, bone density down to osteoporotic, patient size, noise,
head/feet first, 0-2 fractures cycling through every grade x morphology), analyses each with
``analyze_path`` and evaluates the batch with ``evaluate_metrics``.

    .venv/bin/python benchmarks/phantom_eval.py --n 30 --out /tmp/phantom_eval [--preset 1mm|2mm|fast|3mm] [--jobs 2]
        [--degeneration none|moderate|severe|mixed] [--roll DEGREES] [--prevalence P] [--texture HU] [--noise HU]
        [--schmorl-nodes P] [--contrast-phase venous|arterial] [--slice-thickness MM] [--slice-spacing MM]
        [--plane axial|sagittal]

--roll DEGREES turns each patient about the long axis by an angle drawn from +-DEGREES (phantom/roll.py:
the square rendering turned slice by slice, truth with it), drawn after everything else.

--prevalence P fractures each other T4-L5 level of a phantom with chance P (the phantom's
--fracture-prevalence: grade 1 half the time, 2 or 3 otherwise; a crush beside another fracture becomes a
wedge), as in a severely osteoporotic spine with a run of fractures. Without it, a batch's fractures are
kept two levels apart.

--texture HU gives the vertebral bodies' marrow a trabecular mottle of that standard deviation
(phantom/texture.py; the scanner's blur leaves about 0.6 of it on 1 mm voxels: --texture 80 gives the
45-80 HU spread that the real bodies in ../shared/data show), and --noise HU replaces the drawn noise
(6-20 HU) of every case; the rest of each case is the same.

--slice-spacing MM places the slices that far apart (default: as thick as they are); thinner than
--slice-thickness, they overlap (5 mm every 2.5 mm, 3 mm every 1.5 mm: common reconstructions). The NIfTI
carries no thickness, so each case is analysed with it given, as a DICOM series' SliceThickness gives it.

--contrast-phase arterial renders every case in a late arterial phase (phantom/body.py HU_ARTERIAL: the aorta
at 420 HU, as bright as cortex blurred by 3 mm slices, the heart at 350, the veins below the kidneys not yet
opacified), as in a CT angiogram; the default, venous, gives the same phantoms as before the option existed.

--schmorl-nodes P puts a Schmorl's node (a pit of disc tissue through the endplate, 5-10 mm wide and 2-5
mm deep, rimmed with sclerotic bone; phantom/degeneration.py) at each T6-L5 endplate with chance P. No
fracture: the truth heights are the endplates', as a reader measures them across the node.

--degeneration adds the osteophytes, vacuum discs and calcified aortic plaques of an ageing spine
(phantom/degeneration.py; mixed draws none, moderate or severe per case). The default, none, gives the
same phantoms as before the option existed.

Targets (issue 4): identification >= 0.98, height MAE <= 0.7 mm at 1 mm voxels, grade exact
agreement >= 0.95. Writes OUT/report.json and OUT/cases.json (options and timings per case) and
prints the readable report. Re-running with the same --out reuses generated phantoms (--regenerate
to redo them) and always re-analyses; a phantom whose series UID says other options or an earlier
rendering (phantom/generate.py RENDERING_REVISION) made it is rendered again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from screening_node.analysis.evaluate_metrics import evaluate_pairs, format_report
from screening_node.phantom import FractureSpec, PhantomOptions, generate_phantom
from screening_node.phantom.generate import phantom_uids
from screening_node.phantom.options import CONTRAST_PHASES, DEGENERATIONS, PLANES

# Levels safely inside each field of view (the phantom's choose_grid decides the real extent).
FRACTURE_LEVELS = {
    "trunk": ["T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4"],
    "chest": ["T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11"],
    "abdomen": ["T12", "L1", "L2", "L3", "L4"],
    "lumbar": ["L1", "L2", "L3", "L4"],
    "spine-crop": ["T10", "T11", "T12", "L1", "L2"],
}
FOV_WEIGHTS = {"trunk": 0.3, "chest": 0.2, "abdomen": 0.2, "lumbar": 0.15, "spine-crop": 0.15}
COMBOS = [(g, m) for g in (1, 2, 3) for m in ("wedge", "biconcave", "crush")]
PRESETS: dict[str, dict[str, Any]] = {
    # 1 mm voxels: the height target is stated for them. Matrix per field of view so 1 mm pixels cover it.
    "1mm": {"pixel_spacing": 1.0, "slice_thickness": 1.0,
            "matrix": {"trunk": 400, "chest": 400, "abdomen": 400, "lumbar": 224, "spine-crop": 128}},
    # 2 mm slices (the phantom's own default thickness; a common abdominal reconstruction), 1 mm pixels.
    "2mm": {"pixel_spacing": 1.0, "slice_thickness": 2.0,
            "matrix": {"trunk": 400, "chest": 400, "abdomen": 400, "lumbar": 224, "spine-crop": 128}},
    # The phantom's fast preset: quick smoke runs.
    "fast": {"pixel_spacing": 1.5, "slice_thickness": 3.0,
             "matrix": {"trunk": 256, "chest": 256, "abdomen": 256, "lumbar": 160, "spine-crop": 96}},
    # 3 mm slices with the 0.75 mm pixels of a clinical thick-slice series (fast's 1.5 mm pixels are coarser).
    "3mm": {"pixel_spacing": 0.75, "slice_thickness": 3.0,
            "matrix": {"trunk": 512, "chest": 512, "abdomen": 512, "lumbar": 320, "spine-crop": 192}},
}


def draw_patient(rng: np.random.Generator) -> dict[str, Any]:
    """A patient's curvature (scoliosis up to +-20 degrees), size, bone density and noise, drawn in this order
    from ``rng`` (PhantomOptions fields; benchmarks/transitional.py draws its trunks so too)."""
    return {"kyphosis": float(rng.uniform(20, 60)), "lordosis": float(rng.uniform(30, 65)),
            "scoliosis": float(rng.uniform(-20, 20)), "patient_size": str(rng.choice(["small", "medium", "large"])),
            "bone_density": str(rng.choice(["normal", "osteopenic", "osteoporotic"])),
            "noise": float(rng.uniform(6, 20))}


def draw_options(i: int, seed: int, preset: str, degeneration: str = "none", roll: float = 0.0,
                 settings: dict[str, Any] | None = None) -> PhantomOptions:
    """Options of case i: reproducible from (seed, i); the degeneration and the roll drawn last, so the rest
    is the same. ``settings``: PhantomOptions fields set on every case, not drawn (the random fractures'
    prevalence, texture, noise, Schmorl's nodes: the phantom draws what they add from its own streams)."""
    rng = np.random.default_rng([seed, i])
    fov = str(rng.choice(list(FOV_WEIGHTS), p=list(FOV_WEIGHTS.values())))
    levels = list(FRACTURE_LEVELS[fov])
    n_fx = int(rng.choice([0, 1, 1, 2]))
    fractures = []
    for k in range(n_fx):
        grade, morph = COMBOS[(2 * i + k) % len(COMBOS)]
        level = str(rng.choice(levels))
        idx = levels.index(level)
        # keep fractured levels apart so every crush has unfractured neighbours
        levels = [lv for j, lv in enumerate(levels) if abs(j - idx) > 1]
        fractures.append(FractureSpec(level, grade, morph))
        if not levels:
            break
    p = PRESETS[preset]
    options = PhantomOptions(
        seed=seed * 1000 + i, fov=fov, fractures=tuple(fractures), **draw_patient(rng),
        feet_first=bool(rng.random() < 0.25), slice_thickness=p["slice_thickness"], pixel_spacing=p["pixel_spacing"],
        matrix=p["matrix"][fov], format="nifti",
        degeneration=str(rng.choice(DEGENERATIONS)) if degeneration == "mixed" else degeneration)
    options = options.with_(**(settings or {}))
    return options.with_(roll=round(float(rng.uniform(-roll, roll)), 1)) if roll else options


def _stale(truth_path: Path, options: PhantomOptions) -> bool:
    """Whether the phantom in a case folder was made with other options or by another rendering (or is
    missing): it is rendered again then, never silently reused. Its series UID says both: it is derived
    from every option that changes the image and from the rendering revision (phantom/generate.py)."""
    if not truth_path.is_file():
        return True
    made = json.loads(truth_path.read_text()).get("series_uid")
    return made != phantom_uids(options).series


def run_case(i: int, seed: int, preset: str, out: Path, regenerate: bool, degeneration: str = "none",
             roll: float = 0.0, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    from screening_node.analysis.pipeline import analyze_path

    options = draw_options(i, seed, preset, degeneration, roll, settings)
    case = out / f"case{i:03d}"
    t0 = time.perf_counter()
    if regenerate or not (case / "ct.nii.gz").is_file() or _stale(case / "truth.json", options):
        generate_phantom(options, case)
    t1 = time.perf_counter()
    # overlapping slices: their thickness, which the NIfTI does not carry, given as a series gives it
    overlapping = options.slice_spacing is not None
    result = analyze_path(case / "ct.nii.gz", case / "result",
                          slice_thickness_mm=options.slice_thickness if overlapping else None)
    t2 = time.perf_counter()
    return {"case": case.name, "options": options.to_dict(), "generate_s": round(t1 - t0, 2),
            "analyze_s": round(t2 - t1, 2), "status": result.status, "reason": result.reason,
            "notes": list(result.notes)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="number of phantoms (default 30)")
    ap.add_argument("--seed", type=int, default=4, help="batch seed (default 4)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="1mm")
    ap.add_argument("--out", type=Path, default=Path("/tmp/phantom_eval"))
    ap.add_argument("--jobs", type=int, default=1, help="processes (the shared machine has 2 cores)")
    ap.add_argument("--degeneration", choices=(*DEGENERATIONS, "mixed"), default="none",
                    help="degenerative change of the phantoms (default none)")
    ap.add_argument("--roll", type=float, default=0.0, metavar="DEGREES",
                    help="each patient lies turned about the long axis by an angle drawn from +-DEGREES (default 0)")
    ap.add_argument("--prevalence", type=float, default=0.0, metavar="P",
                    help="each other T4-L5 level fractured with chance P, beside others too (default 0)")
    ap.add_argument("--texture", type=float, default=0.0, metavar="HU",
                    help="trabecular texture of the bodies' marrow, standard deviation (default 0: flat)")
    ap.add_argument("--noise", type=float, default=None, metavar="HU",
                    help="noise of every case (default: drawn from 6-20 HU)")
    ap.add_argument("--schmorl-nodes", type=float, default=0.0, metavar="P",
                    help="a Schmorl's node at each T6-L5 endplate with chance P (default 0)")
    ap.add_argument("--contrast-phase", choices=CONTRAST_PHASES, default="venous",
                    help="the contrast phase of every case: venous (aorta ~250 HU, default) or arterial (~420 HU)")
    ap.add_argument("--slice-thickness", type=float, default=None, metavar="MM",
                    help="slice thickness (and spacing) of every case instead of the preset's, pixels as the preset's")
    ap.add_argument("--slice-spacing", type=float, default=None, metavar="MM",
                    help="slices this far apart (default: as thick as they are; thinner: overlapping slices)")
    ap.add_argument("--plane", choices=PLANES, default="axial",
                    help="axial slices (default) or a sagittal reformat of thin slices, --slice-thickness across")
    ap.add_argument("--regenerate", action="store_true", help="render phantoms again even if present")
    ap.add_argument("--json", action="store_true", help="print report.json instead of the table")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    settings = {field: value for field, value in (("fracture_prevalence", args.prevalence), ("texture", args.texture),
                                                  ("noise", args.noise), ("schmorl_nodes", args.schmorl_nodes),
                                                  ("contrast_phase", args.contrast_phase),
                                                  ("slice_thickness", args.slice_thickness),
                                                  ("slice_spacing", args.slice_spacing),
                                                  ("plane", args.plane))
                if value is not None}  # a 0 is each option's default: the same phantoms as without it
    jobs = [(i, args.seed, args.preset, args.out, args.regenerate, args.degeneration, args.roll, settings)
            for i in range(args.n)]
    cases = []
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for c in pool.map(run_case, *zip(*jobs)):  # in order, printed as each finishes
            cases.append(c)
            print(f"{c['case']}: {c['options']['fov']:<10} fx {','.join(c['options']['fractures']) or '-':<26} "
                  f"{c['status']:<14} generate {c['generate_s']:6.1f} s analyse {c['analyze_s']:5.1f} s",
                  file=sys.stderr, flush=True)
    report = evaluate_pairs([(args.out / c["case"] / "result", args.out / c["case"]) for c in cases],
                            [c["case"] for c in cases])
    report["batch"] = {"n": args.n, "seed": args.seed, "preset": args.preset, "degeneration": args.degeneration,
                       "roll": args.roll, "prevalence": args.prevalence, "texture": args.texture,
                       "noise": args.noise, "schmorl_nodes": args.schmorl_nodes, "contrast_phase": args.contrast_phase,
                       "slice_thickness": args.slice_thickness or PRESETS[args.preset]["slice_thickness"],
                       "slice_spacing": args.slice_spacing,
                       "plane": args.plane,
                       "wall_s": round(time.perf_counter() - t0, 1),
                       "median_analyze_s": float(np.median([c["analyze_s"] for c in cases]))}
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    (args.out / "cases.json").write_text(json.dumps(cases, indent=1))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "per_vertebra"}, indent=1))
    else:
        print(format_report(report))
        print(f"batch: {report['batch']}")
        misses = [f"{v['case']}:{v['label']}" for v in report["per_vertebra"] if not v["identified"]]
        print(f"not identified ({len(misses)}): {' '.join(misses[:40])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
