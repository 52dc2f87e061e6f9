"""Sinks: output paths checked before processing, the video writer's codec fallback and playability check, JSONL
flushed per line, the raw recorder replayable, and the display check that keeps imshow from crashing headless."""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream_cnn.errors import OutputError
from stream_cnn.sinks import (JsonlSink, Recorder, VideoFileSink, WindowSink, check_writable_file,
                              count_playable_frames, display_problem)
from stream_cnn.sinks.video import verify_playable
from stream_cnn.sources import open_file


def frames(count, size=(120, 160)):
    for i in range(count):
        frame = np.zeros((*size, 3), np.uint8)
        frame[:, :, 2] = 10 * i
        cv2.circle(frame, (20 + 5 * i, size[0] // 2), 15, (255, 255, 255), -1)
        yield frame


def test_writable_check_rejects_missing_directory_and_directories(tmp_path):
    with pytest.raises(OutputError, match="does not exist") as info:
        check_writable_file(str(tmp_path / "nope" / "out.mp4"))
    assert info.value.exit_code == 6
    with pytest.raises(OutputError, match="is a directory"):
        check_writable_file(str(tmp_path))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        check_writable_file(str(blocker / "out.mp4"))
    target = tmp_path / "fine.mp4"
    assert check_writable_file(str(target)) == str(target) and not target.exists()   # the probe leaves nothing


def _read_only_directory(tmp_path):
    """A directory this process cannot create files in. Root ignores permission bits, so for root use sysfs,
    whose root directory refuses new files to everyone."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return locked
    return Path("/sys")


def test_writable_check_rejects_read_only_directory(tmp_path):
    locked = _read_only_directory(tmp_path)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            check_writable_file(str(locked / "out.mp4"))
    finally:
        if locked != Path("/sys"):
            locked.chmod(0o700)


@pytest.mark.parametrize("name", ["out.mp4", "out.avi", "out.mkv"])
def test_video_sink_writes_a_playable_file_with_every_frame(tmp_path, name):
    sink = VideoFileSink(str(tmp_path / name), fps=25)
    for frame in frames(20):
        sink.write(frame)
    assert sink.close() == 20
    assert sink.path == str(tmp_path / name) and os.path.getsize(sink.path) > 0
    assert count_playable_frames(sink.path) == 20


def test_video_sink_resizes_frames_of_another_size(tmp_path):
    sink = VideoFileSink(str(tmp_path / "out.avi"), fps=25)
    sink.write(next(frames(1)))
    sink.write(np.zeros((240, 320, 3), np.uint8))
    assert sink.close() == 2
    capture = cv2.VideoCapture(sink.path)
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    capture.release()


def test_codec_fallback_moves_to_the_next_codec_and_says_so(tmp_path):
    # "ZZZZ" is no codec anywhere, so the writer must fall through to MJPG in AVI.
    sink = VideoFileSink(str(tmp_path / "out.mp4"), fps=25, codecs=[("ZZZZ", ".mp4"), ("MJPG", ".avi")])
    for frame in frames(5):
        sink.write(frame)
    assert sink.close() == 5
    assert sink.path == str(tmp_path / "out.avi") and sink.fourcc == "MJPG"
    assert any("ZZZZ" in note and "out.avi" in note for note in sink.notes)
    assert not (tmp_path / "out.mp4").exists()


def test_no_codec_at_all_is_an_output_error(tmp_path):
    sink = VideoFileSink(str(tmp_path / "out.mp4"), fps=25, codecs=[("ZZZZ", ".mp4")])
    with pytest.raises(OutputError, match="no codec opened"):
        sink.write(next(frames(1)))


def test_unknown_extension_is_rejected_up_front(tmp_path):
    with pytest.raises(OutputError, match="unknown extension"):
        VideoFileSink(str(tmp_path / "out.xyz"), fps=25)


def test_closing_without_frames_leaves_no_file(tmp_path):
    sink = VideoFileSink(str(tmp_path / "out.mp4"), fps=25)
    assert sink.close() == 0 and not any(tmp_path.iterdir())


def test_jsonl_lines_are_readable_while_the_sink_is_still_open(tmp_path):
    path = tmp_path / "p.jsonl"
    sink = JsonlSink(str(path))
    sink.write({"frame": 0, "label": "7", "prob": 0.9})
    sink.write({"frame": 1, "label": None, "prob": None})
    lines = path.read_text().splitlines()          # read before close: flushed per line
    assert [json.loads(line)["frame"] for line in lines] == [0, 1]
    assert json.loads(lines[1])["label"] is None
    sink.close()


def test_recorder_clip_replays_frame_for_frame(tmp_path):
    recorder = Recorder(str(tmp_path / "rec"), fps=20, source="camera 0", model="digits")
    originals = list(frames(12))
    for frame in originals:
        recorder.write(frame.copy())
    assert recorder.close(dropped=3) == 12
    metadata = json.loads((tmp_path / "rec" / "metadata.json").read_text())
    assert metadata["frames"] == 12 and metadata["width"] == 160 and metadata["height"] == 120
    assert metadata["source"] == "camera 0" and metadata["dropped"] == 3 and metadata["fps"] == 20
    source = open_file(str(tmp_path / "rec" / metadata["clip"])).start()
    replayed = []
    while (frame := source.read()) is not None:
        replayed.append(frame.image)
    source.close()
    assert len(replayed) == 12
    for original, copy in zip(originals, replayed):       # MJPG is lossy, but only slightly
        assert np.abs(original.astype(int) - copy.astype(int)).mean() < 6


def test_display_problem_without_display(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "DISPLAY" in display_problem()
    monkeypatch.setenv("DISPLAY", ":937")            # no X server on display 937
    assert "no X server" in display_problem()
    # The window refuses to open instead of letting the GUI backend abort the process.
    assert "no X server" in WindowSink("t").open()


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_playability_check_reads_two_frames_not_the_whole_file(tmp_path, name):
    sink = VideoFileSink(str(tmp_path / name), 30)
    for frame in frames(25):
        sink.write(frame)
    assert sink.close() == 25
    assert verify_playable(sink.path, 25) == 25
    # A count that disagrees with what was written is settled by decoding everything.
    assert verify_playable(sink.path, 26) == count_playable_frames(sink.path) == 25


def test_playability_check_of_a_cut_or_bogus_file(tmp_path):
    sink = VideoFileSink(str(tmp_path / "out.avi"), 30)
    for frame in frames(25):
        sink.write(frame)
    sink.close()
    data = open(sink.path, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    assert verify_playable(str(cut), 25) == count_playable_frames(str(cut)) < 25
    (tmp_path / "bogus.mp4").write_bytes(b"not a video" * 100)
    assert verify_playable(str(tmp_path / "bogus.mp4"), 10) == 0
