"""Level labels from anatomy: ribs (lowest rib-bearing vertebra = T12) and the sacrum (S1, L5 above it).

Evidence is read on the straightened volume (row, ap, lat), which reaches
thresholds.LABEL_HALF_LAT_MM to each side. When the anchors disagree, or none is in the field of
view, the notes say so and the confidence drops; labels are never guessed silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.results import LEVELS
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding


@dataclass(frozen=True)
class Labelling:
    labels: list[str | None]
    confidence: float
    notes: list[str]
    evidence: list[dict[str, float]]


def _band_fraction(st: Straightened, body: BodyFinding, band: tuple[float, float], ap: tuple[float, float],
                   hu: float) -> tuple[float, float]:
    """Fraction of voxels above hu in a lateral band on each side (left of S, right of S)."""
    v = st.volume
    r0 = int(body.top_disc if body.top_disc is not None else body.centre_row - 10)
    r1 = int(body.bottom_disc if body.bottom_disc is not None else body.centre_row + 10)
    r0, r1 = max(0, r0), min(v.shape[0], r1 + 1)
    a0 = max(0, int(st.half_ap + ap[0]))
    a1 = min(v.shape[1], int(st.half_ap + ap[1]) + 1)
    out = []
    for sign in (-1, 1):
        lo, hi = sorted((st.half_lat + sign * band[0], st.half_lat + sign * band[1]))
        lo, hi = max(0, int(lo)), min(v.shape[2], int(hi) + 1)
        block = v[r0:r1, a0:a1, lo:hi]
        out.append(float((block > hu).mean()) if block.size else 0.0)
    return out[0], out[1]


def _ala_fraction(st: Straightened, body: BodyFinding) -> float:
    """Fraction of the body's rows where bone at the body's depth reaches ALA_REACH_MM on both sides."""
    v = st.volume
    r0 = int(body.top_disc if body.top_disc is not None else body.centre_row - 10)
    r1 = int(body.bottom_disc if body.bottom_disc is not None else body.centre_row + 10)
    r0, r1 = max(0, r0 + 3), min(v.shape[0], r1 - 2)
    if r1 <= r0:
        return 0.0
    a = int(st.half_ap + np.mean(body.ap_range))
    band = v[r0:r1, max(0, a - 6):a + 7, :].mean(axis=1)  # (rows, lat)
    core = float(np.median(band[:, st.half_lat - 5:st.half_lat + 6]))
    thr = max(80.0, 0.6 * core + 0.4 * 30.0)  # between the body's own bone and soft tissue (~30 HU)
    reach = int(T.ALA_REACH_MM)
    hits = 0
    for prof in band > thr:
        lab, _ = ndimage.label(prof)
        c = lab[st.half_lat]
        if c and lab[max(0, st.half_lat - reach)] == c and lab[min(len(prof) - 1, st.half_lat + reach)] == c:
            hits += 1
    return hits / (r1 - r0)


def label_bodies(st: Straightened, bodies: list[BodyFinding]) -> Labelling:
    """Assign levels to bodies ordered cranial -> caudal."""
    n = len(bodies)
    evidence = []
    rib = []
    pelvis = []
    for b in bodies:
        mid = np.mean(b.ap_range)
        rl, rr = _band_fraction(st, b, T.RIB_LAT_BAND_MM, (mid - 10, mid + 50), T.RIB_HU)
        ala = _ala_fraction(st, b)
        evidence.append({"rib_left": round(rl, 3), "rib_right": round(rr, 3), "ala": round(ala, 3)})
        rib.append(min(rl, rr) >= T.RIB_MIN_FRACTION or (max(rl, rr) >= 2 * T.RIB_MIN_FRACTION))
        pelvis.append(ala >= T.ALA_MIN_ROW_FRACTION)
    notes: list[str] = []
    # S1: the most cranial body with sacral alae / ilia on both sides, below a run of bodies without.
    s1 = next((i for i in range(1, n) if pelvis[i] and not pelvis[i - 1]), None)
    if s1 is None and n and pelvis[0] and all(pelvis):
        notes.append("only sacral levels in view")
    # T12: last body of the first run of rib-bearing bodies, provided a rib-free body follows.
    t12 = None
    for i in range(n - 1):
        if rib[i] and not rib[i + 1] and (s1 is None or i < s1):
            t12 = i
            break
    idx_l5 = LEVELS.index("L5")
    idx_t12 = LEVELS.index("T12")
    if s1 is not None and t12 is not None:
        lumbar = s1 - t12 - 1
        if lumbar == T.LUMBAR_COUNT:
            anchor, anchor_level, conf = s1 - 1, idx_l5, 0.95
        else:
            notes.append(f"labelling conflict: {lumbar} rib-free vertebrae between the last rib-bearing one and "
                         f"the sacrum (expected {T.LUMBAR_COUNT}); labels counted up from the sacrum")
            anchor, anchor_level, conf = s1 - 1, idx_l5, 0.5
    elif s1 is not None:
        anchor, anchor_level, conf = s1 - 1, idx_l5, 0.8
        notes.append("labels counted up from the sacrum; no rib-bearing vertebra with a rib-free one below in view")
    elif t12 is not None:
        anchor, anchor_level, conf = t12, idx_t12, 0.75
        notes.append("labels counted from the lowest rib-bearing vertebra (T12); sacrum not in view")
    else:
        notes.append("no labelling anchor (no sacrum, no rib-bearing/rib-free transition) in the field of view; "
                     "levels are not labelled")
        return Labelling([None] * n, 0.0, notes, evidence)
    # Counting uses the usual 24 presacral levels: T13 / L6 are never produced by counting.
    labels = _skip_supernumerary(anchor_level, anchor, n, s1)
    return Labelling(labels, conf, notes, evidence)


def _skip_supernumerary(anchor_level: int, anchor: int, n: int, s1: int | None) -> list[str | None]:
    """Count levels from the anchor over the usual 24 presacral levels (no T13, no L6)."""
    usual = [lv for lv in LEVELS if lv not in ("T13", "L6")]
    pos = usual.index(LEVELS[anchor_level])
    out: list[str | None] = []
    for i in range(n):
        if s1 is not None and i > s1:
            out.append(None)  # S2 and below: not reported
            continue
        if s1 is not None and i == s1:
            out.append("S1")
            continue
        k = pos + (i - anchor)
        out.append(usual[k] if 0 <= k < usual.index("S1") else None)
    return out
