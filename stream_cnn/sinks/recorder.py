"""``--record DIR``: the raw (un-annotated) frames as a clip plus a small metadata JSON, so a session in front of
a real camera can be replayed later (``stream-cnn webcam --device DIR/raw.avi``) and in tests."""
from __future__ import annotations

import datetime
import json
import os

from stream_cnn import __version__
from stream_cnn.errors import OutputError
from stream_cnn.sinks.video import VideoFileSink

CLIP_NAME = "raw.avi"
METADATA_NAME = "metadata.json"


class Recorder:
    def __init__(self, directory: str, fps: float, source: str, model: str):
        directory = os.path.abspath(os.path.expanduser(str(directory)))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create record directory {directory}: {err.strerror or err}") from None
        self.directory = directory
        # MJPG: every frame is a key frame, so any prefix of the clip plays, and it encodes everywhere.
        self.video = VideoFileSink(os.path.join(directory, CLIP_NAME), fps, codecs=[("MJPG", ".avi")])
        self.metadata_path = os.path.join(directory, METADATA_NAME)
        self.metadata = {
            "clip": CLIP_NAME,
            "source": source,
            "model": model,
            "fps": float(fps),
            "width": None,
            "height": None,
            "frames": 0,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "stream_cnn_version": __version__,
        }
        self._write_metadata()   # now, so the directory is proven writable before processing

    def _write_metadata(self):
        try:
            with open(self.metadata_path, "w", encoding="utf-8") as handle:
                json.dump(self.metadata, handle, indent=2)
                handle.write("\n")
        except OSError as err:
            raise OutputError(f"cannot write {self.metadata_path}: {err.strerror or err}") from None

    def write(self, frame_bgr):
        """Record a raw frame; pass a frame nobody will draw on afterwards (encoding happens on a thread)."""
        if self.metadata["width"] is None:
            self.metadata["height"], self.metadata["width"] = (int(v) for v in frame_bgr.shape[:2])
        self.video.write(frame_bgr)

    def close(self, **extra) -> int:
        frames = self.video.close()
        self.metadata["frames"] = int(frames)
        self.metadata.update(extra)
        self._write_metadata()
        return frames
