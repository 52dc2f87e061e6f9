"""Zero allocation in the steady state: the benchmark models' forward passes and the per-frame model path.

tests/test_model_graph.py already checks the all_layers example graph; these check the three models the benchmark
runs (their fused residual / depthwise / strided paths differ from that graph) and the per-frame path the
pipeline runs, preprocess + forward, on a real 640x480 frame. The measurement itself is stream_cnn.bench.alloc,
so the first test proves it is not blind.
"""
import numpy as np
import pytest

from stream_cnn.bench.alloc import forward_allocation, frame_allocation
from stream_cnn.bench.models import load_bench_model
from stream_cnn.bench.pipeline import sample_frame

# Interpreter bookkeeping (the frame object of the first traced call) shows up as a few hundred bytes of peak;
# the smallest buffer any of these models could allocate is far larger once multiplied by the passes.
PEAK_NOISE_BYTES = 1024
FRAME_BYTES = 640 * 480 * 3


@pytest.fixture(scope="module")
def frame():
    return sample_frame()


@pytest.fixture(scope="module", params=["digits", "mini_xception", "rgb"])
def bench_model(request):
    return load_bench_model(request.param)


class AllocatingModel:
    """Stands in for a model whose forward pass makes a small temporary and keeps a result."""

    def __init__(self):
        self.input = np.zeros((1, 4, 4), np.float32)
        self.kept = []

    def forward(self):
        scratch = self.input * 2.0           # a 64-byte temporary array, freed at return
        # 64 bytes of data kept per pass (a bytes object: no free list hides it from tracemalloc, as floats'
        # would be)
        self.kept.append(scratch.tobytes())


def test_the_probe_sees_small_allocations():
    result = forward_allocation(AllocatingModel(), 100)
    assert result["net_bytes_per_pass"] >= 64
    assert result["peak_bytes_above_start"] >= 100 * 64


def test_forward_allocates_nothing(bench_model):
    result = forward_allocation(bench_model.model, 200)
    assert result["net_bytes"] == 0, result
    assert result["net_bytes"] == 0, result
    assert result["peak_bytes_above_start"] < PEAK_NOISE_BYTES, result


def test_forward_output_is_the_same_buffer_every_pass(bench_model):
    model = bench_model.model
    first = model.forward()
    second = model.forward()
    assert first is second is model.output
    assert np.isclose(float(np.sum(second)), 1.0, atol=1e-5)   # all three end in a softmax


def test_frame_path_retains_nothing_and_makes_no_frame_sized_temporaries(bench_model, frame):
    """preprocess(frame) + forward() per frame: nothing kept across frames, nothing as large as a frame."""
    result = frame_allocation(bench_model.model, frame, 60)
    if result["digit_found"] is not None:
        assert result["digit_found"], "the benchmark frame shows a digit on a sheet; the finder should see it"
    retained = result["net_bytes"]
    if result["digit_found"] is None:
        # Frame-mode models: nothing kept, and the transient peak stays far below one frame.
        assert retained < PEAK_NOISE_BYTES, result
        assert result["peak_bytes_above_start"] < FRAME_BYTES // 8, result
    else:
        # The digit finder works in NumPy and leaves a few small objects (~60 B each, NumPy's own caches) behind
        # over the first hundreds of frames; what must never happen is frame data kept per frame (900 kB each).
        assert retained < 64 * 1024, result


@pytest.mark.parametrize("key", ["mini_xception", "rgb"])
def test_frame_mode_preprocess_allocates_nothing(key, frame):
    """Frame-mode models (crop to 64x64 gray, 96x96 RGB): preprocess + forward allocates nothing at all."""
    model = load_bench_model(key).model
    result = frame_allocation(model, frame, 30)
    assert result["net_bytes"] == 0, result
    assert result["peak_bytes_above_start"] < PEAK_NOISE_BYTES, result


def test_gray_model_on_the_luma_plane_allocates_nothing(frame):
    """`stream-cnn video` feeds gray frame-mode models the decoder's luma plane (2-D) when nothing shows the
    picture; that path must be as allocation-free as the BGR one."""
    import cv2

    model = load_bench_model("mini_xception").model
    luma = np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    model.input[...] = 0.0
    result = frame_allocation(model, luma, 30)
    assert np.ptp(model.input) > 0.5      # the luma frame really went through preprocessing into the input
    assert result["net_bytes"] == 0, result
    assert result["peak_bytes_above_start"] < PEAK_NOISE_BYTES, result
