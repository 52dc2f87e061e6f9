"""Numba's on-disk kernel cache: in the package's __pycache__ when writable, otherwise in a per-user cache dir
(NUMBA_CACHE_DIR is set before numba is imported); a user's own NUMBA_CACHE_DIR wins; only the signatures
actually called get compiled. Each case runs a fresh interpreter on a copy of the package."""
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import stream_cnn

PACKAGE = Path(stream_cnn.__file__).resolve().parent

CHILD = r"""
import json, os, sys
import numpy as np
import stream_cnn
chosen = os.environ.get("NUMBA_CACHE_DIR")
from stream_cnn.model import kernels
a = np.arange(6, dtype=np.float32).reshape(2, 3)
out = np.empty_like(a)
kernels.add(a, a, out, 1, 0.0)
assert out[1, 2] == 10.0
print(json.dumps({
    "package": stream_cnn.__file__,
    "cache_dir": chosen,
    "add_signatures": len(kernels.add.signatures),
    "glu_signatures": len(kernels.glu.signatures),
    "add_cache_hits": sum(kernels.add.stats.cache_hits.values()),
}))
"""


def copy_package(root: Path, read_only: bool) -> Path:
    """A copy of the stream_cnn package under root (importable with PYTHONPATH=root)."""
    target = root / "stream_cnn"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    if read_only:
        # A plain file where the kernels' __pycache__ folder would go: nothing can create the folder, even when
        # the tests run as root (for whom permission bits alone do not make a folder read-only).
        (target / "model" / "kernels" / "__pycache__").write_text("not a folder")
        for path in [target, *target.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return target


def run_child(root: Path, home: Path, extra_env=None) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env.update({"PYTHONPATH": str(root), "HOME": str(home), "XDG_CACHE_HOME": str(home / "xdg"),
                "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra_env or {})
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=home, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def cache_files(folder: Path) -> list:
    return sorted(p.name for p in folder.rglob("*.nbi")) if folder.exists() else []


def make_writable(folder: Path):
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def read_only_copy(tmp_path):
    root = tmp_path / "site"
    package = copy_package(root, read_only=True)
    home = tmp_path / "home"
    home.mkdir()
    yield root, package, home
    make_writable(root)   # so pytest can clean up


def test_read_only_package_falls_back_to_user_cache_dir(read_only_copy):
    root, package, home = read_only_copy
    first = run_child(root, home)
    assert Path(first["package"]).resolve().is_relative_to(package)   # the copy was imported, not the checkout
    expected = home / "xdg" / "stream-cnn" / "numba"
    assert first["cache_dir"] == str(expected)
    assert any(name.startswith("elementwise.add") for name in cache_files(expected))
    assert (package / "model" / "kernels" / "__pycache__").is_file()   # nothing written into the package
    # only the signature actually called is compiled; kernels never called compile nothing
    assert first["add_signatures"] == 1 and first["glu_signatures"] == 0
    # a second process loads the compiled kernel from the fallback cache instead of compiling again
    second = run_child(root, home)
    assert second["cache_dir"] == str(expected) and second["add_cache_hits"] >= 1


def test_user_numba_cache_dir_wins(read_only_copy, tmp_path):
    root, _, home = read_only_copy
    mine = tmp_path / "my-numba-cache"
    result = run_child(root, home, {"NUMBA_CACHE_DIR": str(mine)})
    assert result["cache_dir"] == str(mine)
    assert cache_files(mine) and not cache_files(home / "xdg")


def test_writable_package_caches_beside_the_kernels(tmp_path):
    root = tmp_path / "site"
    package = copy_package(root, read_only=False)
    home = tmp_path / "home"
    home.mkdir()
    result = run_child(root, home)
    assert result["cache_dir"] is None   # numba's default: __pycache__ next to the source
    assert any(name.startswith("elementwise.add") for name in cache_files(package / "model" / "kernels"))
    assert not cache_files(home)
