"""Start-up cost: time to the first prediction in a fresh Python process, with the Numba cache warm and empty.

The child imports stream_cnn, loads the model from its files and runs one forward pass, reporting its own phase
times; the parent also measures from spawn to the moment the child reached its first prediction (wall clock, so
interpreter start-up is included). "Empty cache" points NUMBA_CACHE_DIR at a fresh temporary folder, so every
kernel the model needs is compiled from scratch: that is what a first run after installing costs.

Numba imports some packages only because they are installed, none of them a stream-cnn dependency: SciPy (a
version check at `import numba`; stream_cnn/_numba_blas.py already keeps it from loading scipy.linalg), PyYAML
(to read a .numba_config.yaml), colorama (coloured error messages) and cffi with pycparser (its cffi type
registry, set up when the first compiled function loads). A development environment often has them; together
they cost this machine ~50 ms of a ~0.33 s warm start. The warm runs are therefore repeated with them hidden from
the child: what an environment holding only stream-cnn and its dependencies gets.

"Warm" means both caches a second start finds: Numba's (filled by an untimed first run) and Python's bytecode of
stream_cnn (brought up to date first, as installing does; see _compile_bytecode).
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
optional = sys.argv[3].split(",")
if sys.argv[2] == "hide":
    class HideOptional:
        # As if these packages were not installed (Numba imports each inside try/except ImportError).
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in optional:
                raise ImportError("hidden by stream-cnn bench")
            return None
    sys.meta_path.insert(0, HideOptional())
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
                  "wall_first": wall_first, "outputs": int(probs.size),
                  "optional_loaded": sorted({name.split(".")[0] for name in sys.modules} & set(optional))}))
"""


# Packages Numba imports only when they are installed (see the module docstring).
NUMBA_OPTIONAL_IMPORTS = ("scipy", "yaml", "colorama", "cffi", "pycparser")


def _run_child(model_path: str, env: dict, timeout: float, hide_optional: bool = False) -> dict:
    spawned = time.time()
    try:
        result = subprocess.run([sys.executable, "-c", CHILD, model_path, "hide" if hide_optional else "show",
                                 ",".join(NUMBA_OPTIONAL_IMPORTS)],
                                capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StreamCnnError(f"start-up benchmark: the child process took more than {timeout:.0f} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise StreamCnnError(f"start-up benchmark: the child process failed: {last}")
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    timings["spawn_to_first_prediction_s"] = timings.pop("wall_first") - spawned
    return timings


def _installed(names) -> list:
    import importlib.util
    return [name for name in names if importlib.util.find_spec(name) is not None]


def _summarise(runs: list) -> dict:
    keys = [key for key in runs[0] if key.endswith("_s")]
    return {"runs": len(runs), "median": {key: statistics.median(run[key] for run in runs) for key in keys},
            "all": runs}


def _compile_bytecode() -> str:
    """Bring stream_cnn's Python bytecode up to date, as `pip install` does for an installed package. Python would
    write it on the first import, but not with PYTHONDONTWRITEBYTECODE set (as in some containers): then every start
    recompiles our sources, ~25 ms here, which is not what a warm start of an installed tool costs."""
    import compileall

    import stream_cnn
    package = Path(stream_cnn.__file__).parent
    try:
        done = compileall.compile_dir(str(package), quiet=2)
    except OSError as err:
        return f"not written ({err.strerror})"
    return "up to date" if done else "not all written (read-only install?)"


def bench_startup(model_path: str, model_key: str, warm_runs: int, cold: bool, timeout: float = 600.0) -> dict:
    """Warm runs after one untimed run that fills the cache; then (if cold) one run with an empty cache."""
    env = dict(os.environ)
    bytecode = _compile_bytecode()
    _run_child(model_path, env, timeout)   # fills / refreshes the cache this process's users would have
    runs = max(1, warm_runs)
    warm = _summarise([_run_child(model_path, env, timeout) for _ in range(runs)])
    without_extras = _summarise([_run_child(model_path, env, timeout, hide_optional=True)
                                 for _ in range(runs)])
    section = {"model": model_key, "model_path": model_path,
               "numba_cache_dir": env.get("NUMBA_CACHE_DIR") or "beside the kernel sources (__pycache__)",
               "python_bytecode": bytecode,
               "numba_optional_installed": _installed(NUMBA_OPTIONAL_IMPORTS), "warm": warm,
               "warm_without_numba_optional": without_extras, "cold": None}
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
