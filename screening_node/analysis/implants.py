"""Bone cement and metal inside a vertebral body: a treated or instrumented vertebra is not graded.

Vertebroplasty / kyphoplasty cement (PMMA made radiopaque with barium or zirconia) and pedicle
screws fill a body with material far denser than any bone. Its edges read as endplates and walls,
so heights measured there are meaningless (a cemented phantom L1 read as a grade-2 crush). Such a
body is still found and labelled but not measured, with the reason in its result and in the notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from screening_node.analysis import thresholds as T
from screening_node.analysis.straighten import Straightened
from screening_node.analysis.vertebrae import BodyFinding, body_block

TREATED_REASON = ("radiodense material (bone cement or metal) in the body: a treated or instrumented vertebra "
                  "is not measured")


def radiodense_mm3(st: Straightened, body: BodyFinding) -> float:
    """Volume (mm^3) of the body's box on the straightened volume that is denser than any bone.

    The box spans the body's rows between its discs (12 rows either side of its centre where a disc
    is not in view), its anterior-posterior extent and its lateral half-width.
    """
    h = st.step_mm
    half = max(1, int(round(body.lat_half_width / h)))
    box = body_block(st, body, body.ap_range)[:, :, max(0, st.half_lat - half):st.half_lat + half + 1]
    return float(np.count_nonzero(box > T.RADIODENSE_HU)) * h ** 3


def set_aside_treated(st: Straightened, bodies: list[BodyFinding]) -> tuple[list[BodyFinding], dict[int, float]]:
    """Bodies holding at least RADIODENSE_MIN_MM3 of cement or metal lose their keypoints (not measured,
    and no neighbour's crush reference) and get TREATED_REASON; also returns {index: volume mm^3} of them."""
    out, treated = [], {}
    for i, b in enumerate(bodies):
        volume = radiodense_mm3(st, b)
        if volume >= T.RADIODENSE_MIN_MM3:
            out.append(dataclasses.replace(b, keypoints=None, reason=TREATED_REASON))
            treated[i] = volume
        else:
            out.append(b)
    return out, treated


def treated_note(label: str | None, volume_mm3: float) -> str:
    """The study note for one treated body."""
    return (f"{label or 'an unlabelled body'}: {volume_mm3:.0f} mm3 denser than bone (> {T.RADIODENSE_HU:g} HU), "
            "bone cement or metal; not measured")
