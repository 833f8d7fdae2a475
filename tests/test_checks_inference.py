"""Mistake tables for the checks of notebooks/05_inference.ipynb (bn_helpers/checks/inference.py).

Every wrong answer below is a function a student could write; each must get FAIL (never PASS or
CLOSE) with the hint meant for it, in exactly one printed line; the reference solution gets PASS,
also in float32 and under the grader's hidden cases.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks import inference as ci

check_stats = bnh.checks.check_running_stats_update
check_fold = bnh.checks.check_fold_bn


def _one_line(capsys):
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0]


def _raise(*_):
    raise NotImplementedError


def _boom(*_):
    raise ZeroDivisionError("oops")


# --- exercise 1: running statistics ----------------------------------------------------------


def good_update(mean, var, x, momentum):
    m = x.shape[0]
    return (momentum * mean + (1 - momentum) * x.mean(0),
            momentum * var + (1 - momentum) * x.var(0) * m / (m - 1))


def _with(fn_mean=None, fn_var=None):
    """An update whose mean or variance part is replaced."""
    def update(mean, var, x, momentum):
        good_m, good_v = good_update(mean, var, x, momentum)
        return (good_m if fn_mean is None else fn_mean(mean, x, momentum),
                good_v if fn_var is None else fn_var(var, x, momentum))
    return update


STATS_TABLE = [
    ("torch momentum", lambda mean, var, x, mom: good_update(mean, var, x, 1 - mom),
     "PyTorch's convention"),
    ("torch momentum, biased var",
     lambda mean, var, x, mom: ((1 - mom) * mean + mom * x.mean(0), (1 - mom) * var + mom * x.var(0)),
     "PyTorch's momentum convention AND the biased"),
    ("biased variance", _with(fn_var=lambda v, x, mom: mom * v + (1 - mom) * x.var(0)),
     "store the unbiased batch variance"),
    ("(m-1)/m instead of m/(m-1)",
     _with(fn_var=lambda v, x, mom: mom * v + (1 - mom) * x.var(0) * (len(x) - 1) / len(x)),
     "you used (m-1)/m"),
    ("swapped mean and var", lambda *a: good_update(*a)[::-1], "(new_var, new_mean)"),
    ("batch statistics only", lambda mean, var, x, mom: (x.mean(0), x.var(0, ddof=1)),
     "must mix the old values in"),
    ("mean over all axes", _with(fn_mean=lambda mu, x, mom: mom * mu + (1 - mom) * x.mean(),
                                 fn_var=lambda v, x, mom: mom * v + (1 - mom) * x.var(ddof=1)),
     "reduce over the batch axis"),
    ("mean over axis 1", _with(fn_mean=lambda mu, x, mom: mom * mu + (1 - mom) * x.mean(1),
                               fn_var=lambda v, x, mom: mom * v + (1 - mom) * x.var(1, ddof=1)),
     "axis=0, not axis=1"),
    ("standard deviation stored", _with(fn_var=lambda v, x, mom: mom * v + (1 - mom)
                                        * x.std(0, ddof=1)), "not the standard deviation"),
    ("momentum hard-coded to 0.9", lambda mean, var, x, mom: good_update(mean, var, x, 0.9),
     "right for momentum=0.9 only"),
    ("forgot return", lambda *a: None, "did you forget `return`?"),
    ("returned only the mean", lambda *a: good_update(*a)[0], "return a tuple (new_mean, new_var)"),
    ("returned a dict", lambda *a: dict(zip("mv", good_update(*a), strict=True)), "return a tuple"),
    ("returned a string", lambda *a: "mean, var", "return a tuple"),
    ("three values", lambda *a: (*good_update(*a), 0.0), "return a tuple"),
    ("var is None", lambda *a: (good_update(*a)[0], None), "did you forget `return`?"),
    ("NaN", lambda mean, var, x, mom: (mean * np.nan, var), "NaN"),
    ("wrong shape", lambda mean, var, x, mom: (mean[:2], var[:2]), "expected"),
    ("not implemented", _raise, "replace `raise NotImplementedError`"),
    ("raises", _boom, "ZeroDivisionError"),
    ("garbage", lambda *a: ("a", "b"), "new_mean is a str"),
    ("ragged list", lambda *a: ([1.0, [2.0]], good_update(*a)[1]), "not an array of numbers"),
]


def test_stats_reference_passes(capsys):
    assert check_stats(good_update)
    assert _one_line(capsys).endswith("| PASS")
    # the check's own momentum argument is honoured, and float32 answers pass too
    assert check_stats(good_update, momentum=0.6)
    _one_line(capsys)

    def float32(mean, var, x, momentum):
        return tuple(jnp.asarray(o, jnp.float32) for o in good_update(mean, var, x, momentum))

    assert check_stats(float32)
    assert "PASS" in _one_line(capsys)


@pytest.mark.parametrize(("name", "wrong", "hint"), STATS_TABLE, ids=[r[0] for r in STATS_TABLE])
def test_stats_mistake_table(capsys, name, wrong, hint):
    result = check_stats(wrong)
    line = _one_line(capsys)
    assert result.status == "FAIL", line
    assert hint in line, line


def test_stats_not_a_function(capsys):
    assert check_stats(None).status == "FAIL"
    assert "expected a function" in _one_line(capsys)


def test_stats_hard_coded_momentum_fails_even_at_the_visible_value(capsys):
    """The bug of issue 12: a function with momentum 0.9 written in passed the old check."""
    assert check_stats(lambda mean, var, x, mom: good_update(mean, var, x, 0.9)).status == "FAIL"
    _one_line(capsys)


def test_stats_every_listed_mistake_is_far_from_the_answer():
    """Tolerances separate the right answer from every listed mistake, in every case."""
    for case in ci._stats_cases(0.9):
        ref = ci.running_update(*case)
        for hint, wrong in ci.STATS_MISTAKES:
            try:
                wrong(*case)
            except ValueError:
                continue  # a mistake that only runs on a square x
            err = max(bnh.checks.rel_error(np.broadcast_to(g, np.shape(r)), r)
                      if np.shape(g) in ((), np.shape(r)) else np.inf
                      for g, r in zip(wrong(*case), ref, strict=True))
            assert err > 1e-3, (hint, case[3])


def test_stats_grading_mode_adds_hidden_cases(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert len(ci._stats_cases(0.9)) > 4
    assert check_stats(good_update)
    _one_line(capsys)


# --- exercise 2: folding BN into a dense layer --------------------------------------------------


def good_fold(W, b, gamma, beta, mean, var, eps):
    s = gamma / np.sqrt(var + eps)
    return W * s[None, :], (b - mean) * s + beta


def _fold_with(scale=None, bias=None, w=None):
    def fn(W, b, gamma, beta, mean, var, eps):
        s = gamma / np.sqrt(var + eps) if scale is None else scale(gamma, var, eps)
        Wf = W * s[None, :] if w is None else w(W, s)
        bf = (b - mean) * s + beta if bias is None else bias(b, beta, mean, s)
        return Wf, bf
    return fn


FOLD_TABLE = [
    ("eps outside the root", _fold_with(scale=lambda g, v, e: g / (np.sqrt(v) + e)),
     "eps goes inside the square root"),
    ("no eps", _fold_with(scale=lambda g, v, e: g / np.sqrt(v)), "you left out eps"),
    ("no square root", _fold_with(scale=lambda g, v, e: g / (v + e)),
     "divide by the standard deviation"),
    ("eps hard-coded to 1e-3", lambda *a: good_fold(*a[:6], 1e-3), "right for eps=0.001 only"),
    ("no gamma", _fold_with(scale=lambda g, v, e: 1 / np.sqrt(v + e)), "gamma is missing"),
    ("no beta", _fold_with(bias=lambda b, be, mu, s: (b - mu) * s), "beta is missing"),
    ("own bias dropped", _fold_with(bias=lambda b, be, mu, s: be - mu * s), "own bias b"),
    ("mean not subtracted", _fold_with(bias=lambda b, be, mu, s: b * s + be),
     "subtract the running mean"),
    ("sign of the mean", _fold_with(bias=lambda b, be, mu, s: (b + mu) * s + be), "sign of the mean"),
    ("mean not scaled", _fold_with(bias=lambda b, be, mu, s: b * s - mu + be),
     "the mean is scaled too"),
    ("rows scaled", _fold_with(w=lambda W, s: W * s[:, None]), "output COLUMN"),
    ("transposed W", _fold_with(w=lambda W, s: (W * s[None, :]).T), "W' is transposed"),
    ("W folded by matrix product", _fold_with(w=lambda W, s: W @ np.diag(s) @ np.diag(s)),
     "W' = W * scale[None, :]"),
    ("swapped outputs", lambda *a: good_fold(*a)[::-1], "(W_folded, b_folded)"),
    ("forgot return", lambda *a: None, "did you forget `return`?"),
    ("returned W only", lambda *a: good_fold(*a)[0], "return a tuple (W_folded, b_folded)"),
    ("returned a dict", lambda *a: {"W": 1, "b": 2}, "return a tuple"),
    ("string", lambda *a: "W, b", "return a tuple"),
    ("NaN", lambda *a: (good_fold(*a)[0] * np.nan, good_fold(*a)[1]), "NaN"),
    ("wrong shape", lambda *a: (good_fold(*a)[0][:2], good_fold(*a)[1]), "expected"),
    ("not implemented", _raise, "replace `raise NotImplementedError`"),
    ("raises", _boom, "ZeroDivisionError"),
]


def test_fold_reference_passes(capsys):
    assert check_fold(good_fold)
    assert _one_line(capsys).endswith("| PASS")
    assert check_fold(good_fold, eps=1e-5)
    _one_line(capsys)

    def float32(*a):
        return tuple(jnp.asarray(o, jnp.float32) for o in good_fold(*a))

    assert check_fold(float32)
    _one_line(capsys)


@pytest.mark.parametrize(("name", "wrong", "hint"), FOLD_TABLE, ids=[r[0] for r in FOLD_TABLE])
def test_fold_mistake_table(capsys, name, wrong, hint):
    result = check_fold(wrong)
    line = _one_line(capsys)
    assert result.status == "FAIL", line
    assert hint in line, line


def test_fold_every_listed_mistake_is_far_from_the_answer():
    for i, case in enumerate(ci._fold_cases(1e-3)):
        W, b = case[:2]
        x = np.random.default_rng(100 + i).standard_normal((10, W.shape[0]))
        ref = x @ ci.fold(*case)[0] + ci.fold(*case)[1]
        for hint, wrong in ci.FOLD_MISTAKES:
            try:
                Wf, bf = wrong(*case)
            except ValueError:
                continue  # a mistake that only runs on a square W
            if np.shape(Wf) != W.shape or np.shape(bf) != b.shape:
                continue  # caught by the shape checks before any number is compared
            assert np.abs(x @ Wf + bf - ref).max() / np.abs(ref).max() > 1e-3, (hint, i)


def test_fold_grading_mode_adds_hidden_cases(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert len(ci._fold_cases(1e-3)) > 4
    assert check_fold(good_fold)
    _one_line(capsys)
