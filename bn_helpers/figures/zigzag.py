"""Figures of notebooks/02_zigzag.ipynb: the zig-zag explorer (contours and 3-D surface of a
two-weight loss, with the gradient-descent path that `bn_helpers.zigzag.descend` computes).

Everything a control touches is jitted once with fixed shapes; the steps slider only truncates
the drawn path of a `MAX_STEPS` descent. Used in notebooks/02_zigzag.ipynb.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import plots, widgets
from .. import zigzag as zz

__all__ = ["GRID", "PATH_COLOR", "loss_grid", "explorer"]

GRID = 61
PATH_COLOR = plots.PALETTE["purple"]   # plain gradient descent, in every figure of notebook 02
ZMIN, ZMAX = -2.0, 3.0   # height range of the 3-D view, log10(E - E* + 0.01)


@partial(jax.jit, static_argnums=(0, 4))
def _grid(kind, x, t, w_star, size):
    u = jnp.linspace(-zz.WINDOW, zz.WINDOW, size)
    uu, vv = jnp.meshgrid(u, u)
    pts = jnp.stack([uu.ravel(), vv.ravel()], 1) + w_star
    z = jax.vmap(lambda w: zz._loss(kind, w, x, t))(pts).reshape(size, size)
    return z - zz._loss(kind, w_star, x, t)


def loss_grid(x, t, loss="quadratic", size: int = GRID):
    """E(w* + u) - E(w*) on a size x size grid of u in [-WINDOW, WINDOW]^2 (rows: u1, cols: u0).

    Used in notebooks/02_zigzag.ipynb.
    """
    kind = zz._choice("loss", loss, zz.LOSSES)
    return _grid(kind, x, t, zz._minimum(kind, x, t), int(size))


def _surface_z(dz):
    """Height of the 3-D view: log10(E - E* + 0.01), clipped to [ZMIN, ZMAX]."""
    return np.clip(np.log10(np.maximum(np.asarray(dz, dtype=float), 0.0) + 0.01), ZMIN, ZMAX)


def _contour_segments(u, dz, levels: int, colors):
    """Contour lines of dz at log-spaced levels (top/1e4 .. top), with one colour per line."""
    import contourpy

    top = max(float(dz.max()), 1e-6)
    gen = contourpy.contour_generator(u, u, dz)
    segs, cols = [], []
    for i, level in enumerate(np.geomspace(top * 1e-4, top, levels + 1)[:-1]):
        lines = gen.lines(level)
        segs += lines
        cols += [colors[i]] * len(lines)
    return segs, cols


@partial(jax.jit, static_argnums=(0, 5))
def _setting(kind, x0, scale_ratio, offset, mode, size, t):
    """Everything a data control needs, in one dispatch: inputs, minimum, eigenvalues, grid."""
    x = zz._transform(x0, scale_ratio, offset, mode)
    w_star = zz._minimum(kind, x, t)
    eigs = zz._hessian_eigs(kind, w_star, x, t)
    return w_star, eigs, _grid(kind, x, t, w_star, size), zz._loss(kind, w_star, x, t), x


def _axes(size):
    """The figure: contour axes (left, legend below it, clear of the contours), 3-D axes."""
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3-D projection)

    w = zz.WINDOW
    with plots.style():
        fig = Figure(figsize=size, layout="none")  # fixed layout: one draw per full redraw
        ax = fig.add_axes((0.07, 0.21, 0.40, 0.68))
        ax3 = fig.add_axes((0.52, 0.06, 0.46, 0.84), projection="3d")
        plots._apply_axes_style(ax)
        ax.set(xlim=(-w, w), ylim=(-w, w), aspect="equal")
        plots.label(ax, "Contours of E(w) - E(w*) (log-spaced)", "w0 - w0*  (weight units)",
                    "w1 - w1*  (weight units)")
        ax.plot([0], [0], "*", color=plots.PALETTE["black"], ms=11, zorder=5, label="minimum w*")
        ax.plot([zz.START[0]], [zz.START[1]], "o", mfc="white", mec=plots.PALETTE["black"], ms=7,
                zorder=5, label=f"start ({math.hypot(*zz.START):.2f} from w*)")
        (path_line,) = ax.plot([], [], "-o", color=PATH_COLOR, lw=1.3, ms=2.5,
                               zorder=6, label="descent path")
        # below the axes, outside the data: no contour line can cross it
        fig.legend(*ax.get_legend_handles_labels(), loc="lower left", bbox_to_anchor=(0.0, 0.0),
                   ncol=3, fontsize=8, frameon=False, handlelength=1.5, columnspacing=1.0)
        ax3.set(xlim=(-w, w), ylim=(-w, w), zlim=(ZMIN, ZMAX))
        ax3.set_title("The same surface in 3-D", fontsize=10)
        ax3.set_xlabel("w0 - w0*", fontsize=8, labelpad=-6)
        ax3.set_ylabel("w1 - w1*", fontsize=8, labelpad=-6)
        ax3.set_zlabel(f"log10(E - E* + 0.01), cut at {ZMAX:g}", fontsize=8, labelpad=-4)
        ax3.tick_params(labelsize=7, pad=-3)
        ax3.view_init(elev=35, azim=-60)
        # the setting on the figure's face (a static copy has no controls); animated, so blitted
        setting = fig.text(0.02, 0.99, "", ha="left", va="top", fontsize=8.5)
    return fig, ax, ax3, path_line, setting


def explorer(*, size=(9.6, 4.2), levels: int = 10, surface_grid: int = 25):
    """The zig-zag explorer: contour plot of E(w) - E(w*) with the descent path, and the same
    surface in 3-D. Controls: loss, inputs, scale ratio, offset, learning rate, momentum, steps.
    Returns a `widgets.LiveFigure`. Contours, wireframe and paths are persistent artists that
    are updated in place and blitted: no control triggers a full redraw.

    Used in notebooks/02_zigzag.ipynb.
    """
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    fig, ax, ax3, path_line, setting = _axes(size)
    contour = LineCollection([], linewidths=0.9, zorder=2)
    ax.add_collection(contour)
    wire = ax3.plot_wireframe(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)),
                              color="0.5", linewidth=0.5)
    (path3,) = ax3.plot([], [], [], "-o", color=PATH_COLOR, lw=1.6, ms=2)
    u = np.linspace(-zz.WINDOW, zz.WINDOW, GRID)
    pick = np.round(np.linspace(0, GRID - 1, surface_grid)).astype(int)
    uu, vv = np.meshgrid(u[pick], u[pick])  # rows: w1 fixed; columns: w0 fixed
    colors = [colormaps["viridis"](i / max(levels - 1, 1)) for i in range(levels)]
    x0, t = zz._base(200, 0)
    state = {"key": None, "path": None}

    def set_data(loss, inputs, scale_ratio, offset):
        kind = zz.LOSSES.index(loss)
        w_star, eigs, dz, e_star, x = _setting(kind, x0, jnp.float32(scale_ratio),
                                               jnp.float32(offset), zz.MODES.index(inputs), GRID, t)
        dz = np.asarray(dz, dtype=float)
        segs, cols = _contour_segments(u, dz, levels, colors)
        contour.set_segments(segs)
        contour.set_color(cols)
        zz_ = _surface_z(dz[np.ix_(pick, pick)])
        wire.set_segments(np.concatenate([np.stack([uu, vv, zz_], -1),
                                          np.stack([uu.T, vv.T, zz_.T], -1)]))
        if ax3.M is None:  # before the first draw
            ax3.M = ax3.get_proj()
        wire.do_3d_projection()
        state["data"] = (kind, x, w_star, zz._facts(*(float(v) for v in eigs)), float(e_star))

    def update(loss, inputs, scale_ratio, offset, lr, momentum, steps):
        key = (loss, inputs, float(scale_ratio), float(offset))
        if state["key"] != key:
            set_data(*key)
            state["key"], state["path"] = key, None
        kind, x, w_star, info, e_star = state["data"]
        pkey = (float(lr), float(momentum))
        if state["path"] is None or state["path"][0] != pkey:
            path, losses = zz._descend(kind, x, t, w_star + jnp.asarray(zz.START), jnp.float32(lr),
                                       jnp.float32(momentum), zz.MAX_STEPS, w_star)
            state["path"] = (pkey, np.asarray(path - w_star), np.asarray(losses))
        _, rel, losses = state["path"]
        shown = rel[: steps + 1]
        path_line.set_data(shown[:, 0], shown[:, 1])
        inside = np.all(np.abs(shown) <= zz.WINDOW, 1)
        z = _surface_z(losses[: steps + 1] - e_star)
        path3.set_data_3d(*(np.where(inside, v, np.nan) for v in (shown[:, 0], shown[:, 1], z)))
        what = (inputs if inputs != "raw"
                else f"raw (scale ratio {scale_ratio:.3g}, offset {offset:.3g})")
        setting.set_text(f"{loss} loss, {what} inputs; learning rate {lr:.3g}, momentum "
                         f"{momentum:.2g}, {steps} steps shown")
        return f"{loss} loss, {what} inputs\n" + _text(info, lr, momentum, steps, rel)

    controls = {
        "loss": widgets.toggle("loss", zz.LOSSES),
        "inputs": widgets.toggle("inputs", zz.MODES),
        "scale_ratio": widgets.slider("scale ratio s", 1.0, 10.0, 3.0, step=0.5),
        "offset": widgets.slider("input offset c", 0.0, 4.0, 2.0, step=0.25),
        # log notches every 10^0.05: 1e-3 ... 10^1.5, so lr = 1 (10^0) is a notch
        "lr": widgets.slider("learning rate", 1e-3, 10 ** zz.LR_EXP_MAX, zz.LR_DEFAULT, log=True,
                             step=zz.LR_EXP_STEP),
        "momentum": widgets.slider("momentum", 0.0, 0.95, 0.0, step=0.05),
        "steps": widgets.int_slider("steps shown", 1, zz.MAX_STEPS, 60),
    }
    return widgets.LiveFigure(fig, update, controls,
                              animated=[contour, wire, path_line, path3, setting])


def _text(info, lr, momentum, steps, rel) -> str:
    """The readout: short lines (at most about 76 characters), so no front end breaks a word."""
    dist = np.linalg.norm(rel, axis=1)
    limit = 2 * (1 + momentum) / info["lam_max"]
    lines = [f"Hessian at the minimum: lam_min = {info['lam_min']:.4g}, "
             f"lam_max = {info['lam_max']:.4g}",
             f"condition number kappa = lam_max/lam_min = {info['kappa']:.4g}",
             f"stability limit 2/lam_max = {info['lr_max']:.4g}; "
             f"with momentum 2(1+beta)/lam_max = {limit:.4g}",
             f"best fixed rate 2/(lam_max+lam_min) = {info['lr_best']:.4g} "
             f"(error x {info['contraction']:.3g} per step)",
             f"learning rate = {lr:.4g} = {lr / info['lr_max']:.3g} x (2/lam_max)"]
    left = np.nonzero(np.any(np.abs(rel) > zz.WINDOW, 1))[0]
    if dist[-1] >= zz.BLOWUP or (not np.isfinite(dist[-1])):
        k = int(np.argmax(dist >= zz.BLOWUP))
        lines.append(f"DIVERGED: |w - w*| passed {zz.BLOWUP:g} at step {k}"
                     + (f" (left the plot at step {left[0]})" if left.size else ""))
    elif left.size and left[0] <= steps:
        lines.append(f"the path leaves the plot at step {left[0]};")
        lines.append(f"after {steps} steps |w - w*| = {dist[steps]:.3g}")
    else:
        done = np.nonzero(dist <= 1e-2 * dist[0])[0]
        lines.append(f"after {steps} steps |w - w*| = {dist[steps]:.3g} (start {dist[0]:.3g});")
        lines.append(f"within 1 % of the start distance at step {done[0]}" if done.size
                     else f"not within 1 % of the start distance in {zz.MAX_STEPS} steps")
    return "\n".join(lines)
