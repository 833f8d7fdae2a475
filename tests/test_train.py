"""MLP builder and training engine: determinism, vmap == separate runs, learning, BN state, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh


@pytest.fixture(scope="module")
def small_data():
    ds = bnh.data.load_dataset("mnist5k")
    return ds.x_train[:1200], ds.y_train[:1200], ds.x_test[:400], ds.y_test[:400]


NET = bnh.MLP((784, 32, 32, 10), activation="sigmoid", bn="before", init="gaussian", init_std=0.1)


def test_init_shapes_and_bias_dropped_before_bn():
    params, state = NET.init_params(jax.random.PRNGKey(0))
    assert [p["W"].shape for p in params] == [(784, 32), (32, 32), (32, 10)]
    assert "b" not in params[0] and "gamma" in params[0]
    assert "b" in params[-1] and "gamma" not in params[-1]
    assert state[0]["var"].shape == (32,) and state[-1] == {}
    plain = bnh.MLP((784, 32, 10))
    p, s = plain.init_params(jax.random.PRNGKey(0))
    assert "b" in p[0] and s[0] == {}


@pytest.mark.parametrize("init, expected", [("xavier", (2 / (500 + 300)) ** 0.5),
                                            ("he", (2 / 500) ** 0.5), ("gaussian", 0.05)])
def test_init_std(init, expected):
    net = bnh.MLP((500, 300, 10), init=init, init_std=0.05)
    params, _ = net.init_params(jax.random.PRNGKey(1))
    assert abs(float(jnp.std(params[0]["W"])) / expected - 1) < 0.02
    params2, _ = net.init_params(jax.random.PRNGKey(1), scale=3.0)
    np.testing.assert_allclose(params2[0]["W"], 3.0 * params[0]["W"], rtol=1e-6)


def test_apply_train_updates_state_eval_does_not():
    params, state = NET.init_params(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 784))
    _, s_train, hidden = NET.apply(params, state, x, train=True, return_hidden=True)
    assert not np.allclose(s_train[0]["mean"], state[0]["mean"])
    _, s_eval = NET.apply(params, state, x, train=False)
    assert s_eval[0] is state[0]
    # BN before the sigmoid: its input has per-unit batch mean 0 and variance ~1
    np.testing.assert_allclose(hidden[0]["pre"].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(hidden[0]["pre"].var(0), 1.0, atol=1e-3)


def test_batch_indices_cover_each_epoch_once():
    idx = np.asarray(bnh.train.batch_indices(jax.random.PRNGKey(0), 100, 30, 7))
    assert idx.shape == (7, 30)
    for epoch in range(2):
        seen = idx[3 * epoch: 3 * epoch + 3].ravel()
        assert len(set(seen)) == 90  # 3 full batches per epoch, last 10 dropped


def test_fit_learns_and_is_deterministic(small_data):
    r1 = bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.5, num_steps=300, eval_every=100)
    r2 = bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.5, num_steps=300, eval_every=100)
    assert r1.loss.shape == (300,)
    np.testing.assert_array_equal(r1.eval_steps, [0, 100, 200, 300])
    np.testing.assert_array_equal(r1.loss, r2.loss)
    assert float(r1.test_acc[0]) < 0.3
    assert float(r1.test_acc[-1]) > 0.7
    assert float(jnp.mean(r1.loss[-50:])) < 0.5 * float(jnp.mean(r1.loss[:10]))
    r3 = bnh.fit(NET, small_data, key=jax.random.PRNGKey(1), lr=0.5, num_steps=300, eval_every=100)
    assert not np.array_equal(r1.loss, r3.loss)


def test_fit_many_equals_separate_runs(small_data):
    lrs = [0.1, 0.5]
    many = bnh.fit_many(NET, small_data, key=jax.random.PRNGKey(3), lr=jnp.array(lrs),
                        num_steps=200, eval_every=100)
    assert many.loss.shape == (2, 200) and many.test_acc.shape == (2, 3)
    for i, lr in enumerate(lrs):
        one = bnh.fit(NET, small_data, key=jax.random.PRNGKey(3), lr=lr, num_steps=200,
                      eval_every=100)
        np.testing.assert_allclose(many.loss[i], one.loss, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(many.test_acc[i], one.test_acc, atol=0.006)


def test_fit_many_seeds_and_init_scale(small_data):
    r = bnh.fit_many(NET, small_data, key=jax.random.PRNGKey(0), lr=0.3, seeds=[0, 1, 2],
                     num_steps=100, eval_every=100)
    assert r.loss.shape == (3, 100)
    assert not np.allclose(r.loss[0], r.loss[1])
    net = bnh.MLP((784, 32, 10), activation="sigmoid", init="gaussian", init_std=1.0)
    r = bnh.fit_many(net, small_data, key=jax.random.PRNGKey(0), lr=0.3,
                     init_scale=jnp.array([0.01, 1.0]), num_steps=100, eval_every=100)
    one = bnh.fit(net, small_data, key=jax.random.PRNGKey(0), lr=0.3, init_scale=0.01,
                  num_steps=100, eval_every=100)
    np.testing.assert_allclose(r.loss[0], one.loss, rtol=2e-4, atol=2e-5)
    assert not np.allclose(r.loss[0], r.loss[1])


def test_probe_records_at_every_evaluation(small_data):
    x_probe = jnp.asarray(small_data[2][:100])

    def probe(params, state):
        _, _, hidden = NET.apply(params, state, x_probe, train=True, return_hidden=True)
        return jnp.percentile(hidden[-1]["pre"][:, 0], jnp.array([15.0, 50.0, 85.0]))

    r = bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.5, num_steps=200, eval_every=50,
                probe=probe)
    assert r.probe.shape == (5, 3)
    # BN at step 0: the 15/85 percentiles of a standardized unit are near -1 and +1
    np.testing.assert_allclose(r.probe[0], [-1.04, 0.0, 1.04], atol=0.35)


def test_sgd_momentum_changes_the_run(small_data):
    a = bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=100, eval_every=100)
    b = bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, sgd_momentum=0.9,
                num_steps=100, eval_every=100)
    assert not np.allclose(a.loss[1:], b.loss[1:])
    np.testing.assert_allclose(a.loss[0], b.loss[0])


def test_divergence_shows_as_nan_not_an_exception(small_data):
    net = bnh.MLP((784, 32, 10), activation="linear", init="he")
    r = bnh.fit(net, small_data, key=jax.random.PRNGKey(0), lr=50.0, num_steps=50, eval_every=50)
    assert not np.isfinite(float(r.loss[-1]))


def test_errors(small_data):
    with pytest.raises(ValueError, match="`activation` must be one of"):
        bnh.MLP((3, 2), activation="swish")
    with pytest.raises(ValueError, match="`bn` must be one of"):
        bnh.MLP((3, 2), bn="middle")
    with pytest.raises(ValueError, match="`init` must be one of"):
        bnh.MLP((3, 2), init="orthogonal")
    with pytest.raises(ValueError, match="`sizes` needs"):
        bnh.MLP((3,))
    with pytest.raises(ValueError, match="multiple of `eval_every`"):
        bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=150, eval_every=100)
    with pytest.raises(ValueError, match="`batch_size` must be >= 2"):
        bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10, batch_size=1)
    with pytest.raises(ValueError, match="has 784 features but `net` expects 5"):
        bnh.fit(bnh.MLP((5, 2)), small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10)
    with pytest.raises(ValueError, match="one length"):
        bnh.fit_many(NET, small_data, key=jax.random.PRNGKey(0), lr=jnp.ones(2),
                     init_scale=jnp.ones(3), num_steps=10)
    with pytest.raises(ValueError, match="at least one swept argument"):
        bnh.fit_many(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10)
    with pytest.raises(TypeError, match="`train` must be True or False"):
        params, state = NET.init_params(jax.random.PRNGKey(0))
        NET.apply(params, state, jnp.ones((4, 784)), train=None)
