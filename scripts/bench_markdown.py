#!/usr/bin/env python3
"""Render the JSON of `stream-cnn bench --json` as the Markdown tables of BENCHMARKS.md.

    stream-cnn bench --json > bench.json
    python scripts/bench_markdown.py bench.json > tables.md
"""
import json
import sys


def fmt_us(value):
    if value is None:
        return "-"
    return f"{value / 1000:,.2f} ms" if value >= 10_000 else f"{value:,.1f} µs"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_section(result):
    m = result["machine"]
    versions = ", ".join(f"{name} {version or 'missing'}" for name, version in m["versions"].items())
    return "\n".join([
        "| | |", "|---|---|",
        f"| CPU | {m['cpu_model']} (vendor {m['vendor']}, family {m['cpu_family']}), {m['cores']} cores, "
        f"{m['clock_mhz']:.0f} MHz |",
        f"| flags | {' '.join(m['flags'])} |",
        f"| fp32 peak | {m['peak_derivation']} |",
        f"| versions | python {m['python']}, {versions} |",
        f"| load average | {tuple(m['load_average'])} at start, {tuple(result['load_average_end'])} at end |",
        f"| command | `{result['command']}` |",
    ])


def latency_section(result):
    out = []
    for section in result["latency"]["models"]:
        shape = "×".join(str(v) for v in section["input_shape"])
        out.append(f"**{section['model']}** — input {shape}, {section['flops'] / 1e6:.2f} MFLOP, "
                   f"{section['params']:,} params; weights: {section['weights']}\n")
        rows = []
        for row in section["engines"]:
            if row["status"] == "missing":
                rows.append([row["engine"], "-", "missing", row["reason"], "", "", ""])
            elif row["status"] == "disagrees":
                rows.append([row["engine"], f"{float(row['max_abs_diff']):.1e}", "**disagrees**", "not timed", "",
                             "", ""])
            else:
                ratio = row.get("ratio_to_ort_best")
                rows.append([row["engine"], f"{row['max_abs_diff']:.1e}", fmt_us(row["median_us"]),
                             f"{fmt_us(row['p10_us'])} – {fmt_us(row['p90_us'])}",
                             f"{ratio:.2f}×" if ratio is not None else "-", f"{row['gflops']:.1f}",
                             f"{100 * row['peak_share']:.1f}%"])
        out.append(table(["engine", "max abs diff", "median", "p10 – p90", "vs ORT best", "GFLOP/s",
                          "of machine peak"], rows))
        out.append("")
    return "\n".join(out)


def startup_section(result):
    s = result["startup"]
    warm = s["warm"]["median"]
    rows = [["warm cache (median of %d)" % s["warm"]["runs"], f"{warm['import_s']:.3f}", f"{warm['load_s']:.3f}",
             f"{warm['first_forward_s']:.3f}", f"**{warm['to_first_prediction_s']:.3f}**",
             f"{warm['spawn_to_first_prediction_s']:.3f}"]]
    hidden = (s.get("warm_without_scipy") or {}).get("median")
    if hidden:
        rows.append(["warm cache, SciPy hidden (diagnostic)", f"{hidden['import_s']:.3f}", f"{hidden['load_s']:.3f}",
                     f"{hidden['first_forward_s']:.3f}", f"{hidden['to_first_prediction_s']:.3f}",
                     f"{hidden['spawn_to_first_prediction_s']:.3f}"])
    cold = s.get("cold")
    if cold:
        rows.append(["empty cache (fresh NUMBA_CACHE_DIR)", f"{cold['import_s']:.3f}", f"{cold['load_s']:.3f}",
                     f"{cold['first_forward_s']:.3f}", f"**{cold['to_first_prediction_s']:.3f}**",
                     f"{cold['spawn_to_first_prediction_s']:.3f}"])
    return (f"Model `{s['model']}`; seconds.\n\n"
            + table(["", "import", "load", "first forward", "import+load+first", "spawn → first prediction"], rows))


def pipeline_section(result):
    p = result["pipeline"]
    fps, clip, cpu = p["fps"], p["clip"], p["cpu_ms_per_frame"]
    rows = [["decode-only (`cv2.VideoCapture.read` loop, OpenCV defaults)", "decode_only", ""],
            ["decode-only, 1 decoder thread (as the pipeline's source opens files)", "decode_only_1thread",
             "diagnostic"],
            ["`stream-cnn video` (no output)", "video", f"**{100 * p['video_vs_decode']:.1f}%** of decode-only"],
            ["encode-only (decode + `cv2.VideoWriter` mp4v)", "encode_only", ""],
            ["`stream-cnn video --output`", "video_output",
             f"**{100 * p['video_output_vs_encode']:.1f}%** of encode-only"]]
    rows = [[label, f"{fps[key]:.1f}", f"{cpu[key]:.2f}", note] for label, key, note in rows]
    return (f"Model `{p['model']}`; clip {clip['frames']} frames {clip['width']}×{clip['height']} at "
            f"{clip['fps']:g} fps ({clip['codec']}); median of {p['repeats']} back-to-back repetitions, ratios taken "
            f"per repetition; the runner timed from opening the clip to the end of `Pipeline.run()` (output "
            f"finalised and checked).\n\n" + table(["run", "frames/s", "CPU ms/frame (all threads)", "ratio"], rows))


def alloc_section(result):
    rows = []
    for row in result["alloc"]["models"]:
        forward, frame = row["forward"], row.get("frame")
        rows.append([row["model"], f"{forward['net_bytes_per_pass']:g}", f"{forward['peak_bytes_above_start']}",
                     f"{frame['net_bytes_per_pass']:.1f}" if frame else "-",
                     f"{frame['peak_bytes_above_start']:,}" if frame else "-"])
    return (result["alloc"]["method"] + ".\n\n"
            + table(["model", "forward: B/pass net", "forward: peak B", "preprocess+forward: B/frame net",
                     "preprocess+forward: peak B"], rows))


def targets_section(result):
    rows = []
    for target in result["targets"]:
        value = target["measured"]
        verdict = "-" if target["met"] is None else "met" if target["met"] else "**not met**"
        rows.append([target["what"], target["target"], "not measured" if value is None else f"{value:.3g}",
                     verdict])
    return table(["target", "limit", "measured", ""], rows)


def main(path):
    with open(path) as handle:
        result = json.load(handle)
    parts = [("Machine", machine_section(result))]
    if result.get("latency"):
        parts.append(("Latency (batch 1)", latency_section(result)))
    if result.get("startup"):
        parts.append(("Start-up", startup_section(result)))
    if result.get("pipeline"):
        parts.append(("Pipeline", pipeline_section(result)))
    if result.get("alloc"):
        parts.append(("Allocation", alloc_section(result)))
    for item in result.get("errors", []):
        parts.append((f"Section failed: {item['section']}", item["error"]))
    parts.append(("Targets", targets_section(result)))
    print("\n\n".join(f"### {title}\n\n{body}" for title, body in parts))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bench_markdown.py BENCH.json")
    main(sys.argv[1])
