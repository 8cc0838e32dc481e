"""Read the files of one series: the header of each file first, its decoded pixels when they are needed.

Each file is parsed (pydicom) without reading its pixel data; the header that is
kept has no pixel data, like ``dcmread(stop_before_pixels=True)`` would give, so
the datasets handed to reporting stay small. ``decode_pixels`` decodes a file
when the volume is filled (compressed transfer syntaxes through the installed
pylibjpeg plugins: JPEG 2000, JPEG / JPEG-LS via libjpeg, RLE), so a long
series' decoded slices are never all held at once beside the volume (1037
slices of 512 x 512: 0.54 GB, which freed slice by slice stayed in the
process' heap when every file was decoded as it was read). A file whose pixels
cannot be decoded keeps its header and the reason: the caller decides whether
that file matters (a broken file of another modality is reported as such first).

Decoding runs in two threads: the codecs and numpy release the GIL for part
of the work, and the node shares its machine with intake.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

log = logging.getLogger(__name__)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
PIXEL_TAGS_FROM = 0x7FE00008  # Float / Double Float / Pixel Data and everything after them
DECODE_THREADS = 2
DEFERRED_BYTES = 4096  # values this large (the pixel data) are skipped when a header is read, not loaded


@dataclass
class SeriesFile:
    """One DICOM file: its header (no pixel data) and, once decoded (decode_pixels), its stored pixel values,
    or why they are missing.

    ``pixels`` axis order: (rows, columns) for a single frame, (frames, rows, columns) for multi-frame;
    stored values, before rescale slope / intercept. None until decoded, and again once the volume no
    longer needs them.
    """

    path: Path
    header: Dataset
    pixels: np.ndarray | None
    error: str | None


def _parse(path: Path, defer_size: int | None = None) -> Dataset | None:
    """The full data set, or None when the file is not DICOM (a README, a licence, a DICOMDIR).

    ``defer_size``: values this large or larger are not read (pydicom reads them on access)."""
    try:
        ds = pydicom.dcmread(path, defer_size=defer_size)
    except InvalidDicomError:
        try:  # old files without the 128-byte preamble: accepted only if they look like an image
            ds = pydicom.dcmread(path, force=True, defer_size=defer_size)
            if "SOPInstanceUID" not in ds or "Modality" not in ds:
                return None
        except Exception:  # noqa: BLE001 - arbitrary bytes parsed as DICOM can fail anywhere
            return None
    except Exception:  # noqa: BLE001 - truncated or unreadable files are not part of the series
        return None
    if str(ds.get("SOPClassUID", "")) == DICOMDIR_SOP_CLASS:
        return None
    return ds


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else "no detail"
    return f"{type(exc).__name__}: {text}"


def read_file(path: Path) -> SeriesFile | None:
    """Parse one file's header (its pixels are left for decode_pixels); None when it is not DICOM."""
    ds = _parse(path, DEFERRED_BYTES)
    if ds is None:
        return None
    error = None if "PixelData" in ds else "no pixel data"
    for tag in [t for t in ds.keys() if t >= PIXEL_TAGS_FROM]:
        del ds[tag]
    return SeriesFile(path, ds, None, error)


def decode_pixels(path: Path) -> tuple[np.ndarray | None, str | None]:
    """The stored pixel values of a file (SeriesFile.pixels' form), or None and why they could not be
    decoded."""
    ds = _parse(path)
    if ds is None:
        return None, "the file could no longer be read as DICOM"
    try:
        return ds.pixel_array, None
    except Exception as exc:  # noqa: BLE001 - unsupported compression, truncated data, bad header
        return None, _reason(exc)


def read_files(paths: Sequence[Path]) -> tuple[list[SeriesFile], list[Path]]:
    """All DICOM files among ``paths`` (in the given order; pixels not yet decoded) and the paths that
    were not DICOM."""
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        results = list(pool.map(read_file, paths))
    files = [f for f in results if f is not None]
    skipped = [p for p, f in zip(paths, results) if f is None]
    if skipped:
        log.debug("%d file(s) are not DICOM images and were ignored", len(skipped))
    return files, skipped
