"""Choose where Numba keeps compiled kernels, before numba is imported.

Numba caches next to the source files (``__pycache__``). A system-wide or read-only install cannot be
written there, so we fall back to a per-user cache directory. A user-set NUMBA_CACHE_DIR always wins.
"""
import os
import sys
import tempfile
from pathlib import Path


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stream-cnn" / "numba"


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
        return True
    except OSError:
        return False


def configure_numba_cache() -> str | None:
    """Set NUMBA_CACHE_DIR if the package folder is not writable; return the directory chosen (None = default)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    if "numba" in sys.modules:  # too late to redirect; numba already read its config
        return None
    package_dir = Path(__file__).resolve().parent
    if _writable(package_dir / "model" / "kernels" / "__pycache__"):
        return None
    fallback = _user_cache_dir()
    if not _writable(fallback):
        fallback = Path(tempfile.gettempdir()) / "stream-cnn-numba"
        fallback.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(fallback)
    return str(fallback)
