"""Start-up cost: time to the first prediction in a fresh Python process, with the Numba cache warm and empty.

The child imports stream_cnn, loads the model from its files and runs one forward pass, reporting its own phase
times; the parent also measures from spawn to the moment the child reached its first prediction (wall clock, so
interpreter start-up is included). "Empty cache" points NUMBA_CACHE_DIR at a fresh temporary folder, so every
kernel the model needs is compiled from scratch: that is what a first run after installing costs.

When SciPy is installed (it is not a stream-cnn dependency), Numba imports scipy.linalg the first time it loads
its array-math registry, to probe for BLAS: ~0.1-0.35 s of the first forward pass here. The warm runs are
therefore repeated with SciPy hidden from the child, which is what an environment without SciPy gets.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stream_cnn.errors import StreamCnnError

CHILD = r"""
import time
t0 = time.perf_counter()
import json, sys
if sys.argv[2] == "hide-scipy":
    class HideScipy:
        # As if SciPy were not installed: Numba then skips the BLAS probe that imports scipy.linalg.
        def find_spec(self, name, path=None, target=None):
            if name == "scipy" or name.startswith("scipy."):
                raise ImportError("hidden by stream-cnn bench")
            return None
    sys.meta_path.insert(0, HideScipy())
import stream_cnn
from stream_cnn.model import load_model
from stream_cnn.model import kernels
t_import = time.perf_counter()
model = load_model(sys.argv[1])
t_load = time.perf_counter()
probs = model.forward()
t_first = time.perf_counter()
wall_first = time.time()
probs = model.forward()
t_second = time.perf_counter()
print(json.dumps({"import_s": t_import - t0, "load_s": t_load - t_import, "first_forward_s": t_first - t_load,
                  "to_first_prediction_s": t_first - t0, "second_forward_s": t_second - t_first,
                  "wall_first": wall_first, "outputs": int(probs.size)}))
"""


def _run_child(model_path: str, env: dict, timeout: float, hide_scipy: bool = False) -> dict:
    spawned = time.time()
    try:
        result = subprocess.run([sys.executable, "-c", CHILD, model_path, "hide-scipy" if hide_scipy else "-"],
                                capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StreamCnnError(f"start-up benchmark: the child process took more than {timeout:.0f} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise StreamCnnError(f"start-up benchmark: the child process failed: {last}")
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    timings["spawn_to_first_prediction_s"] = timings.pop("wall_first") - spawned
    return timings


def _scipy_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("scipy") is not None


def _summarise(runs: list) -> dict:
    keys = [key for key in runs[0] if key.endswith("_s")]
    return {"runs": len(runs), "median": {key: statistics.median(run[key] for run in runs) for key in keys},
            "all": runs}


def bench_startup(model_path: str, model_key: str, warm_runs: int, cold: bool, timeout: float = 600.0) -> dict:
    """Warm runs after one untimed run that fills the cache; then (if cold) one run with an empty cache."""
    env = dict(os.environ)
    _run_child(model_path, env, timeout)   # fills / refreshes the cache this process's users would have
    runs = max(1, warm_runs)
    warm = _summarise([_run_child(model_path, env, timeout) for _ in range(runs)])
    without_scipy = _summarise([_run_child(model_path, env, timeout, hide_scipy=True) for _ in range(runs)])
    section = {"model": model_key, "model_path": model_path,
               "numba_cache_dir": env.get("NUMBA_CACHE_DIR") or "beside the kernel sources (__pycache__)",
               "scipy_installed": _scipy_installed(), "warm": warm, "warm_without_scipy": without_scipy,
               "cold": None}
    if cold:
        with tempfile.TemporaryDirectory(prefix="stream-cnn-bench-cache-") as cache_dir:
            cold_env = dict(env, NUMBA_CACHE_DIR=cache_dir)
            run = _run_child(model_path, cold_env, timeout)
            files = sum(1 for _ in Path(cache_dir).rglob("*.nbc"))
        run["cache_files_written"] = files
        section["cold"] = run
    else:
        section["cold_skipped"] = "skipped (--quick)"
    return section
