"""Figures and sliders of notebooks/06_paper_experiment.ipynb (Ioffe & Szegedy's Figure 1).

Every function draws `bnh.fit_many` results that the notebook computed; the
read-outs (bands, steps to a target, status) come from `bn_helpers.paper_experiment`.
A dict of results is keyed by network name: "without BN", "with BN" and
"without BN, Xavier init". One colour per network throughout the notebook.

Used in notebooks/06_paper_experiment.ipynb.
"""

from __future__ import annotations

import numpy as np

from .. import paper_experiment as _pe
from .. import plots as _plots
from .. import widgets as _widgets

__all__ = ["COLORS", "plot_fig1", "plot_train_test", "plot_curves", "plot_gap", "lr_slider",
           "init_std_slider"]

# One colour, one meaning: the tuned baseline (Xavier init, no BN) gets its own
COLORS = {"without BN": _plots.COLORS["no_bn"], "with BN": _plots.COLORS["bn"],
          "without BN, Xavier init": _plots.PALETTE["green"]}
_PCT_STYLE = {0: (":", "15th"), 1: ("-", "50th"), 2: ("--", "85th")}


def _color(name):
    return COLORS.get(name, "0.3")


def _pct_legend(fig, **kw):
    from matplotlib.lines import Line2D

    styles = [Line2D([], [], color="0.35", ls=ls, label=f"{lab} percentile")
              for ls, lab in _PCT_STYLE.values()]
    return fig.legend(handles=styles, **kw)


def plot_fig1(runs: dict, *, seeds, init_std: float = 0.01, unit: int = 0, seed_index: int = 0,
              title: str = "MNIST-5k", acc_ylim=(0.7, 1.0), bn_ylim=(-3, 3)):
    """Fig. 1 (a, b, c): test accuracy with seed bands, then one seed's percentiles.

    (a) For each network in `runs`: the median over seeds and a band from the
    lowest to the highest seed; medians below the axis are marked by triangles
    on its lower edge; the paper's read-off points are drawn where the run
    reaches them. The x-axis of every panel ends at the last step run.
    (b, c) The 15/50/85th percentiles of the last hidden layer's sigmoid input
    `unit` for seed `seeds[seed_index]`, without and with BN (BN in training mode
    on the probe batch). Panel (c) uses `bn_ylim` (the paper's is -2..2); panel (b)
    widens beyond -4..4 if the data need it. Returns (fig, axes).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    fig, axes = _plots.new_figure(1, 3, size=(12, 3.6))
    ax = axes[0]
    steps = np.asarray(runs["with BN"].eval_steps)
    last = int(steps[-1])
    below_marked = False
    for name, r in runs.items():
        med, lo, hi = _pe.band(r.test_acc)
        ax.fill_between(steps, lo, hi, color=_color(name), alpha=0.2, lw=0)
        label = name if "Xavier" in name else f"{name}, N(0, {init_std:g}²)"
        ax.plot(steps, med, color=_color(name), label=f"{label}, median of {len(seeds)} seeds")
        low = med < acc_ylim[0]
        if low.any():
            ax.plot(steps[low], np.full(low.sum(), acc_ylim[0] + 0.006), "v", color=_color(name),
                    ms=4, clip_on=False,
                    label=None if below_marked else f"median below {acc_ylim[0]} (off the axis)")
            below_marked = True
    shown = [s for s in _pe.PAPER_FIG1A if s <= last]
    for j, name in ((1, "without BN"), (0, "with BN")):
        if shown:
            ax.plot(shown, [_pe.PAPER_FIG1A[s][j] for s in shown], "x", color=_color(name), ms=6,
                    label=f"{name}, paper (read off)")
    if not shown:
        ax.text(0.02, 0.97, f"(the paper's read-off points start\nat {min(_pe.PAPER_FIG1A):,} "
                "steps)", transform=ax.transAxes, fontsize=8, color="0.3", va="top")
    ax.set_xlim(0, last)
    ax.set_ylim(*acc_ylim)
    _plots.label(ax, f"(a) test accuracy, {title}, {last:,} steps\n(band: min to max over "
                 f"seeds {', '.join(str(int(s)) for s in seeds)})", "training step",
                 "test accuracy")
    ax.legend(loc="lower right", fontsize=7)
    seed = int(seeds[seed_index])
    for ax, name, tag in ((axes[1], "without BN", "(b)"), (axes[2], "with BN", "(c)")):
        p = np.asarray(runs[name].probe)[seed_index, :, :, unit]
        finite = p[np.isfinite(p)]
        lo, hi = -4.0, 4.0
        if finite.size:
            lo, hi = min(lo, finite.min() - 0.5), max(hi, finite.max() + 0.5)
        for j, (ls, _) in _PCT_STYLE.items():
            ax.plot(steps, p[:, j], ls, color=_color(name))
        ax.set_xlim(0, last)
        ax.set_ylim(*(bn_ylim if name == "with BN" else (lo, hi)))
        if name == "with BN" and finite.size and (finite.min() < bn_ylim[0]
                                                  or finite.max() > bn_ylim[1]):
            ax.text(0.02, 0.03, "some values lie outside the axis", transform=ax.transAxes,
                    fontsize=8, color="0.3")
        mode = ", training-mode BN" if name == "with BN" else ""
        _plots.label(ax, f"{tag} {name}, N(0, {init_std:g}²), seed {seed}:\n"
                     f"last hidden layer, unit {unit}{mode}", "training step", "sigmoid input")
    _pct_legend(fig, loc="outside lower right", ncol=3, fontsize=9)
    return fig, axes


def plot_train_test(runs: dict, *, window: int, lr: float = 0.5, train_examples: int = 1000):
    """Accuracy on training and test digits (median, seed band) and the windowed training loss.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    fig, (ax_acc, ax_loss) = _plots.new_figure(1, 2, size=(11, 3.4))
    steps = np.asarray(next(iter(runs.values())).eval_steps)
    for name, r in runs.items():
        for values, ls, what in ((r.train_acc, "--", f"first {train_examples:,} training digits"),
                                 (r.test_acc, "-", "test digits")):
            med, lo, hi = _pe.band(values)
            ax_acc.fill_between(steps, lo, hi, color=_color(name), alpha=0.2, lw=0)
            ax_acc.plot(steps, med, ls, color=_color(name), label=f"{name}, {what}")
        loss = np.asarray(r.loss)
        loss = loss.reshape(loss.shape[0], -1, window).mean(-1)       # (seeds, windows)
        med, lo, hi = _pe.band(loss)
        centres = (np.arange(loss.shape[1]) + 0.5) * window
        ax_loss.fill_between(centres, lo, hi, color=_color(name), alpha=0.2, lw=0)
        ax_loss.plot(centres, med, color=_color(name), label=name)
    k = np.shape(next(iter(runs.values())).test_acc)[0]
    ax_acc.set_ylim(0, 1.01)
    ax_acc.set_xlim(0, steps[-1])
    _plots.label(ax_acc, f"Accuracy, lr {lr:g}, median and min-max of {k} seeds", "training step",
                 "accuracy")
    ax_acc.legend(fontsize=7, loc="lower right")
    ax_loss.set_yscale("log")
    ax_loss.set_xlim(0, steps[-1])
    _plots.label(ax_loss, f"Training loss (mean over {window:,} steps)", "training step",
                 "cross-entropy (log scale)", legend=True)
    return fig, (ax_acc, ax_loss)


def plot_curves(runs: dict, *, title: str):
    """Test accuracy against steps, median and seed band per network, chance dotted.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    fig, ax = _plots.new_figure(size=(6, 3.2))
    for name, r in runs.items():
        steps = np.asarray(r.eval_steps)
        med, lo, hi = _pe.band(r.test_acc)
        ax.fill_between(steps, lo, hi, color=_color(name), alpha=0.2, lw=0)
        ax.plot(steps, med, "o-", ms=3, label=f"{name} (median, band min-max)", color=_color(name))
    ax.axhline(0.1, color="0.5", ls=":", lw=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, steps[-1])
    _plots.label(ax, title, "training step", "test accuracy", legend=True)
    return fig, ax


def plot_gap(batch_sizes, gaps: dict, tests: dict, *, epochs: int, init_std: float, lr: float):
    """Train-minus-test gap and test accuracy against batch size; gaps/tests: name -> (B, seeds).

    Used in notebooks/06_paper_experiment.ipynb.
    """
    fig, (ax_gap, ax_test) = _plots.new_figure(1, 2, size=(10, 3.3))
    for name in gaps:
        k = np.shape(gaps[name])[1]
        for ax, values in ((ax_gap, gaps[name]), (ax_test, tests[name])):
            med, lo, hi = _pe.band(np.asarray(values), axis=1)
            ax.fill_between(batch_sizes, lo, hi, color=_color(name), alpha=0.2, lw=0)
            ax.plot(batch_sizes, med, "o-", color=_color(name), label=f"{name} (median, band min-max)")
    for ax in (ax_gap, ax_test):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
    ax_gap.axhline(0, color="0.5", lw=1)
    _plots.label(ax_gap, f"Train minus test accuracy, {epochs} epochs, init std {init_std:g}, "
                 f"{k} seeds", "batch size", "accuracy gap (train - test)", legend=True)
    _plots.label(ax_test, f"Test accuracy, {epochs} epochs, lr {lr:g}", "batch size",
                 "test accuracy")
    return fig, (ax_gap, ax_test)


def _nearest(values, v):
    return int(np.argmin(np.abs(np.log(values) - np.log(v))))


def lr_slider(sweep: dict, lrs, *, init_std: float):
    """LiveFigure: a log slider over the precomputed learning rates (both networks).

    sweep: name -> list of fit_many results, one per rate of `lrs` (seeds on axis 0).
    Left: final test accuracy against the rate (static) with a moving marker;
    right: the median test-accuracy curves at the selected rate. Nothing is
    trained in the callback.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    lrs = np.asarray(lrs, float)
    if len(lrs) < 2 or any(len(v) != len(lrs) for v in sweep.values()):
        raise ValueError("`sweep` must hold one result per rate of `lrs` (two or more rates)")
    fig, (ax_lr, ax_curve) = _plots.new_figure(1, 2, size=(9.5, 3.3), interactive=True)
    setting = fig.suptitle(" ", fontsize=10)
    first = next(iter(sweep.values()))[0]
    steps, nseeds = np.asarray(first.eval_steps), np.shape(first.test_acc)[0]
    markers, curves, medians, states = {}, {}, {}, {}
    for name, runs in sweep.items():
        finals = [np.nan_to_num(np.asarray(r.test_acc)[:, -1]) for r in runs]
        med = np.array([np.median(f) for f in finals])
        ax_lr.fill_between(lrs, [f.min() for f in finals], [f.max() for f in finals],
                           color=_color(name), alpha=0.2, lw=0)
        ax_lr.plot(lrs, med, "o-", color=_color(name), label=f"{name} (median, band min-max)")
        div = np.array([_pe.diverged(r).any() for r in runs])
        if div.any():
            ax_lr.plot(lrs[div], np.zeros(div.sum()) + 0.02, "X", color=_color(name), ms=9,
                       label=f"{name}: a seed diverged")
        medians[name] = [np.median(np.nan_to_num(np.asarray(r.test_acc)), axis=0) for r in runs]
        states[name] = [_pe.status(r) for r in runs]
        (markers[name],) = ax_lr.plot([lrs[0]], [0.0], "o", ms=13, mfc="none", mec="k", mew=1.5)
        (curves[name],) = ax_curve.plot(steps, np.zeros(len(steps)), color=_color(name),
                                        label=name)
    ax_lr.set_xscale("log")
    ax_lr.set_ylim(0, 1)
    _plots.label(ax_lr, f"Final test accuracy after {steps[-1]:,} steps, {nseeds} seeds",
                 "learning rate", "test accuracy", legend=True)
    ax_lr.legend(loc="lower center", fontsize=8)
    ax_curve.set_ylim(0, 1)
    ax_curve.set_xlim(0, steps[-1])
    ax_curve.axhline(0.1, color="0.5", ls=":", lw=1)
    _plots.label(ax_curve, f"At the selected rate, median of {nseeds} seeds", "training step",
                 "test accuracy", legend=True)
    ax_curve.legend(loc="lower right")

    def update(lr):
        j = _nearest(lrs, lr)
        setting.set_text(f"selected learning rate {lrs[j]:.3g} (circles, right panel); "
                         f"init std {init_std:g}")
        text = [f"nearest computed learning rate: {lrs[j]:.3g}"]
        for name, runs in sweep.items():
            acc = medians[name][j]
            markers[name].set_data([lrs[j]], [acc[-1]])
            curves[name].set_ydata(acc)
            st = states[name][j]
            summary = ", ".join(f"{st.count(s)} {s}" for s in ("trains", "stuck", "diverged")
                                if st.count(s))
            text.append(f"{name:>10}: final test accuracy "
                        f"{_pe.fmt_band(np.nan_to_num(np.asarray(runs[j].test_acc)[:, -1]))} "
                        f"(seeds: {summary})")
        return "\n".join(text)

    control = _widgets.slider("learning rate", float(lrs[0]), float(lrs[-1]),
                              float(lrs[len(lrs) // 2]), log=True)
    return _widgets.LiveFigure(fig, update, {"lr": control},
                               animated=list(markers.values()) + list(curves.values()) + [setting])


def init_std_slider(sweep: dict, stds, *, lr: float, seeds, unit: int = 0):
    """LiveFigure: a log slider over the precomputed initial weight stds (both networks).

    sweep: name -> list of fit_many results with the percentile probe, one per
    std of `stds`. Left: median test accuracy against steps; right: the
    15/50/85th percentiles of one last-hidden-layer sigmoid input (first seed).
    The slider snaps to the nearest computed std; nothing is trained in the callback.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    stds = np.asarray(stds, float)
    if len(stds) < 2 or any(len(v) != len(stds) for v in sweep.values()):
        raise ValueError("`sweep` must hold one result per std of `stds` (two or more stds)")
    fig, (ax_acc, ax_pct) = _plots.new_figure(1, 2, size=(9.5, 3.3), interactive=True)
    first = next(iter(sweep.values()))[0]
    steps = np.asarray(first.eval_steps)
    acc_lines, pct_lines = {}, {}
    for name in sweep:
        (acc_lines[name],) = ax_acc.plot(steps, np.zeros(len(steps)), color=_color(name),
                                         label=name)
        for j, (ls, lab) in _PCT_STYLE.items():
            (pct_lines[name, j],) = ax_pct.plot(steps, np.zeros(len(steps)), ls,
                                                color=_color(name), label=f"{name}, {lab}")
    setting = fig.suptitle(" ", fontsize=10)
    ax_acc.axhline(0.1, color="0.5", ls=":", lw=1)
    ax_acc.set_ylim(0, 1)
    ax_acc.set_xlim(0, steps[-1])
    ax_pct.set_xlim(0, steps[-1])
    ax_pct.set_ylim(-6, 6)
    _plots.label(ax_acc, f"Test accuracy, median of {len(seeds)} seeds (chance dotted)",
                 "training step", "test accuracy")
    _plots.label(ax_pct, f"Last-layer unit {unit}, seed {seeds[0]}: percentiles",
                 "training step", "sigmoid input (clipped to ±6)")
    from matplotlib.lines import Line2D

    styles = [Line2D([], [], color="0.4", ls=ls, label=lab) for ls, lab in _PCT_STYLE.values()]
    ax_pct.legend(handles=list(acc_lines.values()) + styles, loc="upper left", ncol=2, fontsize=8)
    medians = {name: [np.median(np.asarray(r.test_acc), axis=0) for r in runs]
               for name, runs in sweep.items()}
    pcts = {name: [np.asarray(r.probe)[0, :, :, unit] for r in runs] for name, runs in sweep.items()}

    def update(init_std):
        j = _nearest(stds, init_std)
        setting.set_text(f"init std {stds[j]:.3g}, learning rate {lr:g}, {steps[-1]:,} steps")
        text = [f"nearest computed init std: {stds[j]:.3g}"]
        for name, runs in sweep.items():
            acc_lines[name].set_ydata(medians[name][j])
            p = pcts[name][j]
            for i in range(3):
                pct_lines[name, i].set_ydata(np.clip(p[:, i], -6, 6))
            text.append(f"{name:>10}: final test accuracy "
                        f"{_pe.fmt_band(np.asarray(runs[j].test_acc)[:, -1])} (median, min-max "
                        f"over seeds); median drift of unit {unit}, seed {seeds[0]}: "
                        f"{np.ptp(p[:, 1]):.2f}")
        return "\n".join(text)

    control = _widgets.slider("init std", float(stds[0]), float(stds[-1]),
                              float(stds[len(stds) // 2]), log=True)
    arts = list(acc_lines.values()) + list(pct_lines.values()) + [setting]
    return _widgets.LiveFigure(fig, update, {"init_std": control}, animated=arts)
