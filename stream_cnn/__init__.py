"""stream-cnn: a CNN built from Numba kernels, run on live camera and video frames.

Data flows one way through the sub-packages:
sources -> preprocess -> model (kernels) -> overlay -> sinks; ``cli`` is a thin shell over them.
"""
import os

from stream_cnn._numba_blas import keep_numba_off_scipy_blas
from stream_cnn._numba_cache import configure_numba_cache
from stream_cnn._numba_cpu import prefer_full_width_vectors

# All three must run before numba loads: numba reads NUMBA_CACHE_DIR and NUMBA_CPU_FEATURES once, at import
# time, and probes SciPy's BLAS when its array maths first loads.
configure_numba_cache()
keep_numba_off_scipy_blas()
prefer_full_width_vectors()

# FFmpeg prints its own error lines (e.g. "moov atom not found") straight to stderr ahead of our one-line message,
# which already says what went wrong and where. Only fatal ones stay; set OPENCV_FFMPEG_LOGLEVEL to see more.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL

__version__ = "0.1.0"
