"""The on-screen window: cv2.imshow from the main thread only (GUI toolkits are not thread-safe).

Keys: q or Esc quits, space pauses / resumes, s saves a snapshot PNG, f toggles the feature-map panel.

Before opening a window on Linux we check that a display is actually reachable: with no X server, OpenCV's Qt
backend aborts the whole process (not an exception we could catch), so the check has to come first.
"""
from __future__ import annotations

import os
import socket
import sys
import time

import cv2
import numpy as np

KEY_ACTIONS = {ord("q"): "quit", 27: "quit", ord(" "): "pause", ord("s"): "snapshot", ord("f"): "features"}


def _x_display_reachable(display: str) -> bool:
    """Is there an X server at ``display`` (":1", "unix:0", "localhost:10.0")? Local socket or TCP probe."""
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        if os.path.exists(f"/tmp/.X11-unix/X{number}"):
            return True
        host = "localhost" if host == "" else host
        if host == "unix":
            return False
    try:
        with socket.create_connection((host, 6000 + int(number)), timeout=1.0):
            return True
    except OSError:
        return False


def display_problem() -> str | None:
    """Why no window can be shown here, or None if one can (on macOS / Windows we assume a desktop)."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("WAYLAND_DISPLAY"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    if not _x_display_reachable(display):
        return f"no X server answers at DISPLAY={display}"
    return None


class WindowSink:
    """Shows annotated frames and turns key presses into actions ("quit", "pause", "snapshot", "features")."""

    def __init__(self, title: str = "stream-cnn", snapshot_dir: str = "."):
        self.title = title
        self.snapshot_dir = snapshot_dir
        self.snapshots: list[str] = []
        self._opened = False

    def open(self) -> str | None:
        """Create the window; returns None on success or a one-line reason it cannot be shown."""
        problem = display_problem()
        if problem is not None:
            return problem
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as err:
            return f"cannot open a window: {str(err).strip().splitlines()[-1]}"
        self._opened = True
        return None

    def show(self, frame: np.ndarray | None, wait_ms: int = 1) -> str | None:
        """Display ``frame`` (None: keep what is shown) and poll the keyboard; returns an action name or None."""
        try:
            if frame is not None:
                cv2.imshow(self.title, frame)
            key = cv2.waitKey(max(1, wait_ms))
        except cv2.error:
            return "quit"
        if key == -1:
            # A window closed with its title-bar button reports itself invisible; treat that as quit.
            try:
                if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    return "quit"
            except cv2.error:
                return "quit"
            return None
        return KEY_ACTIONS.get(key & 0xFF)

    def save_snapshot(self, frame: np.ndarray) -> str:
        name = time.strftime("stream-cnn-%Y%m%d-%H%M%S")
        path = os.path.join(self.snapshot_dir, f"{name}-{len(self.snapshots):03d}.png")
        cv2.imwrite(path, frame)
        self.snapshots.append(path)
        return path

    def close(self):
        if self._opened:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._opened = False
