"""Mistake tables for the checks of notebook 09 (bn_helpers/checks/deep_residual.py).

Each usual wrong answer gets FAIL (or at least not PASS) with the hint meant for it; the reference
solution gets PASS, in the visible and in the grading configuration; every call prints one line.
"""

import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks._core import RETURN_NONE_HINT


def one_line(capsys):
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _todo(*args):
    raise NotImplementedError


def _boom(*args):
    raise ValueError("boom")


def _var(v0, a, n, normed, gain=1.0):
    k = np.arange(n + 1)
    return v0 + k * a ** 2 if normed else v0 * (1 + gain * a ** 2) ** k


def _var_with(normed_fn, plain_fn):
    def fn(v0, a, n, normed, gain):
        k = np.arange(n + 1, dtype=np.float64)
        return normed_fn(v0, a, k, gain) if normed else plain_fn(v0, a, k, gain)
    return fn


VARIANCE_MISTAKES = {
    "cases swapped": (_var_with(lambda v0, a, k, g: v0 * (1 + g * a ** 2) ** k,
                                lambda v0, a, k, g: v0 + k * g * a ** 2), "two cases swapped"),
    "alpha not squared": (_var_with(lambda v0, a, k, g: v0 + k * a,
                                    lambda v0, a, k, g: v0 * (1 + g * a) ** k), "alpha instead of alpha^2"),
    "v0 left out": (_var_with(lambda v0, a, k, g: k * a ** 2, lambda v0, a, k, g: (1 + g * a ** 2) ** k),
                    "v0 left out"),
    "stds added": (_var_with(lambda v0, a, k, g: (np.sqrt(v0) + k * a) ** 2,
                             lambda v0, a, k, g: v0 * (1 + np.sqrt(g) * a) ** (2 * k)),
                   "standard deviations added"),
    "v0 multiplies the sum": (_var_with(lambda v0, a, k, g: v0 * (1 + k * a ** 2),
                                        lambda v0, a, k, g: v0 * (1 + g * a ** 2) ** k),
                              "v0 * (1 + l alpha^2)"),
    "gain left out": (lambda v0, a, n, normed, gain: _var(v0, a, n, normed), "gain left out"),
    "gain with a norm too": (_var_with(lambda v0, a, k, g: v0 + k * g * a ** 2,
                                       lambda v0, a, k, g: v0 * (1 + g * a ** 2) ** k),
                             "gain applied with a norm"),
    "alpha ignored": (_var_with(lambda v0, a, k, g: v0 + k, lambda v0, a, k, g: v0 * (1 + g) ** k),
                      "alpha ignored"),
    "no block 0": (lambda v0, a, n, normed, gain: _var(v0, a, n, normed, gain)[1:], "include block 0"),
    "one block too many": (lambda v0, a, n, normed, gain: _var(v0, a, n + 1, normed, gain), "expected"),
    "last value only": (lambda v0, a, n, normed, gain: _var(v0, a, n, normed, gain)[-1], "expected"),
    "constant": (lambda v0, a, n, normed, gain: np.ones(n + 1), "max relative error"),
    "forgot return": (lambda v0, a, n, normed, gain: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "a string": (lambda v0, a, n, normed, gain: "variance", "return an array"),
    "a dict": (lambda v0, a, n, normed, gain: {"v": 1.0}, "return an array"),
    "a tuple of pieces": (lambda v0, a, n, normed, gain: (np.ones(2), np.ones(3)), "not an array"),
    "NaN": (lambda v0, a, n, normed, gain: np.full(n + 1, np.nan), "NaN"),
    "not a function": (np.ones(3), "expected a function"),
}


@pytest.mark.parametrize("case", list(VARIANCE_MISTAKES))
def test_residual_variance_mistakes(case, capsys):
    fn, hint = VARIANCE_MISTAKES[case]
    v = bnh.checks.check_residual_variance(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


@pytest.mark.parametrize("grading", ["0", "1"])
def test_residual_variance_reference_passes(grading, capsys, monkeypatch):
    monkeypatch.setenv("BN_GRADING", grading)
    for fn in (_var, bnh.deep_residual.residual_variance):
        v = bnh.checks.check_residual_variance(fn)
        line = one_line(capsys)
        assert v.status == "PASS", line


def _rate(g):
    g = np.asarray(g, dtype=np.float64)
    return (g[0] / g[-1]) ** (1 / (len(g) - 1))


RATE_MISTAKES = {
    "root 1/L": (lambda g: (g[0] / g[-1]) ** (1 / len(g)), "L - 1 steps apart"),
    "upside down": (lambda g: (g[-1] / g[0]) ** (1 / (len(g) - 1)), "upside down"),
    "no root": (lambda g: g[0] / g[-1], "without the root"),
    "arithmetic mean": (lambda g: np.mean(g[:-1] / g[1:]), "geometric mean"),
    "log without exp": (lambda g: np.log(g[0] / g[-1]) / (len(g) - 1), "without exp"),
    "division": (lambda g: g[0] / g[-1] / (len(g) - 1), "a root, not a division"),
    "per-layer ratios": (lambda g: g[:-1] / g[1:], "one factor"),
    "constant": (lambda g: 1.1, "max relative error"),
    "forgot return": (lambda g: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "a string": (lambda g: "fast", "single number"),
    "a tuple": (lambda g: (1.0, 2.0), "single number"),
    "a dict": (lambda g: {"r": 1.0}, "single number"),
    "NaN": (lambda g: float("nan"), "finite"),
    "not a function": (np.ones(3), "expected a function"),
}


@pytest.mark.parametrize("case", list(RATE_MISTAKES))
def test_growth_rate_mistakes(case, capsys):
    fn, hint = RATE_MISTAKES[case]
    v = bnh.checks.check_growth_rate(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


@pytest.mark.parametrize("grading", ["0", "1"])
def test_growth_rate_reference_passes(grading, capsys, monkeypatch):
    monkeypatch.setenv("BN_GRADING", grading)
    for fn in (_rate, bnh.deep_residual.growth_rate):
        v = bnh.checks.check_growth_rate(fn)
        line = one_line(capsys)
        assert v.status == "PASS", line


def test_mistakes_are_far_from_the_right_answers():
    """Every listed mistake is off by far more than the tolerance on some visible case."""
    from bn_helpers.checks import deep_residual as C

    for mistake in C.residual_variance_formulas(*C._var_cases(False)[0]):
        if mistake == "right":
            continue
        worst = max(np.max(np.abs(C.residual_variance_formulas(*c)[mistake]
                                  / C.residual_variance_formulas(*c)["right"] - 1))
                    for c in C._var_cases(False))
        assert worst > 1e-2, mistake
    for mistake in C.growth_rate_formulas(C._rate_cases(False)[0]):
        if mistake == "right":
            continue
        worst = max(abs(C.growth_rate_formulas(g)[mistake] / C.growth_rate_formulas(g)["right"] - 1)
                    for g in C._rate_cases(False))
        assert worst > 1e-2, mistake
