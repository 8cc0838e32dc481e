"""The spine's centre line on a tight crop around the spine (a VerSe-style sagittal crop)."""
import numpy as np
import SimpleITK as sitk

from screening_node.analysis.centreline import find_centreline


def _tight_crop_with_dense_facets() -> sitk.Image:
    """A 110 mm wide crop: an osteoporotic body (80 HU marrow, a thin 400 HU cortex) in front of two dense
    facet columns (800 HU) 24 mm to each side of the midline x = 0, the right one a little thicker."""
    h = 2.0
    nz, ny, nx = 45, 50, 55
    z = np.arange(nz) * h - 45.0
    y = (np.arange(ny) - ny // 2) * h
    x = (np.arange(nx) - nx // 2) * h
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    vol = np.full(zz.shape, 40.0)  # soft tissue filling the whole crop
    r_body = np.hypot(xx, yy + 15.0)
    vol[r_body <= 20.0] = 80.0
    vol[(r_body <= 20.0) & (r_body > 18.0)] = 400.0
    vol[np.hypot(xx + 24.0, yy - 20.0) <= 7.0] = 800.0  # right facet column (LPS: -x is right)
    vol[np.hypot(xx - 24.0, yy - 20.0) <= 6.0] = 800.0
    image = sitk.GetImageFromArray(vol.astype(np.float32))
    image.SetSpacing((h, h, h))
    image.SetOrigin((float(x[0]), float(y[0]), float(z[0])))
    return image


def test_on_a_tight_crop_the_curve_runs_on_the_mirror_plane_not_in_a_facet_column():
    """The dense facet columns outweigh the thin body; on a crop no body outline says where the middle
    is, but the bone's mirror plane does (verse19-006: the curve ran 17 mm beside the body)."""
    line = find_centreline(_tight_crop_with_dense_facets()).points_lps
    assert np.abs(line[:, 0]).max() < 6.0, line[:, 0]


def test_the_coarse_grid_does_not_drop_a_slice_for_float_noise_in_the_origin() -> None:
    """A field exactly a whole number of coarse samples long keeps its last slice: the real tcia series
    cut at 81 slices (240 mm at 3 mm) lost it when its origin moved 1e-5 mm (as a NIfTI round trip does),
    and the curve's far end, and the sacrum's labels, moved with it."""
    from screening_node.analysis import thresholds as T
    from screening_node.analysis.centreline import resample_axis_aligned

    image = sitk.Image(8, 8, 81, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 3.0))
    sizes = set()
    for shift in (0.0, 1e-5, -1e-5, 1e-3):
        image.SetOrigin((0.0, 0.0, 85.91 + shift))
        sizes.add(resample_axis_aligned(image, T.COARSE_MM).GetSize()[2])
    assert sizes == {81}, sizes
