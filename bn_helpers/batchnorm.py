"""Batch normalization: forward, hand-written backward, running statistics.

The public functions validate their inputs and raise errors that name the
argument at fault. The engine in `bn_helpers.train` calls the unchecked
`_normalize` inside jitted code, where shapes were already checked once.

Used in notebooks/04_bn_math.ipynb and notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .compat import is_tracer

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "init_batch_norm",
    "apply_batch_norm",
    "reduce_axes",
]


# --- input checks ------------------------------------------------------------


def _is_concrete(x) -> bool:
    """True when `x` holds values (not a tracer inside `jit`, `grad` or `vmap`)."""
    return not is_tracer(x)


def _check_array(name: str, x, *, min_ndim: int = 0):
    if not hasattr(x, "shape"):
        try:
            x = jnp.asarray(x)
        except TypeError as err:
            raise TypeError(f"`{name}` must be an array, got {type(x).__name__}") from err
    if x.ndim < min_ndim:
        raise ValueError(
            f"`{name}` must have at least {min_ndim} dimensions (batch and features), "
            f"got shape {tuple(x.shape)}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
    if _is_concrete(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(np.asarray(x))))
        raise ValueError(f"`{name}` contains {bad} non-finite value(s) (NaN or inf)")
    return x


def _feature_axis(feature_axis, ndim: int) -> int:
    if not isinstance(feature_axis, (int, np.integer)) or isinstance(feature_axis, bool):
        raise TypeError(f"`feature_axis` must be an int, got {feature_axis!r}")
    if not -ndim <= feature_axis < ndim:
        raise ValueError(
            f"`feature_axis`={feature_axis} is out of range for an input with {ndim} "
            f"dimensions (valid: {-ndim} to {ndim - 1})"
        )
    return int(feature_axis) % ndim


def reduce_axes(ndim: int, feature_axis: int = -1) -> tuple[int, ...]:
    """Axes BN averages over: every axis except `feature_axis`.

    (N, D) -> (0,); NHWC with feature_axis=-1 -> (0, 1, 2); NCHW with
    feature_axis=1 -> (0, 2, 3).

    Used in notebooks/04_bn_math.ipynb (BN for convolutions).
    """
    ax = _feature_axis(feature_axis, ndim)
    return tuple(i for i in range(ndim) if i != ax)


def _check_params(x, gamma, beta, ax: int):
    num = x.shape[ax]
    for name, p in (("gamma", gamma), ("beta", beta)):
        p = _check_array(name, p)
        if tuple(p.shape) != (num,):
            raise ValueError(
                f"`{name}` must have shape ({num},), one value per feature along "
                f"`feature_axis`={ax} of x with shape {tuple(x.shape)}; got {tuple(p.shape)}"
            )
    gamma = _check_array("gamma", gamma)
    beta = _check_array("beta", beta)
    return gamma, beta


def _check_batch(x, axes: tuple[int, ...]):
    m = int(np.prod([x.shape[i] for i in axes]))
    if m < 2:
        raise ValueError(
            f"batch norm in training mode needs more than 1 value per feature, got {m} "
            f"(x has shape {tuple(x.shape)}); use train=False (running statistics) "
            "for a single example"
        )
    return m


def _bshape(ndim: int, ax: int) -> tuple[int, ...]:
    """Shape that broadcasts a per-feature vector against the input."""
    return tuple(-1 if i == ax else 1 for i in range(ndim))


# --- the math (no checks; safe inside jit) -----------------------------------


def _moments(x, axes):
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - jnp.expand_dims(mean, axes)), axis=axes)
    return mean, var


def _normalize(x, mean, var, gamma, beta, eps, ax):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per feature along `ax`."""
    shape = _bshape(x.ndim, ax)
    inv = jax.lax.rsqrt(var + eps)
    return (x - mean.reshape(shape)) * (gamma * inv).reshape(shape) + beta.reshape(shape)


# --- public API ----------------------------------------------------------------


def batch_norm(x, gamma, beta, *, eps: float = 1e-5, feature_axis: int = -1):
    """Training-mode batch norm with the batch's own statistics (Algorithm 1).

    Mean and biased variance are taken over every axis except `feature_axis`,
    so (N, D), NHWC (feature_axis=-1) and NCHW (feature_axis=1) all work.

    Used in notebooks/04_bn_math.ipynb.
    """
    x = _check_array("x", x, min_ndim=2)
    ax = _feature_axis(feature_axis, x.ndim)
    axes = reduce_axes(x.ndim, ax)
    gamma, beta = _check_params(x, gamma, beta, ax)
    _check_batch(x, axes)
    mean, var = _moments(x, axes)
    return _normalize(x, mean, var, gamma, beta, eps, ax)


def batch_norm_backward(dy, x, gamma, *, eps: float = 1e-5, feature_axis: int = -1):
    """Closed-form backward pass of `batch_norm`, written by hand.

    With g = dL/dy, x_hat the normalized input and bars for batch means,
    dx = gamma / sqrt(var + eps) * (g - mean(g) - x_hat * mean(g * x_hat)),
    dgamma = sum(g * x_hat), dbeta = sum(g). Returns (dx, dgamma, dbeta).

    Used in notebooks/04_bn_math.ipynb.
    """
    x = _check_array("x", x, min_ndim=2)
    dy = _check_array("dy", dy, min_ndim=2)
    if dy.shape != x.shape:
        raise ValueError(f"`dy` must have the shape of x {tuple(x.shape)}, got {tuple(dy.shape)}")
    ax = _feature_axis(feature_axis, x.ndim)
    axes = reduce_axes(x.ndim, ax)
    gamma, _ = _check_params(x, gamma, jnp.zeros_like(gamma), ax)
    _check_batch(x, axes)
    shape = _bshape(x.ndim, ax)
    mean, var = _moments(x, axes)
    inv = jax.lax.rsqrt(var + eps)
    x_hat = (x - mean.reshape(shape)) * inv.reshape(shape)
    dbeta = jnp.sum(dy, axis=axes)
    dgamma = jnp.sum(dy * x_hat, axis=axes)
    g_mean = jnp.mean(dy, axis=axes, keepdims=True)
    gx_mean = jnp.mean(dy * x_hat, axis=axes, keepdims=True)
    dx = (gamma * inv).reshape(shape) * (dy - g_mean - x_hat * gx_mean)
    return dx, dgamma, dbeta


def init_batch_norm(num_features: int):
    """Fresh BN parameters and running statistics as plain dicts.

    params = {"gamma": ones, "beta": zeros}; state = {"mean": zeros, "var": ones}.
    The running variance starts at 1, not 0, so eval mode right after init is finite.

    Used in notebooks/05_inference.ipynb.
    """
    if not isinstance(num_features, (int, np.integer)) or num_features < 1:
        raise ValueError(f"`num_features` must be a positive int, got {num_features!r}")
    params = {"gamma": jnp.ones(num_features), "beta": jnp.zeros(num_features)}
    state = {"mean": jnp.zeros(num_features), "var": jnp.ones(num_features)}
    return params, state


def _check_dicts(params, state):
    for name, d, keys in (("params", params, ("gamma", "beta")), ("state", state, ("mean", "var"))):
        if not isinstance(d, dict) or set(keys) - set(d):
            raise ValueError(
                f"`{name}` must be a dict with keys {keys} (see init_batch_norm), got "
                f"{type(d).__name__} with keys {sorted(d) if isinstance(d, dict) else '-'}"
            )


def apply_batch_norm(
    params,
    state,
    x,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
    feature_axis: int = -1,
    unbiased_var: bool = True,
):
    """BN layer with explicit state: returns (y, new_state).

    train=True normalizes with the batch statistics and updates the running
    averages: new = momentum * old + (1 - momentum) * batch. `momentum` weighs
    the OLD value, as in Keras and Flax; PyTorch's momentum=0.1 is momentum=0.9
    here. With unbiased_var=True the running variance stores the
    m/(m-1)-corrected batch variance (PyTorch, the paper's Algorithm 2); with
    False the biased one (Keras, Flax). train=False uses the running statistics
    and returns `state` unchanged.

    Used in notebooks/05_inference.ipynb.
    """
    if not isinstance(train, (bool, np.bool_)):
        raise TypeError(f"`train` must be True or False, got {train!r}")
    _check_dicts(params, state)
    x = _check_array("x", x, min_ndim=2)
    ax = _feature_axis(feature_axis, x.ndim)
    axes = reduce_axes(x.ndim, ax)
    gamma, beta = _check_params(x, params["gamma"], params["beta"], ax)
    for key in ("mean", "var"):
        if tuple(jnp.shape(state[key])) != (x.shape[ax],):
            raise ValueError(
                f"`state['{key}']` must have shape ({x.shape[ax]},), got {tuple(jnp.shape(state[key]))}"
            )
    if _is_concrete(momentum) and not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"`momentum` must be in [0, 1] (weight on the old value), got {momentum}")
    if not train:
        y = _normalize(x, state["mean"], state["var"], gamma, beta, eps, ax)
        return y, state
    m = _check_batch(x, axes)
    return _train_step(params, state, x, momentum, eps, ax, axes, m, unbiased_var)


def _train_step(params, state, x, momentum, eps, ax, axes, m, unbiased_var):
    """Normalize with batch statistics and update the running averages (unchecked)."""
    mean, var = _moments(x, axes)
    y = _normalize(x, mean, var, params["gamma"], params["beta"], eps, ax)
    # Running averages sit outside the autodiff graph
    mean_s = jax.lax.stop_gradient(mean)
    var_s = jax.lax.stop_gradient(var) * (m / (m - 1) if unbiased_var else 1.0)
    new_state = {
        "mean": momentum * state["mean"] + (1.0 - momentum) * mean_s,
        "var": momentum * state["var"] + (1.0 - momentum) * var_s,
    }
    return y, new_state
