"""Body centre and labelling anchors on hand-built evidence with exact answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from screening_node.analysis.labelling import _first_rib_bearing, _lumbar_sized
from screening_node.analysis.body_centre import (_enclosed, _fill_smooth, _Lobe, _row_lobes, _track_lobes,
                                                 offsets_through_bodies)
from screening_node.analysis.vertebrae import BodyFinding


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    ap, lat = np.ogrid[:shape[0], :shape[1]]
    return (ap - centre[0]) ** 2 + (lat - centre[1]) ** 2 <= radius ** 2


def _ring(shape: tuple[int, int], centre: tuple[int, int], radius: float, hu: float = 600.0) -> np.ndarray:
    """A cross-section: a 2 mm cortical ring (hu) around dark marrow, in soft tissue."""
    section = np.full(shape, 40.0)
    section[_disc(shape, centre, radius) & ~_disc(shape, centre, radius - 2)] = hu
    return section


def test_body_is_the_front_lobe_when_the_filled_canal_ring_is_deeper() -> None:
    # A thoracic body (radius 12 mm) in front of a canal closed by its arch (outer radius 14 mm).
    shape = (86, 81)  # ap from the front, lat; the curve at ap 60 (in the canal), lat 40
    section = np.maximum(_ring(shape, (30, 40), 12), _ring(shape, (56, 40), 14))
    depth = ndimage.distance_transform_edt(ndimage.binary_fill_holes(section > 250))
    assert np.unravel_index(np.argmax(depth), shape)[0] > 45  # the deepest point is in the canal
    lobes = _row_lobes(section, half_ap=60, half_lat=40, h=1.0)
    front = max(lobes, key=lambda lobe: lobe.score)
    assert abs(front.ap - (30 - 60)) <= 1 and abs(front.lat) <= 1


def test_no_lobe_without_a_body_sized_circle() -> None:
    assert _row_lobes(_ring((60, 60), (30, 30), 5), half_ap=30, half_lat=30, h=1.0) == []


def _section(shape: tuple[int, int], parts: list[tuple[tuple[int, int], float, float, float]]) -> np.ndarray:
    """Soft tissue (40 HU) with filled rings: (centre, outer radius, wall HU, inside HU), painted in order."""
    section = np.full(shape, 40.0)
    for centre, radius, wall, inside in parts:
        section[_disc(shape, centre, radius)] = wall
        section[_disc(shape, centre, radius - 2)] = inside
    return section


def test_an_osteoporotic_body_open_at_the_cortical_level_is_found_in_front_of_its_canal() -> None:
    # A lumbar body (radius 18 mm) whose thin cortex reads 200 HU after 3 mm slices, marrow 90 HU, in
    # front of a canal (cord and fluid 20 HU) closed by a 600 HU arch. At the cortical level only the
    # canal's ring closes, and it used to pass for the body (3 mm osteoporotic phantoms: every lumbar
    # body placed ~30 mm back, in the canal).
    shape = (86, 81)  # ap from the front, lat; the curve at ap 60 (in the canal), lat 40
    section = _section(shape, [((29, 40), 18, 200.0, 90.0), ((58, 40), 11, 600.0, 20.0)])
    lobes = _row_lobes(section, half_ap=60, half_lat=40, h=1.0)
    front = max(lobes, key=lambda lobe: lobe.score)
    assert abs(front.ap - (29 - 60)) <= 2 and abs(front.lat) <= 1


@pytest.mark.parametrize("marrow,fat", [(200.0, 4), (40.0, 4), (40.0, 1)])
def test_a_contrast_filled_aorta_in_front_of_a_body_is_not_taken_for_it(marrow: float, fat: int) -> None:
    # A body with a cortical ring (dark marrow too: 40 HU, as dark as a canal) and, fat mm in front of
    # it, a contrast-filled aorta (200 HU, radius 11 mm) on its midline: the body stays the front lobe.
    shape = (86, 81)
    body_centre = 8 + 2 * 11 + fat + 16  # the aorta spans ap 8-30, then fat, then the body (radius 16)
    section = _section(shape, [((body_centre, 40), 16, 600.0, marrow), ((19, 40), 11, 200.0, 200.0)])
    lobes = _row_lobes(section, half_ap=60, half_lat=40, h=1.0)
    front = max(lobes, key=lambda lobe: lobe.score)
    assert abs(front.ap - (body_centre - 60)) <= 2


def test_track_keeps_to_the_body_and_leaves_out_rows_where_only_the_canal_shows() -> None:
    body, canal = _Lobe(-30.0, 0.0, 2.0), _Lobe(-5.0, 0.0, 1.0)
    rows: list[list[_Lobe]] = [[body, canal]] * 40 + [[]] * 8 + [[body, canal]] * 40 + [[canal]] * 12
    ap, _ = _track_lobes(rows, 1.0)
    assert np.allclose(ap[:40], -30.0) and np.allclose(ap[48:88], -30.0)
    assert np.isnan(ap[40:48]).all()   # the disc: no lobe
    assert np.isnan(ap[88:]).all()     # the body cut by the field: the canal alone is not followed


def test_the_canal_behind_a_body_whose_ring_is_open_is_told_and_left_out() -> None:
    # A small upper thoracic body on 3 mm slices (radius 10 mm): its thin cortex (220 HU) blurred below the
    # cortical level, marrow 150 HU; behind it the canal (cord 20 HU) closed by a 500 HU arch. Only the
    # canal's ring closes: taken for the body, it bent the curve 10-15 mm behind C6-T2.
    shape = (86, 81)
    section = ndimage.gaussian_filter(_section(shape, [((36, 40), 10, 220.0, 150.0), ((57, 40), 9, 500.0, 20.0)]), 1.5)
    lobes = _row_lobes(section, half_ap=60, half_lat=40, h=1.0)
    assert len(lobes) == 1 and lobes[0].canal and abs(lobes[0].ap - (57 - 60)) <= 2
    assert lobes[0].score < 0
    # The track then leaves those rows out (the body centre is carried on from the rows that show it).
    body, canal = _Lobe(-21.0, 0.0, 2.0), lobes[0]
    rows: list[list[_Lobe]] = [[canal]] * 6 + [[]] * 20 + [[body, canal]] * 40
    ap, _ = _track_lobes(rows, 1.0)
    assert np.isnan(ap[:26]).all() and np.allclose(ap[26:], -21.0)


def _body(top: float | None, bottom: float | None, cut: bool = False) -> BodyFinding:
    centre = 0.5 * ((top or 0.0) + (bottom or 0.0))
    return BodyFinding(top, bottom, centre, (-15.0, 15.0), 20.0, None, None, cut_by_fov=cut)


def test_a_step_between_two_bodies_centres_becomes_a_gentle_bend() -> None:
    # Per row, the body centre found (mm from the curve): L2 centred 4 mm further back than L3, a disc
    # between them (NaN). Straightened along a curve that bends sharply there, planes 30 mm behind it
    # would fan apart (ts-example, L2/L3: radius 34 mm), so the corner endplates leave their search window.
    offsets = np.full(240, np.nan)
    offsets[20:112] = 4.0
    offsets[120:220] = 0.0
    smooth = _fill_smooth(offsets)
    curvature = np.abs(np.diff(smooth, 2)).max()  # 1/mm (rows are 1 mm; the slope stays small)
    assert curvature <= 1 / 200
    assert abs(smooth[60] - 4.0) < 0.2 and abs(smooth[180]) < 0.2  # each body's own centre is kept


def test_a_track_lagging_behind_the_measured_bodies_is_laid_through_their_centres() -> None:
    # ts-example: the first track ran 7-11 mm behind L3-L5 (a lordosis on 3 mm slices); their
    # measured outlines' centres (row, ap mm from the curve) say where it should run.
    centres = [(46.0, 0.9), (82.0, -1.6), (119.0, -6.8), (154.0, -10.5), (188.0, -10.9)]
    track = offsets_through_bodies(230, centres)
    assert track is not None
    assert abs(track[154] + 10.5) < 1.5 and abs(track[119] + 6.8) < 1.5 and abs(track[46] - 0.9) < 1.0
    assert abs(track[229] - track[188]) < 0.5  # beyond the last body it runs on as at its centre
    # bodies within RECENTRE_MIN_MM of the curve leave it where it is
    assert offsets_through_bodies(230, [(r, 0.5 * a / 10.9 * 3) for r, a in centres]) is None


def test_first_rib_bearing_body_is_t1_only_below_a_whole_rib_free_one() -> None:
    # C6 (cut by the field), C7, then T1-T4 with unmistakable ribs.
    bodies = [_body(None, 10, cut=True), _body(10, 28), _body(28, 47), _body(47, 67), _body(67, 88), _body(88, 110)]
    sure = [False, False, True, True, True, True]
    assert _first_rib_bearing(bodies, sure) == 2
    # The field starts inside the first rib-bearing body: it could be T1 or T2, so no anchor.
    assert _first_rib_bearing(bodies[1:], [True, True, True, True, True]) is None
    assert _first_rib_bearing([_body(None, 10, cut=True)] + bodies[2:], [False, True, True, True, True]) is None
    # Below a rib-free lumbar body, long lateral bone on three bodies is an ilium and the sacral alae.
    lumbar = [_body(100, 136), _body(136, 174), _body(174, 212), _body(212, 240), _body(240, 262)]
    assert _first_rib_bearing(lumbar, [False, False, True, True, True]) is None


def test_the_first_rib_is_read_within_each_bodys_own_rows() -> None:
    # 1 mm chest phantoms (C5-T10): read with the rows below, C7 reached T1's first rib through their facet
    # joints (64 mm: an unmistakable "rib", every level one too high), or T1's short, steep first rib reached
    # 58 mm only (T2 taken for T1). Within their own rows, on the shorter side, C7 reaches 26-30 mm, T1 38-58.
    #         C5 (cut)               C6            C7            T1            T2             T3              T4
    bodies = [_body(None, 10, cut=True), _body(10, 28), _body(28, 47), _body(47, 67), _body(67, 88), _body(88, 110),
              _body(110, 133)]
    c7_reaches_the_first_rib = [False, False, True, True, True, True, True]
    short_first_rib = [False, False, False, False, True, True, True]
    assert _first_rib_bearing(bodies, c7_reaches_the_first_rib) == 2
    assert _first_rib_bearing(bodies, short_first_rib) == 4
    own_rows = [28.0, 28.0, 30.0, 46.0, 76.0, 90.0, 110.0]
    assert _first_rib_bearing(bodies, c7_reaches_the_first_rib, own_rows) == 3
    assert _first_rib_bearing(bodies, short_first_rib, own_rows) == 3


def test_lumbar_size_tells_a_lumbar_body_from_a_cervical_one() -> None:
    assert _lumbar_sized(_body(100, 135))
    assert not _lumbar_sized(_body(10, 28))
    assert not _lumbar_sized(_body(100, None, cut=True))


def test_rib_of_the_vertebra_above_is_not_this_bodys_rib() -> None:
    """The lowest rib runs down past the next body's rows far out to the side: in a projection over
    that body's rows it would join the body's transverse process; in 3-D it does not."""
    from screening_node.analysis.labelling import lateral_reach
    from screening_node.analysis.straighten import Straightened

    rows, n_ap, n_lat, h = 90, 40, 111, 2.0     # 2 mm samples across, 1 mm rows
    half_ap, half_lat = 10, 55
    v = np.full((rows, n_ap, n_lat), 30.0, np.float32)
    v[:, 10:25, half_lat - 6:half_lat + 7] = 400.0            # the column: bodies and arches, all rows
    v[52:57, 20:23, half_lat - 20:half_lat + 21] = 400.0      # this body's transverse processes: 40 mm
    v[20:26, 20:23, half_lat + 6:half_lat + 19] = 400.0       # the rib above leaves its vertebra ...
    v[26:47, 20:23, half_lat + 18:half_lat + 21] = 400.0      # ... runs down at 36-40 mm ...
    v[42:47, 20:23, half_lat + 18:half_lat + 41] = 400.0      # ... and out to 80 mm beside this body
    eye = np.tile(np.eye(3), (rows, 1, 1))
    st = Straightened(v, np.zeros((rows, 3)), eye[:, 2], eye[:, 1], eye[:, 0], half_ap, half_lat, h)
    body = BodyFinding(40.0, 70.0, 55.0, (0.0, 20.0), 20.0, None, None)
    left, right, _, _ = lateral_reach(st, body, (0.0, 40.0), 150.0, rows_below=5)
    assert right == pytest.approx(40.0, abs=2.0)   # its transverse process, not the rib from above
    assert left == pytest.approx(40.0, abs=2.0)


def _vertebra_beside_the_curve(offset_mm: float) -> tuple["Straightened", list[BodyFinding]]:
    """A labelling volume (2 mm samples) of three lumbar vertebrae whose midline lies offset_mm beside
    the curve, as on a tight crop where the curve runs in a facet column: body ring, canal ring,
    spinous process and transverse processes reaching 50 mm to each side of the midline (a lumbar
    transverse process, not an ilium). The first body is cut by the field above its processes."""
    from screening_node.analysis.straighten import Straightened

    rows, n_ap, n_lat, h = 90, 61, 111, 2.0
    half_ap, half_lat = 30, 55
    mid = half_lat + int(round(offset_mm / h))
    v = np.full((rows, n_ap, n_lat), 30.0, np.float32)
    section = np.full((n_ap, n_lat), 30.0, np.float32)
    body = _disc((n_ap, n_lat), (half_ap - 8, mid), 10)
    section[body] = 100.0                                              # marrow
    section[body & ~_disc((n_ap, n_lat), (half_ap - 8, mid), 9)] = 600.0  # cortex
    canal = _disc((n_ap, n_lat), (half_ap + 8, mid), 7)
    section[canal & ~_disc((n_ap, n_lat), (half_ap + 8, mid), 5)] = 600.0  # pedicles and laminae
    section[half_ap + 14:half_ap + 26, mid - 1:mid + 2] = 500.0        # spinous process
    v[:] = section
    for r0 in (30, 60):                                                 # transverse processes, 50 mm each side
        v[r0:r0 + 6, half_ap + 6:half_ap + 10, mid - 25:mid + 26] = 450.0
    eye = np.tile(np.eye(3), (rows, 1, 1))
    st = Straightened(v, np.zeros((rows, 3)), eye[:, 2], eye[:, 1], eye[:, 0], half_ap, half_lat, h)
    ap = (-36.0, 4.0)  # the body's ap range (mm from the curve)
    bodies = [BodyFinding(None, 20.0, 8.0, ap, 20.0, None, None, cut_by_fov=True),
              BodyFinding(20.0, 50.0, 35.0, ap, 20.0, None, None),
              BodyFinding(50.0, None, 70.0, ap, 20.0, None, None, cut_by_fov=True)]
    return st, bodies


def test_midlines_are_the_vertebrae_mirror_axes_where_neighbours_agree() -> None:
    from screening_node.analysis.mirror import midlines

    st, bodies = _vertebra_beside_the_curve(18.0)
    assert midlines(st, bodies) == pytest.approx([18.0, 18.0, 18.0], abs=2.0)
    st, bodies = _vertebra_beside_the_curve(0.0)
    assert midlines(st, bodies) == [0.0, 0.0, 0.0]   # a curve on the midline is kept
    # An axis on one body alone (its neighbours mirror about the curve) is not trusted.
    st, bodies = _vertebra_beside_the_curve(0.0)
    moved, _ = _vertebra_beside_the_curve(18.0)
    st.volume[50:] = moved.volume[50:]
    assert midlines(st, bodies) == [0.0, 0.0, 0.0]


def test_transverse_process_seen_from_a_curve_beside_the_midline_is_no_pelvis() -> None:
    """Measured from a curve 18 mm beside the midline, a 50 mm transverse process reaches 68 mm to
    one side and passed for an ilium: the node claimed S1 on a crop holding two lumbar vertebrae.
    Measured from the vertebra's own midline it is a transverse process, and no anchor is in view."""
    from screening_node.analysis.labelling import label_bodies

    st, bodies = _vertebra_beside_the_curve(18.0)
    lab = label_bodies(st, bodies)
    assert lab.labels == [None, None, None] and lab.confidence == 0.0
    assert "no labelling anchor" in lab.notes[0]
    ev = lab.evidence[1]
    assert ev["pelvis_reach_left"] == pytest.approx(50.0, abs=2.0)
    assert ev["pelvis_reach_right"] == pytest.approx(50.0, abs=2.0)


def test_one_sided_shadow_cut_by_the_crop_edge_is_no_pelvis() -> None:
    """On a tight crop the field ends 70 mm left of the midline: a lumbar transverse process that runs
    into that edge reads 'at least 70 mm', past the pelvis reach, while the other side shows 30 mm.
    An ala shows on both sides; a shadow on one side, cut by the field, is no evidence of one."""
    from screening_node.analysis.labelling import label_bodies

    st, bodies = _vertebra_beside_the_curve(0.0)
    v = st.volume
    h, cl, ca = st.step_mm, st.half_lat, st.half_ap
    edge = cl - int(70 / h)
    for r0 in (30, 60):
        v[r0:r0 + 6, ca + 6:ca + 10, :] = 30.0
        v[r0:r0 + 6, ca + 6:ca + 10, edge:cl] = 450.0                      # left: to the field's edge
        v[r0:r0 + 6, ca + 6:ca + 10, cl:cl + int(30 / h) + 1] = 450.0      # right: 30 mm
    v[:, :, :edge] = -1024.0                                               # outside the scanned field
    lab = label_bodies(st, bodies)
    assert lab.evidence[1]["pelvis_reach_left"] >= 65.0
    assert "S1" not in lab.labels


def test_a_body_flanked_on_both_sides_is_s1_whatever_the_count_from_t12() -> None:
    from screening_node.analysis.labelling import _sacrum
    # A lumbar scan (degenerate phantom, 1 mm seed 5, case 18): L1's osteophytes touch the 12th rib, so
    # L1 passes for T12 (index 1). Below L5 (index 5) the sacral run is S1 (alae and ilia on both sides)
    # and a cut S2. Counting five down from the false T12 would make the cut body S1.
    bodies = [_body(None, 9, cut=True)] + [_body(a, b) for a, b in
                                           ((9, 39), (39, 71), (71, 104), (104, 138), (138, 174), (174, 217))]
    bodies.append(_body(217, None, cut=True))
    pelvis = [False] * 6 + [True, True]
    rib = [True, True] + [False] * 6
    both = [False] * 6 + [True, True]
    assert _sacrum(bodies, pelvis, rib, 1, both) == 6
    assert _sacrum(bodies, pelvis, rib, 1) == 7  # the count decides when no body is clearly flanked
    # a run that starts one-sided (an ilium cut beside L5, or the upper half of a split S1) is judged
    # as before: a two-sided body further down is no evidence for S1
    pelvis_l5 = [False] * 5 + [True, True, True]
    assert _sacrum(bodies, pelvis_l5, rib, None, both) == 5


def test_the_rib_cage_below_a_rib_free_c7_is_no_sacrum() -> None:
    from screening_node.analysis.labelling import _sacrum
    # A chest field (3 mm, severe, seed 5, case 11): C6 cut, C7 without ribs, then T1-T10 and a cut T11,
    # all flanked by ribs far past the pelvis reach. No rib-free body below them, so no T12; the run of
    # "pelvic" bodies below the rib-free C7 used to make T1 the S1 (C6, C7 labelled L4, L5).
    bodies = [_body(None, 6, cut=True), _body(6, 25)] + [_body(a, a + 21) for a in range(25, 235, 21)]
    bodies.append(_body(235, None, cut=True))
    pelvis = [False, False] + [True] * 11
    rib = [False, False] + [True] * 11
    assert _sacrum(bodies, pelvis, rib, None, pelvis) is None
    # the sacrum itself: five flanked segments (the last cut) below a rib-free L5 stay S1 at index 2
    assert _sacrum(bodies[:7], pelvis[:7], [False] * 7, None, pelvis[:7]) == 2


def test_an_iliac_crest_beside_l5_does_not_hide_the_sacrum_below_it() -> None:
    from screening_node.analysis.labelling import _sacrum
    # The lower 60 % of ts-example: L4 (its top out of view), L5, and the top of S1. The iliac crest joins
    # L5's transverse process in the rows below it and reaches 110 mm: a "rib". S1 is flanked by pelvic
    # bone past 65 mm on both sides and by its alae in every row; the sacrum below a rib-bearing body
    # was refused (a chest crop's ribs look pelvic too), so the crop had no anchor.
    bodies = [_body(5, 31), _body(31, 67), _body(67, 87)]
    pelvis, both, rib = [False, False, True], [False, False, True], [False, True, True]
    assert _sacrum(bodies, pelvis, rib, None, both, alae=[False, False, True]) == 2
    # ribs crossing some of the body's rows only: a chest crop's rib-bearing bodies, no sacrum
    assert _sacrum(bodies, pelvis, rib, None, both, alae=[False, False, False]) is None
    # nor below a body too short for a lumbar one (a thoracic body whose rib is real)
    short = [_body(5, 31), _body(45, 67), _body(67, 87)]
    assert _sacrum(short, pelvis, rib, None, both, alae=[False, False, True]) is None


def test_without_t12_an_iliac_crest_beside_l5_does_not_make_it_s1() -> None:
    from screening_node.analysis.labelling import _sacrum
    # The tcia series from L1's centre down (an abdomen-pelvis CT without the lowest ribs), measured: L1
    # cut, L2-L5, S1 and a cut S2. The iliac crest flanks L5 on one side (99 mm right, 45 left); S1 is
    # flanked on both sides (117 / 99 mm) and by its alae in every row. With no T12 to count from, the
    # run's first body, L5, was taken for S1 and every level was one off.
    bodies = [_body(None, 214, cut=True)] + [_body(a, b) for a, b in
                                             ((214, 250), (250, 286), (286, 325), (325, 361), (361, 387))]
    bodies.append(_body(387, None, cut=True))
    pelvis = [False] * 4 + [True, True, True]
    both = [False] * 5 + [True, True]
    alae = [False] * 5 + [True, False]
    rib = [False] * 7
    assert _sacrum(bodies, pelvis, rib, None, both, alae) == 5
    # without the alae (a two-sided body further down, such as the lower half of a split S1) the run's
    # first body stays S1, as does a body too short for a whole lumbar vertebra above the flanked one
    assert _sacrum(bodies, pelvis, rib, None, both) == 4
    split = bodies[:4] + [_body(325, 343), _body(343, 361)] + bodies[6:]
    assert _sacrum(split, pelvis, rib, None, both, alae) == 4


def test_a_cut_body_or_a_long_transverse_process_above_l5_does_not_hide_s1() -> None:
    from screening_node.analysis.labelling import _sacrum
    # The tcia series from L3's centre down (a pelvic CT), measured: L3 cut, L4 whose transverse process
    # reaches 54 mm (a "rib"), L5 beside the iliac crest (98 mm on one side), S1 flanked on both sides and by
    # its alae in every row, S2 cut. Pelvic bone below a rib-bearing body was refused (a chest crop's ribs).
    bodies = [_body(None, 20, cut=True), _body(20, 59), _body(59, 94), _body(94, 120), _body(120, None, cut=True)]
    pelvis, rib = [False, False, True, True, True], [False, True, True, True, True]
    both, alae = [False, False, False, True, True], [False, False, False, True, False]
    assert _sacrum(bodies, pelvis, rib, None, both, alae) == 3
    # from L4's centre down: L4 cut above L5, so no rib-free evidence above the run; S1 below L5 still holds
    bodies = [_body(None, 20, cut=True), _body(20, 56), _body(56, 82), _body(82, None, cut=True)]
    pelvis, rib = [False, True, True, True], [False, True, True, True]
    both, alae = [False, False, True, True], [False, False, True, False]
    assert _sacrum(bodies, pelvis, rib, None, both, alae) == 2
    # ribs flanked by lungs are never alae: a chest crop below a cut body stays without a sacrum
    assert _sacrum(bodies, pelvis, rib, None, both, [False] * 4) is None


@pytest.mark.parametrize("left_mm, flagged", [(56.0, True), (46.0, False)])
def test_a_rib_length_on_one_side_below_t12_lowers_the_label_confidence(left_mm: float, flagged: bool) -> None:
    """The first body bears ribs (80 mm to each side); the whole body below it reaches left_mm to the
    left and 32 mm to the right. A lumbar transverse process ends short of 52 mm; 56 mm on one side is a
    rib's length, so that body may be T12 with its rib short or cut on the other side (the upper 60 % of
    verse19-007: every level one off, said nowhere). The labels stand, flagged and less trusted."""
    from screening_node.analysis.labelling import label_bodies

    st, bodies = _vertebra_beside_the_curve(0.0)
    v = st.volume
    h, cl, ca = st.step_mm, st.half_lat, st.half_ap
    v[2:8, ca + 6:ca + 10, cl - int(80 / h):cl + int(80 / h) + 1] = 450.0   # ribs of the first body
    v[30:36, ca + 6:ca + 10, :] = 30.0
    v[30:36, ca + 6:ca + 10, cl - int(left_mm / h):cl + int(32 / h) + 1] = 450.0
    lab = label_bodies(st, bodies)
    assert lab.labels[:2] == ["T12", "L1"]
    assert any("may bear the 12th rib" in note for note in lab.notes) == flagged
    assert (lab.confidence <= 0.5) == flagged


@pytest.mark.parametrize("right_mm, one_sided", [(80.0, False), (30.0, True)])
def test_an_s1_flanked_on_one_side_only_lowers_the_label_confidence(right_mm: float, one_sided: bool) -> None:
    """The last body carries pelvic bone 80 mm out to the left; to the right 80 mm (alae and ilia: S1)
    or 30 mm (an ilium cut beside L5 by a tilted plane looks the same on its side). Both are taken for
    S1, but a one-sided one may be L5: the result says so and trusts its labels less."""
    from screening_node.analysis.labelling import label_bodies

    st, bodies = _vertebra_beside_the_curve(0.0)
    v = st.volume
    h, cl, ca = st.step_mm, st.half_lat, st.half_ap
    v[60:80, ca - 10:ca - 4, cl - int(80 / h):cl] = 450.0
    v[60:80, ca - 10:ca - 4, cl:cl + int(right_mm / h) + 1] = 450.0
    lab = label_bodies(st, bodies)
    assert lab.labels[1:] == ["L5", "S1"]
    assert (lab.confidence <= 0.6) == one_sided
    assert any("one side only" in note for note in lab.notes) == one_sided


def test_a_vertebra_cut_by_the_field_on_one_side_shows_no_pelvis_on_the_other() -> None:
    """The upper 60 % of verse19-006 (L4, the top of L5): the field ends 14 mm right of the last body's
    midline, and on its left bone reaches 71 mm. Not even the vertebra's own pedicle shows on the right, so
    the left shadow is no pelvis (a transverse process or an ilium seen beside a tight crop's midline);
    taken for one, the cut L5 became a one-sided "S1"."""
    from screening_node.analysis.labelling import label_bodies

    st, bodies = _vertebra_beside_the_curve(0.0)
    v = st.volume
    h, cl, ca = st.step_mm, st.half_lat, st.half_ap
    v[60:80, ca - 10:ca - 4, cl - int(80 / h):cl] = 450.0
    lab = label_bodies(st, bodies)
    assert lab.labels[-1] == "S1"  # one-sided, but the vertebra is whole on its other side: as before
    v[50:, :, cl + int(14 / h):] = -1024.0  # the field ends 14 mm right of the midline
    lab = label_bodies(st, bodies)
    assert "S1" not in lab.labels and lab.evidence[-1]["pelvis_reach_right"] < 20.0, lab.evidence[-1]


def test_lungs_beside_a_body_flanked_in_every_row_make_it_thoracic_not_sacral() -> None:
    """Ribs of the mid-thorax flank a body over all its rows as the sacral alae do (tcia T6-T9); a body
    so flanked is not graded under no level (it could be an S1 the sacrum test missed) unless lungs lie
    beside it, which never lie beside the sacrum."""
    from screening_node.analysis.labelling import label_bodies, lung_beside

    st, bodies = _vertebra_beside_the_curve(0.0)
    v = st.volume
    h, cl, ca = st.step_mm, st.half_lat, st.half_ap
    v[20:50, ca - 6:ca + 2, cl - int(60 / h):cl + int(60 / h) + 1] = 450.0  # bone 60 mm out, every row
    assert not lung_beside(st, bodies[1])
    lab = label_bodies(st, bodies)
    assert lab.evidence[1]["flanked_rows"] >= 0.9 and not lab.thoracolumbar[1]
    for side in (slice(cl - int(100 / h), cl - int(32 / h)), slice(cl + int(32 / h), cl + int(100 / h))):
        v[20:50, ca - 20:ca - 8, side] = -850.0  # aerated lung in front of the ribs on both sides
    assert lung_beside(st, bodies[1])
    lab = label_bodies(st, bodies)
    assert lab.thoracolumbar[1]


def test_discs_found_again_are_kept_only_when_they_pair_with_the_first() -> None:
    from screening_node.analysis.vertebrae import same_discs
    first = [28.0, 64.0, 102.0, 139.0, 176.0, 210.0, 232.0]  # ts-example's discs mapped to the new rows
    assert same_discs(first, [28.0, 64.0, 101.0, 139.0, 176.0, 211.0])  # the last one beyond the new end
    assert same_discs([25.0, 46.0, 67.0], [8.0, 29.0, 49.0, 70.0])  # one more at the top of the field
    assert same_discs([232.0, 252.0, 288.0], [236.0, 262.0, 289.0])  # a tilted disc mapped 10 mm off
    # a body split at its dark marrow centre (H7 case 28, T11), or two bodies merged: not the same discs
    assert not same_discs([170.0, 197.0, 225.0], [170.0, 190.0, 203.0, 225.0])
    assert not same_discs([170.0, 197.0, 225.0], [170.0, 225.0])
    # a disc found inside the first body of a crop (verse19-007 cut in T10), paired with the real one
    # above it, which the second straightening no longer shows: T11 17 mm tall instead of 29
    assert not same_discs([14.0, 43.0, 70.0, 100.0], [27.0, 44.0, 70.0, 100.0])


def test_alae_flank_a_body_over_all_its_rows_a_rib_over_a_few() -> None:
    """S1's alae reach out on both sides in every row of the body; a rib (or a transverse process)
    crosses only some of a body's rows. A body flanked so is not graded as thoracic where no anchor
    names the levels (ts-example's lower 60 %: its S1, read 6.8 mm tall, was graded a grade-3 crush)."""
    from screening_node.analysis.labelling import flanked_rows_share
    from screening_node.analysis.straighten import Straightened

    rows, n_ap, n_lat, h = 40, 40, 111, 2.0     # 2 mm samples across, 1 mm rows
    half_ap, half_lat = 10, 55
    eye = np.tile(np.eye(3), (rows, 1, 1))
    body = BodyFinding(5.0, 35.0, 20.0, (0.0, 20.0), 20.0, None, None)
    v = np.full((rows, n_ap, n_lat), 30.0, np.float32)
    v[:, 10:25, half_lat - 12:half_lat + 13] = 400.0            # the body and its arch
    v[5:36, 12:22, half_lat - 30:half_lat + 31] = 400.0          # alae out to 60 mm over every row
    st = Straightened(v, np.zeros((rows, 3)), eye[:, 2], eye[:, 1], eye[:, 0], half_ap, half_lat, h)
    assert flanked_rows_share(st, body, (0.0, 40.0), 150.0, 40.0) == pytest.approx(1.0)
    v = np.full((rows, n_ap, n_lat), 30.0, np.float32)
    v[:, 10:25, half_lat - 12:half_lat + 13] = 400.0
    v[12:20, 20:23, half_lat - 30:half_lat + 31] = 400.0          # ribs: 8 of the body's 31 rows
    st = Straightened(v, np.zeros((rows, 3)), eye[:, 2], eye[:, 1], eye[:, 0], half_ap, half_lat, h)
    assert flanked_rows_share(st, body, (0.0, 40.0), 150.0, 40.0) == pytest.approx(8 / 31, abs=0.01)


def test_a_stack_of_sections_is_enclosed_as_each_section_alone() -> None:
    # Random cortex with rings (holes to fill, some open at a section's edge); the stack is done in one
    # pass and must give every section what closing and scipy's hole filling give it alone.
    rng = np.random.default_rng(3)
    stack = rng.random((12, 40, 30)) > 0.8
    for k in range(12):
        stack[k] |= _disc((40, 30), (10 + k, 8 + k), 7) & ~_disc((40, 30), (10 + k, 8 + k), 5)
    alone = [ndimage.binary_fill_holes(ndimage.binary_closing(s, np.ones((3, 3), bool), iterations=1))
             for s in stack]
    assert np.array_equal(_enclosed(stack), np.array(alone))
    assert np.array_equal(_enclosed(stack[4]), alone[4])
    assert 0 < np.mean(alone) < 1  # something enclosed, something outside


@pytest.mark.parametrize("offset_mm", [12.0, -8.0])
def test_a_curve_down_one_side_of_the_arch_is_brought_to_the_vertebras_mirror_plane(offset_mm: float) -> None:
    from screening_node.analysis.body_centre import _profile_offsets_on_mirror_planes, mirror_axis_offsets

    # A coarse path down one side of the paired arch (3 mm osteoporotic chests, where the body's thin
    # cortex adds little on the midline): the curve's own plane cuts a pedicle, and the body was placed in
    # the canal. The profiles are then read on the plane the cross-sections mirror about.
    st, _ = _vertebra_beside_the_curve(offset_mm)
    axis_mm = mirror_axis_offsets(st.volume, st.half_lat, st.step_mm)
    assert np.abs(axis_mm - offset_mm).max() <= st.step_mm
    _, lat_c = _profile_offsets_on_mirror_planes(st, axis_mm)
    assert np.abs(lat_c - offset_mm).max() <= st.step_mm


def test_a_curve_on_the_mirror_plane_keeps_its_own_profiles() -> None:
    from screening_node.analysis.body_centre import mirror_axis_offsets

    st, _ = _vertebra_beside_the_curve(0.0)
    assert np.abs(mirror_axis_offsets(st.volume, st.half_lat, st.step_mm)).max() == 0.0
