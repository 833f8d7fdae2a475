"""Figures of notebooks/07_why_bn_works.ipynb: the noise-scale explorer, internal covariate shift
two ways, the step-length explorer of the loss landscape, accuracy against learning rate, and
weight norms with and without weight decay. They draw what `bn_helpers.why_bn_works` measured.

One colour, one meaning, in every figure of the notebook: blue, BN; vermillion, the standard
network (no BN); sky blue (dashed), BN with injected noise; orange (dashed), the standard
network with the same noise; green, runs with weight decay; purple, BN placed after the
nonlinearity. Lines are seed medians, shaded bands run from the lowest to the highest seed.

Used in notebooks/07_why_bn_works.ipynb.
"""

from __future__ import annotations

import numpy as np

from .. import plots, widgets
from ..why_bn_works import band

__all__ = ["COLORS", "noise_explorer", "ics_figure", "landscape_explorer", "lr_figure",
           "weight_norm_figure", "cnn_ics_figure", "one_step_figure", "gap_figure", "placement_figure"]

COLORS = {"BN": plots.COLORS["bn"], "standard": plots.COLORS["no_bn"],
          "noisy BN": plots.PALETTE["sky"], "standard + noise": plots.PALETTE["orange"],
          "weight decay": plots.PALETTE["green"], "BN after": plots.PALETTE["purple"]}
_STYLE = {"BN": "-", "standard": "-", "noisy BN": "--", "standard + noise": "--"}


def _band_artists(ax, x, values, color, ls="-", label=None):
    med, lo, hi = band(values)
    poly = ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    (line,) = ax.plot(x, med, ls, color=color, label=label)
    return line, poly


def _set_band(line, poly, x, values):
    """Move a band in place; `values` (seeds, points) or its precomputed (median, min, max)."""
    med, lo, hi = values if isinstance(values, tuple) else band(values)
    line.set_data(x, med)
    poly.set_verts([np.column_stack([np.r_[x, x[::-1]], np.r_[lo, hi[::-1]]])])


def windowed(values, window: int):
    """Means over consecutive windows of the last axis; returns (centres, means)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[-1] // window * window
    means = v[..., :n].reshape(v.shape[:-1] + (-1, window)).mean(-1)
    return (np.arange(means.shape[-1]) + 0.5) * window, means


def noise_explorer(runs: dict, scales, *, lr: float, window: int):
    """Training loss and test accuracy of the four networks; the slider picks the noise scale.

    runs: {"BN": r, "standard": r, ("noisy BN", s): r, ("standard + noise", s): r} with
    FitResults of `fit_many` over seeds; scale 0 shows the plain networks in the noisy slots.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    scales = [float(s) for s in scales]
    fig, (ax_loss, ax_acc) = plots.new_figure(1, 2, size=(10, 3.6), interactive=True)
    base = {"BN": runs["BN"], "standard": runs["standard"]}

    def pick(name, s):
        if s == 0:
            return base["BN" if name == "noisy BN" else "standard"]
        return runs[(name, s)]

    artists, cache = {}, {}
    for s in scales:
        for name in ("BN", "standard", "noisy BN", "standard + noise"):
            r = base[name] if name in base else pick(name, s)
            centres, loss = windowed(np.nan_to_num(np.asarray(r.loss), nan=10.0, posinf=10.0), window)
            acc = np.asarray(r.test_acc)
            cache[name, s] = (centres, np.minimum(loss, 10.0), r.eval_steps, acc,
                              band(np.minimum(loss, 10.0)), band(acc))
    s0 = scales[min(1, len(scales) - 1)]
    for name in ("BN", "standard", "noisy BN", "standard + noise"):
        centres, loss, steps, acc = cache[name, s0][:4]
        artists[name] = (_band_artists(ax_loss, centres, loss, COLORS[name], _STYLE[name], name),
                         _band_artists(ax_acc, steps, acc, COLORS[name], _STYLE[name], name))
    ax_loss.set_yscale("log")
    top = max(c[1].max() for c in cache.values())
    bottom = min(c[1][c[1] > 0].min() for c in cache.values())
    ax_loss.set_ylim(bottom * 0.8, top * 1.25)
    ax_acc.set_ylim(0, 1.0)
    ax_acc.axhline(0.1, color="0.5", ls=":", lw=1)
    plots.label(ax_loss, f"training loss (means over {window} steps)", "training step", "loss")
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_acc.set_title(f"test accuracy, lr {lr:g}")
    # The setting on the figure's face; an animated figure text, so moving the slider only blits
    note = fig.text(0.99, 0.99, "", ha="right", va="top", fontsize=10)

    def update(scale):
        s = min(scales, key=lambda v: abs(v - scale))
        for name, ((l1, p1), (l2, p2)) in artists.items():
            centres, _, steps, _, loss_band, acc_band = cache[name, s]
            _set_band(l1, p1, centres, loss_band)
            _set_band(l2, p2, steps, acc_band)
        note.set_text(f"noise scale {s:g}")
        finals = {n: np.median(cache[n, s][3][:, -1]) for n in artists}
        return "final test accuracy (seed median): " + ", ".join(f"{n} {v:.3f}" for n, v in finals.items())

    slider = widgets.slider("noise scale", min(scales), max(scales), s0,
                            step=(max(scales) - min(scales)) / max(len(scales) - 1, 1), fmt=".2g",
                            tooltip="scale of the injected noise (1 = Santurkar et al.'s constants)")
    ax_acc.set_xlabel("training step")
    ax_acc.set_ylabel("test accuracy")
    animated = [a for pair in artists.values() for lp in pair for a in lp] + [note]
    return widgets.LiveFigure(fig, update, {"scale": slider}, animated=animated)


def ics_figure(drift_steps, drifts: dict, ics_steps, cos: dict, dln_cos: dict, *, layer_names,
               window: int):
    """Three panels: distribution drift of layer 1's input, gradient cosine on MNIST, and on the
    deep linear network. drifts/cos/dln_cos: {"BN"/"standard": (seeds, steps[, layers])}.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    import matplotlib.pyplot as plt  # noqa: F401  (a pyplot figure: shown inline)

    fig, axes = plots.new_figure(1, 3, size=(12, 3.4))
    for name in ("standard", "BN"):
        _band_artists(axes[0], drift_steps, drifts[name], COLORS[name], label=name)
        centres, c = windowed(cos[name], window)
        _band_artists(axes[1], centres, c, COLORS[name], label=name)
        for j, ls in enumerate(("-", "--")):
            centres_d, c = windowed(dln_cos[name][..., j], window)
            _band_artists(axes[2], centres_d, c, COLORS[name], ls, label=f"{name}, {layer_names[j]}")
    plots.label(axes[0], "drift of hidden layer 2's input", "training step",
                "|mean - start| / start std")
    plots.label(axes[1], f"MNIST MLP: cos(G, G'), output layer\n(means over {window} steps)",
                "training step", "cosine")
    plots.label(axes[2], f"25-layer linear net: cos(G, G')\n(means over {window} steps)",
                "gradient-descent step", "cosine")
    for ax in axes[1:]:
        ax.set_ylim(-0.05, 1.05)
        ax.axhline(1.0, color="0.5", ls=":", lw=1)
    for ax in axes:
        ax.legend(fontsize=7)
    return fig, axes


def landscape_explorer(records: dict, losses: dict, multipliers, *, lr: float, window: int):
    """Loss range and gradient change along the gradient direction; the slider sets the
    largest step (in multiples of the learning rate) included.

    records: {"BN"/"standard": `step_record` arrays (seeds, steps, multipliers)};
    losses: {name: result.loss (seeds, steps)}.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    mult = np.asarray(multipliers, dtype=np.float64)
    fig, (ax_l, ax_g) = plots.new_figure(1, 2, size=(10, 3.6), interactive=True)
    data = {}
    for name in ("standard", "BN"):
        loss_m = np.concatenate([np.asarray(losses[name])[..., None], np.asarray(records[name]["loss"])], -1)
        diff = np.asarray(records[name]["grad_diff"])
        # cumulative max/min over the multipliers: the slider only slices
        hi = np.maximum.accumulate(loss_m, axis=-1)[..., 1:]
        lo = np.minimum.accumulate(loss_m, axis=-1)[..., 1:]
        gmax = np.maximum.accumulate(diff, axis=-1)
        data[name] = [(windowed(np.moveaxis(a, -1, 0), window)) for a in (hi - lo, gmax)]
        data[name] = [(c, v, [band(v[j]) for j in range(v.shape[0])]) for c, v in data[name]]
    centres = data["standard"][0][0]
    artists = {}
    for name in ("standard", "BN"):
        artists[name] = (_band_artists(ax_l, centres, data[name][0][1][-1], COLORS[name], label=name),
                         _band_artists(ax_g, centres, data[name][1][1][-1], COLORS[name], label=name))
    for ax, i in ((ax_l, 0), (ax_g, 1)):
        vals = np.concatenate([data[n][i][1].ravel() for n in data])
        vals = vals[np.isfinite(vals) & (vals > 0)]
        ax.set_yscale("log")
        ax.set_ylim(vals.min() * 0.7, vals.max() * 1.4)
        ax.legend(fontsize=8)
    ax_l.set_xlabel("training step")
    ax_l.set_ylabel("max - min of the loss")
    ax_g.set_xlabel("training step")
    ax_g.set_ylabel("max ||g - g(step)||")
    ax_l.set_title(f"loss range along the gradient, lr {lr:g}")
    ax_g.set_title("gradient change along the gradient")
    note = fig.text(0.99, 0.99, "", ha="right", va="top", fontsize=10)

    def update(largest):
        j = int(np.searchsorted(mult, largest + 1e-9) - 1)
        j = max(j, 0)
        for name, ((l1, p1), (l2, p2)) in artists.items():
            _set_band(l1, p1, centres, data[name][0][2][j])
            _set_band(l2, p2, centres, data[name][1][2][j])
        note.set_text(f"steps up to {mult[j]:g} x lr")
        med = {n: np.median(data[n][0][1][j]) for n in artists}
        return (f"steps of 0 to {mult[j]:g} x lr along the gradient; median loss range over "
                f"training: standard {med['standard']:.3g}, BN {med['BN']:.3g}")

    slider = widgets.slider("largest step (x lr)", float(mult[0]), float(mult[-1]), float(mult[-1]),
                            step=float(np.min(np.diff(mult))) if mult.size > 1 else 1.0, fmt=".2g",
                            tooltip="the longest step along the gradient, in multiples of the learning rate")
    animated = [a for pair in artists.values() for lp in pair for a in lp] + [note]
    return widgets.LiveFigure(fig, update, {"largest": slider}, animated=animated)


def lr_figure(lrs, acc: dict, *, steps: int):
    """Final test accuracy against the learning rate, seed median and min-max band.

    acc: {"BN"/"standard": (rates, seeds)}; diverged runs (NaN) are drawn at chance and marked.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    fig, ax = plots.new_figure(1, 1, size=(6, 3.4))
    for name in ("standard", "BN"):
        a = np.asarray(acc[name], dtype=np.float64)
        nan = np.isnan(a).any(1)
        a = np.nan_to_num(a, nan=0.1)
        _band_artists(ax, lrs, a.T, COLORS[name], "o-", label=name)
        if nan.any():
            ax.plot(np.asarray(lrs)[nan], np.full(nan.sum(), 0.1), "x", color=COLORS[name], ms=9,
                    label=f"{name}: loss NaN (drawn at 0.1)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.axhline(0.1, color="0.5", ls=":", lw=1)
    plots.label(ax, f"test accuracy after {steps:,} steps (3 seeds)", "learning rate", "test accuracy")
    ax.legend(fontsize=8)
    return fig, ax


def weight_norm_figure(steps, norms: dict, eff: dict, *, lr: float, decay: float):
    """Weight norm of hidden layer 2 and its effective rate lr/||W||^2, with and without decay.

    norms/eff: {"no decay"/"weight decay": (seeds, evaluations)}.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    fig, (ax_n, ax_e) = plots.new_figure(1, 2, size=(10, 3.4))
    colors = {"no decay": COLORS["BN"], "weight decay": COLORS["weight decay"]}
    for name in ("no decay", "weight decay"):
        label = name if name == "no decay" else f"weight decay {decay:g}"
        _band_artists(ax_n, steps, norms[name], colors[name], label=label)
        _band_artists(ax_e, steps, eff[name], colors[name], label=label)
    ax_e.set_yscale("log")
    plots.label(ax_n, f"BN network, lr {lr:g}: ||W|| of hidden layer 2", "training step", "norm")
    plots.label(ax_e, "effective rate lr / ||W||^2", "training step", "rate")
    ax_n.legend(fontsize=8)
    ax_e.legend(fontsize=8)
    return fig, (ax_n, ax_e)


def cnn_ics_figure(l2: dict, loss: dict, *, layer_name: str, lr: float, window: int):
    """Gradient shift ||G - G'|| of one CNN layer and the training loss, per step, with and without BN.

    l2, loss: {"BN"/"standard": (seeds, steps)}.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    fig, (ax_g, ax_l) = plots.new_figure(1, 2, size=(10, 3.4))
    for name in ("standard", "BN"):
        centres, v = windowed(l2[name], window)
        _band_artists(ax_g, centres, v, COLORS[name], label=name)
        centres, v = windowed(loss[name], window)
        _band_artists(ax_l, centres, v, COLORS[name], label=name)
    ax_g.set_yscale("log")
    plots.label(ax_g, f"small CNN, lr {lr:g}: ||G - G'|| of the {layer_name}\n(means over {window} steps)",
                "training step", "l2 distance")
    plots.label(ax_l, f"training loss (means over {window} steps)", "training step", "loss")
    for ax in (ax_g, ax_l):
        ax.legend(fontsize=8)
    return fig, (ax_g, ax_l)


def one_step_figure(lrs, relative: dict, std_after: dict, std_before: dict, *, big_lr: float,
                    limit: float = 1e3):
    """Left: loss after / before one SGD step against its rate. Right: std of every hidden layer's
    output before and after one step of rate `big_lr`.

    relative: {name: (seeds, rates)}; std_after: {name: (seeds, layers)} at big_lr; std_before
    likewise at the initial weights. Values above 1e12 (and NaN) are drawn at 1e12 and marked.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    fig, (ax_r, ax_d) = plots.new_figure(1, 2, size=(10, 3.6))
    cap = 1e12
    for name in ("standard", "BN"):
        rel = np.asarray(relative[name], np.float64)
        clipped = ~(rel <= cap)
        _band_artists(ax_r, lrs, np.where(clipped, cap, rel), COLORS[name], "o-", label=name)
        if clipped.any():
            cols = clipped.any(0)
            ax_r.plot(np.asarray(lrs)[cols], np.full(cols.sum(), cap), "^", color=COLORS[name], ms=8,
                      label=f"{name}: above {cap:.0e} or NaN (drawn at the top)")
        depth = np.arange(1, np.shape(std_after[name])[-1] + 1)
        _band_artists(ax_d, depth, std_before[name], COLORS[name], ":", label=f"{name}, initial weights")
        _band_artists(ax_d, depth, std_after[name], COLORS[name], "o-", label=f"{name}, after one step")
    ax_r.axhline(limit, color="0.5", ls=":", lw=1)
    ax_r.text(lrs[0], limit * 1.5, f"{limit:.0e}: diverged", fontsize=8, color="0.4")
    for ax in (ax_r, ax_d):
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax_r.set_xscale("log")
    plots.label(ax_r, "one SGD step from the initial weights", "learning rate (step size)",
                "loss after / loss before")
    plots.label(ax_d, f"hidden layer outputs, one step of rate {big_lr:g}", "hidden layer", "std")
    return fig, (ax_r, ax_d)


def gap_figure(batch_sizes, gaps: dict, ghost_sizes, ghost_gaps, *, steps: int, batch: int):
    """Train minus test accuracy against the batch size (both networks) and against the ghost
    batch size of BN at a fixed batch.

    gaps: {"BN"/"standard": (sizes, seeds)}; ghost_gaps: (ghost sizes, seeds).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    fig, (ax_b, ax_g) = plots.new_figure(1, 2, size=(10, 3.4))
    for name in ("standard", "BN"):
        _band_artists(ax_b, batch_sizes, np.asarray(gaps[name]).T, COLORS[name], "o-", label=name)
    _band_artists(ax_g, ghost_sizes, np.asarray(ghost_gaps).T, COLORS["BN"], "o-",
                  label=f"BN, batch {batch}")
    for ax, sizes in ((ax_b, batch_sizes), (ax_g, ghost_sizes)):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(sizes), [str(v) for v in sizes])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    plots.label(ax_b, f"train/test gap after {steps:,} steps of lr 0.1", "batch size",
                "train - test accuracy")
    plots.label(ax_g, f"BN statistics over sub-batches, batch {batch}", "ghost batch size",
                "train - test accuracy")
    return fig, (ax_b, ax_g)


def placement_figure(loss: dict, *, lr: float, window: int):
    """Training loss during training, one panel per nonlinearity, one colour per BN placement.

    loss: {(activation, placement): (seeds, steps)} with placement None, "before", "after".

    Used in notebooks/07_why_bn_works.ipynb.
    """
    acts = list(dict.fromkeys(a for a, _ in loss))          # in the order given
    fig, axes = plots.new_figure(1, len(acts), size=(5 * len(acts), 3.4))
    axes = np.atleast_1d(axes)
    names = {None: "standard", "before": "BN", "after": "BN after"}
    for ax, act in zip(axes, acts):
        for place in (None, "before", "after"):
            if (act, place) in loss:
                centres, v = windowed(loss[act, place], window)
                _band_artists(ax, centres, v, COLORS[names[place]],
                              label=f"BN {place} the {act}" if place else "no BN")
        ax.set_yscale("log")
        plots.label(ax, f"{act} network, lr {lr:g}: training loss\n(means over {window} steps)",
                    "training step", "loss")
        ax.legend(fontsize=8)
    return fig, axes
