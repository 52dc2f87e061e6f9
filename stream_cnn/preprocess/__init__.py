"""Frame -> model input: colour, resize / centre-crop / letterbox, ROI, normalisation (``frame``), and the
digit finder for MNIST-style models (``digits``)."""
from stream_cnn.preprocess.frame import (FramePreprocessor, Region, centre_crop, clip_roi, letterbox_placement,
                                         parse_roi)

__all__ = ["FramePreprocessor", "Region", "centre_crop", "clip_roi", "letterbox_placement", "parse_roi"]
