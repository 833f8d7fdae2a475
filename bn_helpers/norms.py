"""Normalization layers beside batch norm: layer, group, instance norm, Batch Renormalization.

Every kind is built on the tested BN core in `bn_helpers.batchnorm`
(`_moments` for the statistics, `_normalize` for the formula), so there is
one normalize formula in the package. The feature (channel) axis is last:
inputs are (N, D) or NHWC (N, H, W, C). gamma and beta hold one value per
channel for every kind.

- batch: statistics over every axis but the last (Ioffe & Szegedy 2015).
- layer: per example over all non-batch axes (Ba, Kiros & Hinton 2016;
  for NHWC over H, W and C, as in Wu & He 2018).
- group: per example over H, W and each of `groups` contiguous groups of
  channels (Wu & He 2018); groups=1 is layer norm, groups=C instance norm.
- instance: per example and channel over the spatial axes (needs NHWC).
- renorm: Batch Renormalization (Ioffe 2017, Algorithm 1).

`apply_norm` checks its inputs and raises errors that name the argument;
the models call the unchecked `_apply_norm` inside jitted code.

Used by bn_helpers.mlp and bn_helpers.cnn.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import batchnorm as _bn

__all__ = ["KINDS", "STATEFUL", "init_norm", "apply_norm", "layer_norm", "group_norm",
           "instance_norm"]

KINDS = ("batch", "layer", "group", "instance", "renorm")
# Kinds with running statistics, whose training mode needs a batch of >= 2 values per channel
STATEFUL = ("batch", "renorm")


# --- the math (no checks; safe inside jit) -----------------------------------


def _standardize_groups(x, groups: int, eps):
    """(x - mean) / sqrt(var + eps) per example and per group of contiguous channels."""
    n, c = x.shape[0], x.shape[-1]
    xg = x.reshape(n, -1, groups, c // groups)  # (N, H*W, G, C/G)
    ones, zeros = jnp.ones(groups, x.dtype), jnp.zeros(groups, x.dtype)

    def one_example(xe):  # (H*W, G, C/G): statistics per group over axes 0 and 2
        mean, var = _bn._moments(xe, (0, 2))
        return _bn._normalize(xe, mean, var, ones, zeros, eps, 1)

    return jax.vmap(one_example)(xg).reshape(x.shape)


def _group_core(x, gamma, beta, groups: int, eps):
    # Per-channel affine after the per-group standardization (gamma, beta broadcast on C)
    return _standardize_groups(x, groups, eps) * gamma + beta


def _renorm_train(params, state, x, momentum, eps, r_max, d_max, unbiased_var):
    """Algorithm 1 of Ioffe 2017 with r, d held constant for autodiff.

    sigma_B = sqrt(var_B + eps) and sigma = sqrt(running var + eps), so with
    r, d unclipped the output equals eval mode's (x - mu) / sigma. The
    correction folds into BN's affine: gamma' = gamma * r, beta' = beta + gamma * d.
    The paper keeps a moving average of sigma itself; like BN (and so that
    eval mode is BN's) we average the variance.
    """
    ax = x.ndim - 1
    axes = tuple(range(ax))
    m = int(np.prod(x.shape[:-1]))
    mean_b, var_b = _bn._moments(x, axes)
    sigma_b = jnp.sqrt(var_b + eps)
    sigma = jnp.sqrt(state["var"] + eps)
    r = jax.lax.stop_gradient(jnp.clip(sigma_b / sigma, 1.0 / r_max, r_max))
    d = jax.lax.stop_gradient(jnp.clip((mean_b - state["mean"]) / sigma, -d_max, d_max))
    gamma, beta = params["gamma"], params["beta"]
    shifted = {"gamma": gamma * r, "beta": beta + gamma * d}
    # BN's train step: same batch statistics, same running-average update
    return _bn._train_step(shifted, state, x, momentum, eps, ax, axes, m, unbiased_var)


def _apply_norm(kind, params, state, x, train, momentum=0.9, eps=1e-5, groups=None,
                r_max=3.0, d_max=5.0, unbiased_var=True):
    """Unchecked forward of every kind: (y, new_state). Shapes must already be right."""
    gamma, beta = params["gamma"], params["beta"]
    ax = x.ndim - 1
    if kind in STATEFUL:
        if not train:
            return _bn._normalize(x, state["mean"], state["var"], gamma, beta, eps, ax), state
        if kind == "batch":
            axes = tuple(range(ax))
            m = int(np.prod(x.shape[:-1]))
            return _bn._train_step(params, state, x, momentum, eps, ax, axes, m, unbiased_var)
        return _renorm_train(params, state, x, momentum, eps, r_max, d_max, unbiased_var)
    if kind == "layer":
        g = 1
    elif kind == "instance":
        g = x.shape[-1]
    else:
        g = groups
    return _group_core(x, gamma, beta, g, eps), state


# --- checks ------------------------------------------------------------------


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}")


def _check_groups(groups, c: int):
    if groups is None:
        raise ValueError(f"`groups` is required for kind='group' (a divisor of the {c} channels)")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"`groups` must be a positive int, got {groups!r}")
    if c % int(groups):
        raise ValueError(f"`groups`={groups} must divide the number of channels C={c}")
    return int(groups)


def _check_x(kind, x):
    x = _bn._check_array("x", x, min_ndim=2)
    if kind == "instance" and x.ndim < 3:
        raise ValueError(
            f"instance norm needs spatial axes: `x` must be NHWC (N, H, W, C), got shape "
            f"{tuple(x.shape)}; for (N, D) inputs use kind='layer' or 'batch'"
        )
    return x


def _check_affine(name, p, x):
    p = _bn._check_array(name, p)
    if tuple(p.shape) != (x.shape[-1],):
        raise ValueError(f"`{name}` must have shape ({x.shape[-1]},), one value per channel (the "
                         f"last axis of x with shape {tuple(x.shape)}); got {tuple(p.shape)}")
    return p


def _check_eps(eps):
    if _bn._is_concrete(eps) and not float(eps) > 0.0:
        raise ValueError(f"`eps` must be > 0, got {eps}")


def _check_limits(r_max, d_max):
    if _bn._is_concrete(r_max) and not float(r_max) >= 1.0:
        raise ValueError(f"`r_max` must be >= 1 (r is clipped to [1/r_max, r_max]), got {r_max}")
    if _bn._is_concrete(d_max) and not float(d_max) >= 0.0:
        raise ValueError(f"`d_max` must be >= 0 (d is clipped to [-d_max, d_max]), got {d_max}")


# --- public API ----------------------------------------------------------------


def init_norm(kind: str, num_features: int):
    """Fresh (params, state) of one normalization layer.

    params = {"gamma": ones, "beta": zeros} (one per channel); state =
    {"mean": zeros, "var": ones} for "batch" and "renorm", {} otherwise
    (layer, group and instance norm keep no running statistics).
    """
    _check_kind(kind)
    params, state = _bn.init_batch_norm(num_features)
    return params, (state if kind in STATEFUL else {})


def apply_norm(kind, params, state, x, *, train, momentum=0.9, eps=1e-5, groups=None,
               r_max=3.0, d_max=5.0, unbiased_var=True):
    """One normalization layer with explicit state: returns (y, new_state).

    kind: one of KINDS; x: (N, D) or NHWC, channels last. "batch" is
    `bn_helpers.apply_batch_norm` (running averages new = momentum * old +
    (1 - momentum) * batch, unbiased running variance by default). "renorm"
    in training mode multiplies BN's x_hat by r and adds d (both clipped
    with r_max, d_max and treated as constants by autodiff); in eval mode it
    is BN with the running statistics. "layer", "group" (needs `groups`) and
    "instance" use each example's own statistics in both modes and return
    `state` unchanged.
    """
    _check_kind(kind)
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(f"`train` must be True or False, got {train!r}")
    if not isinstance(params, dict) or {"gamma", "beta"} - set(params):
        raise ValueError(f"`params` must be a dict with keys ('gamma', 'beta') (see init_norm), "
                         f"got {type(params).__name__}")
    x = _check_x(kind, x)
    ax = x.ndim - 1
    params = {name: _check_affine(name, params[name], x) for name in ("gamma", "beta")}
    _check_eps(eps)
    if kind == "group":
        groups = _check_groups(groups, x.shape[-1])
    if kind in STATEFUL:
        _bn._check_dicts(params, state)
        for key in ("mean", "var"):
            if tuple(jnp.shape(state[key])) != (x.shape[ax],):
                raise ValueError(f"`state['{key}']` must have shape ({x.shape[ax]},), got "
                                 f"{tuple(jnp.shape(state[key]))}")
        if _bn._is_concrete(momentum) and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"`momentum` must be in [0, 1] (weight on the old value), got {momentum}")
        if kind == "renorm":
            _check_limits(r_max, d_max)
        if train:
            _bn._check_batch(x, tuple(range(ax)))
    return _apply_norm(kind, params, state, x, bool(train), momentum, eps, groups, r_max, d_max,
                       unbiased_var)


def layer_norm(x, gamma, beta, *, eps=1e-5):
    """Layer norm: each example normalized over all its axes but the batch axis.

    gamma, beta: one value per channel (last axis). Same in training and eval.
    """
    y, _ = apply_norm("layer", {"gamma": gamma, "beta": beta}, {}, x, train=True, eps=eps)
    return y


def group_norm(x, gamma, beta, *, groups, eps=1e-5):
    """Group norm: per example over H, W and each group of C/groups contiguous channels.

    groups=1 gives layer norm, groups=C instance norm. (N, D) inputs count as H=W=1.
    """
    y, _ = apply_norm("group", {"gamma": gamma, "beta": beta}, {}, x, train=True, eps=eps,
                      groups=groups)
    return y


def instance_norm(x, gamma, beta, *, eps=1e-5):
    """Instance norm: per example and per channel over the spatial axes of NHWC `x`."""
    y, _ = apply_norm("instance", {"gamma": gamma, "beta": beta}, {}, x, train=True, eps=eps)
    return y
