"""Runs the selected benchmark sections and assembles the result dict (the JSON document)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass

from stream_cnn.errors import StreamCnnError

SECTIONS = ("latency", "startup", "pipeline", "alloc")


@dataclass
class BenchSettings:
    models: tuple = ("digits", "mini_xception", "rgb")
    rounds: int = 30
    quick: bool = False
    only: tuple = SECTIONS
    slice_s: float = 0.02          # target length of one engine's timed slice in a round
    warmup_s: float = 0.2
    startup_runs: int = 5
    cold_compile: bool = True
    clip_frames: int = 600
    pipeline_repeats: int = 3
    alloc_passes: int = 300

    @classmethod
    def make(cls, models, rounds, quick, only):
        if quick:
            settings = cls(models=tuple(models), rounds=rounds or 5, quick=True, only=tuple(only), slice_s=0.005,
                           warmup_s=0.05, startup_runs=1, cold_compile=False, clip_frames=90,
                           pipeline_repeats=1, alloc_passes=50)
        else:
            settings = cls(models=tuple(models), rounds=rounds or cls.rounds, only=tuple(only))
        return settings


def run_bench(settings: BenchSettings, command: str, log=lambda text: None) -> dict:
    from stream_cnn.bench.machine import current_load, machine_info
    from stream_cnn.bench.models import load_bench_model
    from stream_cnn.bench.report import evaluate_targets

    bench_models = [load_bench_model(key) for key in settings.models]   # a bad name fails before any output
    machine = machine_info()
    log(f"machine: {machine.cpu_model}, {machine.cores} cores; load average {machine.load_average}")
    for bench in bench_models:
        log(f"model {bench.key}: {bench.weights_note}")
    result = {"command": command, "settings": asdict(settings), "machine": machine.to_dict(),
              "models": [{"model": b.key, "config_name": b.model.config.name, "input_shape": list(b.input_shape),
                          "flops": int(b.model.flops), "params": int(b.model.n_params), "weights": b.weights_note}
                         for b in bench_models],
              "latency": None, "startup": None, "pipeline": None, "alloc": None}

    errors = []

    def section(name, measure):
        """Run one section; a failure is recorded and reported, and the other sections still run."""
        try:
            result[name] = measure()
        except StreamCnnError as err:
            errors.append({"section": name, "error": str(err)})
            log(f"{name}: FAILED: {err}")

    if "latency" in settings.only:
        from stream_cnn.bench.latency import bench_model

        def latency():
            sections = []
            for bench in bench_models:
                log(f"latency: {bench.key} ...")
                sections.append(bench_model(bench, settings.rounds, settings.slice_s, settings.warmup_s, machine,
                                            reference_rounds=1 if settings.quick else 3,
                                            agreement_inputs=1 if settings.quick else 3))
                for row in sections[-1]["engines"]:
                    if row["status"] == "missing":
                        log(f"  {row['engine']}: skipped: {row['reason']}")
                    elif row["status"] == "disagrees":
                        log(f"  {row['engine']}: DISAGREES with the NumPy reference (max abs diff "
                            f"{row['max_abs_diff']:.3g}); not timed")
            return {"rounds": settings.rounds, "models": sections}
        section("latency", latency)

    default = bench_models[0]   # start-up and pipeline run the first (default) model
    if "startup" in settings.only or "pipeline" in settings.only:
        with tempfile.TemporaryDirectory(prefix="stream-cnn-bench-model-") as workdir:
            # A fresh process loads the model as a user names it; seeded models are saved to a file first, so
            # it loads exactly these weights.
            model_path = default.source or str(default.model.save(os.path.join(workdir, f"{default.key}.toml")))
            if "startup" in settings.only:
                from stream_cnn.bench.startup import bench_startup
                log(f"start-up: {default.key} (warm x{settings.startup_runs}"
                    f"{', then an empty cache' if settings.cold_compile else ''}) ...")
                section("startup", lambda: bench_startup(model_path, default.key, settings.startup_runs,
                                                         settings.cold_compile))
            if "pipeline" in settings.only:
                from stream_cnn.bench.pipeline import bench_pipeline
                log(f"pipeline: {default.key} ...")
                section("pipeline", lambda: bench_pipeline(default.model, default.key, settings.clip_frames,
                                                           settings.pipeline_repeats, log))

    if "alloc" in settings.only:
        from stream_cnn.bench.alloc import bench_allocation
        from stream_cnn.bench.pipeline import sample_frame
        log("allocation ...")
        section("alloc", lambda: bench_allocation(bench_models, settings.alloc_passes, sample_frame()))

    result["errors"] = errors
    result["load_average_end"] = current_load()
    result["targets"] = evaluate_targets(result)
    return result
