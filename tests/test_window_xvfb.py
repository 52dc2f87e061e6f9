"""A real window: under Xvfb, `stream-cnn webcam --device CLIP` opens its cv2 window, a screenshot of the X
screen shows the overlay (the green top bar, the darkened panel), and the program quits cleanly on q (via
xdotool, when installed) or on SIGINT."""
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from helpers import REPO, make_clip, read_jsonl
from stream_cnn.overlay import TOP_BAR_COLOR

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None,
                                reason="the Xvfb binary is not installed (Debian package xvfb; .ci/run installs it)")


@pytest.fixture
def xvfb():
    """A private X server; yields its DISPLAY string."""
    if shutil.which("import") is None:
        pytest.skip("ImageMagick `import` is not installed (Debian package imagemagick)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                              pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()   # Xvfb picks a free display and reports it when ready
        assert number.isdigit(), "Xvfb did not report a display number"
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def screenshot(display: str, path) -> np.ndarray:
    subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=30,
                   capture_output=True)
    image = cv2.imread(str(path))
    assert image is not None
    return image


def test_window_shows_the_overlay_under_xvfb(tmp_path, xvfb, tiny_model):
    model = tiny_model
    clip = make_clip(tmp_path / "clip.mp4", count=450)           # 15 s at 30 fps: plenty of time to look
    jsonl = tmp_path / "p.jsonl"
    env = dict(os.environ, DISPLAY=xvfb, QT_X11_NO_MITSHM="1")
    env.pop("WAYLAND_DISPLAY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_cnn", "webcam", "--device", clip, "--model", model, "--jsonl", str(jsonl)],
        env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 15:
                break
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.5)
        shot = screenshot(xvfb, tmp_path / "shot.png")
        green = np.all(np.abs(shot.astype(int) - np.array(TOP_BAR_COLOR)) <= 12, axis=2)
        assert green.sum() > 100, "the top-class bar is not on the screen"
        ys, xs = np.nonzero(green)
        # The bar sits in the window's top-left panel, which is darkened relative to the clip's background.
        assert xs.max() - xs.min() < 320 and ys.max() - ys.min() < 30
        # The clip itself (its white disc) is on screen too, i.e. this is the video window, not a stray colour.
        assert np.all(shot >= 245, axis=2).sum() > 500

        if shutil.which("xdotool"):
            subprocess.run(["xdotool", "search", "--name", "stream-cnn", "windowactivate", "--sync", "key", "q"],
                           env=env, timeout=15, capture_output=True)
            expected = 0
        else:
            process.send_signal(signal.SIGINT)
            expected = 130
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == expected, stderr
    assert "Traceback" not in stderr
    assert "frames from" in stdout                                # the summary was printed on the way out
    assert len(read_jsonl(jsonl)) >= 15
