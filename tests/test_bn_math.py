"""Claims of notebooks/04_bn_math.ipynb not covered by tests/test_batchnorm.py: the staged
backward, float32 vs float64 finite differences, batch dependence, eps, the identity, the
effective learning rate, the conv check and the wrong-axes symptom, and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.checks import rel_error
from bn_helpers.compat import enable_x64

gc = bnh.bn_math


def case(shape=(8, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = 5.0 * rng.standard_normal(shape) + 12.0
    c = shape[-1]
    return x, rng.uniform(0.5, 2.0, c), rng.standard_normal(c), rng.standard_normal(shape)


@pytest.fixture
def x64():
    with enable_x64(True):
        yield


# --- forward and backward, step by step ---------------------------------------


def test_forward_steps_match_batch_norm_and_card_g(x64):
    x = np.array([[1, 2], [3, 6], [5, 10], [7, 14]], dtype=np.float64)
    s = gc.forward_steps(x, np.array([2.0, 0.5]), np.array([1.0, -1.0]))
    np.testing.assert_allclose(s["mean"], [4, 8])
    np.testing.assert_allclose(s["var"], [5, 20])
    # Both columns normalize to the same values: BN forgets a feature's scale
    np.testing.assert_allclose(s["x_hat"][:, 0], s["x_hat"][:, 1], atol=1e-6)
    np.testing.assert_allclose(s["x_hat"][:, 0], [-1.3416, -0.4472, 0.4472, 1.3416], atol=1e-4)
    np.testing.assert_allclose(s["x_hat"].var(0), s["var"] / (s["var"] + 1e-5), rtol=1e-12)
    y = bnh.batch_norm(x, np.array([2.0, 0.5]), np.array([1.0, -1.0]))
    assert rel_error(s["y"], y) < 1e-14


@pytest.mark.parametrize("shape, fa", [((8, 3), -1), ((4, 3, 5, 2), -1), ((4, 2, 3, 5), 1)])
@pytest.mark.parametrize("eps", [0.0, 1e-5, 1e-1])
def test_staged_backward_equals_closed_form_and_vjp(shape, fa, eps, x64):
    rng = np.random.default_rng(1)
    x = 5.0 * rng.standard_normal(shape) + 12.0
    c = shape[fa]
    g, b, dy = rng.uniform(0.5, 2.0, c), rng.standard_normal(c), rng.standard_normal(shape)
    staged = gc.staged_backward(dy, x, g, eps=eps, feature_axis=fa)
    closed = bnh.batch_norm_backward(dy, x, g, eps=eps, feature_axis=fa)
    _, vjp = jax.vjp(lambda a, gg, bb: bnh.batch_norm(a, gg, bb, eps=eps, feature_axis=fa), x, g, b)
    auto = vjp(dy)
    for key, c_val, a_val in zip(("dx", "dgamma", "dbeta"), closed, auto):
        assert rel_error(staged[key], c_val) < 1e-10, key
        assert rel_error(staged[key], a_val) < 1e-10, key
    # The mean's term collapses: dL/dmean = -gamma / s * sum(g) (the notebook's derivation)
    ax = fa % len(shape)
    axes = tuple(i for i in range(len(shape)) if i != ax)
    s = np.sqrt(x.var(axis=axes) + eps)
    np.testing.assert_allclose(staged["dmean"], -g / s * dy.sum(axis=axes), rtol=1e-10)


def test_gradient_errors_routes_and_bands():
    x, g, b, dy = case()
    errs = gc.gradient_errors(x, g, b, dy)
    assert errs["staged (paper)"] < 1e-13
    assert errs["jax.vjp"] < 1e-13
    assert gc.band(errs["finite differences, float64"]) == "PASS"
    assert gc.band(errs["finite differences, float32"]) == "FAIL"
    assert gc.band(1e-5) == "CLOSE" and gc.band(1e-9) == "PASS" and gc.band(np.inf) == "FAIL"


def test_float32_finite_differences_are_much_worse_than_float64():
    # Medians over seeds, and the best step size of each precision: float32 cannot reach PASS
    hs = np.logspace(-10, 0, 11)
    best32, best64 = [], []
    for seed in range(3):
        x, g, b, dy = case(seed=seed)
        best64.append(gc.fd_error_curve(x, g, b, dy, hs, dtype=np.float64).min())
        best32.append(gc.fd_error_curve(x, g, b, dy, hs, dtype=np.float32).min())
    assert np.median(best64) < 1e-8
    assert np.median(best32) > 1e-5
    assert np.median(best32) > 1e3 * np.median(best64)
    assert min(best32) > 1e-7  # no seed passes in float32


def test_numerical_gradient_is_exact_for_a_quadratic(x64):
    x = np.arange(6.0).reshape(2, 3)
    fd = gc.numerical_gradient(lambda a: jnp.sum(a**2), x, h=1e-3)
    np.testing.assert_allclose(fd, 2 * x, rtol=1e-9)


# --- properties ----------------------------------------------------------------


def test_sum_x_hat_dx_matches_the_eps_formula(x64):
    # Card A2: sum_i dx_i x_hat_i = gamma m mean(g x_hat) / s * eps / (var + eps)
    x, g, _, dy = case((16, 3), seed=2)
    for eps in (1e-5, 1e-1):
        dx, _, _ = bnh.batch_norm_backward(dy, x, g, eps=eps)
        s = gc.forward_steps(x, g, np.zeros(3), eps=eps)
        m = x.shape[0]
        expected = (g * m * np.mean(dy * s["x_hat"], 0) / s["std"] * eps / (s["var"] + eps))
        np.testing.assert_allclose(np.sum(dx * s["x_hat"], 0), expected, rtol=1e-8, atol=1e-14)


def test_gamma_beta_can_represent_the_identity(x64):
    x, _, _, _ = case((10, 4), seed=3)
    for eps in (0.0, 1e-5, 1.0):
        g, b = gc.identity_params(x, eps=eps)
        assert rel_error(bnh.batch_norm(x, g, b, eps=eps), x) < 1e-13
    # Also per channel on conv data
    xc = np.random.default_rng(4).standard_normal((2, 3, 3, 5)) * 3 + 1
    g, b = gc.identity_params(xc, feature_axis=-1)
    assert rel_error(bnh.batch_norm(xc, g, b), xc) < 1e-13


def test_eps_caps_the_output_and_the_gain():
    sig = np.array([0.0, 1e-6, 1e-4, 1e-2, 1.0, 10.0])
    for eps in (1e-5, 1e-3):
        r = gc.eps_gain(sig, eps)
        expected_std = sig / np.sqrt(sig**2 + eps)
        np.testing.assert_allclose(r["out_std"], expected_std, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(r["gain"], 1 / np.sqrt(sig**2 + eps), rtol=1e-6)
        assert r["out_std"][0] == 0.0  # a constant feature maps to 0, not NaN
        assert r["gain"].max() <= 1 / np.sqrt(eps) * (1 + 1e-9)
        assert np.all(np.diff(r["out_std"]) >= 0)
    r0 = gc.eps_gain(sig, 0.0)
    assert np.isnan(r0["out_std"][0]) and np.isinf(r0["gain"][0])  # 0/0 without eps
    np.testing.assert_allclose(r0["out_std"][1:], 1.0, atol=1e-6)
    # The gain without eps grows without bound as the spread shrinks
    assert r0["gain"][1] > 1e5


def test_weight_gradient_scaling_and_effective_learning_rate(x64):
    rng = np.random.default_rng(6)
    u, w = rng.standard_normal((32, 7)), rng.standard_normal((7, 3))
    t = rng.standard_normal((32, 3))
    g, b = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    scales = np.logspace(-2, 2, 5)
    sc = gc.weight_gradient_scaling(u, w, g, b, t, scales)
    # ||grad|| * ||W|| is constant: the gradient shrinks like 1 / ||W||
    prod = sc["grad_norm"] * sc["w_norm"]
    np.testing.assert_allclose(prod, prod[0], rtol=1e-10)
    assert np.abs(sc["cosine"]).max() < 1e-12
    # One SGD step at scale a equals a step with lr / a^2 at scale 1 (outputs identical)

    def out(w_):
        return bnh.batch_norm(u @ w_, g, b, eps=0.0)

    grad = jax.grad(lambda w_: jnp.sum(t * out(w_)))
    lr = 0.3
    for a in (0.1, 10.0):
        assert rel_error(out(a * w - lr * grad(a * w)), out(w - lr / a**2 * grad(w))) < 1e-11
    # Orthogonal steps can only make ||W|| grow
    step = w - lr * grad(w)
    np.testing.assert_allclose(np.sum(step**2), np.sum(w**2) + lr**2 * np.sum(grad(w) ** 2),
                               rtol=1e-10)
    assert np.linalg.norm(step) > np.linalg.norm(w)


def test_moving_one_sample_moves_every_output():
    batch = jax.random.normal(jax.random.PRNGKey(4), (16, 1)).at[0, 0].set(0.5)
    y0, _, _ = gc.moved_outputs(batch, 0.5)
    np.testing.assert_allclose(y0, bnh.batch_norm(batch, jnp.ones(1), jnp.zeros(1)), atol=1e-6)
    for v in (-5.0, 3.0, 15.0):
        y, mean, std = gc.moved_outputs(batch, v)
        change = np.abs(np.asarray(y[1:, 0] - y0[1:, 0]))
        assert change.min() > 1e-3  # every untouched sample's output moved
        moved = np.asarray(batch).copy()
        moved[0, 0] = v
        np.testing.assert_allclose(mean, moved.mean(0), rtol=1e-5)
        np.testing.assert_allclose(std, moved.std(0), rtol=1e-5)
    # A far outlier crowds the others together (Exercise 4)
    y_far, _, _ = gc.moved_outputs(batch, 15.0)
    assert np.std(np.asarray(y_far[1:, 0])) < 0.5 * np.std(np.asarray(y0[1:, 0]))


# --- convolutions ----------------------------------------------------------------


def nhwc_case(seed=0):
    rng = np.random.default_rng(seed)
    n, h, w, c = 8, 5, 5, 3
    x = rng.standard_normal((n, h, w, c)) * (1.0 + np.arange(c)) + 10.0 * np.arange(c) + 5.0
    return x + 0.5 * rng.standard_normal((1, h, 1, 1))


def test_wrong_axes_on_nhwc_symptom(x64):
    x = nhwc_case()
    wrong, wmean = gc.normalize_over(x, (0, 2, 3))
    right, rmean = gc.normalize_over(x, (0, 1, 2))
    assert wmean.shape == (1, 5, 1, 1) and rmean.shape == (1, 1, 1, 3)
    assert (0.9 * np.zeros((1, 1, 1, 3)) + 0.1 * np.asarray(wmean)).shape == (1, 5, 1, 3)
    m_r, s_r = gc.conv_channel_moments(right, 3)
    m_w, s_w = gc.conv_channel_moments(wrong, 3)
    np.testing.assert_allclose(m_r, 0, atol=1e-12)
    np.testing.assert_allclose(s_r, 1, atol=1e-5)
    assert m_w[0] < -1 and m_w[2] > 1 and np.all(s_w < 0.5)
    # the right version is the package's batch_norm
    assert rel_error(right, bnh.batch_norm(x, np.ones(3), np.zeros(3))) < 1e-13


def _conv_bn(axes_fn):
    def fn(x, gamma, beta, channel_axis, eps=1e-5):
        axes = axes_fn(channel_axis)
        shape = [1] * 4
        shape[channel_axis] = -1
        m = jnp.mean(x, axis=axes, keepdims=True)
        v = jnp.mean((x - m) ** 2, axis=axes, keepdims=True)
        return jnp.reshape(gamma, shape) * (x - m) / jnp.sqrt(v + eps) + jnp.reshape(beta, shape)
    return fn


def test_conv_check_pass_and_fail_with_hints(capsys):
    right = _conv_bn(lambda ca: tuple(i for i in range(4) if i != ca))
    nchw_axes = _conv_bn(lambda ca: (0, 2, 3))       # the textbook mistake
    per_pixel = _conv_bn(lambda ca: (0,))

    def unbiased(x, gamma, beta, channel_axis, eps=1e-5):
        axes = tuple(i for i in range(4) if i != channel_axis)
        shape = [1] * 4
        shape[channel_axis] = -1
        m = x.mean(axis=axes, keepdims=True)
        v = x.var(axis=axes, keepdims=True, ddof=1)
        return gamma.reshape(shape) * (x - m) / np.sqrt(v + eps) + beta.reshape(shape)

    def todo(x, gamma, beta, channel_axis):
        raise NotImplementedError

    assert bnh.checks.check_batch_norm_conv(right)
    assert not bnh.checks.check_batch_norm_conv(nchw_axes)
    assert not bnh.checks.check_batch_norm_conv(per_pixel)
    assert not bnh.checks.check_batch_norm_conv(unbiased)
    assert not bnh.checks.check_batch_norm_conv(todo)
    assert not bnh.checks.check_batch_norm_conv(lambda x, g, b, ca: x[..., :2])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("batch_norm conv (NHWC and NCHW) |") and lines[0].endswith("PASS")
    assert "FAIL" in lines[1] and "(NHWC)" in lines[1] and "(0, 1, 2)" in lines[1]
    assert "batch axis only" in lines[2]
    assert "biased variance" in lines[3]
    assert "not implemented" in lines[4]
    assert "shape" in lines[5]


def test_existing_checks_keep_their_signatures(capsys):
    def fwd(x, g, b, eps=1e-5):
        return bnh.batch_norm(x, g, b, eps=eps)

    def bwd(dy, x, g):
        return bnh.batch_norm_backward(dy, x, g)

    assert bnh.checks.check_batch_norm_forward(fwd)
    assert bnh.checks.check_batch_norm_backward(bwd)
    assert "check_batch_norm_conv" in bnh.checks.__all__


# --- clear errors ------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: gc.forward_steps(np.ones(3), np.ones(3), np.zeros(3)), "`x` must have at least 2"),
    (lambda: gc.forward_steps(np.ones((4, 3)), np.ones(2), np.zeros(3)), r"`gamma` must have shape \(3,\)"),
    (lambda: gc.forward_steps(np.ones((4, 3)), np.ones(3), np.zeros(3), eps=-1.0), "`eps` must be"),
    (lambda: gc.staged_backward(np.ones((2, 3)), np.ones((4, 3)), np.ones(3)), "`dy` must have the shape"),
    (lambda: gc.staged_backward(np.ones((1, 3)), np.ones((1, 3)), np.ones(3)), "more than 1 value"),
    (lambda: gc.numerical_gradient(jnp.sum, np.ones(3), h=0.0), "`h` must be a positive"),
    (lambda: gc.numerical_gradient(jnp.sum, np.ones(3), h=1e-3, dtype=np.float16), "`dtype` must be"),
    (lambda: gc.fd_error_curve(*case(), [1e-3, -1.0], dtype=np.float64), "`hs` must be"),
    (lambda: gc.moved_outputs(np.ones((1, 2)), 0.0), "`x` must have shape"),
    (lambda: gc.normalize_over(np.ones((2, 3, 4)), (0, 0)), "`axes` must list"),
    (lambda: gc.conv_channel_moments(np.ones((2, 3)), 1), "`y` must be 4-D"),
    (lambda: gc.weight_gradient_scaling(np.ones((4, 3)), np.ones((2, 2)), np.ones(2), np.zeros(2),
                                        np.ones((4, 2)), [1.0]), "`w` must have 3 rows"),
    (lambda: gc.weight_gradient_scaling(np.ones((4, 3)), np.ones((3, 2)), np.ones(2), np.zeros(2),
                                        np.ones((4, 2)), [0.0]), "`scales` must"),
    (lambda: gc.eps_gain([-1.0], 1e-5), "`sigmas` must"),
    (lambda: gc.forward_steps(np.ones((4, 3)), np.ones(3), np.zeros(3), feature_axis=5),
     "`feature_axis`=5 is out of range"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_draw_graph_draws_every_node():
    fig, ax = bnh.plots.new_figure(interactive=True)
    bnh.figures.bn_math.draw_graph(ax)
    texts = {t.get_text() for t in ax.texts} - {""}  # arrows are empty annotations
    assert r"$\hat x_i$" in texts and r"$\mu_B$" in texts and r"$\sigma_B^2$" in texts
    assert len(texts) == 9


# --- issue 11: the corrected claims of notebooks/04_bn_math.ipynb ----------------------------


def test_identity_only_at_inference_with_running_statistics():
    demo = gc.identity_demo((8, 32, 128), (0, 1, 2))
    assert demo["train_same"].max() < 1e-12             # the batch gamma, beta came from
    assert demo["eval_running_params"].max() < 1e-12    # eval mode, gamma, beta from running stats
    assert demo["train_fresh"].min() > 0.1              # fresh batches: far from the identity
    assert demo["eval_batch_params"].min() > 0.05       # eval mode with batch A's gamma, beta
    med = np.median(demo["train_fresh"], axis=1)
    assert med[0] > 0.45 and med[0] > med[1] > med[2]   # shrinks with m, never 0


def test_identity_demo_eval_mode_is_apply_batch_norm(x64):
    # the demo's running averages and eval formula are the package's (momentum on the old value)
    rng = np.random.default_rng(0)
    batches = [5 * rng.standard_normal((8, 3)) + 12 for _ in range(5)]
    params, state = bnh.batchnorm.init_batch_norm(3)
    for bt in batches:
        _, state = bnh.batchnorm.apply_batch_norm(params, state, bt, train=True, momentum=0.9)
    mean, var = np.zeros(3), np.ones(3)
    for bt in batches:
        mean, var = 0.9 * mean + 0.1 * bt.mean(0), 0.9 * var + 0.1 * bt.var(0, ddof=1)
    np.testing.assert_allclose(state["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(state["var"], var, rtol=1e-12)
    x = 5 * rng.standard_normal((50, 3)) + 12
    run = {"gamma": np.sqrt(var + 1e-5), "beta": mean}
    y, _ = bnh.batchnorm.apply_batch_norm(run, state, x, train=False)
    assert rel_error(y, x) < 1e-13


def test_cs231n_bands_quoted_right():
    assert gc.cs231n_band(0.5) == "the gradient is probably wrong"
    assert gc.cs231n_band(2e-2) == "the gradient is probably wrong"
    assert gc.cs231n_band(1e-3) == "should make you feel uncomfortable"
    assert gc.cs231n_band(1e-5) == "too high unless the objective has kinks"
    assert gc.cs231n_band(1e-7) == gc.cs231n_band(1e-12) == "you should be happy"
    assert gc.band(1e-7) == "PASS" and gc.band(1e-4) == "CLOSE" and gc.band(2e-4) == "FAIL"


def test_float32_cannot_reach_a_1e7_threshold():
    assert gc.FLOAT32_EPS == pytest.approx(1.19e-7, rel=1e-2) and gc.FLOAT32_EPS > 1e-7
    for seed in range(3):
        x, g, b, dy = case(seed=seed)
        el = gc.gradient_errors(x, g, b, dy)
        vec = gc.gradient_errors(x, g, b, dy, measure="vector")
        # even the exact closed form, computed in float32, misses 1e-7 element-wise
        assert el["closed form in float32"] > 1e-7
        assert vec["closed form in float32"] > 1e-8
        assert el["finite differences, float32"] > 1e-3 and vec["finite differences, float32"] > 1e-5
        # the whole-vector error is below the element-wise maximum
        for route in el:
            assert vec[route] <= el[route]
        assert el["finite differences, float64"] < 1e-7


def test_fd_curves_both_measures_three_seeds():
    hs = np.logspace(-10, 0, 11)
    for seed in range(3):
        x, g, b, dy = case(seed=seed)
        for measure in ("elementwise", "vector"):
            assert gc.fd_error_curve(x, g, b, dy, hs, dtype=np.float32, measure=measure).min() > 1e-7
            assert gc.fd_error_curve(x, g, b, dy, hs, dtype=np.float64, measure=measure).min() < 1e-7
    with pytest.raises(ValueError, match="`measure`"):
        gc.gradient_errors(*case(), measure="max")


def test_vector_rel_error():
    assert gc.vector_rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert gc.vector_rel_error([0.0], [0.0]) == 0.0
    assert gc.vector_rel_error([1.0, 1e-6], [1.0, -1e-6]) < 1e-5     # a tiny entry does not rule it
    assert rel_error([1.0, 1e-6], [1.0, -1e-6]) > 0.5                 # it rules the element-wise max
    assert gc.vector_rel_error([1.0], [np.nan]) == np.inf
    with pytest.raises(ValueError, match="shapes differ"):
        gc.vector_rel_error([1.0], [1.0, 2.0])


def test_bn_output_std_below_one_is_eps_not_rounding():
    digits = bnh.data.load_dataset("mnist5k")
    images = jnp.asarray(digits.x_test[:500])
    k_w, k_b = jax.random.split(jax.random.PRNGKey(0))
    z = images @ (0.1 * jax.random.normal(k_w, (784, 100))) + jax.random.normal(k_b, (100,))
    dev = gc.eps_std_deviation(z, eps=1e-5)
    assert np.abs(dev["measured"]).max() > 1e-5                       # what the notebook prints
    assert np.abs(dev["measured"] - dev["predicted"]).max() < 1e-6    # eps explains it
    assert np.abs(dev["rounding"]).max() < 1e-6                       # rounding alone is smaller
    assert np.abs(dev["measured"]).max() > 30 * np.abs(dev["rounding"]).max()


def _notebook_text():
    import pathlib

    import nbformat

    path = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "04_bn_math.ipynb"
    nb = nbformat.read(path, as_version=4)
    return nb, "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_notebook_cites_and_quotes_right():
    nb, text = _notebook_text()
    assert nb.cells[-1].cell_type == "markdown" and nb.cells[-1].source.startswith("## References")
    refs = nb.cells[-1].source
    for name in ("Arora", "Hoffer", "van Laarhoven", "Ioffe", "CS231n", "Dive into Deep Learning",
                 "23d7a5ae"):
        assert name in refs, name
    for quote in ('"probably\nwrong"', "should make you feel uncomfortable", '"you should be happy"',
                  "identity transform", "machine epsilon"):
        assert quote in text, quote
    assert "can\nalways fall back to the identity" not in text
    assert "One popular textbook" not in text
