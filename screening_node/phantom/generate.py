"""One call from options to a folder: dicom/, ct.nii.gz, labels.nii.gz, truth.json, preview.png."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from screening_node.phantom.dicom_writer import SeriesUIDs, acquisition, write_series
from screening_node.phantom.options import PhantomOptions
from screening_node.phantom.preview import write_preview
from screening_node.phantom.render import BODY_PART_DICOM, PhantomVolume, render_volume
from screening_node.phantom.truth import build_truth, write_truth


@dataclass(frozen=True)
class PhantomResult:
    """What generate_phantom wrote (paths absent when that format was not asked for)."""

    out_dir: Path
    truth_path: Path
    truth: dict[str, Any]
    dicom_files: tuple[Path, ...] = ()
    ct_nifti: Path | None = None
    labels_nifti: Path | None = None
    preview: Path | None = None
    study_uid: str = ""
    series_uid: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)


def render_phantom(options: PhantomOptions) -> PhantomVolume:
    """The phantom in memory, nothing written (fast tests and benchmarks). Arrays are numpy (z, y, x)."""
    return render_volume(options)


ADDED_OPTIONS = ("degeneration", "roll", "texture", "schmorl_nodes", "contrast_phase", "plane")  # options that came after the first phantoms were made
# Raised whenever the same options render other pixels, so that other images never carry the same UIDs
# (DICOM: a changed image is a new instance). 2: the heads of ribs 2-9 sit across the disc above.
# 3: no arch bone in front of the canal: the body's back wall faces the canal on the midline.
# 4: the transverse processes leave the arch at the junction of pedicle and lamina, beside the canal's back
# half (3 put them beside its middle, 3-4 mm further forward than 2 did).
RENDERING_REVISION = 4


def uid_key(options: PhantomOptions) -> str:
    """Entropy for the UIDs: the seed, every option that changes the images, and the rendering revision."""
    data: dict[str, Any] = {k: v for k, v in options.to_dict().items() if k not in ("format", "preview")}
    defaults = PhantomOptions().to_dict()
    for key in ADDED_OPTIONS:  # an option added later counts only when set, as if it had always been there
        if data[key] == defaults[key]:
            del data[key]
    if RENDERING_REVISION > 1:  # the first rendering's phantoms keep the UIDs they had
        data["rendering_revision"] = RENDERING_REVISION
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def phantom_uids(options: PhantomOptions) -> SeriesUIDs:
    """The study, series and frame of reference UIDs a phantom of these options gets (uid_key)."""
    return SeriesUIDs.derive(uid_key(options))


def sitk_image(array_zyx: np.ndarray, acq_origin, acq_spacing, acq_direction) -> sitk.Image:  # type: ignore[no-untyped-def]
    image = sitk.GetImageFromArray(array_zyx)  # numpy (z, y, x) -> SimpleITK (x, y, z)
    image.SetOrigin(tuple(float(v) for v in acq_origin))
    image.SetSpacing(tuple(float(v) for v in acq_spacing))
    image.SetDirection(tuple(float(v) for v in acq_direction))
    return image


def generate_phantom(options: PhantomOptions, out_dir: Path) -> PhantomResult:
    """Render and write the phantom into ``out_dir`` (created); same options, same bytes."""
    import time

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    volume = render_volume(options)
    timings["render"] = time.perf_counter() - t0
    uids = phantom_uids(options)
    acq = acquisition(volume.hu, volume.grid, options.feet_first, options.plane)
    geometry = {"size_xyz": [int(n) for n in acq.pixels.shape[::-1]], "origin_lps_mm": list(acq.origin),
                "spacing_mm": list(acq.spacing), "direction": list(acq.direction),
                "slice_thickness_mm": acq.spacing[2] if options.plane == "sagittal" else options.slice_thickness,
                "patient_position": "FFS" if options.feet_first
                else "HFS", "array_order_note": "SimpleITK (x, y, z) of the stored DICOM / NIfTI order"}
    if options.plane != "axial":  # named only where set, so that axial phantoms keep their truth bytes
        geometry["plane"] = options.plane
    summary = {**options.to_dict(), "body_part": BODY_PART_DICOM[options.fov]}
    dicom_files: list[Path] = []
    ct_path = labels_path = None
    nifti_jobs = []
    # gzip inside SimpleITK releases the GIL: the two NIfTI files are written while pydicom writes the series
    with ThreadPoolExecutor(max_workers=2) as pool:
        t = time.perf_counter()
        if options.format in ("nifti", "both"):
            ct_path, labels_path = out_dir / "ct.nii.gz", out_dir / "labels.nii.gz"
            labels = acquisition(volume.labels, volume.grid, options.feet_first, options.plane).pixels
            nifti_jobs = [pool.submit(sitk.WriteImage, sitk_image(array, acq.origin, acq.spacing, acq.direction),
                                      str(path), True)
                          for array, path in ((acq.pixels, ct_path), (labels, labels_path))]
        if options.format in ("dicom", "both"):
            dicom_files = write_series(out_dir / "dicom", volume.hu, volume.grid, feet_first=options.feet_first,
                                       transfer_syntax=options.transfer_syntax, uids=uids, patient=volume.patient,
                                       options_summary=summary)
        timings["dicom"] = time.perf_counter() - t
        for job in nifti_jobs:
            job.result()
        timings["dicom_and_nifti"] = time.perf_counter() - t
    truth = build_truth(volume, study_uid=uids.study, series_uid=uids.series, geometry=geometry,
                        options_dict=options.to_dict())
    truth_path = write_truth(out_dir / "truth.json", truth)
    preview = None
    if options.preview:
        centre = np.array(volume.plan.by_label("L1").centre)
        if volume.roll is not None:
            centre = volume.roll.point(centre)
        preview = write_preview(out_dir / "preview.png", volume.hu, volume.grid, centre)
    return PhantomResult(out_dir, truth_path, truth, tuple(dicom_files), ct_path, labels_path, preview,
                         uids.study, uids.series, timings)
