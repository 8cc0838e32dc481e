"""The analysis pipeline: CT volume -> StudyResult (+ body mask and straightened sagittal view).

analyze_volume is what the node's worker calls; analyze_path is the CLI's entry. Both return a
finished StudyResult: `reported`, or `not_assessable` with the reason. Internal errors propagate.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import SimpleITK as sitk

from screening_node.analysis import thresholds as T
from screening_node.analysis.body_centre import end_curves, offsets_through_bodies
from screening_node.analysis.centreline import resample_by_arclength
from screening_node.analysis.endplates import slice_blur
from screening_node.analysis.genant import (bulging_endplates, collapsed_failed_traces, crossed_endplates,
                                            failed_traces, genant)
from screening_node.analysis.implants import set_aside_treated, treated_note
from screening_node.analysis.labelling import Labelling
from screening_node.analysis.mirror import midlines
from screening_node.analysis.results import GRADED_LEVELS, KEYPOINT_NAMES, StudyResult, Vertebra, keypoint_heights
from screening_node.analysis.roll import turned_note
from screening_node.analysis.stages import Engine, get_engine
from screening_node.analysis.straighten import (Straightened, mark_slice_thickness, sample_planes,
                                               voxel_extent_along)
from screening_node.analysis.uncertainty import (collapse_spread, grade_range, height_sampling_sd, loss_range,
                                                 loss_spread)
from screening_node.analysis.vertebrae import BodyFinding, disc_rows, same_discs
from screening_node.analysis.vessels import blood_note
from screening_node.errors import NotAssessable
from screening_node.imaging.geometry import as_lps, slice_plane

if TYPE_CHECKING:
    from screening_node.imaging.volume import Volume

log = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
BODY_MASK_NAME = "body_mask.nii.gz"
SAGITTAL_NAME = "sagittal_view.npz"


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 4)


def load_for_analysis(source: Path | str | Sequence[Path | str]) -> Volume:
    """The CT volume as the analysis reads it (imaging.volume.load_volume, a fine matrix's pixels averaged up to
    ANALYSIS_PIXEL_MM): the analysis, the node's worker, and the report CLI, which must rebuild the body mask's
    grid, all read it so."""
    from screening_node.imaging.volume import load_volume
    return load_volume(source, coarsest_pixel_mm=T.ANALYSIS_PIXEL_MM)


def analyze_path(path: Path | str, out_dir: Path | None, engine: str = "analytic",
                 slice_thickness_mm: float | None = None) -> StudyResult:
    """Load a DICOM series folder or a volume file and analyse it (``slice_thickness_mm``: as analyze_volume's,
    for a file that carries none)."""
    try:
        volume = load_for_analysis(Path(path))
    except NotAssessable as exc:
        result = StudyResult(status="not_assessable", reason=exc.reason, engine=engine, vertebrae=(),
                             input={"path": str(path)})
        if out_dir is not None:
            result.write(Path(out_dir) / RESULTS_NAME)
        return result
    return analyze_volume(volume, out_dir, engine=engine, path=str(path), slice_thickness_mm=slice_thickness_mm)


def analyze_volume(volume_or_image: Any, out_dir: Path | None, engine: str = "analytic",
                   path: str | None = None, slice_thickness_mm: float | None = None,
                   suspect_min_grade: int = T.SUSPECT_MIN_GRADE) -> StudyResult:
    """Analyse a Volume (or a SimpleITK image in LPS, HU); write outputs to out_dir when given.

    ``slice_thickness_mm``: the slices' thickness where the input carries none (a volume file resampled from
    thick slices); it is used as a DICOM series' SliceThickness is, and the result's notes say it was given.
    ``suspect_min_grade``: the worst grade from which the study is "fracture suspected" (settings)."""
    eng = get_engine(engine)
    if isinstance(volume_or_image, sitk.Image):
        image, meta = volume_or_image, {}
    else:
        image, meta = volume_or_image.image, dict(getattr(volume_or_image, "meta", {}) or {})
    inp = {"study_uid": meta.get("study_uid"), "series_uid": meta.get("series_uid"),
           "path": path or meta.get("path")}
    timer = _Timer()
    out_dir = Path(out_dir) if out_dir is not None else None
    try:
        thickness = meta.get("slice_thickness") if slice_thickness_mm is None else slice_thickness_mm
        result = _run(eng, image, inp, timer, out_dir, thickness)
    except NotAssessable as exc:
        result = StudyResult(status="not_assessable", reason=exc.reason, engine=eng.name, vertebrae=(),
                             input=inp, timings_s=timer.timings)
    finally:
        mark_slice_thickness(image, None)  # the caller's image, where _run read it as it came
    result = dataclasses.replace(result, suspect_min_grade=suspect_min_grade)
    if slice_thickness_mm is not None:
        result = dataclasses.replace(result, notes=result.notes + (
            f"slices taken as {slice_thickness_mm:g} mm thick, as given (the file carries no thickness)",))
    if meta.get("in_plane_blocks"):
        (bx, by), (px, py) = meta["in_plane_blocks"], meta["stored_pixel_mm"]
        result = dataclasses.replace(result, notes=result.notes + (
            f"pixels of {px:g} x {py:g} mm averaged {bx} x {by} as the series was read: analysed at "
            f"{px * bx:.2g} x {py * by:.2g} mm",))
    if out_dir is not None:
        result.write(out_dir / RESULTS_NAME)
    return result


def straightened_spine(eng: Engine, image: sitk.Image, array: np.ndarray | None = None,
                       timer: _Timer | None = None) -> tuple[Straightened, list[BodyFinding]]:
    """The CT straightened along the vertebral bodies' centre line, at 1 mm (rows cranial -> caudal), and
    the bodies found on it.

    The coarse spine path runs through body, canal or arch; straightening once along it, then again
    along the bodies' centres, puts every body upright on the straightened axis. Where the body centre
    stage offers more than one centre line, the one along which more bodies are measured (both endplates
    confirmed) is kept, the first on a tie.
    """
    timer = timer or _Timer()
    array = sitk.GetArrayViewFromImage(image) if array is None else array
    with timer.stage("centreline"):
        line = eng.centreline(image)
    with timer.stage("straighten"):
        st0 = eng.straighten(image, line.points_lps, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM, array)
    with timer.stage("roll"):
        angles = eng.roll(st0)
    if angles is not None and np.degrees(np.abs(angles)).max() >= T.ROLL_MIN_DEG:
        # A rolled patient or a scoliotic column: the planes are turned to the vertebrae's own axis,
        # and every later straightening along this spine keeps them so (Straightened.guide).
        with timer.stage("straighten"):
            st0 = eng.straighten(image, line.points_lps, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM, array,
                                 guide=(st0.points, angles))
    with timer.stage("body_centre"):
        candidates = eng.body_centre(st0)
    best: tuple[Straightened, list[BodyFinding]] | None = None
    for ap_c, lat_c in candidates:
        pts = resample_by_arclength(st0.to_lps(np.arange(len(st0.points)), ap_c, lat_c), T.STRAIGHT_MM)
        with timer.stage("straighten"):
            st = eng.straighten(image, pts, T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM, array, guide=st0.guide())
        with timer.stage("vertebrae"):
            bodies, _ = eng.bodies(st)
        if best is None or _measured_count(bodies) > _measured_count(best[1]):
            best = (st, bodies)
    assert best is not None, "the body centre stage offers at least one centre line"
    return best


def _measured_count(bodies: list[BodyFinding]) -> int:
    return sum(b.keypoints is not None for b in bodies)


def measured_spine(eng: Engine, image: sitk.Image, array: np.ndarray | None = None,
                   timer: _Timer | None = None) -> tuple[Straightened, list[BodyFinding]]:
    """The straightened spine the bodies are measured on, and the bodies (cranial -> caudal); a body
    tilted against its planes is measured square to its own axis (eng.square)."""
    timer = timer or _Timer()
    array = sitk.GetArrayViewFromImage(image) if array is None else array
    st, bodies = straightened_spine(eng, image, array, timer)
    before = _measured_count(bodies)
    st, bodies = _recentred_on_bodies(eng, image, array, st, bodies, timer)
    for _ in range(T.RECENTRE_EXTRA_ROUNDS):
        # Again where a round measured many more bodies than the curve before it: those it added place the
        # next curve where the first track strayed (a 3 mm sagittal reformat's crushed T12, 10.7 mm tall
        # between neighbours of 22-25 mm: the first curve ran 25 mm in front of the bodies around it; the round
        # through the three measured bodies measured six, T12 still 30 degrees off its planes; a second round
        # through those six measured seven, T12 a grade 3 crush). Not after a small gain: tcia's first round
        # measured 13 bodies for 12, and a second one, measuring as many, read T6 a false grade 3 with 45 HU of
        # noise added (real_noise.py). A round that measures no more bodies is not kept.
        count = _measured_count(bodies)
        if count < T.RECENTRE_AGAIN_GAIN * before:
            break
        again, found = _recentred_on_bodies(eng, image, array, st, bodies, timer)
        if again is st or _measured_count(found) <= count:
            break
        before, st, bodies = count, again, found
    with timer.stage("vertebrae"):
        return st, eng.square(image, array, st, bodies)


def _recentred_on_bodies(eng: Engine, image: sitk.Image, array: np.ndarray, st: Straightened,
                         bodies: list[BodyFinding], timer: _Timer) -> tuple[Straightened, list[BodyFinding]]:
    """The spine straightened again through the measured bodies' centres where they lie off the curve,
    and its bodies found there, square to their own axis; or the first straightening where the discs
    found again are not the same discs.

    Off the curve in depth (the body's outline) or to the side: a body's mid-sagittal plane is its axis
    of mirror symmetry (mirror.midlines), and a reader measures its heights there. The first track's
    lateral offsets are smoothed over several bodies and lag where the column turns near the field's end:
    tcia's L5 and S1 were read 10 mm beside their mirror axis (on the re-centred planes: 2 mm), and on
    3 mm phantoms lumbar bodies are located 0.2 mm nearer their truth (fast seeds 4 and 5).

    At the field's ends the track follows the bodies' centres where the curve crosses the outermost measured
    body far off the chord to the next one (body_centre.end_curves).

    Only measured bodies place the new curve (their outline was confirmed by both endplates; an
    unmeasured "outline" can be the canal or an arch: tcia, 16-36 mm behind the curve). The second
    straightening must not re-decide what the first found: on 3 mm osteoporotic chests whose first curve
    ran in the canal, the core through the bodies' centres dips at a dark marrow centre, a body was split
    in two and every level above moved (three of 120 phantoms). So its discs are kept only when they pair
    one to one with the first ones (same_discs).
    """
    measured = [b for b in bodies if b.whole and b.keypoints is not None]
    rows = np.arange(len(st.points))
    mids = midlines(st, measured)
    ap_c = offsets_through_bodies(len(rows), [(b.centre_row, b.ap_centre) for b in measured])
    lat_c = offsets_through_bodies(len(rows), [(b.centre_row, m) for b, m in zip(measured, mids)])
    on_curve = np.zeros(len(rows))
    track = st.to_lps(rows, on_curve if ap_c is None else ap_c, on_curve if lat_c is None else lat_c)
    centres = st.to_lps(np.array([b.centre_row for b in measured]), np.array([b.ap_centre for b in measured]),
                        np.array(mids))
    track, turned = end_curves(st, measured, centres, track)
    if ap_c is None and lat_c is None and not turned:
        return st, bodies
    with timer.stage("straighten"):
        again = eng.straighten(image, resample_by_arclength(track, T.STRAIGHT_MM),
                               T.STRAIGHT_HALF_AP_MM, T.STRAIGHT_HALF_LAT_MM, array, guide=st.guide())
    with timer.stage("vertebrae"):
        found, _ = eng.bodies(again)
    # Each first disc, on the new rows: where the new curve crosses its row's plane (which holds the
    # new curve's point there), a few mm off where the disc is tilted against the first planes.
    arclength = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(track, axis=0), axis=1))])
    mapped = [float(np.interp(d, rows, arclength)) / T.STRAIGHT_MM for d in disc_rows(bodies)]
    if not same_discs(mapped, disc_rows(found)):
        return st, bodies
    return again, found


def _run(eng: Engine, image: sitk.Image, inp: dict, timer: _Timer, out_dir: Path | None,
         slice_thickness_mm: float | None = None) -> StudyResult:
    if image.GetDimension() != 3 or min(image.GetSize()) < 2:
        raise NotAssessable("the image is not a 3-D volume")
    # The spine search bins the CT's voxels in index order before resampling (centreline.cortical_fraction),
    # so a volume stored feet-first or sagittally was binned at another phase and read otherwise: the tcia
    # series stored RPI instead of LPS read T6's posterior height 13.5 mm instead of 19.4 (grade 1, not 0).
    # Every storage of a scan is read in LPS index order; the body mask is written on the input's own grid.
    source, received = image, as_lps(image)
    with timer.stage("blood"):
        image, blood = eng.blood(received)
    _carry_slice_thickness(image, source, slice_thickness_mm)
    array = sitk.GetArrayViewFromImage(image)
    st, bodies = measured_spine(eng, image, array, timer)
    pts = st.points
    if not bodies:
        raise NotAssessable("no vertebral body could be separated along the spine")
    # The slice thickness blurs along the axis the slices are stacked on: the stored image's third one, which
    # as_lps moves for a sagittal or coronal series (a sagittal reformat's thickness lies across the spine).
    too_coarse = _too_coarse_to_measure(source, st, slice_thickness_mm)
    if too_coarse is not None:  # localised and labelled, but no height is trusted
        bodies = [dataclasses.replace(b, keypoints=None, reason=b.reason if b.cut_by_fov else too_coarse)
                  for b in bodies]
    bodies, treated = set_aside_treated(st, bodies)  # after: a treated body's reason holds on any scan
    with timer.stage("labelling"):
        h = T.LABEL_STEP_MM  # ribs and pelvis are judged on a wider, coarser straightened volume
        wide = eng.straighten(image, pts, int(T.STRAIGHT_HALF_AP_MM / h), int(T.LABEL_HALF_LAT_MM / h), array, h,
                              guide=st.guide())
        lab = eng.label(wide, bodies)
    with timer.stage("grading"):
        vertebrae, graded_notes = _measure(st, bodies, lab, source, slice_thickness_mm)
    body_mask_path = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with timer.stage("mask"):
            pairs = [(v.mask_label, b) for v, b in zip(vertebrae, bodies) if v.mask_label is not None]
            mask = eng.mask(source, st, pairs)
            sitk.WriteImage(mask, str(out_dir / BODY_MASK_NAME), useCompression=True)
            del mask  # a byte per CT voxel (272 MB for 1037 slices of 512 x 512): not held to the end
            body_mask_path = BODY_MASK_NAME
        with timer.stage("sagittal_view"):
            write_sagittal_view(st, out_dir / SAGITTAL_NAME, received if blood else None)
    reported = [v for v in vertebrae if v.assessable]  # only T1-L5 (named or by their own evidence) are assessable
    status = "reported" if reported else "not_assessable"
    reason = None if reported else too_coarse or "no thoracic or lumbar vertebra could be measured"
    notes = list(lab.notes) + [treated_note(lab.labels[i], volume) for i, volume in treated.items()] + graded_notes
    if blood:
        notes.append(blood_note(blood))
    turned = turned_note(st, [int(round(b.centre_row)) for b in bodies])
    if turned is not None:
        notes.append(turned)
    sagittal = sagittal_note(source, slice_thickness_mm)
    if sagittal is not None:
        notes.append(sagittal)
    if any(v.assessable and v.label is None for v in vertebrae):
        notes.append("bodies bearing a rib, of lumbar size, or between two such are graded without a level")
    return StudyResult(status=status, reason=reason, engine=eng.name, vertebrae=tuple(vertebrae), input=inp,
                       timings_s=timer.timings, notes=tuple(notes), body_mask_path=body_mask_path)


def _carry_slice_thickness(image: sitk.Image, source: sitk.Image, slice_thickness_mm: float | None) -> None:
    """Mark ``image`` (the CT the spine is read on, in LPS) with its slices' thickness where they overlap (thicker
    than they are apart: 3 mm every 2 mm), so the endplate fits model the blur of the thickness rather than
    of the spacing (straighten.slice_thickness_of). Only where its slices are the stored ones (its third axis
    the source's: as_lps turns a sagittal series' slices to lie across the spine's rows). A mark on the image,
    not one more argument through every straightening: each reads the image it samples. It may be the
    caller's own image (already in LPS, no blood set aside); analyze_volume removes the mark again."""
    thicker = slice_thickness_mm is not None and slice_thickness_mm > image.GetSpacing()[2]
    stacked, third = (np.array(im.GetDirection()).reshape(3, 3)[:, 2] for im in (source, image))
    along_stored = abs(float(np.dot(stacked, third))) >= 0.99
    mark_slice_thickness(image, slice_thickness_mm if thicker and along_stored else None)


def sagittal_note(source: sitk.Image, slice_thickness_mm: float | None = None) -> str | None:
    """A note where the CT's slices are sagittal (a reformat, most often: routing screens one where no axial
    series is eligible), so the reader knows the heights were read across its rows, not across its slices."""
    if slice_plane(np.array(source.GetDirection()).reshape(3, 3)[:, 2]) != "sagittal":
        return None
    across = max(source.GetSpacing()[2], slice_thickness_mm or 0.0)
    along = float(voxel_extent_along(source, np.array([0.0, 0.0, 1.0]))[0])
    return (f"read on sagittal slices: {across:g} mm across the spine, {along:.2g} mm along it "
            "(heights are measured along the slices, at their pixels)")


def spacing_along_spine(image: sitk.Image, st: Straightened, slice_thickness_mm: float | None = None) -> float:
    """Resolution (mm) of the CT along the spine's mean direction: the slice spacing of an axial scan
    (or its slice thickness, when known and larger), the in-plane pixel of a sagittal one; between the
    axes the voxel's extent along it (straighten.voxel_extent_along: the sum of the projected sizes, used
    before, read a 3 mm isotropic lumbar crop tilted 30 degrees as 4 mm and measured nothing). ``image`` as
    stored: the thickness is the extent along its third axis, the one its slices are stacked on."""
    tangent = np.median(st.tangents, axis=0)
    tangent /= max(float(np.linalg.norm(tangent)), 1e-9)
    return float(voxel_extent_along(image, tangent, slice_thickness_mm)[0])


def _too_coarse_to_measure(image: sitk.Image, st: Straightened, slice_thickness_mm: float | None) -> str | None:
    """Why no height can be measured on this scan, or None: its slices are too far apart or too thick
    along the spine (MAX_MEASURE_SPACING_MM) to place an endplate within a millimetre or two."""
    resolution = spacing_along_spine(image, st, slice_thickness_mm)
    if resolution <= T.MAX_MEASURE_SPACING_MM:
        return None
    return (f"slices {resolution:.1f} mm apart or thick along the spine are too coarse to measure vertebral "
            f"heights (at most {T.MAX_MEASURE_SPACING_MM:g} mm)")


def _disc_min_gaps(st: Straightened, bodies: list[BodyFinding]) -> list[float]:
    """Per disc below each body but the last: how far apart its two endplates must be read to be two, the
    slices' blur there on thick slices (slice_blur), else 0 (only a crossing is impossible)."""
    gaps = []
    for upper, lower in zip(bodies, bodies[1:]):
        row = upper.bottom_disc if upper.bottom_disc is not None else 0.5 * (upper.centre_row + lower.centre_row)
        gaps.append(slice_blur(st, row) or 0.0)
    return gaps


def _measure(st: Straightened, bodies: list[BodyFinding], lab: Labelling, image: sitk.Image,
             slice_thickness_mm: float | None = None) -> tuple[list[Vertebra], list[str]]:
    """Keypoints to LPS, heights, Genant grades (crush against assessable neighbours), and the loss's range
    at the CT's sampling (``image``'s grid and slice thickness, ``image`` as stored: the thickness lies
    along its third axis; analysis/uncertainty.py).

    Grades are for T1-L5: a body labelled so, or, where no anchor names the levels, one whose evidence
    puts it there (lab.thoracolumbar: a rib, lumbar size beside no pelvis, or a place between two such
    bodies). A fracture in a thoracic crop without T1, T12 or the sacrum in view is then still graded,
    under no level.
    """
    labels, confidence = lab.labels, lab.confidence
    graded = [label in GRADED_LEVELS if label is not None else lab.thoracolumbar[i] for i, label in enumerate(labels)]
    kps_lps: list[dict[str, tuple[float, float, float]] | None] = []
    heights: list[dict[str, float] | None] = []
    rows: list[dict[str, float] | None] = []  # each keypoint's straightened row: crossed_endplates
    for b in bodies:
        if b.keypoints is None:
            kps_lps.append(None)
            heights.append(None)
            rows.append(None)
            continue
        rows.append({n: float(b.keypoints[n][0]) for n in KEYPOINT_NAMES})
        kp = {n: tuple(round(float(c), 2) for c in st.to_lps(*b.keypoints[n])) for n in KEYPOINT_NAMES}
        kps_lps.append(kp)  # type: ignore[arg-type]
        heights.append({h: round(x, 2) for h, x in keypoint_heights(kp).items()})
    # C7 is no graded level, but it is T1's neighbour above: heights grow down the spine, and against T2 and T3
    # alone a normal T1 reads 10-15 % short of its reference (a 3 mm phantom's T1 was graded a grade 2 crush).
    referable = [g or label == "C7" for g, label in zip(graded, labels)]
    misread = [crossed or bulging for crossed, bulging in zip(crossed_endplates(rows, _disc_min_gaps(st, bodies)),
                                                           bulging_endplates(kps_lps))]  # type: ignore[arg-type]
    failed, references = failed_traces(heights, referable, misread)
    collapses = collapsed_failed_traces(heights, referable, failed)
    out, notes = [], []
    next_mask = 1
    for i, b in enumerate(bodies):
        label = labels[i]
        centroid = tuple(round(float(c), 2) for c in st.to_lps(b.centre_row, b.ap_centre, 0.0))
        reason = b.reason
        hts = heights[i]
        assessable = hts is not None
        if assessable and label is not None and label not in GRADED_LEVELS:
            assessable, reason = False, f"{label} is localised only (grades are for T1-L5)"
        collapse = collapses[i] if assessable else None
        if assessable and failed[i] is not None and collapse is None:
            assessable, reason = False, failed[i]
        if assessable and label is None and not graded[i]:
            assessable, reason = False, "level could not be labelled"
        grade = loss = morph = loss_bounds = grades = None
        if assessable and hts is not None:
            g = genant(hts, references[i], label) if collapse is None else collapse
            grade, loss, morph = g.grade, g.height_loss, g.morphology
            sd = height_sampling_sd(image, kps_lps[i], slice_thickness_mm)  # type: ignore[arg-type]
            # the neighbours' posterior heights lie along nearly the same direction on the same grid
            if collapse is None:
                spread = loss_spread(hts, sd, references[i], sd["posterior"], label)
            else:
                tallest = max(hts, key=hts.__getitem__)
                spread = collapse_spread(hts[tallest], sd[tallest], references[i], sd["posterior"])
                notes.append(f"{label or 'an unlabelled body'}: {failed[i]}; even its tallest height lies "
                             f"{100 * loss:.0f} % below its neighbours' posterior heights, so it is graded a crush "
                             "from that height, the least it has lost (its keypoints are not all on its endplates)")
            loss_bounds = loss_range(loss, spread)
            grades = grade_range(*loss_bounds)
        mask_label = None
        if b.keypoints is not None:
            mask_label, next_mask = next_mask, next_mask + 1
        out.append(Vertebra(label=label, label_confidence=confidence if label else 0.0,
                            centroid_lps_mm=centroid, keypoints_lps_mm=kps_lps[i], heights_mm=hts,  # type: ignore[arg-type]
                            height_loss=loss, grade=grade, morphology=morph, assessable=assessable,
                            reason=None if assessable else reason, mask_label=mask_label,
                            height_loss_range=loss_bounds, grade_range=grades))
    return out, notes


def write_sagittal_view(st: Straightened, path: Path, received: sitk.Image | None = None) -> None:
    """The straightened mid-sagittal view (contract in the issue: 1 mm, row 0 cranial, cols A->P).

    ``received``: the CT as it came (in LPS) where the analysis read another image (contrast-filled blood
    set aside as unenhanced): the view is sampled from it on the same planes, so the summary image shows
    the scan the radiologist knows, its aorta and heart as bright as they were, under the keypoints.
    """
    if received is None:
        plane = st.volume[:, :, st.half_lat]
    else:
        plane = sample_planes(received, st.points, st.tangents, st.col_dirs, st.lat_dirs, st.half_ap, 0,
                              step_mm=st.step_mm).volume[:, :, 0]
    np.savez_compressed(
        path,
        image=plane.astype(np.float32),
        centre_lps=st.points.astype(np.float32),
        col_dir_lps=st.col_dirs.astype(np.float32),
        row_dir_lps=st.tangents.astype(np.float32),
        centre_col=np.int64(st.half_ap),
    )
