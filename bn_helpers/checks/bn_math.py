"""Checks for the BN forward and backward exercises (float64, shifted inputs, random gamma/beta).

Used in notebooks/00_start_here.ipynb and notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

import jax
import numpy as np

from .. import batchnorm as _bn
from ._core import Verdict, compare_output, failed, rel_error, run_student, verdict


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
        return compare_output(name, y, _bn.batch_norm(x, gamma, beta, eps=eps),
                              lambda got: _forward_hint(got, x, gamma, beta))


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


def _conv_case(seed: int, layout: str):
    """A shifted NHWC or NCHW batch whose channels have very different means and scales."""
    rng = np.random.default_rng(seed)
    n, h, w, c = 4, 5, 6, 3
    x = rng.standard_normal((n, h, w, c)) * (1.0 + np.arange(c)) + 10.0 * np.arange(c) + 5.0
    x = x + rng.standard_normal((1, h, 1, 1))  # rows differ a little, so per-row statistics show
    gamma = rng.uniform(0.5, 2.0, c)
    beta = rng.standard_normal(c)
    if layout == "NCHW":
        x = np.transpose(x, (0, 3, 1, 2))
    return x, gamma, beta


def _conv_hint(y, x, gamma, beta, channel_axis, eps):
    """Name the likely mistake by comparing with the usual wrong versions."""
    shape = [1] * 4
    shape[channel_axis] = -1
    g, b = gamma.reshape(shape), beta.reshape(shape)

    def norm(axes, ddof=0):
        m = x.mean(axis=axes, keepdims=True)
        return g * (x - m) / np.sqrt(x.var(axis=axes, keepdims=True, ddof=ddof) + eps) + b

    if channel_axis == 3 and np.allclose(y, norm((0, 2, 3)), atol=1e-6):
        return ("on NHWC data you averaged over (0, 2, 3), NCHW's axes: that gives one mean per "
                "image row; average over (0, 1, 2), every axis but the channel's")
    if np.allclose(y, norm((0,)), atol=1e-6):
        return ("you averaged over the batch axis only (one mean per pixel); a conv channel "
                "shares its statistics over N, H and W")
    others = tuple(i for i in range(4) if i != channel_axis)
    if np.allclose(y, norm(others, ddof=1), atol=1e-6):
        return "use the biased variance (divide by N*H*W, not N*H*W - 1)"
    return (f"for channel_axis={channel_axis}, average over axes {others} and reshape gamma and "
            "beta so they broadcast along the channel axis")


def check_batch_norm_conv(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, gamma, beta, channel_axis) -> y, BN with per-channel statistics over
    (N, H, W), on NHWC (channel_axis=3) and NCHW (channel_axis=1) data in float64.

    The value reported is the worse of the two layouts' relative errors.

    Used in notebooks/04_bn_math.ipynb.
    """
    name = "batch_norm conv (NHWC and NCHW)"
    with jax.enable_x64(True):
        errs, hints = {}, {}
        for layout, axis in (("NHWC", 3), ("NCHW", 1)):
            x, gamma, beta = _conv_case(2, layout)
            y = run_student(name, fn, x, gamma, beta, axis)
            if y is None:
                return failed(name)
            if np.shape(y) != x.shape:
                return verdict(name, np.inf, what=f"{layout} max rel error",
                               hint=f"{layout} output has shape {np.shape(y)}, expected {x.shape}")
            ref = np.asarray(_bn.batch_norm(x, gamma, beta, eps=eps, feature_axis=axis))
            errs[layout] = rel_error(y, ref)
            hints[layout] = _conv_hint(np.asarray(y, dtype=np.float64), x, gamma, beta, axis, eps)
        worst = max(errs, key=errs.get)
        return verdict(name, errs[worst], tol=1e-7, what=f"max rel error ({worst})",
                       hint=hints[worst])
