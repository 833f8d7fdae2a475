"""Figures of notebooks/04_bn_math.ipynb: batch norm's forward computation graph.

The compute lives in `bn_helpers.bn_math`; this module only draws.

Used in notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

__all__ = ["draw_graph"]

_NODES = {  # name: (x, y, label)
    "x": (0.0, 1.0, r"$x_i$"),
    "mu": (1.3, 2.0, r"$\mu_B$"),
    "xc": (2.6, 1.0, r"$x_i-\mu_B$"),
    "var": (3.9, 2.0, r"$\sigma_B^2$"),
    "inv": (5.2, 2.0, r"$1/\sqrt{\sigma_B^2+\epsilon}$"),
    "xhat": (6.5, 1.0, r"$\hat x_i$"),
    "gamma": (6.5, 0.0, r"$\gamma$"),
    "beta": (7.8, 0.0, r"$\beta$"),
    "y": (7.8, 1.0, r"$y_i$"),
}
_EDGES = [("x", "mu", "mean"), ("x", "xc", "direct"), ("mu", "xc", "mean"), ("xc", "var", "var"),
          ("var", "inv", "var"), ("inv", "xhat", "var"), ("xc", "xhat", "direct"),
          ("xhat", "y", "out"), ("gamma", "y", "out"), ("beta", "y", "out")]


def draw_graph(ax):
    """Draw BN's forward computation graph on `ax`; x reaches x_hat by three paths, drawn
    solid, dashed and dotted (directly, through the mean, through the variance).

    Used in notebooks/04_bn_math.ipynb.
    """
    # one dark colour, three line styles: the notebook's colours keep their meanings elsewhere
    colors = {"direct": "0.1", "mean": "0.1", "var": "0.1", "out": "0.55"}
    styles = {"direct": "-", "mean": (0, (5, 2)), "var": (0, (1, 1.5)), "out": "-"}
    boxes = {}
    for name, (x0, y0, text) in _NODES.items():
        param = name in ("gamma", "beta")
        boxes[name] = ax.text(x0, y0, text, ha="center", va="center", fontsize=12, zorder=3,
                              bbox=dict(boxstyle="round,pad=0.35", fc="#FFF6D5" if param else "white",
                                        ec="0.3", lw=1))
    for a, b, kind in _EDGES:
        # Arrows start and end at the boxes' edges, whatever the boxes' widths
        ax.annotate("", xy=(0.5, 0.5), xycoords=boxes[b], xytext=(0.5, 0.5), textcoords=boxes[a],
                    arrowprops=dict(arrowstyle="-|>", color=colors[kind], lw=2.0, shrinkA=3,
                                    linestyle=styles[kind],
                                    shrinkB=3, mutation_scale=14,
                                    patchA=boxes[a].get_bbox_patch(),
                                    patchB=boxes[b].get_bbox_patch()))
    for kind, text in (("direct", "direct path"), ("mean", "through the mean"),
                       ("var", "through the variance")):
        ax.plot([], [], color=colors[kind], ls=styles[kind], lw=2, label=text)
    ax.legend(loc="lower left", fontsize=9)
    ax.set_xlim(-0.6, 8.4)
    ax.set_ylim(-0.9, 2.5)
    ax.set_axis_off()
    return ax
