"""Disc rows along the straightened axis: which core dip in a pitch gap is a disc."""

from __future__ import annotations

import numpy as np

from screening_node.analysis.vertebrae import _Dip, _fill_gaps, _likeliest_disc, find_discs

# Core dips of a 3 mm osteoporotic chest phantom (fast preset, seed 4, case 5), measured: row, depth
# below the endplates (HU), lateral-wall ratio. Bodies' dark marrow centres lie at rows 23, 43, ..., 144
# (truth) and dip deeper than the thin, blurred upper thoracic discs between them, but the lateral walls
# stay at the body's level there; at the discs they drop.
UPPER_THORACIC = [(23, 71, 0.99), (33, 61, 0.76), (43, 64, 1.01), (52, 42, 0.83), (62, 73, 0.99),
                  (72, 43, 0.83), (82, 88, 0.95), (92, 15, 0.81), (102, 99, 0.93), (112, 22, 0.90),
                  (124, 114, 0.98), (134, 26, 0.76), (144, 95, 1.02)]
MARROW_CENTRES = {23, 43, 62, 82, 102, 124, 144}
DISCS = {33, 52, 72, 92, 112, 134}


def test_a_dip_that_breaks_the_walls_beats_a_deeper_marrow_centre() -> None:
    cands = [_Dip(92, 15.0, 0.81), _Dip(102, 99.0, 0.93), _Dip(112, 22.0, 0.90)]
    assert _likeliest_disc(cands, None, pitch=20.0) == 112
    assert _likeliest_disc(cands, expected=95.0, pitch=20.0) == 92


def test_a_sharp_disc_dip_beats_a_deeper_broad_marrow_centre() -> None:
    # 3 mm thoracic spine of a severely degenerate phantom (fast seed 4, case 12): osteophytes bridge the
    # disc, so its walls fall less than usual, and the broad marrow dip of the body below falls nearly as far.
    disc, marrow = _Dip(189, 55.0, 0.70, 3.0), _Dip(177, 109.0, 0.88, 13.0)
    assert _likeliest_disc([marrow, disc], None, pitch=20.0) == 189
    assert _likeliest_disc([marrow, disc], expected=180.0, pitch=24.0) == 189


def test_a_shallow_bowl_breaking_the_walls_does_not_outrank_a_deep_disc_where_no_dip_has_a_discs_shape() -> None:
    # A 3 mm spine crop (fast seed 12, --prevalence 0.3, case 22): above a crushed L1 (13 mm tall, dark) the
    # T12/L1 disc dips 93 HU over 10 rows, walls unbroken; T12's marrow 15 rows above dips 18 HU over 13
    # rows, walls at 0.82. Taken for the disc, it threw the re-centred straightening away (its discs no longer
    # paired with the first ones; the crush read 32 %, now 47 %), and on a curve a fraction of a mm away it
    # split T12 and put every label one off.
    bowl, disc = _Dip(117, 18.0, 0.82, 13.0), _Dip(132, 93.0, 1.00, 10.0)
    assert _likeliest_disc([bowl, disc], None, pitch=30.0) == 132
    # As sharp as half the sharpest, a broken wall still decides among broad dips.
    assert _likeliest_disc([_Dip(117, 60.0, 0.82, 11.0), disc], None, pitch=30.0) == 117


def test_without_a_wall_break_the_deepest_of_equally_wide_dips_is_taken() -> None:
    # Beside the sacral alae the walls stay bright at the disc: the core dip alone decides.
    assert _likeliest_disc([_Dip(100, 30.0, 1.0), _Dip(110, 50.0, 0.98)], None, pitch=30.0) == 110


def test_thin_upper_thoracic_discs_are_found_between_dark_marrow_centres() -> None:
    # Confident discs: the top one and the lower thoracic / lumbar ones (pitch 26-32 mm).
    confident = [13, 186, 244, 270, 297, 327, 359]
    weak = [_Dip(r, float(d), w) for r, d, w in UPPER_THORACIC]
    rows = 400
    walls = np.full(rows, 250.0)   # no wall-dip fallback evidence: the weak dips decide
    found = set(_fill_gaps(confident, weak, np.ones(rows, bool), walls))
    assert DISCS <= found
    assert not found & MARROW_CENTRES


def test_a_wall_break_inside_a_short_body_does_not_split_it() -> None:
    # A fractured lumbar body (disc to disc 30 mm among 30-34 mm pitches) whose buckled cortex and
    # impacted endplate dip in its middle: splitting it would make two 15 mm "vertebrae" (one a
    # false crush).
    confident = [0, 34, 66, 96, 130, 163]
    weak = [_Dip(81, 40.0, 0.7)]
    rows = 200
    found = _fill_gaps(confident, weak, np.ones(rows, bool), np.full(rows, 250.0))
    assert 81 not in found


def test_without_any_measured_pitch_a_typical_one_is_expected() -> None:
    # 3 mm osteoporotic abdomen: only two confident discs, 207 mm apart (no single vertebra's pitch
    # among them). The discs between them dip little in the core but break the lateral walls.
    confident = [86, 293]
    weak = [_Dip(r, 20.0, 0.8) for r in (118, 155, 191, 237, 265)] + [_Dip(r, 60.0, 1.0) for r in (102, 136, 173, 214)]
    rows = 330
    found = _fill_gaps(confident, weak, np.ones(rows, bool), np.full(rows, 250.0))
    assert {118, 155, 191, 237}.issubset(found)
    assert not {102, 136, 173, 214} & set(found)


def test_a_blurred_wall_dip_marks_the_disc_a_gap_must_hold() -> None:
    # The top of a chest: the curve runs a few mm beside T1, so the core shows no dip at the T1/T2
    # disc, but the lateral walls drop to 0.85 of their level there (shoulder girdle bone around).
    confident = [11, 33, 72, 92, 113, 134, 155]   # T1+T2 share 33..72 at a pitch of ~20 mm
    rows = 200
    walls = np.full(rows, 330.0)
    walls[50:56] = [300.0, 290.0, 282.0, 280.0, 295.0, 310.0]
    found = _fill_gaps(confident, [], np.ones(rows, bool), walls)
    assert any(51 <= m <= 54 for m in found)


def test_from_a_single_confident_disc_the_neighbours_are_found() -> None:
    # 3 mm lumbar phantom (fast preset, seed 6, case 20), measured: only the disc at row 106 broke the
    # lateral walls below DISC_WALL_RATIO; the others narrowly missed it (0.63-0.68) or dipped less.
    # With no interval to take a pitch from, a mid-spine one is expected on both sides.
    weak = [_Dip(32, 54.0, 0.82), _Dip(61, 41.0, 1.07), _Dip(71, 82.0, 0.68), _Dip(88, 37.0, 1.0),
            _Dip(122, 16.0, 1.02), _Dip(142, 106.0, 0.64), _Dip(159, 34.0, 0.99), _Dip(180, 99.0, 0.63),
            _Dip(207, 37.0, 0.99), _Dip(223, 43.0, 1.25), _Dip(244, 44.0, 0.93)]
    rows = 270
    found = _fill_gaps([106], weak, np.ones(rows, bool), np.full(rows, 250.0))
    assert {71, 106, 142, 180} <= set(found)
    assert not {61, 88, 122, 159} & set(found)


def test_two_marrow_centres_in_one_interval_are_two_bodies() -> None:
    from screening_node.analysis.vertebrae import _between_marrow_centres
    # 3 mm thoracic spine of a severely degenerate phantom (fast seed 4, case 12), discs 141 and 189 found:
    # osteophytes bridge the T6/T7 disc at 164, whose walls stay bright (ratio 1.03).
    weak = [_Dip(141, 63.0, 0.65, 4.0), _Dip(153, 104.0, 0.95, 11.0), _Dip(164, 48.0, 1.03, 3.0),
            _Dip(177, 109.0, 0.88, 13.0), _Dip(189, 55.0, 0.70, 3.0)]
    assert _between_marrow_centres(weak, 141, 189, pitch=24.0) == 164
    # without a dip of its own, the disc lies halfway between the two centres
    assert _between_marrow_centres([d for d in weak if d.row != 164], 141, 189, pitch=24.0) == 165
    # one body: one marrow centre, whatever narrow dips it holds (a vein, a fracture line)
    assert _between_marrow_centres([_Dip(150, 30.0, 1.0, 3.0), _Dip(160, 90.0, 0.95, 12.0)], 141, 176,
                                   pitch=24.0) is None
    # nor is a split kept that leaves a part shorter than the smallest vertebra's pitch
    assert _between_marrow_centres([_Dip(145, 90.0, 0.95, 9.0), _Dip(149, 40.0, 1.0, 3.0),
                                    _Dip(165, 90.0, 0.95, 9.0)], 141, 176, pitch=24.0) is None
    # at a lumbar pitch a disc always dips the core: two "marrow centres" there are no evidence of a disc
    assert _between_marrow_centres(weak, 141, 189, pitch=30.0) is None


def test_past_the_last_disc_found_a_disc_lies_between_two_marrow_centres_one_pitch_apart() -> None:
    # Top of a 3 mm osteopenic trunk phantom (fast seed 4, case 29), measured: the upper thoracic discs
    # leave no dip of their own above row 106, but the marrow centres of T3 (78) and T4 (96) do, and past
    # T3 the discs show again (47, 31, 13). The window beyond 106 (one pitch, ~21 rows, up) held no dip,
    # so C6-T3 were one body cut by the field and the levels above T4 were lost.
    confident = [169, 189, 213, 237, 263, 289, 319, 351, 383, 418, 454]
    weak = [_Dip(13, 24.0, 0.61, 5.0), _Dip(47, 18.0, 0.89, 3.0), _Dip(61, 72.0, 0.92, 12.0),
            _Dip(78, 78.0, 0.98, 8.0), _Dip(96, 106.0, 0.98, 9.0), _Dip(106, 58.0, 0.74, 3.0),
            _Dip(117, 107.0, 1.0, 10.0), _Dip(127, 28.0, 0.65, 3.0), _Dip(137, 105.0, 0.99, 8.0),
            _Dip(146, 42.0, 0.64, 3.0), _Dip(158, 107.0, 0.98, 10.0), _Dip(31, 14.0, 0.63, 2.0)]
    weak += [_Dip(r, 120.0, 0.4, 5.0) for r in confident]
    valid = np.ones(480, bool)
    walls = np.full(480, 300.0)
    found = _fill_gaps(confident, weak, valid, walls)
    assert [r for r in found if r < 110] == [13, 31, 47, 70, 87, 106]


def test_past_the_last_lumbar_disc_a_broad_disc_dip_is_not_taken_for_a_marrow_centre() -> None:
    # tcia with 45 HU noise added (3 mm, seed 2): below L4/L5 (326) the L5/S1 disc, tilted against the
    # planes, dips 9 rows wide (361) and L5's own mottle 8 (339). Both passed for marrow centres one
    # (marrow) pitch apart, and the disc was placed halfway between them, 11 mm into L5 (a false crush).
    confident = [216, 252, 288, 326]
    weak = [_Dip(216, 150.0, 0.53, 7.0), _Dip(228, 17.0, 0.94, 5.0), _Dip(240, 15.0, 1.02, 5.0),
            _Dip(252, 177.0, 0.39, 7.0), _Dip(288, 183.0, 0.38, 8.0), _Dip(303, 23.0, 0.96, 8.0),
            _Dip(326, 148.0, 0.42, 7.0), _Dip(339, 38.0, 1.02, 8.0), _Dip(361, 141.0, 0.86, 9.0)]
    rows = 400
    found = _fill_gaps(confident, weak, np.ones(rows, bool), np.full(rows, 300.0))
    assert 361 in found and not any(330 < r < 361 for r in found)


def test_below_the_last_disc_a_dip_where_the_next_disc_is_expected_is_no_marrow_centre() -> None:
    # ts-example with 45 HU noise added (3 mm voxels, seed 2), first straightening: its lumbar discs dip
    # 9-10 rows wide at half depth, as broad as a marrow centre, and set a marrow pitch of 20.5 mm among
    # discs 37 apart. Below the last disc found (L4/L5, 184) the L5/S1 disc (224, 3 rows from where one
    # pitch puts it) then passed for a marrow centre and a disc was placed halfway to L5's own (203),
    # 10 mm into L5: a false 51 % crush.
    confident = [73, 110, 147, 184]
    weak = [_Dip(37, 23.7, 0.66, 6.0), _Dip(59, 54.6, 0.99, 9.0), _Dip(73, 60.1, 0.60, 7.0),
            _Dip(90, 22.3, 0.90, 14.0), _Dip(110, 111.2, 0.50, 9.0), _Dip(147, 102.1, 0.57, 10.0),
            _Dip(167, 63.4, 0.89, 14.0), _Dip(184, 84.0, 0.58, 10.0), _Dip(203, 64.8, 0.82, 13.0),
            _Dip(224, 89.1, 0.73, 8.0)]
    rows = 240
    found = _fill_gaps(confident, weak, np.ones(rows, bool), np.full(rows, 300.0))
    assert 224 in found and not any(184 < r < 224 for r in found)


def test_below_the_last_disc_two_dark_marrow_centres_still_place_the_disc_between_them() -> None:
    # A 3 mm osteoporotic chest phantom (fast seed 7, case 28): below T12 (last disc 307, pitch 28) the
    # next disc leaves no dip between two marrow centres 11-12 rows either side of where it is expected.
    confident = [10, 30, 90, 108, 132, 152, 175, 223, 249, 277, 307]
    weak = [_Dip(10, 62.2, 0.63, 3.0), _Dip(21, 74.3, 0.96, 8.0), _Dip(30, 45.0, 0.78, 3.0),
            _Dip(40, 79.4, 0.99, 8.0), _Dip(49, 16.0, 0.95, 3.0), _Dip(59, 98.0, 0.94, 10.0),
            _Dip(78, 101.3, 0.97, 10.0), _Dip(90, 61.9, 0.65, 4.0), _Dip(99, 98.9, 0.99, 7.0),
            _Dip(108, 51.0, 0.65, 4.0), _Dip(120, 114.4, 0.88, 11.0), _Dip(132, 46.8, 0.70, 4.0),
            _Dip(142, 111.9, 0.97, 9.0), _Dip(152, 32.4, 0.70, 3.0), _Dip(164, 114.4, 0.90, 11.0),
            _Dip(175, 32.8, 0.72, 3.0), _Dip(186, 117.4, 0.95, 11.0), _Dip(198, 20.0, 0.74, 2.0),
            _Dip(209, 106.0, 1.01, 13.0), _Dip(223, 65.0, 0.66, 4.0), _Dip(237, 116.4, 0.99, 13.0),
            _Dip(249, 54.1, 0.76, 3.0), _Dip(277, 75.2, 0.65, 4.0), _Dip(307, 45.2, 0.67, 4.0),
            _Dip(323, 62.2, 0.90, 13.0), _Dip(345, 80.4, 1.04, 12.0)]
    rows = 360
    found = _fill_gaps(confident, weak, np.ones(rows, bool), np.full(rows, 300.0))
    assert 334 in found


def test_below_a_single_disc_the_marrow_centres_are_not_judged_by_a_typical_pitch() -> None:
    # A 3 mm osteoporotic chest phantom (fast seed 12 with runs of fractures, case 2): its top disc (12) is
    # the only confident one. A mid-spine pitch (30 rows) expects the next disc at 42, where the second
    # body's marrow centre below it lies (41), 19 rows below the first's (22): still the two centres place
    # the disc between them (32).
    weak = [_Dip(12, 34.2, 0.57, 3.0), _Dip(22, 69.9, 1.00, 10.0), _Dip(41, 63.3, 1.02, 9.0),
            _Dip(59, 112.3, 0.92, 11.0), _Dip(76, 110.0, 0.96, 9.0), _Dip(86, 39.2, 0.80, 2.0),
            _Dip(96, 122.3, 0.87, 9.0), _Dip(115, 112.7, 1.00, 10.0), _Dip(125, 28.0, 0.71, 3.0)]
    rows = 130
    found = _fill_gaps([12], weak, np.ones(rows, bool), np.full(rows, 300.0))
    assert found[:3] == [12, 32, 50]


def test_a_span_of_two_pitches_holds_two_vertebrae() -> None:
    from screening_node.analysis.vertebrae import _two_vertebrae
    # Upper thoracic spans of a 3 mm chest (fast seed 5, case 24: a T2/T3 disc no evidence showed).
    discs = [10, 30, 50, 91, 112, 133, 155]
    assert _two_vertebrae(discs, 2)          # 41 rows against a local pitch of 21: T2 and T3
    assert not any(_two_vertebrae(discs, k) for k in (0, 1, 3, 4, 5))
    # A taller vertebra among its neighbours (1.5 pitches: a lumbar body below thoracic ones) is one.
    assert not _two_vertebrae([0, 22, 44, 77, 110], 2)
    # Beyond a vertebra's longest pitch lies the fused sacrum, not two vertebrae.
    assert not _two_vertebrae([0, 35, 70, 140], 2)


def test_two_vertebrae_whose_disc_was_not_seen_are_counted_as_two() -> None:
    from screening_node.analysis.straighten import Straightened
    from screening_node.analysis.vertebrae import UNSEEN_DISC, find_bodies
    # Six vertebrae (16-row bodies with cortical walls and 150 HU marrow, 4-row discs); the third and
    # fourth are one block of bone (a disc bridged or too thin to show), so no core or wall dip marks it.
    rows = 6 * 20 + 4
    v = np.full((rows, 121, 81), 40.0)
    for r0, r1 in ((4, 20), (24, 40), (44, 80), (84, 100), (104, 120)):
        v[r0:r1, 45:76, 20:61] = 600.0
        v[r0 + 1:r1 - 1, 46:75, 21:60] = 150.0
    from scipy import ndimage
    v = ndimage.gaussian_filter(v, 0.8)
    points = np.stack([np.zeros(rows), np.zeros(rows), -np.arange(rows, dtype=float)], axis=1)
    tangents = np.tile([0.0, 0.0, -1.0], (rows, 1))
    col_dirs = np.tile([0.0, 1.0, 0.0], (rows, 1))
    st = Straightened(v.astype(np.float32), points, tangents, col_dirs, np.cross(tangents, col_dirs), 60, 40)
    bodies, _ = find_bodies(st)
    whole = [b for b in bodies if b.whole]
    assert len(whole) == 4  # the six bodies less the cut ends, the bridged pair counted as two
    split = [b for b in whole if b.reason == UNSEEN_DISC]
    assert len(split) == 2 and split[0].bottom_disc == split[1].top_disc
    assert abs(split[0].bottom_disc - 62) <= 2 and split[0].keypoints is None  # the block's middle


# Body core (smoothed) and lateral-wall profiles of the real 3 mm tcia series cut 8 mm below T12's
# centre (a chest CT that ends above the lumbar spine), measured on its straightened spine, T5 (cut)
# to T12 (cut). Its discs dip the core by 30-108 HU at rows 30, 51, 73, 97, 123 and 150, but the rib
# heads articulate across thoracic discs, and the lateral walls fall only to 0.74-1.0 of their level
# there: no disc passes DISC_WALL_RATIO.
CHEST_CORE = [
    319, 321, 323, 322, 317, 309, 301, 294, 291, 292, 296, 302, 306, 307, 308, 309, 311, 314, 316, 317,
    318, 319, 321, 325, 329, 332, 330, 318, 298, 280, 274, 282, 295, 304, 304, 300, 296, 295, 297, 299,
    301, 302, 302, 302, 305, 310, 315, 314, 299, 275, 254, 247, 258, 275, 288, 290, 286, 283, 283, 287,
    292, 296, 297, 296, 294, 293, 296, 303, 310, 311, 302, 283, 262, 250, 252, 265, 281, 290, 290, 285,
    281, 281, 286, 294, 301, 303, 302, 296, 291, 289, 293, 301, 308, 308, 294, 268, 242, 227, 234, 257,
    285, 302, 304, 294, 281, 271, 269, 272, 279, 287, 294, 297, 297, 295, 295, 297, 300, 302, 297, 280,
    252, 222, 200, 197, 212, 239, 265, 280, 284, 280, 274, 270, 270, 273, 277, 281, 284, 285, 286, 286,
    287, 290, 295, 301, 303, 293, 271, 240, 211, 189, 179, 185, 207, 238, 266, 282, 287, 284, 279, 273,
    269, 267, 267, 267, 266, 263, 260, 256, 253, 252, 251]
CHEST_WALLS = [
    284, 292, 305, 320, 333, 339, 335, 324, 312, 304, 301, 298, 290, 278, 265, 259, 260, 264, 269, 274,
    280, 286, 294, 303, 317, 333, 345, 340, 316, 288, 273, 274, 282, 285, 280, 271, 265, 264, 266, 269,
    274, 280, 286, 291, 296, 303, 315, 326, 324, 301, 267, 245, 248, 266, 285, 293, 294, 294, 296, 300,
    304, 306, 306, 305, 305, 306, 313, 329, 347, 354, 343, 318, 299, 297, 312, 331, 340, 333, 318, 302,
    290, 285, 285, 288, 291, 294, 294, 293, 291, 291, 294, 303, 315, 324, 325, 311, 282, 257, 253, 274,
    303, 321, 317, 301, 285, 275, 271, 273, 277, 283, 290, 293, 293, 293, 293, 293, 297, 305, 308, 295,
    265, 229, 208, 209, 225, 253, 277, 283, 276, 266, 259, 258, 259, 263, 267, 271, 273, 273, 273, 274,
    274, 275, 285, 304, 316, 305, 273, 240, 217, 204, 202, 211, 235, 270, 293, 290, 275, 265, 262, 262,
    264, 265, 267, 272, 279, 287, 295, 302, 313, 317, 310]


def test_a_chest_field_whose_discs_never_break_the_walls_is_still_split_at_its_discs() -> None:
    core, walls = np.array(CHEST_CORE, float), np.array(CHEST_WALLS, float)
    found = find_discs(core, walls, np.ones(core.size, bool))
    assert found == [8, 30, 51, 73, 97, 123, 150], found  # row 8: the T5/T6 disc near the field's top


# Core dips of the top of a 3 mm osteoporotic trunk phantom (fast preset, seed 4, case 15) on a curve
# through the bodies' centres, measured: row, depth (HU), lateral-wall ratio and width at half depth. The
# marrow centres of C7-T6 (truth rows 21, 38, 56, 74, 93, 113, 133) dip 43-113 HU; of the thin discs
# between them (truth 30, 47, 65, 84, 103, 124) only T4/T5 dips enough to count. The only confident discs
# are C6/C7 and those below T10, whose pitch (~28 mm) is far from the upper thoracic one (~19 mm).
TRUNK_TOP = [(10, 48, 0.40, 4), (21, 43, 1.03, 8), (38, 53, 1.10, 7), (56, 91, 0.86, 9), (74, 83, 0.97, 8),
             (93, 92, 0.89, 9), (103, 24, 0.88, 3), (115, 107, 0.98, 11), (134, 113, 0.97, 9), (155, 115, 0.98, 13),
             (166, 20, 0.78, 2), (176, 121, 0.97, 11), (188, 36, 0.75, 3), (198, 112, 1.00, 11), (211, 34, 0.68, 3),
             (223, 110, 0.97, 12)]


def test_upper_thoracic_marrow_centres_are_judged_at_their_own_pitch() -> None:
    # At the lumbar pitch, the centres of C7 and T2 (35 rows apart) passed for neighbours, and T1's centre
    # between them (7 rows wide, no broader than a disc) for their disc; so did T4's, sharper than the
    # T4/T5 disc below it. The marrow centres' own spacing gives the local pitch.
    confident = [10, 235, 261, 289, 318, 349, 381, 417, 453]
    weak = [_Dip(r, float(d), w, float(width)) for r, d, w, width in TRUNK_TOP]
    rows = 480
    found = _fill_gaps(confident, weak, np.ones(rows, bool), np.full(rows, 250.0))
    upper = [r for r in found if r < 140]
    assert len(upper) == 7 and all(abs(a - b) <= 2 for a, b in zip(upper, [10, 30, 47, 65, 84, 103, 124])), upper


def test_where_a_disc_dips_a_marrow_centre_a_third_of_a_pitch_wide_does_not_compete() -> None:
    marrow, disc = _Dip(38, 53.0, 0.89, 7.0), _Dip(47, 24.0, 0.88, 3.0)
    assert _likeliest_disc([marrow, disc], None, pitch=19.0) == 47
    assert _likeliest_disc([marrow, disc], expected=40.0, pitch=19.0) == 47
    # at a lumbar pitch the same dip is a disc's width, and competes: the one nearer the expected row
    assert _likeliest_disc([marrow, disc], expected=40.0, pitch=28.0) == 38
    # alone in its window, a marrow-like dip is still the best guess there is
    assert _likeliest_disc([marrow], None, pitch=19.0) == 38
