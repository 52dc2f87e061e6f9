"""Drawing the softmax, stats, ROI box and feature maps on frames (cv2 only), and probability smoothing."""
from stream_cnn.overlay.draw import (BOX_COLOR, OTHER_BAR_COLOR, TOP_BAR_COLOR, Overlay, OverlayStats)
from stream_cnn.overlay.smoothing import ProbabilitySmoother

__all__ = ["BOX_COLOR", "OTHER_BAR_COLOR", "TOP_BAR_COLOR", "Overlay", "OverlayStats", "ProbabilitySmoother"]
