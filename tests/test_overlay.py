"""Overlay: the argmax bar is drawn in its colour with a length proportional to its probability, the "no digit"
state draws no bars, stats and the ROI box land where expected, the feature panel appears only when enabled,
and the probability smoother is a true moving average."""
import numpy as np
import pytest

from stream_cnn.overlay import (BOX_COLOR, OTHER_BAR_COLOR, TOP_BAR_COLOR, Overlay, OverlayStats,
                                ProbabilitySmoother)

LABELS = [str(i) for i in range(10)]


def gray_frame(value=128, size=(480, 640)):
    return np.full((*size, 3), value, np.uint8)


def pixels_of(frame, color):
    return np.all(frame == np.array(color, np.uint8), axis=2)


def probs_with(top, p, second=None, q=0.0):
    probs = np.full(10, 0.0)
    probs[top] = p
    if second is not None:
        probs[second] = q
    rest = (1.0 - probs.sum()) / np.count_nonzero(probs == 0)
    probs[probs == 0] = rest
    return probs


def top_bar_length(frame):
    mask = pixels_of(frame, TOP_BAR_COLOR)
    columns = np.flatnonzero(mask.any(axis=0))
    return 0 if columns.size == 0 else columns[-1] - columns[0] + 1


def test_top_bar_length_follows_probability():
    overlay = Overlay(LABELS, topk=3)
    lengths = []
    for p in (0.2, 0.5, 0.9):
        frame = gray_frame()
        overlay.draw(frame, probs_with(7, p), None)
        lengths.append(top_bar_length(frame))
    assert 0 < lengths[0] < lengths[1] < lengths[2]
    assert lengths[2] / lengths[1] == pytest.approx(0.9 / 0.5, rel=0.1)


def test_runner_up_bars_and_panel_in_the_top_left():
    frame = gray_frame()
    Overlay(LABELS, topk=3).draw(frame, probs_with(7, 0.6, second=1, q=0.3), None)
    top = pixels_of(frame, TOP_BAR_COLOR)
    other = pixels_of(frame, OTHER_BAR_COLOR)
    assert top.sum() > 200 and other.sum() > 100
    ys, xs = np.nonzero(top | other)
    assert xs.max() < 320 and ys.max() < 240                     # readable panel in the top-left quarter
    assert np.array_equal(frame[300:400, 400:600], gray_frame()[300:400, 400:600])   # rest untouched


def test_no_prediction_draws_no_bars_but_says_so():
    frame = gray_frame(200)
    Overlay(LABELS).draw(frame, None, (100, 100, 50, 60))
    assert not pixels_of(frame, TOP_BAR_COLOR).any() and not pixels_of(frame, OTHER_BAR_COLOR).any()
    panel = frame[:60, :250]
    assert (panel != 200).any()                                   # the "no digit" text and darkened panel


def test_region_box_is_drawn_around_the_region():
    frame = gray_frame()
    Overlay(LABELS).draw(frame, probs_with(3, 0.8), (300, 200, 120, 100))
    box = pixels_of(frame, BOX_COLOR)
    ys, xs = np.nonzero(box[150:, 260:])                          # away from the bars panel
    assert xs.min() + 260 >= 297 and xs.max() + 260 <= 422 and ys.min() + 150 >= 197 and ys.max() + 150 <= 302
    assert not box[250, 360]                                      # the inside is not filled


def test_stats_strip_at_the_bottom():
    frame = gray_frame(180)
    Overlay(LABELS).draw(frame, probs_with(1, 0.5), None, stats=OverlayStats(30.0, 29.0, 1.5, 3, 0))
    strip = frame[-20:]
    assert (strip < 180).mean() > 0.5                             # darkened strip
    assert (strip == 255).any()                                   # white text on it


def test_feature_panel_only_when_enabled_and_toggle():
    maps = [("conv1", np.random.default_rng(0).random((6, 12, 12), dtype=np.float32))]
    overlay = Overlay(LABELS)
    off = gray_frame()
    overlay.draw(off, probs_with(2, 0.7), None, feature_maps=maps)
    overlay.toggle_features()
    on = gray_frame()
    overlay.draw(on, probs_with(2, 0.7), None, feature_maps=maps)
    right = slice(540, 640)
    assert np.array_equal(off[:, right], gray_frame()[:, right])
    changed = np.any(on[:200, right] != 128, axis=2)
    assert changed.mean() > 0.5


def test_readable_on_small_frames_without_errors():
    frame = gray_frame(size=(120, 160))
    Overlay(LABELS, topk=5, show_features=True).draw(
        frame, probs_with(9, 0.99), (10, 10, 50, 50), stats=OverlayStats(),
        feature_maps=[("c", np.zeros((4, 5, 5), np.float32))])
    assert pixels_of(frame, TOP_BAR_COLOR).any()


def test_smoother_is_a_moving_average_over_the_window():
    smoother = ProbabilitySmoother(3, 2)
    inputs = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0])]
    outputs = [smoother.update(p).copy() for p in inputs]
    np.testing.assert_allclose(outputs[0], [1.0, 0.0])
    np.testing.assert_allclose(outputs[1], [0.5, 0.5])
    np.testing.assert_allclose(outputs[2], [1 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(outputs[3], [0.0, 1.0], atol=1e-7)      # the first vector left the window
    smoother.reset()
    np.testing.assert_allclose(smoother.update(np.array([0.25, 0.75])), [0.25, 0.75])


def test_low_confidence_shows_bars_but_no_label():
    confident, unsure = gray_frame(), gray_frame()
    overlay = Overlay(LABELS)
    overlay.draw(confident, probs_with(4, 0.4), None)
    overlay.draw(unsure, probs_with(4, 0.4), None, confident=False)
    assert top_bar_length(confident) == top_bar_length(unsure) > 0
    head = (slice(0, 50), slice(0, 200))
    assert not np.array_equal(confident[head], unsure[head])      # the head line differs: no "4  40%"


def test_stamped_text_matches_puttext_where_the_glyph_is_solid_and_clips_at_edges():
    import cv2

    from stream_cnn.overlay.draw import FONT, TEXT_COLOR, TextStamps

    panel = np.random.default_rng(1).integers(0, 128, (60, 300, 3)).astype(np.uint8)   # a halved panel
    drawn, stamped = panel.copy(), panel.copy()
    cv2.putText(drawn, "7  93%", (8, 40), FONT, 1.2, TEXT_COLOR, 2, cv2.LINE_AA)
    stamps = TextStamps(kept=2)
    stamps.draw(stamped, "7  93%", (8, 40), 1.2, TEXT_COLOR, 2)
    solid = pixels_of(drawn, TEXT_COLOR)
    assert solid.sum() > 200 and (stamped[solid] == TEXT_COLOR).all()
    # Nothing lands outside the text's own neighbourhood: untouched where putText left the panel alone far away.
    changed = (stamped != panel).any(axis=2)
    assert not changed[:, 200:].any() and changed.sum() >= solid.sum()
    # Stamps reaching past any edge are clipped, not an error; the cache stays bounded.
    for org in ((-20, 5), (280, 70), (-500, -500), (0, 30)):
        stamps.draw(stamped, f"edge {org}", org, 0.5, TEXT_COLOR, 1)
    assert len(stamps._masks) <= 2
