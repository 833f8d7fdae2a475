"""Figures of notebooks/03_init.ipynb, drawn from what `bn_helpers.init` computed.

One colour, one meaning in notebook 03: BN blue and no BN vermillion (as in every notebook), one
colour per init scheme (`INIT_COLORS`), black for reference lines, grey for the values of one
network. Used in notebooks/03_init.ipynb.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from .. import init as _init
from .. import plots, widgets

__all__ = ["INIT_COLORS", "BN_COLORS", "GREY", "REF", "explorer", "variance_figure",
           "gradient_figure", "update_ratio_figure", "sweep_figure", "bjorck_figure",
           "quiz_figure"]

INIT_COLORS = {"gaussian": plots.PALETTE["orange"], "xavier": plots.PALETTE["green"],
               "he": plots.PALETTE["purple"]}
BN_COLORS = {True: plots.COLORS["bn"], False: plots.COLORS["no_bn"]}
GREY, REF = "0.4", plots.COLORS["ref"]
Z_LIM, G_LO, G_HI = 6.0, -30.0, 5.0
SLOPE_EDGE = {"sigmoid": 4.36, "tanh": 2.19}    # |z| where the slope falls below 5 % of its maximum


def _band(ax, x, runs, color, **kw):
    """Median line and min-max band of runs (seeds, len(x))."""
    ax.fill_between(x, runs.min(0), runs.max(0), color=color, alpha=0.25, lw=0)
    return ax.plot(x, np.median(runs, 0), "o-", ms=3, color=color, **kw)


def explorer(x, y):
    """The layer-statistics explorer: histograms of z and dL/dz in the last layer, per-layer
    spreads, and controls for activation, init, BN, Gaussian std and depth (a LiveFigure)."""
    fig, axes = plots.new_figure(2, 2, size=(9.6, 5.0), interactive=True)
    (ax_z, ax_g), (ax_zs, ax_gs) = axes
    zones = [Rectangle((0, 0), 0, 1, transform=ax_z.get_xaxis_transform(), color="0.88",
                       zorder=0) for _ in range(2)]
    for r in zones:
        ax_z.add_patch(r)
    hist_z = plots.hist(ax_z, [], bins=60, range=(-Z_LIM, Z_LIM), percent=True, color=GREY)
    hist_g = plots.hist(ax_g, [], bins=70, range=(G_LO, G_HI), percent=True, color=GREY)
    ax_z.set(xlim=(-Z_LIM, Z_LIM), ylim=(0, 40))
    ax_g.set(xlim=(G_LO, G_HI), ylim=(0, 40))
    plots.label(ax_z, "Input z to the nonlinearity, last layer", "z (grey: saturated or off)",
                "share of values [%]")
    plots.label(ax_g, "Gradient reaching the last layer", "log10 |dL/dz|",
                "share of nonzero values [%]")
    layers = np.arange(1, _init.MAX_DEPTH + 1)
    (line_z,) = ax_zs.plot([], [], "o-", ms=2.5, color=GREY)
    (line_g,) = ax_gs.plot([], [], "o-", ms=2.5, color=GREY)
    marks = [ax.axvline(20, color=REF, ls=":", lw=1) for ax in (ax_zs, ax_gs)]
    # The setting, on the figure itself (a static copy of the notebook loses the controls)
    setting = fig.suptitle("tanh, Gaussian std 0.01, BN off, depth 20", fontsize=11)
    for ax, ylim in ((ax_zs, (1e-25, 1e5)), (ax_gs, (1e-30, 1e5))):
        ax.set(yscale="log", xlim=(0.5, _init.MAX_DEPTH + 0.5), ylim=ylim)
    plots.label(ax_zs, "Spread of z in every layer", "hidden layer", "std of z")
    plots.label(ax_gs, "Spread of the gradient in every layer", "hidden layer", "std of dL/dz")

    def update(activation, init, bn, std, depth):
        s = _init.layer_stats(x, y, activation=activation, init=init, std=std, bn=bn == "on",
                              depth=depth)
        z, g = s["z"].ravel(), np.abs(s["grad_z"].ravel())
        z = z[np.isfinite(z)]
        plots.set_hist(hist_z, np.clip(z, -Z_LIM + 1e-3, Z_LIM - 1e-3))
        g = np.log10(g[np.isfinite(g) & (g > 0)])
        plots.set_hist(hist_g, np.clip(g, G_LO + 1e-3, G_HI - 1e-3))
        piled_z = 100 * np.mean(np.abs(z) > Z_LIM) if z.size else 0.0
        piled_g = 100 * np.mean((g < G_LO) | (g > G_HI)) if g.size else 0.0
        name = init if init != "gaussian" else f"Gaussian std {std:.3g}"
        setting.set_text(f"{activation}, {name}, BN {bn}, depth {depth}")
        edge = SLOPE_EDGE.get(activation)
        zones[0].set_bounds(-Z_LIM, 0, Z_LIM - edge if edge else Z_LIM, 1)  # ReLU: all of z <= 0
        zones[1].set_bounds(edge or Z_LIM, 0, Z_LIM - edge if edge else 0, 1)
        line_z.set_data(layers[:depth], s["z_std"])
        line_g.set_data(layers[:depth], s["grad_z_std"])
        for m in marks:
            m.set_xdata([depth, depth])
        off = ("dead ReLUs (z <= 0 for all 128 images)" if activation == "relu"
               else "saturated values")
        share = s["dead"][-1] if activation == "relu" else s["saturated"][-1]
        bad = ("" if np.isfinite(s["loss"])
               else "\n  overflow: values exceeded float32's range (inf/NaN)")
        peak = hist_z.get_data().values.max()
        cut = f"   (tallest bar: {peak:.0f} %, cut at 40 %)" if peak > 40 else ""
        return (f"layer {depth}: std of z = {s['z_std'][-1]:.3g}   {off}: {100 * share:.1f} %   "
                f"std of dL/dz = {s['grad_z_std'][-1]:.3g}{cut}\n"
                f"layer 1:  std of z = {s['z_std'][0]:.3g}   std of dL/dz = "
                f"{s['grad_z_std'][0]:.3g}   initial loss = {s['loss']:.3g} (chance: ln 10 = 2.30)"
                f"{bad}\npiled into the end bins: z beyond ±{Z_LIM:g}: {piled_z:.1f} %, "
                f"log10 |dL/dz| outside [{G_LO:g}, {G_HI:g}]: {piled_g:.1f} %")

    controls = {
        "activation": widgets.toggle("activation", ["tanh", "sigmoid", "relu"]),
        "init": widgets.toggle("init", ["gaussian", "xavier", "he"]),
        "bn": widgets.toggle("BN", ["off", "on"]),
        "std": widgets.slider("gaussian std", 0.001, 10.0, value=0.01, log=True),
        "depth": widgets.int_slider("depth", 1, _init.MAX_DEPTH, value=20),
    }
    # blitting draws in this order: the grey zones go first
    return widgets.LiveFigure(fig, update, controls,
                              animated=[*zones, hist_z, hist_g, line_z, line_g, *marks, setting])


def variance_figure(var_prop, inits, *, num_digits):
    """Measured (median, range) and predicted Var[z] per layer, and their ratio, per init."""
    fig, (ax, ax_r) = plots.new_figure(1, 2, size=(10, 3.9))
    n_seeds = next(iter(var_prop.values()))["measured"].shape[0]
    for name, v in var_prop.items():
        measured, predicted = v["measured"], v["predicted"]
        depth = np.arange(1, measured.shape[1] + 1)
        color = INIT_COLORS[inits[name][0]]
        _band(ax, depth, measured, color, label=f"{name}: measured")
        ax.plot(depth, predicted, "--", color=color, lw=1.5, label=f"{name}: predicted")
        _band(ax_r, depth, measured / predicted, color, label=name)
    ax.set_yscale("log")
    plots.label(ax, f"Var[z] per layer (median, range of {n_seeds} networks)", "hidden layer",
                "Var[z]")
    ax.legend(ncol=2, loc="lower left", fontsize=7)
    ax_r.axhline(1, color=REF, ls="--", lw=1, label="prediction")
    ax_r.set_yscale("log")
    plots.label(ax_r, f"Measured / predicted Var[z] ({n_seeds} networks per init)",
                "hidden layer", "measured / predicted", legend=True)
    fig.suptitle(f"Plain ReLU MLP ({len(depth)} layers x 256 units, biases 0) at init, "
                 f"{num_digits} digits", fontsize=11)
    plt.show()


def gradient_figure(grad_std, *, depth, width):
    """std of dL/dz per layer, one panel per activation, with and without BN.

    grad_std: {(activation, bn): (seeds, depth)}."""
    fig, axes = plots.new_figure(1, 3, size=(10, 3.4), sharey=True)
    layers = np.arange(1, depth + 1)
    for ax, act in zip(axes, _init.ACTIVATIONS, strict=True):
        for bn in (False, True):
            _band(ax, layers, grad_std[act, bn], BN_COLORS[bn],
                  label="with BN" if bn else "without BN")
        ax.set_yscale("log")
        plots.label(ax, f"{act}, Xavier init", "hidden layer",
                    "std of dL/dz" if ax is axes[0] else "", legend=act == "sigmoid")
    n = grad_std[_init.ACTIVATIONS[0], False].shape[0]
    fig.suptitle(f"Gradient reaching each layer of a {depth} x {width} MLP at init ({n} networks: "
                 "median and range)", fontsize=11)
    plt.show()


def update_ratio_figure(log_ratios, *, title):
    """log10 update/data per weight matrix over the steps (one network per panel)."""
    n_layers = next(iter(log_ratios.values())).shape[1]
    cmap, layer_norm = plt.get_cmap("viridis"), Normalize(vmin=1, vmax=n_layers)
    fig, axes = plots.new_figure(1, len(log_ratios), size=(10, 3.4), sharey=True)
    for ax, (name, ratios) in zip(axes, log_ratios.items(), strict=True):
        for layer in range(n_layers):
            ax.plot(ratios[:, layer], color=cmap(layer_norm(layer + 1)), lw=1)
        ax.axhline(-3, color=REF, ls="--", lw=1)
        ax.set_ylim(-12, 1)
        plots.label(ax, name, "SGD step", "log10 update / data" if ax is axes[0] else "")
    bar = fig.colorbar(ScalarMappable(norm=layer_norm, cmap=cmap), ax=list(axes), pad=0.01)
    bar.set_label(f"weight matrix (1 = first hidden layer, {n_layers} = output layer)", fontsize=8)
    fig.suptitle(title, fontsize=11)
    plt.show()


def sweep_figure(scales, acc, *, title, he_std):
    """Test accuracy against the init scale: {bn: (scales, seeds)}, median line and range."""
    fig, ax = plots.new_figure(size=(7.2, 3.6))
    for bn, a in acc.items():
        ax.fill_between(scales, a.min(1), a.max(1), color=BN_COLORS[bn], alpha=0.25, lw=0)
        ax.plot(scales, np.median(a, 1), "o-", ms=4, color=BN_COLORS[bn],
                label=f"{'with' if bn else 'without'} BN (median, range of {a.shape[1]} seeds)")
    ax.axhline(0.1, color=REF, ls=":", lw=1, label="chance")
    ax.axvline(he_std, color=REF, ls="--", lw=1, label=f"He std for fan_in 50 ({he_std:.2f})")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    plots.label(ax, title, "weight std s (every layer)", "test accuracy")
    ax.legend(loc="upper right", fontsize=8)
    plt.show()


def bjorck_figure(grads, *, block):
    """Unclipped histograms of one network's gradient entries {bn: flat array}, log counts, with
    the Gaussian of the same mean and std."""
    fig, axes = plots.new_figure(1, 2, size=(9.6, 3.4))
    for ax, bn in zip(axes, (True, False), strict=True):
        g = grads[bn]
        lim = float(np.abs(g).max()) * 1.02          # the whole range: the tails stay in the picture
        counts, edges, _ = ax.hist(g, bins=81, range=(-lim, lim), color=BN_COLORS[bn])
        grid = np.linspace(-lim, lim, 400)
        gauss = g.size * (edges[1] - edges[0]) * np.exp(
            -0.5 * ((grid - g.mean()) / g.std()) ** 2) / (g.std() * np.sqrt(2 * np.pi))
        ax.plot(grid, gauss, "--", color=REF, lw=1, label="Gaussian, same std")
        ax.set_yscale("log")
        ax.set_ylim(0.5, 2 * counts.max())
        beyond = np.mean(np.abs(g) > 3 * g.std())
        plots.label(ax, f"{'With' if bn else 'Without'} BN: dL/dW1 of block {block} (seed 0)",
                    "gradient entry", f"count (of {g.size:,})")
        ax.text(0.02, 0.97, f"beyond 3 std: {100 * beyond:.2f} %\n(Gaussian: 0.27 %)",
                transform=ax.transAxes, va="top", fontsize=8)
        ax.legend(loc="upper right", fontsize=8)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    plt.show()


def quiz_figure(quiz):
    """The three layer-20 histograms of exercise 3, values beyond ±3 piled into the end bins."""
    fig, axes = plots.new_figure(1, 3, size=(9.6, 2.9), sharey=True)
    for ax, (letter, z) in zip(axes, quiz.items(), strict=True):
        z = np.ravel(z)
        piled = np.clip(z, -2.99, 2.99)
        plots.hist(ax, piled, bins=60, range=(-3, 3), percent=True, color=GREY)
        ax.set_ylim(0, 40)
        peak = 100 * np.max(np.histogram(piled, bins=60, range=(-3, 3))[0]) / z.size
        cut = f"\ntallest bar {peak:.0f} % (axis cut at 40 %)" if peak > 40 else ""
        ax.text(0.5, 0.97, f"beyond ±3 (in the end bins): {100 * np.mean(np.abs(z) > 3):.0f} %"
                f"{cut}", transform=ax.transAxes, ha="center", va="top", fontsize=8,
                bbox={"fc": "white", "ec": "none", "alpha": 0.85})
        plots.label(ax, f"Histogram {letter}", "z in layer 20 (piled at ±3)",
                    "share of values [%]" if letter == "A" else "")
    fig.suptitle("z in layer 20 of a 20-layer tanh network at init, three inits", fontsize=11)
    plt.show()
