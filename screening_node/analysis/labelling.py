"""Level labels from anatomy: ribs (lowest rib-bearing vertebra = T12) and the sacrum (S1, L5 above it).

Evidence is read on the straightened volume (row, ap, lat), which reaches
thresholds.LABEL_HALF_LAT_MM to each side; lateral reaches are measured from each vertebra's own
midline (its mirror axis) where the curve clearly runs beside it. When the anchors disagree, or
none is in the field of view, the notes say so and the confidence drops; labels are never guessed
silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.mirror import midlines
from screening_node.analysis.results import LEVELS
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding, body_block


@dataclass(frozen=True)
class Labelling:
    labels: list[str | None]
    confidence: float
    notes: list[str]
    evidence: list[dict[str, float]]
    # per body: its evidence puts it in T1-L5 whatever its level (it bears a rib, it is lumbar-sized and not
    # flanked by the pelvis, or it lies between two such bodies), so it is graded even where no anchor names
    # its level; where an anchor names the levels, only the bodies it names can be (the count overrules)
    thoracolumbar: list[bool]


@dataclass(frozen=True)
class _ConnectedBone:
    """Bone above a level that is connected to the vertebra in 3-D within its rows (rows, ap, lat)."""
    block: np.ndarray      # the CT samples of those rows and ap range
    connected: np.ndarray  # bool, same shape
    midline: int           # lateral index of the vertebra's midline
    step_mm: float


def _connected_bone(st: Straightened, body: BodyFinding, ap: tuple[float, float], hu: float,
                    rows_below: int = 0, centre_mm: float = 0.0) -> _ConnectedBone | None:
    """Bone above ``hu`` connected to the vertebra (seeded within 12 mm of its midline), or None when the
    body's rows hold no samples.

    Connected in 3-D within these rows: the lowest rib of the vertebra above runs down past this body's
    rows far out to the side, and in a projection it would join this body's transverse process.
    """
    h = st.step_mm
    block = body_block(st, body, ap, rows_below)
    if block.size == 0:
        return None
    lab, _ = ndimage.label(block > hu)
    cl = st.half_lat + int(round(centre_mm / h))
    near = int(round(12 / h))
    seeds = np.unique(lab[:, :, max(0, cl - near):cl + near + 1])
    return _ConnectedBone(block, np.isin(lab, seeds[seeds > 0]), cl, h)


def _reach(bone: _ConnectedBone | None) -> tuple[float, float, bool, bool]:
    """lateral_reach's answer from the connected bone."""
    if bone is None:
        return 0.0, 0.0, False, False
    comp = bone.connected.any(axis=0)  # (ap, lat)
    cols = np.flatnonzero(comp.any(axis=0))
    if cols.size == 0:
        return 0.0, 0.0, False, False
    cl, h = bone.midline, bone.step_mm
    outside = (bone.block <= T.OUTSIDE_FOV_HU).all(axis=0)  # never inside the scanned field
    grown = ndimage.binary_dilation(comp, iterations=2)
    edge_left = bool((grown & outside)[:, :cl].any())
    edge_right = bool((grown & outside)[:, cl:].any())
    return float(cl - cols.min()) * h, float(cols.max() - cl) * h, edge_left, edge_right


def _flanked_share(bone: _ConnectedBone | None, reach_mm: float) -> float:
    """flanked_rows_share's answer from the connected bone."""
    if bone is None:
        return 0.0
    in_view = (bone.block > T.OUTSIDE_FOV_HU).any(axis=(1, 2))
    if not in_view.any():
        return 0.0
    per_row = bone.connected.any(axis=1)  # (rows, lat)
    cl, k = bone.midline, int(round(reach_mm / bone.step_mm))
    left = per_row[:, :max(0, cl - k) + 1].any(axis=1)
    right = per_row[:, cl + k:].any(axis=1)
    return float((left & right)[in_view].mean())


def lateral_reach(st: Straightened, body: BodyFinding, ap: tuple[float, float], hu: float,
                  rows_below: int = 0, centre_mm: float = 0.0) -> tuple[float, float, bool, bool]:
    """How far (mm) bone connected to the vertebra reaches to each side, within the body's rows.

    The rows are the body's (plus rows_below: ribs slope downwards) and the given ap range (mm from
    the curve); bone counts when it is connected to the vertebra in 3-D inside them. Reaches are
    measured from the lateral offset centre_mm (the vertebra's midline; 0 = the curve). Also returns,
    per side, whether that shadow runs into the edge of the scanned field (then the true reach is
    unknown, at least the value given).
    """
    return _reach(_connected_bone(st, body, ap, hu, rows_below, centre_mm))


def flanked_rows_share(st: Straightened, body: BodyFinding, ap: tuple[float, float], hu: float,
                       reach_mm: float, centre_mm: float = 0.0) -> float:
    """Share of the body's rows (in view) in which bone connected to it reaches ``reach_mm`` on both sides.

    The sacral alae flank S1 over its whole height (phantoms and ts-example: every row at 40 mm); a rib
    crosses a thoracic body's rows obliquely (0.4-0.8 of them), a lumbar transverse process is thin (at
    most 0.25). Bone counts as in lateral_reach: connected to the vertebra in 3-D within the body's rows.
    """
    return _flanked_share(_connected_bone(st, body, ap, hu, centre_mm=centre_mm), reach_mm)


def lung_beside(st: Straightened, body: BodyFinding, centre_mm: float = 0.0) -> bool:
    """Whether air fills at least LUNG_SIDE_SHARE of the field beside the body on both sides (LUNG_BAND_MM out
    from its midline, within LUNG_HALF_AP_MM of its centre, over its rows): lungs, so a thoracic body.

    tcia: T5-T9 0.66-0.76 on both sides, T10 0.21 / 0.68, T11 0.02 / 0.12, the lumbar spine and sacrum 0.
    """
    h = st.step_mm
    mid = body.ap_centre
    block = body_block(st, body, (mid - T.LUNG_HALF_AP_MM, mid + T.LUNG_HALF_AP_MM))
    if block.size == 0:
        return False
    cl = st.half_lat + int(round(centre_mm / h))
    lo, hi = (int(round(x / h)) for x in T.LUNG_BAND_MM)
    for side in (block[:, :, max(0, cl - hi):max(0, cl - lo)], block[:, :, cl + lo:cl + hi]):
        inside = side[side > T.OUTSIDE_FOV_HU]
        if inside.size == 0 or (inside < T.AIR_HU).mean() < T.LUNG_SIDE_SHARE:
            return False
    return True


def label_bodies(st: Straightened, bodies: list[BodyFinding]) -> Labelling:
    """Assign levels to bodies ordered cranial -> caudal; st is the wide (coarse) labelling volume."""
    n = len(bodies)
    evidence = []
    rib = []
    sure = []  # unmistakable ribs, longer than any transverse process
    pelvis = []
    both_sides = []  # pelvic bone reaching PELVIS_REACH_MM on both sides: the alae and ilia at S1 or below
    # Reaches are measured from each vertebra's own midline, not from a curve that may run beside it.
    for b, centre in zip(bodies, midlines(st, bodies)):
        mid = b.ap_centre
        rl, rr, el, er = lateral_reach(st, b, (mid, mid + 60), T.RIB_HU, rows_below=5, centre_mm=centre)
        own_l, own_r, _, _ = lateral_reach(st, b, (mid, mid + 60), T.RIB_HU, rows_below=0, centre_mm=centre)
        pelvic_bone = _connected_bone(st, b, (mid - 25, mid + 45), T.PELVIS_HU, centre_mm=centre)
        pl, pr, pel, per = _reach(pelvic_bone)
        alae = _flanked_share(pelvic_bone, T.ALA_REACH_MM)
        evidence.append({"rib_reach_left": rl, "rib_reach_right": rr, "pelvis_reach_left": pl,
                         "pelvis_reach_right": pr, "midline_offset": centre, "flanked_rows": alae,
                         "lung_beside": float(lung_beside(st, b, centre)), "own_rows_reach": min(own_l, own_r)})
        long_side, short_side = max(rl, rr), min(rl, rr)
        short_at_edge = er if rr < rl else el
        sure.append(long_side >= T.RIB_SURE_MM)
        rib.append(sure[-1] or (long_side >= T.RIB_REACH_MM and (short_side >= T.RIB_OTHER_SIDE_MM or short_at_edge)))
        # A long shadow on one side only that runs into the edge of a tight crop is whatever the crop cut
        # through (a transverse process seen from beside the midline), not an ala: the pelvis shows on both.
        long_at_edge = pel if pl >= pr else per
        one_sided_cut = long_at_edge and min(pl, pr) < T.PELVIS_OTHER_SIDE_MM
        # A side whose connected bone ends within VERTEBRA_MIN_REACH_MM of the midline shows not even the
        # vertebra's own pedicle and facets: the field cuts the vertebra there (a tight crop), and the other
        # side's long shadow is no pelvis evidence (the upper 60 % of verse19-006: 71 / 14 mm, L5 read as S1).
        vertebra_cut = min(pl, pr) < T.VERTEBRA_MIN_REACH_MM
        pelvis.append(max(pl, pr) >= T.PELVIS_REACH_MM and not one_sided_cut and not vertebra_cut)
        both_sides.append(min(pl, pr) >= T.PELVIS_REACH_MM)
    # Ribs come as one unbroken series (T1-T12): a rib-free body between two bodies with unmistakable
    # ribs has a rib we missed (cut by a tight crop, or sloping out of the projected rows), not a lumbar
    # vertebra. (Only unmistakable ones: a long L3 transverse process can pass for a short rib.)
    for i in range(1, n - 1):
        if sure[i - 1] and sure[i + 1] and not rib[i]:
            rib[i] = True
    # Nor do ribs resume below the lumbar spine: long lateral bone below two rib-free, lumbar-sized
    # vertebrae is an ilium or a sacral ala. (Size tells them from the rib-free cervical bodies above T1.)
    for i in range(2, n):
        if rib[i] and not rib[i - 1] and not rib[i - 2] and _lumbar_sized(bodies[i - 1]) \
                and _lumbar_sized(bodies[i - 2]):
            rib[i:] = [False] * (n - i)
            sure[i:] = [False] * (n - i)
            break
    # A rib makes a body thoracic; a lumbar-sized body beside no pelvis is lumbar or low thoracic (a cervical
    # body is never that tall; S1 is flanked by the alae and ilia). A body flanked over nearly all its rows
    # is no thoracic one whatever its "rib": the alae of an S1 the sacrum test missed (the lower 60 % of
    # ts-example: its S1, read 6.8 mm tall across the alae, was graded a grade-3 crush under no level).
    alae = _sacral_alae(evidence, rib)
    thoracolumbar = [not a and (r or (_lumbar_sized(b) and not p)) for r, b, p, a in zip(rib, bodies, pelvis, alae)]
    # T1-L5 is one unbroken run: a body between two of its members is one too, whatever its own evidence. A
    # crushed T12 is not lumbar-sized, and its rib can lie outside a tight crop (verse19-007 turned 10-20
    # degrees: its grade 2 T12 went ungraded between a rib-bearing T11 and a lumbar-sized L1).
    thoracolumbar = [t or (0 < i < n - 1 and thoracolumbar[i - 1] and thoracolumbar[i + 1])
                     for i, t in enumerate(thoracolumbar)]
    notes: list[str] = []
    # T12: last body of the first run of rib-bearing bodies, provided a rib-free body follows whose rib
    # would show (_rib_would_show).
    t12 = None
    for i in range(n - 1):
        if rib[i] and not rib[i + 1] and _rib_would_show(st, bodies[i + 1]):
            t12 = i
            break
    short_last = _short_last_rib(st, bodies, rib, sure) if t12 is None else None
    if short_last is not None:
        t12 = short_last - 1
    s1 = _sacrum(bodies, pelvis, rib, t12, both_sides, alae)  # always below T12 when both are found
    own_reach = [e["own_rows_reach"] for e in evidence]
    # T1 is read within each body's own rows; where the reading with the rows below names another body, the
    # first rib-bearing vertebra is not clear (where it names one and the own rows none, it is no anchor: a
    # trunk phantom whose C7 the field cut had T1's short rib read as no unmistakable one, T2 taken for T1).
    t1, t1_with_rows_below = _first_rib_bearing(bodies, sure, own_reach), _first_rib_bearing(bodies, sure)
    t1_unsure = t1 is not None and t1_with_rows_below is not None and t1_with_rows_below != t1
    rib_count = _rib_count_conflict(_first_rib_candidates(t1, t1_with_rows_below, rib), t12, s1)
    if rib_count is not None:
        notes.append(rib_count)
    idx_l5 = LEVELS.index("L5")
    idx_t12 = LEVELS.index("T12")
    if s1 is not None and t12 is not None:
        lumbar = s1 - t12 - 1
        if lumbar == T.LUMBAR_COUNT:
            anchor, anchor_level, conf = s1 - 1, idx_l5, 0.95
        elif lumbar == T.LUMBAR_COUNT - 1 and not both_sides[s1]:
            # One body short, and the "S1" flanked on one side only: L5 beside an ilium cut by a plane
            # tilted at the lumbosacral bend (the lower 60 % of ts-example: every level one off). The count
            # from T12 holds; the body taken for S1 is L5.
            notes.append(f"labelling conflict: {lumbar} rib-free vertebrae between the last rib-bearing one and "
                         "a sacrum flanked on one side only, which is taken for L5; labels counted from T12")
            anchor, anchor_level, conf = t12, idx_t12, 0.5
            s1 = None
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
    elif t1 is not None:
        anchor, anchor_level, conf = t1, LEVELS.index("T1"), 0.6
        notes.append("labels counted down from the first rib-bearing vertebra (T1); neither the lowest ribs "
                     "nor the sacrum in view")
        if t1_unsure:
            notes.append("the first rib-bearing vertebra is not clear: the body "
                         f"{'below' if t1_with_rows_below > t1 else 'above'} the one taken for T1 may be it "
                         "(a short first rib, or the first rib reached from C7 through their facet joints); "
                         "the levels may be one off")
            conf = min(conf, T.FIRST_RIB_UNSURE_CONFIDENCE)
    else:
        notes.append("no labelling anchor (no sacrum, no rib-bearing/rib-free transition) in the field of view; "
                     "levels are not labelled")
        return Labelling([None] * n, 0.0, notes, evidence, thoracolumbar)
    if short_last is not None and anchor_level == idx_t12:
        e = evidence[short_last]
        notes.append(f"the last rib-bearing body in view reaches {max(e['rib_reach_left'], e['rib_reach_right']):.0f} and "
                     f"{min(e['rib_reach_left'], e['rib_reach_right']):.0f} mm, a short rib or a long transverse "
                     "process, and no body below it shows whether ribs go on: it is taken for L1, and the levels may "
                     "be one too high")
        conf = min(conf, T.ONE_SIDED_RIB_CONFIDENCE)
    reach = _one_sided_rib_reach(evidence, rib, t12) if anchor_level == idx_t12 else None
    if reach is not None:
        # The body below "T12" reaches as far as a rib on one side (a lumbar transverse process ends short of
        # RIB_REACH_MM) but not on the other: it may be T12 with its rib short or cut on that side (the
        # upper 60 % of verse19-007, ending 17 mm into L1: right 32 mm, left 56; every level was one off).
        notes.append(f"the first rib-free body below the last rib-bearing one reaches {reach:.0f} mm on one side, "
                     "as a rib does: it may bear the 12th rib, and the levels one too high")
        conf = min(conf, T.ONE_SIDED_RIB_CONFIDENCE)
    if s1 is not None and not both_sides[s1]:
        # The ilium cut beside L5 by planes tilted at the lumbosacral bend is one-sided too: such an S1 may
        # be L5 (eight batches of 3 mm phantoms: 6 of 15 scans whose S1 was one-sided had every lumbar level
        # one off, 1 of 139 with a two-sided S1).
        notes.append("the body taken for S1 shows pelvic bone on one side only: it may be L5, and the levels "
                     "one too high")
        conf = min(conf, T.ONE_SIDED_S1_CONFIDENCE)
    if rib_count is not None:
        conf = min(conf, T.RIB_COUNT_CONFIDENCE)
    # Counting uses the usual 24 presacral levels: T13 / L6 are never produced by counting.
    labels = _skip_supernumerary(anchor_level, anchor, n, s1)
    # Where an anchor names the levels, the count overrules a body's own evidence: a body it leaves unnamed lies
    # past L5 (the sacral segments below S1, lumbar-sized and beside no ala below the pelvis' flank, were graded
    # 1-2 in 4 of 330 phantom scans of eleven batches; an S1 whose alae were missed, a grade 3 on tcia turned 20
    # degrees by its direction cosines).
    thoracolumbar = [t and label is not None for t, label in zip(thoracolumbar, labels)]
    return Labelling(labels, conf, notes, evidence, thoracolumbar)


def _sacral_alae(evidence: list[dict[str, float]], rib: list[bool]) -> list[bool]:
    """Per body: flanked by bone in nearly every row (ALA_ROWS_SHARE) as S1 is by its alae.

    The ribs of the mid-thorax flank a body in every row as well (tcia T6-T9: 1.0), but lungs lie beside
    it, never beside the sacrum; and no rib-bearing vertebra lies below the sacrum, so a flanked body above
    two consecutive rib-bearing, unflanked ones is thoracic too (a chest CT without an anchor: its
    mid-thoracic bodies went ungraded).
    """
    flanked = [e["flanked_rows"] >= T.ALA_ROWS_SHARE and not e["lung_beside"] for e in evidence]
    unflanked_rib = [r and not f for r, f in zip(rib, flanked)]
    alae = list(flanked)
    ribs_below = False  # two consecutive unflanked rib-bearing bodies below the one looked at
    for i in range(len(alae) - 1, -1, -1):
        alae[i] = alae[i] and not ribs_below
        ribs_below = ribs_below or (i + 1 < len(alae) and unflanked_rib[i] and unflanked_rib[i + 1])
    return alae


def _first_rib_candidates(t1: int | None, t1_with_rows_below: int | None, rib: list[bool]) -> list[int]:
    """Every body the first rib may be on, for the count: none unless the reading with the rows below names
    one; then that one, the body above it where it shows a rib's length (RIB_REACH_MM) without an
    unmistakable rib (T1's short first rib), and T1 read within the bodies' own rows.

    On the usual spines of nine phantom batches (270 scans) the own-rows reading alone, counted to T12,
    gave 11 on 17 scans whose levels were right (T1 38-40 mm on its shorter side there, at the edge of
    CERVICAL_REACH_MM, then required to be passed); with the reading with the rows below required, 2 scans,
    both with an upper disc missed and their upper levels one off.
    """
    if t1_with_rows_below is None:
        return []
    out = [t1_with_rows_below]
    if t1_with_rows_below > 0 and rib[t1_with_rows_below - 1]:
        out.append(t1_with_rows_below - 1)
    if t1 is not None and t1 not in out:
        out.append(t1)
    return out


def _rib_count_conflict(t1_candidates: list[int], t12: int | None, s1: int | None) -> str | None:
    """The note for a rib count other than the usual one, where the field shows enough to count; else None.

    With the first rib-bearing vertebra (below a rib-free C7; ``t1_candidates``, _first_rib_candidates,
    the likeliest first) and the last one (above a rib-free L1) both in view, THORACIC_COUNT bodies should
    bear ribs; 11 or 13 rib pairs (a few per cent of people) make the count from either anchor one off at
    the other end: counted up from the sacrum, a 13th rib-bearing vertebra is read T12 and the first
    rib-bearing one C7. A disc missed between two upper thoracic bodies (thin discs on 3 mm slices) gives
    the same count, and the same levels one off at the far end: a reader is told either way. With T1 and
    the sacrum in view but no clear last rib, T1-L5 should be THORACIC_COUNT + LUMBAR_COUNT bodies. (Six
    lumbar vertebrae below twelve ribs are the conflict between T12 and the sacrum, noted where the
    anchors are chosen.) No conflict is told where any candidate for the first rib gives the usual count.
    """
    if not t1_candidates:
        return None
    t1 = t1_candidates[0]
    if t12 is not None and t12 > t1:
        if any(t12 - t + 1 == T.THORACIC_COUNT for t in t1_candidates):
            return None
        return (f"labelling conflict: {t12 - t1 + 1} rib-bearing vertebrae from the first rib to the last (expected "
                f"{T.THORACIC_COUNT}: {T.THORACIC_COUNT - 1} or {T.THORACIC_COUNT + 1} rib pairs, or a disc among them "
                "missed or split); the levels at one end of the spine are one off")
    if t12 is None and s1 is not None and s1 > t1:
        if any(s1 - t == T.THORACIC_COUNT + T.LUMBAR_COUNT for t in t1_candidates):
            return None
        return (f"labelling conflict: {s1 - t1} vertebrae from the first rib-bearing one to the sacrum "
                f"(expected {T.THORACIC_COUNT + T.LUMBAR_COUNT}: a vertebra more or fewer, or a disc among them "
                "missed or split); the levels at one end of the spine are one off")
    return None


def _one_sided_rib_reach(evidence: list[dict[str, float]], rib: list[bool], t12: int | None) -> float | None:
    """The longer reach (mm) of the rib-free body below T12 where it is rib-free only for its short side
    (that side reaches RIB_REACH_MM); else None."""
    if t12 is None or t12 + 1 >= len(rib) or rib[t12 + 1]:
        return None
    e = evidence[t12 + 1]
    reach = max(e["rib_reach_left"], e["rib_reach_right"])
    return reach if reach >= T.RIB_REACH_MM else None


def _short_last_rib(st: Straightened, bodies: list[BodyFinding], rib: list[bool], sure: list[bool]) -> int | None:
    """Index of the last body of the first rib-bearing run where its "rib" is no unmistakable one (under
    RIB_SURE_MM), the body above it bears one, and no body below it could show a rib; else None.

    Such a body reaches between RIB_REACH_MM and RIB_SURE_MM: a short 12th rib or a long L1 transverse process
    (a 3 mm phantom chest field ending in L2: its L1 read 54 and 36 mm, rib-free, and on planes turned 10
    degrees at the field's end 52 and 40, "rib-bearing"). With no rib-free body below it in view, no T12 was
    found and the field lost every label. The body above it, the last with an unmistakable rib, is then taken
    for T12, the likelier reading, and the labels say they may be one off."""
    first = next((i for i, r in enumerate(rib) if r), None)
    if first is None:
        return None
    last = first
    while last + 1 < len(rib) and rib[last + 1]:
        last += 1
    below_shows = any(_rib_would_show(st, b) for b in bodies[last + 1:])
    if last == first or below_shows or sure[last] or not sure[last - 1] or not bodies[last].whole:
        return None
    return last


def _rib_would_show(st: Straightened, body: BodyFinding) -> bool:
    """Whether a rib of this body would be in view: the body is whole, or the field shows at least
    RIB_HEAD_VIEW_MM of it below its upper disc (a rib's head sits on the upper part of its body).

    A thoracic crop ending 8 mm into T11 showed no rib there: T11 was read as L1 and every level two
    off; the tcia series cut 16-23 mm into T12 showed its rib only 43-48 mm out, and T12 was read as L1.
    A chest field ending inside L1 is therefore left without the T12 anchor.
    """
    if not body.cut_by_fov:
        return True
    if body.top_disc is None:
        return False
    centre = st.volume[:, st.half_ap, st.half_lat]
    inside = np.flatnonzero(centre > T.OUTSIDE_FOV_HU)
    return inside.size > 0 and inside[-1] - body.top_disc >= T.RIB_HEAD_VIEW_MM


def _lumbar_sized(body: BodyFinding) -> bool:
    """Disc to disc at least LUMBAR_MIN_PITCH_MM: a lumbar (or lowest thoracic) vertebra, never a cervical one."""
    return body.whole and body.bottom_disc - body.top_disc >= T.LUMBAR_MIN_PITCH_MM  # type: ignore[operator]


def _first_rib_bearing(bodies: list[BodyFinding], sure: list[bool], own_reach: list[float] | None = None
                       ) -> int | None:
    """Index of T1: the first rib-bearing body below a whole, small body without a rib (C7), the two below
    it with unmistakable ribs. A body cut by the field above it could be T1 with its rib out of view, so
    the body above must be complete; a lumbar-sized one above means the "ribs" are an ilium and the
    sacral alae.

    Without ``own_reach``: T1 is the first of three with unmistakable ribs (RIB_SURE_MM, read with the
    rows below each body, where a rib sloping down runs). With ``own_reach`` (per body, how far its bone
    reaches within its own rows, none below, on its shorter side): T1 is the first reaching further than
    any cervical vertebra there on both sides (CERVICAL_REACH_MM). The first rib is short and drops steeply:
    on phantoms T1's read 48-58 mm with the rows below on 4 of 18 chest fields (no unmistakable rib: T2
    was taken for T1), and C7 reached T1's rib through their facet joints, 60-68 mm on one side, on 4
    others (C7 was taken for T1); within their own rows, on the shorter side, C7 reached 26-30 mm and T1
    38-58 (30 on one small chest).
    """
    for i in range(1, len(bodies) - 2):
        above = bodies[i - 1]
        if not (sure[i + 1] and sure[i + 2] and above.whole and not _lumbar_sized(above)):
            continue
        if own_reach is None:
            if sure[i] and not sure[i - 1]:
                return i
        elif own_reach[i] >= T.CERVICAL_REACH_MM and own_reach[i - 1] < T.CERVICAL_REACH_MM:
            return i
    return None


def _sacrum(bodies: list[BodyFinding], pelvis: list[bool], rib: list[bool], t12: int | None,
            both_sides: list[bool] | None = None, alae: list[bool] | None = None) -> int | None:
    """Index of S1 among the bodies, or None when the sacrum is not in view.

    The sacrum is the caudal run of bodies flanked by pelvic bone (alae, ilia), ending at the end
    of the column. The straightened planes at the lumbosacral bend can cut an ilium beside L5 and
    the fused sacral segments can look like separate bodies, so the run may start one body early
    or hold several bodies. When the run's first body is flanked on both sides (``both_sides``: the
    alae and ilia at S1; an ilium cut beside L5 shows on one side only) it is S1 whatever the count
    from T12 says, since a wrong T12 (L1 touching the 12th rib) would otherwise move S1 too. Otherwise
    S1 is the run's body five below T12 when that anchor is in view (the usual count), else the run's
    first body. (A two-sided body further down the run is no evidence: on 3 mm scans the upper half
    of a split S1 can show its ala on one side only, and the lower half both.)

    Pelvic-looking bone below a rib-bearing body is a chest crop's ribs, not a sacrum, with one
    exception: a run starting with a body flanked by pelvic bone on both sides and by bone 40 mm out
    in nearly every row (``alae``: a rib crosses a thoracic body's rows obliquely, never all of them)
    under a lumbar-sized body. That "rib" is the iliac crest beside L5, joined to it in the rows below
    (the lower 60 % of ts-example: 110 mm, no lumbar body above L5 in view to overrule it).
    """
    both_sides = both_sides or [False] * len(bodies)
    alae = alae or [False] * len(bodies)
    n = len(bodies)
    counted = None if t12 is None else t12 + T.LUMBAR_COUNT + 1  # where the usual count from T12 puts S1
    if (n > 1 and bodies[-1].cut_by_fov and not pelvis[-1] and pelvis[-2]
            and (counted is None or n - 2 == counted)):
        # A body cut by the lower edge of the field may show too little of its pelvic flank; the
        # flanked body above it ends the column unless the count from T12 puts S1 elsewhere.
        n -= 1
    if n < 2:
        return None
    end = n - 1
    while end > 0 and not pelvis[end] and n - 1 - end < T.SACRUM_TRAILING_BODIES:
        end -= 1  # lower sacral segments and the coccyx below the pelvis (a long pelvic field of view)
    if not pelvis[end] or (t12 is not None and end <= t12 + 1):
        return None  # no pelvis, or only the lowest ribs beside the last bodies of a chest field
    if end < n - 1 and not (end > 0 and pelvis[end - 1]) and end != counted and not both_sides[end]:
        # skipping caudal bodies needs a clear pelvic run (two flanked bodies) above them, a single
        # flanked body exactly where the usual count from T12 puts S1 (two independent anchors agree),
        # or one flanked on both sides
        return None
    start = end
    while start - 1 >= 0 and pelvis[start - 1] and not (t12 is not None and start - 1 <= t12):
        start -= 1
    # A whole, lumbar-sized first body flanked on one side only, above one flanked on both sides and by its
    # alae in nearly every row (no lung beside it), is L5 beside an iliac crest over S1. With no count from
    # T12 to settle it, that S1 holds even where the field cuts the body above L5 or a large transverse
    # process there passes for a rib (tcia from L1 down: every level one off; from L4 or L3 down: no anchor).
    run_starts_at_l5 = (start < end and not both_sides[start] and both_sides[start + 1] and alae[start + 1]
                        and _lumbar_sized(bodies[start]) and not (counted is not None and start <= counted <= end))
    if start == 0 or bodies[start - 1].cut_by_fov:
        # a body cut by the field above the run is no rib-free evidence (its rib may be out of view: a T8-L1
        # crop ending 8 mm into L1, no T12 anchor, took the ribs of T8-T12 for a sacrum)
        return start + 1 if run_starts_at_l5 else None
    crest_joins_l5_above = both_sides[start] and alae[start] and _lumbar_sized(bodies[start - 1])
    if rib[start - 1] and not crest_joins_l5_above:
        # pelvic-looking bone below a rib-bearing body: a chest crop's ribs, not a sacrum
        return start + 1 if run_starts_at_l5 else None
    if end - start + 1 > T.SACRUM_MAX_BODIES:
        return None  # longer than any sacrum: the ribs of a chest field below a rib-free C7
    if both_sides[start]:
        return start
    if counted is not None and start <= counted <= end:
        return counted
    return start + 1 if run_starts_at_l5 else start


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
