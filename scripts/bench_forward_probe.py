"""Batch-1 forward latency of stream-cnn against ONNX Runtime (1 and 2 intra-op threads), in one process.

    python scripts/bench_forward_probe.py                      # digits + mini_xception, 41 rounds, start-up too
    python scripts/bench_forward_probe.py --rounds 61 --no-startup --models digits
    python scripts/bench_forward_probe.py --ops --models mini_xception   # + where the time goes, op by op

The machine this runs on is shared, so absolute times drift; the figures that mean something are the ratios to
ONNX Runtime measured in the same rounds. Engines are interleaved: each round runs one ~slice of every engine in an
order rotated round by round; the report gives the median per-call time over rounds, the ratio of stream-cnn's
median to the better ORT setting's median, and the median over rounds of the same ratio taken within each round.
Weights are the ones `stream-cnn bench` uses (seeded where untrained), and the outputs are checked against ORT
before anything is timed.

Start-up (warm Numba cache: fresh process, import + load + first prediction) and the empty-cache compile use the
same child process as `stream-cnn bench` (stream_cnn.bench.startup).
"""
import argparse
import statistics
import sys
import time

import numpy as np


def ort_sessions(model):
    import onnxruntime

    from stream_cnn.model.onnx_export import to_onnx

    onnx_bytes = to_onnx(model).SerializeToString()
    engines = {}
    for threads in (1, 2):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x, session=session, name=name):
            return session.run(None, {name: x.reshape((1,) + x.shape)})[0].ravel()
        engines[f"ort {threads}t"] = run
    return engines


def time_interleaved(engines, x, rounds, slice_s):
    """{name: [seconds per call, one per round]}: each round runs every engine for ~slice_s, order rotated."""
    calls = {}
    for name, run in engines.items():
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 0.2 or n < 20:
            run(x)
            n += 1
        calls[name] = max(20, int(slice_s / ((time.perf_counter() - start) / n)))
    samples = {name: [] for name in engines}
    order = list(engines)
    for index in range(rounds):
        shift = index % len(order)
        for name in order[shift:] + order[:shift]:
            run, n = engines[name], calls[name]
            run(x)
            start = time.perf_counter()
            for _ in range(n):
                run(x)
            samples[name].append((time.perf_counter() - start) / n)
    return samples


def probe_model(key, rounds, slice_s):
    from stream_cnn.bench.latency import model_inputs
    from stream_cnn.bench.models import load_bench_model

    model = load_bench_model(key).model
    x = model_inputs(model, 1)[0]
    ort = ort_sessions(model)
    ours = model.forward(x).copy()
    for name, run in ort.items():
        diff = float(np.max(np.abs(run(x) - ours)))
        if diff > 1e-5:
            sys.exit(f"{key}: stream-cnn and {name} disagree (max abs diff {diff:.2e})")
    engines = {"stream-cnn": model.forward, **ort}
    samples = time_interleaved(engines, x, rounds, slice_s)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    best_ort = min(medians["ort 1t"], medians["ort 2t"])
    print(f"\n{key}: {model.flops / 1e6:.2f} MFLOP, {rounds} rounds (median us per call, p10-p90)")
    for name, values in samples.items():
        p10, p90 = np.percentile(values, [10, 90])
        print(f"  {name:12s} {medians[name] * 1e6:8.1f} us  ({p10 * 1e6:.1f}-{p90 * 1e6:.1f})  "
              f"{model.flops / medians[name] / 1e9:5.1f} GFLOP/s  x{medians[name] / best_ort:.2f} of best ORT")
    # Per-round ratio (same round, same load) is steadier than the ratio of medians on a busy machine; the ratio
    # of the fastest rounds estimates what a quiet machine would show (the least disturbed slice of each engine).
    per_round = [ours_s / min(a, b) for ours_s, a, b in zip(samples["stream-cnn"], samples["ort 1t"],
                                                             samples["ort 2t"])]
    ours_fastest = min(samples["stream-cnn"])
    ort_fastest = min(min(samples["ort 1t"]), min(samples["ort 2t"]))
    print(f"  stream-cnn / best ORT, median of per-round ratios: {statistics.median(per_round):.2f}; "
          f"fastest rounds: {ours_fastest * 1e6:.1f} us vs {ort_fastest * 1e6:.1f} us = "
          f"{ours_fastest / ort_fastest:.2f}")


def probe_ops(key, repeats=50, trials=7):
    """Time each row of the model's executor op tables on its own (best of `trials` runs of `repeats` calls, on
    the model's own arenas, so every op sees the inputs a forward pass gives it) and print them slowest first.
    The sum exceeds the forward time by about one executor dispatch per op."""
    from stream_cnn.bench.latency import model_inputs
    from stream_cnn.bench.models import load_bench_model
    from stream_cnn.model.kernels import program

    model = load_bench_model(key).model
    model.forward(model_inputs(model, 1)[0])
    names = {code: kernel.__name__ for code, kernel in program.KERNELS.items()}
    timed = []
    for executor, args in model._steps:
        if executor not in (program.run_basic, program.run_full):
            continue
        ops, reals, state, params, fns, no_input = args
        for index in range(ops.shape[0]):
            row_ops = np.ascontiguousarray(ops[index:index + 1])
            row_reals = np.ascontiguousarray(reals[index:index + 1])
            executor(row_ops, row_reals, state, params, fns, no_input)
            best = float("inf")
            for _ in range(trials):
                start = time.perf_counter()
                for _ in range(repeats):
                    executor(row_ops, row_reals, state, params, fns, no_input)
                best = min(best, (time.perf_counter() - start) / repeats)
            row = ops[index]
            shapes = []
            for slot in range(program.ARRAY_SLOTS):
                base = 1 + slot * program.ARRAY_FIELDS
                dims = tuple(int(d) for d in row[base + 2:base + 6] if d > 0)
                if dims and row[base] == 0:   # run-state arrays only (inputs, outputs, scratch)
                    shapes.append("x".join(map(str, dims)))
            timed.append((best, index, names.get(int(row[0]), str(row[0])), " -> ".join(shapes[:2])))
    print(f"\n{key}: per op, slowest first (sum {sum(t for t, *_ in timed) * 1e6:.1f} us; best of {trials})")
    for seconds, index, name, shapes in sorted(timed, reverse=True):
        print(f"  {seconds * 1e6:7.2f} us  #{index:<3d} {name:18s} {shapes}")


def probe_startup(model_key):
    import tempfile

    from stream_cnn.bench.models import load_bench_model
    from stream_cnn.bench.startup import bench_startup

    # The bench model saved as a TOML + .npz pair, so the child loads real files (bundled or seeded weights).
    with tempfile.TemporaryDirectory(prefix="stream-cnn-probe-") as folder:
        path = load_bench_model(model_key).model.save(f"{folder}/{model_key}.toml")
        section = bench_startup(str(path), model_key, warm_runs=3, cold=True)
    warm = section["warm"]["median"]
    cold = section["cold"]
    print(f"\nstart-up {model_key} (warm cache, median of 3): import {warm['import_s']:.3f} s, load "
          f"{warm['load_s']:.3f} s, first forward {warm['first_forward_s']:.3f} s, to first prediction "
          f"{warm['to_first_prediction_s']:.3f} s (spawn to first prediction "
          f"{warm['spawn_to_first_prediction_s']:.3f} s)")
    print(f"start-up {model_key} (empty cache): to first prediction {cold['to_first_prediction_s']:.2f} s "
          f"(first forward {cold['first_forward_s']:.2f} s, load {cold['load_s']:.2f} s), "
          f"{cold['cache_files_written']} cache files written")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits,mini_xception")
    # Many short rounds: on a machine shared with other jobs the load changes within seconds, and the per-round
    # ratio is only fair if the engines of one round ran under the same load.
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--slice", type=float, default=0.025, help="seconds per engine per round")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--ops", action="store_true", help="also time every op of each model on its own")
    args = parser.parse_args()
    for key in args.models.split(","):
        probe_model(key, args.rounds, args.slice)
        if args.ops:
            probe_ops(key)
    if not args.no_startup:
        probe_startup("digits")


if __name__ == "__main__":
    main()
