"""Shared fixtures: where the real data lives, and the DCMTK / dicom3tools binaries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


def shared_case(name: str) -> Path:
    """Path of a real case in ../shared/data, or skip the test with a clear reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (../shared/data is not beside this checkout)")
    return path


def dcmtk_tool(name: str) -> str:
    """DCMTK's own binary (never a Python package's shim of the same name)."""
    for candidate in (f"/usr/bin/{name}", shutil.which(name)):
        if candidate and Path(candidate).exists() and "pyenv" not in candidate and ".venv" not in candidate:
            return candidate
    pytest.fail(f"{name} is not installed: run scripts/setup.sh (installs dcmtk and dicom3tools)")
    raise AssertionError  # unreachable


def gdcm_reference(folder: Path):  # type: ignore[no-untyped-def]
    """SimpleITK's own GDCM series reader on ``folder``: the reference our reconstruction must equal."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def assert_same_volume(image, reference) -> None:  # type: ignore[no-untyped-def]
    """Same geometry and the same voxel values (after HU rescale) as the reference image."""
    import numpy as np
    import SimpleITK as sitk

    assert image.GetSize() == reference.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image),
                                  sitk.GetArrayViewFromImage(reference).astype(np.float32))
