"""Checks for the whitening exercises: per-feature standardization and ZCA whitening (float64).

Used in notebooks/01_whitening.ipynb.
"""

from __future__ import annotations

import jax
import numpy as np

from ._core import Verdict, compare_output, run_student


def _case(seed: int, n: int = 64, d: int = 4):
    """Shifted, correlated features of very different scales (one with variance near 1e-3),
    so a missing mean, a wrong axis, a missing eps or a wrong rotation all show."""
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.6 * rng.standard_normal((d, d))
    x = rng.standard_normal((n, d)) @ mix
    x = x * np.array([4.0, 1.0, 0.5, 0.03])[:d] + np.array([10.0, -3.0, 2.0, 0.5])[:d]
    return x


def _ref_standardize(x, eps, ddof=0, axis=0):
    mean = x.mean(axis=axis, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axis, ddof=ddof, keepdims=True) + eps)


def _standardize_hint(y, x, eps):
    near = lambda ref: np.allclose(y, ref, rtol=1e-6, atol=1e-8)  # noqa: E731
    if near(_ref_standardize(x, eps, axis=1)):
        return ("you standardized each example (axis=1); standardize each feature over the "
                "batch, axis=0")
    if near(_ref_standardize(x, eps, ddof=1)):
        return "use the biased variance (divide by N, not N-1), as BN does in training"
    if near(_ref_standardize(x, 0.0)):
        return "add eps inside the square root: (x - mean) / sqrt(var + eps)"
    if near((x - x.mean(0)) / (x.std(0) + eps)):
        return "eps goes inside the square root: sqrt(var + eps), not std + eps"
    if near(x / np.sqrt(x.var(0) + eps)):
        return "subtract the per-feature mean first"
    if near(x - x.mean(0)):
        return "you centred the data; now divide by sqrt(var + eps)"
    return "print the mean and variance of each column of your output: they should be 0 and 1"


def check_standardize(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, eps) -> (x - mean) / sqrt(var + eps), per feature (axis 0), biased variance.

    Used in notebooks/01_whitening.ipynb.
    """
    name = "standardize"
    with jax.enable_x64(True):
        x = _case(0)
        y = run_student(name, fn, x, eps)
        return compare_output(name, y, _ref_standardize(x, eps),
                              lambda got: _standardize_hint(got, x, eps))


def _ref_zca(x, eps, *, kind="zca", ddof=0):
    xc = x - x.mean(0)
    vals, vecs = np.linalg.eigh(xc.T @ xc / (len(x) - ddof))
    scaled = vecs / np.sqrt(vals + eps)
    return xc @ (scaled if kind == "pca" else scaled @ vecs.T)


def _zca_hint(y, x, eps):
    near = lambda ref: np.allclose(y, ref, rtol=1e-6, atol=1e-8)  # noqa: E731
    xc = x - x.mean(0)
    cov_y = np.cov(y.T, bias=True)
    vals, vecs = np.linalg.eigh(xc.T @ xc / len(x))
    if near(_ref_zca(x, eps, ddof=1)):
        return "use the biased covariance (divide by N, not N-1)"
    if near(_ref_zca(x, 0.0)):
        return "add eps to the eigenvalues before the square root: 1 / sqrt(lambda + eps)"
    if near(xc @ vecs @ np.diag(np.sqrt(vals + eps)) @ vecs.T):
        return "multiply by 1 / sqrt(lambda + eps), not sqrt(lambda + eps)"
    if near(xc @ vecs @ np.diag(1 / (vals + eps)) @ vecs.T):
        return "that is Cov^-1; ZCA uses Cov^(-1/2): divide by the square root of lambda + eps"
    if near(x @ vecs @ np.diag(1 / np.sqrt(vals + eps)) @ vecs.T):
        return "subtract the per-feature mean before whitening"
    white = np.sort(vals / (vals + eps))
    if np.allclose(np.sort(np.linalg.eigvalsh(cov_y)), white, rtol=1e-6, atol=1e-9):
        return ("your output is white but not ZCA: rotate back with the eigenvectors, "
                "z = xc @ U diag(1/sqrt(lambda + eps)) U^T (the PCA version stops before U^T)")
    if near(xc @ vecs.T @ np.diag(1 / np.sqrt(vals + eps)) @ vecs):
        return "eigh returns eigenvectors as columns: use U, not U.T, on the left"
    return ("check that the covariance of your output is close to the identity "
            "(np.cov(z.T, bias=True)) and compare with a 2-feature example by hand")


def check_zca(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, eps) -> ZCA-whitened x, (x - mean) @ U diag(1/sqrt(lambda + eps)) U^T with
    the biased covariance's eigenvalues lambda and eigenvectors U.

    Used in notebooks/01_whitening.ipynb.
    """
    name = "zca_whiten"
    with jax.enable_x64(True):
        x = _case(1)
        y = run_student(name, fn, x, eps)
        return compare_output(name, y, _ref_zca(x, eps), lambda got: _zca_hint(got, x, eps))
