"""Frame sources: video files (every frame, in order) and live cameras (newest frame only), both over
cv2.VideoCapture. See ``capture`` for the behaviour on faults."""
from stream_cnn.sources.capture import (FileSource, Frame, LiveSource, open_camera, open_file, parse_device,
                                        quiet_opencv)

__all__ = ["FileSource", "Frame", "LiveSource", "open_camera", "open_file", "parse_device", "quiet_opencv"]
