"""BN at inference: accuracy with each kind of statistics, where it breaks (small batches,
stale statistics, shifted test images), test-time re-estimation, folding for deployment.
Figures: `bn_helpers.figures.inference`; BN's statistics, running averages and framework
conventions: `bn_helpers.inference_running`, re-exported here (`bnh.inference.<name>`).

Functions take a `bnh.MLP` (bn="before") and (params, state) of one network or of several
stacked on a leading axis (as `bnh.fit_many` returns them; results gain that axis).

Used in notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

# Running statistics and framework conventions, re-exported for the notebook (`bnh.inference.ema`)
from .inference_running import __all__ as _running
from .inference_running import (_call, _check_batch, _check_net, _eval_acc, _floats, _population,  # noqa: F401
    _stats, batch_statistics, batch_stats_recorder, debias_weights, ema, ema_trace, fixed_vector_table,
    framework_update, from_torch_momentum, population_statistics, refresh_running_stats, stats_probe,
    to_torch_momentum, underflow_steps)

__all__ = ["spread_text", "variance_sources", "accuracy", "accuracy_vs_batch_size",
           "prediction_spread", "shift_images", "shift_table", "reestimation_accuracy",
           "fine_tune_table", "fold_dense_bn", "fold_network", "apply_folded", *_running]


def spread_text(values, digits: int = 3) -> str:
    """'median (range lo to hi over n seeds)' of per-seed results.

    Used in notebooks/05_inference.ipynb.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("`values` must hold at least one number")
    return (f"{np.median(v):.{digits}f} (range {v.min():.{digits}f} to {v.max():.{digits}f} "
            f"over {v.size} seeds)")


# --- Algorithm 2's variance, layer by layer ------------------------------------------


def _sources(params, state, x, perms, *, net, batch_size):
    whole = _stats(params, None, x, net=net)
    # Eval mode with the full-pass statistics reproduces the full pass layer by layer
    hidden = net.apply(params, whole + [{}], x, train=False, return_hidden=True)[2]
    inputs = [x] + [h["post"] for h in hidden[:-1]]   # what eval mode feeds each hidden layer

    def one(perm):  # one random batching of x into batches of m
        alg2 = _population(params, None, x[perm], net=net, batch_size=batch_size, unbiased=True)
        biased = _population(params, None, x[perm], net=net, batch_size=batch_size, unbiased=False)
        fixed = []
        for i, h in enumerate(inputs):  # layer i alone (a one-hidden-layer MLP), fed h
            alone = dataclasses.replace(net, sizes=net.sizes[i:i + 2] + (1,))
            head = {"W": jnp.zeros((net.sizes[i + 1], 1)), "b": jnp.zeros(1)}
            fixed.append(_population([params[i], head], None, h[perm], net=alone,
                                     batch_size=batch_size, unbiased=True)[0]["var"])
        return [s["var"] for s in alg2[:-1]], [s["var"] for s in biased[:-1]], fixed

    alg2, biased, fixed = jax.vmap(one)(perms)
    return [{"algorithm2": jnp.median(alg2[i].mean(0)),
             "algorithm2_biased": jnp.median(biased[i].mean(0)),
             "fixed_earlier": jnp.median(fixed[i].mean(0)), "full_pass": jnp.median(whole[i]["var"])}
            for i in range(net.num_hidden)]


def variance_sources(net, params, x, *, batch_size: int = 60, batchings: int = 10, seed: int = 0):
    """Per hidden layer, medians over units of the variance of BN's input: "algorithm2", the
    mean unbiased variance of training-mode batches of m = batch_size; "algorithm2_biased",
    without m/(m-1); "fixed_earlier", the same batches with every earlier BN layer normalized
    with full-pass statistics (as in eval mode); "full_pass", over all of x in one pass (what
    eval mode feeds the layer). Batch averages run over `batchings` random batchings of x
    (NumPy, `seed`) to shrink their sampling noise. Returns a list of dicts, one per layer.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    x = jnp.asarray(x, jnp.float32)
    m = _check_batch(batch_size, x.shape[0])
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(x.shape[0]) for _ in range(batchings)]).astype(np.int32)
    return _floats(_call(_sources, params, None, x, perms, net=net, batch_size=m))


# --- accuracy under the three kinds of statistics ------------------------------------

def _batch_acc(params, state, x, y, perms, *, net, sizes):
    """Training-mode accuracy on test batches of each size, averaged over the orders `perms`."""
    def one(perm, b):
        perm = perm[: (x.shape[0] // b) * b]
        logits = jax.vmap(lambda xb: net.apply(params, state, xb, train=True)[0])(
            x[perm].reshape(-1, b, x.shape[1]))
        return jnp.mean(jnp.argmax(logits, -1) == y[perm].reshape(-1, b))

    return jnp.stack([jnp.mean(jax.vmap(lambda p, b=b: one(p, b))(perms)) for b in sizes])


def accuracy(net, params, state, x, y):
    """Test accuracy in eval mode with the stored statistics (pass the state of
    `population_statistics` for Algorithm 2's); `accuracy_vs_batch_size` for training mode.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    return _floats(_call(_eval_acc, params, state, jnp.asarray(x, jnp.float32),
                         jnp.asarray(y, jnp.int32), net=net))


def accuracy_vs_batch_size(net, params, state, x, y, sizes, *, repeats: int = 3, seed: int = 0):
    """Training-mode accuracy (each test batch's own statistics) for every batch size in
    `sizes`, averaged over `repeats` random batchings (NumPy permutations from `seed`).
    Returns an array (len(sizes),), or (networks, len(sizes)). One compiled program.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    sizes = tuple(int(b) for b in sizes)
    if not sizes or min(sizes) < 2 or max(sizes) > len(x):
        raise ValueError(f"`sizes` must be batch sizes in [2, {len(x)}], got {sizes}")
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(len(x)) for _ in range(repeats)]).astype(np.int32)
    return np.asarray(_call(_batch_acc, params, state, jnp.asarray(x, jnp.float32),
                            jnp.asarray(y, jnp.int32), perms, net=net, sizes=sizes))


def _spread(params, state, x, y, images, others, *, net):
    def one(i, rest):  # image i first, then the other members of its batch
        logits = net.apply(params, state, jnp.concatenate([x[i][None], x[rest]]), train=True)[0]
        return jax.nn.softmax(logits[0])[y[i]]

    probs = jnp.stack([jax.vmap(lambda i, rs: jax.vmap(lambda r: one(i, r))(rs))(images, o)
                       for o in others])
    p_eval = jax.nn.softmax(net.apply(params, state, x[images], train=False)[0])
    return probs, p_eval[jnp.arange(images.shape[0]), y[images]]


def prediction_spread(net, params, state, x, y, images, *, sizes, num_contexts: int = 20,
                      seed: int = 1):
    """Probability of the true class for each image in `images` when it is evaluated in
    training mode inside `num_contexts` random batches of each size in `sizes` (the others
    drawn from x without replacement, NumPy generator `seed`): shape (len(sizes), len(images),
    num_contexts); and the eval-mode probability, shape (len(images),). One compiled program.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    sizes = tuple(int(b) for b in sizes)
    if not sizes or min(sizes) < 2 or max(sizes) > len(x):
        raise ValueError(f"`sizes` must be batch sizes in [2, {len(x)}], got {sizes}")
    rng, images = np.random.default_rng(seed), np.asarray(images, np.int32)
    others = tuple(np.array([[rng.choice(len(x), b - 1, replace=False) for _ in range(num_contexts)]
                             for _ in images], np.int32) for b in sizes)
    return _floats(_call(_spread, params, state, jnp.asarray(x, jnp.float32),
                         jnp.asarray(y, jnp.int32), images, others, net=net))


# --- covariate shift at test time -----------------------------------------------------


def shift_images(x, brightness=0.0, contrast=1.0, noise=0.0, noise_sample=None):
    """Shifted images clip(contrast * x + brightness + noise * noise_sample, 0, 1).

    Used in notebooks/05_inference.ipynb.
    """
    out = contrast * x + brightness
    if noise_sample is not None:
        out = out + noise * noise_sample
    return jnp.clip(out, 0.0, 1.0)


def _shift(params, state, x, y, noise_sample, settings, *, net, adapt_batch):
    def one(setting):
        xs = shift_images(x, setting[0], setting[1], setting[2], noise_sample)
        k = xs.shape[0] // adapt_batch
        adapted = jax.vmap(lambda b: net.apply(params, state, b, train=True)[0])(
            xs[: k * adapt_batch].reshape(k, adapt_batch, -1))
        once = _population(params, None, xs, net=net, batch_size=adapt_batch, unbiased=True)
        return jnp.stack([_eval_acc(params, state, xs, y, net=net),
                          jnp.mean(jnp.argmax(adapted, -1) == y[: k * adapt_batch].reshape(k, -1)),
                          _eval_acc(params, once, xs, y, net=net)])

    return jax.vmap(one)(settings)


def shift_table(net, params, state, x, y, noise_sample, settings, *, adapt_batch: int = 100):
    """Test accuracy on shifted images for each row (brightness, contrast, noise) of `settings`,
    three ways: eval mode with the training statistics; training mode on the test batches of
    `adapt_batch` in their stored order (statistics re-estimated per batch); eval mode with
    statistics re-estimated once over the shifted set (Algorithm 2, batches of `adapt_batch`).
    Returns (len(settings), 3), or (networks, len(settings), 3). One compiled computation.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    settings = jnp.asarray(settings, jnp.float32).reshape(-1, 3)
    return np.asarray(_call(_shift, params, state, jnp.asarray(x, jnp.float32),
                            jnp.asarray(y, jnp.int32), jnp.asarray(noise_sample, jnp.float32),
                            settings, net=net, adapt_batch=_check_batch(adapt_batch, len(x), "adapt_batch")))


def _reestimate(params, state, x, y, orders, *, net, batch_size):
    n = orders.shape[1]

    def predict(order):  # training mode on the batches of this order, back in image order
        logits = jax.vmap(lambda b: net.apply(params, state, b, train=True)[0])(
            x[order].reshape(-1, batch_size, x.shape[1]))
        return jnp.full(x.shape[0], -1).at[order].set(jnp.argmax(logits, -1).reshape(-1))

    a, b, s = (predict(o) for o in orders)
    covered = jnp.zeros(x.shape[0], bool).at[orders[0]].set(True)
    once = _population(params, None, x, net=net, batch_size=batch_size, unbiased=True)
    return {"training_stats": _eval_acc(params, state, x, y, net=net),
            "random_batches": jnp.sum((a == y) & covered) / n,
            "sorted_batches": jnp.sum(s == y) / n, "once": _eval_acc(params, once, x, y, net=net),
            "changed": jnp.sum((a != b) & covered) / n}


def reestimation_accuracy(net, params, state, x, y, *, batch_size: int = 100, seed: int = 3):
    """Statistics re-estimated on the test images x themselves. Returns a dict of accuracies:
    "training_stats": eval mode, stored statistics; "random_batches": training mode on random
    test batches of `batch_size` (NumPy permutations from `seed`); "sorted_batches": the same
    on batches sorted by class; "once": eval mode with Algorithm 2 on x (batches of
    `batch_size`); and "changed": the share of images whose predicted class differs between
    two random batchings.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    b = _check_batch(batch_size, x.shape[0])
    n, rng = (x.shape[0] // b) * b, np.random.default_rng(seed)
    orders = np.stack([rng.permutation(x.shape[0])[:n], rng.permutation(x.shape[0])[:n],
                       np.argsort(np.asarray(y), kind="stable")[:n]]).astype(np.int32)
    return _floats(_call(_reestimate, params, state, x, y, orders, net=net, batch_size=b))


def fine_tune_table(net, old, fine, x_train_new, x_test_new, y_test, *, batch_size: int = 60):
    """Accuracy on shifted test images of five (weights, statistics) pairs from `old` and
    `fine` = (params, state) before and after fine-tuning on the shifted training images
    `x_train_new`: "old"; "old_recalibrated" (old weights, Algorithm 2 on x_train_new);
    "stale" (fine-tuned weights, old statistics); "lagging" (fine-tuned weights and running
    averages); "fine_recalibrated" (fine-tuned weights, Algorithm 2 afterwards).

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    recal = {name: population_statistics(net, p, x_train_new, batch_size=batch_size)
             for name, p in (("old", old[0]), ("fine", fine[0]))}
    settings = {"old": old, "old_recalibrated": (old[0], recal["old"]), "stale": (fine[0], old[1]),
                "lagging": fine, "fine_recalibrated": (fine[0], recal["fine"])}
    return {name: accuracy(net, p, s, x_test_new, y_test) for name, (p, s) in settings.items()}


# --- folding BN into the preceding dense layer ------------------------------------------


def fold_dense_bn(W, b, gamma, beta, mean, var, eps: float = 1e-5):
    """Fold eval-mode BN(x @ W + b) into one dense layer: returns (W', b') with
    W' = W * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps) (per output column).

    Used in notebooks/05_inference.ipynb.
    """
    W = jnp.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"`W` must be a 2-D (in, out) matrix, got shape {W.shape}")
    for name, v in (("b", b), ("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if jnp.shape(v) != (W.shape[1],):
            raise ValueError(f"`{name}` must have shape ({W.shape[1]},), got {jnp.shape(v)}")
    if eps < 0:
        raise ValueError(f"`eps` must be >= 0, got {eps}")
    s = gamma / jnp.sqrt(var + eps)
    return W * s[None, :], (b - mean) * s + beta


def fold_network(net, params, state):
    """Every (dense, BN) pair of a trained net folded into [{"W", "b"}, ...]: the same MLP
    without BN.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    return _fold(net, params, state)


@partial(jax.jit, static_argnums=0)
def _fold(net, params, state):
    out = []
    for layer, s in zip(params, state, strict=True):
        if s:
            W, b = fold_dense_bn(layer["W"], jnp.zeros(layer["W"].shape[1]), layer["gamma"],
                                 layer["beta"], s["mean"], s["var"], net.eps)
            out.append({"W": W, "b": b})
        else:
            out.append({"W": layer["W"], "b": layer["b"]})
    return out


@partial(jax.jit, static_argnums=0)
def apply_folded(net, folded, x):
    """Forward pass of a folded network: `MLP.apply` of the same MLP with bn=None.

    Used in notebooks/05_inference.ipynb.
    """
    plain = dataclasses.replace(net, bn=None)
    return plain.apply(folded, [{} for _ in folded], x, train=False)[0]
