"""Figures of notebook 09: per-layer statistics at init, the signal-propagation explorer, training curves.

Colours have one meaning in the whole notebook (`COLORS`): the normalization or
the BN-free alternative; a plain (non-residual) network is drawn dashed.

Used in notebooks/09_deep_residual.ipynb.
"""

from __future__ import annotations

import numpy as np

from .. import plots, widgets
from ..deep_residual import EXPLORER_BLOCKS, EXPLORER_BRANCH, EXPLORER_INIT, residual_variance

P = plots.PALETTE
COLORS = {"BN": plots.COLORS["bn"], "no norm": plots.COLORS["no_bn"], "SkipInit": P["green"],
          "zero-init last gamma": P["orange"], "layer norm": P["purple"], "BN frozen": P["sky"],
          "Fixup": P["black"]}
KIND_NAMES = {"none": "no norm", "batch": "BN", "layer": "layer norm"}


def _band(ax, x, values, color, label, ls="-"):
    """Median line over the seeds (axis 0) and a min-max band."""
    v = np.asarray(values, dtype=np.float64)
    med = np.nanmedian(v, 0)
    line, = ax.plot(x, med, color=color, ls=ls, lw=1.6, label=label)
    ax.fill_between(x, np.nanmin(v, 0), np.nanmax(v, 0), color=color, alpha=0.18, lw=0)
    return line


def depth_profile_figure(profiles: dict, *, batch: int):
    """Activation std and gradient norm per conv layer at init, for each network of `profiles`.

    profiles: {label: (profile from `init_profile`, colour name, line style)}.

    Used in notebooks/09_deep_residual.ipynb.
    """
    fig, (ax_a, ax_g) = plots.new_figure(1, 2, size=(10, 3.8))
    for label, (prof, color, ls) in profiles.items():
        layers = np.arange(1, prof["act_std"].shape[1] + 1)
        if "out_var" in prof:   # residual: the stem and every block's output (x + f(x))
            _band(ax_a, layers[::2], prof["act_std"][:, ::2], COLORS[color], label + " (block outputs)", ls)
        else:
            _band(ax_a, layers, prof["act_std"], COLORS[color], label, ls)
        g = prof["grad_norm"] / prof["grad_norm"][:, -1:]
        _band(ax_g, layers, g, COLORS[color], label, ls)
    for ax in (ax_a, ax_g):
        ax.set_yscale("log")
    plots.label(ax_a, f"output std of each conv layer at init (batch of {batch})", "layer", "std")
    plots.label(ax_g, "gradient norm of each layer's weights / last layer's", "layer",
                "||dL/dW_l|| / ||dL/dW_L||", legend=True)
    fig.suptitle("8x8 Fashion-MNIST, 8 channels, He init, 3 seeds (line: median, band: min-max)",
                 fontsize=10)
    return fig


def propagation_figure(grids: dict, *, kinds=("batch", "none")):
    """Skip-path and branch variance per block at init (He init, branch scale 1) for `kinds`.

    Used in notebooks/09_deep_residual.ipynb.
    """
    i_he, i_one = list(EXPLORER_INIT).index("He"), EXPLORER_BRANCH.index(1.0)
    fig, axes = plots.new_figure(1, len(kinds), size=(10, 3.6))
    blocks = np.arange(1, EXPLORER_BLOCKS + 1)
    for ax, kind in zip(np.atleast_1d(axes), kinds):
        g = grids[kind]
        color = COLORS[KIND_NAMES[kind]]
        ax.plot(blocks, g["skip_var"][i_he, i_one], color=color, lw=1.8, label="skip path x")
        ax.plot(blocks, g["branch_var"][i_he, i_one], color=color, lw=1.8, ls=":",
                label="residual branch f(x)")
        ax.set_yscale("log")
        plots.label(ax, f"{KIND_NAMES[kind]}: variance entering each block", "block",
                    "channel variance", legend=True)
    fig.suptitle(f"residual net at init: stem + {EXPLORER_BLOCKS} blocks, 8 channels, He init, "
                 "branch scale 1 (median of 3 seeds)", fontsize=10)
    return fig


def propagation_explorer(grids: dict):
    """Slider view of the signal propagation at init: normalization, branch scale, init, depth.

    grids: {kind: `explorer_grid(kind, ...)`} for every kind of EXPLORER_KINDS. Every
    setting was computed in advance; moving a control only selects and redraws.

    Used in notebooks/09_deep_residual.ipynb.
    """
    kinds = list(grids)
    fig, (ax, ax_share) = plots.new_figure(1, 2, size=(9.6, 3.6), interactive=True)
    blocks = np.arange(1, EXPLORER_BLOCKS + 1)
    skip, = ax.plot(blocks, blocks * 1.0, color="0.35", lw=1.8, label="skip path x (measured)")
    branch, = ax.plot(blocks, blocks * 1.0, color="0.35", lw=1.8, ls=":", label="branch f(x) (measured)")
    pred, = ax.plot(blocks, blocks * 1.0, color=plots.COLORS["ref"], lw=1, ls="--",
                    label="skip, predicted from block 1 (norm: + Var f per block,\n"
                          "no norm: x (1 + Var f / Var x) per block)")
    share, = ax_share.plot(blocks, blocks * 0.0, lw=1.8)
    ax.set_yscale("log")
    ax_share.set_ylim(0, 1.02)
    plots.label(ax, "variance entering each block", "block", "channel variance")
    ax.legend(loc="upper left", fontsize=7)
    plots.label(ax_share, "branch's share of the block output's variance", "block",
                "Var f / (Var x + Var f)")
    # The setting on the figure's face, as an animated text: moving a slider only blits
    title = fig.text(0.5, 0.995, "", ha="center", va="top", fontsize=10)
    fig.get_layout_engine().set(rect=(0, 0, 1, 0.94))
    limits = {}      # one fixed y-range per normalization, so a slider never forces a full draw
    for kind, g in grids.items():
        s0, b0 = g["skip_var"][..., :1], g["branch_var"][..., :1]
        with np.errstate(divide="ignore", invalid="ignore"):   # the dashed prediction fits too
            pred_end = s0 + (EXPLORER_BLOCKS - 1) * b0 if kind != "none" else \
                s0 * (1 + b0 / s0) ** (EXPLORER_BLOCKS - 1)
        vals = np.concatenate([np.ravel(g["skip_var"]), np.ravel(g["branch_var"]), np.ravel(pred_end)])
        vals = vals[np.isfinite(vals) & (vals > 0)]
        limits[kind] = (max(vals.min(), 1e-6) * 0.5, vals.max() * 2.0)
    ax.set_xlim(0.5, EXPLORER_BLOCKS + 0.5)
    ax_share.set_xlim(0.5, EXPLORER_BLOCKS + 0.5)

    def update(norm, branch_scale, init, depth):
        g = grids[norm]
        i, j = list(EXPLORER_INIT).index(init), EXPLORER_BRANCH.index(branch_scale)
        s, b = g["skip_var"][i, j], g["branch_var"][i, j]
        color = COLORS[KIND_NAMES[norm]]
        for artist, y in ((skip, s), (branch, b)):
            artist.set_data(blocks[:depth], np.maximum(y[:depth], 1e-12))
            artist.set_color(color)
        s0, b0 = float(s[0]), float(b[0])
        if norm == "none":
            v = residual_variance(s0, 1.0, depth - 1, False, gain=b0 / s0)
        else:
            v = residual_variance(s0, b0 ** 0.5, depth - 1, True)
        pred.set_data(blocks[:depth], np.maximum(v, 1e-12))
        frac = b / np.maximum(s + b, 1e-30)
        share.set_data(blocks[:depth], frac[:depth])
        share.set_color(color)
        lo, hi = limits[norm]
        if ax.get_ylim() != (lo, hi):
            ax.set_ylim(lo, hi)
        title.set_text(f"{KIND_NAMES[norm]}, branch scale {branch_scale:g}, {init} init, "
                       f"{depth} blocks of 8 channels, 8x8 inputs (median of 3 seeds)")
        return (f"block {depth}: skip variance {s[depth - 1]:.3g}, branch variance "
                f"{b[depth - 1]:.3g}, branch share {frac[depth - 1]:.3f}")

    controls = {
        "norm": widgets.toggle("normalization", kinds, "batch",
                               tooltip="norm layers in every block (none, batch norm, layer norm)"),
        "branch_scale": widgets.slider("branch scale", 0.0, 1.5, 1.0, step=0.25, fmt=".2f",
                                       tooltip="fixed factor a of every residual branch "
                                               "(0 = SkipInit or a zero last gamma at init)"),
        "init": widgets.toggle("init", list(EXPLORER_INIT), "He",
                               tooltip="initial weight std: He sqrt(2/fan_in), Glorot sqrt(1/fan_in) here"),
        "depth": widgets.int_slider("blocks", 2, EXPLORER_BLOCKS, EXPLORER_BLOCKS,
                                    tooltip="number of residual blocks shown"),
    }
    return widgets.LiveFigure(fig, _snap(update), controls, animated=[skip, branch, pred, share, title])


def _snap(update):
    """Branch-scale values snapped to the precomputed grid."""
    grid = np.asarray(EXPLORER_BRANCH)

    def snapped(norm, branch_scale, init, depth):
        return update(norm, float(grid[np.argmin(np.abs(grid - branch_scale))]), init, int(depth))

    return snapped


def _windowed(loss, window):
    loss = np.asarray(loss, dtype=np.float64)
    n = loss.shape[-1] // window * window
    return loss[..., :n].reshape(loss.shape[:-1] + (-1, window)).mean(-1)


def training_figure(runs: dict, *, title: str, window: int, cap: float = 5.0, runs_are: str = "seeds"):
    """Training loss (means over `window` steps) and final test accuracy per seed, per network.

    runs: {label: (FitResult over runs, colour name, line style)}; `runs_are` names
    what the runs differ in (seeds, batch orders) on the figure. Losses above
    `cap` (or NaN) are drawn at the cap, marked in the axis label; a run that
    reaches it is drawn as its own thin line, outside its network's band.

    Used in notebooks/09_deep_residual.ipynb.
    """
    fig, (ax_l, ax_a) = plots.new_figure(1, 2, size=(10, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    for k, (label, (r, color, ls)) in enumerate(runs.items()):
        loss = np.minimum(np.nan_to_num(_windowed(r.loss, window), nan=cap, posinf=cap), cap)
        x = (np.arange(loss.shape[1]) + 0.5) * window
        # A run that reached the cap is drawn alone (thin), so its band does not hide the others
        gone = np.any(loss >= cap, axis=1)
        if gone.any() and not gone.all():
            label = f"{label} ({gone.sum()} of {len(gone)} {runs_are} diverged)"
            for run_loss in loss[gone]:
                ax_l.plot(x, run_loss, color=COLORS[color], ls=ls, lw=0.8, alpha=0.7)
        _band(ax_l, x, loss[~gone] if not gone.all() else loss, COLORS[color], label, ls)
        acc = np.nan_to_num(np.asarray(r.test_acc)[:, -1], nan=0.1)
        ax_a.scatter(np.full(acc.shape, k), acc, color=COLORS[color], s=22, zorder=3)
        ax_a.plot([k - 0.3, k + 0.3], [np.median(acc)] * 2, color=COLORS[color], lw=2)
    ax_l.axhline(cap, color="0.6", lw=0.8, ls=":")
    ax_l.set_ylim(0, cap * 1.05)
    plots.label(ax_l, title, "training step", f"training loss (NaN or above {cap:g}: drawn at {cap:g})")
    # Above the curves that train, below the cap line where diverged runs end
    ax_l.legend(loc="upper right", bbox_to_anchor=(1.0, 0.93), ncol=2, fontsize=7)
    ax_a.set_xticks(range(len(runs)))
    ax_a.set_xticklabels(list(runs), rotation=30, ha="right", fontsize=8)
    ax_a.axhline(0.1, color="0.5", ls=":", lw=1)
    ax_a.set_ylim(0, 1)
    plots.label(ax_a, f"final test accuracy (dots: {runs_are})", "", "accuracy")
    return fig


def channel_stats_figure(steps, stats: dict, *, title: str):
    """Running mean and variance of every channel of a few BN layers during training (one seed).

    stats: {layer label: (mean (evals, C), var (evals, C))}.

    Used in notebooks/09_deep_residual.ipynb.
    """
    fig, axes = plots.new_figure(2, len(stats), size=(10, 4.6), sharex=True)
    for col, (label, (mean, var)) in enumerate(stats.items()):
        shades = [str(g) for g in np.linspace(0.0, 0.65, np.shape(mean)[1])]   # channels: greys
        for c, shade in enumerate(shades):
            axes[0, col].plot(steps, np.asarray(mean)[:, c], lw=1, color=shade)
            axes[1, col].plot(steps, np.asarray(var)[:, c], lw=1, color=shade)
        axes[1, col].set_yscale("log")
        axes[0, col].set_title(label, fontsize=9)
        axes[1, col].set_xlabel("training step")
    axes[0, 0].set_ylabel("running mean")
    axes[1, 0].set_ylabel("running variance")
    fig.suptitle(title + " (one line per channel)", fontsize=10)
    return fig


def layer_grad_figure(records: dict, *, steps: int):
    """Gradient norm of every conv layer (relative to the last layer's) at the first and last step.

    records: {label: (per-step record of `layer_grad_norms`, (seeds, steps, layers), colour name,
    line style)}. The last step is the median over the last 10 % of the steps.

    Used in notebooks/09_deep_residual.ipynb.
    """
    fig, axes = plots.new_figure(1, 2, size=(10, 3.6), sharey=True)
    tail = max(steps // 10, 1)
    for label, (rec, color, ls) in records.items():
        rec = np.asarray(rec, dtype=np.float64)
        layers = np.arange(1, rec.shape[-1] + 1)
        first = rec[:, 0]
        last = np.median(rec[:, -tail:], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a dead network's last layer: 0
            rel_first, rel_last = first / first[:, -1:], last / last[:, -1:]
        _band(axes[0], layers, np.where(np.isfinite(rel_first), rel_first, np.nan), COLORS[color], label, ls)
        _band(axes[1], layers, np.where(np.isfinite(rel_last), rel_last, np.nan), COLORS[color], label, ls)
    axes[0].set_yscale("log")
    plots.label(axes[0], "at init (step 0)", "layer", "||dL/dW_l|| / ||dL/dW_L||")
    plots.label(axes[1], f"after training (median of the last {tail} steps)", "layer", "", legend=True)
    fig.suptitle("gradient norm per conv layer on the training batches, 3 seeds (line: median; "
                 "a seed whose last layer gets no gradient is left out)", fontsize=10)
    return fig
