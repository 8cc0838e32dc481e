"""Synthetic CT spines with exact ground truth (issue 3).

``generate_phantom(PhantomOptions(...), out_dir)`` writes dicom/, ct.nii.gz,
labels.nii.gz, truth.json (and preview.png); ``render_phantom(options)``
returns the volume in memory. Positions are patient LPS mm throughout.
"""

from screening_node.phantom.generate import PhantomResult, generate_phantom, render_phantom
from screening_node.phantom.options import FractureSpec, PhantomOptions, fast_options

__all__ = ["PhantomOptions", "FractureSpec", "PhantomResult", "generate_phantom", "render_phantom", "fast_options"]
