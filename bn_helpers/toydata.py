"""2-D teaching data (correlated Gaussians, two classes) drawn from explicit jax.random keys.

Used in notebooks/01_whitening.ipynb, notebooks/02_zigzag.ipynb.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

__all__ = ["correlated_gaussian", "two_classes"]


def _check(n, corr, scale_ratio, mean):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not (isinstance(corr, numbers.Real) and math.isfinite(corr) and abs(corr) < 1):
        raise ValueError(f"corr must be a real number with |corr| < 1, got {corr!r}")
    if not (isinstance(scale_ratio, numbers.Real) and math.isfinite(scale_ratio)
            and scale_ratio > 0):
        raise ValueError(f"scale_ratio must be a finite number > 0, got {scale_ratio!r}")
    try:
        m = tuple(float(v) for v in mean)
    except (TypeError, ValueError):
        m = ()
    if len(m) != 2 or not all(math.isfinite(v) for v in m):
        raise ValueError(f"mean must be two finite numbers, got {mean!r}")
    return int(n), float(corr), float(scale_ratio), m


def correlated_gaussian(key, n, *, corr=0.0, scale_ratio=1.0, mean=(0.0, 0.0)):
    """Sample (n, 2) float32 points: std 1 on feature 0, std scale_ratio on feature 1, corr corr.

    Used in notebooks/01_whitening.ipynb, notebooks/02_zigzag.ipynb.
    """
    n, corr, scale_ratio, mean = _check(n, corr, scale_ratio, mean)
    z = jax.random.normal(key, (n, 2), dtype=jnp.float32)
    x0 = z[:, 0]
    x1 = scale_ratio * (corr * z[:, 0] + math.sqrt(1.0 - corr**2) * z[:, 1])
    return jnp.stack([x0, x1], axis=1) + jnp.asarray(mean, dtype=jnp.float32)


def two_classes(key, n, *, separation=3.0, corr=0.0, scale_ratio=1.0, mean=(0.0, 0.0)):
    """Two balanced Gaussian classes: x (n, 2) float32 and labels y (n,) int32 in {0, 1}.

    Both classes share the within-class shape of correlated_gaussian; class centres are
    mean -/+ separation/2 along feature 0 (in units of its std, 1).
    Used in notebooks/01_whitening.ipynb, notebooks/02_zigzag.ipynb.
    """
    n, corr, scale_ratio, mean = _check(n, corr, scale_ratio, mean)
    if not (isinstance(separation, numbers.Real) and math.isfinite(separation)
            and separation >= 0):
        raise ValueError(f"separation must be a finite number >= 0, got {separation!r}")
    k_labels, k_points = jax.random.split(key)
    y = jax.random.permutation(k_labels, jnp.arange(n, dtype=jnp.int32) % 2)
    x = correlated_gaussian(k_points, n, corr=corr, scale_ratio=scale_ratio, mean=mean)
    shift = (y.astype(jnp.float32) - 0.5) * jnp.float32(separation)
    return x.at[:, 0].add(shift), y
