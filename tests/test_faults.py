"""Every fault the issue lists, each ending in one clear line and its exit code, with the outputs written so far
still valid: no camera (2), missing / non-video / truncated-before-start files (3), truncated or corrupt files and
cameras that stop or freeze mid-stream (4), unwritable outputs (6, before processing), Ctrl-C (130)."""
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
from click.testing import CliRunner

from helpers import REPO, make_clip, read_jsonl, run_subprocess, synthetic_frame
from stream_cnn.cli import main
from stream_cnn.errors import StreamInterrupted
from stream_cnn.model import load_model
from stream_cnn.pipeline import Pipeline, PipelineOptions
from stream_cnn.sinks import JsonlSink, VideoFileSink, count_playable_frames
from stream_cnn.sources import LiveSource

@pytest.fixture(scope="module")
def avi_clip(tmp_path_factory):
    # MJPG in AVI: every frame is independent, so a cut file still decodes up to the cut.
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.avi", count=40, fourcc="MJPG")


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("stream-cnn:")]
    assert len(lines) >= 1 and "Traceback" not in stderr
    return lines[-1]


def test_no_camera_at_index_exit_2_one_line(tiny_model):
    result = run_subprocess(["webcam", "--device", "7", "--model", tiny_model, "--no-display"])
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "camera 7" in line and "--device" in line and "stream-cnn video" in line
    assert result.stderr.strip() == line                 # nothing else: no OpenCV warnings, no traceback


def test_no_camera_at_device_path(tiny_model):
    result = invoke(["webcam", "--device", "/dev/video99", "--model", tiny_model, "--no-display"])
    assert result.exit_code == 2 and "/dev/video99" in result.output


@pytest.mark.parametrize("name, content, exit_code, message", [
    ("missing.mp4", None, 3, "not found"),
    ("text.mp4", b"plain text, not a video\n" * 50, 3, "cannot open"),
    ("empty.avi", b"", 3, "cannot open"),
])
def test_unusable_files_exit_3(tmp_path, tiny_model, name, content, exit_code, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run_subprocess(["video", path, "--model", tiny_model, "--no-display", "--jsonl", tmp_path / "p.jsonl"])
    assert result.returncode == exit_code
    line = one_error_line(result.stderr)
    assert message in line and name in line
    assert result.stderr.strip() == line                 # FFmpeg's own complaints are kept off the terminal
    assert not (tmp_path / "p.jsonl").exists()           # nothing processed, nothing written


def test_truncated_mp4_cannot_open_and_says_why(tmp_path, tiny_model):
    clip = make_clip(tmp_path / "clip.mp4", count=30)
    data = open(clip, "rb").read()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    result = invoke(["video", tmp_path / "cut.mp4", "--model", tiny_model, "--no-display"])
    assert result.exit_code == 3 and "truncated" in result.output


def test_truncated_file_processes_what_decodes_and_keeps_outputs_valid(tmp_path, tiny_model, avi_clip):
    data = open(avi_clip, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    result = run_subprocess(["video", cut, "--model", tiny_model, "--no-display", "--jsonl", tmp_path / "p.jsonl",
                             "--output", tmp_path / "a.mp4"])
    assert result.returncode == 4
    records = read_jsonl(tmp_path / "p.jsonl")
    decoded = len(records)
    assert 10 < decoded < 40 and [r["frame"] for r in records] == list(range(decoded))
    line = one_error_line(result.stderr)
    assert f"stopped at frame {decoded} of 40" in line and "truncated or corrupt" in line
    assert count_playable_frames(tmp_path / "a.mp4") == decoded
    assert f"{decoded} frames" in result.stdout          # the summary still printed


def test_corrupt_middle_is_skipped_reported_and_the_rest_processed(tmp_path, tiny_model):
    clip = make_clip(tmp_path / "clip.mp4", count=60)
    data = bytearray(open(clip, "rb").read())
    start = len(data) // 3
    for offset in range(start, start + 2000):           # garble a stretch of frame data in the middle
        data[offset] = (data[offset] * 7 + 13) % 256
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    result = invoke(["video", tmp_path / "bad.mp4", "--model", tiny_model, "--no-display",
                     "--jsonl", tmp_path / "p.jsonl", "--output", tmp_path / "a.avi"])
    assert result.exit_code == 4
    assert "corrupt" in result.output
    records = read_jsonl(tmp_path / "p.jsonl")
    assert 30 < len(records) < 60                        # decoding resumed after the damage
    assert count_playable_frames(tmp_path / "a.avi") == len(records)


class DyingCamera:
    """Delivers ``good`` distinct frames, then read() fails forever (an unplugged USB camera)."""

    def __init__(self, good):
        self.remaining = good
        self.index = 0

    def isOpened(self):
        return True

    def read(self):
        time.sleep(0.01)
        if self.remaining <= 0:
            return False, None
        self.remaining -= 1
        self.index += 1
        return True, synthetic_frame(self.index)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0)

    def release(self):
        pass


def test_camera_that_stops_delivering_stops_cleanly_with_outputs_finalised(tmp_path, tiny_model):
    cameras = [DyingCamera(15)]

    def factory(device):
        return cameras[0] if len(cameras) == 1 and not cameras.append(None) else DyingCamera(0)

    source = LiveSource(0, stall_timeout=0.5, capture_factory=factory)
    model = load_model(tiny_model)
    video = VideoFileSink(str(tmp_path / "a.mp4"), 30)
    jsonl = JsonlSink(str(tmp_path / "p.jsonl"))
    printed = []
    pipeline = Pipeline(source, model, PipelineOptions(display=False), video=video, jsonl=jsonl,
                        echo=lambda text, err=False: printed.append(text))
    started = time.perf_counter()
    with pytest.raises(StreamInterrupted, match="camera 0 stopped delivering frames") as info:
        pipeline.run()
    assert time.perf_counter() - started < 10            # bounded by the stall timeout, never a hang
    assert info.value.exit_code == 4
    assert source.read_failures > 2                      # retried with backoff before giving up
    records = read_jsonl(tmp_path / "p.jsonl")
    assert 1 <= len(records) <= 15
    assert count_playable_frames(tmp_path / "a.mp4") == len(records)
    assert any("ended by a source fault" in text for text in printed)


def test_frozen_clip_as_camera_stops_with_a_message(tmp_path, tiny_model):
    clip = make_clip(tmp_path / "frozen.avi", count=90, fps=60, fourcc="MJPG", frozen_tail=70)
    result = run_subprocess(["webcam", "--device", clip, "--model", tiny_model, "--no-display",
                             "--stall-timeout", "0.3", "--output", tmp_path / "a.mp4", "--jsonl", tmp_path / "p.jsonl"])
    assert result.returncode == 4
    assert "frozen" in one_error_line(result.stderr)
    records = read_jsonl(tmp_path / "p.jsonl")
    assert 1 <= len(records) <= 20
    assert count_playable_frames(tmp_path / "a.mp4") == len(records)


@pytest.mark.parametrize("flag", ["--output", "--jsonl"])
def test_unwritable_output_fails_before_processing(tmp_path, tiny_model, avi_clip, flag):
    target = tmp_path / "no-such-dir" / ("out.mp4" if flag == "--output" else "out.jsonl")
    result = run_subprocess(["video", avi_clip, "--model", tiny_model, "--no-display", flag, target,
                             "--record", tmp_path / "rec"])
    assert result.returncode == 6
    line = one_error_line(result.stderr)
    assert "does not exist" in line and str(target) in line
    assert result.stdout == ""                           # no summary: nothing was processed
    assert not (tmp_path / "rec").exists()


def test_output_path_that_is_a_directory(tmp_path, tiny_model, avi_clip):
    result = invoke(["video", avi_clip, "--model", tiny_model, "--no-display", "--output", tmp_path / "x.mp4",
                     "--jsonl", tmp_path])
    assert result.exit_code == 6 and "is a directory" in result.output


@pytest.mark.parametrize("signal_number, exit_code, said", [(signal.SIGINT, 130, "Ctrl-C"),
                                                             (signal.SIGTERM, 143, "SIGTERM")])
def test_ctrl_c_finalises_outputs_and_prints_the_summary(tmp_path, tiny_model, signal_number, exit_code, said):
    # A 20 s clip replayed as a camera at 30 fps: long enough to interrupt it in the middle.
    clip = make_clip(tmp_path / "long.mp4", count=600)
    jsonl = tmp_path / "p.jsonl"
    # Compile the model's kernels into the on-disk Numba cache first: on a cold cache and a busy machine the
    # child's compile can outlast the 20 s clip (a live source keeps playing meanwhile), and the stream would end
    # on its own before the signal.
    load_model(tiny_model).forward()
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_cnn", "webcam", "--device", clip, "--model", tiny_model, "--no-display",
         "--output", str(tmp_path / "a.mp4"), "--jsonl", str(jsonl)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO),
        # A shell starts background jobs with SIGINT ignored, and Python then installs no Ctrl-C handler: give the
        # child the default disposition a terminal's foreground job has, whatever started the test run.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 10:
                break
            time.sleep(0.1)
        else:
            pytest.fail("fewer than 10 frames processed in 60 s: nothing to interrupt")
        assert process.poll() is None, "the stream ended before it could be interrupted"
        process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == exit_code, stderr
    assert said in one_error_line(stderr) and "outputs finalised" in stderr
    assert f"ended by {said}" in stdout and "inference latency ms" in stdout
    records = read_jsonl(jsonl)
    assert 10 <= len(records) < 600
    # The .mp4 index is written on release: only a finalised file plays back, with every frame processed.
    assert count_playable_frames(tmp_path / "a.mp4") == len(records)


def test_no_display_is_a_message_not_a_crash(tmp_path, tiny_model, avi_clip):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = run_subprocess(["webcam", "--device", avi_clip, "--model", tiny_model, "--max-frames", 5,
                             "--jsonl", tmp_path / "p.jsonl"], env=env)
    assert result.returncode == 0, result.stderr
    assert "no display" in result.stderr and "--no-display" in result.stderr
    assert len(read_jsonl(tmp_path / "p.jsonl")) == 5


def test_bad_model_path_is_a_model_error(tmp_path, avi_clip):
    result = invoke(["video", avi_clip, "--model", tmp_path / "nope.toml", "--no-display"])
    assert result.exit_code == 5


def test_an_interrupt_waits_until_the_frames_outputs_are_all_written():
    """A signal arriving between a frame's JSONL line and its video frame is raised only after both are written
    (it once left a JSONL line with no frame in the finalised video); outside that stretch it is raised at once."""
    from stream_cnn.pipeline.runner import _Interrupts, _Terminated

    interrupts = _Interrupts()
    with pytest.raises(KeyboardInterrupt):
        interrupts.handle(signal.SIGINT, None)
    interrupts.holding = True
    interrupts.handle(signal.SIGTERM, None)          # held, not raised
    with pytest.raises(_Terminated):
        interrupts.release()
    assert not interrupts.holding and interrupts.held is None
    interrupts.release()                              # nothing held: returns
