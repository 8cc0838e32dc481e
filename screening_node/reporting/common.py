"""What every result object shares: identity of the software, new series, source attributes."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

from pydicom.dataset import Dataset

from screening_node import __version__

MANUFACTURER = "screening-node project"
MODEL_NAME = "screening-node"
SOFTWARE_VERSION = __version__
DEVICE_SERIAL = "0"  # software only: there is no hardware serial number
ALGORITHM_NAME = "screening-node vertebral fracture screening"
SCREENING_AID_NOTICE = "Screening aid produced by software; not for diagnosis on its own."


@dataclass(frozen=True)
class OutputSeries:
    """A new series in the source study: number and description a radiologist recognises."""

    number: int
    description: str


SEG_SERIES = OutputSeries(9001, "Vertebral fracture screening - SEG")
SR_SERIES = OutputSeries(9002, "Vertebral fracture screening - SR")
SUMMARY_SERIES = OutputSeries(9003, "Vertebral fracture screening - Summary")

# Patient and study attributes copied from the source CT into every object we make.
PATIENT_STUDY_KEYWORDS: tuple[str, ...] = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
    "AccessionNumber", "StudyDate", "StudyTime", "ReferringPhysicianName",
)


def reference_dataset(source_datasets: Sequence[Dataset]) -> Dataset:
    """The first source instance: all share patient, study and frame of reference."""
    if not source_datasets:
        raise ValueError("no source CT instances were given")
    return source_datasets[0]


def copy_patient_study(target: Dataset, source: Dataset) -> None:
    """Make the patient/study module of ``target`` equal the source's (present attributes only).

    highdicom copies most of these already; doing it once here guarantees every object agrees
    with the CT even where a constructor leaves an optional attribute out.
    """
    if "SpecificCharacterSet" in source:  # names copied below may need the source's character set
        target.SpecificCharacterSet = source.SpecificCharacterSet
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in source:
            setattr(target, keyword, source.data_element(keyword).value)


@contextmanager
def no_phi_warnings() -> Iterator[None]:
    """Silence highdicom's person-name warning: its text quotes the patient's name (PHI in logs).

    The name is copied from the source unchanged; judging its form is not our business.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        yield
