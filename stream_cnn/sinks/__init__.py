"""Where annotated frames and predictions go: a window, an annotated video, JSON Lines, a raw recording."""
from stream_cnn.sinks.jsonl import JsonlSink
from stream_cnn.sinks.recorder import Recorder
from stream_cnn.sinks.video import VideoFileSink, check_writable_file, count_playable_frames
from stream_cnn.sinks.window import WindowSink, display_problem

__all__ = ["JsonlSink", "Recorder", "VideoFileSink", "WindowSink", "check_writable_file", "count_playable_frames",
           "display_problem"]
