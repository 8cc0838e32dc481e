"""DICOM Segmentation of the vertebral bodies, one segment per body, on the CT's own slices.

The body mask arrives as a SimpleITK label volume in the CT volume's geometry (LPS). It is
resampled (nearest neighbour) onto the plane of each source slice, so the SEG frames line up
with the CT instances whatever order or orientation the volume was built in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import highdicom as hd
import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from screening_node.analysis.results import StudyResult, Vertebra
from screening_node.imaging.volume import first_block_centre
from screening_node.reporting import codes as sn_codes
from screening_node.reporting.common import (
    ALGORITHM_NAME, DEVICE_SERIAL, MANUFACTURER, MODEL_NAME, SEG_SERIES, SOFTWARE_VERSION,
    copy_patient_study, reference_dataset,
)


@dataclass(frozen=True)
class SegResult:
    dataset: hd.seg.Segmentation
    segment_numbers: dict[int, int]  # index of the vertebra in result.vertebrae -> segment number


@dataclass(frozen=True)
class Plane:
    """Geometry of one source frame: LPS of pixel (0, 0), direction cosines, spacing, size."""

    position: tuple[float, float, float]
    orientation: tuple[float, ...]  # ImageOrientationPatient: row direction then column direction
    pixel_spacing: tuple[float, float]  # (between rows, between columns) as in DICOM
    rows: int
    columns: int


def _item(group: Dataset | None, sequence: str) -> Dataset | None:
    if group is None or sequence not in group or not group[sequence].value:
        return None
    return group[sequence].value[0]


def source_planes(source_datasets: Sequence[Dataset]) -> list[Plane]:
    """Frame geometry in source order: one per single-frame instance, or per frame of a multi-frame one."""
    planes = []
    for ds in source_datasets:
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
            for frame in ds.PerFrameFunctionalGroupsSequence:
                def pick(sequence: str, keyword: str) -> object:
                    for group in (frame, shared):
                        item = _item(group, sequence)
                        if item is not None and keyword in item:
                            return item.data_element(keyword).value
                    raise ValueError(f"multi-frame source lacks {keyword} for a frame")
                planes.append(Plane(
                    tuple(float(v) for v in pick("PlanePositionSequence", "ImagePositionPatient")),
                    tuple(float(v) for v in pick("PlaneOrientationSequence", "ImageOrientationPatient")),
                    tuple(float(v) for v in pick("PixelMeasuresSequence", "PixelSpacing")),
                    int(ds.Rows), int(ds.Columns)))
        else:
            planes.append(Plane(tuple(float(v) for v in ds.ImagePositionPatient),
                                tuple(float(v) for v in ds.ImageOrientationPatient),
                                tuple(float(v) for v in ds.PixelSpacing), int(ds.Rows), int(ds.Columns)))
    return planes


def plane_grid(plane: Plane) -> sitk.Image:
    """A one-slice 3D SimpleITK image (x = column, y = row) with the geometry of a source frame."""
    row_dir = np.asarray(plane.orientation[:3], dtype=float)  # direction of increasing column
    col_dir = np.asarray(plane.orientation[3:], dtype=float)  # direction of increasing row
    normal = np.cross(row_dir, col_dir)
    grid = sitk.Image(plane.columns, plane.rows, 1, sitk.sitkUInt16)
    grid.SetOrigin(plane.position)
    # PixelSpacing is (spacing between rows, spacing between columns) = (y, x).
    grid.SetSpacing((plane.pixel_spacing[1], plane.pixel_spacing[0], 1.0))
    grid.SetDirection(tuple(np.column_stack([row_dir, col_dir, normal]).ravel()))
    return grid


def _slice_index_on_grid(mask: sitk.Image, plane: Plane) -> tuple[int, int, int] | None:
    """The mask's z index whose slice is this source frame, and the frame's pixels per mask pixel along x
    and y (1 and 1, or the blocks its pixels were averaged in as the series was read: imaging.volume
    in_plane_blocks); None where the frame is no such slice (then it is resampled)."""
    direction = np.asarray(mask.GetDirection()).reshape(3, 3)
    if not (np.allclose(direction[:, 0], plane.orientation[:3], atol=1e-4)
            and np.allclose(direction[:, 1], plane.orientation[3:], atol=1e-4)):
        return None
    frame_pixel = np.array([plane.pixel_spacing[1], plane.pixel_spacing[0]])  # x (columns), y (rows)
    ratio = np.asarray(mask.GetSpacing()[:2]) / frame_pixel
    blocks = np.round(ratio).astype(int)
    if np.any(blocks < 1) or not np.allclose(ratio, blocks, atol=1e-4) \
            or tuple(int(n) for n in np.array([plane.columns, plane.rows]) // blocks) != mask.GetSize()[:2]:
        return None
    centre = first_block_centre(plane.position, mask.GetDirection(), frame_pixel, blocks)
    index = mask.TransformPhysicalPointToContinuousIndex(tuple(float(v) for v in centre))
    z = int(round(index[2]))
    if abs(index[0]) > 1e-3 or abs(index[1]) > 1e-3 or abs(index[2] - z) > 1e-3 or not 0 <= z < mask.GetSize()[2]:
        return None
    return z, int(blocks[0]), int(blocks[1])


def source_frame_labels(mask: sitk.Image, source_datasets: Sequence[Dataset]) -> list[Callable[[], np.ndarray]]:
    """Per source frame, in source order, a function giving its label values (rows, columns).

    A frame that is a slice of the mask's own grid (the usual case: the mask was made on the volume built
    from these slices) is a view of that slice, or of it with each pixel repeated over the block of frame
    pixels it was averaged from (a fine matrix read at a coarser pixel); any other frame is resampled
    (nearest neighbour) when asked for. Functions, not a stack of every frame: the stack was a copy as
    large as the mask (272 MB for 1037 slices of 512 x 512) beside the mask and the SEG's own frames.
    """
    array = sitk.GetArrayViewFromImage(mask)  # (z, y, x)

    def on_grid(z: int) -> Callable[[], np.ndarray]:
        return lambda: array[z]

    def on_blocks(z: int, bx: int, by: int, rows: int, columns: int) -> Callable[[], np.ndarray]:
        def labels() -> np.ndarray:
            out = np.zeros((rows, columns), dtype=array.dtype)  # a last partial block lies outside the mask
            block = np.repeat(np.repeat(array[z], by, axis=0), bx, axis=1)
            out[:block.shape[0], :block.shape[1]] = block
            return out
        return labels

    def resampled(plane: Plane) -> Callable[[], np.ndarray]:
        # a copy, not a view: a view of the resampled image outlives nothing, and read freed memory (no body
        # was found on a 1024 x 1024 series analysed at 0.8 mm)
        return lambda: sitk.GetArrayFromImage(sitk.Resample(
            mask, plane_grid(plane), sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID()))[0]

    out = []
    for plane in source_planes(source_datasets):
        found = _slice_index_on_grid(mask, plane)
        if found is None:
            out.append(resampled(plane))
        elif found[1:] == (1, 1):
            out.append(on_grid(found[0]))
        else:
            out.append(on_blocks(*found, plane.rows, plane.columns))
    return out


def _label_counts(frames: Sequence[Callable[[], np.ndarray]], size: int) -> np.ndarray:
    """Voxels of each label value below ``size`` per frame, (frame, value). Counted a frame at a time:
    np.bincount casts its input to int64, and on the whole label stack of 1037 frames of 512 x 512 that
    copy took 2.2 GB, more than the CT volume itself."""
    return np.stack([np.bincount(frame().ravel(), minlength=size)[:size] for frame in frames]) if frames else \
        np.zeros((0, size), dtype=np.int64)


def segment_label(vertebra: Vertebra) -> str:
    return f"{vertebra.label or 'Unlabelled'} vertebral body"


def algorithm_family(engine: str):
    """DICOM CID 7162 family: networks are AI; the analytic engine is classical image analysis."""
    return codes.cid7162.ArtificialIntelligence if engine == "neural" else codes.cid7162.MorphologicalOperations


def tracking_uids(result: StudyResult) -> dict[int, str]:
    """One Tracking UID per vertebra, shared by its SEG segment and its SR measurement groups."""
    return {i: hd.UID() for i in range(len(result.vertebrae))}


def _description(number: int, vertebra: Vertebra, engine: str, tracking_uid: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment_label(vertebra),
        segmented_property_category=sn_codes.ANATOMICAL_STRUCTURE,
        segmented_property_type=sn_codes.vertebra_code(vertebra.label),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=f"{ALGORITHM_NAME} ({engine} engine)", version=SOFTWARE_VERSION, family=algorithm_family(engine),
        ),
        tracking_uid=tracking_uid,
        tracking_id=segment_label(vertebra),
    )


def build_seg(result: StudyResult, mask: sitk.Image, source_datasets: Sequence[Dataset],
              series_uid: str | None = None, tracking: dict[int, str] | None = None) -> SegResult:
    """One binary segment per vertebral body that has voxels in ``mask``.

    Raises ValueError when no vertebra has a body in the mask (there is nothing to segment).
    """
    frames = source_frame_labels(mask, source_datasets)
    size = int(sitk.GetArrayViewFromImage(mask).max()) + 1  # label values, 0 (background) included
    counts = _label_counts(frames, size)
    present = set(np.flatnonzero(counts.sum(axis=0)).tolist()) - {0}
    chosen = [(i, v) for i, v in enumerate(result.vertebrae) if v.mask_label is not None and v.mask_label in present]
    if not chosen:
        raise ValueError("no vertebral body of the result lies in the body mask on the CT slices")
    # A label map (frame, row, col) of segment numbers: highdicom splits it into binary segments
    # itself, without a (frame, row, col, segment) boolean array that would take gigabytes.
    lookup = np.zeros(size, dtype=np.uint8 if len(chosen) <= np.iinfo(np.uint8).max else np.uint16)
    for number, (_, vertebra) in enumerate(chosen, start=1):
        lookup[int(vertebra.mask_label)] = number
    sources = list(source_datasets)
    kept = range(len(frames))
    if len(sources) == len(frames):  # single-frame sources: reference only the slices a body touches
        chosen_labels = [int(v.mask_label) for _, v in chosen]  # type: ignore[arg-type]
        kept = np.flatnonzero(counts[:, chosen_labels].any(axis=1))
        sources = [sources[i] for i in kept]
    first = frames[0]()
    pixel_array = np.empty((len(kept), *first.shape), dtype=lookup.dtype)
    for n, k in enumerate(kept):
        pixel_array[n] = lookup[frames[k]()]
    tracking = tracking or tracking_uids(result)
    descriptions = [_description(n, v, result.engine, tracking[i]) for n, (i, v) in enumerate(chosen, start=1)]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid or hd.UID(),
        series_number=SEG_SERIES.number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL_NAME,
        software_versions=SOFTWARE_VERSION,
        device_serial_number=DEVICE_SERIAL,
        content_label="VERTEBRAE",
        content_description="Vertebral bodies",
        series_description=SEG_SERIES.description,
        omit_empty_frames=True,
    )
    if any(d.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == sn_codes.PRIVATE_SCHEME
           for d in descriptions):  # T13 / L6 / S1 segments: declare our private scheme
        seg.CodingSchemeIdentificationSequence = [sn_codes.coding_scheme_identification()]
    copy_patient_study(seg, reference_dataset(source_datasets))
    return SegResult(seg, {i: n for n, (i, _) in enumerate(chosen, start=1)})
