"""Batch-1 latency of one model in every engine, interleaved in rounds inside this process.

1. Agreement first: each engine runs the same few inputs and is compared with the NumPy reference twin. An engine
   whose largest absolute difference exceeds the tolerance is reported as disagreeing and is not timed: a fast
   wrong answer is not a result.
2. Warm-up and calibration: each engine runs until warm, then the number of calls per timed slice is chosen so a
   slice lasts about ``slice_s`` (the slow NumPy reference gets one call).
3. Rounds: in each round every engine runs one slice, in a new random order each round, so background load and
   clock changes hit all engines alike. One untimed call precedes each slice (caches, spinning thread pools).
   A round's figure per engine is its slice time / calls; the report gives the median over rounds and p10-p90.
"""
from __future__ import annotations

import time

import numpy as np

from stream_cnn.bench.engines import (Unavailable, onnxruntime_engines, opencv_engines, reference_engine,
                                      restore_opencv_threads, stream_cnn_engine)

# Softmax outputs are probabilities in [0, 1]; fp32 engines that sum in different orders differ by ~1e-7.
AGREE_TOLERANCE = 1e-4
AGREEMENT_INPUTS = 3


def model_inputs(model, count: int, seed: int = 1234) -> list:
    """Inputs as the preprocessing would make them: pixels in [0, 255] scaled and normalised per channel."""
    config = model.config
    rng = np.random.default_rng(seed)
    channels = config.input_shape[0]
    mean = np.broadcast_to(np.asarray(config.mean, np.float64), (channels,)).reshape(-1, 1, 1)
    std = np.broadcast_to(np.asarray(config.std, np.float64), (channels,)).reshape(-1, 1, 1)
    inputs = []
    for _ in range(count):
        pixels = rng.integers(0, 256, config.input_shape).astype(np.float64)
        inputs.append(np.ascontiguousarray(((pixels * config.scale - mean) / std).astype(np.float32)))
    return inputs


def build_engines(model, include_reference: bool = True) -> tuple[list, list]:
    """(engines, unavailable) for a model: ONNX bytes exported once and shared by ORT and OpenCV."""
    from stream_cnn.model.onnx_export import to_onnx

    onnx_bytes = to_onnx(model).SerializeToString()
    engines, unavailable = [stream_cnn_engine(model)], []
    for engine in onnxruntime_engines(onnx_bytes, model.config.input_shape) + opencv_engines(onnx_bytes):
        (unavailable if isinstance(engine, Unavailable) else engines).append(engine)
    if include_reference:
        engines.append(reference_engine(model))
    return engines, unavailable


def check_agreement(model, engines, inputs) -> dict:
    """{engine name: max abs difference from the NumPy reference over the inputs} (inf when it raised)."""
    expected = [np.asarray(model.reference_forward(x), dtype=np.float64).ravel() for x in inputs]
    diffs = {}
    for engine in engines:
        if engine.prepare:
            engine.prepare()
        worst = 0.0
        try:
            for x, want in zip(inputs, expected):
                got = np.asarray(engine.run(x), dtype=np.float64).ravel()
                if got.shape != want.shape:
                    worst = float("inf")
                    break
                worst = max(worst, float(np.max(np.abs(got - want))))
        except Exception:   # an engine that crashes on the model disagrees by definition
            worst = float("inf")
        diffs[engine.name] = worst
    return diffs


def _calls_per_slice(engine, x, slice_s: float, warmup_s: float) -> int:
    if engine.prepare:
        engine.prepare()
    start = time.perf_counter()
    calls = 0
    while True:
        engine.run(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if engine.slow or (elapsed >= warmup_s and calls >= 5):
            break
    if engine.slow:
        return 1
    per_call = elapsed / calls
    return int(min(5000, max(1, round(slice_s / per_call))))


def time_engines(engines, x, rounds: int, slice_s: float, warmup_s: float, reference_rounds: int = 3):
    """({engine name: array of per-call seconds, one per round}, {engine name: calls per slice}). The slow
    NumPy reference (seconds per call) takes part only in the first ``reference_rounds`` rounds."""
    calls = {engine.name: _calls_per_slice(engine, x, slice_s, warmup_s) for engine in engines}
    samples = {engine.name: [] for engine in engines}
    # A fresh random order every round (seeded, so reruns are alike): a cyclic rotation would keep the same
    # engine always right after ONNX Runtime's 2-thread pool, whose workers keep spinning for a while.
    shuffler = np.random.default_rng(2024)
    for round_index in range(rounds):
        for position in shuffler.permutation(len(engines)):
            engine = engines[int(position)]
            if engine.slow and round_index >= reference_rounds:
                continue
            if engine.prepare:
                engine.prepare()
            run, n = engine.run, calls[engine.name]
            run(x)
            start = time.perf_counter()
            for _ in range(n):
                run(x)
            samples[engine.name].append((time.perf_counter() - start) / n)
    return {name: np.asarray(values) for name, values in samples.items()}, calls


def bench_model(bench_model, rounds: int, slice_s: float, warmup_s: float, machine, reference_rounds: int = 3,
                agreement_inputs: int = AGREEMENT_INPUTS) -> dict:
    """The latency section for one model (a dict ready for JSON)."""
    import cv2

    model = bench_model.model
    default_cv_threads = cv2.getNumThreads()
    engines, unavailable = build_engines(model)
    inputs = model_inputs(model, agreement_inputs)
    try:
        diffs = check_agreement(model, engines, inputs)
        agreeing = [engine for engine in engines if diffs[engine.name] <= AGREE_TOLERANCE]
        timings, calls = time_engines(agreeing, inputs[0], rounds, slice_s, warmup_s, reference_rounds)
    finally:
        restore_opencv_threads(default_cv_threads)

    flops = int(model.flops)
    rows = []
    for engine in engines:
        row = {"engine": engine.name, "family": engine.family, "threads": engine.threads,
               "max_abs_diff": diffs[engine.name], "notes": engine.notes}
        if engine.name not in timings:
            row["status"] = "disagrees"
            rows.append(row)
            continue
        seconds = timings[engine.name]
        median = float(np.median(seconds))
        gflops = flops / median / 1e9
        row.update({
            "status": "ok", "calls_per_round": calls[engine.name], "rounds": int(seconds.size),
            "median_us": median * 1e6, "p10_us": float(np.percentile(seconds, 10)) * 1e6,
            "p90_us": float(np.percentile(seconds, 90)) * 1e6, "min_us": float(seconds.min()) * 1e6,
            "gflops": gflops,
            "peak_share": gflops / machine.peak_gflops if machine.peak_gflops else None,
            "peak_share_of_used_cores": (gflops / (machine.peak_gflops_per_core * min(engine.threads,
                                                                                      machine.cores))
                                         if machine.peak_gflops_per_core else None),
        })
        rows.append(row)
    for missing in unavailable:
        rows.append({"engine": missing.name, "family": missing.family, "threads": missing.threads,
                     "status": "missing", "reason": missing.reason})

    ort_rows = [row for row in rows if row["family"] == "onnxruntime" and row["status"] == "ok"]
    ort_best = min(ort_rows, key=lambda row: row["median_us"]) if ort_rows else None
    for row in rows:
        if row["status"] == "ok":
            row["ratio_to_ort_best"] = row["median_us"] / ort_best["median_us"] if ort_best else None
    return {
        "model": bench_model.key, "config_name": model.config.name, "input_shape": list(bench_model.input_shape),
        "weights": bench_model.weights_note, "flops": flops, "params": int(model.n_params),
        "tolerance": AGREE_TOLERANCE, "agreement_inputs": len(inputs),
        "ort_best": ort_best["engine"] if ort_best else None, "engines": rows,
    }
