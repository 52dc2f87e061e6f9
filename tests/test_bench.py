"""`stream-cnn bench`: the JSON it prints has every section, the engines agree, and bad options fail in one line.

No timing assertions: speed targets are recorded in BENCHMARKS.md. One real `--quick --json` run (a subprocess, as
a user runs it) feeds the structure tests; the refusal and missing-engine paths are tested in process on the
small digits model.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from stream_cnn.bench import latency
from stream_cnn.bench.engines import Engine, onnxruntime_engines
from stream_cnn.bench.machine import machine_info
from stream_cnn.bench.models import load_bench_model
from stream_cnn.cli import main

MODELS = ["digits", "mini_xception", "rgb"]
ENGINES = {"stream-cnn", "onnxruntime 1t", "onnxruntime 2t", "opencv-dnn 1t", "opencv-dnn 2t", "numpy-reference"}
TARGET_IDS = {"digits_latency", "mini_xception_latency", "video_vs_decode", "video_output_vs_encode", "warm_start",
              "cold_compile", "zero_alloc"}


def _have_onnxruntime():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def quick_result():
    result = subprocess.run([sys.executable, "-m", "stream_cnn", "bench", "--quick", "--json"], capture_output=True,
                            text=True, timeout=900, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_quick_json_has_every_section(quick_result):
    for key in ("command", "settings", "machine", "models", "latency", "startup", "pipeline", "alloc", "targets"):
        assert key in quick_result
    assert [m["model"] for m in quick_result["models"]] == MODELS
    assert quick_result["settings"]["quick"] is True
    assert quick_result["errors"] == []


def test_machine_peak_is_derived_from_its_parts(quick_result):
    machine = quick_result["machine"]
    expected = machine["cores"] * machine["fma_units"] * machine["fp32_lanes"] * 2 * machine["clock_mhz"] / 1000
    assert machine["peak_gflops"] == pytest.approx(expected)
    assert f"{machine['cores']} cores" in machine["peak_derivation"]
    assert machine["versions"]["numba"] and machine["versions"]["numpy"] and machine["versions"]["opencv"]
    assert sys.prefix in machine["python_env"] and "distributions installed" in machine["python_env"]


def test_every_engine_agrees_and_is_timed(quick_result):
    sections = quick_result["latency"]["models"]
    assert [s["model"] for s in sections] == MODELS
    for section in sections:
        rows = {row["engine"]: row for row in section["engines"]}
        assert set(rows) == ENGINES
        for name, row in rows.items():
            if row["family"] == "onnxruntime" and not _have_onnxruntime():
                assert row["status"] == "missing"
                continue
            assert row["status"] == "ok", (section["model"], name, row)
            assert row["max_abs_diff"] <= section["tolerance"]
            assert row["p10_us"] <= row["median_us"] <= row["p90_us"]
            # GFLOP/s is the model's own FLOP count over the median time.
            assert row["gflops"] == pytest.approx(section["flops"] / (row["median_us"] * 1e-6) / 1e9)
            assert 0 < row["peak_share"] < 1
        if _have_onnxruntime():
            best = rows[section["ort_best"]]
            assert best["ratio_to_ort_best"] == pytest.approx(1.0)
            assert min(rows["onnxruntime 1t"]["ratio_to_ort_best"], rows["onnxruntime 2t"]["ratio_to_ort_best"]) \
                == pytest.approx(1.0)


def test_startup_pipeline_and_alloc_sections(quick_result):
    startup = quick_result["startup"]
    warm = startup["warm"]["median"]
    assert warm["to_first_prediction_s"] == pytest.approx(warm["import_s"] + warm["load_s"] + warm["first_forward_s"])
    assert warm["spawn_to_first_prediction_s"] > warm["to_first_prediction_s"] * 0.5
    hidden = startup["warm_without_numba_optional"]["median"]
    assert hidden["to_first_prediction_s"] > 0
    assert startup["warm_without_numba_optional"]["runs"] == startup["warm"]["runs"]
    assert set(startup["numba_optional_installed"]) <= {"scipy", "yaml", "colorama", "cffi", "pycparser"}
    assert all(run["optional_loaded"] == [] for run in startup["warm_without_numba_optional"]["all"])
    assert startup["python_bytecode"] == "up to date"   # the checkout is writable here
    assert startup["cold"] is None and "quick" in startup["cold_skipped"]

    pipeline = quick_result["pipeline"]
    frames = pipeline["clip"]["frames"]
    assert (pipeline["clip"]["width"], pipeline["clip"]["height"]) == (640, 480)
    for name, runs in pipeline["runs"].items():
        for run in runs:
            assert run["frames"] == frames, name     # every frame decoded / processed, none lost
    for run in pipeline["runs"]["video"] + pipeline["runs"]["video_output"]:
        assert run["inferred"] == frames
    assert pipeline["runs"]["video_output"][0]["frames_written"] == frames
    # One repetition in --quick: the per-repetition ratio is the ratio of the two rates.
    assert pipeline["video_vs_decode"] == pytest.approx(pipeline["fps"]["video"] / pipeline["fps"]["decode_only"])
    assert all(value > 0 for value in pipeline["cpu_ms_per_frame"].values())

    alloc = quick_result["alloc"]
    assert [row["model"] for row in alloc["models"]] == MODELS
    for row in alloc["models"]:
        assert row["forward"]["net_bytes_per_pass"] == 0


def test_targets_listed_with_verdicts(quick_result):
    targets = {t["id"]: t for t in quick_result["targets"]}
    assert set(targets) == TARGET_IDS
    assert targets["cold_compile"]["met"] is None          # not measured with --quick
    assert targets["zero_alloc"]["met"] is True
    for target in targets.values():
        if target["measured"] is not None:
            assert isinstance(target["met"], bool)


def test_an_engine_that_disagrees_is_refused(monkeypatch):
    real_build = latency.build_engines

    def with_a_wrong_engine(model, include_reference=True):
        engines, unavailable = real_build(model, include_reference)
        forward = engines[0].run
        engines.append(Engine("off-by-a-bit", "stream-cnn", 1, lambda x: forward(x) + np.float32(1e-3)))
        return engines, unavailable

    monkeypatch.setattr(latency, "build_engines", with_a_wrong_engine)
    section = latency.bench_model(load_bench_model("digits"), rounds=2, slice_s=0.001, warmup_s=0.0,
                                  machine=machine_info(), reference_rounds=1, agreement_inputs=1)
    rows = {row["engine"]: row for row in section["engines"]}
    wrong = rows["off-by-a-bit"]
    assert wrong["status"] == "disagrees"
    assert wrong["max_abs_diff"] == pytest.approx(1e-3, rel=1e-2)
    assert "median_us" not in wrong and "ratio_to_ort_best" not in wrong
    assert rows["stream-cnn"]["status"] == "ok"


def test_missing_onnxruntime_is_reported_not_fatal(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import onnxruntime now raises ImportError
    engines = onnxruntime_engines(b"", (1, 28, 28))
    assert [e.name for e in engines] == ["onnxruntime 1t", "onnxruntime 2t"]
    assert all("not installed" in e.reason for e in engines)


@pytest.mark.parametrize("args, code, text", [
    (["bench", "--only", "speed"], 2, "--only"),
    (["bench", "--models", "digits,digits"], 2, "twice"),
    (["bench", "--models", "no_such_model", "--only", "alloc"], 5, "no_such_model"),
])
def test_bad_options_fail_in_one_line(args, code, text):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code
    message = result.output.strip()
    assert text in message and len(message.splitlines()) == 1 and "Traceback" not in message


def test_json_has_no_bare_infinities():
    from stream_cnn.bench.commands import _json_safe

    safe = _json_safe({"a": [math.inf, 1.0], "b": {"c": -math.inf}})
    assert json.loads(json.dumps(safe)) == {"a": ["inf", 1.0], "b": {"c": "-inf"}}


def test_text_report_shows_every_engine_target_and_missing_reason(quick_result):
    import copy

    from stream_cnn.bench.report import format_report

    result = copy.deepcopy(quick_result)
    section = result["latency"]["models"][0]
    section["engines"][-1] = {"engine": "onnxruntime 2t", "family": "onnxruntime", "threads": 2,
                              "status": "missing", "reason": "onnxruntime is not installed"}
    text = format_report(result)
    for name in ENGINES:
        assert name in text
    assert "missing: onnxruntime is not installed" in text
    lines = text.splitlines()
    for target in result["targets"]:
        line = next(line for line in lines if target["what"] in line)
        expected = "-" if target["met"] is None else "met" if target["met"] else "NOT MET"
        assert line.rstrip().endswith(expected), line
    assert result["machine"]["peak_derivation"] in text
