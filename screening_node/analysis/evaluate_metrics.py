"""Compare analysis results with truth: the literature's metrics, for one case or a batch.

Per truth vertebra (visible ones only) we record one `Match`; every metric is computed from the
pooled matches, so a batch is just more matches.

* identification (VerSe / Sekuboyina et al.): a prediction with the SAME label whose body centre
  lies within `IDENTIFICATION_MM` of the truth body centre. For mask truth the body centre is
  estimated (see evaluate_truth); the rate against the whole-vertebra mask centroid is reported too.
* localisation error (mm) by region: distance between truth and the same-label prediction (for
  vertebrae whose label was predicted); detection error: distance to the nearest predicted body,
  label ignored (separates finding bodies from naming them).
* height MAE: |h_pred - h_true| over anterior/middle/posterior of identified, assessable bodies;
  against a peer's heights separately where the truth carries them (TotalSegmentator's report).
* grades: confusion matrix (truth rows 0-3, predicted columns 0-3 and "not graded"), exact
  agreement, sensitivity / specificity for grade >= 2 where truth grade 1 is left out of the
  negatives (Zakharov et al.). Bodies the engine did not grade are excluded from these and counted
  as `unassessed_positives` / `unassessed_negatives` so the coverage stays visible.
* patient level: worst truth grade vs `StudyResult.max_grade`, same >= 2 rule, over reported
  studies (not-assessable studies are counted apart).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from screening_node.analysis.evaluate_truth import HEIGHT_NAMES, Truth, TruthVertebra, load_truth
from screening_node.analysis.results import GRADED_LEVELS, StudyResult, Vertebra

IDENTIFICATION_MM = 20.0  # the usual rule: right label and within 20 mm of the truth centroid
POSITIVE_GRADE = 2  # moderate or worse counts as a fracture for sensitivity / specificity
REGIONS = {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}


@dataclass(frozen=True)
class Match:
    case: str
    label: str
    region: str
    identified: bool
    identified_vs_vertebra_centroid: bool | None  # mask truth only
    label_distance_mm: float | None  # to the prediction carrying the same label
    nearest_distance_mm: float | None  # to the nearest prediction, any label
    height_errors_mm: dict[str, float] | None  # predicted - truth
    peer_height_errors_mm: dict[str, float] | None  # predicted - peer
    keypoint_error_mm: float | None  # mean distance of the six keypoints
    truth_grade: int | None
    pred_grade: int | None  # None: not graded (no identified, assessable prediction)
    truth_loss: float | None
    pred_loss: float | None
    pred_grade_range: tuple[int, int] | None = None  # the grades the loss's sampling spread spans


@dataclass(frozen=True)
class CaseOutcome:
    case: str
    status: str
    truth_max_grade: int | None
    pred_max_grade: int | None
    predicted: int  # vertebrae in the result
    truth_visible: int
    graded_without_level: int = 0  # graded bodies no anchor named (label null): matched to no truth vertebra


def region_of(label: str) -> str:
    return REGIONS.get(label[:1], "other")


def _dist(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))


def _same_label(result: StudyResult, label: str, centre: Sequence[float]) -> Vertebra | None:
    candidates = [v for v in result.vertebrae if v.label == label]
    return min(candidates, key=lambda v: _dist(v.centroid_lps_mm, centre)) if candidates else None


def match_vertebra(case: str, tv: TruthVertebra, result: StudyResult, truth: Truth) -> Match:
    pred = _same_label(result, tv.label, tv.centroid_lps_mm)
    label_d = _dist(pred.centroid_lps_mm, tv.centroid_lps_mm) if pred else None
    identified = label_d is not None and label_d <= IDENTIFICATION_MM
    vs_whole = None
    if tv.vertebra_centroid_lps_mm is not None:
        vs_whole = pred is not None and _dist(pred.centroid_lps_mm, tv.vertebra_centroid_lps_mm) <= IDENTIFICATION_MM
    nearest = min((_dist(v.centroid_lps_mm, tv.centroid_lps_mm) for v in result.vertebrae), default=None)
    usable = pred if identified and pred is not None and pred.assessable else None
    h_err = peer_err = None
    kp_err = None
    if usable is not None and usable.heights_mm:
        if tv.heights_mm:
            h_err = {k: usable.heights_mm[k] - tv.heights_mm[k] for k in HEIGHT_NAMES}
        peer = truth.peer_heights.get(tv.label)
        if peer:
            peer_err = {k: usable.heights_mm[k] - peer[k] for k in HEIGHT_NAMES}
        if tv.keypoints_lps_mm and usable.keypoints_lps_mm:
            kp_err = float(np.mean([_dist(usable.keypoints_lps_mm[k], p) for k, p in tv.keypoints_lps_mm.items()]))
    graded = tv.grade is not None and tv.label in GRADED_LEVELS
    pred_grade = usable.grade if usable is not None and graded else None
    return Match(case=case, label=tv.label, region=region_of(tv.label), identified=identified,
                 identified_vs_vertebra_centroid=vs_whole, label_distance_mm=label_d, nearest_distance_mm=nearest,
                 height_errors_mm=h_err, peer_height_errors_mm=peer_err, keypoint_error_mm=kp_err,
                 truth_grade=tv.grade if graded else None, pred_grade=pred_grade,
                 truth_loss=tv.height_loss, pred_loss=usable.height_loss if usable is not None else None,
                 pred_grade_range=usable.grade_range if usable is not None and graded else None)


def nearest_truth(result: StudyResult, truth: Truth) -> list[tuple[Vertebra, TruthVertebra, float]]:
    """Each labelled prediction beside the visible truth body nearest its centre, and their distance (mm).

    Identification looks the other way (from each truth body to the prediction carrying its label), and a
    label one level off on small bodies (~20 mm apart) can still lie within IDENTIFICATION_MM of its truth
    body; the nearest truth body of a prediction then has another level (benchmarks/transitional.py)."""
    visible = [tv for tv in truth.vertebrae if tv.visible]
    pairs = []
    for v in result.vertebrae:
        if v.label is None or not visible:
            continue
        tv = min(visible, key=lambda t: _dist(t.centroid_lps_mm, v.centroid_lps_mm))
        pairs.append((v, tv, _dist(tv.centroid_lps_mm, v.centroid_lps_mm)))
    return pairs


def compare(result: StudyResult, truth: Truth, case: str = "") -> tuple[list[Match], CaseOutcome]:
    """Match every visible truth vertebra of one case."""
    visible = [tv for tv in truth.vertebrae if tv.visible]
    matches = [match_vertebra(case, tv, result, truth) for tv in visible]
    truth_grades = [tv.grade for tv in visible if tv.grade is not None and tv.label in GRADED_LEVELS]
    outcome = CaseOutcome(case=case, status=result.status, truth_max_grade=max(truth_grades) if truth_grades else None,
                          pred_max_grade=result.max_grade, predicted=len(result.vertebrae), truth_visible=len(visible),
                          graded_without_level=sum(1 for v in result.vertebrae if v.label is None and v.grade is not None))
    return matches, outcome


def _stats(values: Iterable[float]) -> dict[str, Any]:
    v = np.asarray(list(values), float)
    if v.size == 0:
        return {"n": 0, "mean": None, "median": None, "max": None}
    return {"n": int(v.size), "mean": round(float(v.mean()), 3), "median": round(float(np.median(v)), 3),
            "max": round(float(v.max()), 3)}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _binary(pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Sensitivity / specificity for grade >= 2 from (truth, predicted) pairs; truth 1 left out."""
    tp = sum(1 for t, p in pairs if t >= POSITIVE_GRADE and p >= POSITIVE_GRADE)
    fn = sum(1 for t, p in pairs if t >= POSITIVE_GRADE and p < POSITIVE_GRADE)
    tn = sum(1 for t, p in pairs if t == 0 and p < POSITIVE_GRADE)
    fp = sum(1 for t, p in pairs if t == 0 and p >= POSITIVE_GRADE)
    return {"tp": tp, "fn": fn, "tn": tn, "fp": fp, "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp), "excluded_truth_grade1": sum(1 for t, _ in pairs if t == 1)}


def _mae(errors: Sequence[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n_vertebrae": len(errors)}
    if not errors:
        return {**out, "all": None, **{k: None for k in HEIGHT_NAMES}}
    out["all"] = round(float(np.mean([abs(e[k]) for e in errors for k in HEIGHT_NAMES])), 3)
    for k in HEIGHT_NAMES:
        out[k] = round(float(np.mean([abs(e[k]) for e in errors])), 3)
    return out


def summarize(matches: Sequence[Match], outcomes: Sequence[CaseOutcome]) -> dict[str, Any]:
    """Every metric from pooled matches (one case or a batch)."""
    n = len(matches)
    identified = sum(m.identified for m in matches)
    whole = [m.identified_vs_vertebra_centroid for m in matches if m.identified_vs_vertebra_centroid is not None]
    order = list(REGIONS.values())
    regions = sorted({m.region for m in matches}, key=lambda r: order.index(r) if r in order else len(order))
    localisation = {r: _stats(m.label_distance_mm for m in matches if m.region == r and m.label_distance_mm is not None)
                    for r in regions}
    localisation["all"] = _stats(m.label_distance_mm for m in matches if m.label_distance_mm is not None)
    detection = _stats(m.nearest_distance_mm for m in matches if m.nearest_distance_mm is not None)
    graded = [m for m in matches if m.truth_grade is not None]
    confusion = [[0] * 4 for _ in range(4)]
    not_graded = [0] * 4
    for m in graded:
        t = min(max(int(m.truth_grade), 0), 3)  # type: ignore[arg-type]
        if m.pred_grade is None:
            not_graded[t] += 1
        else:
            confusion[t][min(max(int(m.pred_grade), 0), 3)] += 1
    pairs = [(int(m.truth_grade), int(m.pred_grade)) for m in graded if m.pred_grade is not None]  # type: ignore[arg-type]
    binary = _binary(pairs)
    binary["unassessed_positives"] = sum(1 for m in graded if m.pred_grade is None and m.truth_grade >= POSITIVE_GRADE)  # type: ignore[operator]
    binary["unassessed_negatives"] = sum(1 for m in graded if m.pred_grade is None and m.truth_grade == 0)
    # Patient level: a study the engine declared not assessable is neither positive nor negative.
    patient_pairs = [(int(o.truth_max_grade), int(o.pred_max_grade or 0))
                     for o in outcomes if o.truth_max_grade is not None and o.status == "reported"]
    loss_err = [abs(m.pred_loss - m.truth_loss) for m in matches
                if m.pred_loss is not None and m.truth_loss is not None and m.truth_grade is not None]
    return {
        "cases": len(outcomes),
        "cases_not_assessable": sum(1 for o in outcomes if o.status != "reported"),
        "vertebrae": n,
        "identified": identified,
        "identification_rate": _ratio(identified, n),
        "identification_rate_vs_vertebra_centroid": _ratio(sum(bool(w) for w in whole), len(whole)) if whole else None,
        "localisation_mm": localisation,
        "detection_mm": detection,
        "height_mae_mm": _mae([m.height_errors_mm for m in matches if m.height_errors_mm]),
        "peer_height_mae_mm": _mae([m.peer_height_errors_mm for m in matches if m.peer_height_errors_mm]),
        "keypoint_error_mm": _stats(m.keypoint_error_mm for m in matches if m.keypoint_error_mm is not None),
        "height_loss_mae": round(float(np.mean(loss_err)), 4) if loss_err else None,
        "grades": {"confusion_truth_rows_pred_cols": confusion, "not_graded_by_truth_grade": not_graded,
                   "n_graded": len(pairs), "n_truth_graded": len(graded),
                   "exact_agreement": _ratio(sum(1 for t, p in pairs if t == p), len(pairs))},
        "grade_ge2": binary,
        "grade_range": _grade_range_coverage([m for m in graded if m.pred_grade is not None]),
        "graded_without_level": sum(o.graded_without_level for o in outcomes),
        "patients": {**_binary(patient_pairs), "not_assessable_with_truth_fracture": sum(
            1 for o in outcomes if o.status != "reported" and (o.truth_max_grade or 0) >= POSITIVE_GRADE)},
    }


def _grade_range_coverage(graded: list[Match]) -> dict[str, Any]:
    """How the grade ranges (analysis/uncertainty.py) stand against the truth: how often a range spans more
    than one grade, holds the truth grade, and how many of the wrong grades it flagged and held."""
    ranged = [m for m in graded if m.pred_grade_range is not None]
    wrong = [m for m in ranged if m.pred_grade != m.truth_grade]

    def holds(m: Match) -> bool:
        return m.pred_grade_range[0] <= m.truth_grade <= m.pred_grade_range[1]  # type: ignore[index,operator]

    def spans(m: Match) -> bool:
        return m.pred_grade_range[0] != m.pred_grade_range[1]  # type: ignore[index]

    def crosses_positive(m: Match) -> bool:  # the range holds grades on both sides of the fracture line (>= 2)
        return m.pred_grade_range[0] < POSITIVE_GRADE <= m.pred_grade_range[1]  # type: ignore[index]

    return {"n": len(ranged), "spanning_more_than_one": sum(spans(m) for m in ranged),
            "crossing_grade2": sum(crosses_positive(m) for m in ranged),
            "holding_truth": sum(holds(m) for m in ranged), "wrong": len(wrong),
            "wrong_spanning": sum(spans(m) for m in wrong), "wrong_holding_truth": sum(holds(m) for m in wrong)}


def find_pairs(pairs_dir: Path) -> list[tuple[Path, Path, str]]:
    """(results, truth, case name) for every subfolder of pairs_dir holding both (results may be in result/)."""
    found = []
    for sub in sorted(p for p in Path(pairs_dir).iterdir() if p.is_dir()):
        truth = sub / "truth.json"
        for res in (sub / "results.json", sub / "result" / "results.json"):
            if res.is_file() and truth.is_file():
                found.append((res, truth, sub.name))
                break
    return found


def evaluate_pairs(pairs: Sequence[tuple[Path, Path]], names: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate (results.json, truth.json) pairs; paths may be the folders holding them."""
    matches: list[Match] = []
    outcomes: list[CaseOutcome] = []
    for i, (res_path, truth_path) in enumerate(pairs):
        res_path = Path(res_path)
        if res_path.is_dir():
            res_path = res_path / "results.json"
        case = names[i] if names else res_path.parent.name
        m, o = compare(StudyResult.read(res_path), load_truth(truth_path), case)
        matches.extend(m)
        outcomes.append(o)
    report = summarize(matches, outcomes)
    report["per_case"] = [asdict(o) for o in outcomes]
    report["per_vertebra"] = [_clean(asdict(m)) for m in matches]
    return report


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Round floats for a readable JSON report."""
    def r(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 3)
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        return v
    return {k: r(v) for k, v in d.items()}


def _f(value: Any, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def format_report(report: dict[str, Any]) -> str:
    """A summary a person reads at a glance (per-vertebra rows when there is one case)."""
    lines = [f"cases {report['cases']} (not assessable {report['cases_not_assessable']}), "
             f"truth vertebrae {report['vertebrae']}",
             f"identification rate      {_f(report['identification_rate'], '{:.3f}')} "
             f"({report['identified']}/{report['vertebrae']}; right label within 20 mm of the body centre)"]
    if report["identification_rate_vs_vertebra_centroid"] is not None:
        lines.append(f"  vs whole-vertebra mask centroid {_f(report['identification_rate_vs_vertebra_centroid'], '{:.3f}')}")
    for region, s in report["localisation_mm"].items():
        lines.append(f"localisation {region:<9} n={s['n']:<4} mean {_f(s['mean'])} median {_f(s['median'])} "
                     f"max {_f(s['max'])} mm")
    d = report["detection_mm"]
    lines.append(f"detection (any label)    n={d['n']:<4} mean {_f(d['mean'])} max {_f(d['max'])} mm")
    for key, title in (("height_mae_mm", "height MAE vs truth"), ("peer_height_mae_mm", "height MAE vs peer")):
        h = report[key]
        if h["n_vertebrae"]:
            lines.append(f"{title:<24} {_f(h['all'])} mm (a {_f(h['anterior'])} m {_f(h['middle'])} "
                         f"p {_f(h['posterior'])}; {h['n_vertebrae']} bodies)")
    k = report["keypoint_error_mm"]
    if k["n"]:
        lines.append(f"keypoint error           mean {_f(k['mean'])} max {_f(k['max'])} mm")
    g = report["grades"]
    lines.append(f"grade exact agreement    {_f(g['exact_agreement'], '{:.3f}')} ({g['n_graded']} graded of "
                 f"{g['n_truth_graded']} with a truth grade)")
    lines.append("confusion (rows truth 0-3, cols predicted 0 1 2 3 | not graded)")
    for t, row in enumerate(g["confusion_truth_rows_pred_cols"]):
        lines.append(f"  {t}: " + " ".join(f"{c:4d}" for c in row) + f" | {g['not_graded_by_truth_grade'][t]:4d}")
    b = report["grade_ge2"]
    lines.append(f"grade >= 2 sensitivity {_f(b['sensitivity'], '{:.3f}')} specificity {_f(b['specificity'], '{:.3f}')}"
                 f" (tp {b['tp']} fn {b['fn']} tn {b['tn']} fp {b['fp']}; truth grade 1 left out: "
                 f"{b['excluded_truth_grade1']}; not graded positives {b['unassessed_positives']})")
    r = report.get("grade_range") or {}
    if r.get("n"):
        lines.append(f"grade ranges (sampling)  span more than one grade {r['spanning_more_than_one']}/{r['n']} "
                     f"(across the grade 2 line {r['crossing_grade2']}), hold "
                     f"the truth grade {r['holding_truth']}/{r['n']}; wrong grades flagged {r['wrong_spanning']}/"
                     f"{r['wrong']}, truth within their range {r['wrong_holding_truth']}/{r['wrong']}")
    if report.get("graded_without_level"):
        lines.append(f"graded without a level   {report['graded_without_level']} bodies (no labelling anchor: matched to "
                     "no truth vertebra above; their grades count at the patient level)")
    p = report["patients"]
    if p["tp"] + p["fn"] + p["tn"] + p["fp"]:
        lines.append(f"patients >= 2 sensitivity {_f(p['sensitivity'], '{:.3f}')} specificity "
                     f"{_f(p['specificity'], '{:.3f}')} (tp {p['tp']} fn {p['fn']} tn {p['tn']} fp {p['fp']})")
    if report["cases"] == 1:
        lines.append("")
        lines.append(f"{'label':<6}{'id':<4}{'dist':>7}{'dA':>7}{'dM':>7}{'dP':>7}{'grade t/p':>11}")
        for v in report["per_vertebra"]:
            h = v["height_errors_mm"] or v["peer_height_errors_mm"] or {}
            lines.append(f"{v['label']:<6}{'yes' if v['identified'] else 'NO':<4}"
                         f"{_f(v['label_distance_mm'], '{:7.1f}'):>7}"
                         + "".join(f"{_f(h.get(n), '{:+7.1f}'):>7}" for n in ("anterior", "middle", "posterior"))
                         + f"{_f(v['truth_grade'], '{}')}/{_f(v['pred_grade'], '{}')}".rjust(11))
    return "\n".join(lines)
