"""Checks for the BN forward, backward and convolution exercises (float64, shifted inputs,
random gamma/beta, several shapes and eps values).

Each check runs the student's function on several cases, reports the worst relative error, and
names the mistake it recognizes by computing what each usual mistake returns on the same cases
(forgotten eps, eps outside the square root, unbiased variance, wrong axis, missing gamma/beta,
sign errors, missing backward paths, swapped outputs, NCHW axes on NHWC data, ...).

The convolution check is in `checks.bn_math_conv`.

Used in notebooks/00_start_here.ipynb and notebooks/04_bn_math.ipynb.
"""

from __future__ import annotations

import inspect

import numpy as np

from ._core import CheckFailed, Verdict, as_array, check, grading_mode, rel_error, student, verdict
from ..compat import enable_x64

MATCH = 1e-5  # an answer within this relative error of a known mistake is named as that mistake

GENERIC_FORWARD = "compare mean, var, x_hat and y one at a time with a tiny batch"


# --- cases ----------------------------------------------------------------------------------


def _case(seed: int, shape=(16, 5)):
    """x = 5 randn + 12 (shifted, so a missing mean shows) with its last feature of std 0.05
    (variance 2.5e-3, so eps = 1e-5 already changes the output by about 0.2 %), random
    gamma in [0.5, 2], beta and upstream gradient dy."""
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal(shape) + 12.0
    x[:, -1] = 0.05 * rng.standard_normal(shape[0]) + 3.0
    d = shape[-1]
    gamma = rng.uniform(0.5, 2.0, d)
    beta = rng.standard_normal(d)
    dy = rng.standard_normal(shape)
    return x, gamma, beta, dy


def _forward_cases(eps: float):
    """(x, gamma, beta, eps, pass_eps): the default eps first, then other shapes and eps values
    (passed as the 4th argument), so a hard-coded output or a hard-coded eps fails."""
    specs = [(0, (16, 5), eps, False), (1, (7, 3), 1e-3, True), (2, (32, 4), 0.1, True)]
    if grading_mode():
        specs += [(10, (5, 6), 1e-5, True), (11, (64, 2), 0.3, True)]
    return [(*_case(seed, shape)[:3], e, pass_eps) for seed, shape, e, pass_eps in specs]


# --- the usual forward mistakes, computed -------------------------------------------------


def _bn(x, g, b, eps, *, axis=0, ddof=0, centre=True, var="centred", root="inside"):
    mean = x.mean(axis=axis, keepdims=True)
    xc = x - mean if centre else x
    if var == "centred":
        v = x.var(axis=axis, ddof=ddof, keepdims=True)
    else:  # the uncentred second moment, mean(x**2)
        v = (x**2).mean(axis=axis, keepdims=True)
    if root == "inside":
        s = np.sqrt(v + eps)
    elif root == "outside":
        s = np.sqrt(v) + eps
    else:  # no square root
        s = v + eps
    return g * xc / s + b


FORWARD_MISTAKES = (
    ("forgot eps", lambda x, g, b, e: _bn(x, g, b, 0.0),
     "eps is missing: divide by sqrt(var + eps), not sqrt(var)"),
    ("eps outside the square root", lambda x, g, b, e: _bn(x, g, b, e, root="outside"),
     "eps goes inside the square root: sqrt(var + eps), not sqrt(var) + eps"),
    ("eps ignored", lambda x, g, b, e: _bn(x, g, b, 1e-5),
     "your function ignores its eps argument (it always uses 1e-5): use the eps passed in"),
    ("unbiased variance", lambda x, g, b, e: _bn(x, g, b, e, ddof=1),
     "use the biased variance (divide by N, not N-1) in training mode"),
    ("axis 1", lambda x, g, b, e: _bn(x, g, b, e, axis=1),
     "you normalized each example (axis=1); BN averages over the batch, axis=0"),
    ("whole array", lambda x, g, b, e: _bn(x, g, b, e, axis=None),
     "you took one mean and one variance over the whole array; BN takes one per feature, axis=0"),
    ("no gamma, no beta", lambda x, g, b, e: _bn(x, 1.0, 0.0, e),
     "gamma and beta are missing: y = gamma * x_hat + beta"),
    ("no gamma", lambda x, g, b, e: _bn(x, 1.0, b, e),
     "gamma is missing: y = gamma * x_hat + beta"),
    ("no beta", lambda x, g, b, e: _bn(x, g, 0.0, e),
     "beta is missing: y = gamma * x_hat + beta"),
    ("gamma and beta swapped", lambda x, g, b, e: _bn(x, b, g, e),
     "gamma and beta are swapped: multiply by gamma, then add beta"),
    ("no mean", lambda x, g, b, e: _bn(x, g, b, e, centre=False),
     "subtract the batch mean first: x_hat = (x - mean) / sqrt(var + eps)"),
    ("uncentred variance", lambda x, g, b, e: _bn(x, g, b, e, var="moment"),
     "the variance is the mean of (x - mean)**2, not of x**2"),
    ("no square root", lambda x, g, b, e: _bn(x, g, b, e, root="none"),
     "divide by the standard deviation sqrt(var + eps), not by the variance"),
)


def _takes_args(fn, n: int) -> bool:
    """True unless fn's signature clearly cannot take n positional arguments."""
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): just try it
        return True
    return True


def _named(outputs, mistakes, cases):
    """The hint of the first mistake whose outputs match `outputs` on every case, else None."""
    for _key, wrong, hint in mistakes:
        refs = [wrong(*c) for c in cases]
        if all(np.shape(o) == np.shape(r) and rel_error(o, r) < MATCH
               for o, r in zip(outputs, refs, strict=True)):
            return hint
    return None


def _array(got, x_shape, what):
    """as_array with a transpose named: (D, N) instead of (N, D)."""
    if getattr(got, "shape", None) is not None and len(x_shape) == 2 \
            and tuple(got.shape) == tuple(x_shape[::-1]) != tuple(x_shape):
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(x_shape)}",
                          f"{what} is transposed: keep the shape (N, D) of x")
    return as_array(got, x_shape, what=what)


@check("batch_norm forward")
def check_batch_norm_forward(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, gamma, beta[, eps]) -> y against Algorithm 1 on several (N, D) batches.

    The first case calls fn(x, gamma, beta) with the default eps; the others pass eps as the
    4th argument (1e-3, 0.1, and more under the grader) and use other shapes.
    The convolution check is in `checks.bn_math_conv`.

Used in notebooks/00_start_here.ipynb and notebooks/04_bn_math.ipynb.
    """
    name = "batch_norm forward"
    cases = _forward_cases(eps)
    with enable_x64(True):
        outputs, errs = [], []
        for x, g, b, e, pass_eps in cases:
            if pass_eps and not _takes_args(fn, 4):  # after the default case ran
                raise CheckFailed("your function takes no eps argument",
                                  "define it as my_batch_norm(x, gamma, beta, eps=1e-5) and use eps")
            got = student(fn, x, g, b, e) if pass_eps else student(fn, x, g, b)
            got = _array(got, x.shape, "output")
            outputs.append(got)
            errs.append(rel_error(got, _bn(x, g, b, e)))
        worst = max(errs)
        hint = "" if worst <= 1e-7 else (
            _named(outputs, FORWARD_MISTAKES, [c[:4] for c in cases]) or GENERIC_FORWARD)
        return verdict(name, worst, tol=1e-7, what=f"max rel error over {len(cases)} batches",
                       hint=hint)


# --- backward -------------------------------------------------------------------------------


def _grads(dy, x, g, eps, *, ddof=0, dx_kind="right", dgamma_kind="right", dbeta_kind="right"):
    """(dx, dgamma, dbeta) of sum(dy * BN(x)), right or with one of the usual mistakes."""
    mean = x.mean(0)
    var = x.var(0, ddof=ddof)
    inv = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv
    mdy, mdyx = dy.mean(0), (dy * x_hat).mean(0)
    dx = {
        "right": g * inv * (dy - mdy - x_hat * mdyx),
        "no mean path": g * inv * (dy - x_hat * mdyx),
        "no variance path": g * inv * (dy - mdy),
        "direct only": g * inv * dy,
        "no gamma": inv * (dy - mdy - x_hat * mdyx),
        "sums not means": g * inv * (dy - dy.sum(0) - x_hat * (dy * x_hat).sum(0)),
        "negative": -g * inv * (dy - mdy - x_hat * mdyx),
    }[dx_kind]
    dgamma = {
        "right": (dy * x_hat).sum(0),
        "no x_hat": dy.sum(0),
        "x not x_hat": (dy * x).sum(0),
        "mean": (dy * x_hat).mean(0),
        "times gamma": (dy * x_hat).sum(0) * g,
        "negative": -(dy * x_hat).sum(0),
    }[dgamma_kind]
    dbeta = {
        "right": dy.sum(0),
        "mean": dy.mean(0),
        "negative": -dy.sum(0),
        "times gamma": dy.sum(0) * g,
    }[dbeta_kind]
    return dx, dgamma, dbeta


BACKWARD_MISTAKES = {
    "dx": (
        ("negative", "dx has the wrong sign"),
        ("no mean path", "the path through the mean is missing: subtract the batch mean of dy "
                         "(dx must sum to 0 over the batch)"),
        ("no variance path", "the path through the variance is missing: also subtract "
                             "x_hat * mean(dy * x_hat)"),
        ("direct only", "only the direct path: dx also flows through the mean and through the "
                        "variance (three paths)"),
        ("no gamma", "dx is missing the factor gamma (dL/dx_hat = gamma * dy)"),
        ("sums not means", "the closed form subtracts batch *means* of dy and dy * x_hat: "
                           "divide those sums by N"),
        ("unbiased", "use the biased variance (divide by N, not N-1), as the forward pass does"),
        ("no eps", "eps is missing in dx: x_hat and the factor 1/sqrt(var + eps) both use it"),
    ),
    "dgamma": (
        ("negative", "dgamma has the wrong sign"),
        ("no x_hat", "dgamma = sum over the batch of dy * x_hat: you left out x_hat"),
        ("x not x_hat", "dgamma multiplies dy by x_hat, the normalized input, not by x"),
        ("mean", "dgamma is a sum over the batch, not a mean"),
        ("times gamma", "dgamma = sum(dy * x_hat) has no factor gamma"),
        ("unbiased", "use the biased variance (divide by N, not N-1) for x_hat"),
        ("no eps", "eps is missing in x_hat: x_hat = (x - mean) / sqrt(var + eps)"),
    ),
    "dbeta": (
        ("negative", "dbeta has the wrong sign"),
        ("mean", "dbeta is a sum over the batch of dy, not a mean"),
        ("times gamma", "dbeta = sum(dy) has no factor gamma"),
    ),
}
BACKWARD_GENERIC = {
    "dx": "dx has three paths: through x_hat directly, through the mean and through the "
          "variance; dx should sum to 0 over the batch",
    "dgamma": "dgamma = sum over the batch of dy * x_hat",
    "dbeta": "dbeta = sum over the batch of dy",
}
_ORDER = ("dx", "dgamma", "dbeta")


def _backward_mistake(part, kind, dy, x, g, eps):
    if kind == "unbiased":
        return _grads(dy, x, g, eps, ddof=1)[_ORDER.index(part)]
    if kind == "no eps":
        return _grads(dy, x, g, 0.0)[_ORDER.index(part)]
    return _grads(dy, x, g, eps, **{f"{part}_kind": kind})[_ORDER.index(part)]


def _backward_cases():
    specs = [(1, (16, 5)), (3, (9, 3))]
    if grading_mode():
        specs += [(12, (40, 2)), (13, (6, 7))]
    return [_case(seed, shape) for seed, shape in specs]


@check("batch_norm backward")
def check_batch_norm_backward(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(dy, x, gamma) -> (dx, dgamma, dbeta) against the float64 closed form (equal to
    `jax.vjp` of the forward pass) on several shifted batches, gradient by gradient.

    Used in notebooks/04_bn_math.ipynb.
    """
    name = "batch_norm backward"
    cases = _backward_cases()
    with enable_x64(True):
        got_all = {p: [] for p in _ORDER}
        errs = {p: 0.0 for p in _ORDER}
        for x, g, _b, dy in cases:
            out = student(fn, dy, x, g)
            if out is None:
                raise CheckFailed("output is None", "your function returned None: did you "
                                                    "forget `return`?")
            if not isinstance(out, (tuple, list)) or len(out) != 3:
                raise CheckFailed(f"output is a {type(out).__name__}"
                                  + (f" of length {len(out)}" if isinstance(out, (tuple, list))
                                     else ""),
                                  "return a tuple (dx, dgamma, dbeta)")
            shapes = [tuple(np.shape(o)) if hasattr(o, "shape") else None for o in out]
            if shapes[0] == (x.shape[1],) and shapes[2] == x.shape:
                raise CheckFailed(f"the first output has shape {shapes[0]}, expected {x.shape}",
                                  "return (dx, dgamma, dbeta) in that order")
            dx = _array(out[0], x.shape, "dx")
            dgamma = as_array(out[1], (x.shape[1],), what="dgamma")
            dbeta = as_array(out[2], (x.shape[1],), what="dbeta")
            refs = _grads(dy, x, g, eps)
            for part, got, ref in zip(_ORDER, (dx, dgamma, dbeta), refs, strict=True):
                got_all[part].append(got)
                errs[part] = max(errs[part], rel_error(got, ref))
        worst = max(errs, key=errs.get)
        if errs[worst] <= 1e-7:
            return verdict(name, errs[worst], what=f"max rel error ({worst})")
        swapped = all(rel_error(a, _grads(dy, x, g, eps)[2]) < MATCH
                      and rel_error(b, _grads(dy, x, g, eps)[1]) < MATCH
                      for a, b, (x, g, _b, dy) in zip(got_all["dgamma"], got_all["dbeta"], cases,
                                                      strict=True))
        if swapped:
            hint = "dgamma and dbeta are swapped: return (dx, dgamma, dbeta) in that order"
        else:
            hints = []
            for part in _ORDER:
                if errs[part] <= 1e-7:
                    continue
                found = next((h for kind, h in BACKWARD_MISTAKES[part]
                              if all(rel_error(o, _backward_mistake(part, kind, dy, x, g, eps))
                                     < MATCH for o, (x, g, _b, dy)
                                     in zip(got_all[part], cases, strict=True))),
                             BACKWARD_GENERIC[part])
                hints.append((part, found))
            hint = hints[0][1] if len(hints) == 1 else "; ".join(f"{p}: {h}" for p, h in hints)
        return verdict(name, errs[worst], tol=1e-7, what=f"max rel error ({worst})", hint=hint)
