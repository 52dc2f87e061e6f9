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


def test_luma_path_predicts_what_the_bgr_path_predicts(tmp_path, tiny_model, clip):
    # No output file and no window: frames come as the decoder's luma plane. With --output they are BGR. Same model
    # input to within a grey level, so the same predictions.
    luma = run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "luma.jsonl", "--no-display",
                    "--topk", 4])
    bgr = run_cli(["video", clip, "--model", tiny_model, "--jsonl", tmp_path / "bgr.jsonl", "--no-display",
                   "--topk", 4, "--output", tmp_path / "a.mp4"])
    assert luma.exit_code == 0 and bgr.exit_code == 0, luma.output + bgr.output
    luma_records, bgr_records = read_jsonl(tmp_path / "luma.jsonl"), read_jsonl(tmp_path / "bgr.jsonl")
    assert [r["frame"] for r in luma_records] == [r["frame"] for r in bgr_records] == list(range(30))
    for a, b in zip(luma_records, bgr_records):
        probs_a, probs_b = dict(a["topk"]), dict(b["topk"])
        assert max(abs(probs_a[label] - probs_b[label]) for label in TINY_LABELS) < 0.03


def test_digit_model_on_the_luma_plane_finds_what_the_bgr_path_finds(tmp_path):
    # The digits model reads the luma plane too when nothing shows the picture; its finder must see the same digit
    # sheet as on BGR frames: same labels on every frame of the bundled demo clip, boxes within a few pixels.
    from stream_cnn.pipeline import demo_clip_path

    demo = demo_clip_path()
    luma = run_cli(["video", demo, "--jsonl", tmp_path / "luma.jsonl", "--no-display"])
    bgr = run_cli(["video", demo, "--jsonl", tmp_path / "bgr.jsonl", "--no-display", "--output", tmp_path / "a.mp4"])
    assert luma.exit_code == 0 and bgr.exit_code == 0, luma.output + bgr.output
    luma_records, bgr_records = read_jsonl(tmp_path / "luma.jsonl"), read_jsonl(tmp_path / "bgr.jsonl")
    assert len(luma_records) == len(bgr_records) > 0
    assert sum(r["label"] is not None for r in bgr_records) >= len(bgr_records) // 2   # digits are found at all
    for a, b in zip(luma_records, bgr_records):
        assert a["label"] == b["label"]
        assert (a["box"] is None) == (b["box"] is None)
        if a["box"] is not None:
            assert max(abs(p - q) for p, q in zip(a["box"], b["box"])) <= 4


def test_luma_and_bgr_frames_make_the_same_model_input(tiny_model, clip):
    from types import SimpleNamespace

    from stream_cnn.preprocess import FramePreprocessor
    from stream_cnn.sources import open_file

    cfg = SimpleNamespace(input_shape=(1, 28, 28), color="gray", scale=1.0, mean=[0.0], std=[1.0],
                          resize="stretch", preprocess="frame")     # model input in grey levels
    luma_source, bgr_source = open_file(clip, luma=True).start(), open_file(clip).start()
    from_luma, from_bgr = np.zeros((1, 28, 28), np.float32), np.zeros((1, 28, 28), np.float32)
    luma_pre = FramePreprocessor(cfg, from_luma, luma_to_gray=luma_source.luma_to_gray)
    bgr_pre = FramePreprocessor(cfg, from_bgr)
    differences = []
    try:
        while (luma_frame := luma_source.read()) is not None:
            luma_pre(luma_frame.image)
            bgr_pre(bgr_source.read().image)
            differences.append(np.abs(from_luma - from_bgr))
    finally:
        luma_source.close()
        bgr_source.close()
    assert len(differences) == 30
    # Block means of the same picture: well within a grey level on average (the decoder rounds its YUV -> BGR
    # conversion and clips saturated colours; the luma plane is exact), never more than a few.
    assert np.mean(differences) < 0.5 and np.max(differences) < 4.0


def test_the_luma_path_is_taken_only_when_nothing_needs_the_picture(tmp_path, tiny_model, clip, monkeypatch):
    from stream_cnn import sources

    opened = []
    real_open_file = sources.open_file

    def spy(*args, **kwargs):
        source = real_open_file(*args, **kwargs)
        opened.append(source.luma_range)
        return source

    monkeypatch.setattr(sources, "open_file", spy)
    run_cli(["video", clip, "--model", tiny_model, "--no-display", "--max-frames", 2])
    run_cli(["video", clip, "--model", tiny_model, "--no-display", "--max-frames", 2, "--output", tmp_path / "a.mp4"])
    run_cli(["video", clip, "--model", tiny_model, "--no-display", "--max-frames", 2, "--record", tmp_path / "r"])
    digit_model = make_tiny_model(tmp_path / "m", preprocess="digit")   # the digit finder takes the luma too
    run_cli(["video", clip, "--model", digit_model, "--no-display", "--max-frames", 2])
    run_cli(["video", clip, "--model", digit_model, "--max-frames", 2, "--output", tmp_path / "b.mp4"])
    assert opened == ["limited", None, None, "limited", None]


class ScriptedWindow:
    """Stands in for the cv2 window: records what the main thread shows and answers with scripted key actions."""

    def __init__(self, actions):
        self.actions = list(actions)
        self.shown = []
        self.snapshots = []
        self.threads = set()

    def open(self):
        return None

    def show(self, frame, wait_ms=1):
        import threading

        self.threads.add(threading.current_thread().name)
        if frame is not None:
            self.shown.append(frame)
        return self.actions.pop(0) if self.actions else None

    def save_snapshot(self, frame):
        self.snapshots.append(f"snapshot-{len(self.snapshots)}.png")
        return self.snapshots[-1]

    def close(self):
        pass


def window_pipeline(tmp_path, model_path, clip_path, window, roi=None):
    from stream_cnn.model import load_model
    from stream_cnn.pipeline import Pipeline, PipelineOptions
    from stream_cnn.sinks import JsonlSink
    from stream_cnn.sources import open_file

    pipeline = Pipeline(open_file(clip_path), load_model(model_path), PipelineOptions(display=True, roi=roi),
                        jsonl=JsonlSink(str(tmp_path / "p.jsonl")), echo=lambda *args, **kwargs: None)
    pipeline.window = window
    return pipeline


def test_window_runs_on_the_main_thread_and_quits_on_its_key(tmp_path, tiny_model, clip):
    import threading

    window = ScriptedWindow([None, "snapshot", "pause", None, "pause", None, "quit"])
    summary = window_pipeline(tmp_path, tiny_model, clip, window).run()
    assert window.threads == {threading.current_thread().name}       # imshow / waitKey only here
    assert summary.ended_by == "quit key" and 1 <= summary.frames <= 30
    assert len(window.snapshots) == 1 and window.shown
    green = np.all(np.abs(window.shown[0][:80, :160].astype(int) - np.array(TOP_BAR_COLOR)) < 45, axis=2)
    assert green.sum() > 30                                            # the overlay is drawn on what is shown
    assert len(read_jsonl(tmp_path / "p.jsonl")) == summary.frames


def test_window_to_the_end_of_a_file_and_worker_errors_reach_the_caller(tmp_path, tiny_model, clip):
    from stream_cnn.errors import UsageError

    summary = window_pipeline(tmp_path, tiny_model, clip, ScriptedWindow([])).run()
    assert summary.frames == 30 and summary.ended_by == "end of stream"
    # A ROI outside the frame fails on the processing thread; the caller gets the same one-line error.
    with pytest.raises(UsageError, match="outside"):
        window_pipeline(tmp_path, tiny_model, clip, ScriptedWindow([]), roi=(900, 900, 10, 10)).run()


def test_throughput_probe_runs_every_variant_on_a_small_clip(tmp_path, tiny_model):
    from stream_cnn.pipeline import throughput

    clip_path = throughput.make_probe_clip(tmp_path / "probe.mp4", frames=12, width=160, height=120)
    runs = [throughput.decode_only(clip_path), throughput.encode_only(clip_path, tmp_path / "enc.mp4"),
            throughput.video(clip_path, tiny_model), throughput.video(clip_path, tiny_model,
                                                                       output=str(tmp_path / "out.mp4"))]
    assert [run.frames for run in runs] == [12, 12, 12, 12]
    assert all(run.fps > 0 and run.cpu_seconds >= 0 for run in runs)
    assert count_playable_frames(tmp_path / "enc.mp4") == count_playable_frames(tmp_path / "out.mp4") == 12
    model_path = throughput.make_probe_model(tmp_path / "probe-model")
    assert throughput.video(clip_path, model_path).frames == 12
    from stream_cnn.model import load_model

    loaded = load_model(model_path)                     # a loaded model object is used as it is
    assert throughput.video(clip_path, loaded, output=str(tmp_path / "again.mp4")).frames == 12
