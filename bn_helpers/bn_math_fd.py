"""Gradient checking of batch norm's backward pass: finite differences in two precisions, relative
errors (CS231n's element-wise one and a whole-vector one) and how to read them.

`bn_helpers.bn_math` re-exports everything here; notebooks call `bnh.bn_math.gradient_errors`.

Used in notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import batchnorm as _bn
from .checks._core import BANDS, float64_pair, rel_error
from .compat import enable_x64

__all__ = ["numerical_gradient", "gradient_errors", "fd_error_curve", "band", "cs231n_band",
           "vector_rel_error", "CS231N_BANDS", "FLOAT32_EPS"]

FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-7, the spacing of float32 near 1

# CS231n's notes (neural-networks-3, "Gradient checks") read a relative error as follows
CS231N_BANDS = ((1e-7, "you should be happy"),
                (1e-4, "too high unless the objective has kinks"),
                (1e-2, "should make you feel uncomfortable"),
                (np.inf, "the gradient is probably wrong"))


def _check_eps(eps):
    if not isinstance(eps, (int, float, np.floating)) or eps < 0:
        raise ValueError(f"`eps` must be a number >= 0, got {eps!r}")


def _check_fd_args(h, dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype}")
    if not np.isscalar(h) or not h > 0:
        raise ValueError(f"`h` must be a positive number, got {h!r}")
    return dtype


def _fd_program(f, shape, dtype):
    """One compiled program (x, h) -> centred differences of f at x for every entry."""
    n = int(np.prod(shape))

    @jax.jit
    def run(x, h):
        steps = (jnp.eye(n, dtype=dtype) * h).reshape((n, *shape))
        fv = jax.vmap(f)
        return (fv(x + steps) - fv(x - steps)) / (2 * h)

    return run


def numerical_gradient(f, x, *, h: float, dtype=np.float64):
    """Centred finite differences (f(x + h e_i) - f(x - h e_i)) / 2h for every entry of x.

    f maps an array shaped like x to a scalar; every evaluation runs in `dtype`
    (np.float32 or np.float64), in one vmapped batch. Returns a NumPy float64 array.

    Used in notebooks/04_bn_math.ipynb.
    """
    dtype = _check_fd_args(h, dtype)
    x = np.asarray(x, dtype=np.float64)
    with enable_x64(dtype == np.float64):
        run = _fd_program(f, x.shape, dtype)
        out = run(jnp.asarray(x, dtype=dtype), jnp.asarray(h, dtype=dtype))
        return np.asarray(out, dtype=np.float64).reshape(x.shape)


def vector_rel_error(a, b) -> float:
    """Whole-vector relative error ||a - b|| / ||a + b|| (0 if both are 0), beside CS231n's
    element-wise maximum: one tiny entry cannot dominate it.

    Used in notebooks/04_bn_math.ipynb.
    """
    a, b = float64_pair(a, b)
    if a is None:
        return float("inf")
    den = np.linalg.norm(a + b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else 0.0


def _measure(measure):
    if measure not in ("elementwise", "vector"):
        raise ValueError(f"`measure` must be 'elementwise' or 'vector', got {measure!r}")
    return rel_error if measure == "elementwise" else vector_rel_error


def _loss(dy, gamma, beta, eps, feature_axis):
    """x -> sum(dy * BN(x)): its gradient with respect to x is BN's dx for upstream dy."""
    # NumPy constants, so a float32 program gets float32 copies (jax < 0.5 mixed dtypes otherwise)
    dy, gamma, beta = (np.asarray(a, dtype=np.float64) for a in (dy, gamma, beta))
    return lambda x_: jnp.sum(dy.astype(x_.dtype) * _bn.batch_norm(
        x_, gamma.astype(x_.dtype), beta.astype(x_.dtype), eps=eps, feature_axis=feature_axis))


def gradient_errors(x, gamma, beta, dy, *, eps: float = 1e-5, h64: float = 1e-5,
                    h32: float = 1e-3, feature_axis: int = -1,
                    measure: str = "elementwise") -> dict:
    """Relative errors of four routes to dx against the float64 closed form, plus the closed form
    itself computed in float32.

    measure="elementwise": CS231n's max |a - b| / max(1e-8, |a| + |b|); "vector":
    ||a - b|| / ||a + b||. All in float64 except the two float32 rows. Keys: "staged (paper)",
    "jax.vjp", "finite differences, float64", "finite differences, float32",
    "closed form in float32".

    Used in notebooks/04_bn_math.ipynb.
    """
    from .bn_math import staged_backward

    _check_eps(eps)
    err = _measure(measure)
    with enable_x64(False):
        f32 = [jnp.asarray(np.asarray(a), jnp.float32) for a in (dy, x, gamma)]
        closed32 = np.asarray(_bn.batch_norm_backward(*f32, eps=eps, feature_axis=feature_axis)[0],
                              dtype=np.float64)
    with enable_x64(True):
        x = jnp.asarray(x, jnp.float64)
        gamma, beta, dy = (jnp.asarray(a, jnp.float64) for a in (gamma, beta, dy))
        closed, _, _ = _bn.batch_norm_backward(dy, x, gamma, eps=eps, feature_axis=feature_axis)
        staged = staged_backward(dy, x, gamma, eps=eps, feature_axis=feature_axis)["dx"]
        _, vjp = jax.vjp(lambda a: _bn.batch_norm(a, gamma, beta, eps=eps,
                                                  feature_axis=feature_axis), x)
        (auto,) = vjp(dy)
        f = _loss(dy, gamma, beta, eps, feature_axis)
        fd64 = numerical_gradient(f, x, h=h64, dtype=np.float64)
        fd32 = numerical_gradient(f, x, h=h32, dtype=np.float32)
        closed = np.asarray(closed)
        return {"staged (paper)": err(staged, closed), "jax.vjp": err(auto, closed),
                "finite differences, float64": err(fd64, closed),
                "finite differences, float32": err(fd32, closed),
                "closed form in float32": err(closed32, closed)}


def fd_error_curve(x, gamma, beta, dy, hs, *, dtype, eps: float = 1e-5,
                   feature_axis: int = -1, measure: str = "elementwise") -> np.ndarray:
    """Relative error of centred finite differences in `dtype` against the float64 closed form,
    one value per step size in `hs` (measure "elementwise", CS231n's, or "vector").

    Used in notebooks/04_bn_math.ipynb.
    """
    err = _measure(measure)
    hs = np.atleast_1d(np.asarray(hs, dtype=np.float64))
    if hs.ndim != 1 or not np.all(hs > 0):
        raise ValueError("`hs` must be a 1-D list of positive step sizes")
    with enable_x64(True):
        x = jnp.asarray(x, jnp.float64)
        gamma, beta, dy = (jnp.asarray(a, jnp.float64) for a in (gamma, beta, dy))
        closed = np.asarray(_bn.batch_norm_backward(dy, x, gamma, eps=eps,
                                                    feature_axis=feature_axis)[0])
        f = _loss(dy, gamma, beta, eps, feature_axis)
        dtype = _check_fd_args(1.0, dtype)
        x_np = np.asarray(x)
    with enable_x64(dtype == np.float64):
        run = _fd_program(f, x_np.shape, dtype)  # compiled once, reused for every h
        xs = jnp.asarray(x_np, dtype=dtype)
        return np.array([err(np.asarray(run(xs, jnp.asarray(h, dtype)), np.float64)
                             .reshape(x_np.shape), closed)
                         for h in hs])


def band(err: float) -> str:
    """CS231n's reading of a relative error: PASS (< 1e-7), CLOSE (< 1e-4) or FAIL.

    Used in notebooks/04_bn_math.ipynb.
    """
    return next((name for limit, name in BANDS if err <= limit), "FAIL")


def cs231n_band(err: float) -> str:
    """CS231n's own words for a relative error (their notes on gradient checks): above 1e-2
    "the gradient is probably wrong", 1e-4 to 1e-2 "uncomfortable", 1e-7 to 1e-4 "too high
    unless the objective has kinks", 1e-7 and less "happy".

    Used in notebooks/04_bn_math.ipynb.
    """
    return next((name for limit, name in CS231N_BANDS if err <= limit), CS231N_BANDS[-1][1])
