"""screening-node: screen CT series for vertebral compression fractures."""

__version__ = "0.1.0"
