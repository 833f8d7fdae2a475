"""Training engine: every SGD run of the course, inside one jitted `lax.scan`, vmappable.

`sgd` is the one update loop (minibatch SGD with momentum and L2 decay);
`fit` trains a classifier on it with periodic evaluation; `fit_many` trains
several configurations (learning rates, init scales, seeds, decay) in one
vmapped computation. Batch order is fixed before training
(`batch_indices`), so a step only slices. Same keys, same numbers.

A model is any frozen dataclass with `input_shape`, `needs_batch`,
`init_params(key, scale)` and `apply(params, state, x, *, train, key)`:
`bnh.MLP` and `bnh.CNN`.

Used in notebooks/00_start_here.ipynb and every training notebook.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["batch_indices", "cross_entropy", "accuracy", "evaluate", "sgd", "fit", "fit_many",
           "FitResult"]


class FitResult(NamedTuple):
    """What a run returns (leading config axis added by `fit_many`).

    loss: training loss of every step, shape (num_steps,).
    eval_steps: steps at which the model was evaluated (0 = before training).
    test_acc, train_acc: accuracy at those steps (eval mode: running BN statistics).
    probe: whatever `probe` returned at those steps (or None).
    params, state: the trained network.
    record: whatever `record` returned at every step (or None).
    """

    loss: jax.Array
    eval_steps: np.ndarray
    test_acc: jax.Array
    train_acc: jax.Array
    probe: object
    params: object
    state: object
    record: object = None


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


# --- the one update loop ------------------------------------------------------


def _per_leaf(value, params):
    """Broadcast a scalar, or one scalar per entry of a list of layers, to every leaf."""
    if hasattr(value, "ndim") and value.ndim == 1 and isinstance(params, (list, tuple)):
        value = [value[i] for i in range(value.shape[0])]
    return jax.tree.map(lambda v, sub: jax.tree.map(lambda _: v, sub), value, params)


def _decays(path) -> bool:
    """Weight decay applies to entries named "W", or to every leaf of an unnamed pytree."""
    names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
    return not names or names[-1] == "W"


def sgd(loss_fn: Callable, params, state=None, *, lr, num_steps: int | None = None, batches=None,
        sgd_momentum=0.0, weight_decay=0.0, record: Callable | None = None, key=None,
        velocity=None, return_velocity: bool = False):
    """Minibatch SGD with momentum as one `lax.scan`; traceable, call it inside `jax.jit`.

    loss_fn(params, state, batch, key) -> (loss, new_state). `batches` is a
    pytree with a leading steps axis (None with `num_steps` for full-batch
    descent). `lr` is a scalar or one scalar per layer (a list of layers).
    `weight_decay` adds decay * w to the gradient of every weight: entries
    named "W" (MLP and CNN layers; not biases or BN's gamma/beta), or every
    leaf of a pytree without names.
    `record(params, state, grads, batch)` is stacked per step (params before the step).
    Returns (params, state, losses, records); with `return_velocity` also the
    momentum buffer, which `velocity` takes back to continue a run exactly.

    Used by `fit` and, for the toy models, in notebooks/01_whitening.ipynb and 02_zigzag.ipynb.
    """
    lrs = _per_leaf(lr, params)
    key = jax.random.PRNGKey(0) if key is None else key
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(carry, batch_and_i):
        params, state, velocity = carry
        batch, i = batch_and_i
        (loss, new_state), grads = grad_fn(params, state, batch, jax.random.fold_in(key, i))
        rec = None if record is None else record(params, state, grads, batch)
        grads = jax.tree_util.tree_map_with_path(
            lambda path, g, p: g + weight_decay * p if _decays(path) else g, grads, params)
        velocity = jax.tree.map(lambda v, g: sgd_momentum * v + g, velocity, grads)
        params = jax.tree.map(lambda p, v, r: p - r * v, params, velocity, lrs)
        return (params, new_state, velocity), (loss, rec)

    if batches is None and num_steps is None:
        raise ValueError("sgd needs `batches` or `num_steps`")
    n = num_steps if batches is None else jax.tree.leaves(batches)[0].shape[0]
    if velocity is None:
        velocity = jax.tree.map(jnp.zeros_like, params)
    (params, state, velocity), (losses, recs) = jax.lax.scan(
        step, (params, state, velocity), (batches, jnp.arange(n)), length=n)
    if return_velocity:
        return params, state, losses, recs, velocity
    return params, state, losses, recs


# --- classifiers ----------------------------------------------------------------


def evaluate(model, params, state, x, y, *, batch: int = 500):
    """Eval-mode accuracy (running BN statistics), in fixed-size chunks to bound memory.

    Traceable; the first len(x) // batch * batch examples count.

    Used in every training notebook.
    """
    batch = min(batch, x.shape[0])
    n = (x.shape[0] // batch) * batch
    return jnp.sum(_correct_counts(model, params, state, x[:n], y[:n], batch)) / n


def _correct_counts(model, params, state, x, y, batch):
    """Correct eval-mode predictions per chunk of `batch` examples (len(x) a multiple of it)."""
    def one(_, xy):
        logits, _ = model.apply(params, state, xy[0], train=False)
        return None, jnp.sum(jnp.argmax(logits, -1) == xy[1])

    xs, ys = x.reshape((-1, batch) + x.shape[1:]), y.reshape(-1, batch)
    return jax.lax.scan(one, None, (xs, ys))[1]


def _run(model, num_steps, eval_every, eval_batch, train_eval, probe, record, init_key, idx, lr,
         sgd_momentum, init_scale, weight_decay, start, x_train, y_train, x_test, y_test, probe_x):
    """One training run; every argument after `record` may carry a vmap axis."""
    if start is None:
        params, state = model.init_params(init_key, init_scale)
    else:
        params, state = start

    def loss_fn(params, state, batch, key):
        logits, new_state = model.apply(params, state, batch[0], train=True, key=key)
        return cross_entropy(logits, batch[1]), new_state

    rec = None if record is None else (lambda p, s, g, b: record(p, s, g, b[0], b[1]))
    # Test and training accuracy in one pass (one compiled loop): each set cut to whole chunks
    n_test, n_seen = (n // eval_batch * eval_batch for n in (x_test.shape[0], train_eval))
    x_eval = jnp.concatenate([x_test[:n_test], x_train[:n_seen]])
    y_eval = jnp.concatenate([y_test[:n_test], y_train[:n_seen]])

    def measure(params, state):
        counts = _correct_counts(model, params, state, x_eval, y_eval, eval_batch)
        k = n_test // eval_batch
        out = (jnp.sum(counts[:k]) / n_test, jnp.sum(counts[k:]) / n_seen)
        if probe is None:
            return out + (None,)
        return out + ((probe(params, state) if probe_x is None else probe(params, state, probe_x)),)

    def chunk(carry, chunk_and_i):
        (params, state, velocity), (chunk_idx, i) = carry, chunk_and_i
        # Gather the chunk's batches once; each step then only slices
        params, state, losses, recs, velocity = sgd(
            loss_fn, params, state, lr=lr, batches=(x_train[chunk_idx], y_train[chunk_idx]),
            sgd_momentum=sgd_momentum, weight_decay=weight_decay, record=rec,
            key=jax.random.fold_in(init_key, i), velocity=velocity, return_velocity=True)
        return (params, state, velocity), (losses, recs, measure(params, state))

    num_chunks = num_steps // eval_every
    first = measure(params, state)
    # The momentum buffer runs on across evaluations
    velocity = jax.tree.map(jnp.zeros_like, params)
    (params, state, _), (losses, recs, evals) = jax.lax.scan(
        chunk, (params, state, velocity),
        (idx.reshape(num_chunks, eval_every, -1), jnp.arange(num_chunks)))
    evals = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, evals)
    recs = jax.tree.map(lambda r: r.reshape((num_steps,) + r.shape[2:]), recs)
    return losses.reshape(-1), evals, params, state, recs


_STATIC = ("model", "num_steps", "eval_every", "eval_batch", "train_eval", "probe", "record",
           "in_axes")


def _mapped(fn, in_axes):
    """`fn` over the configs one after another (`lax.map`), with vmap's `in_axes` (0 or None)."""
    def call(*args):
        def one(swept):
            it = iter(swept)
            return fn(*(next(it) if ax == 0 else a for a, ax in zip(args, in_axes)))
        return jax.lax.map(one, [a for a, ax in zip(args, in_axes) if ax == 0])
    return call


@partial(jax.jit, static_argnames=_STATIC)
def _run_jit(*args, model, num_steps, eval_every, eval_batch, train_eval, probe, record, in_axes):
    fn = partial(_run, model, num_steps, eval_every, eval_batch, train_eval, probe, record)
    if in_axes is not None:
        # Vmapped convolutions with per-config weights become grouped convolutions, which
        # XLA:CPU runs several times slower than one config after another (benchmarks/cnn.py)
        fn = _mapped(fn, in_axes) if getattr(model, "map_configs", False) else jax.vmap(fn, in_axes=in_axes)
    return fn(*args)


def _check_data(model, data):
    x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in data[:4])
    shape = tuple(model.input_shape)
    for name, x, y in (("x_train", x_train, y_train), ("x_test", x_test, y_test)):
        if x.shape[1:] != shape or y.shape != (x.shape[0],):
            raise ValueError(f"`data`: {name} must be (N, {', '.join(map(str, shape))}) with labels "
                             f"(N,) for this model, got {tuple(x.shape)} and {tuple(y.shape)}")
    return (x_train.astype(jnp.float32), y_train.astype(jnp.int32), x_test.astype(jnp.float32),
            y_test.astype(jnp.int32))


def _prepare(model, data, num_steps, batch_size, eval_every, data_key, batch_idx, train_eval):
    for attr in ("input_shape", "needs_batch", "init_params", "apply"):
        if not hasattr(model, attr):
            raise TypeError(f"`model` must be a bn_helpers model (MLP, CNN) with `{attr}`, "
                            f"got {type(model).__name__}")
    data = _check_data(model, data)
    n = data[0].shape[0]
    if model.needs_batch and batch_size < 2:
        raise ValueError("`batch_size` must be >= 2 for a network with batch norm (training mode)")
    eval_every = min(eval_every, num_steps)
    if num_steps % eval_every:
        raise ValueError(f"`num_steps`={num_steps} must be a multiple of `eval_every`={eval_every}")
    if batch_idx is None:
        idx = batch_indices(data_key, n, batch_size, num_steps)
    else:
        idx = np.asarray(batch_idx)
        if idx.shape[-2:] != (num_steps, batch_size) or idx.ndim not in (2, 3):
            raise ValueError(f"`batch_idx` must have shape (num_steps, batch_size) = ({num_steps}, "
                             f"{batch_size}) (or with a leading config axis), got {idx.shape}")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"`batch_idx` holds indices outside [0, {n}) of x_train")
        idx = jnp.asarray(idx, jnp.int32)
    train_eval = n if train_eval is None else int(min(max(train_eval, 1), n))
    eval_batch = next(b for b in (500, 250, 200, 100, 50, 25, 20, 10, 5, 2, 1)
                      if b <= min(train_eval, data[2].shape[0]))
    static = {"model": model, "num_steps": num_steps, "eval_every": eval_every,
              "eval_batch": eval_batch, "train_eval": train_eval}
    return data, idx, static


def _result(out, num_steps, eval_every):
    losses, (test_acc, train_acc, probe), params, state, record = out
    steps = np.arange(0, num_steps + 1, eval_every)
    return FitResult(losses, steps, test_acc, train_acc, probe, params, state, record)


def fit(model, data, *, key, lr, num_steps: int, batch_size: int = 60, sgd_momentum: float = 0.0,
        init_scale: float = 1.0, weight_decay: float = 0.0, eval_every: int = 500,
        train_eval: int | None = None, probe: Callable | None = None, probe_inputs=None,
        record: Callable | None = None, batch_idx=None, start=None) -> FitResult:
    """Train `model` with minibatch SGD on `data` = (x_train, y_train, x_test, y_test).

    `key` fixes the initial weights, the batch order and any noise the model
    draws. `lr` is a scalar or one rate per layer. `probe(params, state)`
    (or `probe(params, state, probe_inputs)`) is recorded at every
    evaluation, `record(params, state, grads, xb, yb)` at every step: pass
    module-level functions so the compiled run is reused. `train_eval`
    evaluates training accuracy on the first N training examples only.
    `batch_idx` (num_steps, batch_size) replaces the shuffled order;
    `start=(params, state)` continues from given weights.

    Used in notebooks/00_start_here.ipynb and every training notebook.
    """
    init_key, data_key = jax.random.split(key)
    data, idx, static = _prepare(model, data, num_steps, batch_size, eval_every, data_key,
                                 batch_idx, train_eval)
    out = _run_jit(init_key, idx, jnp.asarray(lr, jnp.float32), sgd_momentum, init_scale, weight_decay, start,
                   *data, probe_inputs, probe=probe, record=record, in_axes=None, **static)
    return _result(out, num_steps, static["eval_every"])


def fit_many(model, data, *, key, lr, num_steps: int, batch_size: int = 60, sgd_momentum=0.0,
             init_scale=1.0, weight_decay=0.0, seeds=None, eval_every: int = 500,
             train_eval: int | None = None, probe: Callable | None = None, probe_inputs=None,
             record: Callable | None = None, batch_idx=None, start=None) -> FitResult:
    """Train several configurations of `model` in one vmapped computation.

    `lr`, `sgd_momentum`, `init_scale` and `weight_decay` may each be a
    scalar or a 1-D array (`lr` per layer: (K, num_layers)); arrays share
    one length K, the number of runs. `seeds` (K ints) gives each run its
    own initial weights; all runs see the same batch order (from `key`, or
    `batch_idx`, which may carry a leading K axis). Every field of the
    result gains a leading axis of size K. Other arguments as in `fit`.

    Used in notebooks/03_init.ipynb and notebooks/06_paper_experiment.ipynb.
    """
    init_key, data_key = jax.random.split(key)
    data, idx, static = _prepare(model, data, num_steps, batch_size, eval_every, data_key,
                                 batch_idx, train_eval)
    args = {"lr": lr, "sgd_momentum": sgd_momentum, "init_scale": init_scale,
            "weight_decay": weight_decay}
    swept = {name: np.ndim(v) >= 1 for name, v in args.items()}
    sizes = {k: np.shape(v)[0] for k, v in args.items() if swept[k]}
    for k, v in args.items():
        if np.ndim(v) > (2 if k == "lr" else 1):
            raise ValueError(f"`{k}` must be a scalar or a 1-D array, got shape {np.shape(v)}")
    if seeds is not None:
        sizes["seeds"] = len(seeds)
    if idx.ndim == 3:
        sizes["batch_idx"] = idx.shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(f"swept arguments must have one length, got {sizes}")
    if not sizes:
        raise ValueError("fit_many needs at least one swept argument (`lr`, `sgd_momentum`, "
                         "`init_scale`, `weight_decay` as a 1-D array, `seeds`, or `batch_idx`)")
    k = next(iter(sizes.values()))
    if seeds is None:
        init_keys = jnp.broadcast_to(init_key, (k,) + init_key.shape)
    else:
        init_keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    in_axes = ((0, 0 if idx.ndim == 3 else None) + tuple(0 if swept[n] else None for n in args)
               + (None,) * 6)
    out = _run_jit(init_keys, idx, *(jnp.asarray(v, jnp.float32) for v in args.values()), start,
                   *data, probe_inputs, probe=probe, record=record, in_axes=in_axes, **static)
    return _result(out, num_steps, static["eval_every"])
