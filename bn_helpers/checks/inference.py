"""Checks for the inference exercises: the running-statistics update and folding BN into a layer.

Used in notebooks/05_inference.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import Verdict, failed, rel_error, run_student, verdict


def _stats_case(seed: int = 0):
    rng = np.random.default_rng(seed)
    running_mean = rng.standard_normal(5)
    running_var = rng.uniform(0.5, 2.0, 5)
    x = 3.0 * rng.standard_normal((6, 5)) + 4.0  # small batch: m/(m-1) = 1.2 is visible
    return running_mean, running_var, x


def _update(mean, var, x, w_old, unbiased=True):
    m = x.shape[0]
    v = x.var(0) * (m / (m - 1) if unbiased else 1.0)
    return w_old * mean + (1 - w_old) * x.mean(0), w_old * var + (1 - w_old) * v


def _stats_hint(got_mean, got_var, mean, var, x, momentum):
    def close(a, b):
        return np.allclose(a, b, rtol=1e-6, atol=1e-9)

    if close(got_mean, _update(mean, var, x, 1 - momentum)[0]):
        return ("your momentum weighs the new batch: that is PyTorch's convention; here momentum "
                "weighs the OLD value (Keras, Flax): new = momentum * old + (1 - momentum) * batch")
    if close(got_var, _update(mean, var, x, momentum, unbiased=False)[1]):
        return ("store the unbiased batch variance, m/(m-1) times the biased one "
                "(Algorithm 2, PyTorch)")
    if close(got_mean, x.mean(0)):
        return "the running mean must mix the old value in; you returned the batch mean"
    return "new = momentum * old + (1 - momentum) * batch statistic, for the mean and the variance"


def check_running_stats_update(fn, *, momentum: float = 0.9) -> Verdict:
    """Check fn(running_mean, running_var, x, momentum) -> (new_mean, new_var): momentum weighs
    the old value, the variance stored is the unbiased batch variance (m/(m-1)), x is (m, D).

    Used in notebooks/05_inference.ipynb.
    """
    name = "running statistics update"
    mean, var, x = _stats_case()
    out = run_student(name, fn, mean.copy(), var.copy(), x.copy(), momentum)
    if out is None:
        return failed(name)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return verdict(name, np.inf, hint="return a tuple (new_mean, new_var)")
    got_mean, got_var = (np.asarray(o, dtype=np.float64) for o in out)
    ref_mean, ref_var = _update(mean, var, x, momentum)
    if got_mean.shape != ref_mean.shape or got_var.shape != ref_var.shape:
        return verdict(name, np.inf, hint=f"return two arrays of shape {ref_mean.shape}, got "
                                          f"{got_mean.shape} and {got_var.shape}")
    err = max(rel_error(got_mean, ref_mean), rel_error(got_var, ref_var))
    return verdict(name, err, tol=1e-6, hint=_stats_hint(got_mean, got_var, mean, var, x, momentum))


def _fold_case(seed: int = 1):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((7, 4))
    b = rng.standard_normal(4)
    gamma = rng.uniform(0.5, 2.0, 4)
    beta = rng.standard_normal(4)
    mean = 3.0 * rng.standard_normal(4)
    var = rng.uniform(0.01, 3.0, 4)  # small variances: a missing eps shows
    x = rng.standard_normal((10, 7))
    return W, b, gamma, beta, mean, var, x


def _bn_eval(x, W, b, gamma, beta, mean, var, eps):
    return gamma * (x @ W + b - mean) / np.sqrt(var + eps) + beta


def _fold_hint(Wf, bf, W, b, gamma, beta, mean, var, eps):
    s = gamma / np.sqrt(var + eps)
    if np.allclose(Wf, W * (gamma / np.sqrt(var)), rtol=1e-6):
        return "eps goes inside the square root: scale = gamma / sqrt(var + eps)"
    if not np.allclose(Wf, W * s, rtol=1e-6):
        return "scale each output column j of W by gamma_j / sqrt(var_j + eps): W * scale[None, :]"
    if np.allclose(bf, beta - mean * s, rtol=1e-6):
        return "the layer's own bias b passes through BN too: b' = (b - mean) * scale + beta"
    if np.allclose(bf, b * s + beta, rtol=1e-6):
        return "subtract the running mean: b' = (b - mean) * scale + beta"
    return "b' = (b - mean) * scale + beta, with scale = gamma / sqrt(var + eps)"


def check_fold_bn(fn, *, eps: float = 1e-3) -> Verdict:
    """Check fn(W, b, gamma, beta, mean, var, eps) -> (W', b') such that x @ W' + b' equals
    eval-mode BN(x @ W + b) (float64; the value reported is the relative error of the outputs).

    Used in notebooks/05_inference.ipynb.
    """
    name = "fold BN into a dense layer"
    W, b, gamma, beta, mean, var, x = _fold_case()
    out = run_student(name, fn, W.copy(), b.copy(), gamma.copy(), beta.copy(), mean.copy(),
                      var.copy(), eps)
    if out is None:
        return failed(name)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return verdict(name, np.inf, hint="return a tuple (W_folded, b_folded)")
    Wf, bf = (np.asarray(o, dtype=np.float64) for o in out)
    if Wf.shape != W.shape or bf.shape != b.shape:
        return verdict(name, np.inf, hint=f"W' must have shape {W.shape} and b' {b.shape}, got "
                                          f"{Wf.shape} and {bf.shape}")
    err = rel_error(x @ Wf + bf, _bn_eval(x, W, b, gamma, beta, mean, var, eps))
    return verdict(name, err, tol=1e-7, what="max rel error of the outputs",
                   hint=_fold_hint(Wf, bf, W, b, gamma, beta, mean, var, eps))
