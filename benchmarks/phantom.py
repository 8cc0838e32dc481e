"""Phantom rendering speed against a trivial peer on the same machine, same run.

    .venv/bin/python benchmarks/phantom.py [--repeats 3] [--preset fast|trunk]

The peer is the cheapest possible "volume": numpy drawing one float32 Gaussian
number per voxel of the same grid. Prints medians of the repeats (seconds,
voxels per second) and the ratio phantom / peer, so the figure is comparable
between machines and loads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from screening_node.phantom import PhantomOptions, render_phantom

PRESETS = {
    "fast": dict(matrix=256, pixel_spacing=1.5, slice_thickness=3.0),
    "trunk": dict(matrix=512, slice_thickness=2.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    args = parser.parse_args()
    options = PhantomOptions(seed=1, fractures=(), **PRESETS[args.preset])
    phantom_s, peer_s, shape = [], [], None
    for repeat in range(args.repeats):
        t = time.perf_counter()
        volume = render_phantom(options.with_(seed=repeat))
        phantom_s.append(time.perf_counter() - t)
        shape = volume.hu.shape
        del volume
        t = time.perf_counter()
        noise = np.random.default_rng(repeat).standard_normal(shape, dtype=np.float32)
        peer_s.append(time.perf_counter() - t)
        del noise
    voxels = float(np.prod(shape))
    p, q = statistics.median(phantom_s), statistics.median(peer_s)
    print(f"preset {args.preset}: grid (z, y, x) {shape}, {voxels / 1e6:.1f} M voxels, {args.repeats} repeats")
    print(f"phantom render : {p:7.2f} s  ({voxels / p / 1e6:6.1f} M voxels/s)")
    print(f"numpy gaussian : {q:7.2f} s  ({voxels / q / 1e6:6.1f} M voxels/s)")
    print(f"ratio phantom / one gaussian draw per voxel: {p / q:.1f}")


if __name__ == "__main__":
    main()
