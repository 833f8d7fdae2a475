"""Sliders wired to a figure that is updated in place, never rebuilt.

`LiveFigure` owns a matplotlib figure and its controls. Moving a control
calls your `update(**values)`, which changes artists (`set_data`,
`set_height`, ...) and may return a text readout; the figure is then drawn
once and sent to the page as a PNG in an `ipywidgets.Image`. Every call is
timed, so benchmarks and tests can read `timings`.

Used in every notebook with a slider.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
import threading
import time
import weakref
from typing import Callable

import ipywidgets as W
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg

__all__ = ["LiveFigure", "slider", "int_slider", "toggle", "instances", "sweep"]

_INSTANCES: "weakref.WeakSet[LiveFigure]" = weakref.WeakSet()

_STYLE = {"description_width": "11em"}
_LAYOUT = {"width": "34em"}
_CHAR_EM = 0.6  # width of one label character, in em (a generous average for the UI font)

# Height budget of an explorer (controls + picture + readout), in CSS px: fits a 1280x800 window
# below the browser's and the notebook's bars. Measured in Chromium (tests/browser): one control
# row is 32 px in ipywidgets 7 and 8 (28 px + margins), a row of toggle buttons 56 px in
# ipywidgets 8 (its label sits above the buttons), one readout line about 17 px.
MAX_HEIGHT_PX = 720
# Width of JupyterLab's output area in a 1280 px window with its file browser open (848 px
# measured): a wider PNG is shrunk by the browser, which blurs its text
MAX_WIDTH_PX = 840
_ROW_PX = 32
_TOGGLE_PX = 56
_LINE_PX = 18
_LINE_CHARS = 110  # readout characters per line before the page wraps it (monospace, ~900 px)
_MIN_DPI = 72      # below this the figure's 8-10 pt text gets hard to read
_BACKGROUNDS = 8    # cached backgrounds per figure (one per axis range seen), oldest dropped


def _set_tooltip(widget, text: str):
    """Hover text on a control: `tooltip` in ipywidgets 8, `description_tooltip` in 7."""
    name = "tooltip" if "tooltip" in widget.trait_names() else "description_tooltip"
    setattr(widget, name, text)
    return widget


def _fit_labels(widgets):
    """One label width for a column of controls, wide enough that no label is cut."""
    longest = max((len(w.description) for w in widgets if getattr(w, "description", "")),
                  default=0)
    width = f"{max(11.0, round(longest * _CHAR_EM + 1.0, 1))}em"
    for w in widgets:
        if hasattr(w, "style") and hasattr(w.style, "description_width"):
            w.style.description_width = width


def slider(description: str, min: float, max: float, value: float, step: float | None = None,
           *, fmt: str = ".3g", log: bool = False, continuous_update: bool = True,
           tooltip: str | None = None):
    """A labelled float slider (log-scale with log=True: min and max are the real values).

    `tooltip` (default: the label) is shown when the pointer rests on the control.

    Used in every notebook with a slider.
    """
    if not min <= value <= max:
        raise ValueError(f"`value`={value} must lie in [`min`={min}, `max`={max}]")
    if log:
        if min <= 0:
            raise ValueError(f"`min` must be > 0 for a log slider, got {min}")
        exps = (math.log10(min), math.log10(max))
        w = W.FloatLogSlider(value=value, base=10, min=exps[0], max=exps[1],
                             step=step or (exps[1] - exps[0]) / 60, description=description,
                             readout_format=fmt, continuous_update=continuous_update,
                             style=_STYLE, layout=_LAYOUT)
    else:
        w = W.FloatSlider(value=value, min=min, max=max, step=step or (max - min) / 100,
                          description=description, readout_format=fmt,
                          continuous_update=continuous_update, style=_STYLE, layout=_LAYOUT)
    return _set_tooltip(w, tooltip or description)


def int_slider(description: str, min: int, max: int, value: int, step: int = 1, *,
               continuous_update: bool = True, tooltip: str | None = None):
    """A labelled integer slider (`tooltip` as in `slider`).

    Used in every notebook with a slider.
    """
    if not min <= value <= max:
        raise ValueError(f"`value`={value} must lie in [`min`={min}, `max`={max}]")
    w = W.IntSlider(value=value, min=min, max=max, step=step, description=description,
                    continuous_update=continuous_update, style=_STYLE, layout=_LAYOUT)
    return _set_tooltip(w, tooltip or description)


def toggle(description: str, options, value=None, *, tooltip: str | None = None):
    """A row of buttons to pick one option (`tooltip` as in `slider`).

    Used in every notebook with a slider.
    """
    options = list(options)
    w = W.ToggleButtons(options=options, value=options[0] if value is None else value,
                        description=description, style={"description_width": "11em",
                                                        "button_width": "auto"})
    return _set_tooltip(w, tooltip or description)


class LiveFigure:
    """A figure plus controls; moving a control updates the artists in place.

    fig: a figure made with `bn_helpers.plots.new_figure(..., interactive=True)`.
    update: function(**values) that changes artists and may return a string,
    shown under the figure (readouts such as a condition number).
    controls: {name: widget}; `name` is the keyword `update` receives.

    animated: artists that change on every update. They are drawn over a
    cached picture of everything else (blitting), which is much faster than
    a full draw; new axis limits or texts need a full draw once (then cached).

    max_height, max_width: the whole explorer's height budget and the
    picture's width budget in CSS px (defaults MAX_HEIGHT_PX, MAX_WIDTH_PX:
    a 1280x800 window). If the figure at `dpi` would not fit beside its
    controls and readout, it is drawn at a lower dpi (not below 72) so that
    it does: the PNG is then shown at its own pixel size, as sharp as
    before, only smaller (and faster to draw and send). None: no limit.

    After construction the figure has been drawn once. `timings` holds
    (compute_ms, draw_ms, encode_ms) for every call; `calls` counts them.

    Inside a running kernel the figure follows a drag: a control change only
    wakes a drawing thread, which always draws the newest values, so changes
    that arrive while a frame is being drawn are merged into the next frame
    (`changes` counts control changes, `calls` frames). threaded=False draws
    in the caller instead (tests, benchmarks). warm=True runs `update` once
    for every option of each toggle and both ends of each integer slider
    before the figure is shown, so no first use of a control waits for JAX
    to compile.

    Used in every notebook with a slider.
    """

    def __init__(self, fig, update: Callable[..., str | None], controls: dict, *, dpi: int = 100,
                 animated=(), threaded: bool | None = None, warm: bool = True,
                 max_height: int | None = MAX_HEIGHT_PX, max_width: int | None = MAX_WIDTH_PX):
        if not controls:
            raise ValueError("`controls` must hold at least one widget")
        self.fig = fig
        self.update = update
        self.controls = dict(controls)
        _fit_labels(self.controls.values())
        self.dpi = dpi
        self.max_height, self.max_width = max_height, max_width
        fig.set_dpi(dpi)
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        self.animated = list(animated)
        for artist in self.animated:
            artist.set_animated(True)
        self._backgrounds = {}   # static state -> cached picture of the static artists
        self._static_key = None
        self._layout_frozen = False
        # Shown at its own pixel size: stretching to the output's width would blur it
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
        self.readout = W.HTML()
        self.timings: list[tuple[float, float, float]] = []
        self.calls = 0
        self.changes = 0
        self.error: Exception | None = None
        self.threaded = _in_kernel() if threaded is None else bool(threaded)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self.ui = W.VBox([W.VBox(list(self.controls.values())), self.image, self.readout],
                         layout=W.Layout(align_items="flex-start"))
        for w in self.controls.values():
            w.observe(self._on_change, names="value")
        if warm:
            self.warm_up()
        self.refresh()
        _INSTANCES.add(self)

    def values(self) -> dict:
        return {name: w.value for name, w in self.controls.items()}

    def warm_up(self):
        """Run `update` for every value a control can reach that may need a new compile."""
        reach = {name: _reachable(w) for name, w in self.controls.items()}
        reach = {name: vals for name, vals in reach.items() if vals}
        combos = math.prod(len(v) for v in reach.values()) if reach else 0
        now = self.values()
        if 0 < combos <= 16:
            for vals in itertools.product(*reach.values()):
                self.update(**{**now, **dict(zip(reach, vals))})
        else:
            for name, vals in reach.items():
                for v in vals:
                    self.update(**{**now, name: v})

    def _on_change(self, _change):
        self.changes += 1
        if not self.threaded:
            self.refresh()
            return
        self._wake.set()
        if self._worker is None:
            self._worker = threading.Thread(target=_draw_loop, args=(weakref.ref(self), self._wake),
                                            daemon=True, name="LiveFigure")
            self._worker.start()

    def refresh(self):
        """Recompute, redraw and re-encode the figure from the current control values."""
        with self._lock:
            self._refresh()

    def _refresh(self):
        t0 = time.perf_counter()
        try:
            text = self.update(**self.values())
        except Exception as err:  # show it in the page, then re-raise for tests/logs
            self.error = err
            self.readout.value = f"<b style='color:#D55E00'>Error: {type(err).__name__}: {err}</b>"
            raise
        t1 = time.perf_counter()
        if not self._layout_frozen:  # the first frame: fit the window before laying out
            self._fit_window(text)
        self.draw()
        t2 = time.perf_counter()
        self.image.value = self.png()
        t3 = time.perf_counter()
        if text is not None:
            # Wrap long readouts between words, never inside one
            self.readout.value = (f"<pre style='margin:0; white-space:pre-wrap; "
                                  f"word-break:normal; overflow-wrap:normal'>{text}</pre>")
        self.timings.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
        self.calls += 1

    def _fit_window(self, text):
        """Lower the dpi so controls + picture + readout fit `max_height` and the picture fits
        `max_width` (see the class doc)."""
        fits = [self.dpi]
        if self.max_height is not None:
            lines = sum(max(1, math.ceil(len(line) / _LINE_CHARS))
                        for line in str(text).splitlines()) if text else 0
            rows = sum(_TOGGLE_PX if isinstance(w, W.ToggleButtons) else _ROW_PX
                       for w in self.controls.values())
            budget = self.max_height - rows - _LINE_PX * lines - 8
            fits.append(int(budget / self.fig.get_figheight()))
        if self.max_width is not None:
            fits.append(int(self.max_width / self.fig.get_figwidth()))
        dpi = max(_MIN_DPI, min(fits))
        if dpi != self.dpi:
            self.dpi = dpi
            self.fig.set_dpi(dpi)

    def _static_state(self):
        """What the cached background depends on: limits and texts of every axes."""
        return tuple((ax.get_xlim(), ax.get_ylim(), ax.get_title(), ax.get_xlabel(),
                      ax.get_ylabel(), tuple(t.get_text() for t in ax.texts))
                     for ax in self.fig.axes)

    def draw(self):
        """Draw the figure: a full draw when needed, else blit the animated artists."""
        canvas = self.fig.canvas
        key = self._static_state()
        if (background := self._backgrounds.get(key) if self.animated else None) is None:
            canvas.draw()  # animated artists are skipped by a full draw
            # Lay out once, then freeze: constrained layout costs more than the drawing
            if not self._layout_frozen:
                self._layout_frozen = True
                if self.fig.get_layout_engine() is not None:
                    self.fig.set_layout_engine("none")
                    canvas.draw()
            self._static_key = key   # the state of the last full draw
            if self.animated:  # keep a few: a toggle between axis ranges then blits
                self._backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
                while len(self._backgrounds) > _BACKGROUNDS:
                    self._backgrounds.pop(next(iter(self._backgrounds)))
        else:
            canvas.restore_region(background)
        for artist in self.animated:
            artist.axes.draw_artist(artist) if artist.axes else self.fig.draw_artist(artist)

    def png(self) -> bytes:
        """The figure as last drawn, encoded as PNG (no second draw)."""
        image = PIL.Image.fromarray(np.asarray(self.fig.canvas.buffer_rgba()))
        if self.fig.get_facecolor()[3] == 1.0:
            # Opaque figure: RGB, a quarter less data to compress (about 1.5x faster to encode)
            image = image.convert("RGB")
        buf = io.BytesIO()
        # Fast zlib level: the PNG only travels to the page
        image.save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def _ipython_display_(self):
        from IPython.display import display

        if not hasattr(self.ui, "_repr_mimebundle_"):  # ipywidgets 7
            display(self.ui)
            return
        # The live widget, plus the current PNG for viewers without a kernel (HTML export)
        bundle = dict(self.ui._repr_mimebundle_() or {})
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        bundle["text/plain"] = "LiveFigure (move the controls in a running notebook)"
        display(bundle, raw=True)


def _in_kernel() -> bool:
    """True inside a running Jupyter kernel (where a control change arrives as a message)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def _reachable(w) -> list:
    """Values of a control that may change shapes or branches: options, integer ends."""
    if hasattr(w, "options") and not hasattr(w, "min"):
        return [o[1] if isinstance(o, tuple) else o for o in w.options]
    if isinstance(w, W.IntSlider):
        return sorted({w.min, w.max})
    if isinstance(w, (W.Checkbox, W.ToggleButton)):
        return [False, True]
    return []


def _draw_loop(ref, wake: threading.Event):
    """Drawing thread of one LiveFigure: wait for a change, draw the newest values, repeat."""
    while True:
        if not wake.wait(timeout=10.0):
            if ref() is None:
                return
            continue
        wake.clear()
        live = ref()
        if live is None:
            return
        try:
            live.refresh()
        except Exception:  # noqa: BLE001 - refresh already shows it in the readout
            pass
        del live


def instances() -> list:
    """Every LiveFigure alive in this kernel, in creation order of their figures' ids.

    Used by benchmarks/sliders.py to time every slider of a notebook.
    """
    return list(_INSTANCES)


def _control_values(w, n: int) -> list:
    """n values spread over a control's range (each option of a toggle)."""
    if hasattr(w, "options") and not hasattr(w, "min"):
        opts = [o[1] if isinstance(o, tuple) else o for o in w.options]
        return (opts * n)[:n] if opts else []
    if isinstance(w, W.FloatLogSlider):
        lo, hi = w.base ** w.min, w.base ** w.max
        return list(np.geomspace(lo, hi, n))
    if isinstance(w, (W.IntSlider,)):
        return [int(v) for v in np.linspace(w.min, w.max, n).round()]
    if isinstance(w, (W.Checkbox, W.ToggleButton)):
        return [bool(i % 2) for i in range(n)]
    return list(np.linspace(w.min, w.max, n))


def sweep(live: LiveFigure, n: int = 20) -> dict:
    """Move every control of `live` through n values; return update times in ms per control.

    {name: {"compute+draw": [...], "encode": [...]}}. Each control returns to
    its original value afterwards.

    Used by benchmarks/sliders.py.
    """
    out = {}
    threaded, live.threaded = live.threaded, False  # timed in the caller, one frame per value
    for name, w in live.controls.items():
        start = w.value
        before = len(live.timings)
        for v in _control_values(w, n):
            if v != w.value:
                w.value = v
        times = live.timings[before:]
        w.value = start
        out[name] = {"compute+draw": [c + d for c, d, _ in times], "encode": [e for _, _, e in times]}
    live.threaded = threaded
    return out
