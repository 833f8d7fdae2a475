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


def test_momentum_runs_on_across_evaluations(small_data):
    # How often the run is evaluated must not change the run (the velocity is carried over)
    kw = dict(key=jax.random.PRNGKey(0), lr=0.1, sgd_momentum=0.9, num_steps=100)
    a = bnh.fit(NET, small_data, eval_every=100, **kw)
    b = bnh.fit(NET, small_data, eval_every=10, **kw)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-5)
    np.testing.assert_allclose(a.test_acc[-1], b.test_acc[-1])


def test_sgd_continues_a_run_from_its_velocity():
    def loss_fn(w, state, batch, key):
        return jnp.sum((w - batch) ** 2), state

    batches = jnp.linspace(-1.0, 1.0, 12)[:, None] * jnp.ones((12, 3))
    w0 = jnp.zeros(3)
    whole = bnh.train.sgd(loss_fn, w0, None, lr=0.1, batches=batches, sgd_momentum=0.9)
    w, s, l1, _, v = bnh.train.sgd(loss_fn, w0, None, lr=0.1, batches=batches[:5],
                                   sgd_momentum=0.9, return_velocity=True)
    w, s, l2, _ = bnh.train.sgd(loss_fn, w, s, lr=0.1, batches=batches[5:], sgd_momentum=0.9,
                                velocity=v)
    np.testing.assert_allclose(w, whole[0], rtol=1e-6)
    np.testing.assert_allclose(jnp.concatenate([l1, l2]), whole[2], rtol=1e-6)


def test_reported_accuracies_are_evaluate_on_the_final_weights(small_data):
    r = bnh.fit(NET, small_data, key=jax.random.PRNGKey(3), lr=0.5, num_steps=40, eval_every=20,
                train_eval=300)
    x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in small_data)
    # fit evaluates in chunks of 250 here (the largest of its sizes <= 300 and <= 400 examples)
    test = bnh.train.evaluate(NET, r.params, r.state, x_test, y_test, batch=250)
    train = bnh.train.evaluate(NET, r.params, r.state, x_train[:300], y_train[:300], batch=250)
    assert float(r.test_acc[-1]) == pytest.approx(float(test), abs=1e-7)
    assert float(r.train_acc[-1]) == pytest.approx(float(train), abs=1e-7)


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
    with pytest.raises(ValueError, match=r"x_train must be \(N, 5\)"):
        bnh.fit(bnh.MLP((5, 2)), small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10)
    with pytest.raises(ValueError, match="one length"):
        bnh.fit_many(NET, small_data, key=jax.random.PRNGKey(0), lr=jnp.ones(2),
                     init_scale=jnp.ones(3), num_steps=10)
    with pytest.raises(ValueError, match="at least one swept argument"):
        bnh.fit_many(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10)
    with pytest.raises(ValueError, match="`batch_idx` must have shape"):
        bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10,
                batch_idx=np.zeros((10, 3), int))
    with pytest.raises(ValueError, match="`batch_idx` holds indices outside"):
        bnh.fit(NET, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10, batch_size=2,
                batch_idx=np.full((10, 2), 5000))
    with pytest.raises(TypeError, match="must be a bn_helpers model"):
        bnh.fit("mlp", small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=10)
    with pytest.raises(TypeError, match="`train` must be True or False"):
        params, state = NET.init_params(jax.random.PRNGKey(0))
        NET.apply(params, state, jnp.ones((4, 784)), train=None)


# --- the hooks every experiment uses (issue 13) ---------------------------------

SMALL = bnh.MLP((784, 16, 10), activation="relu", bn="before")


def _grad_norm(params, state, grads, xb, yb):
    return jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree.leaves(grads)))


def _mean_probe(params, state, x):
    return jnp.mean(x @ params[0]["W"])


def test_record_probe_inputs_and_train_eval(small_data):
    x_probe = small_data[0][:50]
    r = bnh.fit(SMALL, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=40, eval_every=20,
                record=_grad_norm, probe=_mean_probe, probe_inputs=x_probe, train_eval=100)
    assert r.record.shape == (40,) and bool(jnp.all(r.record > 0))
    assert r.probe.shape == (3,)
    np.testing.assert_allclose(r.probe[-1], jnp.mean(x_probe @ r.params[0]["W"]), rtol=1e-5)
    # train accuracy on the first 100 training examples only
    want = bnh.train.evaluate(SMALL, r.params, r.state, small_data[0][:100], small_data[1][:100])
    np.testing.assert_allclose(r.train_acc[-1], want)


def test_explicit_batch_order_start_and_per_layer_lr(small_data):
    idx = np.tile(np.arange(30), (20, 1))  # the same 30 examples every step
    a = bnh.fit(SMALL, small_data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=20, eval_every=20,
                batch_size=30, batch_idx=idx)
    assert float(a.loss[-1]) < float(a.loss[0])
    # continuing from a's weights: the first loss is a's next loss
    b = bnh.fit(SMALL, small_data, key=jax.random.PRNGKey(5), lr=0.1, num_steps=20, eval_every=20,
                batch_size=30, batch_idx=idx, start=(a.params, a.state))
    assert float(b.loss[0]) < float(a.loss[0])
    # lr zero on the first layer freezes it; the output layer still moves
    c = bnh.fit(SMALL, small_data, key=jax.random.PRNGKey(0), lr=[0.0, 0.1], num_steps=20,
                eval_every=20, batch_size=30, batch_idx=idx)
    p0, _ = SMALL.init_params(jax.random.split(jax.random.PRNGKey(0))[0])
    np.testing.assert_allclose(c.params[0]["W"], p0[0]["W"], rtol=1e-6, atol=1e-7)
    assert not np.allclose(c.params[1]["W"], p0[1]["W"], rtol=1e-3)
    # per-layer rates in fit_many: (K, num_layers); row 1 equals the single run c
    many = bnh.fit_many(SMALL, small_data, key=jax.random.PRNGKey(0), lr=jnp.array([[0.1, 0.1],
                        [0.0, 0.1]]), num_steps=20, eval_every=20, batch_size=30, batch_idx=idx)
    np.testing.assert_allclose(many.loss[1], c.loss, rtol=1e-5)
    np.testing.assert_allclose(many.loss[0], a.loss, rtol=1e-5)


def test_weight_decay_shrinks_weights_not_bn_params(small_data):
    kw = dict(key=jax.random.PRNGKey(0), lr=0.1, num_steps=20, eval_every=20)
    many = bnh.fit_many(SMALL, small_data, weight_decay=jnp.array([0.0, 0.5]), **kw)
    norm = [float(jnp.linalg.norm(many.params[0]["W"][i])) for i in range(2)]
    assert norm[1] < 0.95 * norm[0]
    # gamma gets no decay: with a zero learning rate nothing moves at all
    still = bnh.fit(SMALL, small_data, weight_decay=0.5, **{**kw, "lr": 0.0})
    np.testing.assert_array_equal(still.params[0]["gamma"], 1.0)


def test_sgd_descends_a_quadratic_bowl_like_the_formula():
    h = jnp.array([1.0, 10.0])

    def bowl(w, state, batch, key):
        return 0.5 * jnp.sum(h * w ** 2), state

    w, _, losses, path = bnh.train.sgd(bowl, jnp.array([1.0, 1.0]), None, lr=0.05, num_steps=30,
                                       record=lambda w, s, g, b: w)
    # plain gradient descent: w_t = (1 - lr h)^t w_0
    np.testing.assert_allclose(path[7], (1 - 0.05 * h) ** 7, rtol=1e-5)
    np.testing.assert_allclose(w, (1 - 0.05 * h) ** 30, rtol=1e-4)
    assert losses.shape == (30,)
    w_m, _, _, _ = bnh.train.sgd(bowl, jnp.array([1.0, 1.0]), None, lr=0.05, num_steps=30,
                                 sgd_momentum=0.9)
    assert not np.allclose(w_m, w)


def test_noise_follows_santurkar_and_only_in_training():
    a = jnp.ones((20000, 4))
    out = bnh.noise.inject(jax.random.PRNGKey(0), a, 1.0)
    # per unit: shift mean in [-0.5, 0.5] (+- 0.1), scale in [1, 1.25] with spread 0.1
    unit_scale = jnp.std(out, 0)
    assert bool(jnp.all(jnp.abs(jnp.mean(out, 0) - 1.0) <= 0.5 + 0.25 + 0.02))
    assert bool(jnp.all((unit_scale > 0.09) & (unit_scale < 0.13)))  # sqrt(0.1^2 + 0.1^2/3)
    np.testing.assert_array_equal(bnh.noise.inject(jax.random.PRNGKey(0), a, 0.0), a)
    noisy = bnh.MLP((784, 16, 10), bn="before", noise=1.0)
    params, state = noisy.init_params(jax.random.PRNGKey(0))
    x = jnp.ones((4, 784))
    with pytest.raises(ValueError, match="`key` is required"):
        noisy.apply(params, state, x, train=True)
    clean = bnh.MLP((784, 16, 10), bn="before")
    np.testing.assert_array_equal(noisy.apply(params, state, x, train=False)[0],
                                  clean.apply(params, state, x, train=False)[0])
    with pytest.raises(ValueError, match="`noise` must be >= 0"):
        bnh.MLP((3, 2), noise=-1.0)


def test_weight_decay_reaches_stacked_cnn_weights_only():
    """A CNN stores a run of identical layers with a leading layer axis: biases and gammas are
    then 2-D too, and still get no decay."""
    params = {"W": jnp.ones((8, 3, 3)), "gamma": jnp.ones((8, 3)), "b": jnp.ones((8, 3))}

    def zero_loss(p, state, batch, key):
        return 0.0 * jnp.sum(p["W"]), state

    p, _, _, _ = bnh.train.sgd(zero_loss, params, None, lr=0.1, num_steps=1, weight_decay=0.5)
    np.testing.assert_allclose(p["W"], 0.95)
    np.testing.assert_array_equal(p["gamma"], 1.0)
    np.testing.assert_array_equal(p["b"], 1.0)
    w, _, _, _ = bnh.train.sgd(lambda w, s, b, k: (0.0 * jnp.sum(w), s), jnp.ones(3), None,
                               lr=0.1, num_steps=1, weight_decay=0.5)
    np.testing.assert_allclose(w, 0.95)  # an unnamed pytree: every leaf decays
