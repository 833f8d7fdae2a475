"""Mistake tables for bn_helpers.checks.whitening (issue 12): every usual wrong answer to the
standardization and ZCA exercises gets FAIL with its own hint, in exactly one line; the
reference solutions get PASS."""

import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh

C = bnh.checks


def one_line(capsys):
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def std(x, eps, *, axis=0, ddof=0):
    m = x.mean(axis=axis, keepdims=True)
    return (x - m) / np.sqrt(x.var(axis=axis, ddof=ddof, keepdims=True) + eps)


def eig(x, ddof=0):
    xc = x - x.mean(0)
    vals, vecs = np.linalg.eigh(xc.T @ xc / (len(x) - ddof))
    return xc, vals, vecs


def zca(x, eps, *, ddof=0, gains=lambda v, e: 1 / np.sqrt(v + e), centre=True):
    xc, vals, vecs = eig(x, ddof)
    return (xc if centre else x) @ vecs @ np.diag(gains(vals, eps)) @ vecs.T


def raises(*_a):
    raise ValueError("boom")


def todo(*_a):
    raise NotImplementedError


GARBAGE = [
    ("forgot return", lambda x, eps: None, "forget `return`"),
    ("a string", lambda x, eps: "z", "return an array"),
    ("a tuple", lambda x, eps: (x, eps), "not an array of numbers"),
    ("a dict", lambda x, eps: {"z": x}, "return an array"),
    ("NaN", lambda x, eps: x * np.nan, "NaN"),
    ("inf", lambda x, eps: np.full_like(x, np.inf), "inf"),
    ("wrong shape", lambda x, eps: x[:, :2], "shape"),
    ("transposed", lambda x, eps: std(x, eps).T, "transposed"),
    ("hard-coded constant", lambda x, eps: np.zeros((64, 4)), "shape"),
    ("raises", lambda x, eps: raises(), "ValueError"),
    ("not implemented", lambda x, eps: todo(), "not implemented yet"),
    ("not a function", "my_standardize", "expected a function"),
]

STANDARDIZE_TABLE = [
    ("axis 1", lambda x, eps: std(x, eps, axis=1), "axis=1"),
    ("whole array", lambda x, eps: std(x, eps, axis=None), "whole array"),
    ("unbiased", lambda x, eps: std(x, eps, ddof=1), "biased variance"),
    ("forgot eps", lambda x, eps: std(x, 0.0), "eps is missing"),
    ("eps outside", lambda x, eps: (x - x.mean(0)) / (x.std(0) + eps), "inside the square root"),
    ("eps hard-coded", lambda x, eps: std(x, 1e-5), "ignores its eps"),
    ("no mean", lambda x, eps: x / np.sqrt(x.var(0) + eps), "subtract the per-feature mean"),
    ("centred only", lambda x, eps: x - x.mean(0), "now divide"),
    ("no square root", lambda x, eps: (x - x.mean(0)) / (x.var(0) + eps), "not by the variance"),
    ("whitened instead", lambda x, eps: zca(x, eps), "ZCA whitening"),
    ("zeros of the right shape", lambda x, eps: np.zeros_like(x), "print the mean"),
] + GARBAGE


def test_standardize_reference_passes(capsys):
    assert C.check_standardize(lambda x, eps: std(x, eps))
    assert C.check_standardize(lambda x, eps=1e-5: bnh.whitening.standardize(x, eps))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith("PASS") for line in lines)


@pytest.mark.parametrize("label, fn, hint", STANDARDIZE_TABLE,
                         ids=[r[0] for r in STANDARDIZE_TABLE])
def test_standardize_mistakes_fail_with_their_hint(label, fn, hint, capsys):
    assert not C.check_standardize(fn)
    line = one_line(capsys)
    assert "| FAIL" in line and hint in line, line


def pca(x, eps):
    xc, vals, vecs = eig(x)
    return xc @ vecs @ np.diag(1 / np.sqrt(vals + eps))


ZCA_TABLE = [
    ("PCA, not rotated back", pca, "rotate back"),
    ("unbiased covariance", lambda x, eps: zca(x, eps, ddof=1), "biased covariance"),
    ("forgot eps", lambda x, eps: zca(x, 0.0), "add eps"),
    ("eps hard-coded", lambda x, eps: zca(x, 1e-5), "ignores its eps"),
    ("eps outside", lambda x, eps: zca(x, eps, gains=lambda v, e: 1 / (np.sqrt(v) + e)),
     "inside the square root"),
    ("sqrt not inverted", lambda x, eps: zca(x, eps, gains=lambda v, e: np.sqrt(v + e)),
     "not sqrt(lambda + eps)"),
    ("Cov^-1", lambda x, eps: zca(x, eps, gains=lambda v, e: 1 / (v + e)), "Cov^-1"),
    ("no mean", lambda x, eps: zca(x, eps, centre=False), "mean"),
    ("U.T on the left", lambda x, eps: (lambda xc, v, u: xc @ u.T @ np.diag(1 / np.sqrt(v + eps))
                                        @ u)(*eig(x)), "columns"),
    ("standardized only", lambda x, eps: std(x, eps), "also decorrelates"),
    ("one feature stretched", lambda x, eps: zca(x, eps) * np.r_[2.0, np.ones(x.shape[1] - 1)],
     "identity"),
    ("jnp float32", lambda x, eps: jnp.asarray(zca(x, eps), jnp.float32) * (1 + 1e-3),
     "identity"),
] + GARBAGE


def test_zca_reference_passes(capsys):
    assert C.check_zca(lambda x, eps: zca(x, eps))
    assert C.check_zca(lambda x, eps=1e-5: bnh.whitening.zca_whiten(x, eps))

    def svd_zca(x, eps):  # an SVD-based ZCA is just as right
        xc = x - x.mean(0)
        _, s, vt = np.linalg.svd(xc, full_matrices=False)
        return xc @ vt.T @ np.diag(1 / np.sqrt(s**2 / len(x) + eps)) @ vt

    assert C.check_zca(svd_zca)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.endswith("PASS") for line in lines)


@pytest.mark.parametrize("label, fn, hint", ZCA_TABLE, ids=[r[0] for r in ZCA_TABLE])
def test_zca_mistakes_fail_with_their_hint(label, fn, hint, capsys):
    assert not C.check_zca(fn)
    line = one_line(capsys)
    assert "| FAIL" in line and hint in line, line


def test_hidden_cases_under_the_grader(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert C.check_standardize(lambda x, eps: std(x, eps))
    assert C.check_zca(lambda x, eps: zca(x, eps))
    assert not C.check_zca(pca)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "over 5 data sets" in lines[0]
