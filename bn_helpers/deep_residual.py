"""Deep and residual networks at init and in training: per-layer statistics, probes, frozen BN.

Every network is a `bnh.CNN` (plain or residual) and every training run a
`bnh.fit_many` call in the notebook; this module holds what the experiments
measure and the small pieces around them:

* `small_fashion`: Fashion-MNIST shrunk to 8x8 images (CPU scale);
* `init_profile(net, x, y, keys)`: at init, per conv layer the activation std
  and the norm of the loss gradient of its weights, and per residual block the
  variance of the skip path and of the branch, for several seeds;
* `scale_branches`: multiply every residual branch by a factor (exact at init);
* `explorer_grid(kind, keys, x)`: the slider's data, one compiled program per norm;
* `residual_variance`: the variance of a residual stack at init, in closed form;
* `growth_rate`: per-layer growth factor of gradient norms;
* from `deep_residual_training`: `FrozenNorm` (BN frozen for fine-tuning),
  the `layer_grad_norms` record and `running_stats` probe, `bn_probes`.

Used in notebooks/09_deep_residual.ipynb.
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from . import train as _train
from .cnn import CNN
from .why_bn_works import band, fmt_band, markdown_table, select

__all__ = ["small_fashion", "conv_weights", "init_profile", "scale_branches", "block_variances",
           "explorer_grid", "explorer_net", "EXPLORER_BRANCH", "EXPLORER_INIT", "residual_variance",
           "growth_rate", "FrozenNorm",
           "running_stats", "layer_grad_norms", "bn_probes", "band", "fmt_band", "markdown_table", "select",
           "final_acc", "EXPLORER_BLOCKS", "EXPLORER_KINDS"]


# --- data ----------------------------------------------------------------------------------


def small_fashion(size: int = 8):
    """Fashion-MNIST (the shipped 10,000 + 2,000 images) as size x size images, standardized.

    Each 28x28 image loses a 2-pixel border (24x24) and is averaged over blocks of
    24 // size pixels; pixels are then standardized with the training set's mean and
    std. Returns (x_train, y_train, x_test, y_test), images NHWC (N, size, size, 1).

    Used in notebooks/09_deep_residual.ipynb.
    """
    from . import data as _data

    if size not in (4, 6, 8, 12, 24):
        raise ValueError(f"`size` must divide 24 (4, 6, 8, 12 or 24), got {size}")
    d = _data.load_dataset("fashion10k", flatten=False)
    f = 24 // size

    def shrink(x):
        x = x[:, 2:26, 2:26, 0].reshape(len(x), size, f, size, f).mean(axis=(2, 4))
        return x[..., None]

    x_train, x_test = shrink(d.x_train), shrink(d.x_test)
    mean, std = x_train.mean(), x_train.std()
    return ((x_train - mean) / std).astype(np.float32), d.y_train, \
        ((x_test - mean) / std).astype(np.float32), d.y_test


# --- per-layer statistics at init ------------------------------------------------------------


def conv_weights(net: CNN, tree) -> list:
    """The 3x3 conv weights (or their gradients) of `tree` in layer order, stacked runs unstacked.

    Residual nets: the stem, then conv1 and conv2 of every block (no 1x1
    projection, no dense head). Same order as `apply`'s hidden list.

    Used in notebooks/09_deep_residual.ipynb.
    """
    out = []
    for e, (_, _, _, n) in enumerate(net.entries()):
        p = tree[e]
        ws = [p["W"]] if not (net.residual and e > 0) else [p["conv1"]["W"], p["conv2"]["W"]]
        if n == 1:
            out.extend(ws)
        else:
            out.extend(w[i] for i in range(n) for w in ws)
    return out


def _channel_var(a):
    """Variance over batch and positions of each channel, averaged over channels."""
    return jnp.mean(jnp.var(a, axis=(0, 1, 2)))


@partial(jax.jit, static_argnames=("net",))
def _profile(net, keys, x, y, scale, branch):
    def one(key):
        params, state = net.init_params(key, scale)
        if net.residual:
            params = scale_branches(net, params, branch)

        def loss(p):
            logits, _, hidden = net.apply(p, state, x, train=True, return_hidden=True)
            return _train.cross_entropy(logits, y), hidden

        grads, hidden = jax.grad(loss, has_aux=True)(params)
        out = {"act_std": jnp.stack([jnp.std(h["post"]) for h in hidden]),
               "grad_norm": jnp.stack([jnp.linalg.norm(g) for g in conv_weights(net, grads)])}
        if net.residual:
            blocks = hidden[2::2]
            out["skip_var"] = jnp.stack([_channel_var(h["skip"]) for h in blocks])
            out["branch_var"] = jnp.stack([_channel_var(h["branch"]) for h in blocks])
            out["out_var"] = jnp.stack([_channel_var(h["post"]) for h in blocks])
        return out

    # Seeds one after the other: batching convolutions over different weights is far slower on CPU
    return jax.lax.map(one, keys)


def init_profile(net: CNN, x, y, keys, *, scale: float = 1.0, branch: float = 1.0) -> dict:
    """Per-layer statistics of `net` at init on one batch (x, y), one row per key (seed).

    act_std (K, layers): std of every conv layer's output ("post"); grad_norm
    (K, layers): norm of the cross-entropy gradient of each conv weight (layer
    order of `conv_weights`). Residual nets also give, per block, skip_var,
    branch_var and out_var: the channel variance of the skip path, of the
    (scaled) branch and of their sum. `scale` multiplies the init std,
    `branch` every residual branch (`scale_branches`). Training-mode BN.

    Used in notebooks/09_deep_residual.ipynb.
    """
    out = _profile(net, jnp.asarray(keys), jnp.asarray(x), jnp.asarray(y, jnp.int32),
                   jnp.float32(scale), jnp.float32(branch))
    return {k: np.asarray(v) for k, v in out.items()}


def scale_branches(net: CNN, params, factor):
    """params with every residual branch multiplied by `factor` (exact at init).

    The branch ends with its last norm (gamma * x_hat + beta, beta = 0 at init)
    or, without a norm, with a linear conv whose bias is 0 at init: scaling that
    gamma, or that conv's weights, scales the branch. Traceable, so a slider can
    move `factor` without a new compile.

    Used in notebooks/09_deep_residual.ipynb.
    """
    if not net.residual:
        raise ValueError("scale_branches needs a residual network")
    name = "gamma" if net.norm else "W"
    out = [params[0]]
    for p in params[1:-1]:
        p = dict(p)
        p["conv2"] = {**p["conv2"], name: p["conv2"][name] * factor}
        out.append(p)
    return out + [params[-1]]


def block_variances(profile: dict) -> dict:
    """Seed medians of skip_var, branch_var and out_var, and the branch's share of the output.

    Used in notebooks/09_deep_residual.ipynb.
    """
    med = {k: np.median(profile[k], axis=0) for k in ("skip_var", "branch_var", "out_var")}
    med["branch_share"] = med["branch_var"] / (med["skip_var"] + med["branch_var"])
    return med


# --- the explorer: one compiled program per normalization, a precomputed grid ---------------

EXPLORER_BLOCKS = 32
EXPLORER_KINDS = ("none", "batch", "layer")
EXPLORER_BRANCH = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
EXPLORER_INIT = {"He": 1.0, "Glorot": 2 ** -0.5}


@lru_cache(maxsize=None)
def explorer_net(kind: str) -> CNN:
    """The explorer's residual net: 8x8x1 inputs, a stem conv and 32 blocks of 8 channels, He init.

    Used in notebooks/09_deep_residual.ipynb.
    """
    norm = None if kind == "none" else kind
    return CNN(input_shape=(8, 8, 1), channels=(8,), convs_per_stage=EXPLORER_BLOCKS,
               residual=True, norm=norm)


@partial(jax.jit, static_argnames=("net",))
def _forward_grid(net, keys, x, scales, branches):
    def one(key, scale, branch):
        params, state = net.init_params(key, scale)
        params = scale_branches(net, params, branch)
        _, _, hidden = net.apply(params, state, x, train=True, return_hidden=True)
        blocks = hidden[2::2]
        return (jnp.stack([_channel_var(h["skip"]) for h in blocks]),
                jnp.stack([_channel_var(h["branch"]) for h in blocks]))

    k, b = keys.shape[0], branches.shape[0]
    ki, si, bi = jnp.meshgrid(jnp.arange(k), jnp.arange(scales.shape[0]), jnp.arange(b), indexing="ij")
    out = jax.lax.map(lambda ijk: one(keys[ijk[0]], scales[ijk[1]], branches[ijk[2]]),
                      jnp.stack([ki.ravel(), si.ravel(), bi.ravel()], axis=1))
    return jax.tree.map(lambda a: a.reshape((k, scales.shape[0], b) + a.shape[1:]), out)


def explorer_grid(kind: str, keys, x) -> dict:
    """Seed medians of skip and branch variance per block over the explorer's whole grid.

    Returns {"skip_var", "branch_var"} of shape (len(EXPLORER_INIT), len(EXPLORER_BRANCH),
    EXPLORER_BLOCKS): every init x branch scale the sliders offer, computed in one call
    so that moving a slider only selects a row.

    Used in notebooks/09_deep_residual.ipynb.
    """
    scales = jnp.asarray(list(EXPLORER_INIT.values()), jnp.float32)
    branches = jnp.asarray(EXPLORER_BRANCH, jnp.float32)
    skip, branch = _forward_grid(explorer_net(kind), jnp.asarray(keys), jnp.asarray(x), scales,
                                 branches)
    return {"skip_var": np.median(np.asarray(skip), 0), "branch_var": np.median(np.asarray(branch), 0)}


def residual_variance(v0: float, alpha: float, num_blocks: int, normalized: bool, gain: float = 1.0):
    """Variance after each of `num_blocks` residual blocks x + alpha * f(x) at init (length L + 1).

    The branch is independent of its input at init, so variances add. With a
    norm ending the branch Var f(x) = 1: v_l = v0 + l alpha^2. Without a norm
    Var f(x) = gain * Var x: v_l = v0 (1 + gain alpha^2)^l.

    Used in notebooks/09_deep_residual.ipynb.
    """
    layers = np.arange(num_blocks + 1, dtype=np.float64)
    if normalized:
        return v0 + layers * alpha ** 2
    return v0 * (1.0 + gain * alpha ** 2) ** layers


def growth_rate(grad_norms) -> np.ndarray:
    """Per-layer growth factor of gradient norms from the last layer to the first: (g_1 / g_L)^(1/(L-1)).

    grad_norms: (..., L) in layer order; reduces the last axis.

    Used in notebooks/09_deep_residual.ipynb.
    """
    g = np.asarray(grad_norms, dtype=np.float64)
    return (g[..., 0] / g[..., -1]) ** (1.0 / (g.shape[-1] - 1))


# Training-side pieces (frozen BN, hooks, BN probes) live in deep_residual_training
from .deep_residual_training import (  # noqa: E402
    FrozenNorm, bn_probes, final_acc, layer_grad_norms, running_stats)
