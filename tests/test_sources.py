"""Frame sources: files deliver every frame in order; live sources keep the newest frame, count drops, skip
frozen repeats, retry a failing device with backoff and stop within a bounded time; cameras that do not exist
give a one-line error with exit code 2."""
import time

import cv2
import numpy as np
import pytest

from stream_cnn.errors import CameraNotFoundError, SourceError, StreamInterrupted
from stream_cnn.preprocess.frame import LUMA_TO_GRAY
from stream_cnn.sources import FileSource, LiveSource, open_camera, open_file, parse_device
from stream_cnn.sources.capture import luma_mapping, open_decoder

WIDTH, HEIGHT = 96, 72


def numbered_frame(index: int) -> np.ndarray:
    """A frame whose index can be read back after lossy compression: the mean of the blue channel."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[:, :, 0] = index * 6   # indices stay below 42 in these tests
    frame[:, :, 1] = 40
    cv2.putText(frame, str(index), (4, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    return frame


def write_clip(path, count, fps=30.0, fourcc="MJPG", frozen_tail=0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(count):
        writer.write(numbered_frame(min(i, count - 1 - frozen_tail)))
    writer.release()
    return str(path)


def decoded_index(frame: np.ndarray) -> int:
    # Only the blue channel's flat background carries the index; the text corner is skipped.
    return int(round(float(frame[60:, 60:, 0].mean()) / 6))


def read_all(source, limit=10_000):
    frames = []
    source.start()
    try:
        while len(frames) < limit:
            frame = source.read(timeout=0.2)
            if frame is None:
                break
            frames.append(frame)
    finally:
        source.close()
    return frames


def test_file_source_delivers_every_frame_in_order(tmp_path):
    path = write_clip(tmp_path / "clip.avi", 25)
    source = open_file(path)
    assert isinstance(source, FileSource) and source.total_frames == 25 and source.size == (WIDTH, HEIGHT)
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(25))
    assert [decoded_index(f.image) for f in frames] == list(range(25))
    assert frames[10].time_s == pytest.approx(10 / 30.0)
    assert source.stop_reason is None and source.dropped == 0


def test_file_source_is_not_outrun_by_a_slow_consumer(tmp_path):
    # The decode thread runs ahead only as far as its queue; nothing is skipped while the consumer is slow.
    path = write_clip(tmp_path / "clip.avi", 30)
    source = open_file(path).start()
    indices = []
    while (frame := source.read(timeout=0.2)) is not None:
        indices.append(frame.index)
        if len(indices) < 5:
            time.sleep(0.05)
    source.close()
    assert indices == list(range(30))


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"this is not a video at all\n" * 20, "cannot open"),
])
def test_missing_or_non_video_file_is_a_source_error(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        open_file(str(path))
    assert info.value.exit_code == 3 and "\n" not in str(info.value)


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="directory"):
        open_file(str(tmp_path))


def test_truncated_file_reports_where_it_stopped(tmp_path):
    path = write_clip(tmp_path / "clip.avi", 40)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    source = open_file(str(cut))
    frames = read_all(source)
    assert 5 < len(frames) < 40
    assert [f.index for f in frames] == list(range(len(frames)))
    assert isinstance(source.stop_reason, StreamInterrupted)
    assert f"stopped at frame {len(frames)} of 40" in str(source.stop_reason)


def test_parse_device():
    assert parse_device("0") == 0 and parse_device(2) == 2 and parse_device(" 1 ") == 1
    assert parse_device("/dev/video3") == "/dev/video3"
    assert parse_device("rtsp://cam/stream") == "rtsp://cam/stream"


def test_missing_camera_names_it_and_suggests_alternatives():
    class NoCamera:
        def __init__(self, device):
            self.device = device

        def isOpened(self):
            return False

        def release(self):
            pass

    with pytest.raises(CameraNotFoundError) as info:
        open_camera("7", capture_factory=NoCamera)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "camera 7" in message and "--device" in message and "stream-cnn video" in message


class FakeCamera:
    """A capture object scripted frame by frame: an ndarray is delivered, None is a failed read.
    After the script runs out it keeps failing (an unplugged camera). ``delay`` paces reads like a sensor."""

    def __init__(self, script, delay=0.0):
        self.script = list(script)
        self.delay = delay
        self.reads = 0
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        if self.delay:
            time.sleep(self.delay)
        self.reads += 1
        if not self.script:
            return False, None
        item = self.script.pop(0)
        return (item is not None), item

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: WIDTH, cv2.CAP_PROP_FRAME_HEIGHT: HEIGHT}.get(prop, 0)

    def release(self):
        self.released = True


def live_source(camera, stall_timeout=0.4):
    handed_out = []

    def factory(device):
        # Reopening a lost camera hands back one that is still dead.
        handle = camera if not handed_out else FakeCamera([])
        handed_out.append(handle)
        return handle

    return LiveSource(0, stall_timeout=stall_timeout, capture_factory=factory)


def test_live_source_stops_cleanly_when_the_camera_stops_delivering():
    frames = [numbered_frame(i) for i in range(5)]
    source = live_source(FakeCamera(frames, delay=0.005), stall_timeout=0.4)
    started = time.perf_counter()
    received = read_all(source)
    elapsed = time.perf_counter() - started
    assert 1 <= len(received) <= 5
    assert isinstance(source.stop_reason, StreamInterrupted)
    assert "stopped delivering" in str(source.stop_reason) and "camera 0" in str(source.stop_reason)
    assert source.read_failures > 1          # it retried before giving up
    assert elapsed < 5.0                      # bounded: the stall timeout, not forever


def test_live_source_recovers_from_a_short_hiccup():
    script = [numbered_frame(0), numbered_frame(1), None, None, numbered_frame(2), numbered_frame(3)]
    source = live_source(FakeCamera(script, delay=0.02), stall_timeout=2.0)
    source.start()
    got = []
    while (frame := source.read(timeout=0.2)) is not None:
        got.append(decoded_index(frame.image))
        if len(got) == 4:
            break
    source.close()
    assert got == [0, 1, 2, 3]
    assert source.read_failures >= 2 and source.stop_reason is None   # the two failed reads were retried


def test_frozen_camera_is_detected_and_repeats_are_not_new_frames():
    frozen = numbered_frame(3)
    script = [numbered_frame(0), numbered_frame(1), numbered_frame(2)] + [frozen.copy() for _ in range(400)]
    source = live_source(FakeCamera(script, delay=0.002), stall_timeout=0.3)
    received = read_all(source)
    assert isinstance(source.stop_reason, StreamInterrupted) and "frozen" in str(source.stop_reason)
    assert source.frames_read == 4           # 0, 1, 2 and the first copy of 3
    assert source.repeated > 10
    assert len(received) <= 4


def test_live_source_keeps_only_the_newest_frame_and_counts_drops():
    script = [numbered_frame(i) for i in range(40)]
    source = live_source(FakeCamera(script, delay=0.002), stall_timeout=0.3)
    source.start()
    time.sleep(0.3)                          # the consumer is busy; the camera keeps delivering
    first = source.read(timeout=0.5)
    source.close()
    assert first is not None
    assert first.index >= 20                 # the newest frame, not the oldest buffered one
    assert decoded_index(first.image) == first.index
    assert source.dropped == first.index     # every frame before it was overwritten unseen


def test_clip_as_camera_ends_cleanly_at_its_end_and_paces_at_its_fps(tmp_path):
    path = write_clip(tmp_path / "clip.avi", 12, fps=60.0)
    source = open_camera(path, stall_timeout=1.0)
    assert isinstance(source, LiveSource) and source.realtime
    started = time.perf_counter()
    frames = read_all(source)
    elapsed = time.perf_counter() - started
    assert source.stop_reason is None
    assert len(frames) + source.dropped == 12
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert elapsed >= 11 / 60.0 * 0.9        # paced like a 60 fps camera, not decoded at full speed


def test_clip_with_frozen_tail_stops_with_frozen_message_as_camera(tmp_path):
    path = write_clip(tmp_path / "frozen.avi", 60, fps=100.0, frozen_tail=45)
    source = open_camera(path, stall_timeout=0.2)
    frames = read_all(source)
    assert isinstance(source.stop_reason, StreamInterrupted) and "frozen" in str(source.stop_reason)
    assert source.frames_read == 15 and len(frames) + source.dropped == 15


def test_realtime_file_replay_checks_the_file_first(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_file(str(tmp_path / "missing.mp4"), realtime=True)


def test_frozen_detection_survives_a_consumer_drawing_on_frames():
    # The pipeline draws its overlay on the frames it is handed; that must not make a repeat look new.
    frozen = numbered_frame(5)
    script = [numbered_frame(0)] + [frozen.copy() for _ in range(300)]
    source = live_source(FakeCamera(script, delay=0.002), stall_timeout=0.3).start()
    while (frame := source.read(timeout=0.2)) is not None:
        frame.image[:10] = 255
    source.close()
    assert source.frames_read == 2 and "frozen" in str(source.stop_reason)


def write_mp4(path, count, flat=False):
    """An mp4v clip (limited-range YUV 4:2:0 when decoded) of a textured picture, or a flat grey one."""
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(count):
        frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8) if flat and i == 0 else numbered_frame(i)
        if not flat:
            frame = cv2.addWeighted(frame, 0.7, texture, 0.3, 0)
        writer.write(frame)
    writer.release()
    return str(path)


def test_luma_file_source_delivers_every_frame_as_the_luma_plane(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", 20)
    source = open_file(path, luma=True)
    assert source.luma_range == "limited"                   # what FFmpeg's mp4v decoder gives
    factor, bias = source.luma_to_gray
    assert factor == pytest.approx(LUMA_TO_GRAY["limited"][0], rel=0.03)
    frames = read_all(source)
    reference = read_all(open_file(path))                   # the same file decoded as BGR
    assert [f.index for f in frames] == list(range(20)) and len(reference) == 20
    for luma, bgr in zip(frames, reference):
        assert luma.image.shape == (HEIGHT, WIDTH) and bgr.image.shape == (HEIGHT, WIDTH, 3)
        gray = cv2.cvtColor(bgr.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        assert np.abs(np.clip(luma.image * factor + bias, 0, 255) - gray).mean() < 1.0


def test_luma_source_keeps_bgr_when_frame_0_cannot_tell_the_range(tmp_path):
    path = write_mp4(tmp_path / "flat.mp4", 12, flat=True)
    source = open_file(path, luma=True)
    assert source.luma_range is None and source.luma_to_gray is None
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(12))     # frame 0 was not lost to the probe
    assert all(f.image.shape == (HEIGHT, WIDTH, 3) for f in frames)


def test_luma_mapping_fits_the_range_and_rejects_what_is_not_the_frames_luma():
    bgr = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 1)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    name, (factor, bias) = luma_mapping(gray, bgr)
    assert name == "full" and factor == pytest.approx(1.0, abs=1e-6) and bias == pytest.approx(0.0, abs=1e-4)
    limited = np.round(16 + gray * (219 / 255)).astype(np.uint8)
    name, (factor, bias) = luma_mapping(limited, bgr)
    assert name == "limited" and factor == pytest.approx(255 / 219, rel=0.01)
    assert luma_mapping(gray[:40], bgr) is None             # wrong size
    assert luma_mapping(255 - gray, bgr) is None            # not this picture's luma
    assert luma_mapping(bgr, bgr) is None                   # not a plane


def test_files_decode_single_threaded(tmp_path):
    path = write_clip(tmp_path / "clip.avi", 3)
    capture = open_decoder(path)
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_N_THREADS) == 1
    capture.release()


def test_batched_handoff_keeps_order_blocks_when_full_and_releases_a_short_tail():
    import queue
    import threading

    from stream_cnn.sources.handoff import BatchedHandoff

    handoff = BatchedHandoff(4, wake_at=3)
    with pytest.raises(queue.Empty):
        handoff.get(timeout=0.01)
    assert all(handoff.put(i) for i in range(4))
    assert not handoff.put(99, timeout=0.02)          # full: the producer times out, nothing is added
    received = []

    def produce():
        for i in range(4, 103):
            handoff.put(i)
        handoff.finish()                              # 103 items: the last batch is shorter than wake_at

    producer = threading.Thread(target=produce)
    producer.start()
    while len(received) < 103:
        received.append(handoff.get(timeout=2.0))
    producer.join(timeout=2.0)
    assert received == list(range(103)) and not producer.is_alive()
    assert handoff.empty()
    with pytest.raises(queue.Empty):
        handoff.get(timeout=0.01)
