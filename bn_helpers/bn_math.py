"""The mathematics of batch norm, one step at a time: forward intermediates, the paper's
staged backward pass, and small demos built on the tested core in `bn_helpers.batchnorm`.

`forward_steps` and `staged_backward` spell out Ioffe & Szegedy's Algorithm 1 and their
chain-rule equations (arXiv 1502.03167, section 3) line by line: they are the derivation the
notebook teaches, tested against the core's `batch_norm` and `batch_norm_backward`. Everything
else calls the core. Gradient checking (finite differences, relative errors, their reading)
lives in `bn_helpers.bn_math_fd` and is re-exported here; the computation-graph drawing is in
`bn_helpers.figures.bn_math`.

Used in notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import batchnorm as _bn
from .bn_math_fd import (CS231N_BANDS, FLOAT32_EPS, _check_eps, band, cs231n_band,  # noqa: F401
                         fd_error_curve, gradient_errors, numerical_gradient, vector_rel_error)
from .compat import enable_x64

__all__ = ["forward_steps", "staged_backward", "numerical_gradient", "gradient_errors",
           "fd_error_curve", "band", "cs231n_band", "vector_rel_error", "CS231N_BANDS",
           "FLOAT32_EPS", "identity_demo", "eps_std_deviation", "moved_outputs", "normalize_over",
           "conv_channel_moments", "identity_params", "weight_gradient_scaling", "eps_gain"]


# --- checks on the arguments ---------------------------------------------------


def _setup(x, gamma, feature_axis):
    x = _bn._check_array("x", x, min_ndim=2)
    ax = _bn._feature_axis(feature_axis, x.ndim)
    axes = _bn.reduce_axes(x.ndim, ax)
    gamma, _ = _bn._check_params(x, gamma, jnp.zeros(x.shape[ax]), ax)
    m = _bn._check_batch(x, axes)
    return x, gamma, ax, axes, m


# --- forward and backward, step by step -----------------------------------------


def forward_steps(x, gamma, beta, *, eps: float = 1e-5, feature_axis: int = -1) -> dict:
    """Algorithm 1 one line at a time; returns every intermediate.

    Keys: mean, var (biased, per feature), centred = x - mean, std = sqrt(var + eps),
    x_hat = centred / std, y = gamma * x_hat + beta. Statistics have one value per
    feature; the others have the shape of x.

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    x, gamma, ax, axes, _ = _setup(x, gamma, feature_axis)
    gamma, beta = _bn._check_params(x, gamma, beta, ax)
    shape = _bn._bshape(x.ndim, ax)
    mean = jnp.mean(x, axis=axes)
    centred = x - mean.reshape(shape)
    var = jnp.mean(centred**2, axis=axes)
    std = jnp.sqrt(var + eps)
    x_hat = centred / std.reshape(shape)
    y = gamma.reshape(shape) * x_hat + beta.reshape(shape)
    return {"mean": mean, "var": var, "centred": centred, "std": std, "x_hat": x_hat, "y": y}


def staged_backward(dy, x, gamma, *, eps: float = 1e-5, feature_axis: int = -1) -> dict:
    """The paper's chain rule, one equation per line: through x_hat, the variance and the mean.

    Returns dx_hat, dvar, dmean, dx, dgamma, dbeta (dvar and dmean per feature). dx is
    the sum of three paths: dx_hat / std + dvar * 2 (x - mean) / m + dmean / m.

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    x, gamma, ax, axes, m = _setup(x, gamma, feature_axis)
    dy = _bn._check_array("dy", dy, min_ndim=2)
    if dy.shape != x.shape:
        raise ValueError(f"`dy` must have the shape of x {tuple(x.shape)}, got {tuple(dy.shape)}")
    shape = _bn._bshape(x.ndim, ax)
    mean = jnp.mean(x, axis=axes).reshape(shape)
    centred = x - mean
    var = jnp.mean(centred**2, axis=axes).reshape(shape)
    std = jnp.sqrt(var + eps)
    x_hat = centred / std
    dx_hat = dy * gamma.reshape(shape)
    dvar = jnp.sum(dx_hat * centred, axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
    dmean = (jnp.sum(-dx_hat / std, axis=axes, keepdims=True)
             + dvar * jnp.sum(-2.0 * centred, axis=axes, keepdims=True) / m)
    dx = dx_hat / std + dvar * 2.0 * centred / m + dmean / m
    return {"dx_hat": dx_hat, "dvar": dvar.reshape(-1), "dmean": dmean.reshape(-1), "dx": dx,
            "dgamma": jnp.sum(dy * x_hat, axis=axes), "dbeta": jnp.sum(dy, axis=axes)}


# --- demos -------------------------------------------------------------------------


@jax.jit
def _moved(x, value, gamma, beta):
    x = x.at[0].set(value)
    mean, var = _bn._moments(x, (0,))
    y = _bn._normalize(x, mean, var, gamma, beta, 1e-5, 1)
    return y, mean, jnp.sqrt(var)


def moved_outputs(x, value):
    """BN outputs of a batch x (N, D) after sample 0 is set to `value` (gamma 1, beta 0).

    Returns (y, mean, std) with y (N, D). Jitted once per batch shape; used by the
    "a sample's output depends on its batch" slider.

    Used in notebooks/04_bn_math.ipynb.
    """
    x = _bn._check_array("x", x, min_ndim=2)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"`x` must have shape (N, D) with N >= 2, got {tuple(x.shape)}")
    d = x.shape[1]
    return _moved(x, jnp.asarray(value, x.dtype), jnp.ones(d, x.dtype), jnp.zeros(d, x.dtype))


def normalize_over(x, axes, *, eps: float = 1e-5):
    """Normalize x with the core's BN, statistics taken over `axes` (right or wrong), no gamma/beta.

    `axes` lists every axis of x but one (the one BN keeps, right or wrong). Returns (x_hat,
    mean) with the statistics' keepdims shape, as buggy code would get it.

    Used in notebooks/04_bn_math.ipynb (the NHWC reduce-axis mistake).
    """
    x = _bn._check_array("x", x, min_ndim=2)
    axes = tuple(int(a) % x.ndim for a in axes)
    kept = [i for i in range(x.ndim) if i not in axes]
    if len(set(axes)) != len(axes) or len(kept) != 1:
        raise ValueError(f"`axes` must list distinct axes of x, all but one, got {axes}")
    mean, var = _bn._moments(x, axes)
    ones = jnp.ones(x.shape[kept[0]], x.dtype)
    x_hat = _bn._normalize(x, mean, var, ones, jnp.zeros_like(ones), eps, kept[0])
    return x_hat, jnp.expand_dims(mean, axes)


def conv_channel_moments(y, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of y over every other axis (N, H, W).

    Used in notebooks/04_bn_math.ipynb.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 4:
        raise ValueError(f"`y` must be 4-D (NHWC or NCHW), got shape {y.shape}")
    axes = _bn.reduce_axes(4, channel_axis)
    return y.mean(axis=axes), y.std(axis=axes)


def identity_params(x, *, eps: float = 1e-5, feature_axis: int = -1):
    """gamma = sqrt(var + eps) and beta = mean of the batch: with them BN returns x itself.

    Used in notebooks/04_bn_math.ipynb.
    """
    x = _bn._check_array("x", x, min_ndim=2)
    axes = _bn.reduce_axes(x.ndim, feature_axis)
    mean, var = _bn._moments(x, axes)
    return jnp.sqrt(var + eps), mean


def weight_gradient_scaling(u, w, gamma, beta, target, scales, *, eps: float = 0.0) -> dict:
    """For a layer BN(u @ (a w)) and loss sum(target * output), per scale a (float64):
    the norm of W, the norm of dL/dW and the cosine between dL/dW and W.

    Used in notebooks/04_bn_math.ipynb (scale invariance, effective learning rate).
    """
    u = _bn._check_array("u", u, min_ndim=2)
    w = _bn._check_array("w", w, min_ndim=2)
    if u.shape[1] != w.shape[0]:
        raise ValueError(f"`w` must have {u.shape[1]} rows to multiply `u` {tuple(u.shape)}, "
                         f"got shape {tuple(w.shape)}")
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    if not np.all(scales > 0):
        raise ValueError("`scales` must all be positive")

    def loss(w_):
        return jnp.sum(target * _bn.batch_norm(u @ w_, gamma, beta, eps=eps))

    out = {"w_norm": [], "grad_norm": [], "cosine": []}
    with enable_x64(True):
        u, w, gamma, beta, target = (jnp.asarray(np.asarray(a), jnp.float64)
                                     for a in (u, w, gamma, beta, target))
        grad = jax.jit(jax.grad(loss))
        for a in scales:
            wa = a * w
            g = grad(wa)
            out["w_norm"].append(float(jnp.linalg.norm(wa)))
            out["grad_norm"].append(float(jnp.linalg.norm(g)))
            out["cosine"].append(float(jnp.sum(g * wa) / (jnp.linalg.norm(g) * jnp.linalg.norm(wa))))
    return {k: np.array(v) for k, v in out.items()}


def eps_gain(sigmas, eps, *, m: int = 64, seed: int = 0) -> dict:
    """A feature of batch std sigma through BN with this eps: the output's std and the
    backward gain gamma / sqrt(var + eps) (gamma = 1), per sigma.

    Used in notebooks/04_bn_math.ipynb (the role of eps).
    """
    _check_eps(eps)
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if not np.all(sigmas >= 0):
        raise ValueError("`sigmas` must be >= 0")
    z = np.random.default_rng(seed).standard_normal(m)
    z = (z - z.mean()) / z.std()
    with enable_x64(True):
        x = jnp.asarray(3.0 + sigmas[None, :] * z[:, None])  # (m, len(sigmas))
        d = x.shape[1]
        y = _bn.batch_norm(x, jnp.ones(d), jnp.zeros(d), eps=eps)
        var = jnp.var(x, axis=0)
        return {"out_std": np.asarray(jnp.std(y, axis=0)),
                "gain": np.asarray(1.0 / jnp.sqrt(var + eps))}


@partial(jax.jit, static_argnames=("momentum", "eps"))
def _identity_runs(a, fresh, warm, *, momentum, eps):
    """The four routes of `identity_demo` for one batch size, all through the core (float64)."""
    d = a.shape[-1]
    g, b = identity_params(a, eps=eps)
    train = jax.vmap(lambda xb: _bn.batch_norm(xb, g, b, eps=eps))
    params, state = {"gamma": jnp.ones(d), "beta": jnp.zeros(d)}, {"mean": jnp.zeros(d),
                                                                   "var": jnp.ones(d)}

    def warm_step(state, xb):   # the running statistics as apply_batch_norm keeps them
        _, state = _bn._train_step(params, state, xb, momentum, eps, 1, (0,), xb.shape[0], True)
        return state, None

    state, _ = jax.lax.scan(warm_step, state, warm)

    def evaluate(gamma, beta):
        return _bn._normalize(fresh, state["mean"], state["var"], gamma, beta, eps, 2)

    def dev(y, x):
        return jnp.sqrt(jnp.mean((y - x) ** 2)) / jnp.std(x)

    return jnp.stack([dev(train(a[None])[0], a), dev(train(fresh), fresh),
                      dev(evaluate(g, b), fresh),
                      dev(evaluate(jnp.sqrt(state["var"] + eps), state["mean"]), fresh)])


def identity_demo(ms=(8, 32, 128), seeds=(0, 1, 2), *, d: int = 3, num_fresh: int = 20,
                  warmup: int = 200, momentum: float = 0.9, eps: float = 1e-5) -> dict:
    """Does BN with gamma = sqrt(var + eps), beta = mean fall back to the identity? (float64)

    Data: d features, x = 5 * randn + 12. gamma and beta are computed from one batch A of m
    examples; BN is then applied in training mode (each batch's own mean and biased variance) to
    A itself and to `num_fresh` fresh batches of m. Separately the running statistics are warmed
    up on `warmup` batches as `bn_helpers.apply_batch_norm` keeps them (`momentum` on the old
    value, unbiased batch variance, start mean 0, var 1), and eval mode (the running statistics)
    is applied to the fresh examples, once with gamma, beta from batch A and once with gamma,
    beta set from the running statistics. Every BN goes through the core in
    `bn_helpers.batchnorm`. Each entry is rms(BN(x) - x) / std(x), shape (len(ms), len(seeds)):
    "train_same", "train_fresh", "eval_batch_params", "eval_running_params".

    Used in notebooks/04_bn_math.ipynb.
    """
    ms = [int(m) for m in ms]
    seeds = [int(s) for s in seeds]
    if not ms or min(ms) < 2:
        raise ValueError(f"`ms` must be batch sizes >= 2, got {ms!r}")
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    keys = ("train_same", "train_fresh", "eval_batch_params", "eval_running_params")
    out = np.zeros((len(keys), len(ms), len(seeds)))
    with enable_x64(True):
        for i, m in enumerate(ms):
            for j, seed in enumerate(seeds):
                rng = np.random.default_rng([seed, m])
                a = 5.0 * rng.standard_normal((m, d)) + 12.0
                fresh = 5.0 * rng.standard_normal((num_fresh, m, d)) + 12.0
                warm = 5.0 * rng.standard_normal((warmup, m, d)) + 12.0
                out[:, i, j] = np.asarray(_identity_runs(a, fresh, warm, momentum=momentum,
                                                         eps=eps))
    return {**{k: out[n] for n, k in enumerate(keys)}, "ms": np.array(ms)}


def eps_std_deviation(z, eps: float = 1e-5) -> dict:
    """Why BN's output std is not exactly 1: for each feature of z (N, D), the measured
    1 - std(x_hat) in the dtype of z, the prediction 1 - sqrt(var / (var + eps)) from eps alone,
    and the measured value with eps = 0 (rounding alone).

    Used in notebooks/04_bn_math.ipynb.
    """
    _check_eps(eps)
    z = _bn._check_array("z", z, min_ndim=2)
    d = z.shape[-1]
    ones, zeros = jnp.ones(d, z.dtype), jnp.zeros(d, z.dtype)
    measured = 1.0 - np.asarray(jnp.std(_bn.batch_norm(z, ones, zeros, eps=eps), axis=0), np.float64)
    rounding = 1.0 - np.asarray(jnp.std(_bn.batch_norm(z, ones, zeros, eps=0.0), axis=0), np.float64)
    var = np.asarray(z, np.float64).var(axis=0)
    predicted = 1.0 - np.sqrt(var / (var + eps))
    return {"measured": measured, "predicted": predicted, "rounding": rounding, "var": var}
