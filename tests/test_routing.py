"""Every routing rule, with its reason, and the choice of the best series of a study."""

from __future__ import annotations

import dataclasses

import pytest

from screening_node.config import RoutingSection
from screening_node.intake.routing import SeriesFacts, choose_best, decide, facts_from_files
from tests.synthetic_ct import write_series

RULES = RoutingSection()


def facts(**changes) -> SeriesFacts:
    base = SeriesFacts(series_uid="1.2.3", modality="CT", image_types=("ORIGINAL", "PRIMARY", "AXIAL"),
                       orientation=(1, 0, 0, 0, 1, 0), positions_along_normal_mm=tuple(float(z) for z in range(0, 300, 2)),
                       text_fields=("ABDOMEN", "CT ABD/PEL W CONTRAST", "Venous 2.0 B30f", ""), kernel="B30f",
                       slice_thickness_mm=2.0, patient_age_years=67.0, series_number=3)
    return dataclasses.replace(base, **changes)


def test_a_standard_abdomen_series_is_eligible_with_a_reason():
    decision = decide(facts(), RULES)
    assert decision.eligible and "150 slices" in decision.reason and "298 mm" in decision.reason


@pytest.mark.parametrize("changes, reason", [
    ({"modality": "MR"}, "modality MR"),
    ({"image_types": ("DERIVED", "SECONDARY", "AXIAL")}, "not an original primary"),
    ({"image_types": ("ORIGINAL", "PRIMARY", "LOCALIZER")}, "LOCALIZER"),
    ({"image_types": ("ORIGINAL", "PRIMARY", "AXIAL", "MPR")}, "MPR"),
    ({"orientation": (1, 0, 0, 0, 0, -1)}, "not axial"),  # coronal
    ({"orientation": None}, "orientation missing"),
    ({"text_fields": ("HEAD", "CT HEAD", "", "")}, "head"),
    ({"text_fields": ("KNEE", "", "", "")}, "knee"),
    ({"text_fields": ("EXTREMITY", "", "", "")}, "not chest, abdomen"),
    ({"text_fields": ("", "", "", "")}, "no body part"),
    ({"positions_along_normal_mm": tuple(float(z) for z in range(0, 60, 2))}, "fewer than the 40"),
    ({"positions_along_normal_mm": tuple(float(z) for z in range(0, 60))}, "less than the 100 mm"),
    ({"positions_along_normal_mm": tuple(float(z) for z in range(0, 600, 6))}, "exceeds 3.5 mm"),
    ({"slice_thickness_mm": 5.0}, "slice thickness 5 mm exceeds 3.5 mm"),
])
def test_each_rule_refuses_with_its_reason(changes, reason):
    decision = decide(facts(**changes), RULES)
    assert not decision.eligible
    assert reason.lower() in decision.reason.lower(), decision.reason


def test_body_part_keywords_ignore_case_and_separators():
    for text in ("Chest", "thorax", "WHOLE_BODY", "Whole-Body", "trunk", "c/a/p abdomen-pelvis", "TORSO"):
        assert decide(facts(text_fields=(text, "", "", "")), RULES).eligible, text


def test_optional_rules_are_configurable():
    rules = dataclasses.replace(RULES, min_patient_age_years=50, accept_unknown_body_part=True)
    assert decide(facts(text_fields=("", "", "", "")), rules).eligible
    young = decide(facts(patient_age_years=30.0), rules)
    assert not young.eligible and "younger than 50" in young.reason
    unknown = decide(facts(patient_age_years=None), rules)
    assert not unknown.eligible and "age unknown" in unknown.reason


def test_best_series_is_thinnest_then_preferred_kernel():
    thick = facts(series_uid="thick", slice_thickness_mm=5.0, kernel="B30f")
    thin_bone = facts(series_uid="thin-bone", slice_thickness_mm=1.0, kernel="B70f")
    thin_soft = facts(series_uid="thin-soft", slice_thickness_mm=1.0, kernel="B30f")
    assert choose_best([thick, thin_bone, thin_soft], RULES).series_uid == "thin-soft"
    assert choose_best([thick, thin_bone], RULES).series_uid == "thin-bone"


def test_facts_are_read_from_headers_including_feet_first_and_age(tmp_path):
    files = write_series(tmp_path, n_slices=4, spacing=2.5, origin=(0, 0, 100), orientation=(-1, 0, 0, 0, 1, 0))
    read = facts_from_files("x", files)
    assert read.slices == 4 and read.z_coverage_mm == pytest.approx(7.5)
    assert read.max_spacing_mm == pytest.approx(2.5) and read.patient_age_years == 70
    assert read.image_types == ("ORIGINAL", "PRIMARY", "AXIAL") and read.text_fields[0] == "ABDOMEN"


def sagittal(**changes) -> SeriesFacts:
    """A sagittal reformat as vendors archive it: DERIVED MPR, 3 mm slabs across 123 mm, 0.8 mm pixels over 410 mm."""
    base = facts(image_types=("DERIVED", "SECONDARY", "MPR"), orientation=(0, 1, 0, 0, 0, -1),
                 positions_along_normal_mm=tuple(float(x) for x in range(-60, 63, 3)), slice_thickness_mm=3.0,
                 rows=512, columns=512, pixel_spacing_mm=(0.8, 0.8), series_uid="sagittal")
    return dataclasses.replace(base, **changes)


def test_a_sagittal_reformat_is_eligible_where_no_axial_series_is():
    decision = decide(sagittal(), RULES)
    assert decision.eligible, decision.reason
    assert "where no axial series is" in decision.reason and "123 mm wide" in decision.reason
    assert "410 mm along the spine" in decision.reason
    assert sagittal().plane == "sagittal" and facts().plane == "axial"


@pytest.mark.parametrize("changes, reason", [
    ({"image_types": ("DERIVED", "SECONDARY", "MIP")}, "MIP is not a stack of sagittal sections"),
    ({"image_types": ("DERIVED", "SECONDARY", "VOLUME")}, "VOLUME"),
    ({"text_fields": ("HEAD", "", "", "")}, "head"),
    ({"rows": 100}, "covers 80 mm along the spine"),
    ({"pixel_spacing_mm": (4.0, 4.0)}, "pixels 4.0 mm along the spine"),
    ({"positions_along_normal_mm": tuple(float(x) for x in range(-30, 33, 3))}, "63 mm wide, less than the 120 mm"),
    ({"slice_thickness_mm": 5.0}, "5 mm thick exceed 3.5 mm"),
    ({"rows": None}, "coverage is unknown"),
])
def test_each_sagittal_rule_refuses_with_its_reason(changes, reason):
    decision = decide(sagittal(**changes), RULES)
    assert not decision.eligible
    assert reason.lower() in decision.reason.lower(), decision.reason


def test_sagittal_reformats_can_be_switched_off():
    decision = decide(sagittal(), dataclasses.replace(RULES, sagittal_reformats=False))
    assert not decision.eligible and "not an original primary" in decision.reason


def test_an_eligible_axial_series_is_screened_before_a_sagittal_reformat():
    axial = facts(series_uid="axial", slice_thickness_mm=3.0)
    reformat = sagittal(slice_thickness_mm=2.0)
    assert choose_best([reformat, axial], RULES).series_uid == "axial"
    assert choose_best([reformat], RULES).series_uid == "sagittal"


def test_a_department_may_screen_the_reformat_before_thick_axial_slices():
    rules = dataclasses.replace(RULES, sagittal_before_axial_thicker_than_mm=2.5)
    thick = facts(series_uid="axial-3mm", slice_thickness_mm=3.0)
    thin = facts(series_uid="axial-2mm", slice_thickness_mm=2.0)
    assert choose_best([thick, sagittal()], rules).series_uid == "sagittal"
    assert choose_best([thick, thin, sagittal()], rules).series_uid == "axial-2mm"
    assert choose_best([thick, sagittal()], RULES).series_uid == "axial-3mm"  # by default the axial first


def test_sagittal_facts_are_read_from_headers(tmp_path):
    files = write_series(tmp_path, n_slices=4, rows=20, columns=30, pixel_spacing=0.8, spacing=3.0,
                         orientation=(0, 1, 0, 0, 0, -1), image_type=("DERIVED", "SECONDARY", "MPR"))
    read = facts_from_files("x", files)
    assert read.plane == "sagittal" and (read.rows, read.columns) == (20, 30)
    assert read.pixel_spacing_mm == (0.8, 0.8)
    assert read.in_plane_z_extent_mm == pytest.approx(16.0)  # rows run along -z: 20 x 0.8 mm
    assert read.in_plane_z_step_mm == pytest.approx(0.8)
    assert read.z_coverage_mm == pytest.approx(9.0)  # across the patient, first slice to last


def test_an_enhanced_ct_sagittal_series_keeps_its_pixel_spacing_in_the_shared_groups(tmp_path):
    from pydicom.dataset import Dataset

    def item(**values) -> Dataset:
        ds = Dataset()
        for key, value in values.items():
            setattr(ds, key, value)
        return ds

    ds = item(Modality="CT", ImageType=["DERIVED", "SECONDARY", "MPR"], Rows=500, Columns=400,
              BodyPartExamined="ABDOMEN", SliceThickness="3")
    ds.SharedFunctionalGroupsSequence = [item(
        PixelMeasuresSequence=[item(PixelSpacing=[0.8, 0.8])],
        PlaneOrientationSequence=[item(ImageOrientationPatient=[0, 1, 0, 0, 0, -1])])]
    ds.PerFrameFunctionalGroupsSequence = [item(PlanePositionSequence=[item(ImagePositionPatient=[60 - 3 * k, 0, 0])])
                                           for k in range(41)]
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2.1", generate_uid()  # Enhanced CT Image Storage
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path, enforce_file_format=True)
    read = facts_from_files("x", [path])
    assert read.plane == "sagittal" and read.pixel_spacing_mm == (0.8, 0.8)
    assert read.in_plane_z_extent_mm == pytest.approx(400.0)  # 500 rows of 0.8 mm along -z
    assert decide(read, RULES).eligible, decide(read, RULES).reason
