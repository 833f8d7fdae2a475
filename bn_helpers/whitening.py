"""Input whitening: covariance readouts, standardization, PCA and ZCA whitening, and the 2-D
cloud of the explorer. Whitening real images, its cost, what a mini-batch can estimate and the
Ioffe & Szegedy section 2 example live in `bn_helpers.whitening_practice`.

Convention: data are rows, x has shape (N, D). A whitening matrix W acts from the right,
z = (x - mean) @ W, and makes the covariance of z the identity (up to eps). The explorers that
draw these live in `bn_helpers.figures.whitening`.

Used in notebooks/01_whitening.ipynb.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from .batchnorm import batch_norm
from .compat import is_tracer

__all__ = ["VIEWS", "covariance", "second_moment", "eigen", "condition_number", "standardize",
           "whitening_matrix", "pca_whiten", "zca_whiten", "whitening_distance",
           "gaussian_from_normal", "four_views"]

VIEWS = ("raw", "standardized", "PCA-whitened", "ZCA-whitened")


def _data(x, name: str = "x", *, min_rows: int = 2):
    """x as a 2-D float array with at least min_rows finite rows, else a ValueError naming it."""
    if isinstance(x, (str, bytes)) or x is None:
        raise ValueError(f"`{name}` must be a 2-D array (N, D), got {type(x).__name__}")
    arr = jnp.asarray(x)
    if arr.ndim != 2 or arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(f"`{name}` must be a 2-D array (N, D) with one example per row and at "
                         f"least {min_rows} rows, got shape {arr.shape}")
    arr = arr if jnp.issubdtype(arr.dtype, jnp.floating) else arr.astype(jnp.float32)
    if not is_tracer(arr) and not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return arr


def _eps(eps, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0 or eps == math.inf:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _cov(x):
    xc = x - x.mean(axis=0)
    return xc.T @ xc / x.shape[0]


def covariance(x):
    """Biased covariance (divide by N) of the columns of x (N, D): a (D, D) matrix.

    Used in notebooks/01_whitening.ipynb.
    """
    return _cov(_data(x))


def second_moment(x):
    """E[x x^T] (D, D), not centred: the Hessian of a linear unit's squared error (LeCun eq. 29).

    Used in notebooks/01_whitening.ipynb.
    """
    x = _data(x)
    return x.T @ x / x.shape[0]


def eigen(m):
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric matrix; each vector's
    sign makes its largest-magnitude entry positive (so PCA pictures stay stable).

    Used in notebooks/01_whitening.ipynb.
    """
    m = jnp.asarray(m)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"`m` must be a square matrix, got shape {m.shape}")
    vals, vecs = jnp.linalg.eigh((m + m.T) / 2)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    signs = jnp.sign(vecs[jnp.argmax(jnp.abs(vecs), axis=0), jnp.arange(vecs.shape[1])])
    return vals, vecs * jnp.where(signs == 0, 1.0, signs)


def condition_number(m):
    """lambda_max / lambda_min of a symmetric positive semi-definite matrix (inf if singular).

    Used in notebooks/01_whitening.ipynb.
    """
    vals = eigen(m)[0]
    return vals[0] / jnp.where(vals[-1] > 0, vals[-1], 0.0)


def _std(x, eps):
    """The course's BN core without gamma and beta: batch mean, biased variance, per feature."""
    return batch_norm(x, jnp.ones(x.shape[1], x.dtype), jnp.zeros(x.shape[1], x.dtype), eps=eps)


def _matrix(cov, eps, kind):
    vals, vecs = eigen(cov)
    scaled = vecs / jnp.sqrt(jnp.clip(vals, 0.0) + eps)
    return scaled if kind == "pca" else scaled @ vecs.T


def _white(x, eps, kind):
    return (x - x.mean(axis=0)) @ _matrix(_cov(x), eps, kind)


def standardize(x, eps: float = 1e-5):
    """Per-feature standardization (x - mean) / sqrt(var + eps), the batch statistics of BN.

    Used in notebooks/01_whitening.ipynb.
    """
    return _std(_data(x), _eps(eps))


def whitening_matrix(cov, eps: float = 1e-5, kind: str = "zca"):
    """W with W^T (cov) W = I (up to eps): U diag(1/sqrt(lambda + eps)) for "pca", that times U^T
    (symmetric) for "zca". Apply it as z = (x - mean) @ W.

    Used in notebooks/01_whitening.ipynb.
    """
    if kind not in ("pca", "zca"):
        raise ValueError(f"`kind` must be 'pca' or 'zca', got {kind!r}")
    return _matrix(cov, _eps(eps), kind)


def pca_whiten(x, eps: float = 1e-5):
    """PCA whitening: rotate onto the principal axes (largest variance first), scale each to 1.

    Used in notebooks/01_whitening.ipynb.
    """
    return _white(_data(x), _eps(eps), "pca")


def zca_whiten(x, eps: float = 1e-5):
    """ZCA whitening: PCA whitening rotated back, z = (x - mean) @ Cov^(-1/2).

    Used in notebooks/01_whitening.ipynb.
    """
    return _white(_data(x), _eps(eps), "zca")


def whitening_distance(x, z):
    """Mean squared distance between the centred data and its whitened version z (same shape);
    ZCA gives the smallest value among all whitenings (Kessy et al. 2018).

    Used in notebooks/01_whitening.ipynb.
    """
    x, z = _data(x), _data(z, "z")
    if x.shape != z.shape:
        raise ValueError(f"`z` must have the shape of `x` {x.shape}, got {z.shape}")
    return jnp.mean(jnp.sum((x - x.mean(axis=0) - z) ** 2, axis=1))


# ---------------------------------------------------------------- the 2-D cloud of the explorer
def gaussian_from_normal(z, corr, scale_ratio, offset):
    """Correlated 2-D Gaussian from fixed standard normal draws z (N, 2), as
    `bn_helpers.toydata.correlated_gaussian` builds it, but jittable in its parameters;
    `offset` is added to both features.

    Used in notebooks/01_whitening.ipynb.
    """
    x1 = scale_ratio * (corr * z[:, 0] + jnp.sqrt(1.0 - corr**2) * z[:, 1])
    return jnp.stack([z[:, 0], x1], axis=1) + offset


@jax.jit
def _four_views(z, corr, scale_ratio, offset, eps):
    x = gaussian_from_normal(z, corr, scale_ratio, offset)
    views = jnp.stack([x, _std(x, eps), _white(x, eps, "pca"), _white(x, eps, "zca")])
    covs = jax.vmap(_cov)(views)
    vals = jax.vmap(lambda c: eigen(c)[0])(covs)
    moment = x.T @ x / x.shape[0]
    return dict(views=views, covs=covs, eigvals=vals, kappa=vals[:, 0] / vals[:, 1],
                means=views.mean(axis=1), second_moment=moment,
                kappa_second_moment=condition_number(moment))


def four_views(z, corr: float, scale_ratio: float, offset: float, eps: float = 1e-5) -> dict:
    """Raw, standardized, PCA- and ZCA-whitened versions of one correlated 2-D Gaussian.

    z: fixed standard normal draws (N, 2). Returns arrays with a leading axis of 4 (the order
    of VIEWS): views (4, N, 2), covs (4, 2, 2), eigvals (4, 2) descending, kappa (4,), means
    (4, 2); and the raw data's E[x x^T] "second_moment" with its "kappa_second_moment". Jitted.
    Used in notebooks/01_whitening.ipynb.
    """
    z = _data(z, "z")
    if z.shape[1] != 2:
        raise ValueError(f"`z` must have shape (N, 2), got {z.shape}")
    if not (isinstance(corr, numbers.Real) and abs(corr) < 1):
        raise ValueError(f"`corr` must be a number with |corr| < 1, got {corr!r}")
    if not (isinstance(scale_ratio, numbers.Real) and scale_ratio > 0):
        raise ValueError(f"`scale_ratio` must be a number > 0, got {scale_ratio!r}")
    if not (isinstance(offset, numbers.Real) and math.isfinite(offset)):
        raise ValueError(f"`offset` must be a finite number, got {offset!r}")
    return _four_views(z, *(jnp.float32(v) for v in (corr, scale_ratio, offset, _eps(eps))))
