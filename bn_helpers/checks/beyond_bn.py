"""Checks for the exercises of notebook 08: the group norm forward pass and Batch Renormalization's
r and d.

Every check tries several inputs and parameter values (groups, eps, r_max, d_max), recognizes the
usual mistakes of its exercise by computing what each one returns, and names it in the hint; the
tolerances separate the right answer from every listed mistake (tests/test_checks_beyond_bn.py).

Used in notebooks/08_beyond_bn.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import CheckFailed, RETURN_NONE_HINT, Verdict, as_array, check, grading_mode, student, verdict

# --- Exercise 1: group norm forward --------------------------------------------------------------


def _gn_cases(hidden: bool):
    """(x NHWC, gamma, beta, groups, eps): shifted, scaled inputs so no bug can hide."""
    rng = np.random.default_rng(13 if hidden else 8)
    specs = [((4, 3, 3, 8), 2, 1e-5), ((2, 2, 2, 6), 3, 0.5), ((3, 2, 2, 4), 4, 1e-3),
             ((2, 3, 2, 6), 1, 1e-5)]
    if hidden:
        specs += [((5, 2, 3, 12), 4, 0.1), ((2, 4, 4, 8), 8, 1e-5)]
    cases = []
    for shape, g, eps in specs:
        c = shape[-1]
        x = 5.0 * rng.normal(size=shape) + 12.0 + 3.0 * rng.normal(size=c)
        gamma = 1.0 + 0.5 * rng.normal(size=c)
        beta = rng.normal(size=c)
        cases.append((x, gamma, beta, g, eps))
    return cases


def _stats_norm(x, eps, axes_shape, axes, ddof=0, eps_outside=False, no_sqrt=False):
    xr = x.reshape(axes_shape)
    mean = xr.mean(axis=axes, keepdims=True)
    var = xr.var(axis=axes, keepdims=True, ddof=ddof)
    if no_sqrt:
        out = (xr - mean) / (var + eps)
    elif eps_outside:
        out = (xr - mean) / (np.sqrt(var) + eps)
    else:
        out = (xr - mean) / np.sqrt(var + eps)
    return out.reshape(x.shape)


def group_norm_formulas(x, gamma, beta, groups, eps) -> dict:
    """{description: output} of float64 group norm and of the usual mistakes."""
    n, h, w, c = x.shape
    g = groups
    grouped = (n, h, w, g, c // g)
    ax = (1, 2, 4)

    def affine(v):
        return v * gamma + beta

    right = affine(_stats_norm(x, eps, grouped, ax))
    out = {"right": right}
    out["statistics over the batch axis too (group norm uses each example alone)"] = affine(
        _stats_norm(x, eps, grouped, (0, 1, 2, 4)))
    inter = x.reshape(n, h, w, c // g, g)
    m = inter.mean(axis=(1, 2, 3), keepdims=True)
    v = inter.var(axis=(1, 2, 3), keepdims=True)
    inter_name = "interleaved groups (channel k in group k % G; groups are contiguous: (..., G, C // G))"
    out[inter_name] = affine(((inter - m) / np.sqrt(v + eps)).reshape(x.shape))
    out["statistics per position (average over H and W too)"] = affine(_stats_norm(x, eps, grouped, (4,)))
    out["unbiased variance (divide by m, not m - 1)"] = affine(_stats_norm(x, eps, grouped, ax, ddof=1))
    out["eps outside the square root"] = affine(_stats_norm(x, eps, grouped, ax, eps_outside=True))
    out["dividing by the variance (take its square root)"] = affine(_stats_norm(x, eps, grouped, ax,
                                                                                no_sqrt=True))
    out["gamma and beta missing"] = _stats_norm(x, eps, grouped, ax)
    out["gamma and beta swapped"] = _stats_norm(x, eps, grouped, ax) * beta + gamma
    if g != c // g:
        out["G read as channels per group (G groups of C // G channels)"] = affine(
            _stats_norm(x, eps, (n, h, w, c // g, g), ax))
    if g != 1:
        out["layer norm (one group: use G)"] = affine(_stats_norm(x, eps, (n, h, w, 1, c), ax))
    if g != c:
        out["instance norm (one channel per group: use G)"] = affine(_stats_norm(x, eps, (n, h, w, c, 1), ax))
    return out


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _name_mistake(tables, default):
    """The first mistake that every case's answer matches, else `default`."""
    keys = [k for k in tables[0][1] if k != "right"]
    for mistake in keys:
        if all(mistake in t and _rel(v, t[mistake]) <= 1e-4 for v, t in tables):
            return f"your values match {mistake}"
    return default


@check("group norm forward")
def check_group_norm(fn) -> Verdict:
    """Check fn(x, gamma, beta, groups, eps) -> group norm of NHWC x, for several shapes, G and eps.

    Names statistics over the batch, interleaved groups, per-position statistics, the unbiased
    variance, eps outside the root, no root, missing or swapped gamma/beta, G read as the group
    size, layer norm and instance norm.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    name = "group norm forward"
    tables, errs = [], []
    for x, gamma, beta, g, eps in _gn_cases(grading_mode()):
        got = student(fn, x.astype(np.float32), gamma.astype(np.float32), beta.astype(np.float32),
                      g, eps)
        got = as_array(got, x.shape, what=f"output for x of shape {x.shape}, G={g}")
        table = group_norm_formulas(x, gamma, beta, g, eps)
        tables.append((got, table))
        errs.append(_rel(got, table["right"]))
    hint = _name_mistake(tables, "per example: reshape to (N, H, W, G, C // G), mean and biased variance "
                                 "over axes (1, 2, 4), (x - mean) / sqrt(var + eps), then gamma, beta")
    # Float32 answers are within ~1e-6; the nearest listed mistake is off by > 1e-2
    return verdict(name, max(errs), tol=1e-4, close=1e-2, what="max rel error", hint=hint)


# --- Exercise 2: Batch Renorm's r and d ---------------------------------------------------------------


def _rd_cases(hidden: bool):
    """(batch mean, batch var, running mean, running var, r_max, d_max, eps); some values clip."""
    rng = np.random.default_rng(21 if hidden else 4)
    specs = [(3.0, 5.0, 1e-5), (2.0, 1.0, 1e-3), (1.5, 0.5, 0.3)]
    if hidden:
        specs += [(1.2, 0.2, 1e-5), (4.0, 3.0, 0.05)]
    cases = []
    for r_max, d_max, eps in specs:
        c = 8
        run_mean = rng.normal(size=c)
        run_var = np.exp(rng.normal(size=c))
        # Batch variances from far below to far above the running ones, means near and far
        batch_var = run_var * np.exp(np.linspace(-4.0, 4.0, c) + 0.1 * rng.normal(size=c))
        batch_mean = run_mean + np.sqrt(run_var) * np.linspace(-2.5 * d_max - 1, 2.5 * d_max + 1, c)[
            rng.permutation(c)]
        cases.append((batch_mean, batch_var, run_mean, run_var, r_max, d_max, eps))
    return cases


def renorm_formulas(mb, vb, mr, vr, r_max, d_max, eps) -> dict:
    """{description: (r, d)} of the right correction and the usual mistakes."""
    sb, s = np.sqrt(vb + eps), np.sqrt(vr + eps)
    clip_r = lambda v: np.clip(v, 1.0 / r_max, r_max)  # noqa: E731
    clip_d = lambda v: np.clip(v, -d_max, d_max)  # noqa: E731
    r, d = clip_r(sb / s), clip_d((mb - mr) / s)
    return {
        "right": (r, d),
        "no clipping (clip r to [1/r_max, r_max], d to [-d_max, d_max])": (sb / s, (mb - mr) / s),
        "r clipped only from above (the lower bound is 1/r_max, not 0 or -r_max)": (
            np.minimum(sb / s, r_max), d),
        "r upside down (r = sigma_B / sigma, batch over running)": (clip_r(s / sb), d),
        "r from variances (take square roots: r is a ratio of standard deviations)": (clip_r(
            (vb + eps) / (vr + eps)), d),
        "d with the wrong sign ((mu_B - mu) / sigma)": (r, clip_d((mr - mb) / s)),
        "d divided by sigma_B (divide by the running sigma)": (r, clip_d((mb - mr) / sb)),
        "d not divided by sigma": (r, clip_d(mb - mr)),
        "d divided by the running variance (by sigma = sqrt(var + eps))": (r, clip_d((mb - mr) / (vr + eps))),
        "eps missing (sigma = sqrt(var + eps))": (clip_r(np.sqrt(vb) / np.sqrt(vr)),
                                                  clip_d((mb - mr) / np.sqrt(vr))),
        "r and d swapped (return (r, d))": (d, r),
    }


def _as_pair(got, c):
    if got is None:
        raise CheckFailed("your answer is None", RETURN_NONE_HINT)
    if isinstance(got, (str, bytes, dict, set)) or callable(got):
        raise CheckFailed(f"your answer is a {type(got).__name__}", "return a pair (r, d) of arrays")
    if not isinstance(got, (tuple, list)) and np.shape(got)[:1] != (2,):
        raise CheckFailed(f"your answer has shape {np.shape(got)}", "return a pair (r, d) of arrays")
    if len(got) != 2:
        raise CheckFailed(f"your answer has {len(got)} parts", "return a pair (r, d) of arrays")
    return (as_array(got[0], (c,), what="r"), as_array(got[1], (c,), what="d"))


@check("batch renorm r and d")
def check_renorm_correction(fn) -> Verdict:
    """Check fn(batch_mean, batch_var, running_mean, running_var, r_max, d_max, eps) -> (r, d).

    Cases mix clipped and unclipped channels and several r_max, d_max and eps values. Names no
    clipping, a missing lower bound of r, r upside down or from variances, d's sign, the wrong sigma
    for d, d undivided or divided by the variance, missing eps, and r and d swapped.

    Used in notebooks/08_beyond_bn.ipynb.
    """
    name = "batch renorm r and d"
    tables, errs = [], []
    for case in _rd_cases(grading_mode()):
        got = student(fn, *(np.asarray(a, np.float32) if isinstance(a, np.ndarray) else a for a in case))
        r, d = _as_pair(got, case[0].shape[0])
        table = renorm_formulas(*case)
        value = np.concatenate([r, d])
        tables.append((value, {k: np.concatenate(v) for k, v in table.items()}))
        rr, dd = table["right"]
        errs.append(float(np.max(np.abs(value - np.concatenate([rr, dd])))
                          / max(1.0, float(np.max(np.abs(np.concatenate([rr, dd])))))))
    hint = _name_mistake(tables, "sigma = sqrt(var + eps) for both; r = clip(sigma_B / sigma, 1/r_max, "
                                 "r_max), d = clip((mu_B - mu) / sigma, -d_max, d_max)")
    return verdict(name, max(errs), tol=1e-5, close=1e-3, what="max error", hint=hint)
