"""One look for every figure: colour-blind-safe palette, labelled axes, small helpers.

Every helper returns the figure and the artists it made, so a slider can
update them in place (`bn_helpers.widgets`).

Used in every notebook.
"""

from __future__ import annotations

import contextlib

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "COLORS",
    "RC",
    "style",
    "new_figure",
    "label",
    "lines",
    "hist",
    "set_hist",
]

# Okabe & Ito's palette, safe for the common forms of colour blindness
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}
# Fixed meanings, the same in every notebook
COLORS = {"bn": PALETTE["blue"], "no_bn": PALETTE["vermillion"], "ref": PALETTE["black"],
          "raw": PALETTE["vermillion"], "normalized": PALETTE["blue"], "whitened": PALETTE["green"]}
_CYCLE = [PALETTE[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky", "black")]

RC = {
    "axes.prop_cycle": mpl.cycler(color=_CYCLE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
}


@contextlib.contextmanager
def style():
    """Context in which figures get the course's look (no global side effects).

    Used in every notebook.
    """
    with mpl.rc_context(RC):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, *, size=None, interactive: bool = False, **kw):
    """Create (fig, axes) with the course's look.

    size: (width, height) in inches; default 3.6 x 2.8 per panel, capped at 10 wide.
    interactive=True makes a figure outside pyplot: it is not shown by the
    inline backend on its own and belongs to a slider (`bn_helpers.widgets`).
    `axes` is a single Axes for 1x1, else an array.

    Used in every notebook.
    """
    if size is None:
        size = (min(3.6 * ncols, 10.0), 2.8 * nrows)
    with style():
        if interactive:
            fig = Figure(figsize=size, layout="constrained")
            axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
        else:
            fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)
    for ax in axes.flat:
        _apply_axes_style(ax)
    return fig, (axes[0, 0] if axes.size == 1 else axes.squeeze())


def _apply_axes_style(ax):
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, alpha=0.3)
    ax.set_axisbelow(True)


def label(ax, title: str, xlabel: str, ylabel: str, *, legend: bool = False):
    """Title and axis labels (give units in brackets), optional legend.

    Used in every notebook.
    """
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend()
    return ax


def lines(ax, x, ys: dict, *, colors: dict | None = None, **kw):
    """Plot one line per entry of `ys` ({label: values}); returns {label: Line2D}.

    Used in every notebook.
    """
    out = {}
    for name, y in ys.items():
        color = (colors or {}).get(name)
        (out[name],) = ax.plot(np.asarray(x), np.asarray(y), label=name, color=color, **kw)
    return out


def hist(ax, values, *, bins: int = 40, range=(-4.0, 4.0), density: bool = True,
         percent: bool = False, **kw):
    """Histogram with fixed bins, drawn as one filled step patch (fast to redraw).

    percent=True shows the share of values per bin in %, else density or counts.
    Returns the StepPatch; `set_hist` later changes only its heights.

    Used in notebooks/00_start_here.ipynb and notebooks/03_init.ipynb.
    """
    edges = np.linspace(range[0], range[1], bins + 1)
    patch = ax.stairs(np.zeros(bins), edges, fill=True, **kw)
    patch.hist_mode = "percent" if percent else "density" if density else "count"
    set_hist(patch, values)
    return patch


def set_hist(patch, values):
    """Update a `hist` in place with new values (same bins); returns the new heights.

    Used in notebooks/00_start_here.ipynb and notebooks/03_init.ipynb.
    """
    edges = patch.get_data().edges
    values = np.asarray(values).ravel()
    heights, _ = np.histogram(values, bins=edges, density=patch.hist_mode == "density")
    if patch.hist_mode == "percent":
        heights = 100.0 * heights / max(values.size, 1)
    heights = np.nan_to_num(heights.astype(float))
    patch.set_data(heights)
    return heights
