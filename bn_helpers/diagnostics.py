"""Per-layer diagnostics of deep MLPs at initialization: activations, gradients, variance, BN.

The explorer network has a fixed maximal depth; a shallower network is the
same weights with the layers past `depth` switched off (they pass their
input through), so one compiled function serves every depth, activation,
init scheme, weight std and BN setting (`layer_stats`). The other helpers
feed the static figures of notebook 03: predicted vs measured variance
(`variance_propagation`), the update-to-data ratio of a short run
(`update_ratios`), Bjorck et al.'s residual network (`bjorck_gradients`) and
CS231n's init-scale sweep (`init_scale_sweep`).

Used in notebooks/03_init.ipynb.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import train as _train
from .mlp import MLP, init_std

__all__ = ["ACTIVATIONS", "INITS", "MAX_DEPTH", "WIDTH", "SATURATION_SLOPE", "layer_stats",
           "predicted_variance", "variance_propagation", "variance_runs", "update_ratios",
           "standardize", "bjorck_gradients", "excess_kurtosis", "init_scale_sweep",
           "bn_scale_variants", "QUIZ", "QUIZ_INITS", "quiz_inputs"]

ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("gaussian", "xavier", "he")
MAX_DEPTH = 50
WIDTH = 64
# A unit is saturated when the slope of its nonlinearity is below 5 % of the maximal slope:
# |z| > 4.36 for the sigmoid, |tanh(z)| > 0.975 for tanh; a ReLU unit with z <= 0 passes nothing
SATURATION_SLOPE = 0.05
_EPS = 1e-5


def _check_choice(name, value, options):
    if value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")


def _check_xy(x, y):
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"`x` needs a batch of at least 2 examples, got {x.shape[0]}")
    y = jnp.asarray(y, jnp.int32)
    if y.shape != (x.shape[0],):
        raise ValueError(f"`y` must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    return x, y


def _act(idx, z):
    return jax.lax.switch(idx, (jax.nn.sigmoid, jnp.tanh, jax.nn.relu), z)


def _relative_slope(idx, z):
    """Slope of the nonlinearity at z divided by its maximal slope (0.25, 1, 1)."""
    s = jax.nn.sigmoid(z)
    return jax.lax.switch(idx, (lambda: 4 * s * (1 - s), lambda: 1 - jnp.tanh(z) ** 2,
                                lambda: (z > 0).astype(z.dtype)))


def _std(v, axis):
    """Standard deviation that survives values near float32's underflow (scaled by the max)."""
    m = jnp.max(jnp.abs(v), axis=axis, keepdims=True)
    m = jnp.where((m > 0) & jnp.isfinite(m), m, 1.0)
    return jnp.std(v / m, axis=axis) * jnp.squeeze(m, axis)


def _bn(z):
    mean = jnp.mean(z, 0)
    var = jnp.mean((z - mean) ** 2, 0)
    return (z - mean) * jax.lax.rsqrt(var + _EPS)


def _stds(init_idx, std, fan_in, fan_out):
    return jnp.stack([jnp.asarray(std, jnp.float32),
                      jnp.sqrt(2.0 / (fan_in + fan_out)), jnp.sqrt(2.0 / fan_in)])[init_idx]


@partial(jax.jit, static_argnames=("n_in", "max_depth", "width"))
def _raw_weights(key, *, n_in, max_depth, width):
    """Standard-normal weights of the explorer network, scaled later."""
    k0, k1, k2 = jax.random.split(key, 3)
    return (jax.random.normal(k0, (n_in, width)),
            jax.random.normal(k1, (max_depth - 1, width, width)),
            jax.random.normal(k2, (width, 10)))


def _forward(weights, dz, xw0, act_idx, bn, depth):
    """Deep MLP at init; layers past `depth` pass their input through. Returns logits, z, h.

    xw0 = x @ W0 (unscaled) is the first layer's product, computed once outside; weights[0] is
    the first layer's std.
    """
    s0, ws, head = weights

    def layer(h_in, w, dz_l, on):
        z = h_in @ w
        z = jax.lax.cond(bn, _bn, lambda v: v, z) + dz_l
        h = _act(act_idx, z)
        return jnp.where(on, h, h_in), z, h

    # The first layer changes the width, so it sits outside the scan
    z1 = jax.lax.cond(bn, _bn, lambda v: v, xw0 * s0) + dz[0]
    h1 = _act(act_idx, z1)

    def step(h, inp):
        w, dz_l, idx = inp
        h_next, z, a = layer(h, w, dz_l, idx < depth)
        return h_next, (z, a)

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
        return _train.cross_entropy(logits, y), (zs, hs)

    # Only dL/dz is needed: the weight gradients would double the backward pass
    (loss, (zs, hs)), g_z = jax.value_and_grad(loss_fn, has_aux=True)(dz)
    slope = _relative_slope(act_idx, zs)
    d = depth - 1
    return {
        "loss": loss,
        "z_std": _std(zs, (1, 2)),
        "h_std": _std(hs, (1, 2)),
        "saturated": jnp.mean(slope < SATURATION_SLOPE, axis=(1, 2)),
        "dead": jnp.mean(jnp.all(zs <= 0, axis=1), axis=1),
        "grad_z_std": _std(g_z, (1, 2)),
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


def _raw(key, n_in, max_depth, width):
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
    """Per-layer statistics of a deep MLP at initialization, for one batch (x, y).

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

    Used in notebooks/03_init.ipynb.
    """
    _check_choice("activation", activation, ACTIVATIONS)
    _check_choice("init", init, INITS)
    x, y = _check_xy(x, y)
    if not isinstance(depth, (int, np.integer)) or not 1 <= depth <= max_depth:
        raise ValueError(f"`depth` must be an int in [1, {max_depth}], got {depth!r}")
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"`std` must be a positive number, got {std!r}")
    if width < 1:
        raise ValueError(f"`width` must be >= 1, got {width}")
    if key is None:
        key = _DEFAULT_KEY.setdefault("key", jax.random.PRNGKey(0))
    raw = _raw(key, x.shape[1], max_depth, width)
    xw0 = _first_product(x, raw[0])
    out = _layer_stats(raw, xw0, x.shape[1], y, ACTIVATIONS.index(activation), INITS.index(init),
                       jnp.float32(std), bool(bn), int(depth), max_depth=max_depth, width=width)
    out = jax.device_get(out)
    per_layer = ("z_std", "h_std", "saturated", "dead", "grad_z_std")
    return {k: (np.asarray(v)[:depth] if k in per_layer else np.asarray(v)) for k, v in out.items()}


def predicted_variance(x, *, init: str, std: float = 0.01, depth: int, width: int,
                       activation: str = "relu") -> np.ndarray:
    """Variance of z in layers 1..depth predicted by Glorot's and He's argument.

    Layer 1: Var[z] = s^2 * mean ||x||^2. Each later layer multiplies it by
    c * width * s^2, with c = 1/2 for ReLU (E[relu(z)^2] = Var[z] / 2) and
    c = 1 for a linear (or tanh near 0) network: He's s^2 = 2/fan_in makes the
    ReLU factor 1, Glorot's 2/(fan_in+fan_out) makes it 1/2.

    Used in notebooks/03_init.ipynb.
    """
    _check_choice("init", init, INITS)
    _check_choice("activation", activation, ("relu", "linear", "tanh"))
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {x.shape}")
    if depth < 1:
        raise ValueError(f"`depth` must be >= 1, got {depth}")
    c = 0.5 if activation == "relu" else 1.0
    s1 = init_std(init, x.shape[1], width, std)
    s = init_std(init, width, width, std)
    first = s1 ** 2 * np.mean(np.sum(x ** 2, axis=1))
    return first * (c * width * s ** 2) ** np.arange(depth)


def variance_propagation(x, y, *, init: str, std: float = 0.01, depth: int = 30, width: int = 256,
                         activation: str = "relu", key=None) -> dict:
    """{"measured", "predicted"}: Var[z] per layer of a plain network at init, and the theory.

    Used in notebooks/03_init.ipynb.
    """
    stats = layer_stats(x, y, activation=activation, init=init, std=std, depth=depth,
                        max_depth=depth, width=width, key=key)
    return {"measured": stats["z_std"].astype(np.float64) ** 2,
            "predicted": predicted_variance(x, init=init, std=std, depth=depth, width=width,
                                            activation=activation)}


@partial(jax.jit, static_argnames=("net", "num_steps"))
def _update_ratios(key, idx, x_train, y_train, lr, scale, *, net, num_steps):
    params, state = net.init_params(key, scale)

    def loss_fn(params, state, xb, yb):
        logits, state = net.apply(params, state, xb, train=True)
        return _train.cross_entropy(logits, yb), state

    def step(carry, batch):
        params, state = carry
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state,
                                                                         x_train[batch],
                                                                         y_train[batch])
        ratio = jnp.stack([jnp.std(lr * g["W"]) / jnp.std(p["W"])
                           for g, p in zip(grads, params, strict=True)])
        params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        return (params, state), (jnp.log10(ratio), loss)

    _, (ratios, losses) = jax.lax.scan(step, (params, state), idx)
    return ratios, losses


def update_ratios(net: MLP, data, *, key, lr: float, num_steps: int = 300, batch_size: int = 60,
                  init_scale: float = 1.0):
    """Karpathy's update-to-data ratio log10(std(lr * dL/dW) / std(W)) per layer and SGD step.

    Returns (ratios (num_steps, num_layers), losses (num_steps,)) as numpy
    arrays; plain SGD with learning rate `lr` on `data` = (x_train, y_train, ...).

    Used in notebooks/03_init.ipynb.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"`net` must be a bn_helpers.MLP, got {type(net).__name__}")
    if not lr > 0:
        raise ValueError(f"`lr` must be > 0, got {lr}")
    x_train, y_train = _check_xy(data[0], data[1])
    init_key, data_key = jax.random.split(key)
    idx = _train.batch_indices(data_key, x_train.shape[0], batch_size, num_steps)
    ratios, losses = _update_ratios(init_key, idx, x_train, y_train, jnp.float32(lr),
                                    jnp.float32(init_scale), net=net, num_steps=num_steps)
    return np.asarray(ratios), np.asarray(losses)


def standardize(x):
    """Subtract each pixel's mean over the batch, divide by the overall std.

    Used in notebooks/03_init.ipynb.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {x.shape}")
    x = x - x.mean(0)
    return x / max(float(x.std()), 1e-8)


@partial(jax.jit, static_argnames=("bn", "blocks", "width"))
def _bjorck(key, x, y, *, bn, blocks, width):
    k_in, k1, k2, k_out = jax.random.split(key, 4)
    w_in = jax.random.normal(k_in, (x.shape[1], width)) * jnp.sqrt(2.0 / x.shape[1])
    w1 = jax.random.normal(k1, (blocks, width, width)) * jnp.sqrt(2.0 / width)
    w2 = jax.random.normal(k2, (blocks, width, width)) * jnp.sqrt(2.0 / width)
    w_out = jax.random.normal(k_out, (width, 10)) * jnp.sqrt(2.0 / width)

    def loss_fn(w1):
        h = x @ w_in

        def block(h, ws):
            a, b = ws
            z = h @ a
            z = _bn(z) if bn else z
            h = h + jax.nn.relu(z) @ b
            return h, jnp.std(h)

        h, stds = jax.lax.scan(block, h, (w1, w2))
        return _train.cross_entropy(h @ w_out, y), (jnp.std(x @ w_in), stds)

    (loss, (std0, stds)), g = jax.value_and_grad(loss_fn, has_aux=True)(w1)
    return loss, std0, stds, g[blocks // 2]


def bjorck_gradients(x, y, *, bn: bool, key, blocks: int = 25, width: int = 64) -> dict:
    """Bjorck et al.'s Figure 2 at CPU scale: dL/dW1 of the middle block of a residual MLP at init.

    Blocks h <- h + W2 relu([BN](W1 h)), He-normal weights, input layer to
    `width` units, linear 10-way head, one batch (x, y) (standardize x first).
    Returns {"grad": dL/dW1 of block blocks//2 (flat), "loss", "act_std":
    std of h after the input layer and after every block}.

    Used in notebooks/03_init.ipynb.
    """
    x, y = _check_xy(x, y)
    if blocks < 2:
        raise ValueError(f"`blocks` must be >= 2, got {blocks}")
    loss, std0, stds, g = _bjorck(key, x, y, bn=bool(bn), blocks=int(blocks), width=int(width))
    return {"grad": np.asarray(g).ravel(), "loss": float(loss),
            "act_std": np.concatenate([[float(std0)], np.asarray(stds)])}


def excess_kurtosis(values) -> float:
    """E[(v - mean)^4] / var^2 - 3: 0 for a Gaussian, large for heavy tails.

    Used in notebooks/03_init.ipynb.
    """
    v = np.asarray(values, np.float64).ravel()
    v = v - v.mean()
    return float(np.mean(v ** 4) / np.mean(v ** 2) ** 2 - 3.0)


def init_scale_sweep(data, scales, *, bn: bool, seeds=(0, 1, 2), num_steps: int = 500,
                     lr: float = 0.01, sgd_momentum: float = 0.9, hidden=(50,) * 7,
                     activation: str = "relu", key=None) -> dict:
    """CS231n's sweep: accuracy after a short training for every weight std, in ONE `fit_many` call.

    Network (784, *hidden, 10), Gaussian weights of std `scales[i]` in every
    layer, BN before each ReLU if `bn`; every scale is trained once per seed.
    Returns {"scales", "test_acc", "train_acc"} with accuracies of shape
    (len(scales), len(seeds)) and their seed medians "test_median", "train_median".

    Used in notebooks/03_init.ipynb.
    """
    scales = np.asarray(scales, np.float32)
    if scales.ndim != 1 or scales.size < 1 or not np.all(scales > 0):
        raise ValueError(f"`scales` must be a 1-D array of positive stds, got {scales!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    net = MLP((data[0].shape[1], *hidden, 10), activation=activation,
              bn="before" if bn else None, init="gaussian", init_std=1.0)
    k, s = scales.size, len(seeds)
    res = _train.fit_many(net, data, key=jax.random.PRNGKey(0) if key is None else key, lr=lr,
                          num_steps=num_steps, sgd_momentum=sgd_momentum,
                          init_scale=jnp.asarray(np.repeat(scales, s)),
                          seeds=np.tile(seeds, k), eval_every=num_steps)
    test = np.nan_to_num(np.asarray(res.test_acc[:, -1]).reshape(k, s))
    train = np.nan_to_num(np.asarray(res.train_acc[:, -1]).reshape(k, s))
    return {"scales": scales, "test_acc": test, "train_acc": train,
            "test_median": np.median(test, 1), "train_median": np.median(train, 1)}


# Exercise 3: three layer-20 histograms of a tanh network. The text lists the inits in this
# order; the letters get them in an order shuffled with an explicit seed (QUIZ_SEED).
QUIZ_INITS = (("xavier", 1.0), ("gaussian", 0.01), ("gaussian", 1.0))
QUIZ_SEED = 0
QUIZ = {letter: QUIZ_INITS[i]
        for letter, i in zip("ABC", np.random.default_rng(QUIZ_SEED).permutation(3), strict=True)}
QUIZ_LABELS = {"xavier": "Xavier", "small": "Gaussian std 0.01", "large": "Gaussian std 1"}


def quiz_inputs(x, y) -> dict:
    """{letter: z of layer 20 of a tanh net} for the histogram-reading exercise.

    Used in notebooks/03_init.ipynb.
    """
    return {k: layer_stats(x, y, activation="tanh", init=init, std=std, depth=20)["z"]
            for k, (init, std) in QUIZ.items()}


@partial(jax.jit, static_argnames=("net", "num_steps"))
def _bn_scale_runs(keys, idx, lr_hidden, lr_out, out_std, x_train, y_train, x_test, y_test, *,
                   net, num_steps):
    def one(key, lr_hidden, lr_out, out_std):
        params, state = net.init_params(key, 1.0)
        # the output layer: its own std (the hidden layers keep the net's std)
        last = dict(params[-1])
        last["W"] = last["W"] / net.init_std * out_std
        params = [*params[:-1], last]
        velocity = jax.tree.map(jnp.zeros_like, params)
        # hidden weights (scale-invariant under BN) get lr_hidden; gamma, beta and the output
        # layer keep lr_out
        rates = [{k: (lr_hidden if k == "W" else lr_out) for k in p} for p in params[:-1]]
        rates.append({k: lr_out for k in params[-1]})
        grad_fn = jax.value_and_grad(partial(_train._loss, net), has_aux=True)

        def step(carry, batch):
            params, state, velocity = carry
            (loss, state), grads = grad_fn(params, state, x_train[batch], y_train[batch])
            velocity = jax.tree.map(lambda v, g: 0.9 * v + g, velocity, grads)
            params = jax.tree.map(lambda p, r, v: p - r * v, params, rates, velocity)
            return (params, state, velocity), loss

        (params, state, _), _ = jax.lax.scan(step, (params, state, velocity), idx)
        return _train._evaluate(net, params, state, x_test, y_test, 500)

    return jax.vmap(one)(keys, lr_hidden, lr_out, out_std)


def bn_scale_variants(data, scale: float, variants: dict, *, seeds=(0, 1, 2), num_steps: int = 500,
                      lr: float = 0.01, hidden=(50,) * 7) -> dict:
    """Test accuracy of the init-scale sweep's BN network at one large weight std, with remedies.

    `variants` maps a name to (hidden_lr, out_std): the learning rate of the hidden layers'
    weight matrices (each followed by BN, so scale-invariant) and the weight std of the linear
    output layer; BN's gamma and beta and the output layer always learn with `lr`, the hidden
    weights are drawn with std `scale`. SGD with
    momentum 0.9, batches of 60, as in `init_scale_sweep`; every (variant, seed) pair is trained
    in one vmapped computation. Returns {name: test accuracies, one per seed}.

    Used in notebooks/03_init.ipynb.
    """
    if not scale > 0:
        raise ValueError(f"`scale` must be > 0, got {scale}")
    if not variants:
        raise ValueError("`variants` must name at least one (hidden_lr, out_std) pair")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    x_train, y_train, x_test, y_test = _train._check_data(data)
    net = MLP((x_train.shape[1], *hidden, 10), activation="relu", bn="before", init="gaussian",
              init_std=float(scale))
    names = list(variants)
    k, s = len(names), len(seeds)
    rates = np.array([variants[n][0] for n in names], np.float32)
    outs = np.array([variants[n][1] for n in names], np.float32)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(np.tile(seeds, k)))
    idx = _train.batch_indices(jax.random.PRNGKey(0), x_train.shape[0], 60, num_steps)
    acc = _bn_scale_runs(keys, idx, jnp.asarray(np.repeat(rates, s)),
                         jnp.full(k * s, lr, jnp.float32), jnp.asarray(np.repeat(outs, s)),
                         x_train, y_train, x_test, y_test, net=net, num_steps=num_steps)
    acc = np.asarray(acc).reshape(k, s)
    return {n: acc[i] for i, n in enumerate(names)}


@partial(jax.jit, static_argnames=("depth", "width"))
def _relu_variances(keys, s_first, s_hidden, x, *, depth, width):
    def one(key, s1, s):
        k0, k1 = jax.random.split(key)
        z = x @ (jax.random.normal(k0, (x.shape[1], width)) * s1)

        def layer(z, k):
            z = jax.nn.relu(z) @ (jax.random.normal(k, (width, width)) * s)
            return z, _std(z, (0, 1)) ** 2

        _, rest = jax.lax.scan(layer, z, jax.random.split(k1, depth - 1))
        return jnp.concatenate([(_std(z, (0, 1)) ** 2)[None], rest])

    return jax.vmap(one)(keys, s_first, s_hidden)


def variance_runs(x, *, inits: dict, seeds=(0, 1, 2, 3, 4), depth: int = 30,
                  width: int = 256) -> dict:
    """Measured Var[z] per layer of independent plain ReLU networks (no biases), and the theory.

    `inits` maps a name to (init, std) as in `predicted_variance`; init number i and seed s
    draw their weights from key fold_in(PRNGKey(s), i), so no two networks share random
    numbers. All networks run in one vmapped forward pass. Returns {name: {"measured":
    (len(seeds), depth), "predicted": (depth,)}}.

    Used in notebooks/03_init.ipynb.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {x.shape}")
    if depth < 1:
        raise ValueError(f"`depth` must be >= 1, got {depth}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    names = list(inits)
    keys, s1, s = [], [], []
    for i, name in enumerate(names):
        init, std = inits[name]
        _check_choice("init", init, INITS)
        for seed in seeds:
            keys.append(jax.random.fold_in(jax.random.PRNGKey(seed), i))
            s1.append(init_std(init, x.shape[1], width, std))
            s.append(init_std(init, width, width, std))
    out = np.asarray(_relu_variances(jnp.stack(keys), jnp.asarray(s1, jnp.float32),
                                     jnp.asarray(s, jnp.float32), jnp.asarray(x), depth=depth,
                                     width=width), np.float64).reshape(len(names), len(seeds), -1)
    return {name: {"measured": out[i],
                   "predicted": predicted_variance(x, init=inits[name][0], std=inits[name][1],
                                                   depth=depth, width=width)}
            for i, name in enumerate(names)}
