"""Mistake tables for the checks of notebook 08 (bn_helpers/checks/beyond_bn.py).

Each usual wrong answer gets FAIL (or at least not PASS) with the hint meant for it; the reference
solution gets PASS, in the visible and in the grading configuration; every call prints one line.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks import beyond_bn as C
from bn_helpers.checks._core import RETURN_NONE_HINT


def one_line(capsys):
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _todo(*args):
    raise NotImplementedError


def _boom(*args):
    raise ValueError("boom")


# --- group norm -----------------------------------------------------------------------------------


def _gn_right(x, gamma, beta, groups, eps):
    n, h, w, c = x.shape
    xg = jnp.reshape(x, (n, h, w, groups, c // groups))
    mean = jnp.mean(xg, axis=(1, 2, 4), keepdims=True)
    var = jnp.var(xg, axis=(1, 2, 4), keepdims=True)
    return jnp.reshape((xg - mean) / jnp.sqrt(var + eps), x.shape) * gamma + beta


def _gn_reference(x, gamma, beta, groups, eps):
    return bnh.norms.group_norm(x, gamma, beta, groups=groups, eps=eps)


def _gn_stats(axes, shape_fn=None, ddof=0, outside=False, nosqrt=False, affine=True):
    def fn(x, gamma, beta, groups, eps):
        x = np.asarray(x, np.float64)
        n, h, w, c = x.shape
        shape = shape_fn(x.shape, groups) if shape_fn else (n, h, w, groups, c // groups)
        xg = x.reshape(shape)
        m = xg.mean(axis=axes, keepdims=True)
        v = xg.var(axis=axes, keepdims=True, ddof=ddof)
        if nosqrt:
            y = (xg - m) / (v + eps)
        elif outside:
            y = (xg - m) / (np.sqrt(v) + eps)
        else:
            y = (xg - m) / np.sqrt(v + eps)
        y = y.reshape(x.shape)
        return y * gamma + beta if affine else y
    return fn


GN_MISTAKES = {
    "batch axis too": (_gn_stats((0, 1, 2, 4)), "batch axis too"),
    "interleaved groups": (_gn_stats((1, 2, 3), lambda s, g: (s[0], s[1], s[2], s[3] // g, g)),
                           "interleaved groups"),
    "per position": (_gn_stats((4,)), "per position"),
    "unbiased variance": (_gn_stats((1, 2, 4), ddof=1), "unbiased variance"),
    "eps outside": (_gn_stats((1, 2, 4), outside=True), "eps outside"),
    "no square root": (_gn_stats((1, 2, 4), nosqrt=True), "dividing by the variance"),
    "no gamma beta": (_gn_stats((1, 2, 4), affine=False), "gamma and beta missing"),
    "swapped gamma beta": (lambda x, g_, b_, gr, e: _gn_stats((1, 2, 4), affine=False)(x, g_, b_, gr, e)
                           * b_ + g_, "swapped"),
    "G as group size": (_gn_stats((1, 2, 4), lambda s, g: (s[0], s[1], s[2], s[3] // g, g)),
                        "G read as channels per group"),
    "layer norm": (lambda x, g_, b_, gr, e: _gn_right(x, g_, b_, 1, e), "max rel error"),
    "instance norm": (lambda x, g_, b_, gr, e: _gn_right(x, g_, b_, x.shape[-1], e), "max rel error"),
    "input unchanged": (lambda x, g_, b_, gr, e: x, "max rel error"),
    "forgot return": (lambda *a: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "a string": (lambda *a: "y", "return an array"),
    "a dict": (lambda *a: {"y": 1}, "return an array"),
    "a tuple of pieces": (lambda x, *a: (x, x), "shape"),
    "NaN": (lambda x, *a: np.full(x.shape, np.nan), "NaN"),
    "wrong shape": (lambda x, *a: np.asarray(x)[..., 0], "shape"),
    "not a function": (np.ones(3), "expected a function"),
}


@pytest.mark.parametrize("case", list(GN_MISTAKES))
def test_group_norm_mistakes(case, capsys):
    fn, hint = GN_MISTAKES[case]
    v = bnh.checks.check_group_norm(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


def test_group_norm_layer_and_instance_named_on_a_single_case(capsys):
    """Where a case is not itself G=1 or G=C, layer and instance norm are named."""
    x, gamma, beta, g, eps = C._gn_cases(False)[0]
    table = C.group_norm_formulas(x, gamma, beta, g, eps)
    assert C._rel(table["layer norm (one group: use G)"], table["right"]) > 1e-2
    assert C._rel(table["instance norm (one channel per group: use G)"], table["right"]) > 1e-2


@pytest.mark.parametrize("grading", ["0", "1"])
def test_group_norm_reference_passes(grading, capsys, monkeypatch):
    monkeypatch.setenv("BN_GRADING", grading)
    for fn in (_gn_right, _gn_reference):
        v = bnh.checks.check_group_norm(fn)
        line = one_line(capsys)
        assert v.status == "PASS", line


# --- Batch Renorm's r and d --------------------------------------------------------------------------


def _rd_right(mb, vb, mr, vr, r_max, d_max, eps):
    return bnh.beyond_bn.renorm_correction(mb, vb, mr, vr, r_max, d_max, eps)


def _rd(r_fn, d_fn):
    def fn(mb, vb, mr, vr, r_max, d_max, eps):
        sb, s = np.sqrt(vb + eps), np.sqrt(vr + eps)
        return r_fn(sb, s, vb, vr, r_max, eps), d_fn(mb, mr, sb, s, vr, d_max, eps)
    return fn


_R = lambda sb, s, vb, vr, r_max, eps: np.clip(sb / s, 1 / r_max, r_max)  # noqa: E731
_D = lambda mb, mr, sb, s, vr, d_max, eps: np.clip((mb - mr) / s, -d_max, d_max)  # noqa: E731

RD_MISTAKES = {
    "no clipping": (_rd(lambda sb, s, *a: sb / s, lambda mb, mr, sb, s, *a: (mb - mr) / s), "no clipping"),
    "r lower bound -r_max": (_rd(lambda sb, s, vb, vr, r_max, eps: np.clip(sb / s, -r_max, r_max), _D),
                             "only from above"),
    "r lower bound 0": (_rd(lambda sb, s, vb, vr, r_max, eps: np.clip(sb / s, 0, r_max), _D),
                        "only from above"),
    "r upside down": (_rd(lambda sb, s, vb, vr, r_max, eps: np.clip(s / sb, 1 / r_max, r_max), _D),
                      "r upside down"),
    "r from variances": (_rd(lambda sb, s, vb, vr, r_max, eps: np.clip((vb + eps) / (vr + eps), 1 / r_max,
                                                                       r_max), _D), "from variances"),
    "d sign": (_rd(_R, lambda mb, mr, sb, s, vr, d_max, eps: np.clip((mr - mb) / s, -d_max, d_max)),
               "wrong sign"),
    "d over sigma_B": (_rd(_R, lambda mb, mr, sb, s, vr, d_max, eps: np.clip((mb - mr) / sb, -d_max, d_max)),
                       "divided by sigma_B"),
    "d undivided": (_rd(_R, lambda mb, mr, sb, s, vr, d_max, eps: np.clip(mb - mr, -d_max, d_max)),
                    "not divided"),
    "d over variance": (_rd(_R, lambda mb, mr, sb, s, vr, d_max, eps: np.clip((mb - mr) / (vr + eps), -d_max,
                                                                              d_max)), "running variance"),
    "eps missing": (lambda mb, vb, mr, vr, r_max, d_max, eps: _rd_right(mb, vb, mr, vr, r_max, d_max, 0.0),
                    "eps missing"),
    "swapped": (lambda *a: tuple(reversed(_rd_right(*a))), "swapped"),
    "only r": (lambda *a: _rd_right(*a)[0], "pair (r, d)"),
    "three parts": (lambda *a: (*_rd_right(*a), 0), "3 parts"),
    "constant": (lambda mb, *a: (np.ones_like(mb), np.zeros_like(mb)), "max error"),
    "forgot return": (lambda *a: None, RETURN_NONE_HINT),
    "not implemented": (_todo, "not implemented"),
    "raises": (_boom, "ValueError"),
    "a string": (lambda *a: "rd", "pair (r, d)"),
    "a dict": (lambda *a: {"r": 1, "d": 0}, "pair (r, d)"),
    "NaN": (lambda mb, *a: (np.full(mb.shape, np.nan), mb), "NaN"),
    "wrong shape": (lambda mb, *a: (mb[:2], mb[:2]), "shape"),
    "not a function": ("r, d", "expected a function"),
}


@pytest.mark.parametrize("case", list(RD_MISTAKES))
def test_renorm_mistakes(case, capsys):
    fn, hint = RD_MISTAKES[case]
    v = bnh.checks.check_renorm_correction(fn)
    line = one_line(capsys)
    assert v.status == "FAIL", line
    assert hint in line, line


@pytest.mark.parametrize("grading", ["0", "1"])
def test_renorm_reference_passes(grading, capsys, monkeypatch):
    monkeypatch.setenv("BN_GRADING", grading)
    v = bnh.checks.check_renorm_correction(_rd_right)
    line = one_line(capsys)
    assert v.status == "PASS", line


def test_cases_clip_and_do_not_clip():
    """Every visible case has clipped and unclipped channels for r and for d (so clipping matters)."""
    for mb, vb, mr, vr, r_max, d_max, eps in C._rd_cases(False):
        raw_r = np.sqrt(vb + eps) / np.sqrt(vr + eps)
        raw_d = (mb - mr) / np.sqrt(vr + eps)
        assert np.any(raw_r > r_max) and np.any(raw_r < 1 / r_max)
        assert np.any((raw_r > 1 / r_max) & (raw_r < r_max))
        assert np.any(np.abs(raw_d) > d_max) and np.any(np.abs(raw_d) < d_max)


def test_mistakes_are_far_from_the_right_answers():
    """Every listed mistake is off by far more than the CLOSE band on some visible case."""
    for mistake in C.group_norm_formulas(*C._gn_cases(False)[0]):
        if mistake == "right":
            continue
        worst = max(C._rel(t[mistake], t["right"]) for t in
                    (C.group_norm_formulas(*case) for case in C._gn_cases(False)) if mistake in t)
        assert worst > 1e-2, mistake
    for mistake in C.renorm_formulas(*C._rd_cases(False)[0]):
        if mistake == "right":
            continue
        worst = max(float(np.max(np.abs(np.concatenate(t[mistake]) - np.concatenate(t["right"]))))
                    for t in (C.renorm_formulas(*case) for case in C._rd_cases(False)))
        assert worst > 1e-2, mistake


def test_renorm_correction_matches_the_norms_core():
    """The exercise's reference r, d turn BN's training output into Batch Renorm's (bnh.norms)."""
    rng = np.random.default_rng(0)
    z = (2.0 * rng.normal(size=(16, 5)) + 1.0).astype(np.float32)
    params = {"gamma": jnp.ones(5), "beta": jnp.zeros(5)}
    state = {"mean": jnp.asarray(rng.normal(size=5), jnp.float32),
             "var": jnp.asarray(np.exp(rng.normal(size=5)), jnp.float32)}
    bn, _ = bnh.norms.apply_norm("batch", params, state, z, train=True)
    rn, _ = bnh.norms.apply_norm("renorm", params, state, z, train=True, r_max=1.5, d_max=0.5)
    r, d = bnh.beyond_bn.renorm_correction(z.mean(0), z.var(0), state["mean"], state["var"], 1.5, 0.5)
    np.testing.assert_allclose(np.asarray(rn), np.asarray(bn) * np.asarray(r) + np.asarray(d), atol=1e-5)
