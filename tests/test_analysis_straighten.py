"""Straightening: a curved tube becomes straight, frames do not twist, positions map back to LPS."""

import numpy as np
import SimpleITK as sitk

from screening_node.analysis.centreline import resample_by_arclength
from screening_node.analysis.straighten import posterior_frames, straighten
from screening_node.imaging.geometry import lps_to_index


def _curve() -> np.ndarray:
    """An S-curve in the coronal and sagittal planes, cranial (high z) first, LPS mm."""
    z = np.linspace(100, -100, 400)
    x = 15 * np.sin(z / 40.0)
    y = 10 * np.cos(z / 60.0)
    return resample_by_arclength(np.stack([x, y, z], axis=1), 1.0)


def _tube_image(points: np.ndarray, radius: float) -> sitk.Image:
    """A bright tube (1000 HU) of the given radius around the curve, on a 1 mm grid with an oblique direction."""
    size = (80, 80, 230)
    img = sitk.Image(size, sitk.sitkFloat32)
    img.SetSpacing((1.0, 1.0, 1.0))
    img.SetOrigin((-40.0, -40.0, -115.0))
    zz, yy, xx = np.mgrid[0:size[2], 0:size[1], 0:size[0]].astype(np.float32)
    lps = np.stack([xx - 40, yy - 40, zz - 115], axis=-1)
    # distance to the curve, slice by slice (the curve is nearly parallel to z)
    dist = np.full(zz.shape, np.inf, dtype=np.float32)
    for p in points[::2]:
        k = int(round(p[2] + 115))
        for kk in range(max(0, k - 2), min(size[2], k + 3)):
            d = np.linalg.norm(lps[kk] - p, axis=-1)
            dist[kk] = np.minimum(dist[kk], d)
    arr = np.where(dist <= radius, 1000.0, -1000.0).astype(np.float32)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


def test_curved_tube_maps_to_straight_tube():
    pts = _curve()
    image = _tube_image(pts, radius=6.0)
    st = straighten(image, pts, 15, 15)
    inner = st.volume[10:-10]  # away from the ends
    centre = inner[:, 15 - 3:15 + 4, 15 - 3:15 + 4]
    ring = inner[:, [15 - 12, 15 + 12], :][:, :, [3, 27]]
    assert (centre > 500).mean() > 0.98          # the tube stays on the straight axis
    assert (ring < -500).mean() > 0.98           # and nothing of it wanders outside its radius


def test_frames_are_orthonormal_and_their_columns_run_posterior():
    pts = _curve()
    t, r, s = posterior_frames(pts)
    assert np.allclose(np.einsum("ij,ij->i", t, r), 0, atol=1e-6)
    assert np.allclose(np.linalg.norm(r, axis=1), 1, atol=1e-6)
    assert np.allclose(np.cross(t, r), s)
    assert np.allclose(s @ np.array([0.0, 1.0, 0.0]), 0, atol=1e-6)  # patient posterior lies in (T, R)


def _swing_then_bend() -> np.ndarray:
    """A centre line that swings 12 mm sideways near its cranial end while the spine bends sagittally."""
    z = np.linspace(100, -100, 400)
    x = 12.0 / (1.0 + np.exp((z - 55.0) / 6.0))
    y = 0.004 * z ** 2
    return resample_by_arclength(np.stack([x, y, z], axis=1), 1.0)


def _posterior_fin_image(points: np.ndarray) -> sitk.Image:
    """A bright fin (1000 HU) straight behind the curve, 6-20 mm posterior and 2 mm wide, on a 1 mm grid."""
    size = (80, 110, 230)
    img = sitk.Image(size, sitk.sitkFloat32)
    img.SetOrigin((-40.0, -30.0, -115.0))
    arr = np.full(size[::-1], -1000.0, dtype=np.float32)
    yy, xx = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    x_lps, y_lps = xx - 40.0, yy - 30.0
    for k in range(size[2]):
        z = k - 115.0
        p = points[np.argmin(np.abs(points[:, 2] - z))]
        fin = (np.abs(x_lps - p[0]) <= 1.0) & (y_lps >= p[1] + 6.0) & (y_lps <= p[1] + 20.0)
        arr[k][fin] = 1000.0
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


def test_a_centre_line_swinging_sideways_does_not_twist_the_planes_below():
    # The vertebra's mid-sagittal plane holds the patient's posterior direction (patient lying square):
    # a fin straight behind the curve stays on the lateral centre of every straightened row. With
    # rotation-minimising frames the planes below the swing turned by the solid angle the tangent swept
    # (12 degrees here; 20 on a 3 mm phantom whose body centre line swung 10 mm at the kyphosis), and the
    # fin moved 3 mm sideways.
    pts = _swing_then_bend()
    st = straighten(_posterior_fin_image(pts), pts, 25, 15)
    fin = st.volume[15:-15, 25 + 8:25 + 19, :] > 0  # (rows, 8..18 mm behind the curve, lat)
    lat = np.arange(st.volume.shape[2]) - 15
    centre = (fin * lat).sum(axis=(1, 2)) / np.maximum(fin.sum(axis=(1, 2)), 1)
    assert fin.sum(axis=(1, 2)).min() > 0
    assert np.abs(centre).max() < 1.0  # a voxel; rotation-minimising frames: 3.0


def test_lps_round_trip_through_image_indices():
    pts = _curve()
    image = sitk.Image((50, 60, 70), sitk.sitkFloat32)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection((0, 0, -1, 1, 0, 0, 0, -1, 0))  # a sagittal (PIR-like) acquisition
    st = straighten(image, pts, 5, 5)
    rows, aps, lats = np.array([12.0, 200.0]), np.array([4.0, -3.0]), np.array([-2.0, 1.5])
    lps = st.to_lps(rows, aps, lats)
    for p, row, a, l in zip(lps, rows.astype(int), aps, lats):
        d = p - st.points[row]
        assert abs(d @ st.col_dirs[row] - a) < 1e-6
        assert abs(d @ st.lat_dirs[row] - l) < 1e-6
        assert abs(d @ st.tangents[row]) < 1e-6  # on the plane orthogonal to the curve
    idx = lps_to_index(image, lps)  # (x, y, z)
    back = np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in i)) for i in idx])
    assert np.allclose(back, lps, atol=1e-6)


def _ramp_image() -> tuple[sitk.Image, np.ndarray]:
    """An oblique, anisotropic grid whose value is a linear function of the LPS position (trilinear
    interpolation reproduces it exactly), and the function's coefficients."""
    image = sitk.Image((70, 70, 50), sitk.sitkFloat32)
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-10.0, -40.0, -60.0))  # the curve's planes lie inside (indices 3-61 of 70)
    c, s = np.cos(0.3), np.sin(0.3)
    image.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))  # rotated 17 degrees about the slice axis
    coefficients = np.array([2.0, -3.0, 5.0])
    zz, yy, xx = np.mgrid[0:50, 0:70, 0:70].astype(float)
    lps = np.stack([xx, yy, zz], axis=-1) * np.array(image.GetSpacing()) @ np.array(image.GetDirection()).reshape(3, 3).T
    lps += np.array(image.GetOrigin())
    ramp = sitk.GetImageFromArray((lps @ coefficients).astype(np.float32))
    ramp.CopyInformation(image)
    return ramp, coefficients


def test_each_plane_samples_the_ct_where_to_lps_says_and_threads_change_nothing(monkeypatch):
    import screening_node.analysis.straighten as straighten_module

    image, coefficients = _ramp_image()
    z = np.linspace(30, -30, 61)
    pts = resample_by_arclength(np.stack([4 * np.sin(z / 20.0), 3 * np.cos(z / 25.0), z], axis=1), 1.0)
    st = straighten(image, pts, 8, 6, step_mm=1.5)
    rows, aps, lats = np.meshgrid(np.arange(len(pts)), np.arange(-8, 9) * 1.5, np.arange(-6, 7) * 1.5, indexing="ij")
    expected = st.to_lps(rows, aps, lats) @ coefficients
    assert np.allclose(st.volume, expected, atol=0.02)  # float32 samples of values up to ~300
    monkeypatch.setattr(straighten_module, "SAMPLE_THREADS", 1)
    monkeypatch.setattr(straighten_module, "SAMPLE_ROWS", 5)
    assert np.array_equal(straighten(image, pts, 8, 6, step_mm=1.5).volume, st.volume)
