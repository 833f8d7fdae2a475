"""Whitening in practice: ZCA of real images, how many covariance directions a data set and a
mini-batch have, what whitening costs against standardizing, and Ioffe & Szegedy's section 2
example of a normalization that gradient descent undoes (why BN sits inside the gradient).

The transforms themselves are in `bn_helpers.whitening`.

Used in notebooks/01_whitening.ipynb.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .whitening import _data, _eps, _std, _white

__all__ = ["ZCAModel", "fit_zca", "zca_view", "rank_report", "whitened_condition",
           "batch_covariance_study", "time_transforms", "bias_problem", "centred_loss"]


# ---------------------------------------------------------------- ZCA of real images
class ZCAModel(NamedTuple):
    """Mean (D,), eigenvalues (D,) descending (NumPy) and eigenvectors (D, D) columns (on the
    device) of a data set's covariance: ZCA for any eps is then two matrix products.

    Used in notebooks/01_whitening.ipynb.
    """

    mean: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray


def _one_blas_thread():
    """Threaded LAPACK spins and crawls on cores shared with others: one thread, if we can."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it NumPy keeps its default threads
        return contextlib.nullcontext()
    return threadpool_limits(1)


def fit_zca(x) -> ZCAModel:
    """Eigendecomposition of the covariance of x (N, D), in float64 with NumPy, done once.

    Used in notebooks/01_whitening.ipynb.
    """
    x = np.asarray(_data(x), dtype=np.float64)
    mean = x.mean(axis=0)
    with _one_blas_thread():
        vals, vecs = np.linalg.eigh((x - mean).T @ (x - mean) / len(x))
    return ZCAModel(mean.astype(np.float32), np.clip(vals[::-1], 0.0, None).astype(np.float32),
                    jnp.asarray(vecs[:, ::-1], dtype=jnp.float32))


@jax.jit
def _zca_view(x, mean, pixels, eigvals, eigvecs, eps):
    gains = 1.0 / jnp.sqrt(eigvals + eps)
    return (((x - mean) @ eigvecs) * gains) @ eigvecs.T, (eigvecs[pixels] * gains) @ eigvecs.T


def zca_view(model: ZCAModel, x, pixels, eps: float):
    """ZCA-whitened images x (K, D) and the ZCA filters (rows of Cov^(-1/2)) of the given pixel
    indices, for one eps, reusing the eigendecomposition in `model`.

    Used in notebooks/01_whitening.ipynb.
    """
    if not isinstance(model, ZCAModel):
        raise ValueError(f"`model` must be a ZCAModel from fit_zca, got {type(model).__name__}")
    x, d = np.asarray(x, dtype=np.float32), model.mean.shape[0]
    if x.ndim != 2 or x.shape[1] != d or not np.all(np.isfinite(x)):
        raise ValueError(f"`x` must be finite with shape (K, {d}) like the data `model` was "
                         f"fitted on, got shape {x.shape}")
    pixels = np.asarray(pixels, dtype=int).ravel()
    if pixels.size == 0 or pixels.min() < 0 or pixels.max() >= d:
        raise ValueError(f"`pixels` must be indices in [0, {d}), got {pixels!r}")
    return _zca_view(x, model.mean, pixels, model.eigvals, model.eigvecs, np.float32(_eps(eps)))


def rank_report(x, *, rare_max: int = 3, cut: float = 1e-9) -> dict:
    """Why a data set has fewer covariance directions than varying features (float64): counts
    "varying" features, "rank" of the centred data, "rare" features (nonzero in at most
    `rare_max` examples; "rare_rank", "rare_examples") and the other varying ones ("common",
    "common_rank"), the covariance "eigvals" (descending) and how many lie "above_cut" x largest.

    Used in notebooks/01_whitening.ipynb.
    """
    x = np.asarray(_data(x), dtype=np.float64)
    xc = x - x.mean(axis=0)
    varying = x.var(axis=0) > 0
    rare = varying & ((x != 0).sum(axis=0) <= rare_max)
    common = varying & ~rare
    with _one_blas_thread():
        sv = np.linalg.svd(xc, compute_uv=False)
        ranks = [int(np.linalg.matrix_rank(xc[:, cols])) if cols.any() else 0
                 for cols in (np.ones(x.shape[1], bool), rare, common)]
    eigvals = np.zeros(x.shape[1])
    eigvals[:len(sv)] = sv**2 / len(x)
    return {"varying": int(varying.sum()), "rank": ranks[0], "rare": int(rare.sum()),
            "rare_rank": ranks[1], "common": int(common.sum()), "common_rank": ranks[2],
            "rare_examples": int(len(np.unique(np.nonzero(x[:, rare])[0]))),
            "eigvals": eigvals, "above_cut": int((eigvals > cut * eigvals[0]).sum())}


def whitened_condition(eigvals, eps, cut: float = 1e-9):
    """Condition number of ZCA-whitened data (the fitted data set itself): eigenvalues
    lambda / (lambda + eps) over the directions kept, lambda > cut * lambda_max. `eps` may be
    an array (one kappa per value).

    Used in notebooks/01_whitening.ipynb.
    """
    lam = np.asarray(eigvals, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 1 or not np.all(np.isfinite(lam)):
        raise ValueError("`eigvals` must be a 1-D array of finite eigenvalues")
    if not (isinstance(cut, numbers.Real) and 0 <= cut < 1):
        raise ValueError(f"`cut` must be a number in [0, 1), got {cut!r}")
    eps_arr = np.asarray(eps, dtype=np.float64)
    if not np.all(np.isfinite(eps_arr)) or np.any(eps_arr < 0):
        raise ValueError(f"`eps` must be finite and >= 0, got {eps!r}")
    kept = lam[lam > cut * lam.max()][:, None]
    white = kept / (kept + eps_arr.ravel()[None, :])
    kappa = white.max(axis=0) / white.min(axis=0)
    return kappa.reshape(eps_arr.shape) if eps_arr.ndim else float(kappa[0])


def batch_covariance_study(x, ms, seeds=(0, 1, 2, 3, 4)) -> dict:
    """Covariances estimated from mini-batches of m distinct rows against the full data's
    (float64). Arrays (len(ms), len(seeds)): "rank" of the batch covariance (at most m - 1),
    "rel_error" ||Cov_batch - Cov||_F / ||Cov||_F, "unseen" (share of the data's variance in
    directions the batch has no variance in), "var_error" (relative error of the per-feature
    variances, all BN estimates); "spectra" (len(ms), len(seeds), D) batch eigenvalues,
    descending; "full_rank", "full_spectrum" of the whole data; "ms".

    Used in notebooks/01_whitening.ipynb.
    """
    x = np.asarray(_data(x), dtype=np.float64)
    n, d = x.shape
    ms, seeds = [int(m) for m in ms], [int(s) for s in seeds]
    if not ms or min(ms) < 2 or max(ms) > n:
        raise ValueError(f"`ms` must be batch sizes between 2 and {n}, got {ms!r}")
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    xc = x - x.mean(axis=0)
    cov, var = xc.T @ xc / n, xc.var(axis=0)
    out = {k: np.zeros((len(ms), len(seeds))) for k in ("rank", "rel_error", "unseen", "var_error")}
    out["spectra"], out["full_spectrum"], out["ms"] = np.zeros((len(ms), len(seeds), d)), \
        np.zeros(d), np.array(ms)
    with _one_blas_thread():
        full = np.linalg.svd(xc, compute_uv=False) ** 2 / n
        out["full_rank"] = int(np.linalg.matrix_rank(xc))
        for (i, m), (j, seed) in ((a, b) for a in enumerate(ms) for b in enumerate(seeds)):
            rows = np.random.default_rng([seed, m]).choice(n, m, replace=False)
            bc = x[rows] - x[rows].mean(axis=0)
            u, sv, _ = np.linalg.svd(bc.T, full_matrices=False)  # the batch's directions
            r = int((sv > sv.max() * max(bc.shape) * np.finfo(np.float64).eps).sum())
            out["rank"][i, j] = r
            out["rel_error"][i, j] = np.linalg.norm(bc.T @ bc / m - cov) / np.linalg.norm(cov)
            out["unseen"][i, j] = 1.0 - np.trace(u[:, :r].T @ cov @ u[:, :r]) / np.trace(cov)
            out["var_error"][i, j] = np.linalg.norm(bc.var(axis=0) - var) / np.linalg.norm(var)
            out["spectra"][i, j, :len(sv)] = sv**2 / m
    out["full_spectrum"][:len(full)] = full
    return out


# ---------------------------------------------------------------- cost of whitening
_GRADS = {"standardize": jax.jit(jax.grad(lambda x, r: jnp.sum(_std(x, 1e-5) * r))),
          "zca": jax.jit(jax.grad(lambda x, r: jnp.sum(_white(x, 1e-5, "zca") * r)))}


def time_transforms(dims, *, n: int = 2048, repeats: int = 3, seed: int = 0) -> dict:
    """Wall time (s) of one forward + backward pass through per-feature standardization and
    through ZCA whitening of an (n, D) batch, for each D in dims: the fastest of at least
    `repeats` runs (and of as many as fit in 0.2 s, up to 50), since a busy machine only adds
    time. Compile time excluded; linear algebra on one thread (with threadpoolctl).
    Returns {"dims": [...], "standardize": [...], "zca": [...]}.

    Used in notebooks/01_whitening.ipynb.
    """
    dims = [int(d) for d in dims]
    if not dims or min(dims) < 1:
        raise ValueError(f"`dims` must be a non-empty list of positive integers, got {dims!r}")
    for name, v, low in (("n", n, max(dims) + 1), ("repeats", repeats, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ValueError(f"`{name}` must be an integer >= {low}, got {v!r}")
    out = {"dims": dims, "standardize": [], "zca": []}
    jnp.linalg.eigh(jnp.eye(2))[0].block_until_ready()  # loads the LAPACK library jax uses
    with _one_blas_thread():
        for d in dims:
            kx, kr, kc = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), d), 3)
            mix = jnp.eye(d) + 0.3 * jax.random.normal(kc, (d, d)) / math.sqrt(d)
            x, r = jax.random.normal(kx, (n, d)) @ mix, jax.random.normal(kr, (n, d))
            for name, grad in _GRADS.items():
                grad(x, r).block_until_ready()  # compile
                times, start = [], time.perf_counter()
                while len(times) < repeats or (time.perf_counter() - start < 0.2 and len(times) < 50):
                    t0 = time.perf_counter()
                    grad(x, r).block_until_ready()
                    times.append(time.perf_counter() - t0)
                out[name].append(min(times))  # the least disturbed run
    return out


# ---------------------------------------------------------------- Ioffe & Szegedy, section 2
def bias_problem(key, *, n: int = 256, d_in: int = 8, d_out: int = 4, target_offset: float = 1.0):
    """The BN paper's section 2 example: inputs a (n, d_in), targets t = a W_true + target_offset
    + noise (n, d_out), whose mean a centred output can never match, and the starting weights
    (W (d_in, d_out), b = 0 (d_out,)) of a layer x = a W + b. Traceable in `key`.

    Used in notebooks/01_whitening.ipynb.
    """
    for name, v in (("n", n), ("d_in", d_in), ("d_out", d_out)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 2:
            raise ValueError(f"`{name}` must be an integer >= 2, got {v!r}")
    if not (isinstance(target_offset, numbers.Real) and math.isfinite(target_offset)):
        raise ValueError(f"`target_offset` must be a finite number, got {target_offset!r}")
    k_a, k_w, k_noise, k_init = jax.random.split(key, 4)
    a = jax.random.normal(k_a, (n, d_in))
    t = a @ (jax.random.normal(k_w, (d_in, d_out)) / math.sqrt(d_in)) + target_offset \
        + 0.1 * jax.random.normal(k_noise, (n, d_out))
    return a, t, (0.1 * jax.random.normal(k_init, (d_in, d_out)), jnp.zeros(d_out))


def centred_loss(params, state, batch, key=None, *, a, t, mean_aware: bool):
    """0.5 * mean ||x_hat - t||^2 of the centred layer x_hat = x - E[x], x = a W + b, in the
    protocol of `bn_helpers.train.sgd`: (params, state, batch, key) -> (loss, state), full
    batch. mean_aware=False: b's gradient treats E[x] as a constant (the update the paper warns
    about); True: the exact gradient, 0 for b. W's gradient and the loss value are the same.

    Used in notebooks/01_whitening.ipynb.
    """
    w, b = params
    u = a @ w
    mean = u.mean(axis=0) + (b if mean_aware else jax.lax.stop_gradient(b))
    return 0.5 * jnp.mean(jnp.sum((u + b - mean - t) ** 2, axis=1)), state
