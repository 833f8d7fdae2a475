"""Deep networks at initialization, and what BN changes: the compute behind notebook 03.

Every network is a `bn_helpers.MLP` (the explorer's slider has its own fixed-shape copy in
`bn_helpers.init_explorer`, re-exported here) and every training run goes through `bnh.fit_many`;
BN is the core's. This module adds what the experiments measure: per-layer statistics and
gradients at initialization (`network_stats`, `init_stats`), the variance that Glorot's and He's
argument predicts (`predicted_variance`, `variance_runs`), the update-to-data ratio as a
per-step `record` hook (`update_ratio`), Bjorck et al.'s residual network (`bjorck_gradients`),
and a view of an MLP whose BN parameters have their own learning rate (`SplitBN`). Figures are in
`bn_helpers.figures.init`.

Used in notebooks/03_init.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import compat as _compat
from . import init_explorer as _explorer
from .init_explorer import (ACTIVATIONS, EPS, INITS, MAX_DEPTH, SATURATION_SLOPE,  # noqa: F401
                            WIDTH, _bn_norm, check_choice, check_xy, layer_stats, relative_slope,
                            robust_std)
from .mlp import ACTIVATIONS as _ACT_FUNCS
from .mlp import MLP, init_std
from .train import cross_entropy

__all__ = ["ACTIVATIONS", "INITS", "MAX_DEPTH", "WIDTH", "SATURATION_SLOPE", "layer_stats",
           "network_stats", "init_stats", "predicted_variance", "variance_runs", "update_ratio",
           "standardize", "bjorck_gradients", "excess_kurtosis", "SplitBN", "QUIZ", "QUIZ_INITS",
           "QUIZ_SEED", "quiz_inputs"]


def _check_net(net):
    if not isinstance(net, MLP):
        raise TypeError(f"`net` must be a bn_helpers.MLP, got {type(net).__name__}")
    if net.bn not in (None, "before") or net.activation not in ACTIVATIONS:
        raise ValueError(f"`net` must have bn None or 'before' and an activation in {ACTIVATIONS}, "
                         f"got bn={net.bn!r}, activation={net.activation!r}")


def network_stats(net: MLP, params, state, x, y) -> dict:
    """Per-hidden-layer statistics of `net` (bn None or "before") on one batch in training mode.

    z is the input to the nonlinearity (after BN, if any), h its output. The gradient dL/dz of
    the cross-entropy comes from the chain rule through the next layer: every layer gets a
    per-example bias of zeros (added before its BN), whose gradient is dL/d(x W) for every
    example; then dL/dz_l = f'(z_l) * (dL/d(h_l W_{l+1}) @ W_{l+1}^T). Traceable. Keys as in
    `layer_stats`: per layer "z_std", "h_std", "saturated", "dead", "grad_z_std"; for the last
    hidden layer "z", "h", "grad_z"; and "loss".

    Used in notebooks/03_init.ipynb.
    """
    m = x.shape[0]
    taps = [jnp.zeros((m, p["W"].shape[1]), x.dtype) for p in params]

    def loss_fn(taps):
        tapped = [dict(p, b=p.get("b", 0.0) + t) for p, t in zip(params, taps, strict=True)]
        logits, _, hidden = net.apply(tapped, state, x, train=True, return_hidden=True)
        return cross_entropy(logits, y), hidden

    (loss, hidden), g_taps = jax.value_and_grad(loss_fn, has_aux=True)(taps)
    act = _ACT_FUNCS[net.activation]
    zs = jnp.stack([h["pre"] for h in hidden])
    hs = jnp.stack([h["post"] for h in hidden])
    g_z = jnp.stack([jax.jvp(act, (h["pre"],), (jnp.ones_like(h["pre"]),))[1]
                     * (g_taps[i + 1] @ params[i + 1]["W"].T) for i, h in enumerate(hidden)])
    return {"loss": loss, "z_std": robust_std(zs, (1, 2)), "h_std": robust_std(hs, (1, 2)),
            "saturated": jnp.mean(relative_slope(net.activation, zs) < SATURATION_SLOPE, (1, 2)),
            "dead": jnp.mean(jnp.all(zs <= 0, axis=1), axis=1),
            "grad_z_std": robust_std(g_z, (1, 2)), "z": zs[-1], "h": hs[-1], "grad_z": g_z[-1]}


def _explorer_shaped(net: MLP) -> bool:
    """True if `net` at init is the explorer's network: 64-unit hidden layers, <= 50 of them."""
    return (set(net.sizes[1:-1]) == {WIDTH} and net.num_hidden <= MAX_DEPTH
            and net.sizes[-1] == 10 and net.eps == EPS)


def _explorer_stats(net: MLP, params, x, y) -> dict:
    """`network_stats` of a freshly initialized `net` (biases 0, gamma 1, beta 0) through the
    explorer's compiled program: its weights go in as they are, the layers past its depth are
    switched off. Same numbers (tests/test_init.py), one compile for every such network."""
    depth = net.num_hidden
    pad = jnp.zeros((MAX_DEPTH - depth, WIDTH, WIDTH))
    ws = jnp.concatenate([jnp.stack([p["W"] for p in params[1:depth]] or [pad[:0]]).reshape(
        -1, WIDTH, WIDTH), pad])
    raw = (params[0]["W"], ws, params[depth]["W"])
    out = _explorer._layer_stats(raw, x @ raw[0], x.shape[1], y, ACTIVATIONS.index(net.activation),
                                 0, jnp.float32(1.0), net.bn == "before", depth,
                                 max_depth=MAX_DEPTH, width=WIDTH)
    per_layer = ("z_std", "h_std", "saturated", "dead", "grad_z_std")
    return {k: (v[:depth] if k in per_layer else v) for k, v in out.items()}


_network_stats_jit = jax.jit(network_stats, static_argnums=0)


def init_stats(net: MLP, x, y, *, seeds=(0, 1, 2), scale: float = 1.0) -> dict:
    """`network_stats` of `net` freshly initialized with each seed (weights x `scale`).

    A network of the explorer's shape (hidden layers of 64 units, at most 50) runs through the
    explorer's compiled program, which gives the same numbers at init and compiles once for every
    depth, activation and init; any other network is compiled on its own. Returns numpy arrays
    with a leading seed axis.

    Used in notebooks/03_init.ipynb.
    """
    _check_net(net)
    x, y = check_xy(x, y)
    if x.shape[1] != net.sizes[0]:
        raise ValueError(f"`x` must have shape (batch, {net.sizes[0]}), got {tuple(x.shape)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    fast = _explorer_shaped(net)
    runs = []
    for s in seeds:
        params, state = net.init_params(jax.random.PRNGKey(s), scale)
        runs.append(_explorer_stats(net, params, x, y) if fast
                    else _network_stats_jit(net, params, state, x, y))
    runs = jax.device_get(runs)
    return {k: np.stack([np.asarray(r[k]) for r in runs]) for k in runs[0]}


def predicted_variance(x, *, init: str, std: float = 0.01, depth: int, width: int,
                       activation: str = "relu") -> np.ndarray:
    """Variance of z in layers 1..depth predicted by Glorot's and He's argument.

    Layer 1: Var[z] = s^2 * mean ||x||^2. Each later layer multiplies it by
    c * width * s^2, with c = 1/2 for ReLU (E[relu(z)^2] = Var[z] / 2) and
    c = 1 for a linear (or tanh near 0) network: He's s^2 = 2/fan_in makes the
    ReLU factor 1, Glorot's 2/(fan_in+fan_out) makes it 1/2.

    Used in notebooks/03_init.ipynb.
    """
    check_choice("init", init, INITS)
    check_choice("activation", activation, ("relu", "linear", "tanh"))
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


def _z_variances(net, keys, x):
    def one(key):
        params, state = net.init_params(key)
        _, _, hidden = net.apply(params, state, x, train=False, return_hidden=True)
        return jnp.stack([robust_std(h["pre"], (0, 1)) ** 2 for h in hidden])

    return np.asarray(jax.vmap(one)(keys), np.float64)


def variance_runs(nets: dict, x, *, seeds=(0, 1, 2, 3, 4)) -> dict:
    """Measured Var[z] per hidden layer of independent plain ReLU MLPs at init, and the theory.

    `nets` maps a name to a `bnh.MLP` (relu, no BN; biases start at 0); network number i with
    seed s draws its weights from key fold_in(PRNGKey(s), i), so no two networks share random
    numbers. Forward passes only, op by op. Returns {name: {"measured": (len(seeds), depth),
    "predicted": (depth,)}} with `predicted_variance` for the net's init, width and depth.

    Used in notebooks/03_init.ipynb.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {tuple(x.shape)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    out = {}
    for i, (name, net) in enumerate(nets.items()):
        _check_net(net)
        if net.activation != "relu" or net.bn is not None or net.num_hidden < 1:
            raise ValueError(f"`nets`: {name!r} must be a plain ReLU MLP (bn=None)")
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), i) for s in seeds])
        out[name] = {"measured": _z_variances(net, keys, x),
                     "predicted": predicted_variance(x, init=net.init, std=net.init_std,
                                                     depth=net.num_hidden, width=net.sizes[1])}
    return out


def update_ratio(params, state, grads, xb, yb):
    """`record` hook for `bnh.fit`: std(dL/dW) / std(W) of every weight matrix at this step.

    Times the learning rate it is Karpathy's update-to-data ratio std(lr * dL/dW) / std(W).

    Used in notebooks/03_init.ipynb.
    """
    return jnp.stack([jnp.std(g["W"]) / jnp.std(p["W"]) for g, p in zip(grads, params, strict=True)])


def standardize(x):
    """Subtract each pixel's mean over the batch, divide by the overall std.

    Used in notebooks/03_init.ipynb.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (batch, features), got {x.shape}")
    x = x - x.mean(0)
    return x / max(float(x.std()), 1e-8)


@partial(jax.jit, static_argnames=("blocks", "width"))
def _bjorck(key, x, y, bn, *, blocks, width):
    k_in, k1, k2, k_out = jax.random.split(key, 4)
    w_in = _compat.normal(k_in, (x.shape[1], width)) * jnp.sqrt(2.0 / x.shape[1])
    w1 = _compat.normal(k1, (blocks, width, width)) * jnp.sqrt(2.0 / width)
    w2 = _compat.normal(k2, (blocks, width, width)) * jnp.sqrt(2.0 / width)
    w_out = _compat.normal(k_out, (width, 10)) * jnp.sqrt(2.0 / width)

    def loss_fn(w1):
        def block(h, ws):
            z = h @ ws[0]
            h = h + jax.nn.relu(jax.lax.cond(bn, _bn_norm, lambda v: v, z)) @ ws[1]
            return h, jnp.std(h)

        h, stds = jax.lax.scan(block, x @ w_in, (w1, w2))
        return cross_entropy(h @ w_out, y), (jnp.std(x @ w_in), stds)

    (loss, (std0, stds)), g = jax.value_and_grad(loss_fn, has_aux=True)(w1)
    return loss, std0, stds, g[blocks // 2]


def bjorck_gradients(x, y, *, bn: bool, key, blocks: int = 25, width: int = 64) -> dict:
    """Bjorck et al.'s Figure 2 at CPU scale: dL/dW1 of the middle block of a residual MLP at init.

    Blocks h <- h + W2 relu([BN](W1 h)) (BN through the core, gamma 1, beta 0), He-normal
    weights, input layer to `width` units, linear 10-way head, one batch (x, y) (standardize x
    first). `bnh.MLP` has no skip connections, so the blocks are written out here. Returns
    {"grad": dL/dW1 of block blocks//2 (flat), "loss", "act_std": std of h after the input layer
    and after every block}.

    Used in notebooks/03_init.ipynb.
    """
    x, y = check_xy(x, y)
    if blocks < 2:
        raise ValueError(f"`blocks` must be >= 2, got {blocks}")
    # one compiled program with and without BN (a traced switch)
    loss, std0, stds, g = _bjorck(key, x, y, bool(bn), blocks=int(blocks), width=int(width))
    return {"grad": np.asarray(g).ravel(), "loss": float(loss),
            "act_std": np.concatenate([[float(std0)], np.asarray(stds)])}


def excess_kurtosis(values) -> float:
    """E[(v - mean)^4] / var^2 - 3: 0 for a Gaussian, large for heavy tails.

    Used in notebooks/03_init.ipynb.
    """
    v = np.asarray(values, np.float64).ravel()
    v = v - v.mean()
    return float(np.mean(v ** 4) / np.mean(v ** 2) ** 2 - 3.0)


@dataclass(frozen=True)
class SplitBN:
    """An MLP with BN before each nonlinearity, its parameters laid out for per-entry rates.

    params = [W of every hidden layer] + [gamma, beta of every hidden layer] + [output layer], so
    `bnh.fit(..., lr=[...])` with one rate per entry can give the hidden weights (which BN makes
    scale-invariant) another rate than BN's gamma, beta and the unnormalized output layer.
    `init_params(key, scale)` draws `net`'s weights and multiplies only the output layer's by
    `scale`. The forward pass is `net.apply` on the reassembled layers.

    Used in notebooks/03_init.ipynb.
    """

    net: MLP

    def __post_init__(self):
        if not isinstance(self.net, MLP) or self.net.bn != "before":
            raise ValueError("`net` must be a bn_helpers.MLP with bn='before'")

    @property
    def input_shape(self):
        return self.net.input_shape

    @property
    def needs_batch(self):
        return True

    @property
    def num_entries(self):
        return 2 * self.net.num_hidden + 1

    def init_params(self, key, scale=1.0):
        params, state = self.net.init_params(key, 1.0)
        n = self.net.num_hidden
        head = dict(params[n], W=params[n]["W"] * scale)
        return ([{"W": p["W"]} for p in params[:n]]
                + [{"gamma": p["gamma"], "beta": p["beta"]} for p in params[:n]] + [head]), state

    def apply(self, params, state, x, *, train: bool, return_hidden: bool = False, key=None):
        n = self.net.num_hidden
        layers = [dict(w, **b) for w, b in zip(params[:n], params[n:2 * n], strict=True)]
        return self.net.apply(layers + [params[2 * n]], state, x, train=train,
                              return_hidden=return_hidden, key=key)


# Exercise 3: three layer-20 histograms of a tanh network. The text lists the inits in this
# order; the letters get them in an order shuffled with an explicit seed (QUIZ_SEED).
QUIZ_INITS = (("xavier", 1.0), ("gaussian", 0.01), ("gaussian", 1.0))
QUIZ_SEED = 0
QUIZ = {letter: QUIZ_INITS[i]
        for letter, i in zip("ABC", np.random.default_rng(QUIZ_SEED).permutation(3), strict=True)}


def quiz_inputs(x, y) -> dict:
    """{letter: z of layer 20 of a 20 x 64 tanh MLP (seed 0)} for the histogram-reading exercise.

    Used in notebooks/03_init.ipynb.
    """
    return {k: init_stats(MLP((784,) + (WIDTH,) * 20 + (10,), activation="tanh", init=init,
                              init_std=std), x, y, seeds=(0,))["z"][0]
            for k, (init, std) in QUIZ.items()}
