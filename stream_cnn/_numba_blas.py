"""Keep Numba from loading SciPy's BLAS, which stream-cnn never uses.

When SciPy is installed, Numba imports `scipy.linalg.cython_blas` the first time a compiled kernel loads (to
decide whether `np.dot` may be used inside @njit code). That import costs 0.07-0.4 s of start-up (it drags in
`scipy.linalg` and `numpy.f2py`) and is half of our warm-start budget. Our kernels never call BLAS: `np.dot`
inside @njit is banned here on purpose (SciPy's BLAS threads fight Numba's and the video decoder for the two
cores). So while Numba's `numba.np.arraymath` initialises we answer its BLAS probe with ImportError; Numba then
records "no BLAS", exactly as on a machine without SciPy (a fresh install of stream-cnn has none). Any later
`np.dot` in a kernel then fails to compile instead of silently pulling BLAS in.

Set STREAM_CNN_NUMBA_BLAS=1 to leave Numba alone (e.g. when embedding stream-cnn next to other Numba code that
needs `np.dot`).
"""
import importlib.abc
import os
import sys

# `import scipy.linalg.cython_blas` loads the expensive parent package first, so refuse both names.
_PROBED = ("scipy.linalg", "scipy.linalg.cython_blas")
_PROBER = "numba.np.arraymath"


class _RefuseBlasProbe(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _PROBED:
            return None
        prober = sys.modules.get(_PROBER)
        if prober is not None and getattr(prober.__spec__, "_initializing", False):
            raise ImportError("stream-cnn keeps Numba off SciPy's BLAS (set STREAM_CNN_NUMBA_BLAS=1 to allow it)")
        return None


def keep_numba_off_scipy_blas() -> bool:
    """Install the probe refusal once; return True if it is (or already was) in place."""
    if os.environ.get("STREAM_CNN_NUMBA_BLAS") == "1" or _PROBER in sys.modules:
        return False
    if not any(isinstance(finder, _RefuseBlasProbe) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RefuseBlasProbe())
    return True
