"""The loss-surface zig-zag: two-weight losses, their Hessians, gradient descent with momentum.

A linear unit with two weights sees 2-D data (`bn_helpers.toydata.two_classes`)
as raw, standardized or whitened inputs; its quadratic (LMS) or logistic loss
is a bowl whose shape is the input covariance. Every descent is full-batch
`bn_helpers.train.sgd` (the course's one SGD loop) on the two weights, jitted
once with fixed shapes (`MAX_STEPS` for the explorer in `bn_helpers.figures.zigzag`).
LeCun's sign argument, BN placement and minibatch orders live in `zigzag_sgd`.

Used in notebooks/02_zigzag.ipynb.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import toydata, train
from .compat import enable_x64
from .zigzag_sgd import (lms_loss, next_layer_inputs, order_indices, per_example_gradients,
                         same_sign_fraction, sgd_path, sign_inputs, weights, whole_set_loss)

__all__ = ["LOSSES", "MODES", "MAX_STEPS", "make_inputs", "loss_value", "minimum", "hessian",
           "readout", "hessian_eigs", "max_stable_lr", "descend", "steps_to_converge",
           "bowl", "stop_at_blowup", "convergence_vs_kappa", "offset_table",
           # LeCun's sign argument, BN placement, minibatch order: from zigzag_sgd
           "same_sign_fraction", "sign_inputs", "per_example_gradients", "lms_loss", "weights",
           "sgd_path", "next_layer_inputs", "order_indices", "whole_set_loss"]

LOSSES = ("quadratic", "logistic")
MODES = ("raw", "standardized", "whitened")
MAX_STEPS = 150          # length of every descent scan (the steps slider truncates the drawing)
L2 = 1e-3                # weight decay of the logistic loss, so its minimum is finite
BLOWUP = 1e4             # a path this far from the minimum has diverged: it stops there
START = (-2.5, 1.0)      # start of every descent, relative to the minimum
WINDOW = 3.0             # the contour plot shows w - w* in [-WINDOW, WINDOW]^2
CORR, SEPARATION = 0.6, 2.0
LR_EXP_STEP, LR_EXP_MAX = 0.05, 1.5          # the learning-rate slider: notches 10^(-3 + 0.05 k)
LR_DEFAULT = round(10 ** -0.9, 4)            # 0.1259, a notch


def _positive(name, value, *, allow_zero=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value!r}")
    return float(value)


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return options.index(value)


# ---------------------------------------------------------------- data and losses
_BASE = {}


def _base(n: int, seed: int):
    """Two overlapping classes, correlated features, std 1 within a class (cached)."""
    if (n, seed) not in _BASE:
        x, y = toydata.two_classes(jax.random.PRNGKey(seed), n, separation=SEPARATION, corr=CORR)
        _BASE[(n, seed)] = (x, 2.0 * y.astype(jnp.float32) - 1.0)
    return _BASE[(n, seed)]


@jax.jit
def _transform(x, scale_ratio, offset, mode):
    raw = x * jnp.array([1.0, 1.0]).at[1].set(scale_ratio) + offset
    centred = raw - raw.mean(0)
    std = centred / centred.std(0)
    cov = centred.T @ centred / x.shape[0]
    evals, evecs = jnp.linalg.eigh(cov)
    zca = centred @ (evecs @ jnp.diag(evals ** -0.5) @ evecs.T)
    return jnp.stack([raw, std, zca])[mode]


def make_inputs(scale_ratio=1.0, offset=0.0, mode="raw", *, n: int = 200, seed: int = 0):
    """(x (n, 2), t (n,) in {-1, +1}): feature 1 scaled by scale_ratio, both shifted by offset,
    then used raw, standardized per feature, or ZCA-whitened (mode).

    Used in notebooks/02_zigzag.ipynb.
    """
    scale_ratio = _positive("scale_ratio", scale_ratio)
    if not (isinstance(offset, numbers.Real) and math.isfinite(offset)):
        raise ValueError(f"`offset` must be a finite number, got {offset!r}")
    m = _choice("mode", mode, MODES)
    x, t = _base(n, seed)
    return _transform(x, jnp.float32(scale_ratio), jnp.float32(offset), m), t


def _loss(kind: int, w, x, t):
    z = x @ w
    if kind == 0:
        return 0.5 * jnp.mean((t - z) ** 2)
    return jnp.mean(jax.nn.softplus(-t * z)) + 0.5 * L2 * jnp.sum(w ** 2)


def loss_value(w, x, t, loss="quadratic"):
    """Quadratic E = mean((t - x.w)^2)/2 or logistic mean(log(1 + exp(-t x.w))) + L2/2 |w|^2.

    Used in notebooks/02_zigzag.ipynb.
    """
    return _loss(_choice("loss", loss, LOSSES), jnp.asarray(w, jnp.float32), x, t)


@partial(jax.jit, static_argnums=0)
def _minimum(kind, x, t):
    grad, hess = jax.grad(partial(_loss, kind)), jax.hessian(partial(_loss, kind))
    if kind == 0:
        return jnp.linalg.solve(hess(jnp.zeros(2), x, t), jnp.mean(x * t[:, None], 0))

    def newton(w, _):
        return w - jnp.linalg.solve(hess(w, x, t), grad(w, x, t)), None

    return jax.lax.scan(newton, jnp.zeros(2), None, length=40)[0]


def minimum(x, t, loss="quadratic"):
    """The weights w* minimizing the loss (exact for quadratic, 40 Newton steps for logistic).

    Used in notebooks/02_zigzag.ipynb.
    """
    return _minimum(_choice("loss", loss, LOSSES), x, t)


@partial(jax.jit, static_argnums=0)
def _hessian_eigs(kind, w, x, t):
    return jnp.linalg.eigvalsh(jax.hessian(partial(_loss, kind))(w, x, t))


def hessian(x, t, loss="quadratic", w=None):
    """The 2x2 Hessian of the loss at w (default: at the minimum), by `jax.hessian`.

    Used in notebooks/02_zigzag.ipynb.
    """
    kind = _choice("loss", loss, LOSSES)
    w = _minimum(kind, x, t) if w is None else jnp.asarray(w, jnp.float32)
    return jax.hessian(partial(_loss, kind))(w, x, t)


def _facts(lo: float, hi: float) -> dict:
    kappa = hi / lo
    return {"lam_min": lo, "lam_max": hi, "kappa": kappa, "lr_max": 2 / hi,
            "lr_best": 2 / (hi + lo), "contraction": (kappa - 1) / (kappa + 1),
            "lr_steep": 1 / hi}


def hessian_eigs(loss_fn, w):
    """Eigenvalues (ascending) of the Hessian of loss_fn, a function of two weights, at w.

    The reference answer of exercise 1 in notebooks/02_zigzag.ipynb.
    """
    return jnp.linalg.eigvalsh(jax.hessian(loss_fn)(jnp.asarray(w, jnp.float32)))


def max_stable_lr(x, t, loss="quadratic") -> float:
    """2/lam_max of the loss's Hessian at its minimum: the largest stable rate of plain GD.

    The reference answer of exercise 2 in notebooks/02_zigzag.ipynb.
    """
    return readout(x, t, loss)["lr_max"]


def readout(x, t, loss="quadratic") -> dict:
    """Hessian facts at the minimum: lam_min, lam_max, kappa; lr_max = 2/lam_max (stability
    limit); lr_best = 2/(lam_max + lam_min), the fixed step with the fastest worst-case
    convergence, at which every direction shrinks by contraction = (kappa - 1)/(kappa + 1) per
    step; lr_steep = 1/lam_max (fixes the steepest direction in one step).

    Used in notebooks/02_zigzag.ipynb.
    """
    kind = _choice("loss", loss, LOSSES)
    lo, hi = (float(v) for v in _hessian_eigs(kind, _minimum(kind, x, t), x, t))
    return _facts(lo, hi)


# ---------------------------------------------------------------- gradient descent
def bowl(x, t, loss="quadratic"):
    """The loss of (x, t) as `bn_helpers.train.sgd` wants it: (w, state, batch, key) -> (E(w),
    state); full-batch, so `batch` is None and the state passes through.

    Used in notebooks/02_zigzag.ipynb.
    """
    kind = _choice("loss", loss, LOSSES)
    return lambda w, state, batch, key: (_loss(kind, w, x, t), state)


def stop_at_blowup(path, w_star):
    """The path cut where it diverged: from the first point farther than BLOWUP from w* (or the
    last finite one) on, it stays there. Traceable.

    Used in notebooks/02_zigzag.ipynb.
    """
    i = jnp.arange(path.shape[0])
    far = jnp.linalg.norm(path - w_star, axis=1) >= BLOWUP
    broken = ~jnp.all(jnp.isfinite(path), axis=1)
    stop = jnp.minimum(jnp.min(jnp.where(far, i, i.size)), jnp.min(jnp.where(broken, i, i.size)) - 1)
    return path[jnp.minimum(i, stop)]


@partial(jax.jit, static_argnums=(0, 6))
def _descend(kind, x, t, w0, lr, momentum, num_steps, w_star):
    w, _, _, path = train.sgd(bowl(x, t, LOSSES[kind]), w0, None, lr=lr, num_steps=num_steps,
                              sgd_momentum=momentum, record=weights)
    path = stop_at_blowup(jnp.concatenate([path, w[None]]), w_star)
    return path, jax.vmap(lambda v: _loss(kind, v, x, t))(path)


def descend(x, t, *, lr, momentum=0.0, loss="quadratic", w0=None, num_steps: int = MAX_STEPS):
    """Full-batch gradient descent with heavy-ball momentum (v <- momentum v + g; w <- w - lr v)
    on `bn_helpers.train.sgd`, jitted.

    Returns (path (num_steps + 1, 2), loss at each point). w0 defaults to the minimum plus START.
    A path farther than BLOWUP from the minimum has diverged and stays there (`stop_at_blowup`).
    Used in notebooks/02_zigzag.ipynb.
    """
    kind = _choice("loss", loss, LOSSES)
    lr = _positive("lr", lr)
    if not (isinstance(momentum, numbers.Real) and 0 <= momentum < 1):
        raise ValueError(f"`momentum` must be in [0, 1), got {momentum!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1, got {num_steps!r}")
    w_star = _minimum(kind, x, t)
    w0 = w_star + jnp.asarray(START) if w0 is None else jnp.asarray(w0, jnp.float32)
    if w0.shape != (2,):
        raise ValueError(f"`w0` must hold two weights, got shape {w0.shape}")
    return _descend(kind, x, t, w0, jnp.float32(lr), jnp.float32(momentum), int(num_steps), w_star)


def _distance(params, state, grads, batch):
    return jnp.linalg.norm(params)


@partial(jax.jit, static_argnums=(3,))
@partial(jax.vmap, in_axes=(0, 0, 0, None, None))
def _steps_quadratic(kappa, lr, momentum, max_steps, tol):
    """Steps until |w - w*| <= tol |w0 - w*| on E = (w0^2 + w1^2 / kappa) / 2 from (1, 1)/sqrt2."""
    lam = jnp.stack([jnp.ones_like(kappa), 1.0 / kappa])

    def loss_fn(w, state, batch, key):
        return 0.5 * jnp.sum(lam * w ** 2), state

    w, _, _, dist = train.sgd(loss_fn, jnp.ones(2) / jnp.sqrt(2.0), None, lr=lr,
                              num_steps=max_steps, sgd_momentum=momentum, record=_distance)
    done = jnp.concatenate([dist, jnp.linalg.norm(w)[None]]) <= tol   # after 0 ... max_steps steps
    return jnp.where(done.any(), jnp.argmax(done), -1)


def steps_to_converge(kappa, *, lr=None, momentum=0.0, tol=1e-6, max_steps: int = 200_000):
    """Measured GD steps (float64) on a 2-D quadratic with eigenvalues 1 and 1/kappa, until
    |w - w*| <= tol |w0 - w*|; lr defaults to 1/lam_max = 1. Returns -1 if not within max_steps.
    kappa, lr and momentum may be 1-D arrays of one length (one run each).

    Used in notebooks/02_zigzag.ipynb.
    """
    kappa = np.asarray(kappa, dtype=float)
    if not np.all(np.isfinite(kappa)) or np.any(kappa <= 0) or kappa.ndim > 1:
        raise ValueError(f"`kappa` must be a number or 1-D array of numbers > 0, got {kappa!r}")
    lr = np.asarray(1.0 if lr is None else lr, dtype=float)
    if np.any(lr <= 0) or not np.all(np.isfinite(lr)):
        raise ValueError(f"`lr` must be > 0, got {lr!r}")
    momentum = np.asarray(momentum, dtype=float)
    if np.any(momentum < 0) or np.any(momentum >= 1):
        raise ValueError(f"`momentum` must be in [0, 1), got {momentum!r}")
    shape = np.broadcast_shapes(kappa.shape, lr.shape, momentum.shape)
    args = [np.broadcast_to(a, shape).reshape(-1) for a in (kappa, lr, momentum)]
    with enable_x64(True):
        out = np.asarray(_steps_quadratic(*(jnp.asarray(a) for a in args), int(max_steps), tol))
    return int(out[0]) if shape == () else out


def convergence_vs_kappa(kappas, tol=1e-6) -> dict:
    """Measured and theoretical steps to converge for each kappa, on eigenvalues 1 and 1/kappa:
    plain GD at LeCun's eta = 1/lam_max ("gd"; theory ln(1/tol) / -ln(1 - 1/kappa), about
    kappa ln(1/tol)), plain GD at the best fixed step 2/(lam_max + lam_min) ("gd_best"; theory
    ln(1/tol) / -ln((kappa - 1)/(kappa + 1)), about kappa ln(1/tol) / 2) and heavy ball with
    Polyak's tuned lr and momentum ("momentum"; theory ln(1/tol) / -ln((sqrt(k) - 1) / (sqrt(k) + 1)),
    about sqrt(k) ln(1/tol) / 2).

    Used in notebooks/02_zigzag.ipynb.
    """
    k = np.asarray(kappas, dtype=float)
    if k.ndim != 1 or k.size == 0 or np.any(k <= 1) or not np.all(np.isfinite(k)):
        raise ValueError(f"`kappas` must be a 1-D list of numbers > 1, got {kappas!r}")
    r = (np.sqrt(k) - 1) / (np.sqrt(k) + 1)
    max_steps = int(2 * k.max() * math.log(1 / tol)) + 100
    return {"kappa": k,
            "gd": steps_to_converge(k, tol=tol, max_steps=max_steps),
            "gd_theory": math.log(1 / tol) / -np.log(1 - 1 / k),
            "gd_best": steps_to_converge(k, lr=2 / (1 + 1 / k), tol=tol, max_steps=max_steps),
            "gd_best_theory": math.log(1 / tol) / -np.log((k - 1) / (k + 1)),
            "momentum": steps_to_converge(k, lr=4 / (1 + 1 / np.sqrt(k)) ** 2, momentum=r ** 2,
                                          tol=tol, max_steps=max_steps),
            "momentum_theory": math.log(1 / tol) / -np.log(r)}


def offset_table(scales, offsets, seeds=(0, 1, 2)) -> dict:
    """Quadratic-loss Hessian facts of raw inputs for every (data seed, scale ratio, offset):
    arrays "lam_min", "lam_max", "kappa", "lr_max" of shape (seeds, scales, offsets).

    Used in notebooks/02_zigzag.ipynb.
    """
    keys = ("lam_min", "lam_max", "kappa", "lr_max")
    out = {k: np.zeros((len(seeds), len(scales), len(offsets))) for k in keys}
    for i, seed in enumerate(seeds):
        for j, scale in enumerate(scales):
            for m, offset in enumerate(offsets):
                r = readout(*make_inputs(float(scale), float(offset), "raw", seed=int(seed)))
                for k in keys:
                    out[k][i, j, m] = r[k]
    return out
