"""BN core: forward vs NumPy float64, backward vs jax.grad and finite differences, layouts, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks import rel_error
from bn_helpers.compat import enable_x64

LAYOUTS = {
    "ND": ((16, 5), -1),
    "NHWC": ((4, 3, 5, 6), -1),
    "NCHW": ((4, 6, 3, 5), 1),
}


def numpy_bn(x, gamma, beta, eps, feature_axis):
    """Reference forward pass in float64 NumPy."""
    ax = feature_axis % x.ndim
    axes = tuple(i for i in range(x.ndim) if i != ax)
    shape = [1] * x.ndim
    shape[ax] = -1
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return gamma.reshape(shape) * (x - mean) / np.sqrt(var + eps) + beta.reshape(shape)


def case(shape, feature_axis, seed=0):
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal(shape) + 12.0
    c = shape[feature_axis]
    return x, rng.uniform(0.5, 2.0, c), rng.standard_normal(c), rng.standard_normal(shape)


@pytest.fixture
def x64():
    with enable_x64(True):
        yield


@pytest.mark.parametrize("layout", LAYOUTS)
def test_forward_matches_numpy(layout, x64):
    shape, fa = LAYOUTS[layout]
    x, g, b, _ = case(shape, fa)
    y = bnh.batch_norm(x, g, b, eps=1e-5, feature_axis=fa)
    assert y.dtype == jnp.float64
    assert rel_error(y, numpy_bn(x, g, b, 1e-5, fa)) < 1e-12


def test_card_g_fixed_vector(x64):
    x = np.array([[1, 2], [3, 6], [5, 10], [7, 14]], dtype=np.float64)
    y = bnh.batch_norm(x, np.ones(2), np.zeros(2), eps=0.0)
    expected = np.array([-1.3416, -0.4472, 0.4472, 1.3416])
    np.testing.assert_allclose(y[:, 0], expected, atol=1e-4)
    np.testing.assert_allclose(y[:, 1], expected, atol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_matches_autodiff(layout, x64):
    shape, fa = LAYOUTS[layout]
    x, g, b, dy = case(shape, fa, seed=1)
    dx, dg, db = bnh.batch_norm_backward(dy, x, g, feature_axis=fa)
    _, vjp = jax.vjp(lambda a, gg, bb: bnh.batch_norm(a, gg, bb, feature_axis=fa), x, g, b)
    rx, rg, rb = vjp(dy)
    assert rel_error(dx, rx) < 1e-9
    assert rel_error(dg, rg) < 1e-10
    assert rel_error(db, rb) < 1e-12
    grads = jax.grad(lambda a: jnp.sum(dy * bnh.batch_norm(a, g, b, feature_axis=fa)))(x)
    assert rel_error(dx, grads) < 1e-9


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backward_matches_finite_differences(layout, x64):
    shape, fa = LAYOUTS[layout]
    x, g, b, dy = case(shape, fa, seed=2)
    dx, dg, db = bnh.batch_norm_backward(dy, x, g, feature_axis=fa)

    def loss(x_, g_, b_):
        return float(np.sum(dy * np.asarray(bnh.batch_norm(x_, g_, b_, feature_axis=fa))))

    def centred(arr, which, h=1e-5):
        grad = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[i] += h
            minus[i] -= h
            args_p = [x, g, b]
            args_m = [x, g, b]
            args_p[which], args_m[which] = plus, minus
            grad[i] = (loss(*args_p) - loss(*args_m)) / (2 * h)
        return grad

    # A random subset of x's entries keeps the test fast; all of gamma and beta
    rng = np.random.default_rng(3)
    picks = [tuple(rng.integers(0, s) for s in x.shape) for _ in range(12)]
    h = 1e-5
    for i in picks:
        plus, minus = x.copy(), x.copy()
        plus[i] += h
        minus[i] -= h
        fd = (loss(plus, g, b) - loss(minus, g, b)) / (2 * h)
        assert abs(fd - float(dx[i])) / max(1e-8, abs(fd) + abs(float(dx[i]))) < 1e-6
    assert rel_error(dg, centred(g, 1)) < 1e-7
    assert rel_error(db, centred(b, 2)) < 1e-7


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_per_channel_moments(layout, x64):
    shape, fa = LAYOUTS[layout]
    rng = np.random.default_rng(4)
    c = shape[fa]
    means = 10.0 * np.arange(c)
    bshape = [1] * 4
    bshape[fa] = c
    x = rng.standard_normal(shape) * (1 + np.arange(c)).reshape(bshape) + means.reshape(bshape)
    y = np.asarray(bnh.batch_norm(x, np.ones(c), np.zeros(c), eps=0.0, feature_axis=fa))
    axes = bnh.batchnorm.reduce_axes(4, fa)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1.0, atol=1e-12)
    # The wrong axes (NCHW's on NHWC data) give per-row statistics instead: the symptom
    if layout == "NHWC":
        wrong = (x - x.mean((0, 2, 3), keepdims=True)) / x.std((0, 2, 3), keepdims=True)
        assert np.max(np.abs(wrong.mean(axis=axes))) > 0.1


def test_gradient_properties(x64):
    x, g, b, dy = case((32, 4), -1, seed=5)
    dx, _, _ = bnh.batch_norm_backward(dy, x, g, eps=0.0)
    x_hat = (x - x.mean(0)) / x.std(0)
    np.testing.assert_allclose(np.sum(dx, axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(dx * x_hat, axis=0), 0.0, atol=1e-10)


def test_scale_invariance(x64):
    rng = np.random.default_rng(6)
    u = rng.standard_normal((32, 7))
    w = rng.standard_normal((7, 3))
    g, b = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    t = rng.standard_normal((32, 3))

    def loss(w_):
        return jnp.sum(t * bnh.batch_norm(u @ w_, g, b, eps=0.0))

    for a in (0.1, 10.0):
        assert rel_error(bnh.batch_norm(u @ (a * w), g, b, eps=0.0),
                         bnh.batch_norm(u @ w, g, b, eps=0.0)) < 1e-12
        assert rel_error(jax.grad(loss)(a * w), jax.grad(loss)(w) / a) < 1e-10
    # The weight gradient is orthogonal to the weights
    assert abs(float(jnp.sum(jax.grad(loss)(w) * w))) < 1e-10


# --- running statistics -------------------------------------------------------


def test_init_and_eval_right_after_init(x64):
    params, state = bnh.init_batch_norm(3)
    np.testing.assert_array_equal(params["gamma"], 1.0)
    np.testing.assert_array_equal(params["beta"], 0.0)
    np.testing.assert_array_equal(state["mean"], 0.0)
    np.testing.assert_array_equal(state["var"], 1.0)
    x = np.arange(6.0).reshape(2, 3)
    y, new_state = bnh.apply_batch_norm(params, state, x, train=False)
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5))
    assert new_state is state


@pytest.mark.parametrize("unbiased, expected_var", [(True, [1.5667, 3.5667]), (False, [1.4, 2.9])])
def test_running_stats_card_g(unbiased, expected_var, x64):
    x = np.array([[1, 2], [3, 6], [5, 10], [7, 14]], dtype=np.float64)
    params, state = bnh.init_batch_norm(2)
    _, s = bnh.apply_batch_norm(params, state, x, train=True, momentum=0.9, unbiased_var=unbiased)
    np.testing.assert_allclose(s["mean"], [0.4, 0.8], atol=1e-12)
    np.testing.assert_allclose(s["var"], expected_var, atol=1e-4)
    _, s = bnh.apply_batch_norm(params, state, x, train=True, momentum=0.99, unbiased_var=False)
    np.testing.assert_allclose(s["mean"], [0.04, 0.08], atol=1e-12)


def test_running_stats_conv_shapes_and_algorithm_2(x64):
    rng = np.random.default_rng(7)
    params, state = bnh.init_batch_norm(3)
    batches = [rng.standard_normal((4, 5, 5, 3)) * 2 + 1 for _ in range(6)]
    for xb in batches:
        _, state = bnh.apply_batch_norm(params, state, xb, train=True, momentum=0.5)
        assert state["mean"].shape == (3,) and state["var"].shape == (3,)
    # momentum=0 keeps only the last batch: its m/(m-1)-corrected variance, m = N*H*W
    _, s = bnh.apply_batch_norm(params, state, batches[-1], train=True, momentum=0.0)
    m = 4 * 5 * 5
    np.testing.assert_allclose(s["var"], batches[-1].var(axis=(0, 1, 2)) * m / (m - 1), rtol=1e-12)


def test_running_stats_are_outside_autodiff(x64):
    params, state = bnh.init_batch_norm(2)
    x = np.random.default_rng(8).standard_normal((8, 2))

    def f(x_):
        _, s = bnh.apply_batch_norm(params, state, x_, train=True)
        return jnp.sum(s["mean"]) + jnp.sum(s["var"])

    np.testing.assert_array_equal(jax.grad(f)(x), 0.0)


def test_train_and_eval_agree_when_running_stats_equal_batch_stats(x64):
    x = np.random.default_rng(9).standard_normal((50, 3)) * 3 + 2
    params, _ = bnh.init_batch_norm(3)
    state = {"mean": jnp.asarray(x.mean(0)), "var": jnp.asarray(x.var(0))}
    y_train, _ = bnh.apply_batch_norm(params, state, x, train=True)
    y_eval, _ = bnh.apply_batch_norm(params, state, x, train=False)
    assert rel_error(y_train, y_eval) < 1e-12


def test_apply_under_jit_and_vmap():
    params, state = bnh.init_batch_norm(4)
    x = jnp.ones((3, 8, 4)) * jnp.arange(8.0)[None, :, None]
    f = jax.jit(jax.vmap(lambda xb: bnh.apply_batch_norm(params, state, xb, train=True)[0]))
    y = f(x)
    assert y.shape == (3, 8, 4)
    assert bool(jnp.all(jnp.isfinite(y)))


# --- clear errors -------------------------------------------------------------


def test_batch_of_one_in_training_mode_is_an_error():
    params, state = bnh.init_batch_norm(3)
    with pytest.raises(ValueError, match="more than 1 value per feature"):
        bnh.apply_batch_norm(params, state, np.ones((1, 3)), train=True)
    with pytest.raises(ValueError, match="more than 1 value per feature"):
        bnh.batch_norm(np.ones((1, 3)), np.ones(3), np.zeros(3))
    # Eval mode with a single example is fine
    y, _ = bnh.apply_batch_norm(params, state, np.ones((1, 3)), train=False)
    assert y.shape == (1, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"gamma": np.ones(4)}, r"`gamma` must have shape \(3,\)"),
        ({"beta": np.ones((3, 1))}, r"`beta` must have shape \(3,\)"),
        ({"feature_axis": 2}, r"`feature_axis`=2 is out of range"),
        ({"x": np.array([[1.0, np.nan, 2.0], [1, 2, 3]])}, r"`x` contains 1 non-finite"),
        ({"x": np.ones(3)}, r"`x` must have at least 2 dimensions"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {"x": np.arange(6.0).reshape(2, 3), "gamma": np.ones(3), "beta": np.zeros(3)}
    args.update(kwargs)
    fa = args.pop("feature_axis", -1)
    with pytest.raises(ValueError, match=match):
        bnh.batch_norm(args["x"], args["gamma"], args["beta"], feature_axis=fa)


def test_apply_errors():
    params, state = bnh.init_batch_norm(3)
    x = np.ones((4, 3))
    with pytest.raises(TypeError, match="`train` must be True or False"):
        bnh.apply_batch_norm(params, state, x, train="yes")
    with pytest.raises(ValueError, match="`momentum` must be in"):
        bnh.apply_batch_norm(params, state, x, train=True, momentum=1.5)
    with pytest.raises(ValueError, match=r"`state\['var'\]` must have shape"):
        bnh.apply_batch_norm(params, {"mean": np.zeros(3), "var": np.ones(2)}, x, train=False)
    with pytest.raises(ValueError, match="`params` must be a dict"):
        bnh.apply_batch_norm({"gamma": np.ones(3)}, state, x, train=False)
    with pytest.raises(ValueError, match="`num_features` must be a positive int"):
        bnh.init_batch_norm(0)
    with pytest.raises(ValueError, match="`dy` must have the shape"):
        bnh.batch_norm_backward(np.ones((2, 3)), np.ones((4, 3)), np.ones(3))
