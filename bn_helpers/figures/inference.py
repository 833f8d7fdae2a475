"""Figures of notebooks/05_inference.ipynb: the running-average explorer, train against eval
mode across test batch sizes, the fine-tuning controls, and the test-time shift curves and
explorer. They draw what `bn_helpers.inference` computed.

One colour, one meaning, in every figure of the notebook: blue, the running averages (eval
mode); vermillion, each batch's own statistics (training mode); green, statistics recomputed
(Algorithm 2, recalibration, re-estimated once); orange, the running average with its start-up
bias removed; black, the statistics over a fixed set of images or a reference accuracy.

Used in notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import plots, widgets
from ..inference_running import ema_trace

__all__ = ["RUNNING", "BATCH", "RECOMPUTED", "DEBIASED", "SHIFT_KINDS", "momentum_explorer",
           "batch_size_explorer", "fine_tune_bars", "shift_curves", "shift_explorer"]

RUNNING = plots.COLORS["bn"]
BATCH = plots.COLORS["no_bn"]
RECOMPUTED = plots.PALETTE["green"]
DEBIASED = plots.PALETTE["orange"]
SHIFT_KINDS = {"training statistics (eval mode)": RUNNING,
               "re-estimated per test batch (training mode)": BATCH,
               "re-estimated once (eval mode)": RECOMPUTED}


def momentum_explorer(run, *, layer: int, unit: int, batch_size: int, momentum0: float = 0.99,
                      seed: int = 0, probe_size: int = 500):
    """Batch statistics of one unit during training (from `run.record`), the statistics over
    `probe_size` fixed images (`run.probe`), and the running average of the batch values with
    the slider's momentum, with and without its start-up bias. Returns a LiveFigure.

    Used in notebooks/05_inference.ipynb.
    """
    m = batch_size
    mean = np.asarray(run.record[layer]["mean"][seed, :, unit], dtype=np.float32)
    var = np.asarray(run.record[layer]["var"][seed, :, unit], dtype=np.float32) * m / (m - 1)
    steps = np.arange(1, mean.size + 1)
    panels = {"mean": (mean, np.asarray(run.probe[layer]["mean"][seed, :, unit]), 0.0),
              "var": (var, np.asarray(run.probe[layer]["var"][seed, :, unit]), 1.0)}
    fig, axes = plots.new_figure(1, 2, size=(9.6, 3.7), interactive=True)
    lines = {}
    for ax, (name, (values, pop, init)) in zip(axes, panels.items(), strict=True):
        ax.plot(steps, values, color=BATCH, alpha=0.35, lw=0.6, label="each training batch")
        ax.step(run.eval_steps, pop, where="post", color="k", lw=1.2,
                label=f"{probe_size} training images")
        ax.axhline(init, color="0.5", ls=":", lw=1.2, label="start value of the average")
        (run_line,) = ax.plot(steps, values, color=RUNNING, lw=1.6, label="running average")
        (deb_line,) = ax.plot(steps, values, color=DEBIASED, lw=1.4, ls="--",
                              label="start-up bias removed")
        lines[name] = (run_line, deb_line, values, init)
        # every value stays inside the axes: nothing is cut off
        lo, hi = min(values.min(), pop.min(), init), max(values.max(), pop.max(), init)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        ax.set_xlim(0, steps[-1])
    plots.label(axes[0], f"Layer {layer + 1}, unit {unit}: mean of BN's input", "training step",
                "mean (pre-activation units)")
    axes[0].legend(fontsize=8, loc="best")
    plots.label(axes[1], f"Layer {layer + 1}, unit {unit}: variance (m/(m-1) corrected)",
                "training step", "variance (squared units)")
    title = fig.suptitle(" ", fontsize=10)

    def update(momentum):
        out = []
        for name, (run_line, deb_line, values, init) in lines.items():
            trace, debiased = ema_trace(values, momentum, init)
            run_line.set_ydata(np.asarray(trace))
            deb_line.set_ydata(np.asarray(debiased))
            out.append(f"{name:>4}: final running {float(trace[-1]):8.4f}   "
                       f"{probe_size} images {float(panels[name][1][-1]):8.4f}")
        title.set_text(f"Network of seed {seed}, momentum {momentum:.3f} (Keras/Flax/ours) "
                       f"= PyTorch momentum {1 - momentum:.3f}")
        head = (f"momentum {momentum:.3f} (weight on the old value) = PyTorch {1 - momentum:.3f}\n"
                f"memory about 1/(1-momentum) = {1 / max(1 - momentum, 1e-9):.0f} steps")
        return "\n".join([head] + out)

    slider = widgets.slider("momentum (weight on old)", 0.5, 0.999, momentum0, step=0.001,
                            tooltip="Momentum of the running average as Keras, Flax and this "
                                    "package count it: the weight on the OLD value. PyTorch's "
                                    "momentum is 1 minus this.")
    return widgets.LiveFigure(fig, update, {"momentum": slider},
                              animated=[title] + [ln for v in lines.values() for ln in v[:2]])


def batch_size_explorer(sizes, acc_batch, acc_running, acc_population, spread, p_eval, labels,
                        *, seed: int = 0):
    """Left: training-mode test accuracy against the test batch size (`acc_batch`, (seeds,
    sizes): median and range) against eval mode (`acc_running`, `acc_population`: one value per
    seed). Right: the probability of the true digit for a few test images in random batches of
    the slider's size (`spread`, (sizes, images, contexts)) and in eval mode (`p_eval`).
    Returns a LiveFigure.

    Used in notebooks/05_inference.ipynb.
    """
    sizes, acc_batch = np.asarray(sizes), np.asarray(acc_batch)
    images, num_contexts = np.arange(spread.shape[1]), spread.shape[2]
    med = np.median(acc_batch, axis=0)
    widths = (spread.max(-1) - spread.min(-1)).max(-1)
    fig, (ax_acc, ax_p) = plots.new_figure(1, 2, size=(9.6, 3.7), interactive=True)
    n = acc_batch.shape[0]
    ax_acc.fill_between(sizes, acc_batch.min(0), acc_batch.max(0), color=BATCH, alpha=0.2, lw=0,
                        label=f"range of {n} seeds")
    ax_acc.semilogx(sizes, med, "o-", base=2, color=BATCH, ms=4,
                    label="training mode (batch statistics)")
    ax_acc.axhline(np.median(acc_running), color=RUNNING, label="eval: running averages")
    ax_acc.axhline(np.median(acc_population), color=RECOMPUTED, ls=":", lw=1.8,
                   label="eval: Algorithm 2")
    (marker,) = ax_acc.plot([sizes[0]], [med[0]], "s", ms=11, mfc="none", mec="k", mew=1.6,
                            label="slider's batch size")
    ax_acc.set_ylim(0, 1)
    plots.label(ax_acc, f"Test accuracy (median of {n} seeds)", "test batch size (images)",
                "test accuracy")
    ax_acc.legend(fontsize=8, loc="lower right")
    jitter = np.random.default_rng(0).uniform(-0.18, 0.18, (len(images), num_contexts))
    xs_dots = (images[:, None] + jitter).ravel()
    dots = ax_p.scatter(xs_dots, np.zeros_like(xs_dots), s=14, color=BATCH, alpha=0.7,
                        label="training mode, random batches")
    ax_p.hlines(p_eval, images - 0.3, images + 0.3, color="k", lw=2.5, label="eval mode")
    ax_p.set_ylim(-0.03, 1.22)
    ax_p.set_yticks(np.linspace(0, 1, 6))
    ax_p.set_xticks(images, [f"#{i}\n(a {int(labels[i])})" for i in images])
    plots.label(ax_p, f"One image, many batches (seed {seed})", "test image (true digit)",
                "probability of the true digit")
    ax_p.legend(loc="upper center", ncol=2, fontsize=8)
    title = fig.suptitle(" ", fontsize=10)

    def update(batch_size):
        i = int(np.argmin(np.abs(np.log2(sizes) - np.log2(batch_size))))
        marker.set_data([sizes[i]], [med[i]])
        dots.set_offsets(np.column_stack([xs_dots, spread[i].ravel()]))
        title.set_text(f"Test batches of {sizes[i]} images in training mode")
        return (f"batch size {sizes[i]} (nearest computed size to {batch_size}): training mode "
                f"{med[i]:.3f} (median), eval {np.median(acc_running):.3f}\n"
                f"widest spread of one image's probability: {widths[i]:.2f}")

    slider = widgets.int_slider("test batch size", int(sizes[0]), int(sizes[-1]), 8,
                                tooltip="Test images per batch when the network is run in "
                                        "training mode (each batch's own statistics); the "
                                        "nearest computed size is shown.")
    return widgets.LiveFigure(fig, update, {"batch_size": slider}, animated=[marker, dots, title])


def fine_tune_bars(names: dict, table, acc_clean, *, fine_steps: int, shift_text: str):
    """Bars of the five (weights, statistics) pairs after fine-tuning on shifted images:
    median over seeds (`table`, (seeds, len(names))) with the range as error bars, colour by
    statistics, hatched when the weights were fine-tuned.

    Used in notebooks/05_inference.ipynb.
    """
    table = np.asarray(table)
    fig, ax = plots.new_figure(size=(9.0, 3.6))
    med = np.median(table, axis=0)
    recal = np.array(["recalibrated" in k for k in names])
    bars = ax.bar(range(len(names)), med, color=np.where(recal, RECOMPUTED, RUNNING),
                  edgecolor="white")
    for bar, key in zip(bars, names, strict=True):
        if key not in ("old", "old_recalibrated"):
            bar.set_hatch("//")
    ax.errorbar(range(len(names)), med, yerr=[med - table.min(0), table.max(0) - med], fmt="none",
                ecolor="k", capsize=4, lw=1)
    ax.bar_label(bars, labels=[f"{a:.3f}" for a in med], fontsize=10, label_type="center",
                 color="white", fontweight="bold",
                 bbox=dict(boxstyle="round,pad=0.25", fc="black", alpha=0.45, lw=0))
    ax.axhline(np.median(acc_clean), color="k", ls=":", lw=1.2,
               label="unshifted test images, old model (median)")
    ax.bar([0], [0], color=RUNNING, label="running averages (eval mode)")
    ax.bar([0], [0], color=RECOMPUTED, label="recomputed on shifted images")
    ax.bar([0], [0], color="white", edgecolor="0.3", hatch="//",
           label=f"weights fine-tuned {fine_steps} steps")
    ax.set_xticks(range(len(names)), list(names.values()), fontsize=8)
    ax.set_ylim(0, 1.25)
    ax.legend(fontsize=7.5, loc="upper center", ncol=2)
    plots.label(ax, f"{shift_text}: median of {len(table)} seeds (error bars: range)", "",
                "test accuracy, shifted images")
    plt.show()


def shift_curves(grid: dict, curves: dict, neutral: dict, *, adapt_batch: int):
    """Test accuracy as each shift grows (`curves[name]`: (seeds, values, 3) from
    `bnh.inference.shift_table`), median and range, the three kinds of statistics.

    Used in notebooks/05_inference.ipynb.
    """
    units = {"brightness": "brightness added (pixel value)", "contrast": "contrast factor",
             "noise": "noise std (pixel value)"}
    fig, axes = plots.new_figure(1, 3, size=(10, 3.4), sharey=True)
    for ax, (name, values) in zip(axes, grid.items(), strict=True):
        for j, (kind, color) in enumerate(SHIFT_KINDS.items()):
            c = curves[name][:, :, j]
            ax.fill_between(values, c.min(0), c.max(0), color=color, alpha=0.2, lw=0)
            ax.plot(values, np.median(c, 0), "o-", ms=3, color=color, label=kind)
        ax.axvline(neutral[name], color="0.5", ls=":", lw=1, label="no shift")
        plots.label(ax, f"Shift: {name}", units[name],
                    "test accuracy" if ax is axes[0] else "")
    axes[0].set_ylim(0, 1)
    axes[0].legend(loc="lower left", fontsize=7)
    n = len(next(iter(curves.values())))
    fig.suptitle(f"Shifted test images, median of {n} seeds (bands: range), test batches of "
                 f"{adapt_batch}", fontsize=10)
    plt.show()


def shift_explorer(shifted, accuracies, acc_clean, *, adapt_batch: int, seed: int = 0,
                   start=(0.3, 1.0, 0.0)):
    """Sliders for brightness, contrast and noise: four shifted test images (`shifted(b, c, n)`
    -> (4, 784)) and the accuracy with the three kinds of statistics (`accuracies(b, c, n)`).
    Returns a LiveFigure.

    Used in notebooks/05_inference.ipynb.
    """
    fig, (ax_img, ax_bar) = plots.new_figure(1, 2, size=(9.6, 3.0), interactive=True,
                                             gridspec_kw={"width_ratios": [2.0, 1.2]})
    mosaic = ax_img.imshow(np.zeros((28, 28 * 4)), cmap="gray", vmin=0, vmax=1)
    ax_img.set_xticks([]), ax_img.set_yticks([]), ax_img.grid(False)
    ax_img.set_title("Shifted test images (pixel values 0 to 1)")
    bars = ax_bar.bar([0, 1, 2], [0, 0, 0], color=list(SHIFT_KINDS.values()))
    ax_bar.axhline(acc_clean, color="k", ls=":", lw=1, label="no shift, eval mode")
    ax_bar.set_xticks([0, 1, 2], ["training\nstatistics", f"per batch\nof {adapt_batch}",
                                  "once,\neval mode"], fontsize=8)
    ax_bar.set_ylim(0, 1.1)
    ax_bar.legend(fontsize=7, loc="upper right")
    plots.label(ax_bar, f"Accuracy, seed {seed}", "statistics used", "test accuracy")
    title = fig.suptitle(" ", fontsize=10)

    def update(brightness, contrast, noise):
        accs = accuracies(brightness, contrast, noise)
        imgs = np.asarray(shifted(brightness, contrast, noise))
        mosaic.set_data(imgs.reshape(-1, 28, 28).transpose(1, 0, 2).reshape(28, -1))
        for bar, a in zip(bars, accs, strict=True):
            bar.set_height(float(a))
        title.set_text(f"Brightness {brightness:+.2f}, contrast {contrast:.2f}, "
                       f"noise std {noise:.2f}")
        return (f"brightness {brightness:+.2f}, contrast {contrast:.2f}, noise {noise:.2f}\n"
                f"accuracy: training statistics {float(accs[0]):.3f}, re-estimated per batch "
                f"{float(accs[1]):.3f}, once {float(accs[2]):.3f}")

    clip = "; the result is clipped to the pixel range [0, 1]"
    controls = {"brightness": widgets.slider("brightness", -0.5, 0.5, start[0], step=0.01,
                                             tooltip="Added to every pixel" + clip),
                "contrast": widgets.slider("contrast", 0.2, 2.0, start[1], step=0.02,
                                           tooltip="Every pixel multiplied by this factor" + clip),
                "noise": widgets.slider("noise std", 0.0, 0.5, start[2], step=0.01,
                                        tooltip="Std of Gaussian noise added to every pixel (one "
                                                "fixed noise sample)" + clip)}
    return widgets.LiveFigure(fig, update, controls, animated=[mosaic, *bars, title])
