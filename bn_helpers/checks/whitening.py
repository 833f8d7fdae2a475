"""Checks for the whitening exercises: per-feature standardization and ZCA whitening (float64).

Each check runs the student's function on several data sets and eps values (so a hard-coded
output or a hard-coded eps fails), reports the worst relative error, and names the usual
mistake it recognizes by computing what that mistake returns on the same cases.

Used in notebooks/01_whitening.ipynb.
"""

from __future__ import annotations

import numpy as np

from ._core import CheckFailed, Verdict, as_array, check, grading_mode, rel_error, student, verdict
from ..compat import enable_x64

MATCH = 1e-5  # an answer within this relative error of a known mistake is named as that mistake


def _case(seed: int, n: int = 64, d: int = 4):
    """Shifted, correlated features of very different scales (one with variance near 1e-3),
    so a missing mean, a wrong axis, a missing eps or a wrong rotation all show."""
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.6 * rng.standard_normal((d, d))
    x = rng.standard_normal((n, d)) @ mix
    scales = np.array([4.0, 1.0, 0.5, 0.03, 2.0, 0.2])[:d]
    means = np.array([10.0, -3.0, 2.0, 0.5, 7.0, -1.0])[:d]
    return x * scales + means


def _cases(eps: float):
    """(x, eps): the visible default first, then other sizes and eps values."""
    specs = [(0, 64, 4, eps), (2, 33, 3, 1e-2), (3, 100, 4, 0.5)]
    if grading_mode():
        specs += [(20, 17, 6, 1e-5), (21, 250, 2, 1e-3)]
    return [(_case(seed, n, d), e) for seed, n, d, e in specs]


def _named(outputs, mistakes, cases):
    """Hint of the first mistake whose outputs match on every case, else None."""
    for _key, wrong, hint in mistakes:
        refs = [wrong(x, e) for x, e in cases]
        if all(r is not None and np.shape(o) == np.shape(r) and rel_error(o, r) < MATCH
               for o, r in zip(outputs, refs, strict=True)):
            return hint
    return None


def _array(got, shape, what="output"):
    if getattr(got, "shape", None) is not None and tuple(got.shape) == tuple(shape[::-1]) \
            != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}",
                          "your output is transposed: keep the shape (N, D) of x, one example "
                          "per row")
    return as_array(got, shape, what=what)


def _run(name, fn, cases, ref, mistakes, generic):
    with enable_x64(True):
        outputs, errs = [], []
        for x, e in cases:
            got = _array(student(fn, x, e), x.shape)
            outputs.append(got)
            errs.append(rel_error(got, ref(x, e)))
        worst = max(errs)
        hint = "" if worst <= 1e-7 else (_named(outputs, mistakes, cases) or generic)
        return verdict(name, worst, tol=1e-7, what=f"max rel error over {len(cases)} data sets",
                       hint=hint)


# --- standardization --------------------------------------------------------------------------


def _ref_standardize(x, eps, ddof=0, axis=0):
    mean = x.mean(axis=axis, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axis, ddof=ddof, keepdims=True) + eps)


STANDARDIZE_MISTAKES = (
    ("axis 1", lambda x, e: _ref_standardize(x, e, axis=1),
     "you standardized each example (axis=1); standardize each feature over the batch, axis=0"),
    ("whole array", lambda x, e: _ref_standardize(x, e, axis=None),
     "you used one mean and one variance for the whole array; take one per feature, axis=0"),
    ("unbiased", lambda x, e: _ref_standardize(x, e, ddof=1),
     "use the biased variance (divide by N, not N-1), as BN does in training"),
    ("forgot eps", lambda x, e: _ref_standardize(x, 0.0),
     "eps is missing: divide by sqrt(var + eps), not sqrt(var)"),
    ("eps outside", lambda x, e: (x - x.mean(0)) / (x.std(0) + e),
     "eps goes inside the square root: sqrt(var + eps), not std + eps"),
    ("eps ignored", lambda x, e: _ref_standardize(x, 1e-5),
     "your function ignores its eps argument (it always uses 1e-5): use the eps passed in"),
    ("no mean", lambda x, e: x / np.sqrt(x.var(0) + e),
     "subtract the per-feature mean first"),
    ("centred only", lambda x, e: x - x.mean(0),
     "you centred the data; now divide by sqrt(var + eps)"),
    ("no square root", lambda x, e: (x - x.mean(0)) / (x.var(0) + e),
     "divide by the standard deviation sqrt(var + eps), not by the variance"),
    ("whitened", lambda x, e: _ref_zca(x, e),
     "that is ZCA whitening (it also decorrelates); standardize each feature on its own"),
)


@check("standardize")
def check_standardize(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, eps) -> (x - mean) / sqrt(var + eps), per feature (axis 0), biased variance,
    on three data sets with eps = `eps`, 1e-2 and 0.5 (more under the grader).

    Used in notebooks/01_whitening.ipynb.
    """
    return _run("standardize", fn, _cases(eps), _ref_standardize, STANDARDIZE_MISTAKES,
                "print the mean and variance of each column of your output: they should be "
                "0 and var / (var + eps)")


# --- ZCA ----------------------------------------------------------------------------------------


def _eig(x, ddof=0):
    xc = x - x.mean(0)
    vals, vecs = np.linalg.eigh(xc.T @ xc / (len(x) - ddof))
    return xc, vals, vecs


def _ref_zca(x, eps, *, kind="zca", ddof=0):
    xc, vals, vecs = _eig(x, ddof)
    scaled = vecs / np.sqrt(vals + eps)
    return xc @ (scaled if kind == "pca" else scaled @ vecs.T)


def _zca_with(x, eps, gains, *, centre=True, left_t=False):
    xc, vals, vecs = _eig(x)
    data = xc if centre else x
    if left_t:
        return data @ vecs.T @ np.diag(gains(vals, eps)) @ vecs
    return data @ vecs @ np.diag(gains(vals, eps)) @ vecs.T


ZCA_MISTAKES = (
    ("unbiased", lambda x, e: _ref_zca(x, e, ddof=1),
     "use the biased covariance (divide by N, not N-1)"),
    ("forgot eps", lambda x, e: _ref_zca(x, 0.0),
     "add eps to the eigenvalues before the square root: 1 / sqrt(lambda + eps)"),
    ("eps ignored", lambda x, e: _ref_zca(x, 1e-5),
     "your function ignores its eps argument (it always uses 1e-5): use the eps passed in"),
    ("eps outside", lambda x, e: _zca_with(x, e, lambda v, ep: 1 / (np.sqrt(v) + ep)),
     "eps goes inside the square root: 1 / sqrt(lambda + eps), not 1 / (sqrt(lambda) + eps)"),
    ("sqrt not inverted", lambda x, e: _zca_with(x, e, lambda v, ep: np.sqrt(v + ep)),
     "multiply by 1 / sqrt(lambda + eps), not sqrt(lambda + eps)"),
    ("inverse", lambda x, e: _zca_with(x, e, lambda v, ep: 1 / (v + ep)),
     "that is Cov^-1; ZCA uses Cov^(-1/2): divide by the square root of lambda + eps"),
    ("no mean", lambda x, e: _zca_with(x, e, lambda v, ep: 1 / np.sqrt(v + ep), centre=False),
     "subtract the per-feature mean before whitening"),
    ("U.T on the left", lambda x, e: _zca_with(x, e, lambda v, ep: 1 / np.sqrt(v + ep),
                                               left_t=True),
     "eigh returns eigenvectors as columns: use U, not U.T, on the left"),
    ("standardized", lambda x, e: _ref_standardize(x, e),
     "you standardized each feature; ZCA also decorrelates: use the eigendecomposition of the "
     "covariance"),
)

PCA_HINT = ("your output is white but not ZCA: rotate back with the eigenvectors, "
            "z = xc @ U diag(1/sqrt(lambda + eps)) U^T (the PCA version stops before U^T)")


def _is_other_whitening(outputs, cases):
    """True if every output has the covariance ZCA gives (diag lambda / (lambda + eps)), up to a
    rotation, yet differs from ZCA: PCA whitening, or a sign or order change of it."""
    for z, (x, e) in zip(outputs, cases, strict=True):
        _xc, vals, _vecs = _eig(x)
        white = np.sort(vals / (vals + e))
        got = np.sort(np.linalg.eigvalsh(np.cov(z.T, bias=True)))
        if not np.allclose(got, white, rtol=1e-6, atol=1e-9):
            return False
        if not np.allclose(z.mean(0), 0.0, atol=1e-9):
            return False
    return True


@check("zca_whiten")
def check_zca(fn, *, eps: float = 1e-5) -> Verdict:
    """Check fn(x, eps) -> ZCA-whitened x, (x - mean) @ U diag(1/sqrt(lambda + eps)) U^T with
    the biased covariance's eigenvalues lambda and eigenvectors U, on three data sets with
    eps = `eps`, 1e-2 and 0.5 (more under the grader).

    Used in notebooks/01_whitening.ipynb.
    """
    name = "zca_whiten"
    cases = [(_case(seed + 1, n, d), e) for seed, (n, d, e) in
             enumerate([(64, 4, eps), (40, 3, 1e-2), (120, 4, 0.5)]
                       + ([(30, 6, 1e-5), (300, 2, 1e-3)] if grading_mode() else []))]
    with enable_x64(True):
        outputs, errs = [], []
        for x, e in cases:
            got = _array(student(fn, x, e), x.shape)
            outputs.append(got)
            errs.append(rel_error(got, _ref_zca(x, e)))
        worst = max(errs)
        hint = ""
        if worst > 1e-7:
            hint = _named(outputs, ZCA_MISTAKES, cases)
            if hint is None and _is_other_whitening(outputs, cases):
                hint = PCA_HINT
            if hint is None:
                hint = ("check that the covariance of your output is close to the identity "
                        "(np.cov(z.T, bias=True)) and compare with a 2-feature example by hand")
        return verdict(name, worst, tol=1e-7, what=f"max rel error over {len(cases)} data sets",
                       hint=hint)
