"""Steady-state allocation per forward pass (and per frame: preprocess + forward), measured with tracemalloc.

tracemalloc sees every allocation made through Python's allocators, which is where NumPy puts array data and
where any Python object made per call (a tuple, a float, a temporary array) would land. After a warm-up the model
runs N times inside the trace (three separate windows, the smallest net kept); the net growth divided by N is
what each pass leaves behind, and the peak above the starting point bounds what any single pass holds at once,
even if it frees it again. Zero is the target for both
(a few hundred bytes of interpreter bookkeeping — frame objects, small-int caches — can show up as peak noise).
"""
from __future__ import annotations

import tracemalloc
from itertools import repeat

import numpy as np

WARMUP = 10
TRIALS = 3


def _traced(call, count: int, trials: int = TRIALS) -> dict:
    """Net growth and peak over ``count`` calls, in a few separate traced windows: a real per-call allocation
    shows in every window, while the interpreter now and then keeps one small object for its own purposes (a
    dict growing, a cached int), which shows in one window and not the next. So: the smallest net of the
    windows, the largest peak."""
    for _ in range(WARMUP):
        call()
    nets, peaks = [], []
    for _ in range(trials):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            # itertools.repeat, not range: range's ints above 256 are new objects, and the last one stays alive
            # in the loop variable, 32 bytes that would show as net growth.
            for _ in repeat(None, count):
                call()
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        nets.append(after - before)
        peaks.append(peak - before)
    net = min(nets)
    return {"passes": count, "trials": trials, "net_bytes": net, "net_bytes_per_pass": net / count,
            "net_bytes_each_trial": nets, "peak_bytes_above_start": max(peaks)}


def forward_allocation(model, count: int) -> dict:
    """Bytes left behind per `model.forward()` on the model's own input buffer."""
    model.input[...] = np.random.default_rng(0).random(model.input.shape, dtype=np.float32)
    return _traced(model.forward, count)


def frame_allocation(model, frame: np.ndarray, count: int) -> dict:
    """Bytes per frame of the per-frame model path: FramePreprocessor(frame) then model.forward()."""
    from stream_cnn.preprocess import FramePreprocessor

    preprocess = FramePreprocessor(model.config, model.input)

    def one_frame():
        if preprocess(frame) is not None or not preprocess.digit_mode:
            model.forward()
    result = _traced(one_frame, count)
    result["digit_found"] = preprocess(frame) is not None if preprocess.digit_mode else None
    return result


def bench_allocation(bench_models, count: int, frame: np.ndarray | None) -> dict:
    rows = []
    for bench_model in bench_models:
        row = {"model": bench_model.key, "forward": forward_allocation(bench_model.model, count)}
        if frame is not None:
            row["frame"] = frame_allocation(bench_model.model, frame, max(10, count // 4))
        rows.append(row)
    return {"method": "tracemalloc net growth over N passes after warm-up (smallest of 3 windows); peak above the "
                      "start",
            "models": rows}
