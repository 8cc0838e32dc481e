"""A crushed body whose back endplate is misread is still graded from its tallest height (genant.collapsed_anyway).

The phantom is case 13 of ``benchmarks/phantom_eval.py --preset fast --seed 7``: an osteoporotic chest on 3 mm
slices with a grade 3 crush of T4 (8.0 / 7.8 / 8.6 mm). Its back endplate is read inside the body (9.7 / 9.8 /
7.0 mm, a front far taller than the back), which no body has; until 2026-12-03 it was refused for that, and the
severe fracture went ungraded.
"""

from __future__ import annotations

import dataclasses

from screening_node.analysis.pipeline import analyze_volume
from screening_node.imaging.volume import load_volume
from screening_node.phantom import PhantomOptions, generate_phantom
from screening_node.phantom.options import FractureSpec

OPTIONS = dict(seed=7013, fov="chest", fractures=(FractureSpec("T4", 3, "crush"),), kyphosis=25.359149589560353,
               lordosis=33.44967319652711, scoliosis=1.276384578473774, bone_density="osteoporotic",
               noise=11.640711916122456, slice_thickness=3.0, pixel_spacing=1.5, matrix=256, feet_first=True,
               format="nifti")


def test_a_crush_with_its_back_misread_is_graded_from_its_tallest_height(tmp_path):
    options = PhantomOptions(**OPTIONS)
    assert {f.name for f in dataclasses.fields(PhantomOptions)} >= set(OPTIONS)
    made = generate_phantom(options, tmp_path / "phantom")
    result = analyze_volume(load_volume(made.ct_nifti), None)
    t4 = next(v for v in result.vertebrae if v.label == "T4")
    assert t4.assessable and t4.grade is not None and t4.grade >= 2 and t4.morphology == "crush", t4
    assert max(t4.heights_mm.values()) < 12  # type: ignore[union-attr]  # its heights as read, the back misread
    assert any(note.startswith("T4: anterior height far above the posterior one") for note in result.notes)
