"""Mistake tables for the checks of notebooks/02_zigzag.ipynb (bn_helpers/checks/zigzag.py).

Each wrong answer must get FAIL (never CLOSE or PASS) and the hint that names its mistake; the
reference solutions get PASS; every check prints exactly one line.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks import zigzag as zc
from bn_helpers.checks._core import RETURN_NONE_HINT

zz = bnh.zigzag


def _one_line(capsys):
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- hessian_eigs
def _eigs(f, w):
    return jnp.linalg.eigvalsh(jax.hessian(f)(w))


def _raises(*args):
    raise ValueError("boom")


def _not_done(*args):
    raise NotImplementedError


HESSIAN_MISTAKES = {
    "descending order": (lambda f, w: _eigs(f, w)[::-1], "ascending"),
    "diagonal entries": (lambda f, w: jnp.sort(jnp.diag(jax.hessian(f)(w))), "diagonal"),
    "twice the Hessian": (lambda f, w: 2 * _eigs(f, w), "factor 2"),
    "half the Hessian": (lambda f, w: _eigs(f, w) / 2, "factor 1/2"),
    "singular values": (lambda f, w: jnp.sort(jnp.linalg.svd(jax.hessian(f)(w), compute_uv=False)),
                        "absolute values"),
    "Hessian at w = 0": (lambda f, w: _eigs(f, jnp.zeros(2)), "at w = 0"),
    "the gradient": (lambda f, w: jax.grad(f)(w), "gradient (jax.grad)"),
    "outer product of gradients": (lambda f, w: jnp.linalg.eigvalsh(jnp.outer(jax.grad(f)(w),
                                                                              jax.grad(f)(w))),
                                   "outer product"),
    "the Hessian matrix": (lambda f, w: jax.hessian(f)(w), "2x2 matrix"),
    "eigh's pair": (lambda f, w: jnp.linalg.eigh(jax.hessian(f)(w)), "eigenvectors"),
    "tuple from eigh unpacked as a list": (lambda f, w: list(jnp.linalg.eigh(jax.hessian(f)(w))),
                                           "eigenvectors"),
    "only lam_max": (lambda f, w: _eigs(f, w)[-1], "both eigenvalues"),
    "forgot return": (lambda f, w: None, RETURN_NONE_HINT),
    "a constant": (lambda f, w: jnp.array([0.5, 10.0]), "jnp.linalg.eigvalsh(H)"),
    "a string": (lambda f, w: "eigenvalues", "return an array"),
    "a dict": (lambda f, w: {"lo": 1.0}, "return an array"),
    "NaN": (lambda f, w: jnp.full(2, jnp.nan), "NaN"),
    "raises": (_raises, "ValueError"),
    "not written": (_not_done, "not implemented yet"),
}


def test_hessian_reference_passes(capsys):
    assert bnh.checks.check_hessian_eigs(_eigs)
    assert _one_line(capsys).endswith("| PASS")
    assert bnh.checks.check_hessian_eigs(zz.hessian_eigs)
    assert _one_line(capsys).endswith("| PASS")


@pytest.mark.parametrize("mistake", list(HESSIAN_MISTAKES))
def test_hessian_mistakes_fail_with_their_hint(mistake, capsys):
    fn, hint = HESSIAN_MISTAKES[mistake]
    v = bnh.checks.check_hessian_eigs(fn)
    line = _one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


def test_hessian_check_has_hidden_cases(monkeypatch):
    visible = len(zc._hessian_cases())
    monkeypatch.setenv("BN_GRADING", "1")
    assert len(zc._hessian_cases()) > visible >= 4


def test_hessian_mistake_values_differ_from_the_answer():
    """Every listed mistake is far from the answer in at least one case (so the check can fail it)."""
    for name in zc.hessian_mistakes(_eigs_loss_dummy, jnp.zeros(2)):
        worst = 0.0
        for _, f, w in zc._hessian_cases():
            ref = np.linalg.eigvalsh(np.asarray(jax.hessian(f)(w), dtype=np.float64))
            value = np.asarray(zc.hessian_mistakes(f, w)[name], dtype=np.float64)
            worst = max(worst, float(np.max(np.abs(value - ref) / (np.abs(value) + np.abs(ref)))))
        assert worst > 10 * zc.HESSIAN_CLOSE, name


def _eigs_loss_dummy(w):
    return jnp.sum(w ** 2)


# ---------------------------------------------------------------- max stable learning rate
@pytest.fixture(scope="module")
def exercise():
    return zz.make_inputs(scale_ratio=5.0, offset=1.0, mode="raw")


def _reference(x, t, loss="quadratic"):
    lam = _eigs(lambda w: zz.loss_value(w, x, t, loss), zz.minimum(x, t, loss))
    return 2.0 / float(lam[1])


def _lam(x, t, loss):
    return zz.readout(x, t, loss)


def _second_moment(x):
    x = np.asarray(x, dtype=np.float64)
    return np.linalg.eigvalsh(x.T @ x / len(x))


def _old_signature(x, t):
    return _reference(x, t)


LR_MISTAKES = {
    # the notebook's point: the Hessian of the quadratic loss is E[x x^T], not the covariance
    "covariance instead of E[x x^T]":
        (lambda x, t, loss: 2 / np.linalg.eigvalsh(np.cov(np.asarray(x, float).T, bias=True))[-1],
         "covariance"),
    "unbiased covariance":
        (lambda x, t, loss: 2 / np.linalg.eigvalsh(np.cov(np.asarray(x, float).T))[-1],
         "covariance"),
    "1/lam_max": (lambda x, t, loss: 1 / _lam(x, t, loss)["lam_max"], "twice as large"),
    "best fixed step": (lambda x, t, loss: 2 / (_lam(x, t, loss)["lam_max"] + _lam(x, t, loss)["lam_min"]),
                        "best fixed step"),
    "2/lam_min": (lambda x, t, loss: 2 / _lam(x, t, loss)["lam_min"], "not the smallest"),
    "1/lam_min": (lambda x, t, loss: 1 / _lam(x, t, loss)["lam_min"], "1/lam_min"),
    "diagonal of H": (lambda x, t, loss: 2 / float(np.max(np.diag(np.asarray(zz.hessian(x, t, loss))))),
                      "diagonal"),
    "lam_max itself": (lambda x, t, loss: _lam(x, t, loss)["lam_max"], "not a learning rate"),
    "lam_max / 2": (lambda x, t, loss: _lam(x, t, loss)["lam_max"] / 2, "not a learning rate"),
    "ignores `loss` (always quadratic)": (lambda x, t, loss: 2 / _second_moment(x)[-1],
                                          "pass `loss` on"),
    "logistic Hessian at w = 0": (
        lambda x, t, loss: 2 / float(np.linalg.eigvalsh(np.asarray(
            zz.hessian(x, t, loss, w=jnp.zeros(2) if loss == "logistic" else None)))[-1]),
        "at w = 0"),
    "a constant (the visible answer)": (lambda x, t, loss: 0.08088, "same number for every dataset"),
    "sign error": (lambda x, t, loss: -_reference(x, t, loss), "> 0"),
    "forgot return": (lambda x, t, loss: None, RETURN_NONE_HINT),
    "returns a string": (lambda x, t, loss: "0.08", "single number"),
    "returns both eigenvalues": (lambda x, t, loss: np.array([0.1, 0.2]), "single number"),
    "returns NaN": (lambda x, t, loss: float("nan"), "finite"),
    "old two-argument signature": (_old_signature, "TypeError"),
    "raises": (_raises, "ValueError"),
    "not written": (_not_done, "not implemented yet"),
}


def test_lr_reference_passes(exercise, capsys):
    x, t = exercise
    assert bnh.checks.check_max_stable_lr(_reference, x, t)
    line = _one_line(capsys)
    assert line.endswith("| PASS") and "cases" in line
    assert bnh.checks.check_max_stable_lr(zz.max_stable_lr, x, t)
    assert _one_line(capsys).endswith("| PASS")
    assert bnh.checks.check_max_stable_lr(_reference)   # without the exercise's data
    _one_line(capsys)


@pytest.mark.parametrize("mistake", list(LR_MISTAKES))
def test_lr_mistakes_fail_with_their_hint(mistake, exercise, capsys):
    x, t = exercise
    fn, hint = LR_MISTAKES[mistake]
    v = bnh.checks.check_max_stable_lr(fn, x, t)
    line = _one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


def test_covariance_would_only_be_close_on_the_visible_data(exercise):
    """Why several datasets: on the exercise's own data the covariance answer is within 2 %."""
    x, t = exercise
    cov = LR_MISTAKES["covariance instead of E[x x^T]"][0](x, t, "quadratic")
    err = abs(cov - zz.readout(x, t)["lr_max"]) / zz.readout(x, t)["lr_max"]
    assert zc.LR_TOL < err < 0.03
    worst = max(abs(LR_MISTAKES["covariance instead of E[x x^T]"][0](xs, ts, k)
                    - zz.readout(xs, ts, k)["lr_max"]) / zz.readout(xs, ts, k)["lr_max"]
                for _, xs, ts, k in zc._lr_cases(x, t))
    assert worst > 10 * zc.LR_CLOSE


def test_lr_number_instead_of_function(exercise, capsys):
    x, t = exercise
    v = bnh.checks.check_max_stable_lr(zz.readout(x, t)["lr_max"], x, t)
    line = _one_line(capsys)
    assert v.status == "FAIL" and "not a function" in line
    v = bnh.checks.check_max_stable_lr(None, x, t)
    assert v.status == "FAIL" and RETURN_NONE_HINT in _one_line(capsys)


def test_lr_check_tries_both_losses_and_has_hidden_cases(exercise, monkeypatch):
    x, t = exercise
    cases = zc._lr_cases(x, t)
    assert {c[3] for c in cases} == set(zz.LOSSES) and len(cases) >= 7
    monkeypatch.setenv("BN_GRADING", "1")
    assert len(zc._lr_cases(x, t)) > len(cases)


def test_lr_tolerance_separates_every_listed_mistake(exercise):
    x, t = exercise
    cases = zc._lr_cases(x, t)
    names = set()
    for _, xs, ts, kind in cases:
        names |= set(zc.lr_mistakes(xs, ts, kind))
    for name in names:
        worst = 0.0
        for _, xs, ts, kind in cases:
            table = zc.lr_mistakes(xs, ts, kind)
            if name in table:
                ref = zz.readout(xs, ts, kind)["lr_max"]
                worst = max(worst, abs(table[name] - ref) / ref)
        assert worst > 10 * zc.LR_CLOSE, name
