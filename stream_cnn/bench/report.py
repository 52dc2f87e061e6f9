"""Targets (from the benchmark issue) checked against a result, and the plain-text report."""
from __future__ import annotations

# (id, what, limit, comparison) - ratios measured side by side in one run.
TARGETS = [
    ("digits_latency", "digits latency vs ONNX Runtime best (batch 1)", 0.5, "<="),
    ("mini_xception_latency", "mini-Xception latency vs ONNX Runtime best", 1.0, "<="),
    ("video_vs_decode", "video fps vs decode-only fps (no --output)", 0.95, ">="),
    ("video_output_vs_encode", "video --output fps vs encode-only fps", 0.90, ">="),
    ("warm_start", "warm start: import + load + first prediction (s)", 0.3, "<="),
    ("cold_compile", "empty Numba cache: import + load + first prediction (s)", 5.0, "<="),
    ("zero_alloc", "bytes allocated per forward pass (worst model)", 0.0, "<="),
]


def _stream_cnn_ratio(result, model_key):
    for section in (result.get("latency") or {}).get("models", []):
        if section["model"] == model_key:
            for row in section["engines"]:
                if row["engine"] == "stream-cnn" and row["status"] == "ok":
                    return row.get("ratio_to_ort_best")
    return None


def evaluate_targets(result: dict) -> list:
    measured = {
        "digits_latency": _stream_cnn_ratio(result, "digits"),
        "mini_xception_latency": _stream_cnn_ratio(result, "mini_xception"),
    }
    pipeline = result.get("pipeline")
    if pipeline:
        measured["video_vs_decode"] = pipeline["video_vs_decode"]
        measured["video_output_vs_encode"] = pipeline["video_output_vs_encode"]
    startup = result.get("startup")
    if startup:
        measured["warm_start"] = startup["warm"]["median"]["to_first_prediction_s"]
        if startup.get("cold"):
            measured["cold_compile"] = startup["cold"]["to_first_prediction_s"]
    alloc = result.get("alloc")
    if alloc and alloc["models"]:
        measured["zero_alloc"] = max(row["forward"]["net_bytes_per_pass"] for row in alloc["models"])
    rows = []
    for target_id, what, limit, comparison in TARGETS:
        value = measured.get(target_id)
        met = None if value is None else (value <= limit if comparison == "<=" else value >= limit)
        rows.append({"id": target_id, "what": what, "target": f"{comparison} {limit:g}", "measured": value,
                     "met": met})
    return rows


def _us(value):
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:,.1f} ms"
    return f"{value:,.1f} us"


def _table(header, rows, right=()):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]

    def line(row):
        return "  ".join(str(v).rjust(w) if i in right else str(v).ljust(w)
                         for i, (v, w) in enumerate(zip(row, widths))).rstrip()
    return [line(header), line(["-" * w for w in widths])] + [line(row) for row in rows]


def latency_lines(section: dict) -> list:
    shape = "x".join(str(v) for v in section["input_shape"])
    lines = [f"model {section['model']} ({section['config_name']}, input {shape}, {section['flops'] / 1e6:.2f} "
             f"MFLOP, {section['params']:,} params; weights: {section['weights']})"]
    header = ("engine", "max |diff|", "median", "p10-p90", "vs ORT best", "GFLOP/s", "% peak", "% used cores")
    rows, notes = [], []
    for row in section["engines"]:
        if row["status"] == "missing":
            rows.append((row["engine"], "-", "missing", "-", "", "", "", ""))
            if row["reason"] not in notes:
                notes.append(row["reason"])
            continue
        diff = f"{row['max_abs_diff']:.1e}"
        if row["status"] == "disagrees":
            rows.append((row["engine"], diff, "DISAGREES", f"(tolerance {section['tolerance']:g}; not timed)",
                         "", "", "", ""))
            continue
        ratio = row.get("ratio_to_ort_best")
        rows.append((row["engine"], diff, _us(row["median_us"]), f"{_us(row['p10_us'])} - {_us(row['p90_us'])}",
                     f"{ratio:.2f}x" if ratio is not None else "-", f"{row['gflops']:.1f}",
                     f"{100 * row['peak_share']:.1f}" if row.get("peak_share") is not None else "-",
                     f"{100 * row['peak_share_of_used_cores']:.1f}"
                     if row.get("peak_share_of_used_cores") is not None else "-"))
    return (lines + ["  " + text for text in _table(header, rows, right=(1, 2, 4, 5, 6, 7))]
            + [f"  missing: {note}" for note in notes])


def format_report(result: dict) -> str:
    machine = result["machine"]
    out = [f"stream-cnn bench  ({result['command']})",
           f"machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['clock_mhz']:.0f} MHz, "
           f"flags {' '.join(machine['flags'])}",
           f"peak:    {machine['peak_derivation']}",
           "versions: " + ", ".join(f"{k} {v or 'missing'}" for k, v in machine["versions"].items())
           + f", python {machine['python']}",
           f"python environment: {machine.get('python_env') or 'not recorded'}",
           f"load average at start {machine['load_average']}, at end {result.get('load_average_end')}"]
    latency = result.get("latency")
    if latency:
        out += ["", f"LATENCY (batch 1; {latency['rounds']} interleaved rounds, engine order shuffled per round; "
                f"agreement "
                f"against the NumPy reference on {latency['models'][0]['agreement_inputs']} inputs)"
                if latency["models"] else "LATENCY"]
        for section in latency["models"]:
            out += [""] + latency_lines(section)
    startup = result.get("startup")
    if startup:
        warm = startup["warm"]["median"]
        out += ["", f"START-UP (model {startup['model']}, fresh python process, median of {startup['warm']['runs']}; "
                f"stream_cnn bytecode {startup.get('python_bytecode', 'as found')})",
                f"  warm cache: import {warm['import_s']:.3f} s + load {warm['load_s']:.3f} s + first forward "
                f"{warm['first_forward_s']:.3f} s = {warm['to_first_prediction_s']:.3f} s "
                f"(from spawn, with interpreter start: {warm['spawn_to_first_prediction_s']:.3f} s)"]
        hidden = (startup.get("warm_without_numba_optional") or {}).get("median")
        if hidden:
            installed = ", ".join(startup.get("numba_optional_installed") or []) or "none of them"
            out.append(f"  warm, with the packages Numba imports only when installed hidden (installed here: "
                       f"{installed}): {hidden['to_first_prediction_s']:.3f} s (import {hidden['import_s']:.3f} s, "
                       f"first forward {hidden['first_forward_s']:.3f} s)")
        cold = startup.get("cold")
        if cold:
            out.append(f"  empty cache: import {cold['import_s']:.3f} s + load {cold['load_s']:.3f} s + first "
                       f"forward (compiles) {cold['first_forward_s']:.3f} s = {cold['to_first_prediction_s']:.3f} s "
                       f"({cold['cache_files_written']} cache files written)")
        else:
            out.append(f"  empty cache: {startup.get('cold_skipped', 'not measured')}")
    pipeline = result.get("pipeline")
    if pipeline:
        fps, clip, cpu = pipeline["fps"], pipeline["clip"], pipeline["cpu_ms_per_frame"]
        out += ["", f"PIPELINE (model {pipeline['model']}; clip {clip['frames']} frames {clip['width']}x"
                f"{clip['height']} {clip['fps']:g} fps {clip['codec']}; median of {pipeline['repeats']}; ratios per "
                f"repetition)"]
        rows = [("decode-only", "decode_only", ""), ("decode-only 1 thread", "decode_only_1thread",
                                                     "  (how the pipeline's source decodes)"),
                ("video", "video", f"  = {100 * pipeline['video_vs_decode']:.1f}% of decode-only"),
                ("encode-only", "encode_only", ""),
                ("video --output", "video_output", f"  = {100 * pipeline['video_output_vs_encode']:.1f}% of "
                                                   f"encode-only")]
        for label, key, note in rows:
            out.append(f"  {label:<21}{fps[key]:8.1f} fps  {cpu[key]:6.2f} ms CPU/frame{note}")
    alloc = result.get("alloc")
    if alloc:
        out += ["", f"ALLOCATION ({alloc['method']})"]
        for row in alloc["models"]:
            forward = row["forward"]
            text = (f"  {row['model']:<14} forward: {forward['net_bytes_per_pass']:g} B/pass net, peak "
                    f"{forward['peak_bytes_above_start']} B over {forward['passes']} passes")
            if "frame" in row:
                frame = row["frame"]
                text += (f"; preprocess+forward per frame: {frame['net_bytes_per_pass']:g} B net, peak "
                         f"{frame['peak_bytes_above_start']:,} B")
            out.append(text)
    for item in result.get("errors", []):
        out += ["", f"SECTION FAILED: {item['section']}: {item['error']}"]
    out += ["", "TARGETS"]
    for target in result["targets"]:
        value = target["measured"]
        shown = "not measured" if value is None else f"{value:.3g}"
        verdict = "-" if target["met"] is None else "met" if target["met"] else "NOT MET"
        out.append(f"  {target['what']:<58} {target['target']:>7}  {shown:>12}  {verdict}")
    return "\n".join(out)
