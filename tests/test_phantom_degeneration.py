"""Degenerative change in the phantom: where it is painted, and that it never touches the body truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from screening_node.phantom import PhantomOptions, fast_options, render_phantom
from screening_node.phantom.body import AORTA
from screening_node.phantom.degeneration import (Degeneration, Plaque, SchmorlNode, Spur, paint_degeneration,
                                                 plan_degeneration, plan_schmorl_nodes)
from screening_node.phantom.grid import Grid, ellipse_inward, to_local
from screening_node.phantom.render import plan_anatomy, stream

# a noise-free lumbar crop: 1 mm voxels, small enough to render twice
CROP = dict(seed=8, fov="spine-crop", levels=("T12", "L4"), matrix=128, pixel_spacing=1.0, slice_thickness=1.0,
            noise=0.0)


@pytest.fixture(scope="module")
def pair():  # type: ignore[no-untyped-def]
    return render_phantom(PhantomOptions(**CROP)), render_phantom(PhantomOptions(degeneration="severe", **CROP))


def _grid_around(centre: np.ndarray, half: float = 40.0, step: float = 0.5) -> Grid:
    n = int(2 * half / step) + 1
    origin = tuple(float(c - half) for c in centre)
    return Grid((n, n, n), origin, (step, step, step))  # type: ignore[arg-type]


def test_degeneration_changes_the_image_but_not_the_body_truth(pair) -> None:  # type: ignore[no-untyped-def]
    plain, aged = pair
    assert aged.degeneration.spurs, "a severe grade over T12-L4 draws osteophytes"
    assert np.array_equal(plain.labels, aged.labels)  # body masks: osteophytes are not part of a body
    for a, b in zip(plain.plan.vertebrae, aged.plan.vertebrae):
        assert a.shape == b.shape and np.allclose(a.centre, b.centre)
    changed = np.abs(plain.hu.astype(int) - aged.hu.astype(int)) > 50
    assert changed.sum() > 500
    # nothing changes inside a body: a spur joins its wall's cortex by half a millimetre, blurred by the PSF
    interior = binary_erosion(aged.labels > 0, iterations=2)
    assert not (changed & interior).any()


def test_none_draws_nothing_and_the_same_seed_draws_the_same_change() -> None:
    plan = plan_anatomy(PhantomOptions(**CROP))[0]
    assert plan_degeneration(plan, "none", stream(8, "degeneration")) == Degeneration()
    first = plan_degeneration(plan, "severe", stream(8, "degeneration"))
    assert first == plan_degeneration(plan, "severe", stream(8, "degeneration"))
    assert first != plan_degeneration(plan, "severe", stream(9, "degeneration"))


def test_an_osteophyte_grows_out_of_the_anterior_rim_of_its_endplate() -> None:
    plan = plan_anatomy(PhantomOptions(**CROP))[0]
    v = plan.by_label("L2")
    grid = _grid_around(v.centre)
    volume = np.zeros(grid.shape, np.float32)
    spur = Spur("L2", "top", 6.0, -np.pi / 2, 0.8)
    paint_degeneration(volume, grid, plan, Degeneration(spurs=(spur,)), grid.spacing[0])
    bone = volume > 0.5 * v.cortical_hu
    assert bone.any()
    lx, ly, lz = (np.broadcast_to(c, grid.shape)[bone] for c in to_local(*grid.coords(
        (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(0, grid.shape[2]))), v.centre, v.frame))
    out = -ellipse_inward(lx, ly, v.shape.ax, v.shape.ay)
    assert out.min() > -1.0 and out.max() < 6.0 + 1.0   # from just inside the wall to its length
    assert ly.max() < 0.0                                # in front of the body's centre
    top = v.shape.top_a
    assert lz.min() > top - 3.0 and lz.max() < top + 0.45 * 6.0 + 2.0  # at the endplate, rising to the disc


def test_a_vacuum_cleft_lies_in_its_disc_between_the_endplates() -> None:
    plan = plan_anatomy(PhantomOptions(**CROP))[0]
    upper, lower = plan.by_label("L3"), plan.by_label("L4")
    centre = 0.5 * (upper.centre + lower.centre)
    grid = _grid_around(centre)
    volume = np.zeros(grid.shape, np.float32)
    paint_degeneration(volume, grid, plan, Degeneration(vacuum_discs=("L3",)), grid.spacing[0])
    gas = volume < -400
    assert gas.any()
    everywhere = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(0, grid.shape[2]))
    for v, below in ((upper, True), (lower, False)):
        lx, ly, lz = (np.broadcast_to(c, grid.shape)[gas] for c in to_local(*grid.coords(everywhere), v.centre, v.frame))
        if below:
            assert (lz < v.shape.z_bot(lx, ly)).all()
        else:
            assert (lz > v.shape.z_top(lx, ly)).all()


def test_a_schmorl_node_is_a_rimmed_pit_of_disc_tissue_below_its_endplate() -> None:
    """Disc tissue fills the pit, reaching its depth into the body; a sclerotic rim closes it against the
    marrow; the disc in front of the endplate is left as it was."""
    from screening_node.phantom.skeleton import DISC_HU

    plan = plan_anatomy(PhantomOptions(**CROP))[0]
    v = plan.by_label("L2")
    grid = _grid_around(v.centre, half=30.0, step=0.25)
    marrow = np.float32(v.trabecular_hu)
    volume = np.full(grid.shape, marrow)
    node = SchmorlNode("L2", "top", 1.0, v.shape.y_m, 4.0, 3.0)
    paint_degeneration(volume, grid, plan, Degeneration(nodes=(node,)), grid.spacing[0])
    everywhere = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(0, grid.shape[2]))
    lx, ly, lz = (np.broadcast_to(c, grid.shape) for c in to_local(*grid.coords(everywhere), v.centre, v.frame))
    below = v.shape.z_top(lx, ly) - lz  # mm under the upper endplate
    on_axis = (np.abs(lx - 1.0) < 0.2) & (np.abs(ly - v.shape.y_m) < 0.2)
    depth = below[on_axis]
    hu = volume[on_axis]
    assert np.all(np.abs(hu[(depth > 0.5) & (depth < 2.5)] - DISC_HU) < 1)  # the pit
    assert hu[(depth > 3.2) & (depth < 3.8)].min() > 0.9 * v.cortical_hu  # its rim, 1 mm thick
    assert np.all(hu[depth > 4.5] == marrow)  # the marrow beyond it
    assert np.all(volume[below < -1.0] == marrow)  # nothing on the disc's side
    assert (volume != marrow).sum() * 0.25 ** 3 < 2 * np.pi * 5.5 ** 2 * 4.5  # within the rimmed half-ellipsoid


def test_schmorl_nodes_follow_their_chance_on_their_own_stream() -> None:
    plan = plan_anatomy(PhantomOptions(seed=8))[0]
    assert plan_schmorl_nodes(plan, 0.0, stream(8, "schmorl")) == ()
    every = plan_schmorl_nodes(plan, 1.0, stream(8, "schmorl"))
    assert len(every) == 24  # both endplates of T6-L5
    assert every == plan_schmorl_nodes(plan, 1.0, stream(8, "schmorl"))
    for node in every:
        shape = plan.by_label(node.level).shape
        assert 2.5 <= node.radius_mm <= 5.0 and node.depth_mm <= 0.2 * min(shape.heights().values())
        assert abs(node.x_mm) <= 0.3 * shape.ax and shape.y_a < node.y_mm < shape.y_p
    options = PhantomOptions(**CROP)
    with_nodes = render_phantom(options.with_(schmorl_nodes=1.0))
    assert with_nodes.degeneration.nodes and with_nodes.degeneration.spurs == ()
    assert np.array_equal(render_phantom(options).labels, with_nodes.labels)  # no body truth changes


def test_a_plaque_lies_on_the_aortic_wall() -> None:
    plan = plan_anatomy(PhantomOptions(seed=8))[0]
    s = plan.by_label("L1").s_mm
    centre, frame = AORTA.centre(plan, s)
    grid = _grid_around(centre)
    volume = np.zeros(grid.shape, np.float32)
    paint_degeneration(volume, grid, plan, Degeneration(plaques=(Plaque(s, 10.0, 0.0),)), grid.spacing[0])
    calcium = np.argwhere(volume > 400)
    assert len(calcium)
    points = np.asarray(grid.origin) + calcium[:, ::-1] * np.asarray(grid.spacing)  # (x, y, z) LPS
    local = (points - centre) @ frame
    radial = np.hypot(local[:, 0], local[:, 1])
    assert np.all(np.abs(radial - AORTA.radius) < 2.0)  # in the wall, give or take the plaque's own 1 mm radius
    assert np.median(local[:, 1]) > 0.5 * AORTA.radius  # angle 0: on the back wall, facing the spine


def test_uids_follow_the_options_and_the_rendering_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import json

    from screening_node.phantom import generate
    options = PhantomOptions(seed=3)
    # the options as they were before degeneration, roll, texture, Schmorl's nodes, the contrast phase and the
    # plane were added
    before = {k: v for k, v in options.to_dict().items()
              if k not in ("format", "preview", "degeneration", "roll", "texture", "schmorl_nodes", "contrast_phase",
                           "plane")}
    first = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    monkeypatch.setattr(generate, "RENDERING_REVISION", 1)
    assert generate.uid_key(options) == first  # an option added at its default changes nothing
    monkeypatch.setattr(generate, "RENDERING_REVISION", 2)
    assert generate.uid_key(options) != first  # other pixels, other UIDs
    assert generate.uid_key(options.with_(degeneration="severe")) != generate.uid_key(options)
    assert generate.uid_key(options.with_(roll=10.0)) != generate.uid_key(options)
    assert generate.uid_key(options.with_(texture=80.0)) != generate.uid_key(options)
    assert generate.uid_key(options.with_(schmorl_nodes=0.3)) != generate.uid_key(options)
    assert generate.uid_key(options.with_(contrast_phase="arterial")) != generate.uid_key(options)
    assert generate.uid_key(options.with_(plane="sagittal")) != generate.uid_key(options)


def test_the_benchmark_renders_again_a_phantom_of_other_options_or_an_earlier_rendering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # phantom_eval.py reuses the phantoms in its folder; one made by an earlier rendering must not be
    # measured again as if it were the current one (it compared the options alone).
    import importlib.util

    from screening_node.phantom import generate
    script = Path(__file__).parents[1] / "benchmarks" / "phantom_eval.py"
    spec = importlib.util.spec_from_file_location("phantom_eval", script)
    assert spec is not None and spec.loader is not None
    phantom_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(phantom_eval)
    options = fast_options(seed=3, format="nifti")
    generate.generate_phantom(options, tmp_path)
    truth = tmp_path / "truth.json"
    assert not phantom_eval._stale(truth, options)
    assert phantom_eval._stale(truth, options.with_(texture=40.0))
    assert phantom_eval._stale(tmp_path / "missing.json", options)
    monkeypatch.setattr(generate, "RENDERING_REVISION", generate.RENDERING_REVISION + 1)
    assert phantom_eval._stale(truth, options)
