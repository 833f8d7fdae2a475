"""Mistake tables for the checks of notebook 07 (bn_helpers/checks/why_bn_works.py).

Each usual wrong answer gets FAIL (or at least not PASS) with the hint meant for it; the reference
solution gets PASS, in the visible and in the grading configuration; every call prints one line.
"""

import jax.numpy as jnp
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


def _cos(a, b):
    a, b = jnp.ravel(a), jnp.ravel(b)
    return jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))


def _flat(f):
    return lambda a, b: f(np.ravel(a), np.ravel(b))


COSINE_MISTAKES = {
    "dot product only": (_flat(lambda a, b: a @ b), "plain dot product"),
    "1 - cos": (lambda a, b: 1 - _cos(a, b), "1 - cos"),
    "|cos|": (lambda a, b: abs(_cos(a, b)), "|cos|"),
    "l2 distance": (lambda a, b: np.linalg.norm(np.ravel(a) - np.ravel(b)), "l2 distance"),
    "one norm": (_flat(lambda a, b: a @ b / np.sum(a * a)), "dot / ||G||^2"),
    "mean not sum": (_flat(lambda a, b: np.mean(a * b) / (np.linalg.norm(a) * np.linalg.norm(b))),
                     "mean of G * G'"),
    "squared norms": (_flat(lambda a, b: a @ b / (np.sum(a * a) * np.sum(b * b))), "norms squared"),
    "no flattening": (lambda a, b: a * b / (np.linalg.norm(a) * np.linalg.norm(b)), "flatten"),
    "constant": (lambda a, b: 0.5, "max abs error"),
    "forgot return": (lambda a, b: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "a string": (lambda a, b: "cos", "single number"),
    "a tuple": (lambda a, b: (1.0, 2.0), "single number"),
    "a dict": (lambda a, b: {"cos": 1.0}, "single number"),
    "NaN": (lambda a, b: float("nan"), "finite"),
    "not a function": (np.ones(3), "expected a function"),
}


@pytest.mark.parametrize("case", list(COSINE_MISTAKES))
def test_cosine_mistakes(case, capsys):
    fn, hint = COSINE_MISTAKES[case]
    v = bnh.checks.check_gradient_cosine(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


@pytest.mark.parametrize("grading", ["0", "1"])
def test_cosine_reference_passes(grading, capsys, monkeypatch):
    monkeypatch.setenv("BN_GRADING", grading)
    for fn in (_cos, bnh.why_bn_works.cosine):
        v = bnh.checks.check_gradient_cosine(fn)
        line = one_line(capsys)
        assert v.status == "PASS", line


def _lr_right(lr, w):
    return lr / jnp.sum(jnp.asarray(w) ** 2)


LR_MISTAKES = {
    "norm not squared": (lambda lr, w: lr / np.linalg.norm(w), "square the norm"),
    "product": (lambda lr, w: lr * np.sum(w ** 2), "divide"),
    "mean of squares": (lambda lr, w: lr / np.mean(w ** 2), "mean(W^2)"),
    "upside down": (lambda lr, w: np.sum(w ** 2) / lr, "upside down"),
    "lr alone": (lambda lr, w: lr, "lr alone"),
    "l1 norm": (lambda lr, w: lr / np.sum(np.abs(w)), "l1 norm"),
    "per column": (lambda lr, w: lr / np.sum(w ** 2, axis=0), "not per column"),
    "constant": (lambda lr, w: 0.01, "max relative error"),
    "forgot return": (lambda lr, w: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "a string": (lambda lr, w: "small", "single number"),
    "a list": (lambda lr, w: [lr], "single number"),
    "NaN": (lambda lr, w: np.nan, "finite"),
    "inf": (lambda lr, w: np.inf, "finite"),
}


@pytest.mark.parametrize("case", list(LR_MISTAKES))
def test_effective_lr_mistakes(case, capsys):
    fn, hint = LR_MISTAKES[case]
    v = bnh.checks.check_effective_lr(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


@pytest.mark.parametrize("grading", ["0", "1"])
def test_effective_lr_reference_passes(grading, capsys, monkeypatch):
    monkeypatch.setenv("BN_GRADING", grading)
    for fn in (_lr_right, bnh.why_bn_works.effective_lr):
        v = bnh.checks.check_effective_lr(fn)
        line = one_line(capsys)
        assert v.status == "PASS", line


def test_mistakes_are_far_from_the_right_answers():
    """Every listed mistake is off by far more than the tolerance on some visible case."""
    from bn_helpers.checks import why_bn_works as C

    for mistake in C.cosine_formulas(*C._cos_cases(False)[0]):
        if mistake == "right":
            continue
        worst = max(abs(C.cosine_formulas(a, b)[mistake] - C.cosine_formulas(a, b)["right"])
                    for a, b in C._cos_cases(False))
        assert worst > 1e-2, mistake
    for mistake in C.effective_lr_formulas(*C._lr_cases(False)[0]):
        if mistake == "right":
            continue
        worst = max(abs(C.effective_lr_formulas(lr, w)[mistake] / C.effective_lr_formulas(lr, w)["right"] - 1)
                    for lr, w in C._lr_cases(False))
        assert worst > 1e-2, mistake
