"""preview.png: a mid-sagittal and a coronal view of a phantom, so a person can look at it.

Left: sagittal through the spine (bone window), middle: the same in a soft-tissue
window, right: coronal through the vertebral bodies (bone window). Pixels are
resampled to square millimetres; head at the top, anterior at the left of the
sagittal views, patient right at the left of the coronal view (radiological).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from screening_node.phantom.grid import Grid

WINDOWS = {"bone": (400.0, 1800.0), "soft": (40.0, 400.0)}


def _window(image: np.ndarray, name: str) -> np.ndarray:
    level, width = WINDOWS[name]
    lo = level - width / 2
    return (np.clip((image - lo) / width, 0, 1) * 255).astype(np.uint8)


def _to_image(plane: np.ndarray, mm_per_row: float, mm_per_col: float, scale: float) -> Image.Image:
    """plane rows = z (increasing), columns = in-plane axis; flips so the head is at the top."""
    rows, cols = plane.shape
    image = Image.fromarray(plane[::-1])
    return image.resize((max(1, round(cols * mm_per_col * scale)), max(1, round(rows * mm_per_row * scale))),
                        Image.Resampling.BILINEAR)


def preview_image(hu: np.ndarray, grid: Grid, centre_lps: np.ndarray, height_px: int = 700) -> Image.Image:
    """The three views of ``hu`` (numpy z, y, x on the canonical ``grid``) through ``centre_lps``."""
    i = int(np.clip(round((centre_lps[0] - grid.origin[0]) / grid.spacing[0]), 0, grid.shape[2] - 1))
    j = int(np.clip(round((centre_lps[1] - grid.origin[1]) / grid.spacing[1]), 0, grid.shape[1] - 1))
    sagittal = hu[:, :, i].astype(np.float32)  # rows z, columns y (anterior first)
    coronal = hu[:, j, :].astype(np.float32)[:, ::-1]  # rows z, columns x reversed: patient right on the left
    extent_z = grid.shape[0] * grid.spacing[2]
    scale = height_px / max(extent_z, 1.0)
    views = [_to_image(_window(sagittal, "bone"), grid.spacing[2], grid.spacing[1], scale),
             _to_image(_window(sagittal, "soft"), grid.spacing[2], grid.spacing[1], scale),
             _to_image(_window(coronal, "bone"), grid.spacing[2], grid.spacing[0], scale)]
    gap = 6
    canvas = Image.new("L", (sum(v.width for v in views) + gap * (len(views) - 1), max(v.height for v in views)))
    x = 0
    for view in views:
        canvas.paste(view, (x, 0))
        x += view.width + gap
    return canvas


def write_preview(path: Path, hu: np.ndarray, grid: Grid, centre_lps: np.ndarray) -> Path:
    preview_image(hu, grid, centre_lps).save(path, format="PNG", optimize=False)
    return path
