"""Checks for the zig-zag exercises: Hessian eigenvalues of a two-weight loss, the largest stable
learning rate.

Each check runs the student's function on several losses, points and datasets (more under the
grader), computes what each typical mistake of the exercise would return, and names the mistake
that matches. Used in notebooks/02_zigzag.ipynb.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import zigzag as _zz
from ._core import CheckFailed, Verdict, as_array, as_number, check, fail, grading_mode, student, \
    verdict

HESSIAN_TOL, HESSIAN_CLOSE = 1e-5, 1e-3   # float32 Hessians agree to about 1e-6
LR_TOL, LR_CLOSE = 1e-3, 1e-2             # relative error of a predicted learning rate
MATCH = 1e-3                               # an answer "is" a mistake within this relative error


def _rosenbrock(w):
    return (1.0 - w[0]) ** 2 + 5.0 * (w[1] - w[0] ** 2) ** 2


def _hessian_cases():
    """(description, loss function of w, point w): data losses and one indefinite Hessian."""
    cases = []
    for scale, offset, loss, w in ((4.0, 1.5, "quadratic", (0.3, -0.2)),
                                   (4.0, 1.5, "logistic", (0.5, -0.4)),
                                   (2.0, -1.0, "logistic", (-0.6, 0.9))):
        x, t = _zz.make_inputs(scale, offset, "raw")
        cases.append((f"{loss} loss, scale {scale:g}, offset {offset:g}",
                      lambda v, x=x, t=t, loss=loss: _zz.loss_value(v, x, t, loss),
                      jnp.array(w, jnp.float32)))
    cases.append(("a Rosenbrock-like function (one negative eigenvalue)", _rosenbrock,
                  jnp.array([0.5, 0.6], jnp.float32)))
    if grading_mode():  # hidden cases: other data, other points
        x, t = _zz.make_inputs(6.0, 0.5, "raw", seed=1)
        cases.append(("hidden logistic case", lambda v: _zz.loss_value(v, x, t, "logistic"),
                      jnp.array([1.1, -0.3], jnp.float32)))
        cases.append(("hidden Rosenbrock case", _rosenbrock, jnp.array([-0.4, 0.9], jnp.float32)))
    return cases


def _close(a, b, rtol=MATCH):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rtol * (np.abs(b) + 1e-6)))


def hessian_mistakes(loss_fn, w) -> dict:
    """{hint: what that mistake returns} for hessian_eigs(loss_fn, w), the typical mistakes first.

    Used by check_hessian_eigs and tests/test_checks_zigzag.py.
    """
    h = np.asarray(jax.hessian(loss_fn)(w), dtype=np.float64)
    ref = np.linalg.eigvalsh(h)
    g = np.asarray(jax.grad(loss_fn)(w), dtype=np.float64)
    h0 = np.asarray(jax.hessian(loss_fn)(jnp.zeros(2)), dtype=np.float64)
    return {
        "sort the eigenvalues in ascending order (jnp.linalg.eigvalsh does)": ref[::-1],
        "those are the diagonal entries of H; the eigenvalues need jnp.linalg.eigvalsh(H)":
            np.sort(np.diag(h)),
        "off by a factor 2: take the Hessian of loss_fn itself (jax.hessian)": 2 * ref,
        "off by a factor 1/2: take the Hessian of loss_fn itself (jax.hessian)": ref / 2,
        "those are absolute values (singular values?): an eigenvalue can be negative, "
        "use jnp.linalg.eigvalsh": np.sort(np.abs(ref)),
        "that is the Hessian at w = 0: evaluate it at the point w you were given":
            np.linalg.eigvalsh(h0),
        "that is the gradient (jax.grad); the curvature needs jax.hessian(loss_fn)(w)": g,
        "that is the outer product of gradients; use jax.hessian(loss_fn)(w)":
            np.linalg.eigvalsh(np.outer(g, g)),
    }


def _eigs_answer(got):
    """The student's answer as a float array, with a hint for the usual wrong containers."""
    if isinstance(got, (tuple, list)) and len(got) == 2 and np.ndim(got[1]) == 2:
        raise CheckFailed("you returned a pair (eigenvalues, eigenvectors)",
                          "jnp.linalg.eigh returns both: return only the eigenvalues "
                          "(or use jnp.linalg.eigvalsh)")
    if hasattr(got, "dtype") and np.iscomplexobj(got):
        raise CheckFailed("your eigenvalues are complex numbers",
                          "jnp.linalg.eig is for general matrices; the Hessian is symmetric: "
                          "use jnp.linalg.eigvalsh")
    arr = as_array(got, what="your eigenvalues")
    if arr.shape == (2, 2):
        raise CheckFailed("you returned a 2x2 matrix",
                          "that is the Hessian itself: return its two eigenvalues, "
                          "jnp.linalg.eigvalsh(H)")
    if arr.size != 2:
        raise CheckFailed(f"your eigenvalues have shape {arr.shape}, expected (2,)",
                          "return both eigenvalues of the 2x2 Hessian, as one array")
    return arr.ravel()


@check("hessian eigenvalues")
def check_hessian_eigs(fn) -> Verdict:
    """Check fn(loss_fn, w) -> the two eigenvalues of the Hessian of loss_fn at w, ascending,
    on a quadratic and two logistic losses of raw, shifted 2-D data and on a function whose
    Hessian has a negative eigenvalue.

    Used in notebooks/02_zigzag.ipynb.
    """
    name = "hessian eigenvalues"
    results = []
    for what, loss_fn, w in _hessian_cases():
        got = _eigs_answer(student(fn, loss_fn, w))
        ref = np.linalg.eigvalsh(np.asarray(jax.hessian(loss_fn)(w), dtype=np.float64))
        err = float(np.max(np.abs(got - ref) / np.maximum(1e-8, np.abs(got) + np.abs(ref))))
        results.append((err, what, loss_fn, w, got, ref))
    results.sort(key=lambda r: -r[0])
    worst = results[0][0]
    hint = ("H = jax.hessian(loss_fn)(w); return jnp.linalg.eigvalsh(H) "
            f"(worst case: {results[0][1]})")
    for err, what, loss_fn, w, got, ref in results:  # worst first: the first mistake that fits
        if err <= HESSIAN_TOL:
            break
        match = next((m for m, value in hessian_mistakes(loss_fn, w).items()
                      if _close(got, value) and not _close(value, ref, 10 * MATCH)), None)
        if match:
            hint = f"{match} (case: {what})"
            break
    return verdict(name, worst, tol=HESSIAN_TOL, close=HESSIAN_CLOSE, hint=hint)


# ---------------------------------------------------------------- the largest stable rate
def _lr_cases(x=None, t=None, loss="quadratic"):
    """(description, x, t, loss): the exercise's data (if given), then other scales and offsets
    with both losses."""
    cases = [] if x is None else [("the exercise's data", x, t, loss)]
    settings = [(3.0, 2.0, 0), (1.5, 3.0, 0), (2.0, -1.5, 0)]
    if grading_mode():  # hidden cases: other samples and settings
        settings += [(8.0, 0.5, 1), (4.0, 2.5, 2)]
    for scale, offset, seed in settings:
        xs, ts = _zz.make_inputs(scale, offset, "raw", seed=seed)
        for kind in _zz.LOSSES:
            cases.append((f"{kind} loss, scale {scale:g}, offset {offset:g}", xs, ts, kind))
    return cases


def lr_mistakes(x, t, loss="quadratic") -> dict:
    """{hint: the learning rate that mistake predicts} for the largest stable rate of plain
    gradient descent on (x, t) with this loss, the exercise's typical mistakes first.

    Used by check_max_stable_lr and tests/test_checks_zigzag.py.
    """
    info = _zz.readout(x, t, loss)
    lo, hi = info["lam_min"], info["lam_max"]
    xx = np.asarray(x, dtype=np.float64)
    second = np.linalg.eigvalsh(xx.T @ xx / len(xx))[-1]
    cov = np.linalg.eigvalsh(np.cov(xx.T, bias=True))[-1]
    cov_unbiased = np.linalg.eigvalsh(np.cov(xx.T))[-1]
    diag = np.max(np.diag(np.asarray(_zz.hessian(x, t, loss), dtype=np.float64)))
    out = {}
    if loss == "quadratic":
        cov_hint = ("you used the covariance (inputs centred first): the Hessian of the quadratic "
                    "loss is E[x x^T] of the raw inputs, and their mean is what makes lam_max large")
        out[cov_hint] = 2 / cov
        out[cov_hint + " (and divided by n - 1)"] = 2 / cov_unbiased
    else:
        out["that is 2/lam_max of E[x x^T], the quadratic loss's Hessian: pass `loss` on to "
            "zz.loss_value and zz.minimum"] = 2 / second
        h0 = np.linalg.eigvalsh(np.asarray(_zz.hessian(x, t, loss, w=jnp.zeros(2))))[-1]
        out["that is the Hessian at w = 0: the logistic Hessian changes with w, read it at the "
            "minimum zz.minimum(x, t, loss)"] = 2 / h0
    out.update({
        "1/lam_max fixes the steepest direction in one step; the stability limit is twice as "
        "large, 2/lam_max": 1 / hi,
        "2/(lam_max + lam_min) is the best fixed step (fastest convergence); the largest stable "
        "step is 2/lam_max": 2 / (hi + lo),
        "2/lam_min: the largest eigenvalue, not the smallest, sets the limit": 2 / lo,
        "1/lam_min: the largest eigenvalue sets the limit, eta < 2/lam_max": 1 / lo,
        "those are diagonal entries of H, not its eigenvalues: use lam_max of "
        "jnp.linalg.eigvalsh(H)": 2 / diag,
        "that is an eigenvalue, not a learning rate: eta_max = 2/lam_max": hi,
        "that is lam_max/2, not a learning rate: eta_max = 2/lam_max": hi / 2,
    })
    return out


def _lr_match(err, value, what, x, t, loss):
    ref = _zz.readout(x, t, loss)["lr_max"]
    for mistake, wrong in lr_mistakes(x, t, loss).items():
        if abs(value - wrong) <= 5 * MATCH * wrong and abs(wrong - ref) > 10 * MATCH * ref:
            return f"{mistake} (case: {what})"
    return None


@check("largest stable learning rate")
def check_max_stable_lr(fn, x=None, t=None, loss: str = "quadratic") -> Verdict:
    """Check fn(x, t, loss) -> the largest stable learning rate of plain gradient descent,
    2/lam_max of the loss's Hessian at the minimum, on the exercise's (x, t) and on other
    scales, offsets and both losses (a constant cannot pass).

    Used in notebooks/02_zigzag.ipynb.
    """
    name = "largest stable learning rate"
    if not callable(fn):
        as_number(fn, what="your answer")  # None, strings, NaN: their own message
        return fail(name, "got a number, not a function",
                    "pass your function predict_max_lr itself: the check runs it on several "
                    "datasets and both losses")
    results = []
    for what, xs, ts, kind in _lr_cases(x, t, loss):
        value = as_number(student(fn, xs, ts, kind), what="your learning rate")
        if value <= 0:
            raise CheckFailed(f"your learning rate is {value:.4g} ({what})",
                              "a learning rate is a number > 0: eta_max = 2/lam_max")
        ref = _zz.readout(xs, ts, kind)["lr_max"]
        results.append((abs(value - ref) / ref, value, what, xs, ts, kind))
    results.sort(key=lambda r: -r[0])
    worst, what = results[0][0], results[0][2]
    values = np.array([r[1] for r in results])
    hint = ("eta_max = 2/lam_max, with lam_max the largest eigenvalue of the loss's Hessian at "
            f"the minimum (worst case: {what})")
    if len(values) > 1 and np.all(np.abs(values - values[0]) <= 1e-9 * abs(values[0])):
        hint = ("your function returns the same number for every dataset: compute it from "
                "x, t and loss")
    else:  # the first wrong case, worst first, whose answer a known mistake explains
        hint = next((h for h in (_lr_match(*r) for r in results if r[0] > LR_TOL) if h), hint)
    return verdict(name, worst, tol=LR_TOL, close=LR_CLOSE,
                   what=f"worst rel error over {len(results)} cases", hint=hint)
