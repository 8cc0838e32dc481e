"""Endplate and wall surfaces: the blurred cortical-shell fit finds the surface, not the blur's edge."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from screening_node.analysis.shell import shell_surface


def _blurred_shell(surface: float, sigma: float, shell: float = 1.0, n: int = 40, step: float = 0.05,
                   outside: float = 80.0, cortex: float = 800.0, marrow: float = 150.0) -> np.ndarray:
    """1-mm samples of a profile: outside tissue, a cortical shell from ``surface`` inward (+x), marrow,
    blurred by a Gaussian of ``sigma`` mm (rendered finely, then averaged over each 1 mm sample)."""
    x = np.arange(0, n, step)
    fine = np.where(x < surface, outside, np.where(x < surface + shell, cortex, marrow))
    fine = ndimage.gaussian_filter1d(fine, sigma / step)
    return fine.reshape(n, -1).mean(axis=1)


@pytest.mark.parametrize("surface, sigma", [(15.3, 0.6), (15.8, 1.0), (16.1, 1.4)])
def test_shell_fit_finds_the_surface_the_steepest_slope_misses(surface: float, sigma: float) -> None:
    prof = _blurred_shell(surface, sigma)
    centres = np.arange(len(prof)) + 0.5  # sample i covers [i, i + 1)
    steepest = centres[int(np.argmax(np.gradient(prof)))]
    fitted = shell_surface(prof, int(surface) - 5, int(surface) + 5, +1, float(int(surface))) + 0.5
    assert abs(fitted - surface) <= 0.15
    assert abs(steepest - surface) > abs(fitted - surface)  # the reason for the fit


def test_shell_fit_reads_the_other_direction_and_refuses_a_flat_profile() -> None:
    prof = _blurred_shell(15.4, 0.8)[::-1].copy()  # surface faces +x now: inward is -x
    surface_from_start = len(prof) - 15.4          # the surface position on the reversed axis
    fitted = shell_surface(prof, 19, 30, -1, 24.0) + 0.5
    assert abs(fitted - surface_from_start) <= 0.15
    assert shell_surface(np.full(20, 100.0), 2, 15, +1, 8.0) is None


def _thin_disc_profile(disc: tuple[int, int], cortex: float = 450.0, marrow: float = 50.0,
                       disc_hu: float = 90.0, n: int = 60) -> np.ndarray:
    """Rows through two osteoporotic bodies and the thin disc between them (rows disc[0]..disc[1]-1),
    each endplate a 1 mm cortex facing the disc, blurred like a 1 mm scan."""
    prof = np.full(n, marrow)
    prof[disc[0] - 1] = cortex        # upper body's inferior endplate
    prof[disc[0]:disc[1]] = disc_hu
    prof[disc[1]] = cortex            # lower body's superior endplate
    return ndimage.gaussian_filter1d(prof, 0.8)


def test_edges_face_the_disc_where_a_neighbours_cortex_is_as_steep() -> None:
    from screening_node.analysis.endplates import _edge
    prof = _thin_disc_profile((30, 34))
    grad = np.gradient(ndimage.gaussian_filter1d(prof, 0.8))
    # Fatty marrow is darker than the disc: the neighbour cortex's inner side is the steepest edge.
    sup = _edge(grad, 24, 36, +1)
    inf = _edge(grad, 28, 40, -1)
    # The rise into the lower body's endplate (row 34), not the upper cortex's inner side (row ~28);
    # the fall out of the upper body's endplate (row 29), not the lower cortex's inner side (row ~35).
    assert sup is not None and 32.5 <= sup <= 34.0
    assert inf is not None and 29.0 <= inf <= 30.5


def test_fat_in_front_of_a_body_is_not_framed_by_its_endplates() -> None:
    from screening_node.analysis.walls import _framed_mask
    # Mid-sagittal plane (rows, ap) of a 3 mm scan: discs at rows 4 and 36; the body (marrow 110 HU,
    # endplates 400 HU) in columns 20-49; in front of it, fat blurred to -20 HU whose endplate rows
    # catch the blur of the osteophyte-lined corners (+60 HU).
    plane = np.full((41, 70), 30.0)
    plane[:, 20:50] = 110.0
    plane[[6, 7, 33, 34], 20:50] = 400.0
    plane[:, 8:20] = -20.0
    plane[[6, 7, 33, 34], 8:20] = 40.0
    framed = _framed_mask(plane, 4, 36)
    assert framed is not None
    assert framed[22:48].all()
    assert not framed[8:18].any()


def _straight_column(volume: np.ndarray) -> "Straightened":
    """A straightened frame on a straight vertical curve (rows 1 mm, ap and lat offsets in mm)."""
    from screening_node.analysis.straighten import Straightened
    rows = volume.shape[0]
    points = np.stack([np.zeros(rows), np.zeros(rows), -np.arange(rows, dtype=float)], axis=1)
    tangents = np.tile([0.0, 0.0, -1.0], (rows, 1))
    col_dirs = np.tile([0.0, 1.0, 0.0], (rows, 1))
    return Straightened(volume.astype(np.float32), points, tangents, col_dirs, np.cross(tangents, col_dirs),
                        volume.shape[1] // 2, volume.shape[2] // 2)


def _body_volume(front_drop: float = 0.0, fleck: bool = False, cortex: float = 700.0, marrow: float = 200.0,
                 gas: bool = False, cup: float = 0.0, node: tuple[float, float, float] | None = None,
                 wedge: float = 0.0) -> np.ndarray:
    """Three stacked bodies (rows 0-24, 30-59, 65-99) 30 mm deep and 40 mm wide with 1 mm cortical
    endplates and walls, discs between, blurred like a 1 mm scan; axes (row, ap, lat), centre 40 / 30.
    The middle body's superior endplate sinks linearly by ``front_drop`` mm from its middle to its
    front (a wedge); ``wedge``: it sinks linearly from 0 at the back wall to ``wedge`` mm at the front
    (a wedge fracture across the whole depth); ``fleck``: a bright fleck 3 mm under its front corner on the mid-sagittal plane only;
    ``gas``: a vacuum cleft (-850 HU) 2 mm thick in the middle of the disc above it; ``cup``: its superior
    endplate sinks into a smooth bowl ``cup`` mm deep at the middle (a biconcave fracture), filled by the disc;
    ``node`` (lat offset, radius, depth mm): a Schmorl's node in that endplate, a half-ellipsoid pit of disc
    tissue with a cortical rim, centred 2 mm behind the middle."""
    v = np.full((100, 81, 61), 40.0)
    for r0, r1 in ((0, 24), (30, 59), (65, 99)):
        v[r0:r1 + 1, 25:56, 10:51] = cortex
        v[r0 + 1:r1, 26:55, 11:50] = marrow
    for a in range(25, 40):  # the wedge: disc where the front of the body has lost height
        top = 30 + int(round(front_drop * (40 - a) / 15))
        v[30:top, a, 10:51] = 40.0
        v[top, a, 10:51] = 700.0
    for a in range(25, 56) if wedge else ():
        top = 30 + int(round(wedge * (55 - a) / 30))
        v[30:top, a, 10:51] = 40.0
        v[top, a, 10:51] = cortex
    if cup:
        for a in range(26, 55):
            for lat in range(11, 50):
                r2 = ((a - 40) / 12.0) ** 2 + ((lat - 30) / 16.0) ** 2
                depth = int(round(cup * (1 - r2) ** 2)) if r2 < 1 else 0
                if depth:
                    v[30:30 + depth, a, lat] = 40.0
                    v[30 + depth, a, lat] = cortex
    if node:
        lat0, radius, depth = node
        for a in range(26, 55):
            for lat in range(11, 50):
                r2 = ((a - 42) / radius) ** 2 + ((lat - 30 - lat0) / radius) ** 2
                if r2 < 1:
                    plate = 30 + int(np.argmax(v[30:45, a, lat] >= cortex))  # the endplate here (in a bowl: sunk)
                    floor = plate + int(round(depth * np.sqrt(1 - r2)))
                    v[30:floor, a, lat] = 40.0
                    v[floor, a, lat] = cortex
    if fleck:
        v[33:36, 25:34, 28:33] = 700.0
    if gas:
        v[26:28, 28:53, 15:46] = -850.0
    return ndimage.gaussian_filter(v, 0.8)


def _heights(st, kps) -> dict[str, float]:
    from screening_node.analysis.results import HEIGHT_KEYPOINTS
    return {h: float(np.linalg.norm(st.to_lps(*kps[s]) - st.to_lps(*kps[i]))) for h, (s, i) in HEIGHT_KEYPOINTS.items()}


def test_a_corner_misread_on_the_mid_plane_alone_is_outvoted_by_its_neighbours() -> None:
    from screening_node.analysis.endplates import body_keypoints
    st = _straight_column(_body_volume(fleck=True))
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    h = _heights(st, kps)
    assert abs(h["anterior"] - 30.0) <= 0.6, h  # ~27 mm on the mid-sagittal plane
    assert all(p[2] == 0.0 for p in kps.values())  # shown on the mid-sagittal plane, where a reader measures
    assert abs(h["middle"] - 30.0) <= 0.6 and kps["superior_middle"][2] == 0.0


def test_a_wedge_across_the_whole_body_is_kept() -> None:
    from screening_node.analysis.endplates import body_keypoints
    st = _straight_column(_body_volume(front_drop=6.0))  # anterior height 24.6-26 at the corner columns
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    h = _heights(st, kps)
    assert 24.0 <= h["anterior"] <= 26.5, h
    assert abs(h["posterior"] - 30.0) <= 0.6, h


@pytest.mark.parametrize("wedge", [8.0, 12.0])
def test_a_wedges_corners_are_read_at_the_corners(wedge: float) -> None:
    from screening_node.analysis.endplates import body_keypoints
    # The column 1.5 mm inside the front wall has the wall's cortex in it, so the front endplate is read
    # 3-5 mm in; a tilted endplate stands higher there (1 mm phantoms: grade 1 wedges read grade 0). The
    # corners are carried out along the endplate to 1.5 mm inside the walls, where six-point morphometry
    # puts them.
    st = _straight_column(_body_volume(wedge=wedge))
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    assert kps["superior_anterior"][1] == -13.5 and kps["superior_posterior"][1] == 13.5
    h = _heights(st, kps)
    drop = {"anterior": wedge * 28.5 / 30, "posterior": wedge * 1.5 / 30}  # the sunk plate's step rounds it
    assert all(abs(h[k] - (30.0 - drop[k])) <= 0.4 for k in drop), (h, drop)


@pytest.mark.parametrize("cup, marrow, middle", [(7.0, 200.0, 23.0), (8.0, 40.0, 22.0)])
def test_an_endplate_sunk_deep_into_a_biconcave_body_is_read_at_the_bottom_of_its_bowl(
        cup: float, marrow: float, middle: float) -> None:
    from screening_node.analysis.endplates import body_keypoints
    # A biconcave body: its superior endplate sunk ``cup`` mm at the middle, its edge 10-11 mm from the
    # disc's middle row (27), beyond the 8 mm the edge is looked for.
    # - Over normal marrow (200 HU) the edge still steepens at the window's end and is followed inwards.
    #   Read at the window's end, the middle height was 1.5 mm too tall (3 mm phantoms: the deepest cups
    #   read 4-6 mm too tall).
    # - Over osteoporotic marrow as dark as the disc (both 40 HU) only the cortical shell shows, in a flat
    #   stretch with no rise to follow: the window showed no edge at all, and the middle was read 3 mm aside
    #   where the bowl is shallower (here 1 mm too tall), or, where no column showed one, "middle endplates
    #   not found" and the body ungraded (1 mm phantoms with runs of fractures: four grade 2-3 biconcave
    #   bodies of 30 scans). It is looked for on inwards.
    st = _straight_column(_body_volume(cup=cup, marrow=marrow))
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    assert kps["superior_middle"][1] == 0.0  # read halfway, at the bottom of the bowl
    h = _heights(st, kps)
    assert abs(h["middle"] - middle) <= 0.5, h
    assert abs(h["anterior"] - 30.0) <= 0.6 and abs(h["posterior"] - 30.0) <= 0.6, h


@pytest.mark.parametrize("lat0, radius, depth", [(0.0, 4.0, 4.0), (2.0, 4.5, 4.0)])
def test_a_schmorls_node_is_measured_across(lat0: float, radius: float, depth: float) -> None:
    """A pit 6-10 mm wide and 3-4 mm deep at the middle of a normal endplate is no fracture: a reader
    measures the endplate across it. Read at its floor, the middle height was 26-27 mm (grade 1 with a
    node at each endplate; 1 mm phantoms with nodes at 30 % of T6-L5 endplates: 9 normal bodies graded 1,
    one 2)."""
    from screening_node.analysis.endplates import body_keypoints
    st = _straight_column(_body_volume(node=(lat0, radius, depth)))
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    h = _heights(st, kps)
    assert abs(h["middle"] - 30.0) <= 0.6, h
    assert abs(h["anterior"] - 30.0) <= 0.6 and abs(h["posterior"] - 30.0) <= 0.6, h


@pytest.mark.parametrize("cup, bowl_middle", [(7.0, 23.1), (3.0, 27.0)])
def test_a_fractures_bowl_is_kept_with_or_without_a_node_in_it(cup: float, bowl_middle: float) -> None:
    """A fracture's bowl, deep or shallow, spans the endplate: around the middle the endplate is still
    sunk, so nothing is moved out; with a node at its bottom the middle keeps at least the bowl's loss."""
    from screening_node.analysis.endplates import body_keypoints
    for node in (None, (0.0, 4.0, 2.0)):
        st = _straight_column(_body_volume(cup=cup, node=node))
        kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
        assert reason is None and kps is not None
        h = _heights(st, kps)
        assert h["middle"] <= bowl_middle + 0.4, (node, h)


def test_the_rims_of_a_sunk_endplate_are_looked_for_next_to_the_disc() -> None:
    from screening_node.analysis.endplates import body_keypoints
    # The same bowl over a denser band of marrow 6-8 mm under the rims (the impaction zone of a fracture
    # heals sclerotic; 1 mm phantom seed 7 case 26: a ripple in the marrow). Searched within 5 mm of the
    # sunk middle edge, the corner window missed the rims and took the band: corner heights 23 mm, not 30.
    v = _body_volume(cup=7.0)
    v[36:39, 26:55, 11:50] += 150.0
    st = _straight_column(v)
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    h = _heights(st, kps)
    assert abs(h["anterior"] - 30.0) <= 0.6 and abs(h["posterior"] - 30.0) <= 0.6, h
    assert abs(h["middle"] - 23.0) <= 0.5, h


def test_gas_in_a_disc_is_not_taken_for_the_endplate_beside_it() -> None:
    from screening_node.analysis.endplates import body_keypoints
    # Osteoporotic endplates (350 HU over 80 HU marrow) rise from the disc far less steeply than the
    # disc rises from its gas: the steepest rise below the disc above is the cleft's, 2 mm too high.
    st = _straight_column(_body_volume(cortex=350.0, marrow=80.0, gas=True))
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    h = _heights(st, kps)
    assert all(abs(h[k] - 30.0) <= 0.6 for k in h), h


def _degenerate_body_plane(front: float, posterior_wall: float = 135.0) -> np.ndarray:
    """Mid-sagittal plane (rows, ap) of a 3 mm scan: discs at rows 4 and 36; a body in columns 28-62
    (marrow 115 HU, endplates 400 HU in rows 6-7 and 33-34, anterior wall 260 HU in columns 28-29,
    a faint posterior wall); osteophytes (300 HU) lip the endplates forward to column 22 and what lies
    between them in front of the wall reads ``front`` HU; fat (-60 HU) further forward."""
    plane = np.full((41, 90), -60.0)
    plane[:, 28:63] = 115.0
    plane[:, 28:30] = 260.0
    plane[:, 62] = posterior_wall
    plane[[6, 7, 33, 34], 28:63] = 400.0
    plane[:, 22:28] = front
    plane[[6, 7, 33, 34], 22:28] = 300.0
    plane[:, 63:] = 20.0  # the canal behind
    return ndimage.gaussian_filter1d(plane, 1.0, axis=1)


def test_tissue_framed_by_osteophytes_in_front_of_the_wall_is_not_the_body() -> None:
    from screening_node.analysis.walls import ap_extent
    # ts-example L5: soft tissue (45 HU) between osteophytes ran the body's framed columns 5 mm past
    # its anterior wall, the wall was put at the tissue's end and every anterior column fell outside.
    walls = ap_extent(_degenerate_body_plane(front=45.0), 4, 36, 45)
    assert walls is not None
    assert -18.5 <= walls[0] <= -16.0  # the anterior wall's outer surface (column 28 = -17 mm)


def test_fat_between_the_wall_and_framed_tissue_is_not_bridged() -> None:
    from screening_node.analysis.walls import _framed_mask
    # ts-example L4: a 3 mm strip of fat in front of the wall, then tissue framed by osteophytes; the
    # bridging of hidden endplates (FRAME_GAP_MM) joined that tissue to the body.
    plane = _degenerate_body_plane(front=45.0)
    plane[:, 25:28] = -40.0
    framed = _framed_mask(plane, 4, 36)
    assert framed is not None
    assert framed[30:60].all()
    assert not framed[25:27].any()


def test_ridges_wholly_behind_the_curve_frame_the_canal_not_the_body() -> None:
    from screening_node.analysis.walls import ap_extent
    # tcia L5 (a dense body, 3 mm slices): its endplates stand only ~25 HU above its 260 HU marrow,
    # so few of its columns read as framed, while behind it the canal (framed at the disc levels by the
    # laminae and ligaments) and the lamina make a framed pair of ridges 16-36 mm behind the curve. That
    # pair was taken for the body's walls; the curve, which runs through the body, never lies in front of it.
    ca = 40
    plane = np.full((41, 100), 40.0)
    plane[:, ca - 14:ca + 18] = 260.0      # the body, ap -14 .. +17
    plane[:, ca - 12:ca - 10] = 340.0      # its anterior wall ridge
    plane[:, ca + 16] = 400.0              # its posterior wall ridge
    plane[[6, 7, 33, 34], ca - 14:ca + 18] = 285.0  # faint endplates
    plane[:5, ca - 14:ca + 18] = 80.0      # the discs
    plane[37:, ca - 14:ca + 18] = 80.0
    plane[:, ca + 18:ca + 28] = 20.0       # the canal ...
    plane[2:6, ca + 18:ca + 28] = 300.0    # ... closed at the disc levels
    plane[35:39, ca + 18:ca + 28] = 300.0
    plane[:, ca + 28:ca + 38] = 500.0      # the lamina, its cortex at +30 and +36
    plane[:, [ca + 30, ca + 36]] = 700.0
    plane[2:6, ca + 28:ca + 38] = 650.0
    plane[35:39, ca + 28:ca + 38] = 650.0
    walls = ap_extent(ndimage.gaussian_filter1d(plane, 1.0, axis=1), 4, 36, ca)
    assert walls is not None
    assert abs(walls[0] + 14.0) <= 2.0 and abs(walls[1] - 17.5) <= 2.0, walls


def test_a_front_bridged_over_its_discs_is_measured_further_in() -> None:
    from screening_node.analysis.endplates import body_keypoints
    # tcia T7 and T8: the front of the column is bony over the discs (an anterior ligament ossified
    # across them, DISH), so the columns up to 5 mm inside the anterior wall show no endplate and the
    # bodies went unmeasured ("anterior endplates not found"). A reader measures a little further in.
    v = _body_volume()
    v[:, 24:33, 10:51] = ndimage.gaussian_filter(np.full((100, 9, 41), 700.0), 0.8)  # front 8 mm, all bone
    st = _straight_column(v)
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    assert kps["superior_anterior"][1] == -15.0 + 7.0  # read 7 mm in and left there: the plate ends short of the wall
    h = _heights(st, kps)
    assert all(abs(h[k] - 30.0) <= 0.6 for k in h), h


def test_a_back_whose_discs_vanish_is_measured_further_in() -> None:
    from screening_node.analysis.endplates import body_keypoints
    # Upper thoracic discs thin towards the back, and on 3 mm slices the back of T1-T4 shows a band from one
    # body into the next (fast seed 4 case 4: T1's back read 19.0 mm for 14.4, a false grade 2). Here both
    # discs' back 6 mm read 400 HU: the corner columns find only faint slopes there, at the discs' middle
    # rows (the back read 39.5 mm), while 7 mm in the discs show.
    v = _body_volume()
    v[24:31, 49:56, 10:51] = 400.0
    v[59:66, 49:56, 10:51] = 400.0
    st = _straight_column(v)
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    assert kps["superior_posterior"][1] == 15.0 - 7.0  # read 7 mm in and left there
    h = _heights(st, kps)
    assert all(abs(h[k] - 30.0) <= 0.6 for k in h), h


def test_a_pair_of_ridges_with_the_canal_between_them_is_not_the_body() -> None:
    from screening_node.analysis.walls import ap_extent
    # tcia L5 resampled to 1.5 mm slices: behind the body's posterior wall (+11) the canal shows only
    # 3-4 mm wide at 16-40 HU, closed at the disc levels, and behind it the lamina's cortex (+24). The
    # ridge pair -16 .. +24 encloses framed columns and was taken for the walls: the back 13 mm into the
    # arch, and no posterior endplate inside it. Fluid never lies inside a body.
    ca = 40
    plane = np.full((41, 100), 40.0)
    plane[:, ca - 18:ca + 12] = 250.0       # the body, ap -18 .. +11
    plane[:, ca - 17:ca - 15] = 420.0       # its anterior wall ridge
    plane[:, ca + 10:ca + 12] = 450.0       # its posterior wall ridge
    plane[[6, 7, 33, 34], ca - 18:ca + 12] = 300.0  # faint endplates over dense marrow
    plane[:5, ca - 18:ca + 12] = 80.0       # the discs
    plane[37:, ca - 18:ca + 12] = 80.0
    plane[:, ca + 12:ca + 16] = -10.0       # the canal (fluid, epidural fat), narrow on this plane ...
    plane[2:6, ca + 12:ca + 16] = 300.0     # ... closed at the disc levels
    plane[35:39, ca + 12:ca + 16] = 300.0
    plane[:, ca + 16:ca + 30] = 600.0       # the lamina, its cortex at +24
    plane[:, ca + 24] = 800.0
    plane[2:6, ca + 16:ca + 30] = 750.0
    plane[35:39, ca + 16:ca + 30] = 750.0
    walls = ap_extent(ndimage.gaussian_filter1d(plane, 1.0, axis=1), 4, 36, ca)
    assert walls is not None
    assert abs(walls[0] + 16.5) <= 2.0 and abs(walls[1] - 11.5) <= 2.0, walls


def test_the_shell_models_jacobian_is_its_derivative() -> None:
    from screening_node.analysis.shell import shell_model, shell_model_jacobian
    u = np.linspace(-6.0, 8.0, 15)
    for p in ([80.0, 800.0, 150.0, -0.4, 0.9], [-50.0, 400.0, 60.0, 1.3, 2.2], [100.0, 300.0, 700.0, 0.0, 0.5]):
        p = np.array(p)
        steps = np.array([1e-3, 1e-3, 1e-3, 1e-6, 1e-6])
        numeric = np.column_stack([(shell_model(p + d, u, 1.0) - shell_model(p - d, u, 1.0)) / (2 * d[k])
                                   for k, d in enumerate(np.diag(steps))])
        assert np.allclose(shell_model_jacobian(p, u, 1.0), numeric, rtol=1e-5, atol=1e-4)


def test_a_body_whose_own_wall_ran_far_off_its_neighbours_is_measured_between_theirs() -> None:
    from screening_node.analysis.vertebrae import BodyFinding, _outline_from_neighbours
    # The front of a grade 3 wedge in front of a contrast-filled organ as dense as its osteoporotic marrow:
    # its outline ran 25 mm into the organ, every anterior column there missed the endplates, and the body
    # was left unmeasured (1 mm phantom T12). The column's walls run on smoothly from body to body, so it is
    # measured between its neighbours' walls; a body whose own walls are in line with theirs is left as it is.
    st = _straight_column(_body_volume())
    missing = "anterior endplates not found"

    def body(top: float, bottom: float, ap: tuple[float, float], reason: str | None) -> BodyFinding:
        return BodyFinding(top, bottom, 0.5 * (top + bottom), ap, 15.0, None, reason)

    neighbours = (body(0.0, 27.0, (-15.0, 15.0), None), body(62.0, 99.0, (-15.5, 15.5), None))
    for own, borrowed in (((-40.0, 15.0), True), ((-20.0, 15.0), False)):
        found = _outline_from_neighbours(st.volume, st, [neighbours[0], body(27.0, 62.0, own, missing), neighbours[1]])
        middle = found[1]
        if borrowed:
            assert middle.reason is None and middle.keypoints is not None
            assert middle.ap_range == (-15.25, 15.25)
            assert abs(_heights(st, middle.keypoints)["anterior"] - 30.0) <= 0.6
        else:
            assert middle.reason == missing and middle.ap_range == own


def test_a_measured_body_whose_outline_is_far_deeper_than_its_neighbours_is_measured_between_theirs() -> None:
    from screening_node.analysis.vertebrae import BodyFinding, _outline_from_neighbours
    # tcia with 45 HU of noise added: T8's back wall was placed on the arch, 16 mm behind its own (an outline
    # 43.5 mm deep between neighbours 25-30 mm deep), and its posterior keypoints read in the arch. The
    # straightening through the measured bodies' centres then ran 5 mm behind T7-T9, and T8 read a false
    # grade 3. No body is 1.35 times as deep as the deepest of its neighbours: such an outline is replaced by
    # theirs, and it is no neighbour's outline either. A body a little deeper than its neighbours keeps its own.
    st = _straight_column(_body_volume())

    def body(top: float, bottom: float, ap: tuple[float, float]) -> BodyFinding:
        return BodyFinding(top, bottom, 0.5 * (top + bottom), ap, 15.0, None, None)

    neighbours = (body(0.0, 27.0, (-15.0, 15.0)), body(62.0, 99.0, (-15.5, 15.5)))
    for own, borrowed in (((-15.0, 31.0), True), ((-15.0, 19.0), False)):
        found = _outline_from_neighbours(st.volume, st, [neighbours[0], body(27.0, 62.0, own), neighbours[1]])
        middle = found[1]
        if borrowed:
            assert middle.reason is None and middle.ap_range == (-15.25, 15.25)
            assert middle.keypoints is not None
            assert abs(_heights(st, middle.keypoints)["posterior"] - 30.0) <= 0.6
        else:
            assert middle.ap_range == own and middle.keypoints is None  # left as it was found
    # the too deep body lends no outline: an unmeasured neighbour borrows from the next ones beyond it
    above, deep = body(-30.0, 0.0, (-15.0, 15.0)), body(0.0, 27.0, (-15.0, 31.0))
    unmeasured = BodyFinding(27.0, 62.0, 44.5, (-15.0, 15.0), 15.0, None, "body outline not found on the mid-sagittal plane")
    found = _outline_from_neighbours(st.volume, st, [above, deep, unmeasured, neighbours[1]])
    assert found[2].ap_range == (-15.25, 15.25) and found[2].keypoints is not None
    # judged against two neighbours or more, never one alone (it may be the one misread: ts-example's lower
    # field, where L5's 39.6 mm outline stood beside the top of S1's 20.8 mm, the only other one in view)
    found = _outline_from_neighbours(st.volume, st, [body(0.0, 27.0, (-15.0, 15.0)), body(27.0, 62.0, (-15.0, 31.0))])
    assert found[1].ap_range == (-15.0, 31.0) and found[1].keypoints is None


def _thick_slice_profile(rng: np.random.Generator, surface: float, spacing: float = 3.0) -> np.ndarray:
    """1 mm rows of a superior endplate (tissue, a cortical shell from ``surface`` on, marrow) scanned in
    slices ``spacing`` mm thick and apart at a random phase, then interpolated linearly, as the
    straightening does; cortex, marrow and the scanner's blur drawn per profile."""
    from scipy import special

    shell, cortex, marrow, sigma = rng.uniform(0.5, 1.5), rng.uniform(400, 1000), rng.uniform(60, 250), rng.uniform(0.3, 0.7)
    centres = np.arange(-30.0, 70.0, spacing) + rng.uniform(0, spacing)
    within = np.linspace(-0.5, 0.5, 31) * spacing
    z = centres[:, None] + within[None, :]
    anatomy = (40.0 + (cortex - 40.0) * special.ndtr((z - surface) / sigma)
               + (marrow - cortex) * special.ndtr((z - surface - shell) / sigma))
    return np.maximum(np.interp(np.arange(40.0), centres, anatomy.mean(axis=1)), 30.0)  # floored as the columns are


def test_on_thick_slices_the_blur_the_slices_set_steadies_the_endplate_surface() -> None:
    from screening_node.analysis.endplates import _edge, _endplate_surface, slice_blur
    # A shell sampled every 3 mm lets the fitted surface trade against a free blur and the shell's density:
    # its error depends on where the slices fall. With the blur the slices set (sigma^2 = s^2 / 4 + 0.5^2),
    # the spread over random phases, cortices and marrows drops (1.03 -> 0.87 mm here).
    st = _straight_column(np.zeros((10, 5, 5)))
    assert slice_blur(st, 5) is None  # no sample spacing known: the blur stays free
    st = dataclasses.replace(st, row_spacing_mm=np.array([1.0] * 5 + [3.0] * 5))
    assert slice_blur(st, 2) is None and slice_blur(st, 7) == pytest.approx(np.hypot(1.5, 0.5))
    rng = np.random.default_rng(5)
    errors: dict[str, list[float]] = {"free": [], "fixed": []}
    for _ in range(80):
        surface = rng.uniform(15.0, 18.0)
        prof = _thick_slice_profile(rng, surface)
        grad = np.gradient(ndimage.gaussian_filter1d(prof, 0.8))
        rough = _edge(grad, 5, 30, +1)
        assert rough is not None
        for name, blur in (("free", None), ("fixed", slice_blur(st, 7))):
            errors[name].append(_endplate_surface(prof, rough, +1, blur) - surface)
    spread = {k: float(np.std(v)) for k, v in errors.items()}
    assert spread["fixed"] < 0.9 * spread["free"], spread
    assert abs(float(np.mean(errors["fixed"]))) < 0.4, np.mean(errors["fixed"])


def test_a_dip_of_the_marrows_mottle_past_the_endplate_is_not_its_edge() -> None:
    """Where 3 mm slices blur a thin disc away, a dark spot of the marrow a few mm inside the body gives a
    rise as strong as the endplate's: the most caudal strong rise, which keeps the neighbour's cortex out,
    took it, and a textured T2 read its middle 4 mm short. The endplate's cortex lies between it and the
    disc, brighter than the marrow inside it: that edge gives way to the endplate's."""
    from screening_node.analysis.endplates import _edge
    prof = np.full(40, 230.0)
    prof[8:14] = 200.0   # the disc, blurred to 200 HU around its middle row (11)
    prof[14:17] = 290.0  # this body's superior endplate
    prof[20:23] = 150.0  # a fatty spot of the mottle, 4-6 mm inside
    floored = np.maximum(prof, 0.0)
    grad = np.gradient(ndimage.gaussian_filter1d(floored, 0.8))
    assert 22 <= _edge(grad, 9, 27, +1) <= 23  # without the profile: the spot's far side
    assert abs(_edge(grad, 9, 27, +1, prof=floored, disc=11) - 13.5) <= 1.0  # with it: the endplate


def test_a_rise_out_of_a_shallow_dip_of_bright_marrow_is_not_the_endplate() -> None:
    """Contrast-bright marrow (330 HU) over a thin, blurred thoracic disc (210 HU at its middle), with noise:
    a shallow dip of the marrow 5 mm inside the body (270 HU) rises as steeply as the endplate's edge, and
    no cortex brighter than the marrow lies between them (tcia with 30 HU of noise added, T7: the middle
    edge taken 6 mm in, a false grade 3). That rise starts from a foot nearer the marrow than the disc; it
    gives way to the edge that rises out of the disc."""
    from screening_node.analysis.endplates import _edge, _rises_from_marrow
    prof = np.full(40, 330.0)
    prof[9:12] = [240.0, 210.0, 240.0]  # the disc, blurred, its middle row 10
    prof[12:15] = [285.0, 305.0, 300.0]  # this body's endplate, no brighter than the marrow within
    prof[15:18] = [275.0, 270.0, 290.0]  # a shallow dip of the marrow, 5-7 mm inside
    floored = np.maximum(prof, 0.0)
    grad = np.gradient(ndimage.gaussian_filter1d(floored, 0.8))
    innermost = _edge(grad, 8, 24, +1)
    assert innermost is not None and innermost > 16  # without the profile: the dip's far side
    assert _rises_from_marrow(floored, int(round(innermost)), +1, 10)
    found = _edge(grad, 8, 24, +1, prof=floored, disc=10)
    assert found is not None and abs(found - 11.5) <= 1.0  # with it: the edge out of the disc
    assert not _rises_from_marrow(floored, int(round(found)), +1, 10)
    # Osteoporotic marrow as dark as the disc: no foot is told apart, the innermost edge stays.
    dark = np.where(prof > 250, prof - 100, prof)
    assert not _rises_from_marrow(np.maximum(dark, 0.0), 17, +1, 10)


def test_a_rise_in_two_steps_under_a_faint_disc_is_the_endplates_at_its_first_step() -> None:
    """Under a degenerate, nearly bony disc (244 HU against 310-345 HU marrow; tcia's T5/T6, its middle
    column cut one row shorter) the profile rises in two steps with no dip between: out of the disc to a
    plateau (the endplate), then on to brighter marrow 5 mm further in. The inner step stood a little
    steeper than half the outer one, and as the innermost strong rise it was read as the endplate: the
    middle height 5 mm short, a false grade 3. It starts from a shoulder most of the way up from the disc,
    as a rise out of a dip of the marrow starts from its foot; it gives way to the step out of the disc."""
    from screening_node.analysis.endplates import _edge, _rises_from_marrow
    prof = np.full(40, 310.0)
    prof[5:24] = [256, 251, 245, 242, 262, 283, 303, 306, 310, 313, 324, 335, 345, 333, 322, 310, 310, 310, 310]
    grad = np.gradient(ndimage.gaussian_filter1d(prof, 0.8))
    innermost = _edge(grad, 6, 16, +1)
    assert innermost is not None and innermost > 14  # without the profile: the inner step
    assert _rises_from_marrow(prof, int(round(innermost)), +1, 8)
    found = _edge(grad, 6, 16, +1, prof=prof, disc=8)
    assert found is not None and 9.0 <= found <= 11.0  # the rise out of the disc
    assert not _rises_from_marrow(prof, int(round(found)), +1, 8)


def test_the_rims_of_a_wide_bowl_are_read_nearest_the_wall() -> None:
    """A biconcave body whose superior endplate sinks 8 mm at the middle in a bowl that reaches nearly to
    its walls (16 mm radius front to back in a 30 mm deep body): the plate still slopes at the corner
    columns, 2.3 mm down 1.5 mm inside the wall and 4 mm down 5 mm in. The sharpest of the corner columns
    lay further in, and its lower edge made both corner heights 2.1 mm short (the bowl read shallower). Where
    the middle sinks inside the corners' lines, the rims are read on the sharp column nearest the wall."""
    from screening_node.analysis.endplates import body_keypoints
    cup, radius = 8.0, 16.0
    v = np.full((100, 81, 61), 40.0)
    for r0, r1 in ((0, 24), (30, 59), (65, 99)):
        v[r0:r1 + 1, 25:56, 10:51] = 700.0
        v[r0 + 1:r1, 26:55, 11:50] = 200.0
    for a in range(26, 55):
        for lat in range(11, 50):
            r2 = ((a - 40) / radius) ** 2 + ((lat - 30) / 22.0) ** 2
            depth = int(round(cup * (1 - r2))) if r2 < 1 else 0
            if depth:
                v[30:30 + depth, a, lat] = 40.0
                v[30 + depth, a, lat] = 700.0
    st = _straight_column(ndimage.gaussian_filter(v, 0.8))
    kps, reason = body_keypoints(st.volume, st, 27, 62, (-15.0, 15.0))
    assert reason is None and kps is not None
    h = _heights(st, kps)
    at_the_rim = 30.0 - cup * (1 - (13.5 / radius) ** 2)  # the plate 1.5 mm inside the wall: 27.7 mm
    assert abs(h["anterior"] - at_the_rim) <= 0.8 and abs(h["posterior"] - at_the_rim) <= 0.8, (h, at_the_rim)
    assert abs(h["middle"] - (30.0 - cup)) <= 0.5, h
