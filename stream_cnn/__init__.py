"""stream-cnn: a CNN built from Numba kernels, run on live camera and video frames.

Data flows one way through the sub-packages:
sources -> preprocess -> model (kernels) -> overlay -> sinks; ``cli`` is a thin shell over them.
"""
from stream_cnn._numba_blas import keep_numba_off_scipy_blas
from stream_cnn._numba_cache import configure_numba_cache

# Both must run before numba loads: numba reads NUMBA_CACHE_DIR once, at import time, and probes SciPy's BLAS
# when its array maths first loads.
configure_numba_cache()
keep_numba_off_scipy_blas()

__version__ = "0.1.0"
