"""Fixtures shared by the pipeline test modules; the helpers they are built from live in tests/helpers.py."""
import pytest

from helpers import make_clip, make_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Path of a 4-class gray whole-frame model (conv, global pool, dense, softmax) with seeded weights."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A 30-frame 320x240 mp4v clip of a moving disc (no two frames alike)."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", count=30)
