"""BN at inference: running averages, population statistics, failure modes, folding, conventions.

Everything works on a `bnh.MLP` with `bn="before"` and its (params, state) lists. Statistics
are read without re-implementing the network: a copy of the net with momentum 0 and biased
variance returns, as its "new state", exactly the batch mean and biased batch variance of
every BN layer's input.

Used in notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .mlp import MLP
from .train import batch_indices, cross_entropy

__all__ = ["spread_text", "to_torch_momentum", "from_torch_momentum", "ema", "ema_trace", "debias_weights",
           "train_recording", "batch_statistics", "population_statistics",
           "variance_sources", "accuracy", "accuracy_vs_batch_size", "fine_tune_controls",
           "reestimation_accuracy",
           "refresh_running_stats", "prediction_spread",
           "shift_images", "shift_accuracy", "fold_dense_bn", "fold_network", "apply_folded",
           "underflow_steps", "CONVENTIONS", "framework_update", "fixed_vector_table"]


def spread_text(values, digits: int = 3) -> str:
    """'median (range lo to hi over n seeds)' for a list of per-seed results.

    Used in notebooks/05_inference.ipynb.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("`values` must hold at least one number")
    return (f"{np.median(v):.{digits}f} (range {v.min():.{digits}f} to {v.max():.{digits}f} "
            f"over {v.size} seeds)")


# --- momentum conventions --------------------------------------------------------


def _check_momentum(momentum, name="momentum"):
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1], got {momentum}")
    return float(momentum)


def to_torch_momentum(momentum: float) -> float:
    """Ours/Keras/Flax momentum (weight on the OLD value) -> PyTorch's (weight on the NEW batch).

    Used in notebooks/05_inference.ipynb.
    """
    return 1.0 - _check_momentum(momentum)


def from_torch_momentum(torch_momentum: float) -> float:
    """PyTorch momentum (weight on the new batch) -> ours/Keras/Flax (weight on the old value).

    Used in notebooks/05_inference.ipynb.
    """
    return 1.0 - _check_momentum(torch_momentum, "torch_momentum")


def ema(old, new, momentum: float, *, convention: str = "keras"):
    """One running-average update. convention="keras" (also Flax, ours): momentum weighs `old`;
    convention="torch": momentum weighs `new`. Both give the same number when they are converted.

    Used in notebooks/05_inference.ipynb.
    """
    if convention not in ("keras", "torch"):
        raise ValueError(f"`convention` must be 'keras' or 'torch', got {convention!r}")
    m = _check_momentum(momentum)
    if convention == "torch":
        return (1.0 - m) * old + m * new
    return m * old + (1.0 - m) * new


@jax.jit
def ema_trace(values, momentum, init):
    """Running average of a sequence (T,) with momentum on the old value, started at `init`.

    Returns (trace, debiased): debiased divides out the weight still on `init` after t steps,
    (trace_t - momentum^t * init) / (1 - momentum^t). That is an exponentially weighted average
    of the values seen so far, with the weights of `debias_weights` (they sum to 1): recent
    values still count more than old ones, so it is not their plain average.

    Used in notebooks/05_inference.ipynb (momentum slider).
    """
    def step(carry, v):
        r, w = carry
        r = momentum * r + (1.0 - momentum) * v
        w = momentum * w
        return (r, w), (r, w)

    _, (trace, w_init) = jax.lax.scan(step, (jnp.asarray(init, jnp.float32), jnp.float32(1.0)),
                                      values)
    debiased = (trace - w_init * init) / jnp.maximum(1.0 - w_init, 1e-12)
    return trace, debiased


def debias_weights(momentum: float, t: int) -> np.ndarray:
    """Weights, oldest value first, that the start-up-corrected running average after t steps
    gives to the t values seen: (1 - momentum) * momentum^(t-1-k) / (1 - momentum^t), k = 0..t-1.
    They sum to 1; the newest value weighs momentum^-(t-1) times the oldest.

    Used in notebooks/05_inference.ipynb.
    """
    m = _check_momentum(momentum)
    if not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"`t` must be a positive int, got {t!r}")
    if m == 0.0:
        return np.eye(1, int(t), int(t) - 1).ravel()
    k = np.arange(int(t))
    w = (1.0 - m) * m ** (t - 1 - k)
    return w / w.sum() if m == 1.0 else w / (1.0 - m**t)


def underflow_steps(momentum: float, start: float = 1.0) -> int:
    """Steps of x <- momentum * x, from `start`, until x is exactly 0 in float32 as JAX computes
    it on this machine (XLA on CPU flushes tiny 'denormal' numbers to zero): how fast the
    running variance of a dead unit (batch variance 0) collapses to exactly zero.

    Used in notebooks/05_inference.ipynb.
    """
    m = _check_momentum(momentum)
    if m >= 1.0:
        raise ValueError("`momentum` must be < 1 for the variance to decay")

    return int(_underflow(jnp.float32(m), jnp.float32(start)))


@jax.jit
def _underflow(m, start):
    return jax.lax.while_loop(lambda c: (c[0] > 0) & (c[1] < 10**6),
                              lambda c: (c[0] * m, c[1] + 1), (start, 0))[1]


# --- statistics of a network -------------------------------------------------------


def _check_net(net):
    if not isinstance(net, MLP) or net.bn != "before":
        raise ValueError("`net` must be a bn_helpers.MLP with bn='before'")


def _stats_net(net):
    """A copy whose training-mode 'new state' is the batch mean and biased batch variance."""
    return dataclasses.replace(net, momentum=0.0, unbiased_var=False)


def batch_statistics(net, params, x):
    """Mean and biased variance of every BN layer's input over the batch x (training-mode pass).

    Returns [{"mean": (D,), "var": (D,)}, ...] per hidden layer.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    state = [dict(mean=jnp.zeros(s), var=jnp.ones(s)) for s in net.sizes[1:-1]] + [{}]
    _, stats = _stats_net(net).apply(params, state, x, train=True)
    return stats[:-1]


def population_statistics(net, params, x, *, batch_size: int = 60, unbiased: bool = True):
    """The paper's Algorithm 2 by a full pass: split x into batches of m = batch_size, take
    E[x] = mean of the batch means and Var[x] = m/(m-1) * mean of the biased batch variances
    (unbiased=False drops the factor). Returns a `state` list to use in eval mode: this is
    "recalibration" when x is the training set.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    x = jnp.asarray(x, jnp.float32)
    if not isinstance(batch_size, (int, np.integer)) or not 2 <= batch_size <= x.shape[0]:
        raise ValueError(f"`batch_size` must be an int in [2, {x.shape[0]}], got {batch_size!r}")
    return _population(net, params, x, batch_size=int(batch_size), unbiased=bool(unbiased))


@partial(jax.jit, static_argnames=("net", "batch_size", "unbiased"))
def _population(net, params, x, *, batch_size, unbiased):
    k = x.shape[0] // batch_size
    xs = x[: k * batch_size].reshape(k, batch_size, -1)
    stats = jax.vmap(lambda xb: batch_statistics(net, params, xb))(xs)
    factor = batch_size / (batch_size - 1) if unbiased else 1.0
    out = [{"mean": s["mean"].mean(0), "var": factor * s["var"].mean(0)} for s in stats]
    return out + [{}]


def variance_sources(net, params, x, *, batch_size: int = 60):
    """Where Algorithm 2's variance of each BN layer's input comes from, per hidden layer, as
    the median over units of:
    "algorithm2": m/(m-1) times the mean biased variance of training-mode batches of m;
    "algorithm2_biased": the same without m/(m-1);
    "fixed_earlier": the same batches with m/(m-1), but every earlier BN layer normalized with
    full-pass statistics (as in eval mode), not with each batch's own;
    "full_pass": the variance over all of x in one pass (what eval mode feeds the layer).
    Returns a list of dicts, one per hidden layer.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    x = jnp.asarray(x, jnp.float32)
    if not isinstance(batch_size, (int, np.integer)) or not 2 <= batch_size <= x.shape[0]:
        raise ValueError(f"`batch_size` must be an int in [2, {x.shape[0]}], got {batch_size!r}")
    m = int(batch_size)
    pop = population_statistics(net, params, x, batch_size=m)
    biased = population_statistics(net, params, x, batch_size=m, unbiased=False)
    whole = batch_statistics(net, params, x)
    # Eval mode with the full-pass statistics reproduces the full pass layer by layer
    _, _, hidden = net.apply(params, whole + [{}], x, train=False, return_hidden=True)
    k = x.shape[0] // m
    out = []
    for i, layer in enumerate(params[:-1]):
        h = x if i == 0 else hidden[i - 1]["post"]
        z = h @ layer["W"] + (layer["b"] if "b" in layer else 0.0)
        zb = z[: k * m].reshape(k, m, -1)
        fixed = m / (m - 1) * zb.var(1).mean(0)
        out.append({"algorithm2": float(jnp.median(pop[i]["var"])),
                    "algorithm2_biased": float(jnp.median(biased[i]["var"])),
                    "fixed_earlier": float(jnp.median(fixed)),
                    "full_pass": float(jnp.median(whole[i]["var"]))})
    return out


@partial(jax.jit, static_argnames=("net", "num_steps", "chunk"))
def _train(net, params, state, x, y, idx, lr, ref_x, *, num_steps, chunk):
    def loss_fn(p, s, xb, yb):
        logits, stats = _stats_net(net).apply(p, s, xb, train=True)
        return cross_entropy(logits, yb), stats

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    m = idx.shape[1]
    factor = m / (m - 1) if net.unbiased_var else 1.0

    def step(carry, i):
        params, state = carry
        (loss, stats), grads = grad_fn(params, state, x[i], y[i])
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        # The running averages, written out: momentum weighs the old value
        state = [{"mean": net.momentum * s["mean"] + (1 - net.momentum) * b["mean"],
                  "var": net.momentum * s["var"] + (1 - net.momentum) * factor * b["var"]}
                 if s else s for s, b in zip(state, stats, strict=True)]
        rec = [(b["mean"], b["var"]) for b in stats[:-1]]
        return (params, state), (loss, rec)

    def outer(carry, idx_chunk):
        carry, out = jax.lax.scan(step, carry, idx_chunk)
        pop = batch_statistics(net, carry[0], ref_x)
        return carry, (out, [(p["mean"], p["var"]) for p in pop])

    (params, state), ((loss, rec), pop) = jax.lax.scan(
        outer, (params, state), idx.reshape(num_steps // chunk, chunk, -1))
    return params, state, loss.reshape(-1), rec, pop


def train_recording(net, x, y, *, key, lr: float, num_steps: int, batch_size: int = 60,
                    params=None, state=None, ref_size: int = 1000, chunk: int = 25):
    """Plain SGD in one jitted scan that records what BN sees at every step.

    Starts from (params, state) if given (fine-tuning), else from `net.init_params(key)`.
    Returns a dict: params, state, loss (T,), batch_mean / batch_var (T, layers, D) (biased
    batch variance), pop_mean / pop_var (T // chunk, layers, D) over the first `ref_size`
    examples after every `chunk` steps, and pop_steps.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    if num_steps < chunk or num_steps % chunk:
        raise ValueError(f"`num_steps` must be a positive multiple of `chunk`={chunk}, "
                         f"got {num_steps}")
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be >= 2 (training mode), got {batch_size}")
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    init_key, data_key = jax.random.split(key)
    if params is None:
        params, state = net.init_params(init_key)
    idx = batch_indices(data_key, x.shape[0], batch_size, num_steps)
    params, state, loss, rec, pop = _train(net, params, state, x, y, idx, jnp.float32(lr),
                                           x[:ref_size], num_steps=num_steps, chunk=chunk)
    def stack(pairs, j):  # -> (steps, layers, D)
        return jnp.stack([p[j].reshape(-1, p[j].shape[-1]) for p in pairs], axis=1)

    return {"params": params, "state": state, "loss": loss,
            "batch_mean": stack(rec, 0), "batch_var": stack(rec, 1),
            "pop_mean": stack(pop, 0), "pop_var": stack(pop, 1),
            "pop_steps": np.arange(chunk, num_steps + 1, chunk)}


# --- accuracy under the three kinds of statistics ------------------------------------


@partial(jax.jit, static_argnames=("net", "mode", "batch_size"))
def _accuracy(net, params, state, x, y, key, *, mode, batch_size):
    if mode == "batch":
        k = x.shape[0] // batch_size
        perm = jax.random.permutation(key, x.shape[0])[: k * batch_size]
        xs, ys = x[perm].reshape(k, batch_size, -1), y[perm].reshape(k, batch_size)
        logits = jax.vmap(lambda xb: net.apply(params, state, xb, train=True)[0])(xs)
        return jnp.mean(jnp.argmax(logits, -1) == ys)
    logits, _ = net.apply(params, state, x, train=False)
    return jnp.mean(jnp.argmax(logits, -1) == y)


def accuracy(net, params, state, x, y, *, mode: str = "running", batch_size: int = 100,
             key=None, repeats: int = 3):
    """Test accuracy with BN's running statistics (mode="running": pass the population state
    from `population_statistics` for Algorithm 2) or with each test batch's own statistics
    (mode="batch", a forgotten eval flag; averaged over `repeats` random batchings).

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    if mode not in ("running", "batch"):
        raise ValueError(f"`mode` must be 'running' or 'batch', got {mode!r}")
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    if mode == "running":
        return float(_accuracy(net, params, state, x, y, None, mode=mode, batch_size=0))
    if not isinstance(batch_size, (int, np.integer)) or not 2 <= batch_size <= x.shape[0]:
        raise ValueError(f"`batch_size` must be an int in [2, {x.shape[0]}] in batch mode, "
                         f"got {batch_size!r}")
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, repeats)
    return float(np.mean([_accuracy(net, params, state, x, y, k, mode=mode,
                                    batch_size=int(batch_size)) for k in keys]))


@partial(jax.jit, static_argnames=("net", "sizes", "repeats"))
def _acc_sizes(net, params, state, x, y, key, *, sizes, repeats):
    keys = jax.random.split(key, repeats)
    return jnp.stack([jnp.mean(jax.vmap(lambda k, b=b: _accuracy(
        net, params, state, x, y, k, mode="batch", batch_size=b))(keys)) for b in sizes])


def accuracy_vs_batch_size(net, params, state, x, y, sizes, *, repeats: int = 3, key=None):
    """Accuracy with each test batch's own statistics for every batch size in `sizes` (one
    compiled computation), averaged over `repeats` random batchings. Returns an array.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    sizes = tuple(int(b) for b in sizes)
    if not sizes or min(sizes) < 2 or max(sizes) > len(x):
        raise ValueError(f"`sizes` must be batch sizes in [2, {len(x)}], got {sizes}")
    key = jax.random.PRNGKey(0) if key is None else key
    return np.asarray(_acc_sizes(net, params, state, jnp.asarray(x, jnp.float32),
                                 jnp.asarray(y, jnp.int32), key, sizes=sizes, repeats=repeats))


def refresh_running_stats(net, params, state, x, *, num_steps: int, batch_size: int = 60,
                          key=None):
    """Forward-only training-mode passes over random batches of x: the running averages move
    (momentum `net.momentum`), the weights do not. Returns the new state.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    key = jax.random.PRNGKey(2) if key is None else key
    idx = batch_indices(key, len(x), batch_size, num_steps)
    return _refresh(net, params, state, jnp.asarray(x, jnp.float32), idx)


@partial(jax.jit, static_argnames=("net",))
def _refresh(net, params, state, x, idx):
    def step(s, i):
        return net.apply(params, s, x[i], train=True)[1], None

    return jax.lax.scan(step, state, idx)[0]


@partial(jax.jit, static_argnames=("net", "sizes", "num_contexts"))
def _spread(net, params, state, x, y, images, key, *, sizes, num_contexts):
    return [_spread_one(net, params, state, x, y, images, key, b, num_contexts) for b in sizes]


def _spread_one(net, params, state, x, y, images, key, batch_size, num_contexts):
    def one(i, k):
        others = jax.random.choice(k, x.shape[0], (batch_size - 1,), replace=False)
        xb = jnp.concatenate([x[i][None], x[others]])
        logits, _ = net.apply(params, state, xb, train=True)
        return jax.nn.softmax(logits[0])[y[i]]

    keys = jax.random.split(key, images.shape[0] * num_contexts).reshape(
        images.shape[0], num_contexts, -1)
    return jax.vmap(lambda i, ks: jax.vmap(lambda k: one(i, k))(ks))(images, keys)


def prediction_spread(net, params, state, x, y, images, *, sizes, num_contexts: int = 20,
                      key=None):
    """Probability of the true class for each image in `images` when it is evaluated in
    training mode inside `num_contexts` random batches of each size in `sizes` (the other
    members drawn from x): shape (len(sizes), len(images), num_contexts); and the eval-mode
    probability, shape (len(images),). One compiled computation for all sizes.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    sizes = tuple(int(b) for b in sizes)
    if not sizes or min(sizes) < 2 or max(sizes) > len(x):
        raise ValueError(f"`sizes` must be batch sizes in [2, {len(x)}], got {sizes}")
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    images = jnp.asarray(images, jnp.int32)
    key = jax.random.PRNGKey(1) if key is None else key
    probs = jnp.stack(_spread(net, params, state, x, y, images, key, sizes=sizes,
                              num_contexts=num_contexts))
    logits, _ = net.apply(params, state, x[images], train=False)
    return np.asarray(probs), np.asarray(jax.nn.softmax(logits)[jnp.arange(len(images)), y[images]])


# --- covariate shift at test time -----------------------------------------------------


def shift_images(x, brightness=0.0, contrast=1.0, noise=0.0, noise_sample=None):
    """Shifted images clip(contrast * x + brightness + noise * noise_sample, 0, 1).

    Used in notebooks/05_inference.ipynb.
    """
    out = contrast * x + brightness
    if noise_sample is not None:
        out = out + noise * noise_sample
    return jnp.clip(out, 0.0, 1.0)


@partial(jax.jit, static_argnames=("net", "adapt_batch"))
def shift_accuracy(net, params, state, x, y, noise_sample, brightness, contrast, noise, *,
                   adapt_batch: int = 100):
    """Accuracy on shifted test images with the training statistics (eval mode) and with the
    statistics re-estimated on each test batch of `adapt_batch`, i.e. training mode on the test
    batches in their stored order (test-time adaptation per batch; see reestimation_accuracy
    for its costs). Returns (acc_training_stats, acc_reestimated).

    Used in notebooks/05_inference.ipynb (brightness/contrast/noise sliders).
    """
    xs = shift_images(x, brightness, contrast, noise, noise_sample)
    logits, _ = net.apply(params, state, xs, train=False)
    acc_train = jnp.mean(jnp.argmax(logits, -1) == y)
    k = xs.shape[0] // adapt_batch
    xb = xs[: k * adapt_batch].reshape(k, adapt_batch, -1)
    adapted = jax.vmap(lambda b: net.apply(params, state, b, train=True)[0])(xb)
    acc_adapt = jnp.mean(jnp.argmax(adapted, -1) == y[: k * adapt_batch].reshape(k, -1))
    return acc_train, acc_adapt


def reestimation_accuracy(net, params, state, x, y, *, batch_size: int = 100, key=None):
    """Statistics re-estimated on the test images x themselves, three ways. Returns a dict:
    "training_stats": eval mode with the stored statistics (no re-estimation);
    "random_batches": training mode on random test batches of `batch_size` (each batch
    normalized with its own statistics; predictions depend on the batch);
    "sorted_batches": training mode on batches sorted by class (each batch holds one or two
    digits);
    "once": eval mode with statistics re-estimated once over all of x (Algorithm 2 on x,
    batches of `batch_size`: the same for every image whatever its company);
    "changed": share of images whose predicted class differs between two random batchings.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    if not isinstance(batch_size, (int, np.integer)) or not 2 <= batch_size <= x.shape[0]:
        raise ValueError(f"`batch_size` must be an int in [2, {x.shape[0]}], got {batch_size!r}")
    key = jax.random.PRNGKey(3) if key is None else key
    k1, k2 = jax.random.split(key)
    n = (x.shape[0] // batch_size) * batch_size
    order_sorted = jnp.argsort(y, stable=True)[:n]
    preds = [_batched_predictions(net, params, state, x, order, batch_size=int(batch_size))
             for order in (jax.random.permutation(k1, x.shape[0])[:n],
                           jax.random.permutation(k2, x.shape[0])[:n], order_sorted)]
    covered = jnp.zeros(x.shape[0], bool).at[preds[0][1]].set(True)
    once = population_statistics(net, params, x, batch_size=int(batch_size))
    return {"training_stats": accuracy(net, params, state, x, y),
            "random_batches": float(jnp.mean(preds[0][0] == y[preds[0][1]])),
            "sorted_batches": float(jnp.mean(preds[2][0] == y[preds[2][1]])),
            "once": accuracy(net, params, once, x, y),
            "changed": float(jnp.mean(_unpermute(preds[0], x.shape[0])[covered]
                                      != _unpermute(preds[1], x.shape[0])[covered]))}


def _unpermute(pred_order, n):
    pred, order = pred_order
    return jnp.full(n, -1, jnp.int32).at[order].set(pred)


@partial(jax.jit, static_argnames=("net", "batch_size"))
def _batched_predictions(net, params, state, x, order, *, batch_size):
    xb = x[order].reshape(-1, batch_size, x.shape[1])
    logits = jax.vmap(lambda b: net.apply(params, state, b, train=True)[0])(xb)
    return jnp.argmax(logits, -1).reshape(-1).astype(jnp.int32), order


def fine_tune_controls(net, params, state, x_train, y_train, x_test, y_test, *, key, shift: dict,
                       num_steps: int = 100, lr: float = 0.05, momentum: float = 0.99,
                       batch_size: int = 60):
    """Fine-tune a trained net on shifted training images (`shift`: keywords of shift_images)
    and evaluate on shifted test images five ways. Returns {name: test accuracy}:
    "old": old weights, old statistics; "old_recalibrated": old weights, statistics recomputed
    (Algorithm 2) on the shifted training images, no training step; "stale": fine-tuned
    weights, old statistics; "lagging": fine-tuned weights, running averages of the fine-tuning
    (momentum `momentum`); "fine_recalibrated": fine-tuned weights, Algorithm 2 afterwards.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    xs, xts = shift_images(x_train, **shift), shift_images(x_test, **shift)
    slow = dataclasses.replace(net, momentum=_check_momentum(momentum))
    fine = train_recording(slow, xs, y_train, key=key, lr=lr, num_steps=num_steps,
                           batch_size=batch_size, params=params, state=state, ref_size=100)
    settings = {
        "old": (params, state),
        "old_recalibrated": (params, population_statistics(net, params, xs, batch_size=batch_size)),
        "stale": (fine["params"], state),
        "lagging": (fine["params"], fine["state"]),
        "fine_recalibrated": (fine["params"], population_statistics(net, fine["params"], xs,
                                                                    batch_size=batch_size)),
    }
    return {name: accuracy(net, p, s, xts, y_test) for name, (p, s) in settings.items()}


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
    """Every (dense, BN) pair of a trained net folded into plain dense layers [{"W", "b"}, ...].

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    out = []
    for layer, s in zip(params, state, strict=True):
        if s:
            W, b = fold_dense_bn(layer["W"], jnp.zeros(layer["W"].shape[1]), layer["gamma"],
                                 layer["beta"], s["mean"], s["var"], net.eps)
            out.append({"W": W, "b": b})
        else:
            out.append({"W": layer["W"], "b": layer["b"]})
    return out


def apply_folded(net, folded, x):
    """Forward pass of a folded network: dense, activation, ..., dense (no BN left).

    Used in notebooks/05_inference.ipynb.
    """
    from .mlp import ACTIVATIONS

    h = x
    for i, layer in enumerate(folded):
        h = h @ layer["W"] + layer["b"]
        if i < len(folded) - 1:
            h = ACTIVATIONS[net.activation](h)
    return h


# --- framework conventions ----------------------------------------------------------------

CONVENTIONS = [
    # framework, momentum meaning, default momentum (as written), same in ours, eps, running var
    ("PyTorch BatchNorm1d/2d", "weight on the new batch", 0.1, 0.9, 1e-5, "unbiased m/(m-1)"),
    ("Keras 3 BatchNormalization", "weight on the old average", 0.99, 0.99, 1e-3, "biased"),
    ("Flax linen/nnx BatchNorm", "weight on the old average", 0.99, 0.99, 1e-5, "biased"),
    ("bn_helpers apply_batch_norm", "weight on the old average", 0.9, 0.9, 1e-5,
     "unbiased (unbiased_var=True) or biased"),
    ("paper, Algorithm 2", "no EMA: exact average over batches", None, None, None,
     "unbiased m/(m-1)"),
]


def framework_update(framework: str, mean, var, x, momentum=None):
    """Running (mean, var) after one training batch x (m, D), written the way each framework's
    source does it: 'torch' (momentum on new, unbiased var), 'keras' and 'flax' (momentum on old,
    biased var). momentum=None uses the framework's default.

    Used in notebooks/05_inference.ipynb.
    """
    x = np.asarray(x, dtype=np.float64)
    m = x.shape[0]
    mu, var_b = x.mean(0), x.var(0)
    if framework == "torch":
        p = 0.1 if momentum is None else momentum
        return (1 - p) * mean + p * mu, (1 - p) * var + p * var_b * m / (m - 1)
    if framework == "keras":
        k = 0.99 if momentum is None else momentum
        return k * mean + (1 - k) * mu, k * var + (1 - k) * var_b
    if framework == "flax":
        k = 0.99 if momentum is None else momentum
        fast_var = np.maximum(0.0, (x**2).mean(0) - mu**2)  # Flax's use_fast_variance
        return k * mean + (1 - k) * mu, k * var + (1 - k) * fast_var
    raise ValueError(f"`framework` must be 'torch', 'keras' or 'flax', got {framework!r}")


def fixed_vector_table():
    """The fixed vector x = [[1, 2], [3, 6], [5, 10], [7, 14]]: each framework's running
    statistics after one step from (0, 1), next to apply_batch_norm with the converted settings.
    Returns rows (framework, settings, framework mean, var, ours mean, var, max |difference|).

    Used in notebooks/05_inference.ipynb.
    """
    from .batchnorm import apply_batch_norm, init_batch_norm

    x = np.array([[1, 2], [3, 6], [5, 10], [7, 14]], dtype=np.float32)
    rows = []
    for fw, mom, ours_mom, unbiased in (("torch", 0.1, 0.9, True), ("keras", 0.99, 0.99, False),
                                        ("flax", 0.99, 0.99, False)):
        fm, fv = framework_update(fw, np.zeros(2), np.ones(2), x, mom)
        p, s = init_batch_norm(2)
        _, s = apply_batch_norm(p, s, x, train=True, momentum=ours_mom, unbiased_var=unbiased)
        om, ov = np.asarray(s["mean"]), np.asarray(s["var"])
        diff = float(max(np.abs(fm - om).max(), np.abs(fv - ov).max()))
        settings = f"momentum={mom} -> ours momentum={ours_mom}, unbiased_var={unbiased}"
        rows.append((fw, settings, fm, fv, om, ov, diff))
    return rows
