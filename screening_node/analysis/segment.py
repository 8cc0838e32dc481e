"""Vertebral body masks on the CT grid (for the DICOM SEG), from the straightened measurements.

Each measured body becomes, in straightened space, the bone-density voxels between its two
endplate lines (interpolated across the body depth through the anterior, middle and posterior
keypoints), inside its anterior/posterior edges and an ellipse of its lateral half-width. These
voxels are sampled at sub-voxel steps, mapped to patient LPS and then to CT indices, so the mask
has exactly the CT's geometry (numpy (z, y, x) of the analysed image).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from screening_node.analysis import thresholds as T
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding
from screening_node.imaging.geometry import lps_direction_to_index, lps_to_index

MASK_MIN_HU = 50.0  # inside the outline, below this is fat / vessel / disc, not body


def body_mask(image: sitk.Image, st: Straightened, bodies: list[tuple[int, BodyFinding]]) -> sitk.Image:
    """Label image (CT geometry): value = mask label for each (mask_label, body) pair; uint8 (a spine has
    fewer than 256 bodies), uint16 only for more labels.

    The labels are drawn and closed in the box that holds the bodies (a few per cent of a trunk's
    voxels), then pasted into an empty image of the CT's geometry. One byte a voxel, not two: making
    and writing a 512 x 512 x 400 trunk's mask took 0.35 s in uint16, 0.14 s in uint8.
    """
    size = image.GetSize()
    shape = np.array((size[2], size[1], size[0]))
    # Finer than the CT voxel. A rotated grid this coarse can miss a single voxel (a sample in every voxel
    # needs <= 0.58 of it: half the samples, twice the time); the closing below fills such pin holes.
    step = float(np.clip(0.75 * min(image.GetSpacing()), 0.4, 1.0))
    drawn = [(label, voxels) for label, b in bodies
             if (voxels := _body_voxels(image, st, b, step, shape)) is not None and len(voxels)]
    wide = max((label for label, _ in bodies), default=0) > np.iinfo(np.uint8).max
    pixel, dtype = (sitk.sitkUInt16, np.uint16) if wide else (sitk.sitkUInt8, np.uint8)
    mask = sitk.Image(size, pixel)
    mask.CopyInformation(image)
    if not drawn:
        return mask
    everything = np.concatenate([v for _, v in drawn])
    lo = np.maximum(everything.min(axis=0) - 2, 0)  # room for the closing below
    hi = np.minimum(everything.max(axis=0) + 3, shape)
    box = np.zeros(tuple(hi - lo), dtype=dtype)
    for label, voxels in drawn:
        v = voxels - lo
        box[v[:, 0], v[:, 1], v[:, 2]] = label
    # close pin holes left by the sampling and the density cut, per label, inside its own box
    boxes = ndimage.find_objects(box)
    for label, _ in drawn:
        if label > len(boxes) or boxes[label - 1] is None:
            continue
        own = tuple(slice(max(0, s.start - 2), s.stop + 2) for s in boxes[label - 1])
        sub = box[own]
        m = sub == label
        filled = ndimage.binary_closing(m, iterations=1) & ((sub == 0) | m)
        sub[filled] = label
    pasted = sitk.GetImageFromArray(box)
    mask[int(lo[2]):int(hi[2]), int(lo[1]):int(hi[1]), int(lo[0]):int(hi[0])] = pasted
    return mask


def _body_voxels(image: sitk.Image, st: Straightened, b: BodyFinding, step: float,
                 shape: np.ndarray) -> np.ndarray | None:
    """CT voxels (numpy z, y, x; inside the image) of one measured body, or None when it was not measured.

    The body, in straightened space: the bone-density samples between its two endplate lines
    (interpolated across its depth through the anterior, middle and posterior keypoints), inside its
    anterior/posterior edges and an ellipse of its lateral half-width, sampled every ``step`` mm.
    A row's samples map to CT indices linearly in (ap, lat) (its plane), so each sample's index is its
    row's point plus its offsets along the row's frame, in index units.
    """
    kp = b.keypoints
    if kp is None:
        return None
    ant, post = b.ap_range
    aps = np.array([kp[f"superior_{n}"][1] for n in ("anterior", "middle", "posterior")])
    sup = np.array([kp[f"superior_{n}"][0] for n in ("anterior", "middle", "posterior")])
    inf = np.array([kp[f"inferior_{n}"][0] for n in ("anterior", "middle", "posterior")])
    a = np.arange(ant, post + 1e-6, step)
    lat = np.arange(-b.lat_half_width, b.lat_half_width + 1e-6, step)
    r_lo = np.interp(a, aps, sup)
    r_hi = np.interp(a, aps, inf)
    rows = np.arange(np.floor(r_lo.min()), np.ceil(r_hi.max()) + 1e-6, step)
    # samples on the (row, ap, lat) grid, by broadcasting: each ap position has its own endplate rows
    centre_a = 0.5 * (ant + post)
    half_a = 0.5 * (post - ant)
    ellipse = ((a[:, None] - centre_a) / half_a) ** 2 + (lat[None, :] / b.lat_half_width) ** 2 <= 1.0
    between = (rows[:, None] >= r_lo[None, :]) & (rows[:, None] <= r_hi[None, :])
    inside = between[:, :, None] & ellipse[None, :, :]
    # keep bone-density samples (the straightened volume at the nearest 1 mm voxel): above the
    # half level between this body's own core density and soft tissue, holes filled
    ri = np.clip(np.rint(rows).astype(int), 0, st.volume.shape[0] - 1)
    ai = np.clip(np.rint(a).astype(int) + st.half_ap, 0, st.volume.shape[1] - 1)
    li = np.clip(np.rint(lat).astype(int) + st.half_lat, 0, st.volume.shape[2] - 1)
    values = st.volume[ri[:, None, None], ai[None, :, None], li[None, None, :]]
    core = float(np.median(values[inside])) if inside.any() else MASK_MIN_HU
    level = max(MASK_MIN_HU, 0.5 * (core + T.SOFT_TISSUE_HU))
    keep = inside & ndimage.binary_fill_holes(inside & (values >= level))
    point, col, side = st.plane_at(rows)
    base, col, side = lps_to_index(image, point), lps_direction_to_index(image, col), lps_direction_to_index(image, side)
    row_of, a_of, lat_of = np.nonzero(keep)
    idx = base[row_of] + a[a_of, None] * col[row_of] + lat[lat_of, None] * side[row_of]
    idx = np.rint(idx[:, ::-1]).astype(np.int64)  # numpy (z, y, x)
    return idx[np.all((idx >= 0) & (idx < shape), axis=1)]
