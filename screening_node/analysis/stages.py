"""Stage interfaces and the engine registry.

Each analysis stage has one interface (a Protocol). An engine is a named set of stage
implementations; `analytic` is classical image analysis (numpy / scipy / SimpleITK, no torch).
A `neural` engine would plug in by registering its own stages here; until then asking for it is
a clear error, not a silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import SimpleITK as sitk

from screening_node.analysis import (body_axis, body_centre, centreline, labelling, roll, segment, straighten, vertebrae,
                                     vessels)
from screening_node.errors import ScreeningNodeError


class EngineNotAvailable(ScreeningNodeError):
    """The configured analysis engine is not installed in this build."""


class BloodStage(Protocol):
    """The image with contrast-filled blood that could pass for bone read as unenhanced blood, and the pools."""
    def __call__(self, image: sitk.Image) -> tuple[sitk.Image, list[vessels.BloodPool]]: ...


class CentrelineStage(Protocol):
    def __call__(self, image: sitk.Image) -> centreline.Centreline: ...


class StraightenStage(Protocol):
    def __call__(self, image: sitk.Image, points: np.ndarray, half_ap: int, half_lat: int,
                 array: np.ndarray | None = None, step_mm: float = 1.0,
                 guide: tuple[np.ndarray, np.ndarray] | None = None) -> straighten.Straightened: ...


class RollStage(Protocol):
    """Per row: the angle (rad) from the column direction to the vertebrae's own mirror axis, or None."""
    def __call__(self, st: straighten.Straightened) -> np.ndarray | None: ...


class BodyCentreStage(Protocol):
    """Candidate centre lines of the bodies (per row: ap and lat offset in mm from the curve), likeliest first."""
    def __call__(self, st: straighten.Straightened) -> list[tuple[np.ndarray, np.ndarray]]: ...


class BodiesStage(Protocol):
    """Bodies, discs and the six keypoints in straightened coordinates."""
    def __call__(self, st: straighten.Straightened) -> tuple[list[vertebrae.BodyFinding], np.ndarray]: ...


class SquareStage(Protocol):
    """The bodies, those tilted against the planes read again square to their own axis (keypoints on st)."""
    def __call__(self, image: sitk.Image, array: np.ndarray, st: straighten.Straightened,
                 bodies: list[vertebrae.BodyFinding]) -> list[vertebrae.BodyFinding]: ...


class LabelStage(Protocol):
    def __call__(self, st: straighten.Straightened, bodies: list[vertebrae.BodyFinding]) -> labelling.Labelling: ...


class MaskStage(Protocol):
    def __call__(self, image: sitk.Image, st: straighten.Straightened,
                 bodies: list[tuple[int, vertebrae.BodyFinding]]) -> sitk.Image: ...


@dataclass(frozen=True)
class Engine:
    name: str
    blood: BloodStage
    centreline: CentrelineStage
    straighten: StraightenStage
    roll: RollStage
    body_centre: BodyCentreStage
    bodies: BodiesStage
    square: SquareStage
    label: LabelStage
    mask: MaskStage


ANALYTIC = Engine(
    name="analytic",
    blood=vessels.without_contrast_blood,
    centreline=centreline.find_centreline,
    straighten=straighten.straighten,
    roll=roll.roll_angles,
    body_centre=body_centre.body_offsets,
    bodies=vertebrae.find_bodies,
    square=body_axis.square_tilted_bodies,
    label=labelling.label_bodies,
    mask=segment.body_mask,
)

ENGINES: dict[str, Engine] = {"analytic": ANALYTIC}
KNOWN_ENGINES = ("analytic", "neural")


def get_engine(name: str) -> Engine:
    """The registered engine called name; EngineNotAvailable with a plain message otherwise."""
    if name in ENGINES:
        return ENGINES[name]
    if name in KNOWN_ENGINES:
        raise EngineNotAvailable(f"analysis engine {name!r} is not available in this build "
                                 f"(available: {', '.join(sorted(ENGINES))})")
    raise EngineNotAvailable(f"unknown analysis engine {name!r} (known: {', '.join(KNOWN_ENGINES)})")
