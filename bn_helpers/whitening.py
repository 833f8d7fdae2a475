"""Input whitening: covariance readouts, standardization, PCA and ZCA whitening, and why BN
standardizes each feature instead (the cost of whitening, the Ioffe & Szegedy section 2 example).

Convention: data are rows, x has shape (N, D). A whitening matrix W acts from the right,
z = (x - mean) @ W, and makes the covariance of z the identity (up to eps).

Used in notebooks/01_whitening.ipynb.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .compat import is_tracer

__all__ = [
    "covariance", "second_moment", "eigen", "condition_number", "standardize",
    "whitening_matrix", "pca_whiten", "zca_whiten", "whitening_distance",
    "gaussian_from_normal", "four_views", "VIEWS",
    "ZCAModel", "fit_zca", "zca_view", "rank_report", "whitened_condition",
    "batch_covariance_study", "time_transforms", "bias_experiment",
]

VIEWS = ("raw", "standardized", "PCA-whitened", "ZCA-whitened")


def _data(x, name: str = "x", *, min_rows: int = 2):
    """x as a 2-D float array with at least min_rows finite rows, else a ValueError naming it."""
    if isinstance(x, (str, bytes)) or x is None:
        raise ValueError(f"`{name}` must be a 2-D array (N, D), got {type(x).__name__}")
    arr = jnp.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (N, D) with one example per row, "
                         f"got shape {arr.shape}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(f"`{name}` needs at least {min_rows} rows and 1 column, "
                         f"got shape {arr.shape}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.float32)
    if not is_tracer(arr) and not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return arr


def _eps(eps, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) \
            or eps < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {eps!r}")
    return float(eps)


def covariance(x):
    """Biased covariance (divide by N) of the columns of x (N, D): a (D, D) matrix.

    Used in notebooks/01_whitening.ipynb.
    """
    x = _data(x)
    xc = x - x.mean(axis=0)
    return xc.T @ xc / x.shape[0]


def second_moment(x):
    """E[x x^T] (D, D), not centred: the Hessian of a linear unit's squared error (LeCun eq. 29).

    Used in notebooks/01_whitening.ipynb.
    """
    x = _data(x)
    return x.T @ x / x.shape[0]


def eigen(m):
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric matrix.

    Each eigenvector's sign is fixed so its largest-magnitude entry is positive
    (eigenvectors are only defined up to sign; this keeps PCA pictures stable).
    Used in notebooks/01_whitening.ipynb.
    """
    m = jnp.asarray(m)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"`m` must be a square matrix, got shape {m.shape}")
    vals, vecs = jnp.linalg.eigh((m + m.T) / 2)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    idx = jnp.argmax(jnp.abs(vecs), axis=0)
    signs = jnp.sign(vecs[idx, jnp.arange(vecs.shape[1])])
    return vals, vecs * jnp.where(signs == 0, 1.0, signs)


def condition_number(m):
    """lambda_max / lambda_min of a symmetric positive semi-definite matrix (inf if singular).

    Used in notebooks/01_whitening.ipynb.
    """
    vals = eigen(m)[0]
    return vals[0] / jnp.where(vals[-1] > 0, vals[-1], 0.0)


def standardize(x, eps: float = 1e-5):
    """Per-feature standardization (x - mean) / sqrt(var + eps), the batch statistics of BN.

    Used in notebooks/01_whitening.ipynb.
    """
    x, eps = _data(x), _eps(eps)
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    return (x - mean) / jnp.sqrt(var + eps)


def whitening_matrix(cov, eps: float = 1e-5, kind: str = "zca"):
    """W with W^T (cov) W = I (up to eps): U diag(1/sqrt(lambda + eps)) for "pca", that times U^T
    (symmetric) for "zca". Apply it as z = (x - mean) @ W.

    Used in notebooks/01_whitening.ipynb.
    """
    eps = _eps(eps)
    if kind not in ("pca", "zca"):
        raise ValueError(f"`kind` must be 'pca' or 'zca', got {kind!r}")
    vals, vecs = eigen(cov)
    scaled = vecs / jnp.sqrt(jnp.clip(vals, 0.0) + eps)
    return scaled if kind == "pca" else scaled @ vecs.T


def pca_whiten(x, eps: float = 1e-5):
    """PCA whitening: rotate onto the principal axes (largest variance first), scale each to 1.

    Used in notebooks/01_whitening.ipynb.
    """
    x = _data(x)
    return (x - x.mean(axis=0)) @ whitening_matrix(covariance(x), eps, "pca")


def zca_whiten(x, eps: float = 1e-5):
    """ZCA whitening: PCA whitening rotated back, z = (x - mean) @ Cov^(-1/2).

    Used in notebooks/01_whitening.ipynb.
    """
    x = _data(x)
    return (x - x.mean(axis=0)) @ whitening_matrix(covariance(x), eps, "zca")


def whitening_distance(x, z):
    """Mean squared distance between the centred data and its whitened version z (same shape).

    ZCA gives the smallest value among all whitenings (Kessy et al. 2018).
    Used in notebooks/01_whitening.ipynb.
    """
    x, z = _data(x), _data(z, "z")
    if x.shape != z.shape:
        raise ValueError(f"`z` must have the shape of `x` {x.shape}, got {z.shape}")
    return jnp.mean(jnp.sum((x - x.mean(axis=0) - z) ** 2, axis=1))


# ---------------------------------------------------------------- the 2-D slider
def gaussian_from_normal(z, corr, scale_ratio, offset):
    """Correlated 2-D Gaussian from fixed standard normal draws z (N, 2), as in
    `bn_helpers.toydata.correlated_gaussian` but differentiable and jittable in its
    parameters; `offset` is added to both features.

    Used in notebooks/01_whitening.ipynb.
    """
    x0 = z[:, 0]
    x1 = scale_ratio * (corr * z[:, 0] + jnp.sqrt(1.0 - corr**2) * z[:, 1])
    return jnp.stack([x0, x1], axis=1) + offset


def _ellipse(mean, cov, n_sigma=2.0, n_points=101):
    """Points of the n_sigma contour of a 2-D Gaussian, and its two principal half-axes."""
    vals, vecs = eigen(cov)
    t = jnp.linspace(0.0, 2 * jnp.pi, n_points)
    circle = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    half_axes = n_sigma * vecs * jnp.sqrt(jnp.clip(vals, 0.0))  # columns
    return mean + circle @ half_axes.T, half_axes.T


@jax.jit
def _four_views(z, corr, scale_ratio, offset, eps):
    x = gaussian_from_normal(z, corr, scale_ratio, offset)
    views = jnp.stack([x, _std(x, eps),
                       _white(x, eps, "pca"), _white(x, eps, "zca")])
    covs = jax.vmap(lambda v: (v - v.mean(0)).T @ (v - v.mean(0)) / v.shape[0])(views)
    means = views.mean(axis=1)
    vals = jax.vmap(lambda c: eigen(c)[0])(covs)
    ellipses, half_axes = jax.vmap(_ellipse)(means, covs)
    return dict(views=views, covs=covs, eigvals=vals, kappa=vals[:, 0] / vals[:, 1],
                ellipses=ellipses, half_axes=half_axes, means=means,
                second_moment=x.T @ x / x.shape[0],
                kappa_second_moment=condition_number(x.T @ x / x.shape[0]))


def _std(x, eps):
    mean = x.mean(axis=0)
    return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(axis=0) + eps)


def _white(x, eps, kind):
    xc = x - x.mean(axis=0)
    vals, vecs = eigen(xc.T @ xc / x.shape[0])
    scaled = vecs / jnp.sqrt(jnp.clip(vals, 0.0) + eps)
    return xc @ (scaled if kind == "pca" else scaled @ vecs.T)


def four_views(z, corr: float, scale_ratio: float, offset: float, eps: float = 1e-5) -> dict:
    """Raw, standardized, PCA- and ZCA-whitened versions of one correlated 2-D Gaussian.

    z: fixed standard normal draws (N, 2). Returns a dict of arrays with a leading axis of 4
    (in the order of VIEWS): views (4, N, 2), covs (4, 2, 2), eigvals (4, 2) descending,
    kappa (4,), means (4, 2), ellipses (4, 101, 2) (2-sigma contours), half_axes (4, 2, 2),
    and the raw data's second moment E[x x^T] (2, 2) with its condition number
    kappa_second_moment. Jitted; cheap enough for a slider.
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
    return _four_views(z, jnp.float32(corr), jnp.float32(scale_ratio), jnp.float32(offset),
                       jnp.float32(_eps(eps)))


# ---------------------------------------------------------------- ZCA of real images
class ZCAModel(NamedTuple):
    """Mean (D,), eigenvalues (D,) descending (NumPy) and eigenvectors (D, D, columns; a jax
    array) of a data set's covariance, computed once so that ZCA for any eps is two matrix
    products.

    Used in notebooks/01_whitening.ipynb.
    """

    mean: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray


def fit_zca(x) -> ZCAModel:
    """Eigendecomposition of the covariance of x (N, D), in float64 with NumPy, done once.

    Used in notebooks/01_whitening.ipynb.
    """
    x = np.asarray(_data(x), dtype=np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    with _one_blas_thread():  # a threaded eigh crawls on a busy machine; one thread takes ~0.2 s
        vals, vecs = np.linalg.eigh(xc.T @ xc / len(x))
    vals = np.clip(vals[::-1], 0.0, None)
    # eigenvectors live on the device once, so a slider does not copy 784 x 784 floats per move
    return ZCAModel(mean.astype(np.float32), vals.astype(np.float32),
                    jnp.asarray(vecs[:, ::-1], dtype=jnp.float32))


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it NumPy keeps its default threads
        return contextlib.nullcontext()
    return threadpool_limits(1)


@jax.jit
def _zca_view(x, mean, pixels, eigvals, eigvecs, eps):
    gains = 1.0 / jnp.sqrt(eigvals + eps)
    coeffs = (x - mean) @ eigvecs
    return (coeffs * gains) @ eigvecs.T, (eigvecs[pixels] * gains) @ eigvecs.T


def zca_view(model: ZCAModel, x, pixels, eps: float):
    """ZCA-whitened images x (K, D) and the ZCA filters (rows of Cov^(-1/2)) of the given
    pixel indices, for one eps. Cheap: the eigendecomposition in `model` is reused.

    Used in notebooks/01_whitening.ipynb.
    """
    if not isinstance(model, ZCAModel):
        raise ValueError(f"`model` must be a ZCAModel from fit_zca, got {type(model).__name__}")
    x = np.asarray(x, dtype=np.float32)
    d = model.mean.shape[0]
    if x.ndim != 2 or x.shape[1] != d or not np.all(np.isfinite(x)):
        raise ValueError(f"`x` must be finite with shape (K, {d}) like the data `model` was "
                         f"fitted on, got shape {x.shape}")
    pixels = np.asarray(pixels, dtype=int).ravel()
    if pixels.size == 0 or pixels.min() < 0 or pixels.max() >= d:
        raise ValueError(f"`pixels` must be indices in [0, {d}), got {pixels!r}")
    return _zca_view(x, model.mean, pixels, model.eigvals, model.eigvecs, np.float32(_eps(eps)))


def rank_report(x, *, rare_max: int = 3, cut: float = 1e-9) -> dict:
    """Why a data set has fewer covariance directions than varying features (float64).

    Returns: "varying" (features with nonzero variance), "rank" (numerical rank of the centred
    data, NumPy's SVD tolerance), "rare"/"rare_rank" (varying features nonzero in at most
    `rare_max` examples, and the rank of their columns), "common"/"common_rank" (the other
    varying features), "rare_examples" (how many examples the rare features are nonzero in),
    "eigvals" (covariance eigenvalues, descending) and "above_cut" (eigenvalues above
    cut * largest).
    Used in notebooks/01_whitening.ipynb.
    """
    x = np.asarray(_data(x), dtype=np.float64)
    xc = x - x.mean(axis=0)
    varying = x.var(axis=0) > 0
    inked = (x != 0).sum(axis=0)
    rare = varying & (inked <= rare_max)
    common = varying & ~rare
    with _one_blas_thread():
        sv = np.linalg.svd(xc, compute_uv=False)
        rank = int(np.linalg.matrix_rank(xc))
        rare_rank = int(np.linalg.matrix_rank(xc[:, rare])) if rare.any() else 0
        common_rank = int(np.linalg.matrix_rank(xc[:, common])) if common.any() else 0
    eigvals = np.zeros(x.shape[1])
    eigvals[:len(sv)] = sv**2 / len(x)
    return {"varying": int(varying.sum()), "rank": rank, "rare": int(rare.sum()),
            "rare_rank": rare_rank, "common": int(common.sum()), "common_rank": common_rank,
            "rare_examples": int(len(np.unique(np.nonzero(x[:, rare])[0]))),
            "eigvals": eigvals, "above_cut": int((eigvals > cut * eigvals[0]).sum())}


def whitened_condition(eigvals, eps, cut: float = 1e-9):
    """Condition number of ZCA-whitened data (the fitted data set itself): its covariance has
    the eigenvalues lambda / (lambda + eps), so kappa = max / min of those over the directions
    kept, lambda > cut * lambda_max. `eps` may be an array (one kappa per value).

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
    kept = lam[lam > cut * lam.max()]
    white = kept[:, None] / (kept[:, None] + eps_arr.ravel()[None, :])
    kappa = white.max(axis=0) / white.min(axis=0)
    return kappa.reshape(eps_arr.shape) if eps_arr.ndim else float(kappa[0])


def batch_covariance_study(x, ms, seeds=(0, 1, 2, 3, 4)) -> dict:
    """Covariances estimated from mini-batches of m examples against the full data's (float64).

    For each m in `ms` and each seed, a batch of m distinct rows is drawn. Returns arrays of
    shape (len(ms), len(seeds)): "rank" (numerical rank of the batch covariance, at most m - 1),
    "rel_error" (||Cov_batch - Cov||_F / ||Cov||_F), "unseen" (share of the full data's
    variance in directions the batch covariance has no variance in, where a whitening matrix
    built from the batch can only use eps), "var_error" (||var_batch - var|| / ||var|| for the
    per-feature variances, all that BN estimates); "spectra" (len(ms), len(seeds), D) the batch
    covariance eigenvalues, descending; and "full_rank", "full_spectrum" for the whole data.
    Used in notebooks/01_whitening.ipynb.
    """
    x = np.asarray(_data(x), dtype=np.float64)
    n, d = x.shape
    ms = [int(m) for m in ms]
    if not ms or min(ms) < 2 or max(ms) > n:
        raise ValueError(f"`ms` must be batch sizes between 2 and {n}, got {ms!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed")
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / n
    total = np.trace(cov)
    var = xc.var(axis=0)
    out = {k: np.zeros((len(ms), len(seeds))) for k in ("rank", "rel_error", "unseen", "var_error")}
    out["spectra"] = np.zeros((len(ms), len(seeds), d))
    with _one_blas_thread():
        full = np.linalg.svd(xc, compute_uv=False) ** 2 / n
        out["full_rank"] = int(np.linalg.matrix_rank(xc))
        for i, m in enumerate(ms):
            for j, seed in enumerate(seeds):
                rows = np.random.default_rng([seed, m]).choice(n, m, replace=False)
                bc = x[rows] - x[rows].mean(axis=0)
                cov_b = bc.T @ bc / m
                u, sv, _ = np.linalg.svd(bc.T, full_matrices=False)  # the batch's directions
                tol = sv.max() * max(bc.shape) * np.finfo(np.float64).eps
                r = int((sv > tol).sum())
                q = u[:, :r]
                out["rank"][i, j] = r
                out["rel_error"][i, j] = np.linalg.norm(cov_b - cov) / np.linalg.norm(cov)
                out["unseen"][i, j] = 1.0 - np.trace(q.T @ cov @ q) / total
                out["var_error"][i, j] = np.linalg.norm(bc.var(axis=0) - var) / np.linalg.norm(var)
                out["spectra"][i, j, :len(sv)] = sv**2 / m
    spectrum = np.zeros(d)
    spectrum[:len(full)] = full
    out["full_spectrum"] = spectrum
    out["ms"] = np.array(ms)
    return out


# ---------------------------------------------------------------- cost of whitening
def _loss_standardize(x, r):
    return jnp.sum(_std(x, 1e-5) * r)


def _loss_zca(x, r):
    return jnp.sum(_white(x, 1e-5, "zca") * r)


_GRADS = {"standardize": jax.jit(jax.grad(_loss_standardize)), "zca": jax.jit(jax.grad(_loss_zca))}


def time_transforms(dims, *, n: int = 2048, repeats: int = 3, seed: int = 0) -> dict:
    """Wall time (s) of one forward + backward pass through per-feature standardization and
    through ZCA whitening (covariance, eigendecomposition, matrix product) of an (n, D) batch,
    for each D in dims: the fastest of at least `repeats` runs (and of as many as fit in 0.2 s,
    up to 50), since a busy machine only ever adds time. Compile time is excluded; linear
    algebra runs on one thread (with threadpoolctl installed), like the rest of a small model.

    Returns {"dims": [...], "standardize": [...], "zca": [...]}.
    Used in notebooks/01_whitening.ipynb.
    """
    dims = [int(d) for d in dims]
    if not dims or min(dims) < 1:
        raise ValueError(f"`dims` must be a non-empty list of positive integers, got {dims!r}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= max(dims):
        raise ValueError(f"`n` must be an integer larger than every dimension, got {n!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise ValueError(f"`repeats` must be a positive integer, got {repeats!r}")
    out = {"dims": dims, "standardize": [], "zca": []}
    key = jax.random.PRNGKey(seed)
    jnp.linalg.eigh(jnp.eye(2))[0].block_until_ready()  # loads the LAPACK library jax uses
    with _one_blas_thread():  # threaded LAPACK spins and crawls on cores shared with others
        _time_dims(dims, n, repeats, key, out)
    return out


def _time_dims(dims, n, repeats, key, out):
    for d in dims:
        kx, kr, kc = jax.random.split(jax.random.fold_in(key, d), 3)
        mix = jnp.eye(d) + 0.3 * jax.random.normal(kc, (d, d)) / math.sqrt(d)
        x = jax.random.normal(kx, (n, d)) @ mix  # correlated, full rank
        r = jax.random.normal(kr, (n, d))
        for name, grad in _GRADS.items():
            grad(x, r).block_until_ready()  # compile
            times, start = [], time.perf_counter()
            while len(times) < repeats or (time.perf_counter() - start < 0.2 and len(times) < 50):
                t0 = time.perf_counter()
                grad(x, r).block_until_ready()
                times.append(time.perf_counter() - t0)
            out[name].append(min(times))  # the least disturbed run: other processes only add time


# ---------------------------------------------------------------- Ioffe & Szegedy, section 2
def bias_experiment(key, num_steps: int, *, lr: float = 0.1, n: int = 256, d_in: int = 8,
                    d_out: int = 4, target_offset: float = 1.0, mean_aware: bool = False) -> dict:
    """The BN paper's section 2 example: a layer x = a W + b followed by mean subtraction
    x_hat = x - E[x], trained by gradient descent on 0.5 * mean ||x_hat - t||^2.

    Targets have a nonzero mean (target_offset in every output), which x_hat (mean 0) can never
    match. mean_aware=False: b's gradient treats E[x] as a constant (the update the paper warns
    about); W's gradient is exact in both runs. mean_aware=True: the exact gradient, which is 0
    for b. Returns {"loss": (num_steps,), "bias_norm": (num_steps,), "bias": (num_steps, d_out)},
    recorded before each step, and "target_mean" (d_out,): the naive b grows by lr * target_mean
    per step.
    Used in notebooks/01_whitening.ipynb.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 1:
        raise ValueError(f"`num_steps` must be a positive integer, got {num_steps!r}")
    if not (isinstance(lr, numbers.Real) and lr > 0):
        raise ValueError(f"`lr` must be a number > 0, got {lr!r}")
    k_a, k_w, k_noise, k_init = jax.random.split(key, 4)
    a = jax.random.normal(k_a, (n, d_in))
    w_true = jax.random.normal(k_w, (d_in, d_out)) / math.sqrt(d_in)
    t = a @ w_true + target_offset + 0.1 * jax.random.normal(k_noise, (n, d_out))
    params = (0.1 * jax.random.normal(k_init, (d_in, d_out)), jnp.zeros(d_out))
    out = _bias_run(params, a, t, jnp.float32(lr), int(num_steps), bool(mean_aware))
    return {"loss": out[0], "bias_norm": jnp.linalg.norm(out[1], axis=1), "bias": out[1],
            "target_mean": t.mean(axis=0)}


def _bias_loss(params, a, t):
    w, b = params
    u = a @ w
    x_hat = (u + b) - (u.mean(axis=0) + b)  # the layer's output: x - E[x]
    return 0.5 * jnp.mean(jnp.sum((x_hat - t) ** 2, axis=1))


def _bias_loss_naive(params, a, t):
    w, b = params
    u = a @ w
    x_hat = (u + b) - (u.mean(axis=0) + jax.lax.stop_gradient(b))  # E[x] "does not depend" on b
    return 0.5 * jnp.mean(jnp.sum((x_hat - t) ** 2, axis=1))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _bias_run(params, a, t, lr, num_steps, mean_aware):
    loss_fn = _bias_loss if mean_aware else _bias_loss_naive

    def step(p, _):
        loss = _bias_loss(p, a, t)
        g = jax.grad(loss_fn)(p, a, t)
        return jax.tree_util.tree_map(lambda x, gx: x - lr * gx, p, g), (loss, p[1])

    return jax.lax.scan(step, params, None, length=num_steps)[1]
