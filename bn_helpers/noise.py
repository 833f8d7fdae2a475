"""Santurkar et al.'s "noisy BN": a random shift and scale of every unit, re-drawn every step.

At each training step, for every unit j: mu ~ U(-n_mu, n_mu), sigma ~ U(1, n_sigma);
for every example i: m_ij ~ U(mu - r_mu, mu + r_mu), s_ij ~ N(sigma, r_sigma);
then a_ij <- s_ij * a_ij + m_ij (Santurkar et al. 2018, Algorithm 1; constants
n_mu = 0.5, n_sigma = 1.25, r_mu = r_sigma = 0.1). `scale` multiplies the
distance of every constant from "no noise", so scale 0 leaves the input unchanged
and scale 1 is the paper's noise.

Used by bn_helpers.mlp.MLP (field `noise`).
"""

from __future__ import annotations

import jax

from . import compat as _compat

__all__ = ["inject", "PAPER"]

PAPER = {"n_mu": 0.5, "n_sigma": 1.25, "r_mu": 0.1, "r_sigma": 0.1}


def inject(key, a, scale=1.0):
    """a with Santurkar's non-stationary noise; units on the last axis, all other axes are examples."""
    k_mu, k_sigma, k_m, k_s = jax.random.split(key, 4)
    units = a.shape[-1:]
    mu = scale * jax.random.uniform(k_mu, units, minval=-PAPER["n_mu"], maxval=PAPER["n_mu"])
    sigma = 1.0 + scale * jax.random.uniform(k_sigma, units, maxval=PAPER["n_sigma"] - 1.0)
    m = mu + scale * PAPER["r_mu"] * _compat.uniform(k_m, a.shape, minval=-1.0, maxval=1.0)
    s = sigma + scale * PAPER["r_sigma"] * _compat.normal(k_s, a.shape)
    return s * a + m.astype(a.dtype)
