"""The slab-wise paths that keep a long thin-slice series' memory down give what the whole-volume ones give.

A 1037-slice series peaked at 4.1 GB before them (benchmarks/thin_series.py); each is checked here on a
small volume cut into many slabs, where a slab boundary off by one would show."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import screening_node.analysis.centreline as centreline
import screening_node.imaging.volume as volume_module
from screening_node.analysis import thresholds as T
from tests.conftest import assert_same_volume, gdcm_reference
from tests.synthetic_ct import write_series


def test_a_series_filled_in_slabs_equals_the_gdcm_reader(tmp_path, monkeypatch):
    pixels = (np.arange(11, dtype=np.uint16)[:, None, None] * 37 + np.arange(16, dtype=np.uint16)[None, :, None]
              + np.zeros((11, 16, 16), np.uint16))
    write_series(tmp_path, n_slices=11, pixels=pixels)
    monkeypatch.setattr(volume_module, "FILL_SLAB_SLICES", 3)  # 3 + 3 + 3 + 2 slices
    assert_same_volume(volume_module.load_volume(tmp_path).image, gdcm_reference(tmp_path))


@pytest.mark.parametrize("n_slices", [37, 38, 39])  # blocks of 3 slices: whole, one over, two over
def test_the_cortical_fraction_in_slabs_equals_the_whole_windows(monkeypatch, n_slices):
    rng = np.random.default_rng(n_slices)
    image = sitk.GetImageFromArray(rng.uniform(-200, 900, (n_slices, 40, 36)).astype(np.float32))
    image.SetSpacing((0.75, 0.75, 1.0))
    image.SetOrigin((-13.0, 20.0, -300.0))
    reference = centreline.resample_axis_aligned(image, T.COARSE_MM)
    whole = centreline.cortical_fraction(image, reference)
    monkeypatch.setattr(centreline, "WINDOW_WHOLE_MAX_VOXELS", 0)
    monkeypatch.setattr(centreline, "SLAB_SLICES", 7)  # rounded down to two blocks of 3 slices a slab
    np.testing.assert_array_equal(centreline.cortical_fraction(image, reference), whole)
