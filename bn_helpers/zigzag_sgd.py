"""Notebook 02, past the two-weight bowl: LeCun's same-sign argument (per-example gradients of
all-positive inputs, one-example SGD on the engine), what a layer with BN before or after the
sigmoid hands the next layer, and minibatch orders for `bn_helpers.fit_many(batch_idx=...)`.

Used in notebooks/02_zigzag.ipynb (re-exported by `bn_helpers.zigzag`).
"""

from __future__ import annotations

import functools
import math
import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import train
from .mlp import MLP

__all__ = ["same_sign_fraction", "sign_inputs", "per_example_gradients", "lms_loss", "weights", "sgd_path",
           "next_layer_inputs", "order_indices", "whole_set_loss"]


def same_sign_fraction(grads) -> float:
    """Share of gradient vectors (rows) whose components all have one sign.

    Used in notebooks/02_zigzag.ipynb.
    """
    g = np.asarray(grads)
    if g.ndim != 2 or g.shape[1] < 2:
        raise ValueError(f"`grads` must be (examples, weights >= 2), got shape {g.shape}")
    return float(np.mean(np.all(g > 0, 1) | np.all(g < 0, 1)))


def sign_inputs(d: int = 2, n: int = 2000, *, centred: bool = False, seed: int = 0):
    """Inputs that come out of a logistic layer, sigmoid(2 z): all in (0, 1); centred=True
    subtracts their mean. Targets t = x . w_true with w_true = (1.5, -1.5, 1.5, ...).

    Used in notebooks/02_zigzag.ipynb.
    """
    if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 2:
        raise ValueError(f"`d` must be an integer >= 2, got {d!r}")
    return _sign_inputs(int(d), int(n), bool(centred), jax.random.PRNGKey(seed))


@partial(jax.jit, static_argnums=(0, 1, 2))
def _sign_inputs(d, n, centred, key):
    x = jax.nn.sigmoid(2.0 * jax.random.normal(key, (n, d)))
    if centred:
        x = x - x.mean(0)
    w_true = 1.5 * (-1.0) ** jnp.arange(d)
    return x, x @ w_true, w_true


def per_example_gradients(x, t, w):
    """Per-example gradients of the LMS loss (x.w - t)^2 / 2: delta_p x_p, one row per example.

    Used in notebooks/02_zigzag.ipynb.
    """
    return _per_example(x, t, jnp.asarray(w, jnp.float32))


@jax.jit
def _per_example(x, t, w):
    return (x @ w - t)[:, None] * x


def lms_loss(w, state, batch, key=None):
    """The engine's loss protocol for one example: ((x.w - t)^2 / 2, state), batch = (x, t).

    Used in notebooks/02_zigzag.ipynb.
    """
    x, t = batch
    return 0.5 * (x @ w - t) ** 2, state


def weights(params, state, grads, batch):
    """A `record` for `bn_helpers.train.sgd`: the weights before every step (the path).

    Used in notebooks/02_zigzag.ipynb.
    """
    return params


@partial(jax.jit, static_argnums=(3,))
def _sgd(x, t, lr, num_steps):
    order = jnp.arange(num_steps) % x.shape[0]          # the examples in turn, one per step
    w, _, _, path = train.sgd(lms_loss, jnp.zeros(x.shape[1]), None, lr=lr,
                              batches=(x[order], t[order]), record=weights)
    return jnp.concatenate([path, w[None]])


def sgd_path(x, t, *, lr, num_steps: int = 200):
    """One-example-at-a-time LMS updates from w = 0 (`bn_helpers.train.sgd`, one example per
    batch): the path (num_steps + 1, d).

    Used in notebooks/02_zigzag.ipynb.
    """
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"`lr` must be a finite number > 0, got {lr!r}")
    return _sgd(x, t, jnp.float32(lr), int(num_steps))


def next_layer_inputs(x, *, bn: str, seeds=(0, 1, 2), hidden: int = 100) -> dict:
    """What the second layer of a sigmoid MLP (d, hidden, hidden, 10), Xavier init, sees in
    training mode with BN placed `bn` ("before" or "after" the sigmoid) in its first layer.

    Per seed (initial weights): "min" and "mean" of its inputs, "share_positive" (share of
    examples whose whole input vector is positive) and "same_sign" (share of examples whose
    input vector has one sign: then the gradient of every unit's incoming weights has one sign).
    Used in notebooks/02_zigzag.ipynb.
    """
    if bn not in ("before", "after"):
        raise ValueError(f"`bn` must be 'before' or 'after', got {bn!r}")
    x = jnp.asarray(x)
    net = MLP((x.shape[1], hidden, hidden, 10), activation="sigmoid", init="xavier", bn=bn)
    out = {k: [] for k in ("min", "mean", "share_positive", "same_sign")}
    for seed in seeds:
        params, state = net.init_params(jax.random.PRNGKey(int(seed)))
        h = np.asarray(net.apply(params, state, x, train=True, return_hidden=True)[2][0]["post"])
        out["min"].append(float(h.min()))
        out["mean"].append(float(h.mean()))
        out["share_positive"].append(float(np.mean(np.all(h > 0, 1))))
        out["same_sign"].append(float(np.mean(np.all(h > 0, 1) | np.all(h < 0, 1))))
    return {k: np.asarray(v) for k, v in out.items()}


def order_indices(y, batch_size: int, num_steps: int, *, order: str, seed: int = 0):
    """Batch indices (num_steps, batch_size), int32, for `fit(..., batch_idx=...)`: 'shuffled'
    (a fresh permutation every epoch) or 'sorted' (every epoch walks through class 0, then
    class 1, ...; shuffled within a class). The last incomplete batch of an epoch is dropped.
    NumPy randomness: nothing to compile.

    Used in notebooks/02_zigzag.ipynb.
    """
    y = np.asarray(y)
    if order not in ("sorted", "shuffled"):
        raise ValueError(f"`order` must be 'shuffled' or 'sorted', got {order!r}")
    if not 1 <= batch_size <= len(y):
        raise ValueError(f"`batch_size` must be in [1, {len(y)}], got {batch_size}")
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be >= 1, got {num_steps}")
    rng = np.random.default_rng(seed)
    per_epoch = len(y) // batch_size
    epochs = -(-num_steps // per_epoch)
    if order == "shuffled":
        perms = [rng.permutation(len(y))[: per_epoch * batch_size] for _ in range(epochs)]
    else:
        perm = rng.permutation(len(y))
        sorted_idx = perm[np.argsort(y[perm], kind="stable")][: per_epoch * batch_size]
        perms = [sorted_idx] * epochs
    return np.concatenate(perms).reshape(-1, batch_size)[:num_steps].astype(np.int32)


@functools.lru_cache(maxsize=8)
def whole_set_loss(net):
    """A `probe` for `fit(..., probe_inputs=(x, y))`: the eval-mode cross-entropy of `net` on
    all of (x, y). One function object per network, so the compiled run is reused.

    Used in notebooks/02_zigzag.ipynb.
    """
    def probe(params, state, xy):
        return train.cross_entropy(net.apply(params, state, xy[0], train=False)[0], xy[1])

    return probe
