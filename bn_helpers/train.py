"""Training engine: a whole SGD run inside one jitted `lax.scan`, vmappable.

Batch order is fixed before training (`batch_indices`: one permutation per
epoch), so the step itself only slices. `fit` trains one network;
`fit_many` trains several configurations (learning rates, init scales,
seeds) in one vmapped computation. Same keys, same numbers.

Used in notebooks/00_start_here.ipynb and every training notebook.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .mlp import MLP

__all__ = ["batch_indices", "cross_entropy", "accuracy", "fit", "fit_many", "FitResult"]


class FitResult(NamedTuple):
    """What a run returns (leading config axis added by `fit_many`).

    loss: training loss of every step, shape (num_steps,).
    eval_steps: steps at which the model was evaluated (0 = before training).
    test_acc, train_acc: accuracy at those steps (eval mode: running BN statistics).
    probe: whatever `probe(params, state)` returned at those steps (or None).
    params, state: the trained network.
    """

    loss: jax.Array
    eval_steps: np.ndarray
    test_acc: jax.Array
    train_acc: jax.Array
    probe: object
    params: object
    state: object


def batch_indices(key, num_examples: int, batch_size: int, num_steps: int):
    """Example indices for every step, shape (num_steps, batch_size), int32.

    One fresh permutation per epoch; the last incomplete batch of an epoch is
    dropped, so every example is seen once per epoch.

    Used in notebooks/06_paper_experiment.ipynb.
    """
    if batch_size < 1 or batch_size > num_examples:
        raise ValueError(f"`batch_size` must be in [1, {num_examples}], got {batch_size}")
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be >= 1, got {num_steps}")
    per_epoch = num_examples // batch_size
    epochs = -(-num_steps // per_epoch)
    keys = jax.random.split(key, epochs)
    perms = jax.vmap(lambda k: jax.random.permutation(k, num_examples))(keys)
    idx = perms[:, : per_epoch * batch_size].reshape(-1, batch_size)
    return idx[:num_steps].astype(jnp.int32)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of integer labels.

    Used in every training notebook.
    """
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def accuracy(logits, labels):
    """Fraction of argmax predictions equal to the labels.

    Used in every training notebook.
    """
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def _loss(net: MLP, params, state, x, y):
    logits, new_state = net.apply(params, state, x, train=True)
    return cross_entropy(logits, y), new_state


def _evaluate(net, params, state, x, y, eval_batch):
    """Eval-mode accuracy, in fixed-size chunks to bound memory."""
    n = (x.shape[0] // eval_batch) * eval_batch
    xs = x[:n].reshape(-1, eval_batch, x.shape[1])
    ys = y[:n].reshape(-1, eval_batch)

    def one(carry, xy):
        logits, _ = net.apply(params, state, xy[0], train=False)
        return carry + jnp.sum(jnp.argmax(logits, -1) == xy[1]), None

    correct, _ = jax.lax.scan(one, 0, (xs, ys))
    return correct / n


def _run(net, num_steps, eval_every, eval_batch, probe, init_key, idx, lr, sgd_momentum, init_scale,
         x_train, y_train, x_test, y_test):
    """One training run; every argument after `probe` may carry a vmap axis."""
    params, state = net.init_params(init_key, init_scale)
    velocity = jax.tree.map(jnp.zeros_like, params)
    grad_fn = jax.value_and_grad(partial(_loss, net), has_aux=True)

    def step(carry, batch):
        params, state, velocity = carry
        xb, yb = batch
        (loss, state), grads = grad_fn(params, state, xb, yb)
        velocity = jax.tree.map(lambda v, g: sgd_momentum * v + g, velocity, grads)
        params = jax.tree.map(lambda p, v: p - lr * v, params, velocity)
        return (params, state, velocity), loss

    def measure(params, state):
        out = (_evaluate(net, params, state, x_test, y_test, eval_batch),
               _evaluate(net, params, state, x_train, y_train, eval_batch))
        return out + ((probe(params, state),) if probe is not None else (None,))

    def chunk(carry, chunk_idx):
        # Gather the chunk's batches once; each step then only slices
        carry, losses = jax.lax.scan(step, carry, (x_train[chunk_idx], y_train[chunk_idx]))
        return carry, (losses, measure(carry[0], carry[1]))

    num_chunks = num_steps // eval_every
    first = measure(params, state)
    carry = (params, state, velocity)
    carry, (losses, evals) = jax.lax.scan(chunk, carry, idx.reshape(num_chunks, eval_every, -1))
    evals = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, evals)
    return losses.reshape(-1), evals, carry[0], carry[1]


_STATIC = ("net", "num_steps", "eval_every", "eval_batch", "probe", "in_axes")


@partial(jax.jit, static_argnames=_STATIC)
def _run_jit(init_key, idx, lr, sgd_momentum, init_scale, x_train, y_train, x_test, y_test, *,
             net, num_steps, eval_every, eval_batch, probe, in_axes):
    fn = partial(_run, net, num_steps, eval_every, eval_batch, probe)
    if in_axes is not None:
        fn = jax.vmap(fn, in_axes=in_axes)
    return fn(init_key, idx, lr, sgd_momentum, init_scale, x_train, y_train, x_test, y_test)


def _check_data(data):
    x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in data[:4])
    for name, x, y in (("x_train", x_train, y_train), ("x_test", x_test, y_test)):
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(f"`data`: {name} must be (N, D) with labels (N,), got {x.shape}, {y.shape}")
    return x_train.astype(jnp.float32), y_train.astype(jnp.int32), x_test.astype(jnp.float32), \
        y_test.astype(jnp.int32)


def _prepare(net, data, num_steps, batch_size, eval_every, data_key):
    if not isinstance(net, MLP):
        raise TypeError(f"`net` must be a bn_helpers.MLP, got {type(net).__name__}")
    x_train, y_train, x_test, y_test = _check_data(data)
    if x_train.shape[1] != net.sizes[0]:
        raise ValueError(f"`data` has {x_train.shape[1]} features but `net` expects {net.sizes[0]}")
    if net.bn and batch_size < 2:
        raise ValueError("`batch_size` must be >= 2 for a network with batch norm (training mode)")
    eval_every = min(eval_every, num_steps)
    if num_steps % eval_every:
        raise ValueError(f"`num_steps`={num_steps} must be a multiple of `eval_every`={eval_every}")
    idx = batch_indices(data_key, x_train.shape[0], batch_size, num_steps)
    return (x_train, y_train, x_test, y_test), idx, eval_every


def _eval_batch(data):
    n = min(data[0].shape[0], data[2].shape[0])
    return next(b for b in (500, 250, 200, 100, 50, 25, 20, 10, 5, 2, 1) if b <= n)


def _result(out, num_steps, eval_every):
    losses, (test_acc, train_acc, probe), params, state = out
    steps = np.arange(0, num_steps + 1, eval_every)
    return FitResult(losses, steps, test_acc, train_acc, probe, params, state)


def fit(net: MLP, data, *, key, lr: float, num_steps: int, batch_size: int = 60,
        sgd_momentum: float = 0.0, init_scale: float = 1.0, eval_every: int = 500,
        probe: Callable | None = None) -> FitResult:
    """Train `net` with minibatch SGD on `data` = (x_train, y_train, x_test, y_test).

    `key` fixes both the initial weights and the batch order. `probe`, a
    function (params, state) -> pytree, is recorded at every evaluation; pass
    the same function object each time so the compiled run is reused.

    Used in notebooks/00_start_here.ipynb and every training notebook.
    """
    init_key, data_key = jax.random.split(key)
    data, idx, eval_every = _prepare(net, data, num_steps, batch_size, eval_every, data_key)
    out = _run_jit(init_key, idx, lr, sgd_momentum, init_scale, *data, net=net,
                   num_steps=num_steps, eval_every=eval_every, eval_batch=_eval_batch(data),
                   probe=probe, in_axes=None)
    return _result(out, num_steps, eval_every)


def fit_many(net: MLP, data, *, key, lr, num_steps: int, batch_size: int = 60,
             sgd_momentum=0.0, init_scale=1.0, seeds=None, eval_every: int = 500,
             probe: Callable | None = None) -> FitResult:
    """Train several configurations of `net` in one vmapped computation.

    `lr`, `sgd_momentum` and `init_scale` may each be a scalar or a 1-D array;
    arrays must share one length K, the number of runs. `seeds` (K ints)
    gives each run its own initial weights; all runs see the same batch
    order (from `key`), which keeps the input matmul shared and fast.
    Every field of the result gains a leading axis of size K.

    Used in notebooks/03_init.ipynb and notebooks/06_paper_experiment.ipynb.
    """
    init_key, data_key = jax.random.split(key)
    data, idx, eval_every = _prepare(net, data, num_steps, batch_size, eval_every, data_key)
    args = {"lr": lr, "sgd_momentum": sgd_momentum, "init_scale": init_scale}
    sizes = {k: np.shape(v)[0] for k, v in args.items() if np.ndim(v) == 1}
    if seeds is not None:
        sizes["seeds"] = len(seeds)
    for k, v in args.items():
        if np.ndim(v) > 1:
            raise ValueError(f"`{k}` must be a scalar or a 1-D array, got shape {np.shape(v)}")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"swept arguments must have one length, got {sizes}")
    if not sizes:
        raise ValueError("fit_many needs at least one swept argument (`lr`, `sgd_momentum`, "
                         "`init_scale` as a 1-D array, or `seeds`)")
    k = next(iter(sizes.values()))
    if seeds is None:
        init_keys = jnp.broadcast_to(init_key, (k,) + init_key.shape)
    else:
        init_keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    in_axes = (0, None) + tuple(0 if np.ndim(v) == 1 else None for v in args.values()) + (None,) * 4
    out = _run_jit(init_keys, idx, *(jnp.asarray(v, jnp.float32) for v in args.values()), *data,
                   net=net, num_steps=num_steps, eval_every=eval_every,
                   eval_batch=_eval_batch(data), probe=probe, in_axes=in_axes)
    return _result(out, num_steps, eval_every)
