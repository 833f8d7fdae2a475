"""Mistake tables for bn_helpers.checks.bn_math (issue 12): every usual wrong answer to the
forward, backward and convolution exercises gets FAIL with its own hint, in exactly one line;
the reference solutions get PASS."""

import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh

C = bnh.checks


def one_line(capsys):
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# --- forward ------------------------------------------------------------------------------


def bn(x, g, b, eps=1e-5, *, axis=0, ddof=0):
    m = jnp.mean(x, axis=axis, keepdims=True)
    v = jnp.var(x, axis=axis, ddof=ddof, keepdims=True)
    return g * (x - m) / jnp.sqrt(v + eps) + b


def raises(*_a):
    raise ValueError("boom")


def todo(*_a):
    raise NotImplementedError


FORWARD_TABLE = [
    ("forgot eps", lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / jnp.sqrt(x.var(0)) + b,
     "eps is missing"),
    ("eps outside the sqrt", lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / (x.std(0) + eps) + b,
     "eps goes inside the square root"),
    ("eps hard-coded", lambda x, g, b, eps=1e-5: bn(x, g, b, 1e-5), "ignores its eps"),
    ("unbiased variance", lambda x, g, b, eps=1e-5: bn(x, g, b, eps, ddof=1), "biased variance"),
    ("axis 1", lambda x, g, b, eps=1e-5: bn(x, g, b, eps, axis=1), "axis=0"),
    ("whole array", lambda x, g, b, eps=1e-5: bn(x, g, b, eps, axis=None), "whole array"),
    ("no gamma, no beta", lambda x, g, b, eps=1e-5: bn(x, 1.0, 0.0, eps), "gamma and beta are missing"),
    ("no gamma", lambda x, g, b, eps=1e-5: bn(x, 1.0, b, eps), "gamma is missing"),
    ("no beta", lambda x, g, b, eps=1e-5: bn(x, g, 0.0, eps), "beta is missing"),
    ("gamma, beta swapped", lambda x, g, b, eps=1e-5: bn(x, b, g, eps), "swapped"),
    ("no mean", lambda x, g, b, eps=1e-5: g * x / jnp.sqrt(x.var(0) + eps) + b,
     "subtract the batch mean"),
    ("uncentred variance",
     lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / jnp.sqrt((x**2).mean(0) + eps) + b,
     "mean of (x - mean)**2"),
    ("no square root", lambda x, g, b, eps=1e-5: g * (x - x.mean(0)) / (x.var(0) + eps) + b,
     "not by the variance"),
    ("transposed", lambda x, g, b, eps=1e-5: bn(x, g, b, eps).T, "transposed"),
    ("no eps argument", lambda x, g, b: bn(x, g, b), "no eps argument"),
    ("hard-coded constant", lambda x, g, b, eps=1e-5: np.zeros((16, 5)), "shape"),
    ("zeros of the right shape", lambda x, g, b, eps=1e-5: np.zeros_like(x), "one at a time"),
    ("forgot return", lambda x, g, b, eps=1e-5: None, "forget `return`"),
    ("a string", lambda x, g, b, eps=1e-5: "y", "return an array"),
    ("a tuple", lambda x, g, b, eps=1e-5: (x, g), "not an array of numbers"),
    ("a dict", lambda x, g, b, eps=1e-5: {"y": x}, "return an array"),
    ("NaN", lambda x, g, b, eps=1e-5: x * np.nan, "NaN"),
    ("wrong shape", lambda x, g, b, eps=1e-5: bn(x, g, b, eps)[:, :2], "shape"),
    ("raises", lambda x, g, b, eps=1e-5: raises(), "ValueError"),
    ("not implemented", lambda x, g, b, eps=1e-5: todo(), "not implemented yet"),
    ("not a function", 3.0, "expected a function"),
]


def test_forward_reference_passes(capsys):
    assert C.check_batch_norm_forward(bn)
    assert C.check_batch_norm_forward(lambda x, g, b, eps=1e-5: bnh.batch_norm(x, g, b, eps=eps))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith("PASS") for line in lines)
    assert "over 3 batches" in lines[0]


@pytest.mark.parametrize("label, fn, hint", FORWARD_TABLE, ids=[r[0] for r in FORWARD_TABLE])
def test_forward_mistakes_fail_with_their_hint(label, fn, hint, capsys):
    assert not C.check_batch_norm_forward(fn)
    line = one_line(capsys)
    assert "| FAIL" in line and hint in line, line


def test_forgotten_eps_is_not_told_to_move_eps(capsys):
    C.check_batch_norm_forward(FORWARD_TABLE[0][1])
    line = one_line(capsys)
    assert "inside the square root" not in line and "eps is missing" in line


def test_forward_hidden_cases_under_the_grader(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert C.check_batch_norm_forward(bn)
    assert "over 5 batches" in one_line(capsys)


# --- backward -----------------------------------------------------------------------------


def grads(dy, x, g, eps=1e-5, *, ddof=0):
    mean = x.mean(0)
    inv = 1.0 / np.sqrt(x.var(0, ddof=ddof) + eps)
    x_hat = (x - mean) * inv
    dx = g * inv * (dy - dy.mean(0) - x_hat * (dy * x_hat).mean(0))
    return dx, (dy * x_hat).sum(0), dy.sum(0), inv, x_hat


def with_(dx=None, dgamma=None, dbeta=None, ddof=0, eps=1e-5):
    def fn(dy, x, g):
        rdx, rdg, rdb, inv, x_hat = grads(dy, x, g, eps, ddof=ddof)
        env = dict(dy=dy, x=x, g=g, inv=inv, x_hat=x_hat, rdx=rdx, rdg=rdg, rdb=rdb)
        return (rdx if dx is None else dx(env), rdg if dgamma is None else dgamma(env),
                rdb if dbeta is None else dbeta(env))
    return fn


BACKWARD_TABLE = [
    ("dx sign", with_(dx=lambda e: -e["rdx"]), "dx has the wrong sign"),
    ("no mean path", with_(dx=lambda e: e["g"] * e["inv"] * (
        e["dy"] - e["x_hat"] * (e["dy"] * e["x_hat"]).mean(0))), "path through the mean"),
    ("no variance path", with_(dx=lambda e: e["g"] * e["inv"] * (e["dy"] - e["dy"].mean(0))),
     "path through the variance"),
    ("direct path only", with_(dx=lambda e: e["g"] * e["inv"] * e["dy"]), "only the direct path"),
    ("dx without gamma", with_(dx=lambda e: e["rdx"] / e["g"]), "factor gamma"),
    ("sums, not means", with_(dx=lambda e: e["g"] * e["inv"] * (
        e["dy"] - e["dy"].sum(0) - e["x_hat"] * (e["dy"] * e["x_hat"]).sum(0))), "batch *means*"),
    ("unbiased variance", with_(ddof=1), "biased variance"),
    ("no eps", with_(eps=0.0), "eps is missing"),
    ("dx scaled", with_(dx=lambda e: 1.01 * e["rdx"]), "three paths"),
    ("dgamma without x_hat", with_(dgamma=lambda e: e["dy"].sum(0)), "you left out x_hat"),
    ("dgamma with x", with_(dgamma=lambda e: (e["dy"] * e["x"]).sum(0)), "not by x"),
    ("dgamma mean", with_(dgamma=lambda e: (e["dy"] * e["x_hat"]).mean(0)), "not a mean"),
    ("dgamma times gamma", with_(dgamma=lambda e: e["rdg"] * e["g"]), "no factor gamma"),
    ("dgamma sign", with_(dgamma=lambda e: -e["rdg"]), "dgamma has the wrong sign"),
    ("dbeta mean", with_(dbeta=lambda e: e["dy"].mean(0)), "sum over the batch of dy, not a mean"),
    ("dbeta sign", with_(dbeta=lambda e: -e["rdb"]), "dbeta has the wrong sign"),
    ("dgamma and dbeta swapped", with_(dgamma=lambda e: e["rdb"], dbeta=lambda e: e["rdg"]),
     "swapped"),
    ("dx last", lambda dy, x, g: grads(dy, x, g)[1:3] + grads(dy, x, g)[:1], "in that order"),
    ("two outputs", lambda dy, x, g: grads(dy, x, g)[:2], "return a tuple (dx, dgamma, dbeta)"),
    ("dx only", lambda dy, x, g: grads(dy, x, g)[0], "return a tuple"),
    ("dx transposed", with_(dx=lambda e: e["rdx"].T), "transposed"),
    ("dgamma None", with_(dgamma=lambda e: None), "forget `return`"),
    ("forgot return", lambda dy, x, g: None, "forget `return`"),
    ("a string", lambda dy, x, g: "dx", "return a tuple"),
    ("a dict", lambda dy, x, g: {"dx": dy}, "return a tuple"),
    ("NaN", with_(dx=lambda e: e["rdx"] * np.nan), "NaN"),
    ("raises", lambda dy, x, g: raises(), "ValueError"),
    ("not implemented", lambda dy, x, g: todo(), "not implemented yet"),
]


def test_backward_reference_passes(capsys):
    assert C.check_batch_norm_backward(lambda dy, x, g: grads(dy, x, g)[:3])
    assert C.check_batch_norm_backward(lambda dy, x, g: bnh.batch_norm_backward(dy, x, g))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith("PASS") for line in lines)


@pytest.mark.parametrize("label, fn, hint", BACKWARD_TABLE, ids=[r[0] for r in BACKWARD_TABLE])
def test_backward_mistakes_fail_with_their_hint(label, fn, hint, capsys):
    assert not C.check_batch_norm_backward(fn)
    line = one_line(capsys)
    assert "| FAIL" in line and hint in line, line


def test_backward_names_each_wrong_gradient(capsys):
    fn = with_(dx=lambda e: -e["rdx"], dgamma=lambda e: e["dy"].sum(0))
    C.check_batch_norm_backward(fn)
    line = one_line(capsys)
    assert "dx: dx has the wrong sign" in line and "dgamma: " in line and "x_hat" in line


# --- convolutions -------------------------------------------------------------------------


def conv(axes_fn=None, *, ddof=0, eps_mode="inside", reshape=True, gb=True):
    def fn(x, gamma, beta, channel_axis, eps=1e-5):
        axes = (tuple(i for i in range(4) if i != channel_axis) if axes_fn is None
                else axes_fn(channel_axis))
        shape = [1] * 4
        shape[channel_axis] = -1
        g = np.reshape(gamma, shape) if reshape else gamma
        b = np.reshape(beta, shape) if reshape else beta
        if not gb:
            g, b = 1.0, 0.0
        m = x.mean(axis=axes, keepdims=True)
        v = x.var(axis=axes, keepdims=True, ddof=ddof)
        s = {"inside": np.sqrt(v + eps), "outside": np.sqrt(v) + eps, "none": np.sqrt(v)}[eps_mode]
        return g * (x - m) / s + b
    return fn


CONV_TABLE = [
    ("NCHW axes on NHWC data", conv(lambda ca: (0, 2, 3)), "one mean per image row"),
    ("NHWC axes on NCHW data", conv(lambda ca: (0, 1, 2)), "NHWC's axes"),
    ("batch axis only", conv(lambda ca: (0,)), "batch axis only"),
    ("instance norm", conv(lambda ca: tuple(i for i in (1, 2, 3) if i != ca)), "instance norm"),
    ("per image", conv(lambda ca: (1, 2, 3)), "each image separately"),
    ("unbiased variance", conv(ddof=1), "biased variance"),
    ("forgot eps", conv(eps_mode="none"), "eps is missing"),
    ("eps outside", conv(eps_mode="outside"), "inside the square root"),
    ("gamma not reshaped", conv(reshape=False), "reshape them"),
    ("no gamma, no beta", conv(gb=False), "gamma and beta are missing"),
    ("wrong shape", lambda x, g, b, ca: x[..., :2], "shape"),
    ("forgot return", lambda x, g, b, ca: None, "forget `return`"),
    ("a string", lambda x, g, b, ca: "y", "return an array"),
    ("NaN", lambda x, g, b, ca: x * np.nan, "NaN"),
    ("raises", lambda x, g, b, ca: raises(), "ValueError"),
    ("not implemented", lambda x, g, b, ca: todo(), "not implemented yet"),
]


def test_conv_reference_passes(capsys):
    assert C.check_batch_norm_conv(conv())
    assert C.check_batch_norm_conv(
        lambda x, g, b, ca: bnh.batch_norm(x, g, b, feature_axis=ca))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith("PASS") for line in lines)


@pytest.mark.parametrize("label, fn, hint", CONV_TABLE, ids=[r[0] for r in CONV_TABLE])
def test_conv_mistakes_fail_with_their_hint(label, fn, hint, capsys):
    assert not C.check_batch_norm_conv(fn)
    line = one_line(capsys)
    assert "| FAIL" in line and hint in line, line


def test_hidden_cases_keep_the_reference_passing(monkeypatch, capsys):
    monkeypatch.setenv("BN_GRADING", "1")
    assert C.check_batch_norm_backward(lambda dy, x, g: grads(dy, x, g)[:3])
    assert C.check_batch_norm_conv(conv())
    assert not C.check_batch_norm_conv(conv(lambda ca: (0, 2, 3)))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
