"""Checks for the BN forward and backward exercises (float64, shifted inputs, random gamma/beta).

Used in notebooks/00_start_here.ipynb and notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

import jax
import numpy as np

from .. import batchnorm as _bn
from ._core import Verdict, failed, rel_error, run_student, verdict


def _case(seed: int, shape=(16, 5), feature_axis=-1):
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal(shape) + 12.0  # shifted, so a missing mean cannot hide
    c = shape[feature_axis]
    gamma = rng.uniform(0.5, 2.0, c)
    beta = rng.standard_normal(c)
    dy = rng.standard_normal(shape)
    return x, gamma, beta, dy


def _forward_hint(y, x, gamma, beta):
    y = np.asarray(y, dtype=np.float64)
    if y.shape != x.shape:
        return f"output shape {y.shape}, expected {x.shape}"
    ref_axis1 = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    if np.allclose(y, gamma * ref_axis1 + beta, atol=1e-6):
        return "you normalized each example (axis=1); BN averages over the batch, axis=0"
    if np.allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), atol=1e-6):
        return "gamma and beta are missing: y = gamma * x_hat + beta"
    if np.allclose(y, gamma * (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5) + beta, atol=1e-6):
        return "use the biased variance (divide by m, not m-1) in training mode"
    if np.allclose(y, gamma * (x - x.mean(0)) / (x.std(0) + 1e-5) + beta, atol=1e-4):
        return "eps goes inside the square root: sqrt(var + eps)"
    return "compare mean, var, x_hat and y one at a time with a tiny batch"


def check_batch_norm_forward(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, gamma, beta) -> y against `bn_helpers.batch_norm` on (N, D) data.

    Used in notebooks/00_start_here.ipynb and notebooks/04_bn_math.ipynb.
    """
    name = "batch_norm forward"
    with jax.enable_x64(True):
        x, gamma, beta, _ = _case(0)
        y = run_student(name, fn, x, gamma, beta)
        if y is None:
            return failed(name)
        ref = np.asarray(_bn.batch_norm(x, gamma, beta, eps=eps))
        if np.shape(y) != ref.shape:
            return verdict(name, np.inf, hint=f"output shape {np.shape(y)}, expected {ref.shape}")
        err = rel_error(y, ref)
        return verdict(name, err, tol=1e-7, hint=_forward_hint(y, x, gamma, beta))


def check_batch_norm_backward(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(dy, x, gamma) -> (dx, dgamma, dbeta) against autodiff (`jax.vjp`) in float64.

    Used in notebooks/04_bn_math.ipynb.
    """
    name = "batch_norm backward"
    with jax.enable_x64(True):
        x, gamma, beta, dy = _case(1)
        out = run_student(name, fn, dy, x, gamma)
        if out is None:
            return failed(name)
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            return verdict(name, np.inf, hint="return a tuple (dx, dgamma, dbeta)")
        _, vjp = jax.vjp(lambda a, g, b: _bn.batch_norm(a, g, b, eps=eps), x, gamma, beta)
        refs = vjp(dy)
        errs = {}
        for label, got, ref in zip(("dx", "dgamma", "dbeta"), out, refs):
            if np.shape(got) != np.shape(ref):
                return verdict(name, np.inf, hint=f"{label} has shape {np.shape(got)}, "
                                                  f"expected {np.shape(ref)}")
            errs[label] = rel_error(got, ref)
        worst = max(errs, key=errs.get)
        hints = {
            "dx": "dx has three paths: through x_hat directly, through the mean and through "
                  "the variance; dx should sum to 0 over the batch",
            "dgamma": "dgamma = sum over the batch of dy * x_hat",
            "dbeta": "dbeta = sum over the batch of dy",
        }
        return verdict(name, errs[worst], tol=1e-7,
                       what=f"max rel error ({worst})", hint=hints[worst])
