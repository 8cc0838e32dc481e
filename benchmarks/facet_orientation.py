"""Could the facet joints' turn at the thoraco-lumbar junction label a level? Measured on the real scans.

The classic marker of the thoraco-lumbar junction is the facet joints turning from coronal (thoracic: the
joint cleft runs side to side in an axial plane) to sagittal (lumbar: it runs front to back), most often
at T12/L1. Where a tight crop cuts the ribs (verse19-007) such a marker would be an anchor. This measures
it, and is not part of the analysis: on each axial plane of the straightened spine from 10 mm above to
6 mm below each disc, behind the body's back wall (3-33 mm) and 8-28 mm to each side of the midline,
dark clefts inside bone are the points where the in-plane Hessian (sigma 1 mm) has its larger eigenvalue
above 60 HU/mm^2 and the CT smoothed by 2 mm reads 250 HU or more; the "coronal share" is the
eigenvalue-weighted mean squared front-to-back component of the direction across the cleft (1: every
cleft runs side to side, as a thoracic facet joint does; 0: front to back). Per disc the median over
those planes is printed with the levels the analysis gave the bodies above and below it.

    .venv/bin/python benchmarks/facet_orientation.py [--cases verse19-007 tcia-pancreas-ct-cb-001 ...]
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from patient_roll import CASES, DATA, comparison_parser, data_missing
from screening_node.analysis import thresholds as T
from screening_node.analysis.pipeline import measured_spine
from screening_node.analysis.stages import ANALYTIC
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding
from screening_node.imaging.geometry import as_lps
from screening_node.imaging.volume import load_volume

ROWS_ABOVE_MM, ROWS_BELOW_MM, ROW_STEP_MM = 10, 6, 2
BEHIND_WALL_MM = (3, 33)
SIDE_MM = (8, 28)
CLEFT_CURVATURE = 60.0  # HU / mm^2: a 1-2 mm dark cleft between cortical plates
IN_BONE_HU = 250.0


def coronal_share(plane: np.ndarray, ap_rows: slice, lateral: np.ndarray) -> float | None:
    """Coronal share of the dark clefts inside bone on one axial plane (ap, lat), or None with too few."""
    plane = plane.astype(float)
    h_aa = ndimage.gaussian_filter(plane, 1.0, order=(2, 0))
    h_ll = ndimage.gaussian_filter(plane, 1.0, order=(0, 2))
    h_al = ndimage.gaussian_filter(plane, 1.0, order=(1, 1))
    larger = (h_aa + h_ll) / 2 + np.sqrt(np.maximum(((h_aa - h_ll) / 2) ** 2 + h_al ** 2, 0.0))
    across_ap, across_lat = larger - h_ll, h_al  # the larger eigenvalue's eigenvector
    share = across_ap ** 2 / (across_ap ** 2 + across_lat ** 2 + 1e-12)
    region = np.zeros(plane.shape, bool)
    region[ap_rows, :] = True
    region &= lateral[None, :]
    cleft = region & (larger > CLEFT_CURVATURE) & (ndimage.gaussian_filter(plane, 2.0) >= IN_BONE_HU)
    if cleft.sum() < 6:
        return None
    weights = larger[cleft]
    return float((share[cleft] * weights).sum() / weights.sum())


def disc_share(st: Straightened, body: BodyFinding) -> float | None:
    """Median coronal share over the planes around the disc below ``body``."""
    v = st.volume
    disc = int(round(body.bottom_disc))  # type: ignore[arg-type]
    back = st.half_ap + int(round(body.ap_range[1] / st.step_mm))
    ap_rows = slice(back + BEHIND_WALL_MM[0], back + BEHIND_WALL_MM[1])
    side = np.abs(np.arange(v.shape[2]) - st.half_lat) * st.step_mm
    lateral = (side >= SIDE_MM[0]) & (side <= SIDE_MM[1])
    shares = [coronal_share(v[r], ap_rows, lateral)
              for r in range(disc - ROWS_ABOVE_MM, disc + ROWS_BELOW_MM + 1, ROW_STEP_MM) if 0 <= r < v.shape[0]]
    found = [s for s in shares if s is not None]
    return float(np.median(found)) if found else None


def main() -> int:
    ap = comparison_parser(__doc__)
    args = ap.parse_args()
    if data_missing():
        return 0
    for case in args.cases:
        image = as_lps(load_volume(DATA / case / CASES.get(case, "")).image)
        image, _ = ANALYTIC.blood(image)
        st, bodies = measured_spine(ANALYTIC, image, sitk.GetArrayViewFromImage(image))
        h = T.LABEL_STEP_MM
        wide = ANALYTIC.straighten(image, st.points, int(T.STRAIGHT_HALF_AP_MM / h), int(T.LABEL_HALF_LAT_MM / h),
                                   sitk.GetArrayViewFromImage(image), h, guide=st.guide())
        labels = ANALYTIC.label(wide, bodies).labels
        print(case)
        for k, body in enumerate(bodies[:-1]):
            if body.bottom_disc is None:
                continue
            share = disc_share(st, body)
            pair = f"{labels[k] or '?'}/{labels[k + 1] or '?'}"
            print(f"  {pair:8s} coronal share {'-' if share is None else f'{share:.2f}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
