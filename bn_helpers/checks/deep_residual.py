"""Checks for the exercises of notebook 09: the variance of a residual stack at init and the
per-layer growth rate of gradient norms.

Every check tries several inputs and parameter values, recognizes the usual mistakes of its
exercise by computing what each one returns, and names it in the hint; the tolerances separate
the right answer from every listed mistake (tests/test_checks_deep_residual.py).

Used in notebooks/09_deep_residual.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import CheckFailed, Verdict, as_array, as_number, check, grading_mode, student, verdict

# --- Exercise 1: variance after each residual block ----------------------------------------------


def _var_cases(hidden: bool):
    cases = [(1.0, 1.0, 10, False, 1.0), (0.3, 0.5, 20, True, 1.4), (2.0, 0.25, 8, False, 1.4),
             (0.5, 1.5, 12, True, 1.0), (0.8, 0.6, 9, False, 2.0)]
    if hidden:
        cases += [(0.7, 0.8, 15, False, 0.6), (3.0, 0.1, 30, True, 2.0), (1.2, 2.0, 5, True, 1.0)]
    return cases


def residual_variance_formulas(v0, alpha, num_blocks, normalized, gain) -> dict:
    """{description: array} of the right variances and of the usual mistakes."""
    k = np.arange(num_blocks + 1, dtype=np.float64)
    a2 = alpha ** 2
    right_n, right_p = v0 + k * a2, v0 * (1 + gain * a2) ** k
    return {
        "right": right_n if normalized else right_p,
        "the two cases swapped (a norm makes Var f = 1, no norm Var f = gain * Var x)":
            v0 * (1 + gain * a2) ** k if normalized else v0 + k * gain * a2,
        "alpha instead of alpha^2 (a factor a multiplies the variance by a^2)":
            v0 + k * alpha if normalized else v0 * (1 + gain * alpha) ** k,
        "v0 left out (the input's variance is where the skip path starts)":
            k * a2 if normalized else (1 + gain * a2) ** k,
        "standard deviations added instead of variances (independent parts add variances)":
            (np.sqrt(v0) + k * alpha) ** 2 if normalized
            else v0 * (1 + np.sqrt(gain) * alpha) ** (2 * k),
        "v0 * (1 + l alpha^2) (with a norm the branch adds alpha^2, not v0 alpha^2)":
            v0 * (1 + k * a2) if normalized else right_p,
        "gain left out (without a norm Var f = gain * Var x)":
            right_n if normalized else v0 * (1 + a2) ** k,
        "gain applied with a norm too (a norm resets the branch to variance 1)":
            v0 + k * gain * a2 if normalized else right_p,
        "2^l (alpha ignored: it scales the branch)": v0 + k if normalized else v0 * (1 + gain) ** k,
    }


def _length(got):
    """len of a 1-D array of numbers, else None."""
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr.size if arr.ndim == 1 else None


@check("residual variance")
def check_residual_variance(fn) -> Verdict:
    """Check fn(v0, alpha, num_blocks, normalized, gain) -> variances after 0..num_blocks blocks.

    Names the swapped cases, alpha unsquared, v0 left out, stds added, v0 multiplying the
    normalized sum, the gain left out or applied with a norm, alpha ignored, and a result
    without block 0.

    Used in notebooks/09_deep_residual.ipynb.
    """
    name = "residual variance"
    errs, tables = [], []
    for v0, alpha, n, normed, gain in _var_cases(grading_mode()):
        got = student(fn, v0, alpha, n, normed, gain)
        if _length(got) == n:
            raise CheckFailed(f"your answer has {n} values for num_blocks={n}, expected {n + 1}",
                              "include block 0 (the input, variance v0): num_blocks + 1 values")
        value = as_array(got, (n + 1,), what="variances")
        table = residual_variance_formulas(v0, alpha, n, normed, gain)
        tables.append((value, table))
        errs.append(float(np.max(np.abs(value - table["right"]) / table["right"])))
    err = max(errs)
    hint = "v_l = v0 + l alpha^2 with a norm, v0 (1 + gain alpha^2)^l without; l = 0 .. num_blocks"
    for mistake in tables[0][1]:
        # A mistake matches when every case it changes comes out as that mistake
        changed = [(v, t) for v, t in tables if not np.allclose(t[mistake], t["right"], rtol=1e-4)]
        if mistake != "right" and changed and all(np.allclose(v, t[mistake], rtol=1e-4, atol=0)
                                                  for v, t in changed):
            hint = f"your values match {mistake}"
            break
    # The nearest mistake differs by >= 3 % somewhere in every case; float32 rounding ~1e-7
    return verdict(name, err, tol=1e-5, close=1e-3, what="max relative error", hint=hint)


# --- Exercise 2: per-layer growth factor of gradient norms -----------------------------------------


def _rate_cases(hidden: bool):
    rng = np.random.default_rng(19 if hidden else 13)
    cases = []
    specs = ((1.15, 100), (1.01, 50), (0.97, 20), (1.3, 10)) + (((1.05, 33), (1.2, 64)) if hidden else ())
    for r, n in specs:
        noise = np.exp(rng.normal(scale=0.3, size=n))
        cases.append(r ** np.arange(n - 1, -1, -1.0) * noise * (0.01 + rng.random()))
    return cases


def growth_rate_formulas(g) -> dict:
    """{description: value} of the right growth factor and of the usual mistakes."""
    g = np.asarray(g, dtype=np.float64)
    n, q = len(g), g[0] / g[-1]
    return {
        "right": q ** (1 / (n - 1)),
        "(first / last)^(1/L) (L layers are L - 1 steps apart)": q ** (1 / n),
        "(last / first)^(1/(L-1)) (upside down: the gradient grows towards the first layer)":
            q ** (-1 / (n - 1)),
        "first / last without the root (that is the whole network's ratio)": q,
        "the arithmetic mean of g[l] / g[l+1] (use the geometric mean)": float(np.mean(g[:-1] / g[1:])),
        "log(first / last) / (L - 1) without exp": float(np.log(q) / (n - 1)),
        "(first / last) / (L - 1) (a root, not a division)": q / (n - 1),
    }


@check("gradient growth rate")
def check_growth_rate(fn) -> Verdict:
    """Check fn(grad_norms) -> (first / last) ** (1 / (L - 1)) on noisy geometric profiles.

    Names the root 1/L, the ratio upside down, no root, an arithmetic mean of ratios, the log
    without exp and a division instead of a root; a non-scalar answer.

    Used in notebooks/09_deep_residual.ipynb.
    """
    name = "gradient growth rate"
    errs, tables = [], []
    for g in _rate_cases(grading_mode()):
        got = student(fn, g.copy())
        if hasattr(got, "shape") and np.size(got) > 1:
            raise CheckFailed(f"your answer has shape {np.shape(got)}, expected one number",
                              "one factor for the whole network: (first / last) ** (1 / (L - 1))")
        value = as_number(got, what="growth rate")
        table = growth_rate_formulas(g)
        tables.append((value, table))
        errs.append(abs(value - table["right"]) / table["right"])
    err = max(errs)
    hint = "r = (g[0] / g[-1]) ** (1 / (len(g) - 1))"
    for mistake in tables[0][1]:
        if mistake != "right" and all(abs(v - t[mistake]) <= 1e-4 * abs(t[mistake]) for v, t in tables):
            hint = f"your values match {mistake}"
            break
    return verdict(name, err, tol=1e-6, close=1e-3, what="max relative error", hint=hint)
