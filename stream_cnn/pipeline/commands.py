"""`stream-cnn webcam`, `stream-cnn video`, `stream-cnn demo`: thin click shells over ``pipeline.run_stream``."""
from __future__ import annotations

import os

import click

from stream_cnn.pipeline import StreamRequest, demo_clip_path, run_stream

DEFAULT_MODEL = "digits"


def _stream_options(function):
    """Options shared by webcam and video."""
    decorators = [
        click.option("--model", "model_name", default=DEFAULT_MODEL, show_default=True, metavar="NAME|PATH",
                     help="Bundled model name or path to a model .toml."),
        click.option("--output", "-o", type=click.Path(), default=None,
                     help="Write the annotated video here (.mp4, .avi, .mkv; codec falls back if needed)."),
        click.option("--jsonl", type=click.Path(), default=None,
                     help="Write one JSON object per processed frame here, flushed per frame."),
        click.option("--record", "record_dir", type=click.Path(file_okay=False), default=None,
                     help="Save the raw frames (raw.avi) and metadata.json in this directory for replay."),
        click.option("--no-display", is_flag=True, help="No window (headless)."),
        click.option("--topk", type=click.IntRange(1, None), default=3, show_default=True,
                     help="Classes shown with bars and written to the JSONL."),
        click.option("--smooth", type=click.IntRange(0, None), default=0, show_default=True, metavar="N",
                     help="Moving average of the probabilities over the last N inferences (0 = off); the "
                          "smoothed values are what is drawn and written."),
        click.option("--features", is_flag=True, help="Show the feature-map panel from the start (key f toggles)."),
        click.option("--roi", default=None, metavar="X,Y,W,H", help="Only look at this region of the frame."),
        click.option("--max-frames", type=click.IntRange(1, None), default=None,
                     help="Stop after this many frames taken from the source."),
        click.option("--stride", type=click.IntRange(1, None), default=1, show_default=True,
                     help="Run the model on every Nth frame; the others show the latest prediction."),
        click.option("--progress/--no-progress", default=None,
                     help="Progress line on stderr (default: only when stderr is a terminal)."),
        click.option("--stall-timeout", type=click.FloatRange(0.05, None), default=5.0, show_default=True,
                     metavar="SECONDS", help="How long a live source may fail or freeze before the stream stops."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _request(kind, source, realtime=False, **options) -> StreamRequest:
    return StreamRequest(kind=kind, source=source, realtime=realtime, **options)


@click.command()
@click.option("--device", "-d", default="0", show_default=True, metavar="N|/dev/videoN|URL|CLIP",
              help="Camera index, device path, stream URL, or a recorded clip replayed as a camera.")
@_stream_options
def webcam(device, **options):
    """Run the model on a live camera with the softmax drawn on the frame.

    Keys in the window: q/Esc quit, space pause, s snapshot, f feature maps.
    """
    run_stream(_request("camera", device, **options))


@click.command()
@click.argument("path", type=click.Path(dir_okay=True))
@click.option("--realtime", is_flag=True, help="Replay at the file's own frame rate, as if it were a camera.")
@_stream_options
def video(path, realtime, **options):
    """Run the model on every frame of a video file (as fast as possible unless --realtime)."""
    run_stream(_request("file", path, realtime=realtime, **options))


@click.command()
@click.option("--out-dir", type=click.Path(file_okay=False), default="stream-cnn-demo", show_default=True,
              help="Where the annotated video and the JSONL are written.")
@click.option("--model", "model_name", default=DEFAULT_MODEL, show_default=True, metavar="NAME|PATH")
@click.option("--max-frames", type=click.IntRange(1, None), default=None)
@click.option("--display", is_flag=True, help="Also show a window (the demo is headless by default).")
def demo(out_dir, model_name, max_frames, display):
    """Run the default model on the bundled clip, headless; writes annotated.mp4 and predictions.jsonl."""
    out_dir = os.path.abspath(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        from stream_cnn.errors import OutputError
        raise OutputError(f"cannot create --out-dir {out_dir}: {err.strerror or err}") from None
    run_stream(StreamRequest(
        kind="file", source=demo_clip_path(), model_name=model_name, output=os.path.join(out_dir, "annotated.mp4"),
        jsonl=os.path.join(out_dir, "predictions.jsonl"), no_display=not display, max_frames=max_frames))


commands = [webcam, video, demo]
