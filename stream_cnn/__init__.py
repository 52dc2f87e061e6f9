"""stream-cnn: a CNN built from Numba kernels, run on live camera and video frames.

Data flows one way through the sub-packages:
sources -> preprocess -> model (kernels) -> overlay -> sinks; ``cli`` is a thin shell over them.
"""
from stream_cnn._numba_cache import configure_numba_cache

# Must run before anything imports numba: numba reads NUMBA_CACHE_DIR once, at import time.
configure_numba_cache()

__version__ = "0.1.0"
