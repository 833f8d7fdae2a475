"""Figures of notebooks/08_beyond_bn.ipynb: test error against batch size beside Wu & He's numbers,
the groups explorer (which values share one mean and variance), few-class batches, the r_max /
d_max explorer of Batch Renorm, and the RNN on sequences longer than in training.

One colour, one meaning, in every figure of the notebook (`COLORS`): vermillion, no norm;
blue, BN; green, LayerNorm; orange, GroupNorm; purple, InstanceNorm; sky blue, Batch Renorm.
Lines are seed medians, bands run from the lowest to the highest seed.

Used in notebooks/08_beyond_bn.ipynb.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap

from .. import plots, widgets
from ..beyond_bn import LABELS, WU_HE_FIG1, WU_HE_TABLE1, group_walk, renorm_outputs, shared_statistics

__all__ = ["COLORS", "batch_size_figure", "groups_explorer", "few_class_figure",
           "renorm_explorer", "rnn_figure"]

COLORS = {None: plots.COLORS["no_bn"], "batch": plots.COLORS["bn"], "layer": plots.PALETTE["green"],
          "group": plots.PALETTE["orange"], "instance": plots.PALETTE["purple"],
          "renorm": plots.PALETTE["sky"]}


def _band(ax, x, values, color, label, marker="o"):
    v = np.asarray(values, dtype=float)
    med, lo, hi = np.median(v, 0), v.min(0), v.max(0)
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    ax.plot(x, med, "-", marker=marker, ms=4, color=color, label=label)


def batch_size_figure(sizes, errors: dict, *, examples: int, title_note: str = ""):
    """Left: our test error (%) against batch size, one band per norm. Right: Wu & He's Fig. 1.

    errors: {kind: array (seeds, len(sizes))} in percent.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    fig, (ax, ax_p) = plots.new_figure(1, 2, size=(10, 3.8))
    for kind, err in errors.items():
        _band(ax, sizes, err, COLORS[kind], LABELS[kind])
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xticks([], minor=True)
    plots.label(ax, f"ours: Fashion-MNIST, {examples:,} examples per run{title_note}",
                "batch size", "test error (%)")
    ax.legend(fontsize=8, ncol=2)
    ps = WU_HE_FIG1["sizes"]
    for kind in ("batch", "group"):
        ax_p.plot(ps, WU_HE_FIG1[kind], "-o", ms=4, color=COLORS[kind], label=LABELS[kind])
    for kind, v in WU_HE_TABLE1.items():
        if kind not in ("batch", "group"):
            ax_p.plot([32], [v], "s", ms=6, color=COLORS[kind], label=f"{LABELS[kind]} (32 only)")
    ax_p.set_xscale("log", base=2)
    ax_p.set_xticks(ps, [str(s) for s in ps])
    ax_p.set_xticks([], minor=True)
    plots.label(ax_p, "Wu & He (2018): ResNet-50, ImageNet", "images per GPU", "validation error (%)")
    ax_p.legend(fontsize=8)
    return fig, (ax, ax_p)


def groups_explorer(x, *, num_examples_shown: int = 3):
    """Slider over the number of groups G: which entries share one mean and variance (left), and
    the group-normalized values of example 1 (right).

    x: one NHWC block (N, H, W, C) of activations. The slider moves over 1..C and
    snaps to the largest divisor of C not above it (group norm needs C divisible by G).

    Used in notebooks/08_beyond_bn.ipynb.
    """
    x = np.asarray(x, dtype=np.float32)
    n, h, w, c = x.shape
    shown = min(num_examples_shown, n)
    divisors = [g for g in range(1, c + 1) if c % g == 0]
    ys = group_walk(x, divisors)
    fig, (ax_l, ax_r) = plots.new_figure(1, 2, size=(10, 3.9), interactive=True,
                                         gridspec_kw={"width_ratios": [1.5, 1]})
    # Left: per example a (positions x channels) block; equal colour = same statistics
    gap = 1
    width = shown * (c + gap) - gap
    tones = ListedColormap([plots.PALETTE["blue"], plots.PALETTE["sky"], plots.PALETTE["orange"],
                            plots.PALETTE["yellow"], "white"])

    def picture(g):
        labels = shared_statistics("group", n, c, g)[:shown]  # (shown, C)
        img = np.full((h * w, width), 4.0)
        for e in range(shown):
            within = labels[e] - labels[e].min()
            tone = (within % 2) + 2 * (e % 2)
            img[:, e * (c + gap): e * (c + gap) + c] = tone[None, :]
        return img

    im_l = ax_l.imshow(picture(1), cmap=tones, vmin=0, vmax=4, aspect="auto", interpolation="nearest")
    ax_l.set_xticks([e * (c + gap) + (c - 1) / 2 for e in range(shown)],
                    [f"example {e + 1}" for e in range(shown)])
    ax_l.set_xlabel(f"channels 1-{c} of each example")
    ax_l.set_ylabel(f"position (H x W = {h} x {w})")
    ax_l.grid(False)
    ax_l.set_title("one colour = one mean and variance", fontsize=10)
    # Right: normalized values of example 1
    lim = float(np.percentile(np.abs(np.concatenate([v[0].ravel() for v in ys.values()])), 99))
    im_r = ax_r.imshow(ys[1][0].reshape(h * w, c), cmap="RdBu_r", vmin=-lim, vmax=lim,
                       aspect="auto", interpolation="nearest")
    ax_r.grid(False)
    ax_r.set_xlabel("channel")
    ax_r.set_ylabel("position")
    ax_r.set_xticks([0, c - 1], ["1", str(c)])
    fig.colorbar(im_r, ax=ax_r, shrink=0.8, label="normalized value")
    ax_r.set_title("example 1 after group norm (lines: groups)", fontsize=10)
    bounds = [ax_r.axvline(k - 0.5, color="k", lw=1.2) for k in range(1, c)]
    names = {1: "LayerNorm", c: "InstanceNorm"}
    # The setting on the figure's face, as an animated figure text (moving the slider only blits)
    note = fig.suptitle(f"G = {c} (InstanceNorm): 1 channel per group, all {h * w} positions", fontsize=11)

    def update(groups):
        g = max(d for d in divisors if d <= int(groups))
        im_l.set_data(picture(g))
        y = ys[g][0].reshape(h * w, c)
        im_r.set_data(y)
        size = c // g
        for k, line in enumerate(bounds, start=1):
            line.set_visible(k % size == 0)
        kind = names.get(g, "GroupNorm")
        note.set_text(f"G = {g} ({kind}): {size} channel{'s' * (size > 1)} per group, "
                      f"all {h * w} positions")
        means = y.reshape(h * w, g, size).mean(axis=(0, 2))
        snap = "" if g == int(groups) else f" ({int(groups)} does not divide C = {c}: showing G = {g})"
        return (f"G = {g}{snap}: each colour block of one example is averaged over; BN would instead "
                f"average one channel over all {n} examples. Group means of example 1 after the norm: "
                + ", ".join(f"{m:+.1e}" for m in means[:8]) + (" ..." if g > 8 else ""))

    slider = widgets.int_slider("groups G", 1, c, 1,
                                tooltip=f"number of channel groups (1 = LayerNorm, {c} = InstanceNorm)")
    animated = [im_l, im_r, *bounds, note]
    return widgets.LiveFigure(fig, update, {"groups": slider}, animated=animated)


def few_class_figure(results: dict, *, steps: int, batch_size: int, classes: int):
    """Test accuracy per run (seeds as dots, median as a bar).

    results: {label: (kind, accuracies over seeds)}; a label breaks into lines at its commas.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    fig, ax = plots.new_figure(1, 1, size=(9, 3.4))
    for i, (kind, acc) in enumerate(results.values()):
        acc = np.asarray(acc, dtype=float)
        ax.bar(i, np.median(acc), color=COLORS[kind], alpha=0.5, width=0.6)
        ax.plot(np.full(acc.size, i), acc, "o", color=COLORS[kind], ms=4)
    ax.set_xticks(range(len(results)), [k.replace(", ", ",\n") for k in results], fontsize=8)
    ax.set_ylim(0, 1)
    plots.label(ax, f"MLP on Fashion-MNIST, {steps:,} steps, batches of {batch_size} "
                f"({classes} classes per few-class batch)", "", "test accuracy")
    return fig, ax


def renorm_explorer(z, gamma, beta, mean, var, *, units: int = 4, title: str = ""):
    """Sliders r_max, d_max: Batch Renorm's training-mode output against the eval-mode output on one
    batch, beside BN's training-mode output (which ignores the running statistics).

    z: pre-normalization values (N, C) of one batch; mean, var: the running statistics.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    z = np.asarray(z, dtype=np.float32)
    zs = z[:, :units]
    args = [np.asarray(a, np.float32)[:units] for a in (gamma, beta, mean, var)]
    _, bn, ev = (np.asarray(a) for a in renorm_outputs(zs, *args, 1.0, 0.0))
    fig, ax = plots.new_figure(1, 1, size=(7.5, 4.2), interactive=True)
    lo, hi = float(min(ev.min(), bn.min())), float(max(ev.max(), bn.max()))
    pad = 0.1 * (hi - lo)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, ls=":")
    ax.scatter(ev.ravel(), bn.ravel(), s=14, color=COLORS["batch"], label="BN, training mode")
    pts = ax.scatter(ev.ravel(), ev.ravel(), s=14, marker="x", color=COLORS["renorm"],
                     label="Batch Renorm, training mode")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.legend(loc="upper left", fontsize=8)
    plots.label(ax, title or "one batch", "output in eval mode (running statistics)",
                "output in training mode")
    note = fig.text(0.99, 0.01, "", ha="right", va="bottom", fontsize=9)

    def update(r_max, d_max):
        train, _, _ = renorm_outputs(zs, *args, r_max, d_max)
        train = np.asarray(train)
        pts.set_offsets(np.column_stack([ev.ravel(), train.ravel()]))
        note.set_text(f"r_max {r_max:.2f}, d_max {d_max:.2f}")
        err_bn = float(np.mean(np.abs(bn - ev)))
        err_rn = float(np.mean(np.abs(train - ev)))
        return (f"mean |training - eval| over {zs.size} values: BN {err_bn:.3f}, Batch Renorm "
                f"{err_rn:.3f} (r_max {r_max:.2f}, d_max {d_max:.2f})")

    controls = {"r_max": widgets.slider("r_max", 1.0, 3.0, 1.0, step=0.05, fmt=".2f",
                                        tooltip="r is clipped to [1/r_max, r_max] (1 = no scale correction)"),
                "d_max": widgets.slider("d_max", 0.0, 5.0, 0.0, step=0.05, fmt=".2f",
                                        tooltip="d is clipped to [-d_max, d_max] (0 = no shift correction)")}
    return widgets.LiveFigure(fig, update, controls, animated=[pts, note])


def rnn_figure(extras, acc: dict, *, train_len: int, steps: int):
    """Test accuracy of the RNNs against the number of blank rows added to each test image.

    acc: {(kind, where): array (seeds, len(extras))}, where "before" or "after".

    Used in notebooks/08_beyond_bn.ipynb.
    """
    fig, axes = plots.new_figure(1, 2, size=(10, 3.5), sharey=True)
    for ax, where in zip(axes, ("before", "after")):
        for (kind, w), a in acc.items():
            if w == where:
                _band(ax, extras, a, COLORS[kind], LABELS[kind])
        ax.axhline(0.1, color="0.5", ls=":", lw=1)
        plots.label(ax, f"blank rows {where} the digit", "extra steps beyond training",
                    "test accuracy" if where == "before" else "")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"RNN trained on {train_len}-step sequences ({steps:,} steps), tested on longer ones",
                 fontsize=11)
    return fig, axes
