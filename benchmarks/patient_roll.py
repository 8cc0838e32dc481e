"""Does a scan read the same when the patient lies rolled? A real scan turned about the long axis.

Patients do not always lie square on the table (pain, kyphosis, a pillow under one side), and a
scoliotic column turns its vertebrae as it bends. Here each real scan is turned about the patient's
long (S) axis through the middle of its field, in the sense of the phantom's --roll (positive: the back
towards the patient's right; phantom/roll.py rolled_image, B-spline resampling on its own grid: the anatomy
turns, the slices stay axial), analysed again, and compared body by body with the unturned analysis: labels,
grades, bodies measured, and every height that moved by more than --tolerance mm. A turned body's
centre is mapped back into the unturned scan and matched to the unturned body within 12 mm.

    .venv/bin/python benchmarks/patient_roll.py [--cases tcia-pancreas-ct-cb-001 ts-example-abdomen ...]
        [--degrees -30 -20 -10 10 20 30] [--tolerance 2.0]

One row per turn: bodies matched, labels right / wrong, grades equal / changed, measured (turned / unturned),
the estimated roll the planes were turned by (about the long axis, in the sense of --roll; none: under
thresholds.ROLL_MIN_DEG), and the heights moved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from screening_node.analysis import thresholds as T
from screening_node.analysis.centreline import find_centreline
from screening_node.analysis.pipeline import analyze_volume
from screening_node.analysis.results import Vertebra
from screening_node.analysis.stages import ANALYTIC
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume
from screening_node.phantom.roll import rolled_image

DATA = Path(__file__).resolve().parents[2] / "shared/data"
CASES = {"tcia-pancreas-ct-cb-001": "", "ts-example-abdomen": "ct.nii.gz", "verse19-007": "ct.nii.gz"}
MATCH_MM = 12.0


def estimated_roll(image: sitk.Image) -> str:
    """The largest roll (degrees) the analysis turns its planes by on this image, or 'none'."""
    line = find_centreline(image)
    st = ANALYTIC.straighten(image, line.points_lps, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM)
    angles = ANALYTIC.roll(st)
    if angles is None:
        return "none"
    largest = float(np.degrees(angles[np.argmax(np.abs(angles))]))
    return f"{largest:+.0f}" if abs(largest) >= T.ROLL_MIN_DEG else f"none ({largest:+.0f})"


def comparison_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line every real-case comparison takes (--cases, --tolerance); each adds its own variants."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--tolerance", type=float, default=2.0)
    return ap


def data_missing() -> bool:
    """Whether ../shared/data is absent (said on stderr): the comparisons then have nothing to read."""
    if DATA.exists():
        return False
    print(f"{DATA} not found (../shared/data is not checked out here)", file=sys.stderr)
    return True


def reading_line(case: str, native: list[Vertebra]) -> str:
    """The case's labels and grades as it came: the head of its block of comparisons."""
    return f"{case}: " + " ".join(f"{v.label or '?'}:{v.grade}" for v in native)


def as_it_came(case: str) -> tuple[sitk.Image, list[Vertebra]]:
    """A real case's image (LPS) and its bodies read as the scan came, the peer every variant is compared with
    (this benchmark's turns, real_noise.py's noise, grid_phase.py's crops and shifts)."""
    image = as_lps(load_volume(DATA / case / CASES.get(case, "")).image)
    return image, list(analyze_volume(image, None).vertebrae)


def compare(native: list[Vertebra], turned: list[Vertebra], back: sitk.Euler3DTransform,
            tolerance: float) -> tuple[dict[str, int], list[str]]:
    """Counts and the notable changes of the turned analysis against the native one.

    ``fracture_raised`` and ``fracture_lost`` count the grade changes that cross the screening decision (grade
    2, a moderate fracture, the node's positive): a body read >= 2 that was read below 2 or not graded, and
    one read >= 2 before that now reads below 2 or is not graded. The first is a false alarm, the second a
    fracture the reader is no longer told of. ``raised_announced`` and ``lost_announced`` count those the first
    reading's grade range had announced: it reached 2 (for a false alarm) or below 2 (for a loss), so a reader
    told "grade 1 (1-2)" or "grade 2 (1-2)" knew the body lay near the line.
    """
    counts = dict(matched=0, right=0, wrong=0, same_grade=0, changed_grade=0, changed_in_range=0, measured=0,
                  fracture_raised=0, fracture_lost=0, raised_announced=0, lost_announced=0)
    changes = []
    for v in turned:
        centre = np.array(back.TransformPoint(v.centroid_lps_mm))
        other = min(native, key=lambda n: float(np.linalg.norm(np.subtract(n.centroid_lps_mm, centre))))
        if float(np.linalg.norm(np.subtract(other.centroid_lps_mm, centre))) > MATCH_MM:
            changes.append(f"{v.label or '?'}[-]")
            continue
        counts["matched"] += 1
        counts["right"] += v.label == other.label and v.label is not None
        counts["wrong"] += v.label != other.label and v.label is not None
        counts["measured"] += v.heights_mm is not None
        if other.grade is not None or v.grade is not None:
            same = other.grade == v.grade
            counts["same_grade" if same else "changed_grade"] += 1
            if not same:
                # the new grade lies within the grades the first reading's sampling spread spans
                in_range = other.grade_range is not None and v.grade is not None \
                    and other.grade_range[0] <= v.grade <= other.grade_range[1]
                counts["changed_in_range"] += in_range
                was, now = _positive(other.grade), _positive(v.grade)
                raised, lost = now and not was, was and not now
                counts["fracture_raised"] += raised
                counts["fracture_lost"] += lost
                if other.grade_range is not None:  # did the first reading's range reach across the line?
                    counts["raised_announced"] += raised and _positive(other.grade_range[1])
                    counts["lost_announced"] += lost and not _positive(other.grade_range[0])
                changes.append(f"{other.label} grade {other.grade}->{v.grade}" + (" (in range)" if in_range else ""))
        if v.heights_mm and other.heights_mm:
            moved = {k: v.heights_mm[k] - other.heights_mm[k] for k in v.heights_mm}
            if max(abs(d) for d in moved.values()) > tolerance:
                changes.append(f"{other.label} " + "/".join(f"{d:+.1f}" for d in moved.values()))
        elif other.heights_mm and not v.heights_mm:
            changes.append(f"{other.label} unmeasured ({(v.reason or '')[:40]})")
    return counts, changes


def _positive(grade: int | None) -> bool:
    """Whether a grade is the screening's positive: a moderate or severe fracture (Genant 2 or 3)."""
    return grade is not None and grade >= 2


def fracture_line(counts: dict[str, int]) -> str:
    """The grade changes across the screening decision, for a comparison row: raised (false alarms) and lost."""
    return (f"fracture line +{counts['fracture_raised']} -{counts['fracture_lost']} "
            f"(in range +{counts['raised_announced']} -{counts['lost_announced']})")


def fracture_summary(rows: list[dict[str, int]]) -> str:
    """The grade changes across the screening decision summed over a case's comparison rows."""
    def total(key: str) -> int:
        return sum(c[key] for c in rows)

    return (f"across the fracture line (grade 2): false alarms {total('fracture_raised')} "
            f"({total('raised_announced')} within the first reading's grade range), "
            f"fractures lost {total('fracture_lost')} ({total('lost_announced')} within it)")


def main() -> int:
    ap = comparison_parser(__doc__)
    ap.add_argument("--degrees", nargs="+", type=float, default=[-30, -20, -10, 10, 20, 30])
    args = ap.parse_args()
    if data_missing():
        return 2
    for case in args.cases:
        image, native = as_it_came(case)
        print(reading_line(case, native) + f"  (roll {estimated_roll(image)})")
        measured = sum(v.heights_mm is not None for v in native)
        rows = []
        for degrees in args.degrees:
            turned_image, back = rolled_image(image, degrees)
            turned = list(analyze_volume(turned_image, None).vertebrae)
            c, changes = compare(native, turned, back, args.tolerance)
            print(f"  {degrees:+4.0f} deg  matched {c['matched']:2d}  labels right {c['right']:2d} wrong {c['wrong']:2d}"
                  f"  grades same {c['same_grade']:2d} changed {c['changed_grade']:2d}"
                  f"  measured {c['measured']:2d}/{measured:2d}  {fracture_line(c)}"
                  f"  roll {estimated_roll(turned_image):>10s} | " + " ".join(changes), flush=True)
            rows.append(c)
        print(f"  all {len(rows)}: {fracture_summary(rows)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
