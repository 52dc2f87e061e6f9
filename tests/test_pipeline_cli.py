"""End to end: clips replayed through `stream-cnn video` and `stream-cnn webcam --device CLIP` (the VideoCapture
path a camera takes), in-process with CliRunner and as real subprocesses. Checked: one JSONL line per processed
frame, contiguous frame indices for files, probabilities summing to 1, the annotated video's frame count, and
overlay pixels present in it. Shared helpers are in tests/helpers.py, the tiny_model and clip fixtures in
tests/conftest.py."""
import glob
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import (REPO, TINY_LABELS, decoded_frames, make_tiny_model, overlay_visible, read_jsonl, run_cli,
                     run_subprocess)
from stream_cnn.cli import main
from stream_cnn.overlay import TOP_BAR_COLOR
from stream_cnn.sinks import count_playable_frames

def recorded_clips():
    """Real recordings (made by scripts/make_recordings.py) when present, else nothing."""
    return sorted(glob.glob(str(REPO / "recordings" / "*.mp4")))[:1]


def check_file_run(jsonl, video, clip_path, expected_frames, topk=4):
    records = read_jsonl(jsonl)
    assert len(records) == expected_frames
    assert [r["frame"] for r in records] == list(range(expected_frames))
    for record in records:
        assert len(record["topk"]) == topk
        assert math.isclose(sum(p for _, p in record["topk"]), 1.0, abs_tol=1e-4)
        assert record["label"] == record["topk"][0][0] and record["prob"] == record["topk"][0][1]
        assert record["latency_ms"] >= 0 and record["time_s"] >= 0
    annotated = decoded_frames(video)
    raw = decoded_frames(clip_path)[:expected_frames]
    assert len(annotated) == expected_frames
    assert overlay_visible(annotated[expected_frames // 2], raw[expected_frames // 2])
    return records


def test_video_command_in_process(tmp_path, tiny_model, clip):
    result = run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl",
                      "--output", tmp_path / "a.mp4", "--no-display", "--topk", 4])
    assert result.exit_code == 0, result.output
    records = check_file_run(tmp_path / "p.jsonl", tmp_path / "a.mp4", clip, 30)
    assert "30 frames" in result.output and "p95" in result.output
    histogram_line = next(line for line in result.output.splitlines() if line.startswith("classes:"))
    counted = {r["label"] for r in records}
    assert all(label in histogram_line for label in counted)


def test_webcam_device_clip_in_process(tmp_path, tiny_model, clip):
    result = run_cli(["webcam", "--device", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl",
                      "--output", tmp_path / "a.avi", "--no-display", "--topk", 4])
    assert result.exit_code == 0, result.output
    records = read_jsonl(tmp_path / "p.jsonl")
    indices = [r["frame"] for r in records]
    assert indices == sorted(set(indices)) and indices[-1] <= 29
    dropped = records[-1]["dropped"]
    assert len(records) + dropped >= 29            # every frame of the clip was either processed or counted dropped
    assert count_playable_frames(tmp_path / "a.avi") == len(records)
    for record in records:
        assert math.isclose(sum(p for _, p in record["topk"]), 1.0, abs_tol=1e-4)


def test_video_command_as_subprocess(tmp_path, tiny_model, clip):
    result = run_subprocess(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl",
                             "--output", tmp_path / "a.mp4", "--no-display", "--topk", 4])
    assert result.returncode == 0, result.stderr
    check_file_run(tmp_path / "p.jsonl", tmp_path / "a.mp4", clip, 30)
    assert "inference latency ms" in result.stdout
    assert "Traceback" not in result.stderr


def test_webcam_device_clip_as_subprocess(tmp_path, tiny_model, clip):
    result = run_subprocess(["webcam", "--device", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl",
                             "--output", tmp_path / "a.mp4", "--no-display", "--topk", 4])
    assert result.returncode == 0, result.stderr
    records = read_jsonl(tmp_path / "p.jsonl")
    assert len(records) >= 10 and count_playable_frames(tmp_path / "a.mp4") == len(records)


@pytest.mark.parametrize("recording", recorded_clips() or [pytest.param(None, marks=pytest.mark.skip(
    reason="recordings/ has no clips yet (made by scripts/make_recordings.py)"))])
def test_recorded_clip_through_video_and_webcam(tmp_path, tiny_model, recording):
    frames = 45
    result = run_cli(["video", recording, "--model", tiny_model, "--jsonl", tmp_path / "v.jsonl",
                      "--output", tmp_path / "v.mp4", "--no-display", "--topk", 4, "--max-frames", frames])
    assert result.exit_code == 0, result.output
    check_file_run(tmp_path / "v.jsonl", tmp_path / "v.mp4", recording, frames)
    result = run_cli(["webcam", "--device", recording, "--model", tiny_model, "--jsonl", tmp_path / "w.jsonl",
                      "--no-display", "--max-frames", 20])
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(tmp_path / "w.jsonl")) == 20


def test_stride_infers_every_nth_frame_but_writes_every_frame(tmp_path, tiny_model, clip):
    result = run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl",
                      "--output", tmp_path / "a.mp4", "--no-display", "--stride", 3])
    assert result.exit_code == 0, result.output
    assert [r["frame"] for r in read_jsonl(tmp_path / "p.jsonl")] == list(range(0, 30, 3))
    assert count_playable_frames(tmp_path / "a.mp4") == 30


def test_max_frames_and_smoothing(tmp_path, tiny_model, clip):
    result = run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl", "--no-display",
                      "--max-frames", 12, "--smooth", 5, "--topk", 4])
    assert result.exit_code == 0, result.output
    smoothed = read_jsonl(tmp_path / "p.jsonl")
    assert len(smoothed) == 12 and "--max-frames 12" in result.output
    run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "raw.jsonl", "--no-display",
             "--max-frames", 12, "--topk", 4])
    raw = read_jsonl(tmp_path / "raw.jsonl")

    def probs(record):
        return {label: p for label, p in record["topk"]}

    # Frame 4 smoothed over 5 is the mean of the raw frames 0..4.
    for label in TINY_LABELS:
        expected = np.mean([probs(r)[label] for r in raw[:5]])
        assert probs(smoothed[4])[label] == pytest.approx(expected, abs=1e-5)


def test_record_saves_a_replayable_raw_clip(tmp_path, tiny_model, clip):
    result = run_cli(["video", clip, "--model", tiny_model, "--record", tmp_path / "rec", "--no-display"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((tmp_path / "rec" / "metadata.json").read_text())
    assert metadata["frames"] == 30 and (metadata["width"], metadata["height"]) == (320, 240)
    replay = run_cli(["video", tmp_path / "rec" / metadata["clip"], "--model", tiny_model,
                      "--jsonl", tmp_path / "replay.jsonl", "--no-display"])
    assert replay.exit_code == 0 and len(read_jsonl(tmp_path / "replay.jsonl")) == 30
    # The raw clip has no overlay: its top-left is the clip's own pixels.
    raw = decoded_frames(tmp_path / "rec" / metadata["clip"])[15]
    assert not overlay_visible(raw, decoded_frames(clip)[15])


def test_digit_model_without_a_digit_reports_no_digit(tmp_path, clip):
    model = make_tiny_model(tmp_path / "m", preprocess="digit")
    result = run_cli(["video", clip, "--model", model, "--jsonl", tmp_path / "p.jsonl", "--no-display",
                      "--max-frames", 10, "--output", tmp_path / "a.mp4"])
    assert result.exit_code == 0, result.output
    records = read_jsonl(tmp_path / "p.jsonl")
    assert len(records) == 10
    assert all(r["label"] is None and r["prob"] is None and r["topk"] == [] for r in records)
    assert "no digit: 10" in result.output
    annotated = decoded_frames(tmp_path / "a.mp4")[5]
    assert not np.all(np.abs(annotated.astype(int) - np.array(TOP_BAR_COLOR)) < 45, axis=2).any()


def test_roi_box_in_jsonl(tmp_path, tiny_model, clip):
    result = run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "p.jsonl", "--no-display",
                      "--roi", "40,30,200,150", "--max-frames", 3])
    assert result.exit_code == 0, result.output
    assert all(r["box"] == [40, 30, 200, 150] for r in read_jsonl(tmp_path / "p.jsonl"))


def test_bad_roi_is_a_usage_error(tmp_path, tiny_model, clip):
    result = CliRunner().invoke(main, ["video", clip, "--model", tiny_model, "--roi", "1,2,3", "--no-display"])
    assert result.exit_code == 2 and "--roi" in result.output


def test_progress_bar_on_request(tmp_path, tiny_model, clip):
    result = run_subprocess(["video", clip, "--model", tiny_model, "--no-display", "--progress"])
    assert result.returncode == 0
    assert "30/30 100%" in result.stderr and "fps" in result.stderr and "ETA" in result.stderr


def test_demo_writes_video_and_jsonl(tmp_path):
    from stream_cnn.pipeline import demo_clip_path

    if not os.path.isfile(str(Path(__file__).resolve().parent.parent / "stream_cnn" / "assets" / "demo.mp4")):
        pytest.skip("the bundled demo clip (stream_cnn/assets/demo.mp4) is not in the tree yet")
    if not (REPO / "stream_cnn" / "model" / "zoo" / "digits.npz").exists():
        pytest.skip("the trained digits model (model/zoo/digits.npz) is not in the tree yet")
    result = run_subprocess(["demo", "--out-dir", tmp_path / "demo"], timeout=300)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(tmp_path / "demo" / "predictions.jsonl")
    total = count_playable_frames(demo_clip_path())
    assert len(records) == total and [r["frame"] for r in records] == list(range(total))
    assert count_playable_frames(tmp_path / "demo" / "annotated.mp4") == total
    assert "classes:" in result.stdout
    assert any(r["label"] is not None for r in records)       # the demo clip shows digits the model reads
