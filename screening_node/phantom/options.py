"""What a phantom is made of: the options of one synthetic CT study.

One frozen dataclass, filled by the CLI or by Python callers; everything the
generator does is a function of these options (the seed included), so the same
options give the same bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from screening_node.analysis.results import GRADED_LEVELS, LEVELS

FOVS = ("trunk", "chest", "abdomen", "lumbar", "spine-crop")
MORPHOLOGIES = ("wedge", "biconcave", "crush")
BONE_DENSITIES = ("normal", "osteopenic", "osteoporotic")
DEGENERATIONS = ("none", "moderate", "severe")  # osteophytes, vacuum discs, aortic plaques (degeneration.py)
PATIENT_SIZES = ("small", "medium", "large")
CONTRAST_PHASES = ("venous", "arterial")  # portal venous (the aorta ~250 HU) or late arterial (~420 HU)
TRANSFER_SYNTAXES = ("explicit", "implicit", "rle", "jpeg-ls", "jpeg2000")
FORMATS = ("dicom", "nifti", "both")
# axial: slices as the scanner acquires them. sagittal: a sagittal multiplanar reformat, as a department archives
# beside (or instead of) thick axial slices: made from thin slices, so fine along the spine, thick across it.
PLANES = ("axial", "sagittal")


@dataclass(frozen=True)
class FractureSpec:
    """One requested fracture: level, Genant grade 1-3 and morphology."""

    level: str
    grade: int
    morphology: str

    @classmethod
    def parse(cls, text: str) -> "FractureSpec":
        """Parse ``LEVEL:GRADE:MORPHOLOGY`` (e.g. ``L1:3:wedge``)."""
        parts = text.strip().split(":")
        if len(parts) != 3:
            raise ValueError(f"fracture {text!r}: expected LEVEL:GRADE:MORPHOLOGY, e.g. L1:2:wedge")
        level, grade_text, morphology = parts[0].upper(), parts[1], parts[2].lower()
        if level not in GRADED_LEVELS:
            raise ValueError(f"fracture {text!r}: level must be one of T1-T13, L1-L6")
        if grade_text not in ("1", "2", "3"):
            raise ValueError(f"fracture {text!r}: grade must be 1, 2 or 3")
        if morphology not in MORPHOLOGIES:
            raise ValueError(f"fracture {text!r}: morphology must be one of {', '.join(MORPHOLOGIES)}")
        return cls(level, int(grade_text), morphology)

    def __str__(self) -> str:
        return f"{self.level}:{self.grade}:{self.morphology}"


def parse_level_range(text: str) -> tuple[str, str]:
    """``T9-L3`` -> ("T9", "L3"), cranial first."""
    parts = text.upper().replace(":", "-").split("-")
    if len(parts) != 2 or parts[0] not in LEVELS or parts[1] not in LEVELS:
        raise ValueError(f"levels {text!r}: expected FIRST-LAST, e.g. T9-L3")
    first, last = sorted(parts, key=LEVELS.index)
    return first, last


@dataclass(frozen=True)
class PhantomOptions:
    """Everything that defines one synthetic study. Lengths in mm, angles in degrees, HU for noise."""

    seed: int = 0
    fov: str = "trunk"
    levels: tuple[str, str] | None = None  # restrict the scanned range to these levels (cranial, caudal)
    fractures: tuple[FractureSpec, ...] = ()
    fracture_prevalence: float = 0.0  # chance per unrequested T4-L5 level of a random fracture
    kyphosis: float = 40.0  # thoracic Cobb angle T4-T12
    lordosis: float = 50.0  # lumbar Cobb angle L1-S1
    scoliosis: float = 0.0  # coronal Cobb angle of a thoracolumbar curve (sign: convex to the patient's left)
    roll: float = 0.0  # the patient lying turned about the long axis (degrees; positive: the back towards the right)
    patient_size: str = "medium"
    bone_density: str = "normal"
    degeneration: str = "none"
    schmorl_nodes: float = 0.0  # chance per T6-L5 endplate of a Schmorl's node
    noise: float = 12.0  # HU standard deviation of the (correlated) noise
    texture: float = 0.0  # HU standard deviation of the vertebral bodies' trabecular texture (0: flat marrow)
    slice_thickness: float = 2.0
    slice_spacing: float | None = None  # default: equal to the thickness
    plane: str = "axial"  # the stored slices: axial, or a sagittal reformat (MPR) of thin slices (PLANES)
    pixel_spacing: float | None = None  # default: the field of view divided by the matrix
    matrix: int | None = None  # default: 512 for body fields of view, 128 for spine-crop
    feet_first: bool = False
    contrast: bool = True
    contrast_phase: str = "venous"  # with contrast: the phase the scan was taken in (CONTRAST_PHASES)
    rib_pairs: int = 12
    lumbar: int = 5
    transfer_syntax: str = "explicit"
    format: str = "both"
    preview: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.fov in FOVS, f"fov must be one of {', '.join(FOVS)}"),
            (self.patient_size in PATIENT_SIZES, f"patient size must be one of {', '.join(PATIENT_SIZES)}"),
            (self.bone_density in BONE_DENSITIES, f"bone density must be one of {', '.join(BONE_DENSITIES)}"),
            (self.degeneration in DEGENERATIONS, f"degeneration must be one of {', '.join(DEGENERATIONS)}"),
            (self.contrast_phase in CONTRAST_PHASES, f"contrast phase must be one of {', '.join(CONTRAST_PHASES)}"),
            (self.transfer_syntax in TRANSFER_SYNTAXES,
             f"transfer syntax must be one of {', '.join(TRANSFER_SYNTAXES)}"),
            (self.format in FORMATS, f"format must be one of {', '.join(FORMATS)}"),
            (self.plane in PLANES, f"plane must be one of {', '.join(PLANES)}"),
            (self.plane == "axial" or self.slice_spacing is None,
             "a sagittal reformat's slabs lie side by side: give its slice thickness, not a spacing"),
            (self.rib_pairs in (11, 12, 13), "rib pairs must be 11, 12 or 13"),
            (self.lumbar in (5, 6), "lumbar vertebrae must be 5 or 6"),
            (0.0 <= self.fracture_prevalence <= 1.0, "fracture prevalence must be in 0..1"),
            (self.noise >= 0, "noise must be >= 0 HU"),
            (0 <= self.texture <= 200, "texture must be 0-200 HU"),
            (0.0 <= self.schmorl_nodes <= 1.0, "Schmorl's node chance must be in 0..1"),
            (0.3 <= self.slice_thickness <= 10, "slice thickness must be 0.3-10 mm"),
            (self.slice_spacing is None or 0.3 <= self.slice_spacing <= 10, "slice spacing must be 0.3-10 mm"),
            (self.pixel_spacing is None or 0.2 <= self.pixel_spacing <= 5, "pixel spacing must be 0.2-5 mm"),
            (self.matrix is None or 32 <= self.matrix <= 1024, "matrix must be 32-1024"),
            (abs(self.scoliosis) <= 80, "scoliosis must be within +-80 degrees"),
            (abs(self.roll) <= 45, "roll must be within +-45 degrees"),
            (0 <= self.kyphosis <= 100, "kyphosis must be 0-100 degrees"),
            (0 <= self.lordosis <= 100, "lordosis must be 0-100 degrees"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        levels = [f.level for f in self.fractures]
        if len(set(levels)) != len(levels):
            raise ValueError("at most one fracture per level")
        for f in self.fractures:
            if f.level == "T13" and self.rib_pairs != 13:
                raise ValueError("T13 exists only with --rib-pairs 13")
            if f.level == "T12" and self.rib_pairs == 11:
                raise ValueError("T12 does not exist with --rib-pairs 11 (the thoracic spine ends at T11)")
            if f.level == "L6" and self.lumbar != 6:
                raise ValueError("L6 exists only with --lumbar 6")

    @property
    def spacing_z(self) -> float:
        return self.slice_spacing if self.slice_spacing is not None else self.slice_thickness

    def with_(self, **changes: Any) -> "PhantomOptions":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fractures"] = [str(f) for f in self.fractures]
        data["levels"] = "-".join(self.levels) if self.levels else None
        return data


# A small, fast preset for tests and benchmarks: 256 x 256 pixels of 1.5 mm, 3 mm slices.
FAST = dict(matrix=256, pixel_spacing=1.5, slice_thickness=3.0)


def fast_options(**changes: Any) -> PhantomOptions:
    """Options of the fast test preset, with ``changes`` applied."""
    return PhantomOptions(**{**FAST, **changes})


__all__ = ["PhantomOptions", "FractureSpec", "parse_level_range", "fast_options", "FOVS", "MORPHOLOGIES",
           "BONE_DENSITIES", "DEGENERATIONS", "PATIENT_SIZES", "TRANSFER_SYNTAXES", "FORMATS", "PLANES"]
