"""Wiring: open the model, the source and the sinks in an order that fails early, then run the stream loop.

``run_stream(StreamRequest(...))`` is what the CLI commands call; tests and other code can call it too, or build a
``Pipeline`` directly with their own source / model objects.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

from stream_cnn.errors import SourceError
from stream_cnn.pipeline.runner import Pipeline, PipelineOptions, ProgressBar, RateMeter, Summary
from stream_cnn.preprocess import parse_roi

DEMO_CLIP = "demo.mp4"


@dataclass
class StreamRequest:
    kind: str                        # "camera" | "file"
    source: str
    model_name: str = "digits"
    output: str | None = None
    jsonl: str | None = None
    record_dir: str | None = None
    no_display: bool = False
    topk: int = 3
    smooth: int = 0
    features: bool = False
    roi: str | None = None
    max_frames: int | None = None
    stride: int = 1
    progress: bool | None = None
    stall_timeout: float = 5.0
    realtime: bool = False


def demo_clip_path() -> str:
    path = str(resources.files("stream_cnn").joinpath("assets", DEMO_CLIP))
    if not os.path.isfile(path):
        raise SourceError(f"the bundled demo clip is missing ({path}); reinstall stream-cnn, or run "
                          f"`stream-cnn video FILE` on a clip of your own")
    return path


def run_stream(request: StreamRequest, echo=None, model=None) -> Summary:
    """Validate, open everything (outputs checked before any frame is processed), run, return the summary.
    ``echo`` replaces click.echo for the summary and notes (e.g. to keep a benchmark quiet); ``model`` is an
    already loaded Model to use instead of loading ``request.model_name``. This is the runner the CLI uses,
    including its choice of source (the luma plane when nothing shows the picture), so benchmarks should call
    it rather than build a Pipeline over ``open_file`` themselves."""
    from stream_cnn.model import load_model
    from stream_cnn.sinks import JsonlSink, Recorder, VideoFileSink, check_writable_file
    from stream_cnn.sources import open_camera, open_file
    from stream_cnn.sources.capture import FILE_WAKE_FRAMES

    roi = parse_roi(request.roi)
    # Output paths first: a typo in --output must not cost a whole run.
    if request.output:
        check_writable_file(request.output, "video")
    if request.jsonl:
        check_writable_file(request.jsonl, "JSONL")
    if model is None:
        model = load_model(request.model_name)
    if request.kind == "camera":
        source = open_camera(request.source, stall_timeout=request.stall_timeout)
    else:
        # Nothing will show or store the picture and the model wants gray: read the decoder's luma plane and skip
        # its colour conversion (~0.07 ms a 640x480 frame) and the BGR -> gray one after it. This holds for the
        # digit finder too: it gets the luma mapped to gray by the source's fitted LUT, within a grey level of
        # cvtColor's (on the benchmark clip and the demo clip every label is the same, boxes within 2 px).
        config = model.config
        luma = (not (request.output or request.record_dir) and request.no_display
                and str(config.color).lower() == "gray")
        source = open_file(request.source, realtime=request.realtime, stall_timeout=request.stall_timeout,
                           luma=luma, wake_frames=FILE_WAKE_FRAMES if request.no_display else 1)
    video = jsonl = recorder = None
    try:
        video = VideoFileSink(request.output, source.fps) if request.output else None
        jsonl = JsonlSink(request.jsonl) if request.jsonl else None
        recorder = (Recorder(request.record_dir, source.fps, source=source.name, model=request.model_name)
                    if request.record_dir else None)
        options = PipelineOptions(
            topk=request.topk, smooth=request.smooth, features=request.features, display=not request.no_display,
            max_frames=request.max_frames, stride=request.stride, progress=request.progress, roi=roi,
            title=f"stream-cnn: {os.path.basename(str(source.name))}")
        extra = {"echo": echo} if echo is not None else {}
        pipeline = Pipeline(source, model, options, video=video, jsonl=jsonl, recorder=recorder, **extra)
    except BaseException:
        source.close()
        if jsonl is not None:
            jsonl.close()
        raise
    return pipeline.run()


__all__ = ["Pipeline", "PipelineOptions", "ProgressBar", "RateMeter", "StreamRequest", "Summary", "demo_clip_path",
           "run_stream"]
