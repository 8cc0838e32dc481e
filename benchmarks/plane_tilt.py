"""How far the straightened planes lie off each phantom body's own axis, by distance from the field's ends.

A body is measured on the planes square to the curve; where the curve crosses it obliquely its columns cross
its endplates and its heights come out wrong. The phantom's truth gives each vertebra's local frame; this
straightens each case of a phantom batch as the analysis does (`pipeline.measured_spine`) and, for every
body in view, reads the angle between the curve's tangent at the row nearest the body's centre and the
body's own axis, in the body's sagittal plane. Bodies are grouped by how far they lie from the field's ends
(0: the first or last body in view), since the curve's direction there comes from the coarse path unless
the outermost bodies turn it (`body_centre.end_curves`).

    .venv/bin/python benchmarks/phantom_eval.py --preset fast --seed 4 --n 30 --jobs 2 --out DIR
    .venv/bin/python benchmarks/plane_tilt.py DIR [--cases 30]

Prints one row per body (case, level, place from the end, degrees) and, per place, the median, the 90th
percentile and the share more than 10 degrees off.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from screening_node.analysis.pipeline import load_for_analysis, measured_spine
from screening_node.analysis.stages import get_engine
from screening_node.imaging.geometry import as_lps

NEAR_MM = 15.0  # a body whose centre lies further than this from the curve is not on it (a cut or missed end)


def body_tilts(case: Path) -> list[tuple[str, int, float]]:
    """(level, place from the nearer field end, degrees off in the sagittal plane) per body in view on the curve."""
    engine = get_engine("analytic")
    image, _ = engine.blood(as_lps(load_for_analysis(case / "ct.nii.gz").image))
    truth = json.loads((case / "truth.json").read_text())
    st, _ = measured_spine(engine, image)
    in_view = [v for v in truth["vertebrae"] if v["visible"]]
    out = []
    for i, v in enumerate(in_view):
        centre = np.array(v["centroid_lps_mm"])
        row = int(np.argmin(np.linalg.norm(st.points - centre, axis=1)))
        if np.linalg.norm(st.points[row] - centre) > NEAR_MM:
            continue
        axis, front_back = np.array(v["local_frame_lps"][2]), np.array(v["local_frame_lps"][1])
        tangent = st.tangents[row] * (1.0 if st.tangents[row] @ axis > 0 else -1.0)
        out.append((v["label"], min(i, len(in_view) - 1 - i), float(np.degrees(np.arcsin(float(tangent @ front_back))))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batch", type=Path, help="a phantom_eval.py --out folder (case000, case001, ...)")
    ap.add_argument("--cases", type=int, default=30)
    args = ap.parse_args()
    places: list[tuple[int, float]] = []
    for case in sorted(args.batch.glob("case*"))[:args.cases]:
        for label, place, degrees in body_tilts(case):
            print(f"{case.name} {label:4s} {place} {degrees:6.1f}", flush=True)
            places.append((place, abs(degrees)))
    table = np.array(places)
    for place in range(4):
        chosen = table[table[:, 0] == place, 1] if place < 3 else table[table[:, 0] >= 3, 1]
        if chosen.size:
            print(f"place {place}{'+' if place == 3 else ' '}: {chosen.size:4d} bodies, median {np.median(chosen):4.1f}, "
                  f"90th percentile {np.percentile(chosen, 90):4.1f}, more than 10 degrees {np.mean(chosen > 10):.2f}")


if __name__ == "__main__":
    main()
