"""Trabecular texture of the vertebral bodies' marrow: a smooth random field, the same wherever it is sampled.

On a real CT of about 1 mm the marrow of a vertebral body is no flat grey: its trabeculae, too fine to
resolve one by one, show as a mottle a few millimetres across, with darker fatty spots where bone is
lost. Every endplate and wall is read against that mottle, so a phantom with flat marrow flatters the
edge finders. The field is a sum of plane waves with random directions, wavelengths and phases in the
vertebra's own frame: drawn once per vertebra from its own seeded stream, it does not depend on the
slabs, sub-slices or threads that render it, and it moves with the body (a fracture reshapes the body
around it; a rolled patient turns it with the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WAVES = 32  # enough plane waves for a field that looks Gaussian, few enough to stay cheap
WAVELENGTH_MM = (2.0, 6.0)  # the mottle of trabecular bone on a 1 mm CT: a few mm, no finer than the voxels
ALONG_COLUMN = 0.5  # trabeculae run mostly along the column: the field varies half as fast along it


@dataclass(frozen=True)
class Texture:
    """A zero-mean field of standard deviation ``sd_hu`` in a vertebra's local frame (mm)."""

    wave_vectors: np.ndarray  # (WAVES, 3) radians per mm along local x, y, z
    phases: np.ndarray  # (WAVES,) radians
    sd_hu: float

    @classmethod
    def draw(cls, rng: np.random.Generator, sd_hu: float) -> "Texture":
        directions = rng.standard_normal((WAVES, 3))
        directions[:, 2] *= ALONG_COLUMN
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavelengths = rng.uniform(*WAVELENGTH_MM, WAVES)
        vectors = directions * (2 * np.pi / wavelengths)[:, None]
        return cls(vectors.astype(np.float32), rng.uniform(0, 2 * np.pi, WAVES).astype(np.float32), float(sd_hu))

    def at(self, lx: np.ndarray, ly: np.ndarray, lz: np.ndarray) -> np.ndarray:
        """The field (HU) at local points; the arguments broadcast together and so does the result."""
        shape = np.broadcast_shapes(np.shape(lx), np.shape(ly), np.shape(lz))
        total = np.zeros(shape, np.float32)
        for (kx, ky, kz), phase in zip(self.wave_vectors, self.phases):
            total += np.cos(kx * lx + ky * ly + kz * lz + phase)
        total *= np.float32(self.sd_hu * np.sqrt(2.0 / WAVES))  # each cosine has variance 1/2
        return total
