"""Coded concepts used in our DICOM objects, in one place.

Standard codes come from pydicom's bundled DICOM content mapping resource
(``pydicom.sr.codedict.codes``): SNOMED CT (SCT) vertebra codes of CID 7151 /
CID 9514 and the severity qualifiers of CID 3716, DCM concepts of Part 16.
Concepts that neither DICOM nor SNOMED CT define (the Genant grade as a
concept, vertebral body heights on the mid-sagittal plane, T13 / L6 / S1 as
single vertebrae, ...) are in our private coding scheme ``99SCRNODE``; every one
of them is listed in docs/conformance.md.
"""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

PRIVATE_SCHEME = "99SCRNODE"
PRIVATE_SCHEME_NAME = "screening-node private codes"


def coding_scheme_identification() -> Dataset:
    """Item of Coding Scheme Identification Sequence (0008,0110) that declares our private scheme."""
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = "screening-node project (see docs/conformance.md)"
    return item


def _private(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=meaning)


# --- anatomy -----------------------------------------------------------------------------------
_SCT_VERTEBRA_KEYWORDS: dict[str, str] = {
    **{f"C{i}": f"C{i}Vertebra" for i in range(1, 8)},
    **{f"T{i}": f"T{i}Vertebra" for i in range(1, 13)},
    **{f"L{i}": f"L{i}Vertebra" for i in range(1, 6)},
}
# Levels SNOMED CT has no single-vertebra code for in pydicom's bundled resource.
_PRIVATE_VERTEBRAE: dict[str, CodedConcept] = {
    "T13": _private("V-T13", "T13 vertebra (supernumerary thoracic)"),
    "L6": _private("V-L6", "L6 vertebra (supernumerary lumbar)"),
    "S1": _private("V-S1", "S1 vertebra"),
}
UNLABELLED_VERTEBRA = codes.SCT.Vertebra  # a body whose level could not be named

VERTEBRAL_COLUMN = CodedConcept.from_code(codes.SCT.StructureOfVertebralColumn)
ANATOMICAL_STRUCTURE = CodedConcept.from_code(codes.SCT.AnatomicalStructure)


def vertebra_code(label: str | None) -> CodedConcept:
    """SNOMED CT code of a vertebra level (private code for T13, L6, S1; 'Vertebra' if unlabelled)."""
    if label is None:
        return CodedConcept.from_code(UNLABELLED_VERTEBRA)
    if label in _SCT_VERTEBRA_KEYWORDS:
        return CodedConcept.from_code(getattr(codes.SCT, _SCT_VERTEBRA_KEYWORDS[label]))
    if label in _PRIVATE_VERTEBRAE:
        return _PRIVATE_VERTEBRAE[label]
    raise ValueError(f"unknown vertebra level {label!r}")


def level_from_code(code: CodedConcept) -> str | None:
    """Inverse of vertebra_code (None for the unlabelled 'Vertebra')."""
    for label in (*_SCT_VERTEBRA_KEYWORDS, *_PRIVATE_VERTEBRAE):
        candidate = vertebra_code(label)
        if candidate.value == code.value and candidate.scheme_designator == code.scheme_designator:
            return label
    return None


# --- measurements ------------------------------------------------------------------------------
HEIGHT_CONCEPTS: dict[str, CodedConcept] = {
    "anterior": _private("VBH-A", "Anterior vertebral body height"),
    "middle": _private("VBH-M", "Middle vertebral body height"),
    "posterior": _private("VBH-P", "Posterior vertebral body height"),
}
HEIGHT_LOSS = _private("VBH-LOSS", "Vertebral body height loss")
VERTEBRAE_ASSESSED = _private("VB-COUNT", "Number of vertebrae assessed")
GENANT_GRADE = _private("GENANT-SQ", "Genant semi-quantitative grade")
MORPHOLOGY = _private("VB-MORPH", "Vertebral deformity morphology")
WORST_GRADE = _private("GENANT-MAX", "Worst Genant grade")
FRACTURE_SUSPECTED = _private("VCF-SUSP", "Vertebral compression fracture suspected")
ASSESSABILITY = _private("VB-ASSESS", "Vertebra assessability")
NOT_ASSESSABLE = _private("NOT-ASSESSABLE", "Not assessable")
REASON_NOT_ASSESSABLE = _private("REASON-NA", "Reason not assessable")
ANALYSIS_NOTE = _private("VCF-NOTE", "Analysis note")
PROCEDURE = _private("VCF-SCREEN", "Opportunistic vertebral fracture screening on CT")
REPORT_TITLE = CodedConcept.from_code(codes.cid7021.ImagingMeasurementReport)

MM = CodedConcept(value="mm", scheme_designator="UCUM", meaning="millimeter")
PERCENT = CodedConcept(value="%", scheme_designator="UCUM", meaning="percent")
COUNT = CodedConcept(value="{vertebrae}", scheme_designator="UCUM", meaning="vertebrae")

# Genant grade -> SNOMED CT severity qualifier (CID 3716 Severity); grade 0 is 'Normal'.
GRADE_CODES: dict[int, CodedConcept] = {
    0: CodedConcept.from_code(codes.SCT.Normal),
    1: CodedConcept.from_code(codes.SCT.Mild),
    2: CodedConcept.from_code(codes.SCT.Moderate),
    3: CodedConcept.from_code(codes.SCT.Severe),
}
GRADE_NAMES: dict[int, str] = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}

MORPHOLOGY_CODES: dict[str, CodedConcept] = {
    "normal": CodedConcept.from_code(codes.SCT.Normal),
    "wedge": CodedConcept.from_code(codes.SCT.WedgeShaped),
    "biconcave": _private("MORPH-BICONCAVE", "Biconcave deformity"),
    "crush": _private("MORPH-CRUSH", "Crush deformity"),
}
YES = CodedConcept.from_code(codes.SCT.Yes)
NO = CodedConcept.from_code(codes.SCT.No)


def same_code(a: CodedConcept, b: CodedConcept) -> bool:
    """Codes are equal when value and scheme agree (meanings may differ in wording)."""
    return a.value == b.value and a.scheme_designator == b.scheme_designator


def grade_from_code(code: CodedConcept) -> int:
    for grade, candidate in GRADE_CODES.items():
        if same_code(code, candidate):
            return grade
    raise ValueError(f"not a Genant grade code: {code}")


def morphology_from_code(code: CodedConcept) -> str:
    for name, candidate in MORPHOLOGY_CODES.items():
        if same_code(code, candidate):
            return name
    raise ValueError(f"not a morphology code: {code}")


def private_codes() -> list[CodedConcept]:
    """Every private code we emit (the conformance statement lists these)."""
    found = [c for c in globals().values() if isinstance(c, CodedConcept) and c.scheme_designator == PRIVATE_SCHEME]
    for group in (HEIGHT_CONCEPTS, MORPHOLOGY_CODES, _PRIVATE_VERTEBRAE):
        found += [c for c in group.values() if c.scheme_designator == PRIVATE_SCHEME]
    unique: dict[str, CodedConcept] = {c.value: c for c in found}
    return sorted(unique.values(), key=lambda c: c.value)
