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
from screening_node.imaging.geometry import lps_to_voxel_zyx

MASK_MIN_HU = 50.0  # inside the outline, below this is fat / vessel / disc, not body


def body_mask(image: sitk.Image, st: Straightened, bodies: list[tuple[int, BodyFinding]]) -> sitk.Image:
    """Label image (uint16, CT geometry): value = mask label for each (mask_label, body) pair."""
    size = image.GetSize()
    out = np.zeros((size[2], size[1], size[0]), dtype=np.uint16)
    # Finer than the CT voxel. A rotated grid this coarse can miss a single voxel (a sample in every voxel
    # needs <= 0.58 of it: half the samples, twice the time); the closing below fills such pin holes.
    step = float(np.clip(0.75 * min(image.GetSpacing()), 0.4, 1.0))
    for label, b in bodies:
        kp = b.keypoints
        if kp is None:
            continue
        ant, post = b.ap_range
        aps = np.array([kp[f"superior_{n}"][1] for n in ("anterior", "middle", "posterior")])
        sup = np.array([kp[f"superior_{n}"][0] for n in ("anterior", "middle", "posterior")])
        inf = np.array([kp[f"inferior_{n}"][0] for n in ("anterior", "middle", "posterior")])
        a = np.arange(ant, post + 1e-6, step)
        lat = np.arange(-b.lat_half_width, b.lat_half_width + 1e-6, step)
        r_lo = np.interp(a, aps, sup)
        r_hi = np.interp(a, aps, inf)
        rows = np.arange(np.floor(r_lo.min()), np.ceil(r_hi.max()) + 1e-6, step)
        R, A, L = np.meshgrid(rows, a, lat, indexing="ij")
        lo = np.interp(A, aps, sup)
        hi = np.interp(A, aps, inf)
        centre_a = 0.5 * (ant + post)
        half_a = 0.5 * (post - ant)
        inside = (R >= lo) & (R <= hi) & (((A - centre_a) / half_a) ** 2 + (L / b.lat_half_width) ** 2 <= 1.0)
        # keep bone-density samples (the straightened volume at the nearest 1 mm voxel): above the
        # half level between this body's own core density and soft tissue, holes filled
        ri = np.clip(np.rint(R).astype(int), 0, st.volume.shape[0] - 1)
        ai = np.clip(np.rint(A).astype(int) + st.half_ap, 0, st.volume.shape[1] - 1)
        li = np.clip(np.rint(L).astype(int) + st.half_lat, 0, st.volume.shape[2] - 1)
        values = st.volume[ri, ai, li]
        core = float(np.median(values[inside])) if inside.any() else MASK_MIN_HU
        level = max(MASK_MIN_HU, 0.5 * (core + T.SOFT_TISSUE_HU))
        keep = inside & ndimage.binary_fill_holes(inside & (values >= level))
        R, A, L = R[keep], A[keep], L[keep]
        idx = lps_to_voxel_zyx(image, st.to_lps(R, A, L))
        ok = np.all((idx >= 0) & (idx < np.array(out.shape)), axis=1)
        idx = idx[ok]
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = label
    # close pin holes left by the sampling and the density cut, per label, inside its own box
    # (one find_objects pass over the volume, not one full-volume comparison per label)
    boxes = ndimage.find_objects(out)
    for label, _ in bodies:
        if label > len(boxes) or boxes[label - 1] is None:
            continue
        box = tuple(slice(max(0, s.start - 2), s.stop + 2) for s in boxes[label - 1])
        sub = out[box]
        m = sub == label
        filled = ndimage.binary_closing(m, iterations=1) & ((sub == 0) | m)
        sub[filled] = label
    mask = sitk.GetImageFromArray(out)
    mask.CopyInformation(image)
    return mask
