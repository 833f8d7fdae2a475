"""Notebook 07's deep networks and batch plumbing: the 25-layer deep linear network, one large
step (relative loss, activations by depth), batch orders that emulate small batches, the
small-image data of the CNN and per-seed summaries.

* `deep_linear_data`, `deep_linear_ics`, `ics_pair`: Santurkar et al.'s deep linear network,
  trained by full-batch gradient descent (`bnh.train.sgd`) with the gradient ICS of two
  layers at every step;
* `one_step`: Bjorck et al.'s one-step test. From the initial weights, one SGD step
  (`bnh.train.sgd`, the engine's loop, one batch) of every rate in a grid: the loss on
  the same batch after / before, and the std of every hidden layer's output after it;
* `repeated_batches`: batch orders of one fixed size in which a batch of b < size
  distinct examples is repeated size / b times. The mean gradient and BN's batch mean
  and variance are those of the b examples, so `fit_many` trains every batch size of a
  sweep in one compiled computation;
* `small_images`: images downsampled 2x2 (28x28 -> 14x14) for a fast CNN.

Used in notebooks/07_why_bn_works.ipynb.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import train as _train


def cosine(a, b):
    """Cosine of the angle between two arrays (flattened); 0 if either is zero.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    a, b = jnp.ravel(a), jnp.ravel(b)
    den = jnp.linalg.norm(a) * jnp.linalg.norm(b)
    return jnp.where(den > 0, jnp.dot(a, b) / jnp.where(den > 0, den, 1.0), 0.0)

__all__ = ["cosine", "deep_linear_data", "deep_linear_ics", "ics_pair", "one_step", "repeated_batches",
           "small_images", "threshold_rate", "depth_growth", "gap",
           "final_loss", "run_rows"]


# --- the deep linear network (full-batch gradient descent through train.sgd) ---------------


def deep_linear_data(key, num_points: int = 1000, dim: int = 10):
    """(x, y = x A^T) with x and A i.i.d. standard Gaussian, as in Santurkar et al.'s DLN.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    kx, ka = jax.random.split(key)
    x = jax.random.normal(kx, (num_points, dim))
    a = jax.random.normal(ka, (dim, dim))
    return x, x @ a.T


@partial(jax.jit, static_argnames=("model", "num_steps", "layers"))
def deep_linear_ics(model, keys, x, y, lr, *, num_steps: int, layers: tuple = (8, 16)):
    """Train the deep linear `model` on (x, y) by full-batch gradient descent, one run per key.

    Loss: mean over points of ||f(x) - y||^2. Returns (losses (K, steps),
    {"ics_cos", "ics_l2"} (K, steps, len(layers))) with the gradient ICS of
    `layers` (0-based) at every step, as in `step_record`, and the gradients
    themselves, "G" and "G_after" (K, steps, len(layers), width, width).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    def loss_fn(params, state, batch, key):
        out, new_state = model.apply(params, state, x, train=True, key=None)
        return jnp.mean(jnp.sum((out - y) ** 2, -1)), new_state

    def grad_w(params, state, i):
        return jax.grad(lambda p: loss_fn(p, state, None, None)[0])(params)[i]["W"]

    def record(params, state, grads, batch):
        cos, l2, after = [], [], []
        for i in layers:
            moved = [jax.tree.map(lambda p, g: p - lr * g, params[j], grads[j]) if j < i
                     else params[j] for j in range(len(params))]
            g_after = grad_w(moved, state, i)
            cos.append(cosine(grads[i]["W"], g_after))
            l2.append(jnp.linalg.norm(grads[i]["W"] - g_after))
            after.append(g_after)
        return {"ics_cos": jnp.stack(cos), "ics_l2": jnp.stack(l2),
                "G": jnp.stack([grads[i]["W"] for i in layers]), "G_after": jnp.stack(after)}

    def one(key):
        params, state = model.init_params(key)
        _, _, losses, recs = _train.sgd(loss_fn, params, state, lr=lr, num_steps=num_steps,
                                        record=record)
        return losses, recs

    return jax.vmap(one)(keys)


def ics_pair(model, key, x, y, lr, layer: int):
    """(G, G') of `layer` at the initial weights of the deep linear `model` (for an exercise).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    g, g_after = _ics_pair(model, key, jnp.asarray(x), jnp.asarray(y), lr, layer)
    return np.asarray(g), np.asarray(g_after)


@partial(jax.jit, static_argnames=("model", "layer"))
def _ics_pair(model, key, x, y, lr, layer):
    params, state = model.init_params(key)

    def loss(p):
        out, _ = model.apply(p, state, x, train=True, key=None)
        return jnp.mean(jnp.sum((out - y) ** 2, -1))

    grads = jax.grad(loss)(params)
    moved = [jax.tree.map(lambda p, g: p - lr * g, params[j], grads[j]) if j < layer else params[j]
             for j in range(len(params))]
    return grads[layer]["W"], jax.grad(loss)(moved)[layer]["W"]



def _loss_and_hidden(model, params, state, x, y):
    logits, _, hidden = model.apply(params, state, x, train=True, return_hidden=True, key=None)
    return _train.cross_entropy(logits, y), jnp.stack([jnp.std(h["post"]) for h in hidden])


@partial(jax.jit, static_argnames=("model",))
def _one_step(model, keys, x, y, lrs):
    def per_seed(key):
        params, state = model.init_params(key)
        loss0, std0 = _loss_and_hidden(model, params, state, x, y)

        def per_rate(lr):
            def loss_fn(p, s, batch, k):
                logits, new_s = model.apply(p, s, batch[0], train=True, key=None)
                return _train.cross_entropy(logits, batch[1]), new_s

            p1, _, _, _ = _train.sgd(loss_fn, params, state, lr=lr, batches=(x[None], y[None]))
            # the loss after the step in the same training mode, with the state the step started from
            return _loss_and_hidden(model, p1, state, x, y)

        loss1, std1 = jax.vmap(per_rate)(lrs)
        return loss0, std0, loss1, std1

    return jax.vmap(per_seed)(keys)


def one_step(model, x, y, *, lrs, seeds):
    """One SGD step of every rate in `lrs` from the initial weights of each seed, on the batch (x, y).

    Returns {"loss_before" (seeds,), "loss_after" (seeds, rates), "relative" =
    after / before, "std_before" (seeds, hidden layers), "std_after" (seeds,
    rates, hidden layers)}: the std (over examples and units) of every hidden
    layer's output, in training mode. A NaN loss stays NaN.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    loss0, std0, loss1, std1 = _one_step(model, keys, jnp.asarray(x, jnp.float32),
                                         jnp.asarray(y, jnp.int32), jnp.asarray(lrs, jnp.float32))
    loss0, loss1 = np.asarray(loss0, np.float64), np.asarray(loss1, np.float64)
    return {"loss_before": loss0, "loss_after": loss1, "relative": loss1 / loss0[:, None],
            "std_before": np.asarray(std0), "std_after": np.asarray(std1)}


def threshold_rate(lrs, relative, limit: float = 1e3) -> np.ndarray:
    """Per seed: the smallest rate whose relative loss exceeds `limit` or is NaN (inf if none).

    relative: (seeds, rates).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    rel = np.asarray(relative, np.float64)
    bad = ~(rel <= limit)
    lrs = np.asarray(lrs, np.float64)
    return np.array([lrs[row].min() if row.any() else np.inf for row in bad])


def depth_growth(std) -> np.ndarray:
    """Ratio of the last hidden layer's output std to the first's, along the last axis.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    std = np.asarray(std, np.float64)
    return std[..., -1] / std[..., 0]


def repeated_batches(key, num_examples: int, batch_sizes, size: int, num_steps: int) -> np.ndarray:
    """Batch indices (len(batch_sizes), num_steps, size) for `fit_many(..., batch_idx=...)`.

    For batch size b the order is `bnh.train.batch_indices` of b examples per
    step (a fresh permutation every epoch), each batch tiled size / b times
    (b must divide size). For b = size it is the order `fit_many` draws from
    the same `key` by default. Averaging a loss over the tiled batch gives the
    gradient of the b examples; BN's batch mean and variance are theirs too
    (only the running variance's m/(m-1) correction uses m = size).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    _, data_key = jax.random.split(key)           # the batch-order key of fit / fit_many
    orders = {}
    for b in {int(b) for b in batch_sizes}:
        if b < 1 or size % b:
            raise ValueError(f"every batch size must divide `size`={size}, got {b}")
        idx = np.asarray(_train.batch_indices(data_key, num_examples, b, num_steps))
        orders[b] = np.tile(idx, (1, size // b))
    return np.stack([orders[int(b)] for b in batch_sizes]).astype(np.int32)


def small_images(x) -> np.ndarray:
    """Flat 28x28 images (N, 784) as 14x14x1 NHWC images, each pixel the mean of a 2x2 block.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    x = np.asarray(x, np.float32).reshape(-1, 14, 2, 14, 2)
    return x.mean(axis=(2, 4))[..., None]


# --- summaries of fit_many results over seeds ----------------------------------------------


def gap(result) -> np.ndarray:
    """Per seed: final training accuracy minus final test accuracy of a `fit_many` result.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return np.asarray(result.train_acc)[:, -1] - np.asarray(result.test_acc)[:, -1]


def final_loss(result, tail: int) -> np.ndarray:
    """Per seed: the training loss averaged over the last `tail` steps.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    return np.asarray(result.loss, np.float64)[:, -max(int(tail), 1):].mean(1)


def run_rows(named: dict, tail: int, fmt) -> list:
    """One table row per run: test and training accuracy, final loss and, when the run has the
    drift probe, the share of one-sign inputs to hidden layer 2 at the start and the end.

    named: {label: fit_many result}; fmt: the "median (min-max)" formatter.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    rows = []
    for label, r in named.items():
        row = {"network": label, "test accuracy": fmt(np.asarray(r.test_acc)[:, -1]),
               "training accuracy": fmt(np.asarray(r.train_acc)[:, -1]),
               "train - test": fmt(gap(r)), "final loss": fmt(final_loss(r, tail))}
        if isinstance(r.probe, dict) and "same_sign" in r.probe:
            share = np.asarray(r.probe["same_sign"])
            row["one-sign inputs, start / end"] = (f"{np.median(share[:, 0]):.2f} / "
                                                   f"{np.median(share[:, -1]):.2f}")
        rows.append(row)
    keys = [k for row in rows for k in row]
    keys = list(dict.fromkeys(keys))
    return [{k: row.get(k, "") for k in keys} for row in rows]
