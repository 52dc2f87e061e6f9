"""Numba is kept off SciPy's BLAS (a start-up cost stream-cnn never needs), and the opt-out restores it."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import stream_cnn
from stream_cnn.model import load_model
model = load_model("digits")
probs = model.forward()
import numba.np.arraymath as arraymath
print(json.dumps({"have_blas": arraymath._HAVE_BLAS, "scipy_linalg_loaded": "scipy.linalg" in sys.modules,
                  "prob_sum": float(probs.sum())}))
"""


def _probe(**env):
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_kernels_run_without_scipy_blas():
    seen = _probe()
    assert seen["have_blas"] is False
    assert seen["scipy_linalg_loaded"] is False
    assert seen["prob_sum"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="SciPy not installed: nothing to opt back into")
def test_opt_out_leaves_numba_alone():
    seen = _probe(STREAM_CNN_NUMBA_BLAS="1")
    assert seen["have_blas"] is True
    assert seen["scipy_linalg_loaded"] is True
