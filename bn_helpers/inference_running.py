"""Running statistics of BN: what a BN layer sees, read through `MLP.apply` (per training
step, over a set of images, Algorithm 2's population), the running averages (the two meanings of
"momentum", start-up bias, underflow to zero, refreshing by forward passes), what each framework
stores.

Functions take a `bnh.MLP` (bn="before") and (params, state) of one network or of several
stacked on a leading axis (as `bnh.fit_many` returns them; results gain that axis). Statistics
come from training-mode passes with momentum 0, whose new state is the batch's own mean and
variance: the tested core in batchnorm.py, no second formula. Re-exported by
`bn_helpers.inference`, so the notebook calls `bnh.inference.ema(...)`.

Used in notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .mlp import MLP

__all__ = ["batch_stats_recorder", "stats_probe", "batch_statistics", "population_statistics",
           "refresh_running_stats", "to_torch_momentum", "from_torch_momentum", "ema", "ema_trace",
           "debias_weights", "underflow_steps", "framework_update", "fixed_vector_table"]

# --- one network, or a stack of them -------------------------------------------------------


def _check_net(net):
    if not isinstance(net, MLP) or net.bn != "before":
        raise ValueError("`net` must be a bn_helpers.MLP with bn='before'")


def _check_batch(batch_size, n, name="batch_size"):
    if not isinstance(batch_size, (int, np.integer)) or not 2 <= batch_size <= n:
        raise ValueError(f"`{name}` must be an int in [2, {n}], got {batch_size!r}")
    return int(batch_size)


@lru_cache(maxsize=None)
def _compiled(core, stacked, static):
    fn = partial(core, **dict(static))
    if stacked:  # the same computation vmapped over the networks' leading axis
        one = fn
        def fn(p, s, *args):
            return jax.vmap(lambda p1, s1: one(p1, s1, *args))(p, s)
    return jax.jit(fn)


def _call(core, params, state, *args, **static):
    """core(params, state, *args) jitted, vmapped when params carry a leading axis of networks."""
    stacked = jnp.ndim(params[0]["W"]) == 3
    return _compiled(core, stacked, tuple(sorted(static.items())))(params, state, *args)


def _floats(tree):  # 0-d results as Python floats, others as NumPy arrays
    return jax.tree.map(lambda a: float(a) if np.ndim(a) == 0 else np.asarray(a), tree)


# --- BN's statistics, through MLP.apply ------------------------------------------------------


def _stats_view(net, unbiased=False):
    """The same network whose training-mode 'new state' is the batch's mean and variance."""
    return dataclasses.replace(net, momentum=0.0, unbiased_var=unbiased)


def _blank(net):
    return [dict(mean=jnp.zeros(d), var=jnp.ones(d)) for d in net.sizes[1:-1]] + [{}]


def _stats(params, state, x, *, net, unbiased=False):
    return _stats_view(net, unbiased).apply(params, _blank(net), x, train=True)[1][:-1]


@lru_cache(maxsize=None)
def batch_stats_recorder(net):
    """`record` for `bnh.fit`: [{"mean", "var"}] per hidden layer, the mean and biased
    variance of BN's input over each step's batch, as BN used them (one function per net).

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    return lambda params, state, grads, xb, yb: _stats(params, state, xb, net=net)


@lru_cache(maxsize=None)
def stats_probe(net):
    """`probe` for `bnh.fit` with `probe_inputs` x: `batch_statistics` over all of x.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    return lambda params, state, x: _stats(params, state, x, net=net)


def batch_statistics(net, params, x):
    """Mean and biased variance of every BN layer's input over the batch x (training-mode pass).
    Returns [{"mean": (D,), "var": (D,)}, ...] per hidden layer.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    return _call(_stats, params, None, jnp.asarray(x, jnp.float32), net=net)


def _population(params, state, x, *, net, batch_size, unbiased):
    k = x.shape[0] // batch_size
    xs = x[: k * batch_size].reshape(k, batch_size, -1)
    stats = jax.vmap(lambda xb: _stats(params, state, xb, net=net, unbiased=unbiased))(xs)
    return [{"mean": s["mean"].mean(0), "var": s["var"].mean(0)} for s in stats] + [{}]


def population_statistics(net, params, x, *, batch_size: int = 60, unbiased: bool = True):
    """The paper's Algorithm 2 by a full pass: split x into batches of m = batch_size, take
    E[x] = mean of the batch means and Var[x] = mean of the unbiased batch variances, m/(m-1)
    times the biased ones (unbiased=False: the biased ones). Returns a `state` for eval mode:
    "recalibration" when x is the training set.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    x = jnp.asarray(x, jnp.float32)
    m = _check_batch(batch_size, x.shape[0])
    return _call(_population, params, None, x, net=net, batch_size=m, unbiased=bool(unbiased))


def _eval_acc(params, state, x, y, *, net):
    return jnp.mean(jnp.argmax(net.apply(params, state, x, train=False)[0], -1) == y)


def _refresh(params, state, x, idx, *, net):
    return jax.lax.scan(lambda s, i: (net.apply(params, s, x[i], train=True)[1], None),
                        state, idx)[0]


def refresh_running_stats(net, params, state, x, *, num_steps: int, batch_size: int = 60,
                          seed: int = 2):
    """Forward-only training-mode passes over `num_steps` batches of x (one NumPy permutation
    per epoch, from `seed`): the running averages move (momentum `net.momentum`), the weights
    do not. Returns the new state.

    Used in notebooks/05_inference.ipynb.
    """
    _check_net(net)
    rng, per_epoch = np.random.default_rng(seed), len(x) // batch_size
    perms = [rng.permutation(len(x))[: per_epoch * batch_size]
             for _ in range(-(-num_steps // per_epoch))]
    idx = np.concatenate(perms).reshape(-1, batch_size)[:num_steps].astype(np.int32)
    return _call(_refresh, params, state, jnp.asarray(x, jnp.float32), idx, net=net)



# --- momentum conventions and the running average ------------------------------------


def check_momentum(momentum, name="momentum"):
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1], got {momentum}")
    return float(momentum)


def to_torch_momentum(momentum: float) -> float:
    """Ours/Keras/Flax momentum (weight on the OLD value) -> PyTorch's (weight on the NEW batch).

    Used in notebooks/05_inference.ipynb.
    """
    return 1.0 - check_momentum(momentum)


def from_torch_momentum(torch_momentum: float) -> float:
    """PyTorch momentum (weight on the new batch) -> ours/Keras/Flax (weight on the old value).

    Used in notebooks/05_inference.ipynb.
    """
    return 1.0 - check_momentum(torch_momentum, "torch_momentum")


def ema(old, new, momentum: float, *, convention: str = "keras"):
    """One running-average update. convention="keras" (also Flax, ours): momentum weighs `old`;
    convention="torch": momentum weighs `new`. Both give the same number when they are converted.

    Used in notebooks/05_inference.ipynb.
    """
    if convention not in ("keras", "torch"):
        raise ValueError(f"`convention` must be 'keras' or 'torch', got {convention!r}")
    m = check_momentum(momentum)
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
    m = check_momentum(momentum)
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
    m = check_momentum(momentum)
    if m >= 1.0:
        raise ValueError("`momentum` must be < 1 for the variance to decay")
    return int(_underflow(jnp.float32(m), jnp.float32(start)))


@jax.jit
def _underflow(m, start):
    return jax.lax.while_loop(lambda c: (c[0] > 0) & (c[1] < 10**6),
                              lambda c: (c[0] * m, c[1] + 1), (start, 0))[1]


# --- framework conventions ----------------------------------------------------------------

def framework_update(framework: str, mean, var, x, momentum=None):
    """Running (mean, var) after one training batch x (m, D), written the way each framework's
    source does it: 'torch' (momentum on new, unbiased var), 'keras' and 'flax' (momentum on old,
    biased var). momentum=None uses the framework's default. (A reference in NumPy for the
    fixed-vector table, not used by any network.)

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
