"""Slider callbacks run headlessly: setting .value changes the artists in place; checks' verdicts."""

import numpy as np
import pytest

import bn_helpers as bnh


def make_live(animated=True):
    fig, ax = bnh.plots.new_figure(interactive=True)
    (line,) = ax.plot(np.arange(10.0), np.arange(10.0))
    ax.set_ylim(0, 50)
    calls = []

    def update(scale):
        calls.append(scale)
        line.set_ydata(scale * np.arange(10.0))
        return f"scale = {scale:.2f}"

    live = bnh.widgets.LiveFigure(fig, update, {"scale": bnh.widgets.slider("scale", 0.1, 5.0, 1.0)},
                                  animated=[line] if animated else ())
    return live, line, calls


@pytest.mark.parametrize("animated", [True, False])
def test_slider_updates_artists_in_place(animated):
    live, line, calls = make_live(animated)
    png0, axes0 = live.image.value, list(live.fig.axes[0].lines)
    assert live.calls == 1 and calls == [1.0] and png0[:4] == b"\x89PNG"
    live.controls["scale"].value = 2.0
    assert calls == [1.0, 2.0]
    np.testing.assert_allclose(line.get_ydata(), 2.0 * np.arange(10.0))
    assert live.image.value != png0
    assert list(live.fig.axes[0].lines) == axes0  # same artist, not re-plotted
    assert "scale = 2.00" in live.readout.value
    assert len(live.timings) == 2 and all(t >= 0 for t in live.timings[-1])


def test_blitted_frame_equals_full_draw():
    live, line, _ = make_live(animated=True)
    live.controls["scale"].value = 3.0
    blitted = np.asarray(live.fig.canvas.buffer_rgba()).copy()
    line.set_animated(False)
    live.fig.canvas.draw()
    full = np.asarray(live.fig.canvas.buffer_rgba())
    assert np.mean(blitted != full) < 0.002


def test_a_range_seen_before_blits_from_its_cached_picture(monkeypatch):
    fig, ax = bnh.plots.new_figure(interactive=True)
    (line,) = ax.plot(np.arange(10.0), np.arange(10.0))

    def update(top):
        line.set_ydata(top / 2 * np.ones(10))
        ax.set_ylim(0, top)  # a toggle between two axis ranges, as 09's normalization

    live = bnh.widgets.LiveFigure(fig, update, {"top": bnh.widgets.toggle("top", [10, 20], 10)},
                                  animated=[line])
    full_draws = []
    draw = type(fig.canvas).draw
    monkeypatch.setattr(type(fig.canvas), "draw", lambda c: full_draws.append(1) or draw(c))
    live.controls["top"].value = 20       # a new range: one full draw
    assert len(full_draws) == 1
    for top in (10, 20, 10):               # both ranges seen: blits only
        live.controls["top"].value = top
    assert len(full_draws) == 1
    blitted = np.asarray(fig.canvas.buffer_rgba()).copy()
    line.set_animated(False)
    draw(fig.canvas)
    assert np.mean(blitted != np.asarray(fig.canvas.buffer_rgba())) < 0.002


def test_errors_in_update_are_shown_and_raised():
    fig, _ = bnh.plots.new_figure(interactive=True)

    def update(x):
        if x > 1:
            raise ValueError("too big")

    live = bnh.widgets.LiveFigure(fig, update, {"x": bnh.widgets.slider("x", 0.0, 2.0, 0.5)})
    with pytest.raises(ValueError, match="too big"):
        live.controls["x"].value = 1.5
    assert "too big" in live.readout.value


def test_widget_argument_errors():
    with pytest.raises(ValueError, match="`value`=7 must lie in"):
        bnh.widgets.slider("s", 0.0, 1.0, 7)
    with pytest.raises(ValueError, match="`min` must be > 0"):
        bnh.widgets.slider("s", 0.0, 1.0, 0.5, log=True)
    with pytest.raises(ValueError, match="`controls` must hold"):
        bnh.widgets.LiveFigure(bnh.plots.new_figure(interactive=True)[0], lambda: None, {})


def test_labels_are_whole_and_have_tooltips():
    """A long label widens the whole column (no label cut), every control has hover text."""
    short = bnh.widgets.slider("lr", 0.0, 1.0, 0.5)
    long = bnh.widgets.slider("momentum (weight on old)", 0.0, 1.0, 0.9,
                              tooltip="weight of the old running average in each update")
    pick = bnh.widgets.toggle("loss", ["a", "b"])
    fig, _ = bnh.plots.new_figure(interactive=True)
    bnh.widgets.LiveFigure(fig, lambda **kw: "a readout", {"a": short, "b": long, "c": pick})
    widths = {w.style.description_width for w in (short, long, pick)}
    assert len(widths) == 1
    assert float(widths.pop()[:-2]) >= 0.55 * len("momentum (weight on old)")

    def hover(w):
        return getattr(w, "tooltip", None) or getattr(w, "description_tooltip", None)

    assert hover(short) == "lr" and hover(pick) == "loss"
    assert hover(long).startswith("weight of the old")


def test_hist_helpers():
    fig, ax = bnh.plots.new_figure(interactive=True)
    h = bnh.plots.hist(ax, np.zeros(100), bins=10, range=(-1, 1), percent=True)
    assert h.get_data().values.max() == 100.0
    heights = bnh.plots.set_hist(h, np.repeat(np.linspace(-0.9, 0.9, 10), 7))  # bin centres
    np.testing.assert_allclose(heights, 10.0)
    np.testing.assert_allclose(h.get_data().values, heights)


def test_checks_pass_fail_and_hint(capsys):
    import jax.numpy as jnp

    def good(x, g, b, eps=1e-5):
        m = x.mean(0)
        return g * (x - m) / jnp.sqrt(((x - m) ** 2).mean(0) + eps) + b

    def per_example(x, g, b, eps=1e-5):
        m = x.mean(1, keepdims=True)
        return g * (x - m) / jnp.sqrt(x.var(1, keepdims=True) + eps) + b

    def todo(x, g, b):
        raise NotImplementedError

    assert bnh.checks.check_batch_norm_forward(good)
    assert not bnh.checks.check_batch_norm_forward(per_example)
    assert not bnh.checks.check_batch_norm_forward(todo)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("batch_norm forward | max rel error") and lines[0].endswith("PASS")
    assert "axis=0" in lines[1] and "FAIL" in lines[1]
    assert "not implemented" in lines[2]

    def backward(dy, x, g):
        return bnh.batch_norm_backward(dy, x, g)

    def wrong_backward(dy, x, g):
        dx, dg, db = bnh.batch_norm_backward(dy, x, g)
        return dx * 1.01, dg, db

    assert bnh.checks.check_batch_norm_backward(backward)
    assert not bnh.checks.check_batch_norm_backward(wrong_backward)
    out = capsys.readouterr().out
    assert "(dx)" in out and "three paths" in out


def test_rel_error():
    assert bnh.checks.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert bnh.checks.rel_error([1.0], [np.nan]) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        bnh.checks.rel_error([1.0], [1.0, 2.0])


def test_drag_is_coalesced_newest_value_wins():
    """In a kernel a drawing thread draws: 30 quick changes give far fewer frames, the last one
    showing the last value."""
    import time

    fig, ax = bnh.plots.new_figure(interactive=True)
    (line,) = ax.plot(np.arange(10.0), np.zeros(10))
    ax.set_ylim(0, 50)
    seen = []

    def update(scale):
        time.sleep(0.02)  # a frame that takes longer than the gap between drag events
        seen.append(scale)
        line.set_ydata(scale * np.arange(10.0))

    s = bnh.widgets.slider("scale", 0.0, 5.0, 1.0)
    live = bnh.widgets.LiveFigure(fig, update, {"scale": s}, threaded=True, animated=[line])
    for v in np.linspace(0.1, 4.9, 30):
        s.value = float(v)
        time.sleep(0.002)
    deadline = time.time() + 10
    while (live._wake.is_set() or live._lock.locked() or seen[-1] != s.value) and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert live.changes == 30
    assert 2 <= live.calls - 1 < 15, live.calls   # frames after the first: merged, not queued
    assert seen[-1] == s.value == 4.9
    np.testing.assert_allclose(line.get_ydata(), 4.9 * np.arange(10.0))


def test_warm_up_reaches_every_option_before_showing():
    fig, _ = bnh.plots.new_figure(interactive=True)
    seen = []
    controls = {"loss": bnh.widgets.toggle("loss", ["quadratic", "logistic"]),
                "depth": bnh.widgets.int_slider("depth", 1, 5, 3),
                "lr": bnh.widgets.slider("lr", 0.1, 1.0, 0.5)}
    live = bnh.widgets.LiveFigure(fig, lambda **kw: seen.append(tuple(kw.values())), controls)
    assert {(loss, d) for loss, d, _ in seen[:-1]} == {(a, b) for a in ("quadratic", "logistic")
                                                 for b in (1, 5)}
    assert seen[-1] == ("quadratic", 3, 0.5) and live.calls == 1
    assert bnh.widgets.slider("x", 0.0, 1.0, 0.5).continuous_update  # figures follow a drag


def test_tall_figure_is_drawn_smaller_to_fit_a_1280x800_window():
    """Controls + picture + readout fit MAX_HEIGHT_PX and the picture MAX_WIDTH_PX: a figure too
    big gets a lower dpi (a sharp, smaller PNG, never one the browser has to shrink); a small one
    keeps its dpi."""
    import io

    import PIL.Image

    def explorer(size, **kw):
        fig, ax = bnh.plots.new_figure(interactive=True, size=size)
        (line,) = ax.plot(np.arange(10.0), np.arange(10.0))
        controls = {f"s{i}": bnh.widgets.slider(f"s{i}", 0.1, 5.0, 1.0) for i in range(4)}

        def update(**vals):
            line.set_ydata(vals["s0"] * np.arange(10.0))
            return "line one of the readout\nline two"

        return bnh.widgets.LiveFigure(fig, update, controls, **kw)

    def png_size(live):
        return PIL.Image.open(io.BytesIO(live.png())).size

    tall = explorer((9.6, 6.2))
    w, h = png_size(tall)
    assert 72 <= tall.dpi < 100 and tall.fig.dpi == tall.dpi
    assert h + 4 * 32 + 2 * 18 <= bnh.widgets.MAX_HEIGHT_PX, h
    assert abs(w / h - 9.6 / 6.2) < 0.02                       # same picture, only smaller
    tall.controls["s0"].value = 2.0                             # later frames keep the size
    assert png_size(tall) == (w, h)
    assert png_size(explorer((6.0, 3.0))) == (600, 300)         # fits already: dpi 100 kept
    png = PIL.Image.open(io.BytesIO(tall.png()))
    rgba = np.asarray(tall.fig.canvas.buffer_rgba())
    assert png.mode == "RGB"                                    # opaque figure: no alpha to encode
    np.testing.assert_array_equal(np.asarray(png), rgba[..., :3])
    assert png_size(explorer((9.6, 6.2), max_height=None, max_width=None)) == (960, 620)
    assert png_size(explorer((10.0, 3.0), max_height=None)) == (840, 252)  # width: MAX_WIDTH_PX
