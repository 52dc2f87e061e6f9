"""Bundled models: ``<name>.toml`` (+ its ``.npz``) in this folder, loadable by name (``load_model("digits")``)."""
from pathlib import Path

from stream_cnn.errors import ModelFileError

ZOO_DIR = Path(__file__).resolve().parent


def bundled_names() -> list:
    return sorted(path.stem for path in ZOO_DIR.glob("*.toml"))


def resolve(source) -> Path:
    """A path to a .toml config from a bundled name or a path. A name that is neither is a ModelFileError."""
    path = Path(source)
    if path.suffix == ".toml" or path.exists() or len(path.parts) > 1:
        if path.is_dir():
            raise ModelFileError(f"{path}: is a folder, expected a .toml model file")
        if not path.exists():
            raise ModelFileError(f"{path}: model file not found")
        return path
    bundled = ZOO_DIR / f"{source}.toml"
    if bundled.exists():
        return bundled
    names = ", ".join(bundled_names()) or "none yet"
    raise ModelFileError(f"unknown model '{source}': not a .toml file and not a bundled model (bundled: {names})")
