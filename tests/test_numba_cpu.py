"""Numba vectorises 16 floats wide on AVX-512 hosts (LLVM's prefer-256-bit tuning lifted), and both ways to keep
LLVM's default work."""
import json
import os
import subprocess
import sys

import llvmlite.binding as llvm
import pytest

PROBE = """
import json
import stream_cnn
from stream_cnn.model import load_model
probs = load_model("digits").forward()
from numba.core import config
from numba.core.registry import cpu_target
print(json.dumps({"config": config.CPU_FEATURES, "codegen": cpu_target.target_context.codegen()._tm_features,
                  "prob_sum": float(probs.sum())}))
"""

HOST = llvm.get_host_cpu_features().flatten()
AVX512 = "+avx512f" in HOST.split(",")


def _probe(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_FEATURES", "STREAM_CNN_VECTOR_WIDTH")}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                            env={**base, **env})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["prob_sum"] == pytest.approx(1.0, abs=1e-5)
    return seen


@pytest.mark.skipif(not AVX512, reason="no AVX-512 here: LLVM's default vector width is already the widest")
def test_avx512_host_compiles_with_the_preference_lifted():
    seen = _probe()
    assert seen["config"] == HOST + ",-prefer-256-bit"
    assert seen["codegen"] == seen["config"]          # what the target machine is built with


@pytest.mark.skipif(AVX512, reason="an AVX-512 host: covered above")
def test_other_hosts_keep_numbas_defaults():
    assert _probe()["config"] is None


def test_opt_out_keeps_llvms_default():
    seen = _probe(STREAM_CNN_VECTOR_WIDTH="256")
    assert seen["config"] is None
    assert seen["codegen"] == HOST


def test_users_own_features_are_kept():
    seen = _probe(NUMBA_CPU_FEATURES=HOST)
    assert seen["config"] == HOST and seen["codegen"] == HOST
