"""Normalization layers (bn_helpers.norms): forward vs float64 NumPy, torch.nn and Keras 3 layers,
identities (GN with G=1 is LN, G=C is IN; renorm with r_max=1, d_max=0 is BN), Batch Renorm's
clipping and stopped gradients, backward vs finite differences, running statistics, errors.

Conventions found in the reference layers (torch 2.13, Keras 3.15):
- torch.nn.LayerNorm(normalized_shape) normalizes the trailing `normalized_shape` axes and its
  affine weight has that whole shape (per element, e.g. (H, W, C)); ours is per channel, so the
  tests broadcast gamma/beta to (H, W, C) before copying them in.
- torch.nn.GroupNorm / InstanceNorm2d want NCHW (we permute from NHWC); GroupNorm's affine is per
  channel (C,); InstanceNorm2d defaults to affine=False and track_running_stats=False (we set
  affine=True). All three put eps inside the square root: (x - mean) / sqrt(var_biased + eps).
- Keras LayerNormalization normalizes over `axis=-1` ONLY by default; for NHWC we pass
  axis=[1, 2, 3], and then gamma/beta have shape (H, W, C) like torch. Keras GroupNormalization has
  per-channel gamma (C,), eps inside the rsqrt (rsqrt(var + epsilon)); both Keras layers default
  to epsilon=1e-3 (torch: 1e-5), so we pass epsilon=1e-5.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers import norms
from bn_helpers.compat import enable_x64

EPS = 1e-5
SHAPES = {"ND": (8, 6), "NHWC": (4, 3, 5, 6)}
# (kind, groups) for every layer; instance needs NHWC
LAYERS = [("batch", None), ("layer", None), ("group", 2), ("group", 3), ("instance", None),
          ("renorm", None)]


@pytest.fixture
def x64():
    with enable_x64(True):
        yield


def data(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    x = 3.0 * rng.standard_normal(shape) + 2.0
    return (x.astype(dtype), rng.uniform(0.5, 2.0, c).astype(dtype),
            rng.standard_normal(c).astype(dtype))


def standardize(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS)


def numpy_xhat(kind, x, groups=None):
    """Float64 reference of the standardized input, written per kind without reshapes."""
    if kind == "batch":
        return standardize(x, tuple(range(x.ndim - 1)))
    if kind == "layer":
        return standardize(x, tuple(range(1, x.ndim)))
    if kind == "instance":
        return standardize(x, tuple(range(1, x.ndim - 1)))
    c = x.shape[-1]
    cg = c // groups
    parts = [standardize(x[..., g * cg:(g + 1) * cg], tuple(range(1, x.ndim)))
             for g in range(groups)]
    return np.concatenate(parts, axis=-1)


def numpy_renorm(x, gamma, beta, mu, var, *, r_max, d_max, momentum):
    """Ioffe 2017, Algorithm 1 in float64. sigma_B = sqrt(eps + var_B); the running sigma is
    sqrt(running var + eps). The paper averages sigma itself; like BN we average the (unbiased)
    variance, so that eval mode is exactly BN's."""
    axes = tuple(range(x.ndim - 1))
    m = int(np.prod(x.shape[:-1]))
    mu_b = x.mean(axes)
    var_b = ((x - mu_b) ** 2).mean(axes)
    sigma_b = np.sqrt(EPS + var_b)
    sigma = np.sqrt(var + EPS)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    d = np.clip((mu_b - mu) / sigma, -d_max, d_max)
    xhat = (x - mu_b) / sigma_b * r + d
    state = {"mean": momentum * mu + (1 - momentum) * mu_b,
             "var": momentum * var + (1 - momentum) * var_b * m / (m - 1)}
    return gamma * xhat + beta, state, r, d


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# --- forward -----------------------------------------------------------------


@pytest.mark.parametrize("layout", SHAPES)
@pytest.mark.parametrize("kind, groups", LAYERS)
def test_forward_matches_numpy_float64(kind, groups, layout, x64):
    if kind == "instance" and layout == "ND":
        pytest.skip("instance norm needs spatial axes (its error is tested below)")
    x, g, b = data(SHAPES[layout])
    params, state = norms.init_norm(kind, x.shape[-1])
    y, new_state = norms.apply_norm(kind, {"gamma": g, "beta": b}, state, x, train=True,
                                    groups=groups)
    assert y.dtype == jnp.float64
    if kind == "renorm":
        ref, ref_state, _, _ = numpy_renorm(x, g, b, np.zeros(6), np.ones(6), r_max=3.0,
                                            d_max=5.0, momentum=0.9)
    else:
        ref = numpy_xhat(kind, x, groups) * g + b
    assert rel(y, ref) < 1e-12
    if kind in norms.STATEFUL:
        axes = tuple(range(x.ndim - 1))
        m = int(np.prod(x.shape[:-1]))
        np.testing.assert_allclose(new_state["mean"], 0.1 * x.mean(axes), rtol=1e-12)
        np.testing.assert_allclose(new_state["var"], 0.9 + 0.1 * x.var(axes) * m / (m - 1),
                                   rtol=1e-12)
        # eval mode: BN with the running statistics, state unchanged
        y_eval, s = norms.apply_norm(kind, {"gamma": g, "beta": b}, new_state, x, train=False)
        ref_eval = (x - new_state["mean"]) / np.sqrt(new_state["var"] + EPS) * g + b
        assert rel(y_eval, ref_eval) < 1e-12 and s is new_state
    else:
        # no running statistics: the same output in both modes, state passes through
        y_eval, s = norms.apply_norm(kind, {"gamma": g, "beta": b}, {}, x, train=False,
                                     groups=groups)
        assert new_state == {} and s == {}
        np.testing.assert_array_equal(y_eval, y)


def test_batch_kind_is_apply_batch_norm(x64):
    x, g, b = data(SHAPES["NHWC"], seed=3)
    params, state = norms.init_norm("batch", 6)
    params = {"gamma": g, "beta": b}
    ours, s1 = norms.apply_norm("batch", params, state, x, train=True, momentum=0.8,
                                unbiased_var=False)
    core, s2 = bnh.apply_batch_norm(params, state, x, train=True, momentum=0.8,
                                    unbiased_var=False)
    np.testing.assert_array_equal(ours, core)
    np.testing.assert_array_equal(s1["var"], s2["var"])


def test_pure_teaching_functions(x64):
    x, g, b = data(SHAPES["NHWC"], seed=4)
    assert rel(norms.layer_norm(x, g, b, eps=EPS), numpy_xhat("layer", x) * g + b) < 1e-12
    assert rel(norms.group_norm(x, g, b, groups=2, eps=EPS),
               numpy_xhat("group", x, 2) * g + b) < 1e-12
    assert rel(norms.instance_norm(x, g, b, eps=EPS), numpy_xhat("instance", x) * g + b) < 1e-12


def test_group_norm_spans_layer_and_instance_norm(x64):
    x, g, b = data(SHAPES["NHWC"], seed=5)
    c = x.shape[-1]
    gn1 = norms.group_norm(x, g, b, groups=1)
    gnc = norms.group_norm(x, g, b, groups=c)
    assert rel(gn1, norms.layer_norm(x, g, b)) < 1e-14
    assert rel(gnc, norms.instance_norm(x, g, b)) < 1e-14
    # and the two ends really differ (so the identities are not trivial)
    assert rel(gn1, gnc) > 1e-2
    # (N, D) input: group norm treats it as H = W = 1, so G = 1 is layer norm there too
    x2, g2, b2 = data(SHAPES["ND"], seed=5)
    assert rel(norms.group_norm(x2, g2, b2, groups=1), norms.layer_norm(x2, g2, b2)) < 1e-14


def test_jit_and_traced_limits_match_eager():
    x, g, b = data(SHAPES["NHWC"], seed=6, dtype=np.float32)
    for kind, groups in LAYERS:
        params, state = norms.init_norm(kind, 6)
        params = {"gamma": jnp.asarray(g), "beta": jnp.asarray(b)}
        eager, _ = norms.apply_norm(kind, params, state, x, train=True, groups=groups)

        @jax.jit
        def both(params, state, x, r_max, d_max, kind=kind, groups=groups):
            # the unchecked fast path with traced r_max, d_max (a schedule), and the checked one
            fast, _ = norms._apply_norm(kind, params, state, x, True, 0.9, EPS, groups, r_max,
                                        d_max)
            checked, _ = norms.apply_norm(kind, params, state, x, train=True, groups=groups)
            return fast, checked

        fast, checked = both(params, state, x, 3.0, 5.0)
        np.testing.assert_allclose(fast, eager, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(checked, eager, rtol=1e-6, atol=1e-6)


# --- against torch.nn and Keras 3 (float32) --------------------------------------


def nchw(t, torch):
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(t, -1, 1)))


@pytest.mark.parametrize("layout", SHAPES)
def test_torch_layer_norm(layout, torch):
    x, g, b = data(SHAPES[layout], seed=7, dtype=np.float32)
    feat = x.shape[1:]
    layer = torch.nn.LayerNorm(feat, eps=EPS)  # affine weight of shape feat (per element)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.broadcast_to(g, feat).copy()))
        layer.bias.copy_(torch.from_numpy(np.broadcast_to(b, feat).copy()))
    expected = layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(norms.layer_norm(x, g, b, eps=EPS), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_torch_group_norm(groups, torch):
    x, g, b = data(SHAPES["NHWC"], seed=8, dtype=np.float32)
    layer = torch.nn.GroupNorm(groups, 6, eps=EPS)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(g))
        layer.bias.copy_(torch.from_numpy(b))
    expected = np.moveaxis(layer(nchw(x, torch)).detach().numpy(), 1, -1)
    ours, _ = norms.apply_norm("group", {"gamma": g, "beta": b}, {}, x, train=True, groups=groups)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_torch_instance_norm(torch):
    x, g, b = data(SHAPES["NHWC"], seed=9, dtype=np.float32)
    layer = torch.nn.InstanceNorm2d(6, eps=EPS, affine=True)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(g))
        layer.bias.copy_(torch.from_numpy(b))
    expected = np.moveaxis(layer(nchw(x, torch)).detach().numpy(), 1, -1)
    np.testing.assert_allclose(norms.instance_norm(x, g, b, eps=EPS), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.fixture
def keras():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"Keras runs on the {keras.backend.backend()} backend; these tests need jax")
    return keras


@pytest.mark.parametrize("layout", SHAPES)
def test_keras_layer_normalization(layout, keras):
    x, g, b = data(SHAPES[layout], seed=10, dtype=np.float32)
    axes = list(range(1, x.ndim))
    layer = keras.layers.LayerNormalization(axis=axes, epsilon=EPS)
    layer.build(x.shape)
    layer.gamma.assign(np.broadcast_to(g, x.shape[1:]))  # Keras: gamma over all `axis` dims
    layer.beta.assign(np.broadcast_to(b, x.shape[1:]))
    np.testing.assert_allclose(norms.layer_norm(x, g, b, eps=EPS), np.asarray(layer(x)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 3, 6])
def test_keras_group_normalization(groups, keras):
    x, g, b = data(SHAPES["NHWC"], seed=11, dtype=np.float32)
    layer = keras.layers.GroupNormalization(groups=groups, axis=-1, epsilon=EPS)
    layer.build(x.shape)
    layer.gamma.assign(g)
    layer.beta.assign(b)
    np.testing.assert_allclose(norms.group_norm(x, g, b, groups=groups, eps=EPS),
                               np.asarray(layer(x)), rtol=1e-5, atol=1e-5)


# --- Batch Renormalization -----------------------------------------------------


def test_renorm_with_unit_limits_is_batch_norm(x64):
    x, g, b = data(SHAPES["NHWC"], seed=12)
    params = {"gamma": g, "beta": b}
    state = {"mean": np.full(6, 7.0), "var": np.full(6, 0.2)}  # far from the batch's
    bn, s_bn = norms.apply_norm("batch", params, state, x, train=True)
    brn, s_brn = norms.apply_norm("renorm", params, state, x, train=True, r_max=1.0, d_max=0.0)
    np.testing.assert_array_equal(brn, bn)
    np.testing.assert_array_equal(s_brn["mean"], s_bn["mean"])
    np.testing.assert_array_equal(s_brn["var"], s_bn["var"])


@pytest.mark.parametrize("var0, r_at", [(0.01, "r_max"), (900.0, "1/r_max")])
def test_renorm_clips_r_and_d_and_matches_algorithm_1(var0, r_at, x64):
    x, g, b = data(SHAPES["NHWC"], seed=13)
    mu0 = np.array([100.0, -100.0, 100.0, -100.0, 100.0, -100.0])
    r_max, d_max = 2.0, 1.5
    ref, ref_state, r, d = numpy_renorm(x, g, b, mu0, np.full(6, var0), r_max=r_max, d_max=d_max,
                                        momentum=0.9)
    np.testing.assert_allclose(r, r_max if r_at == "r_max" else 1 / r_max)  # clipped
    np.testing.assert_allclose(np.abs(d), d_max)
    y, s = norms.apply_norm("renorm", {"gamma": g, "beta": b}, {"mean": mu0, "var": np.full(6, var0)},
                            x, train=True, r_max=r_max, d_max=d_max)
    assert rel(y, ref) < 1e-12
    np.testing.assert_allclose(s["mean"], ref_state["mean"], rtol=1e-12)
    np.testing.assert_allclose(s["var"], ref_state["var"], rtol=1e-12)


def test_renorm_gradient_treats_r_and_d_as_constants(x64):
    x, g, b = data((2, 3, 2, 6), seed=14)
    w = np.random.default_rng(15).standard_normal(x.shape)
    mu0, var0 = np.full(6, 1.0), np.full(6, 4.0)  # r, d inside the limits: not clipped
    _, _, r, d = numpy_renorm(x, g, b, mu0, var0, r_max=3.0, d_max=5.0, momentum=0.9)
    assert np.all((r > 1 / 3) & (r < 3)) and np.all(np.abs(d) < 5) and np.all(np.abs(r - 1) > 0.05)

    def loss(x, gamma, beta):
        y, _ = norms.apply_norm("renorm", {"gamma": gamma, "beta": beta},
                                {"mean": mu0, "var": var0}, x, train=True)
        return jnp.sum(w * y)

    dx, dg, db = jax.grad(loss, argnums=(0, 1, 2))(x, g, b)
    # BN's hand-written backward with gamma * r: the gradient of BN's formula times r
    bn_dx, bn_dg, bn_db = bnh.batch_norm_backward(w, x, g * r, eps=EPS)
    xhat = numpy_xhat("batch", x)
    assert rel(dx, bn_dx) < 1e-12
    assert rel(dg, np.sum(w * (xhat * r + d), axis=(0, 1, 2))) < 1e-12
    assert rel(db, bn_db) < 1e-12
    # finite differences see r and d move with x, autodiff does not: they must differ
    fd = finite_differences(lambda xx: loss(xx, g, b), x)
    assert np.max(np.abs(fd - np.asarray(dx))) > 1e-3


# --- backward vs finite differences ----------------------------------------------


def finite_differences(f, x, h=1e-5):
    """Centred differences of scalar f at every entry of x, all perturbations in one vmap."""
    x = jnp.asarray(x)
    eye = jnp.eye(x.size, dtype=x.dtype).reshape((x.size,) + x.shape) * h
    fv = jax.jit(jax.vmap(f))
    return np.asarray((fv(x + eye) - fv(x - eye)) / (2 * h)).reshape(x.shape)


@pytest.mark.parametrize("layout", SHAPES)
@pytest.mark.parametrize("kind, groups", LAYERS)
def test_backward_matches_finite_differences(kind, groups, layout, x64):
    if kind == "instance" and layout == "ND":
        pytest.skip("instance norm needs spatial axes")
    shape = (2, 3, 2, 6) if layout == "NHWC" else (5, 12)  # >= 4 values per group and example
    c = shape[-1]
    x, g, b = data(shape, seed=16)
    w = np.random.default_rng(17).standard_normal(shape)
    # renorm: a running state far from the batch's, so r and d sit at their clip limits and
    # are locally constant; then the stopped gradient is the true one
    state = ({"mean": np.full(c, 50.0), "var": np.full(c, 1e-2)} if kind == "renorm"
             else norms.init_norm(kind, c)[1])

    def loss(theta):  # theta = (x, gamma, beta) flattened, so one FD pass covers all three
        xx, gamma, beta = theta[:x.size].reshape(shape), theta[x.size:-c], theta[-c:]
        y, _ = norms._apply_norm(kind, {"gamma": gamma, "beta": beta}, state, xx, True,
                                 groups=groups)
        return jnp.sum(w * y)

    theta = np.concatenate([x.ravel(), g, b])
    err = np.abs(np.asarray(jax.grad(loss)(theta)) - finite_differences(loss, theta))
    for name, part in (("x", err[:x.size]), ("gamma", err[x.size:-c]), ("beta", err[-c:])):
        assert part.max() < 1e-6, f"d loss / d {name}: max |autodiff - FD| = {part.max():.2e}"


# --- running statistics against torch.nn.BatchNorm2d --------------------------


@pytest.mark.parametrize("kind", norms.STATEFUL)
def test_running_stats_match_torch_batchnorm2d(kind, torch):
    rng = np.random.default_rng(18)
    xs = [(3.0 * rng.standard_normal((4, 3, 5, 6)) + 2.0).astype(np.float32) for _ in range(4)]
    momentum = 0.8  # ours weighs the old value; torch's momentum weighs the new batch: 1 - 0.8
    layer = torch.nn.BatchNorm2d(6, momentum=1 - momentum, eps=EPS).train()
    params, state = norms.init_norm(kind, 6)
    for xb in xs:
        y, state = norms.apply_norm(kind, params, state, xb, train=True, momentum=momentum)
        out = np.moveaxis(layer(nchw(xb, torch)).detach().numpy(), 1, -1)
        if kind == "batch":
            np.testing.assert_allclose(y, out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["mean"], layer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["var"], layer.running_var.numpy(), rtol=1e-5, atol=1e-6)
    layer.eval()
    y_eval, _ = norms.apply_norm(kind, params, state, xs[0], train=False)
    np.testing.assert_allclose(y_eval, np.moveaxis(layer(nchw(xs[0], torch)).detach().numpy(), 1, -1),
                               rtol=1e-5, atol=1e-5)


# --- errors name the argument ------------------------------------------------------


P6 = {"gamma": np.ones(6), "beta": np.zeros(6)}
S6 = {"mean": np.zeros(6), "var": np.ones(6)}
X4 = np.ones((3, 2, 2, 6))
X2 = np.arange(18.0).reshape(3, 6)

ERRORS = [
    (lambda: norms.init_norm("batchnorm", 6), r"`kind` must be one of \('batch', 'layer'"),
    (lambda: norms.apply_norm("weight", P6, {}, X2, train=True), r"`kind` must be one of"),
    (lambda: norms.init_norm("layer", 0), r"`num_features`"),
    (lambda: norms.apply_norm("group", P6, {}, X4, train=True), r"`groups` is required"),
    (lambda: norms.apply_norm("group", P6, {}, X4, train=True, groups=4), r"`groups`=4 must divide"),
    (lambda: norms.apply_norm("group", P6, {}, X4, train=True, groups=0), r"`groups` must be"),
    (lambda: norms.group_norm(X4, P6["gamma"], P6["beta"], groups=5), r"`groups`=5"),
    (lambda: norms.apply_norm("instance", P6, {}, X2, train=True), r"`x` must be NHWC"),
    (lambda: norms.instance_norm(X2, P6["gamma"], P6["beta"]), r"`x` must be NHWC"),
    (lambda: norms.apply_norm("batch", P6, S6, X2[:1], train=True), r"more than 1 value.*x has shape"),
    (lambda: norms.apply_norm("renorm", P6, S6, X2[:1], train=True), r"more than 1 value.*x has shape"),
    (lambda: norms.apply_norm("renorm", P6, S6, X2, train=True, r_max=0.5), r"`r_max` must be >= 1"),
    (lambda: norms.apply_norm("renorm", P6, S6, X2, train=True, d_max=-0.1), r"`d_max` must be >= 0"),
    (lambda: norms.apply_norm("layer", {"gamma": np.ones(5), "beta": np.zeros(6)}, {}, X2,
                              train=True), r"`gamma` must have shape \(6,\)"),
    (lambda: norms.layer_norm(X4, np.ones(6), np.zeros((2, 6))), r"`beta` must have shape \(6,\)"),
    (lambda: norms.layer_norm(np.where(X2 > 4, np.nan, X2), np.ones(6), np.zeros(6)),
     r"`x` contains 13 non-finite"),
    (lambda: norms.apply_norm("batch", P6, S6, X2, train=True, momentum=1.5), r"`momentum`"),
    (lambda: norms.apply_norm("batch", P6, {}, X2, train=True), r"`state` must be a dict"),
    (lambda: norms.apply_norm("renorm", P6, {"mean": np.zeros(5), "var": np.ones(6)}, X2,
                              train=False), r"`state\['mean'\]` must have shape \(6,\)"),
    (lambda: norms.apply_norm("layer", [1, 2], {}, X2, train=True), r"`params` must be a dict"),
    (lambda: norms.apply_norm("layer", P6, {}, X2, train=True, eps=0.0), r"`eps` must be > 0"),
    (lambda: norms.apply_norm("layer", P6, {}, X2[0], train=True), r"`x` must have at least 2"),
]


@pytest.mark.parametrize("call, match", ERRORS)
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_train_must_be_a_bool():
    with pytest.raises(TypeError, match="`train` must be True or False"):
        norms.apply_norm("layer", P6, {}, X2, train="yes")
