"""The layer-statistics explorer of notebook 03: one compiled program for every slider setting.

The explorer's network has a fixed maximal depth; a shallower network is the same weights with
the layers past `depth` switched off (they pass their input through), so one compiled function
serves every depth, activation, init scheme, weight std and BN setting, fast enough for a
slider. It is the network `bnh.MLP((784,) + (64,) * depth + (10,), bn=None | "before")` builds
(tests/test_init.py checks both agree on the same weights); BN goes through the core's
`bn_helpers.batchnorm` normalization. The static figures use `bnh.MLP` itself
(`bn_helpers.init.init_stats`). `bn_helpers.init` re-exports what is public here.

Used in notebooks/03_init.ipynb.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import batchnorm as _bn
from . import compat as _compat
from .train import cross_entropy

__all__ = ["ACTIVATIONS", "INITS", "MAX_DEPTH", "WIDTH", "SATURATION_SLOPE", "EPS", "layer_stats",
           "relative_slope"]

ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("gaussian", "xavier", "he")
MAX_DEPTH = 50
WIDTH = 64
# A unit is saturated when the slope of its nonlinearity is below 5 % of the maximal slope:
# |z| > 4.36 for the sigmoid, |tanh(z)| > 0.975 for tanh; a ReLU unit with z <= 0 passes nothing
SATURATION_SLOPE = 0.05
EPS = 1e-5      # BN's eps, as in bnh.MLP
_FUNCS = (jax.nn.sigmoid, jnp.tanh, jax.nn.relu)
# Slope of the nonlinearity at z divided by its maximal slope (0.25, 1, 1)
_SLOPES = (lambda z: 4 * jax.nn.sigmoid(z) * (1 - jax.nn.sigmoid(z)),
           lambda z: 1 - jnp.tanh(z) ** 2, lambda z: (z > 0).astype(z.dtype))


def relative_slope(activation: str, z):
    """Slope of `activation` at z divided by its maximal slope (sigmoid 1/4, tanh and ReLU 1)."""
    return _SLOPES[ACTIVATIONS.index(activation)](z)


def check_choice(name, value, options):
    if value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")


def check_xy(x, y):
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"`x` needs a batch of at least 2 examples, got {x.shape[0]}")
    y = jnp.asarray(y, jnp.int32)
    if y.shape != (x.shape[0],):
        raise ValueError(f"`y` must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    return x, y


def robust_std(v, axis):
    """Standard deviation that survives values near float32's underflow (scaled by the max)."""
    m = jnp.max(jnp.abs(v), axis=axis, keepdims=True)
    m = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    return jnp.std(v / m, axis=axis) * jnp.squeeze(m, axis)


def _bn_norm(z):
    """BN at initialization (gamma 1, beta 0, batch statistics), through the core."""
    mean, var = _bn._moments(z, (0,))
    ones = jnp.ones(z.shape[-1], z.dtype)
    return _bn._normalize(z, mean, var, ones, jnp.zeros_like(ones), EPS, 1)


def _stds(init_idx, std, fan_in, fan_out):
    return jnp.stack([jnp.asarray(std, jnp.float32),
                      jnp.sqrt(2.0 / (fan_in + fan_out)), jnp.sqrt(2.0 / fan_in)])[init_idx]


@partial(jax.jit, static_argnames=("n_in", "max_depth", "width"))
def _raw_weights(key, *, n_in, max_depth, width):
    """Standard-normal weights of the explorer network, scaled later."""
    k0, k1, k2 = jax.random.split(key, 3)
    return (_compat.normal(k0, (n_in, width)),
            _compat.normal(k1, (max_depth - 1, width, width)),
            _compat.normal(k2, (width, 10)))


def _forward(weights, dz, xw0, act_idx, bn, depth):
    """Deep MLP at init; layers past `depth` pass their input through. Returns logits, z, h.

    xw0 = x @ W0 (unscaled) is the first layer's product, computed once outside; weights[0] is
    the first layer's std. dz is added to every z, so dL/dz = dL/d(dz).
    """
    s0, ws, head = weights

    def act(z):
        return jax.lax.switch(act_idx, _FUNCS, z)

    # The first layer changes the width, so it sits outside the scan
    z1 = jax.lax.cond(bn, _bn_norm, lambda v: v, xw0 * s0) + dz[0]
    h1 = act(z1)

    def step(h_in, inp):
        w, dz_l, idx = inp
        z = jax.lax.cond(bn, _bn_norm, lambda v: v, h_in @ w) + dz_l
        h = act(z)
        return jnp.where(idx < depth, h, h_in), (z, h)

    layers = jnp.arange(1, ws.shape[0] + 1)
    h_last, (zs, hs) = jax.lax.scan(step, h1, (ws, dz[1:], layers), unroll=7)
    zs = jnp.concatenate([z1[None], zs])
    hs = jnp.concatenate([h1[None], hs])
    return h_last @ head, zs, hs


@partial(jax.jit, static_argnames=("max_depth", "width"))
def _layer_stats(raw, xw0, n_in, y, act_idx, init_idx, std, bn, depth, *, max_depth, width):
    _, ws, head = raw
    weights = (_stds(init_idx, std, n_in, width), ws * _stds(init_idx, std, width, width),
               head * _stds(init_idx, std, width, 10))
    dz = jnp.zeros((max_depth, xw0.shape[0], width))

    def loss_fn(dz):
        logits, zs, hs = _forward(weights, dz, xw0, act_idx, bn, depth)
        return cross_entropy(logits, y), (zs, hs)

    # Only dL/dz is needed: the weight gradients would double the backward pass
    (loss, (zs, hs)), g_z = jax.value_and_grad(loss_fn, has_aux=True)(dz)
    slope = jax.lax.switch(act_idx, _SLOPES, zs)
    d = depth - 1
    return {
        "loss": loss,
        "z_std": robust_std(zs, (1, 2)),
        "h_std": robust_std(hs, (1, 2)),
        "saturated": jnp.mean(slope < SATURATION_SLOPE, axis=(1, 2)),
        "dead": jnp.mean(jnp.all(zs <= 0, axis=1), axis=1),
        "grad_z_std": robust_std(g_z, (1, 2)),
        "z": zs[d], "h": hs[d], "grad_z": g_z[d],
    }


_RAW_CACHE: dict = {}
_DEFAULT_KEY: dict = {}
_PRODUCTS: list = []


def _first_product(x, w0):
    """x @ W0 (unscaled), remembered for the last few (x, W0) pairs: sliders reuse one batch."""
    for xx, ww, p in _PRODUCTS:
        if xx is x and ww is w0:
            return p
    p = jnp.dot(x, w0)
    _PRODUCTS.insert(0, (x, w0, p))
    del _PRODUCTS[4:]
    return p


def raw_weights(key, n_in, max_depth=MAX_DEPTH, width=WIDTH):
    """(W0, Ws, head): the explorer's standard-normal weights for `key` (cached), before scaling."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    k = (np.asarray(data).tobytes(), n_in, max_depth, width)
    if k not in _RAW_CACHE:
        _RAW_CACHE[k] = _raw_weights(key, n_in=n_in, max_depth=max_depth, width=width)
        while len(_RAW_CACHE) > 8:      # seed loops must not pile up weights in memory
            del _RAW_CACHE[next(iter(_RAW_CACHE))]
    return _RAW_CACHE[k]


def layer_stats(x, y, *, activation: str = "tanh", init: str = "gaussian", std: float = 0.01,
                bn: bool = False, depth: int = MAX_DEPTH, key=None, max_depth: int = MAX_DEPTH,
                width: int = WIDTH) -> dict:
    """Per-layer statistics of the explorer's deep MLP at initialization, for one batch (x, y).

    The network: `depth` hidden layers of `width` units (`activation`), BN
    (gamma=1, beta=0, batch statistics) before each nonlinearity if `bn`, a
    linear 10-way head and cross-entropy. Weights are N(0, s^2) with s from
    `init`: "gaussian" (s = `std`), "xavier" sqrt(2/(fan_in+fan_out)) or "he"
    sqrt(2/fan_in); the same key gives the same underlying random numbers for
    every choice. Returns numpy arrays: per layer (length `depth`) "z_std"
    (input to the nonlinearity), "h_std" (its output), "saturated" (share of
    values where the slope is < 5 % of its maximum), "dead" (share of units
    with z <= 0 for the whole batch), "grad_z_std" (std of dL/dz); for the
    last layer "z", "h", "grad_z" (batch, width); and "loss".

    Used in notebooks/03_init.ipynb (the explorer's slider).
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("init", init, INITS)
    x, y = check_xy(x, y)
    if not isinstance(depth, (int, np.integer)) or not 1 <= depth <= max_depth:
        raise ValueError(f"`depth` must be an int in [1, {max_depth}], got {depth!r}")
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"`std` must be a positive number, got {std!r}")
    if width < 1:
        raise ValueError(f"`width` must be >= 1, got {width}")
    if key is None:
        key = _DEFAULT_KEY.setdefault("key", jax.random.PRNGKey(0))
    raw = raw_weights(key, x.shape[1], max_depth, width)
    xw0 = _first_product(x, raw[0])
    out = _layer_stats(raw, xw0, x.shape[1], y, ACTIVATIONS.index(activation), INITS.index(init),
                       jnp.float32(std), bool(bn), int(depth), max_depth=max_depth, width=width)
    out = jax.device_get(out)
    per_layer = ("z_std", "h_std", "saturated", "dead", "grad_z_std")
    return {k: (np.asarray(v)[:depth] if k in per_layer else np.asarray(v)) for k, v in out.items()}
