"""Temporal smoothing of class probabilities (``--smooth N``): a moving average over the last N predictions, so
the label does not flicker between two close classes on a noisy camera."""
from __future__ import annotations

import numpy as np


class ProbabilitySmoother:
    """Moving average of the last ``window`` probability vectors, kept in a ring buffer (no per-frame allocation)."""

    def __init__(self, window: int, n_classes: int):
        if window < 1:
            raise ValueError("smoothing window must be >= 1")
        self.window = int(window)
        self._history = np.zeros((self.window, n_classes), np.float64)
        self._sum = np.zeros(n_classes, np.float64)
        self._mean = np.zeros(n_classes, np.float32)
        self._count = 0
        self._next = 0

    def reset(self):
        """Forget the history, e.g. when the digit leaves the frame, so an old class does not linger."""
        self._history.fill(0.0)
        self._sum.fill(0.0)
        self._count = 0
        self._next = 0

    def update(self, probs: np.ndarray) -> np.ndarray:
        """Add one prediction; return the mean of the last ``window`` (a buffer owned by the smoother)."""
        slot = self._history[self._next]
        self._sum -= slot
        slot[:] = probs
        self._sum += slot
        self._next = (self._next + 1) % self.window
        self._count = min(self._count + 1, self.window)
        np.divide(self._sum, self._count, out=self._mean, casting="unsafe")
        return self._mean
