"""Figures of notebooks/01_whitening.ipynb: the four views of a 2-D cloud (raw, standardized,
PCA- and ZCA-whitened) with their covariances, and ZCA on MNIST digits with its filters and the
covariance spectrum. The numbers come from `bn_helpers.whitening`.

Used in notebooks/01_whitening.ipynb.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import plots, widgets
from .. import whitening as wh
from .. import whitening_practice as whp

__all__ = ["QUADRANT_COLOURS", "views_explorer", "zca_explorer"]

# colours used for nothing else in notebook 01 (blue, green, vermillion mean a view or a method)
QUADRANT_COLOURS = [plots.PALETTE["sky"], plots.PALETTE["orange"], plots.PALETTE["purple"], "#8C564B"]
LIMITS = (12.0, 4.0, 4.0, 4.0)   # half-width of each panel's axes, fixed
AXIS_NAMES = ("feature {} [data units]", "feature {} [std. dev.]", "PC {} [std. dev.]",
              "feature {} [std. dev.]")


def _ellipse(mean, cov, n_sigma=2.0, n_points=101):
    """Points of the n_sigma contour of a 2-D Gaussian, and its two principal half-axes."""
    vals, vecs = wh.eigen(cov)
    angle = jnp.linspace(0.0, 2 * jnp.pi, n_points)
    half_axes = n_sigma * vecs * jnp.sqrt(jnp.clip(vals, 0.0))  # columns
    return mean + jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1) @ half_axes.T, half_axes.T


_ellipses = jax.jit(jax.vmap(_ellipse))


def _frame(z, corr, ratio, offset):
    """One slider move: the four views (the compiled `four_views` the notebook also calls) and
    their 2-sigma ellipses."""
    out = wh._four_views(z, corr, ratio, offset, jnp.float32(1e-5))
    out["ellipses"], out["half_axes"] = _ellipses(out["means"], out["covs"])
    return out


def _cov_text(c):
    return f"[[{c[0, 0]:6.3f} {c[0, 1]:6.3f}] [{c[1, 0]:6.3f} {c[1, 1]:6.3f}]]"


def views_explorer(z, *, corr=0.8, ratio=3.0, offset=2.0):
    """Four panels (raw, standardized, PCA-, ZCA-whitened) of the cloud built from the fixed
    draws z (N, 2), each point coloured by the quadrant of its draw, the 2-sigma ellipse and its
    axes, and each view's covariance as colours. Sliders: correlation, scale ratio, mean offset;
    the readout prints covariances, eigenvalues and kappa. Returns a `widgets.LiveFigure`.

    Used in notebooks/01_whitening.ipynb.
    """
    z = wh._data(z, "z")
    quadrant = (np.asarray(z[:, 0]) < 0) + 2 * (np.asarray(z[:, 1]) < 0)   # 0..3
    first = jax.device_get(_frame(z, *(jnp.float32(v) for v in (corr, ratio, offset))))
    fig, axes = plots.new_figure(2, 4, size=(10, 4.9), interactive=True,
                                 gridspec_kw={"height_ratios": [2.3, 1]})
    clouds, ellipses, principal, cov_img = [], [], [], []
    for i, (name, lim) in enumerate(zip(wh.VIEWS, LIMITS, strict=True)):
        ax = axes[0, i]
        pts = first["views"][i]
        # one marker line per colour: faster to redraw than a scatter
        clouds.append([ax.plot(*pts[quadrant == q].T, ".", ms=3, color=QUADRANT_COLOURS[q],
                               alpha=0.8)[0] for q in range(4)])
        ellipses.append(ax.plot([], [], color="k", lw=1.3)[0])
        principal.append(ax.plot([], [], color="k", lw=1.0, ls="--")[0])
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
        plots.label(ax, name, AXIS_NAMES[i].format(1), AXIS_NAMES[i].format(2))
        ax = axes[1, i]
        cov_img.append(ax.pcolormesh(np.zeros((2, 2)), cmap="RdBu_r", vmin=-2, vmax=2))
        ax.set(xlim=(0, 2), ylim=(2, 0), aspect="equal")
        ax.set(xticks=[0.5, 1.5], yticks=[0.5, 1.5], xticklabels=["f1", "f2"],
               yticklabels=["f1", "f2"])
        ax.grid(False)
        ax.set_title(f"covariance, {name}", fontsize=10)
    fig.colorbar(cov_img[-1], ax=axes[1, :], shrink=0.85, label="covariance\n(clipped at ±2)")
    setting = fig.suptitle("", fontsize=10)   # the slider values, so a static copy says them

    def update(corr, ratio, offset):
        out = jax.device_get(_frame(z, *(jnp.float32(v) for v in (corr, ratio, offset))))
        setting.set_text(f"{len(quadrant)} points, correlation {corr:.2f}, scale ratio "
                         f"{ratio:.2f}, mean offset {offset:.1f}")
        lines = [f"{'view':>12}  {'covariance':<32}  {'eigenvalues':<17}  {'κ':>8}"]
        for i, name in enumerate(wh.VIEWS):
            for q, line in enumerate(clouds[i]):
                line.set_data(*out["views"][i][quadrant == q].T)
            ellipses[i].set_data(*out["ellipses"][i].T)
            m, (a1, a2) = out["means"][i], out["half_axes"][i]
            principal[i].set_data(*np.array([m - a1, m + a1, [np.nan] * 2, m - a2, m + a2]).T)
            cov_img[i].set_array(out["covs"][i].ravel())
            lam = out["eigvals"][i]
            lines.append(f"{name:>12}  {_cov_text(out['covs'][i])}  {lam[0]:8.4f} {lam[1]:8.4f}"
                         f"  {out['kappa'][i]:8.2f}")
        lines.append(f"{'raw E[x xᵀ]':>12}  {_cov_text(out['second_moment'])}  "
                     f"{'':17}  {out['kappa_second_moment']:8.2f}")
        lines.append("(E[x xᵀ] is not centred: it is what a linear unit's gradient sees)")
        return "\n".join(lines)

    sliders = {
        "corr": widgets.slider("correlation", -0.95, 0.95, value=corr, step=0.05, fmt=".2f"),
        "ratio": widgets.slider("scale ratio", 0.2, 4.0, value=ratio, log=True, fmt=".2f"),
        "offset": widgets.slider("mean offset", -4.0, 4.0, value=offset, step=0.1, fmt=".1f"),
    }
    animated = [line for group in clouds for line in group] + ellipses + principal + cov_img
    return widgets.LiveFigure(fig, update, sliders, animated=animated + [setting])


def _mosaic(pictures, size=28, gap=3):
    """Six pictures side by side in one array: one image artist draws faster than six."""
    row = np.full((size, 6 * size + 5 * gap), np.nan)
    for j, p in enumerate(pictures):
        row[:, j * (size + gap):j * (size + gap) + size] = np.reshape(p, (size, size))
    return row


def zca_explorer(model: whp.ZCAModel, images, pixels, *, cut: float = 1e-9, half: int = 7,
                 eps: float = 0.01):
    """Six images (top), ZCA-whitened with the slider's eps (middle), and the ZCA filters of six
    pixels as (2 half + 1)^2 crops (bottom), next to the covariance spectrum (eigenvalues above
    cut x the largest) with eps as a line. Returns a `widgets.LiveFigure` with one eps slider.

    Used in notebooks/01_whitening.ipynb.
    """
    import matplotlib.pyplot as plt

    lam = np.asarray(model.eigvals)
    kept = lam[lam > cut * lam[0]]
    images, pixels, width = np.asarray(images)[:6], list(pixels)[:6], 2 * half + 1

    def crop(v, pixel):
        r, c = divmod(pixel, 28)
        return np.reshape(v, (28, 28))[r - half:r + half + 1, c - half:c + half + 1]

    fig, axes = plots.new_figure(3, 2, size=(10, 4.2), interactive=True,
                                 gridspec_kw={"width_ratios": [2.1, 1]})
    gs = axes[0, 1].get_gridspec()
    for ax in axes[:, 1]:
        ax.remove()
    with plots.style():
        spec_ax = fig.add_subplot(gs[:, 1])
    grey, diverging, ink = (plt.get_cmap(name).with_extremes(bad="white")
                            for name in ("gray", "RdBu_r", "gray_r"))
    axes[0, 0].imshow(_mosaic(images), cmap=ink, vmin=0, vmax=1, interpolation="nearest")
    white_img = axes[1, 0].imshow(_mosaic(np.zeros((6, 784))), cmap=grey, vmin=-1, vmax=1,
                                  interpolation="nearest")
    filter_img = axes[2, 0].imshow(_mosaic(np.zeros((6, width, width)), width), cmap=diverging,
                                   vmin=-1, vmax=1, interpolation="nearest")
    for ax, name in zip(axes[:, 0], ("test digit", "ZCA-whitened",
                                     f"ZCA filter\n({width} × {width} crop)"), strict=True):
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
        ax.spines[["left", "bottom"]].set_visible(False)
        ax.set_ylabel(name)
    spec_ax.loglog(np.arange(1, kept.size + 1), kept, color=plots.COLORS["ref"], lw=1.5,
                   label=f"eigenvalue λ ({kept.size} above the cut)")
    eps_line = spec_ax.axhline(eps, color="0.45", ls="--", lw=1.2, label="ε")
    eps_title = fig.suptitle("", fontsize=10)   # the slider value, so a static copy says it
    spec_ax.set_ylim(min(1e-8, 0.5 * kept[-1]), 20)   # every eigenvalue shown stays inside
    plots.label(spec_ax, "Covariance spectrum, MNIST-5k", "direction (by decreasing variance)",
                "eigenvalue [pixel intensity²]")
    spec_ax.legend(loc="lower left")

    def update(eps):
        white, filters = (np.asarray(a) for a in whp.zca_view(model, images, pixels, eps))
        white_img.set_data(_mosaic([v / np.abs(v).max() for v in white]))
        # the centre weight is far larger than the rest: scale each filter by its surround
        filter_img.set_data(_mosaic([crop(v / np.abs(np.delete(v, p)).max(), p)
                                     for v, p in zip(filters, pixels, strict=True)], width))
        eps_line.set_ydata([eps, eps])
        eps_title.set_text(f"MNIST-5k ZCA with whitening ε = {eps:.1e}")
        gain = np.sqrt((lam[0] + eps) / (kept[-1] + eps))
        var = kept / (kept + eps)
        return (f"ε = {eps:.2g}: the weakest direction is amplified {gain:.3g} times\n"
                f"more than the strongest; variances after whitening: {var.min():.2g} to "
                f"{var.max():.3f}\n"
                f"κ = {var.max() / var.min():.3g} over the {kept.size} directions "
                "(1 would be perfectly white)")

    slider = widgets.slider("whitening eps", 1e-5, 10.0, value=eps, log=True, fmt=".1e")
    return widgets.LiveFigure(fig, update, {"eps": slider},
                              animated=[white_img, filter_img, eps_line, eps_title])
