"""The error pictures draw the figures they are given (read back from the figure, not the PNG)."""

import numpy as np
import pytest
from PIL import Image

from img2loc.viz import errors


def error_lines(fig):
    """The truth-to-guess lines: the one line collection coloured by error."""
    from matplotlib.collections import LineCollection

    (lc,) = [
        c
        for c in fig.axes[0].collections
        if isinstance(c, LineCollection) and c.get_array() is not None
    ]
    return lc.get_segments()


def test_error_cdf_steps_through_every_photo_and_clips_zero(captured, tmp_path):
    errors.plot_error_cdf({"model": [0.0, 10.0, 1000.0, 5000.0], "empty": []}, tmp_path / "c.png")
    ax = captured[-1].axes[0]
    (line,) = ax.get_lines()[:1]  # the empty curve draws nothing
    x, y = line.get_data()
    assert x[0] == errors.MIN_KM and y[0] == 0 and y[-1] == 100
    # A distance of 0 km lies on the log axis at MIN_KM, counted from the first step.
    assert x[1] == errors.MIN_KM and y[1] == 25
    assert "n=4" in ax.get_legend().get_texts()[0].get_text()
    assert ax.get_xscale() == "log"


def test_guess_map_crosses_the_antimeridian_the_short_way(captured, tmp_path):
    # Fiji to Samoa (across 180°) and Paris to Berlin.
    errors.plot_guess_map(
        [-18.0, 48.9], [178.0, 2.35], [-13.8, 52.5], [-172.0, 13.4], tmp_path / "m"
    )
    segs = error_lines(captured[-1])
    # The Fiji line goes east past 180° (10° long), plus a copy shifted back by 360°.
    assert len(segs) == 3
    lon_spans = sorted(abs(s[1, 0] - s[0, 0]) for s in segs)
    assert lon_spans == pytest.approx([10.0, 10.0, 11.05])


def test_guess_map_thins_lines_beyond_the_limit_reproducibly(captured, tmp_path):
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-50, 50, 500), rng.uniform(-100, 100, 500)
    for _ in range(2):
        errors.plot_guess_map(lat, lon, lat + 1, lon + 1, tmp_path / "m", max_lines=50, seed=3)
    a, b = (error_lines(f) for f in captured)
    assert len(a) == 50 and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_accuracy_bars_one_bar_per_group_and_threshold(captured, tmp_path):
    groups = {
        "Europe": {"acc_km": {"25": 10.0, "200": 40.0}, "n": 12},
        "Asia": {"acc_km": {"25": 5.0}, "n": 3},
    }
    errors.plot_accuracy_bars(groups, tmp_path / "b.png", thresholds=("25", "200"))
    ax = captured[-1].axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:2] == [10.0, 5.0] and heights[2] == 40.0 and np.isnan(heights[3])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Europe\n(n=12)", "Asia\n(n=3)"]


def test_reliability_draws_only_filled_bins_and_names_the_error(captured, tmp_path):
    bins = [
        {"lo": 0.0, "hi": 0.1, "n": 5, "accuracy": 2.0, "confidence": 5.0},
        {"lo": 0.1, "hi": 0.2, "n": 0, "accuracy": 0.0, "confidence": 0.0},
        {"lo": 0.2, "hi": 0.3, "n": 2, "accuracy": 50.0, "confidence": 25.0},
    ]
    errors.plot_reliability({"bins": bins, "ece": 4.25, "n": 7}, tmp_path / "r.png")
    ax, axn = captured[-1].axes
    assert [p.get_height() for p in ax.patches] == [2.0, 50.0]
    assert [p.get_height() for p in axn.patches] == [5, 2]
    assert "4.2 points (n=7)" in ax.get_title() or "4.3 points (n=7)" in ax.get_title()


def test_contact_sheet_lays_out_photos_and_marks_unreadable_ones(tmp_path):
    red = Image.new("RGB", (600, 300), (255, 0, 0))
    out = errors.contact_sheet(
        [red, None, red], ["a", "b\nsecond line", "c"], tmp_path / "s.png", cols=2, thumb=100
    )
    sheet = Image.open(out)
    pad, line = 8, 17
    cell_w, cell_h = 100 + pad, 100 + pad + 2 * line
    assert sheet.size == (pad + 2 * cell_w, 40 + 2 * cell_h)
    assert sheet.getpixel((pad + 50, 40 + 50)) == (255, 0, 0)  # first photo, centre
    assert sheet.getpixel((pad + cell_w + 3, 40 + 3)) == (0xDD, 0xDD, 0xDD)  # the unreadable one
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_contact_sheet_needs_a_caption_per_photo(tmp_path):
    with pytest.raises(ValueError):
        errors.contact_sheet([None, None], ["only one"], tmp_path / "s.png")
