"""Checks for the exercises of notebook 07: the cosine between two gradients (gradient-based
internal covariate shift) and the effective learning rate of a scale-invariant layer.

Every check tries several inputs and parameter values, recognizes the usual mistakes of its
exercise by computing what each one returns, and names it in the hint; the tolerances separate
the right answer from every listed mistake (tests/test_checks_why_bn_works.py).

Used in notebooks/07_why_bn_works.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import CheckFailed, Verdict, as_number, check, grading_mode, student, verdict

# --- Exercise 1: cos of the angle between G and G' ----------------------------------------------


def _cos_cases(hidden: bool):
    rng = np.random.default_rng(7 if hidden else 3)
    cases = []
    shapes = ((4, 3), (10,), (2, 3, 5)) + (((6, 6), (25,)) if hidden else ())
    for i, shape in enumerate(shapes):
        a = rng.normal(size=shape) * (1.0 + i)
        b = 0.6 * a + rng.normal(size=shape) * 0.8          # correlated, different length
        cases.append((a, b))
    a = rng.normal(size=(3, 4))
    cases.append((a, -2.5 * a))                              # opposite directions: cos = -1
    return cases


def cosine_formulas(a, b) -> dict:
    """{description: value} of the right cosine and of the usual mistakes, for arrays a, b."""
    a, b = np.ravel(a), np.ravel(b)
    dot, na, nb = float(a @ b), float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = dot / (na * nb)
    return {
        "right": cos,
        "the plain dot product (divide by both norms)": dot,
        "1 - cos (that is a distance, not the cosine)": 1 - cos,
        "|cos| (keep the sign: opposite gradients give -1)": abs(cos),
        "the l2 distance ||G - G'|| (the other ICS measure)": float(np.linalg.norm(a - b)),
        "dot / ||G||^2 (divide by the product of the two norms)": dot / na ** 2,
        "the mean of G * G' instead of the sum": cos / a.size,
        "dot / (||G||^2 * ||G'||^2) (norms squared)": dot / (na ** 2 * nb ** 2),
    }


@check("gradient cosine")
def check_gradient_cosine(fn) -> Verdict:
    """Check fn(G, G2) -> cos of the angle between two arrays of any (equal) shape.

    Names the dot product without normalization, 1 - cos, |cos|, the l2 distance, a single
    norm, a mean instead of a sum and squared norms; a non-scalar answer (no flattening).

    Used in notebooks/07_why_bn_works.ipynb.
    """
    name = "gradient cosine"
    errs, tables = [], []
    for a, b in _cos_cases(grading_mode()):
        got = student(fn, a.copy(), b.copy())
        if hasattr(got, "shape") and np.size(got) > 1:
            raise CheckFailed(f"your answer has shape {np.shape(got)}, expected one number",
                              "flatten both gradients (jnp.ravel) before taking their dot product")
        value = as_number(got, what="cos")
        table = cosine_formulas(a, b)
        tables.append((value, table))
        errs.append(abs(value - table["right"]))
    err = max(errs)
    hint = "cos = sum(G * G') / (||G|| * ||G'||), over all entries"
    for mistake in tables[0][1]:
        if mistake != "right" and all(abs(v - t[mistake]) <= 1e-4 * max(1.0, abs(t[mistake]))
                                      for v, t in tables):
            hint = f"your values match {mistake}"
            break
    # The nearest mistake (|cos| on the opposite pair) is off by 2; float32 rounding ~1e-7
    return verdict(name, err, tol=1e-5, close=1e-3, what="max abs error of cos", hint=hint)


# --- Exercise 2: the effective learning rate -----------------------------------------------------


def _lr_cases(hidden: bool):
    rng = np.random.default_rng(11 if hidden else 5)
    cases = [(0.1, 2.0 * rng.normal(size=(30, 20))), (0.5, 0.3 * rng.normal(size=(10, 5))),
             (2.0, rng.normal(size=(7,)) * 1.7)]
    if hidden:
        cases += [(0.03, 5.0 * rng.normal(size=(50, 8))), (1.0, 0.1 * rng.normal(size=(4, 4)))]
    return cases


def effective_lr_formulas(lr, w) -> dict:
    """{description: value} of lr / ||W||^2 and the usual mistakes."""
    sq = float(np.sum(np.square(w)))
    return {
        "right": lr / sq,
        "lr / ||W|| (square the norm)": lr / sq ** 0.5,
        "lr * ||W||^2 (the rate shrinks as the weights grow: divide)": lr * sq,
        "lr / mean(W^2) (sum the squares, do not average them)": lr / float(np.mean(np.square(w))),
        "||W||^2 / lr (upside down)": sq / lr,
        "lr alone (the weights' size is missing)": float(lr),
        "lr / sum(|W|) (the squared l2 norm, not the l1 norm)": lr / float(np.sum(np.abs(w))),
    }


@check("effective learning rate")
def check_effective_lr(fn) -> Verdict:
    """Check fn(lr, W) -> lr / ||W||^2 (squared Frobenius norm) for several rates and shapes.

    Names the unsquared norm, a product instead of a quotient, the mean of squares, the
    quotient upside down, lr alone and the l1 norm.

    Used in notebooks/07_why_bn_works.ipynb.
    """
    name = "effective learning rate"
    errs, tables = [], []
    for lr, w in _lr_cases(grading_mode()):
        got = student(fn, lr, w.copy())
        if hasattr(got, "shape") and np.size(got) > 1:
            raise CheckFailed(f"your answer has shape {np.shape(got)}, expected one number",
                              "sum the squares of all entries of W (the whole matrix), not per column")
        value = as_number(got, what="effective rate")
        table = effective_lr_formulas(lr, w)
        tables.append((value, table))
        errs.append(abs(value - table["right"]) / table["right"])
    err = max(errs)
    hint = "effective rate = lr / sum(W ** 2) over all entries of W"
    for mistake in tables[0][1]:
        if mistake != "right" and all(abs(v - t[mistake]) <= 1e-4 * abs(t[mistake]) for v, t in tables):
            hint = f"your values match {mistake}"
            break
    return verdict(name, err, tol=1e-5, close=1e-3, what="max relative error", hint=hint)
