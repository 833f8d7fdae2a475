"""Checks for the zig-zag exercises: Hessian eigenvalues of a two-weight loss, the largest stable
learning rate.

Used in notebooks/02_zigzag.ipynb.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .. import zigzag as _zz
from ._core import Verdict, failed, rel_error, run_student, verdict


def _cases():
    """(loss function of w, point w) pairs: a quadratic and a logistic loss on shifted data."""
    x, t = _zz.make_inputs(4.0, 1.5, "raw")
    out = []
    for loss, w in (("quadratic", jnp.array([0.3, -0.2])), ("logistic", jnp.array([0.5, -0.4]))):
        out.append((lambda v, loss=loss: _zz.loss_value(v, x, t, loss), w))
    return out


def check_hessian_eigs(fn) -> Verdict:
    """Check fn(loss_fn, w) -> the two eigenvalues of the Hessian of loss_fn at w, ascending,
    on a quadratic and a logistic loss of raw, shifted 2-D data.

    Used in notebooks/02_zigzag.ipynb.
    """
    name = "hessian eigenvalues"
    worst, hint = 0.0, ""
    for loss_fn, w in _cases():
        got = run_student(name, fn, loss_fn, w)
        if got is None:
            return failed(name)
        got = np.asarray(got, dtype=np.float64).ravel()
        h = np.asarray(jax.jit(jax.hessian(loss_fn))(w), dtype=np.float64)
        ref = np.linalg.eigvalsh(h)
        if got.shape != ref.shape:
            return verdict(name, np.inf, hint=f"return the 2 eigenvalues, got shape {got.shape}")
        err = rel_error(got, ref)
        if err > worst:
            worst = err
            if np.allclose(got, ref[::-1], rtol=1e-4):
                hint = "sort the eigenvalues in ascending order (jnp.linalg.eigvalsh does)"
            elif np.allclose(got, np.sort(np.diag(h)), rtol=1e-4):
                hint = "those are the diagonal entries; the eigenvalues need eigvalsh(H)"
            elif np.allclose(got, 2 * ref, rtol=1e-4) or np.allclose(got, ref / 2, rtol=1e-4):
                hint = "off by a factor 2: take the Hessian of loss_fn itself (jax.hessian)"
            else:
                g = np.asarray(jax.grad(loss_fn)(w), dtype=np.float64)
                if np.allclose(got, np.linalg.eigvalsh(np.outer(g, g)), rtol=1e-4, atol=1e-8):
                    hint = "that is the outer product of gradients; use jax.hessian(loss_fn)(w)"
                else:
                    hint = "H = jax.hessian(loss_fn)(w); return jnp.linalg.eigvalsh(H)"
    # float32 Hessians agree to about 1e-6
    return verdict(name, worst, tol=1e-5, close=1e-3, hint=hint)


def check_max_stable_lr(value, x, t, loss: str = "quadratic") -> Verdict:
    """Check a predicted largest stable learning rate (plain gradient descent) for the loss on
    (x, t), against 2 / lam_max of its Hessian at the minimum. `value` is a number or a
    function fn(x, t) returning it.

    Used in notebooks/02_zigzag.ipynb.
    """
    name = "largest stable learning rate"
    if callable(value):
        value = run_student(name, value, x, t)
        if value is None:
            return failed(name)
    numeric = (numbers.Real, np.floating, np.ndarray, jax.Array)
    if isinstance(value, bool) or not isinstance(value, numeric) or np.size(value) != 1:
        raise TypeError(f"`value` must be a number, got {type(value).__name__}")
    value = float(np.asarray(value).ravel()[0])
    if not math.isfinite(value) or value <= 0:
        return verdict(name, np.inf, what="rel error",
                       hint="a learning rate is a finite number > 0")
    info = _zz.readout(x, t, loss)
    ref = info["lr_max"]
    err = abs(value - ref) / ref
    hint = "eta < 2 / lam_max, with lam_max the largest Hessian eigenvalue at the minimum"
    if abs(value - info["lr_best"]) / info["lr_best"] < 0.02:
        hint = "1/lam_max is the best rate; the stability limit is twice as large"
    elif abs(value - 2 / info["lam_min"]) / (2 / info["lam_min"]) < 0.02:
        hint = "2/lam_min: the largest eigenvalue, not the smallest, sets the limit"
    elif abs(value - 1 / info["lam_min"]) / (1 / info["lam_min"]) < 0.02:
        hint = "use 2 / lam_max (the largest eigenvalue sets the limit)"
    return verdict(name, err, tol=1e-3, close=2e-2, what=f"predicted {value:.4g}, rel error",
                   hint=hint)
