"""`stream-cnn bench`: stream-cnn against ONNX Runtime, OpenCV dnn and the NumPy reference, on the same weights.

Sections: ``latency`` (batch-1, engines interleaved in rounds, after an agreement check), ``startup`` (fresh
process, Numba cache warm and empty), ``pipeline`` (`stream-cnn video` fps against decode-only / encode-only loops
of the same clip) and ``alloc`` (bytes per forward pass). ``run_bench`` returns the whole result as a dict (what
``--json`` prints); ``report.format_report`` turns it into text.
"""
from stream_cnn.bench.runner import SECTIONS, BenchSettings, run_bench

__all__ = ["SECTIONS", "BenchSettings", "run_bench"]
