"""`stream-cnn bench`: the benchmark command (see stream_cnn.bench)."""
import json
import sys

import click

from stream_cnn.errors import StreamCnnError, UsageError


def _sections(text):
    from stream_cnn.bench.runner import SECTIONS

    if not text:
        return SECTIONS
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in SECTIONS]
    if unknown or not chosen:
        raise UsageError(f"--only {text!r}: choose from {', '.join(SECTIONS)} (comma-separated)")
    return tuple(section for section in SECTIONS if section in chosen)


def _json_safe(value):
    """inf / nan (an engine that crashed has an infinite difference) are not JSON; write them as strings."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


@click.command("bench")
@click.option("--models", "models_text", default="digits,mini_xception,rgb", show_default=True,
              metavar="NAME[,NAME...]",
              help="digits, mini_xception, rgb (configs/mobilenet_tiny.toml), or bundled names / .toml paths. "
                   "The first one is used for the start-up and pipeline sections.")
@click.option("--rounds", type=click.IntRange(1, None), default=None,
              help="Interleaved timing rounds per model [default: 30, 5 with --quick].")
@click.option("--only", "only_text", default=None, metavar="SECTION[,SECTION...]",
              help="Run only these sections: latency, startup, pipeline, alloc.")
@click.option("--quick", is_flag=True,
              help="Short run for smoke tests: few rounds, a 90-frame clip, no empty-cache compile.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (progress on stderr).")
def bench(models_text, rounds, only_text, quick, as_json):
    """Benchmark stream-cnn against ONNX Runtime (1 and 2 threads), OpenCV dnn and the NumPy reference.

    All engines run the same weights (the model exported to ONNX); their outputs are checked against the NumPy
    reference first, and an engine that disagrees is reported and not timed. Latency is measured at batch 1 with
    the engines interleaved in rounds; the report gives the median, p10-p90, the ratio to ONNX Runtime's best
    setting, GFLOP/s and the share of the machine's derived fp32 peak. Then start-up time (fresh process, warm
    and empty Numba cache), `stream-cnn video` fps against decode-only / encode-only loops of a generated clip,
    and bytes allocated per forward pass; finally the targets, met or not.
    """
    from stream_cnn.bench.models import parse_model_list
    from stream_cnn.bench.report import format_report
    from stream_cnn.bench.runner import BenchSettings, run_bench

    settings = BenchSettings.make(parse_model_list(models_text), rounds, quick, _sections(only_text))
    command = "stream-cnn " + " ".join(["bench"] + sys.argv[2:]) if len(sys.argv) > 1 and sys.argv[1] == "bench" \
        else "stream-cnn bench"

    def log(text):
        click.echo(text, err=True)

    result = run_bench(settings, command, log=log)
    if as_json:
        click.echo(json.dumps(_json_safe(result), indent=2))
    else:
        click.echo(format_report(result))
    if result["errors"]:
        failed = "; ".join(f"{item['section']}: {item['error']}" for item in result["errors"])
        raise StreamCnnError(f"{len(result['errors'])} benchmark section(s) failed ({failed})")


commands = [bench]
