"""bn_helpers.rnn.RNN: forward against a float64 NumPy reference and PyTorch, gradients against
finite differences, per-time-step batch statistics, longer eval sequences, and training by the
engine (bnh.fit / bnh.fit_many)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.rnn import RNN

EPS = 1e-5


def _np_params(params):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), params)


def np_rnn(net, params, state, x, train):
    """Float64 NumPy forward of the RNN: (logits, new cell state)."""
    cell, out = _np_params(params)
    stats = {k: np.array(v, np.float64) for k, v in state[0].items()}
    x = np.asarray(x, np.float64)
    n, steps, _ = x.shape
    t_max = net.input_shape[0]
    h = np.zeros((n, net.hidden))
    new = {k: v.copy() for k, v in stats.items()}
    for t in range(steps):
        a = h @ cell["recurrent"]["W"] + x[:, t] @ cell["input"]["W"]
        if net.norm is None:
            z = a + cell["b"]
        elif net.norm == "layer":
            mu = a.mean(1, keepdims=True)
            var = a.var(1, keepdims=True)
            z = (a - mu) / np.sqrt(var + EPS) * cell["gamma"] + cell["beta"]
        else:
            s = min(t, t_max - 1)
            if train:
                mu, var = a.mean(0), a.var(0)
                new["mean"][t] = net.momentum * stats["mean"][t] + (1 - net.momentum) * mu
                new["var"][t] = net.momentum * stats["var"][t] + (1 - net.momentum) * var * n / (n - 1)
            else:
                mu, var = stats["mean"][s], stats["var"][s]
            z = (a - mu) / np.sqrt(var + EPS) * cell["gamma"] + cell["beta"]
        h = np.tanh(z)
    return h @ out["W"] + out["b"], new


def _random_net(norm, key=0, steps=5, d=3, hidden=6):
    net = RNN(input_shape=(steps, d), hidden=hidden, num_classes=4, norm=norm, momentum=0.8)
    params, state = net.init_params(jax.random.PRNGKey(key))
    k = jax.random.split(jax.random.PRNGKey(key + 100), 4)
    # Non-trivial gamma, beta and running statistics, so no term can hide
    if norm is not None:
        params[0]["gamma"] = 1.0 + 0.3 * jax.random.normal(k[0], (hidden,))
        params[0]["beta"] = 0.2 * jax.random.normal(k[1], (hidden,))
    else:
        params[0]["b"] = 0.2 * jax.random.normal(k[1], (hidden,))
    if norm == "batch":
        state[0] = {"mean": 0.3 * jax.random.normal(k[2], (steps, hidden)),
                    "var": jnp.exp(0.4 * jax.random.normal(k[3], (steps, hidden)))}
    return net, params, state


def _x(n=7, steps=5, d=3, seed=1):
    return 1.5 * np.random.default_rng(seed).normal(size=(n, steps, d)) + 0.4


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
@pytest.mark.parametrize("train", [True, False])
def test_forward_matches_float64_numpy(norm, train):
    with bnh.enable_x64(True):
        net, params, state = _random_net(norm)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        state = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        x = _x()
        logits, new_state = net.apply(params, state, jnp.asarray(x), train=train)
        ref, ref_state = np_rnn(net, params, state, x, train)
        np.testing.assert_allclose(np.asarray(logits), ref, rtol=1e-10, atol=1e-12)
        for k, v in ref_state.items():
            np.testing.assert_allclose(np.asarray(new_state[0][k]), v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
def test_forward_float32_close_to_float64(norm):
    net, params, state = _random_net(norm)
    x = _x()
    logits, _ = net.apply(params, state, jnp.asarray(x, jnp.float32), train=True)
    ref, _ = np_rnn(net, params, state, x, True)
    np.testing.assert_allclose(np.asarray(logits), ref, rtol=2e-4, atol=2e-5)


def _torch_run(net, params, state, x, train):
    torch = pytest.importorskip("torch")
    cell, out = _np_params(params)
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    xt = t(x)
    n, steps, _ = x.shape
    h = torch.zeros(n, net.hidden, dtype=torch.float64)
    if net.norm is None:
        rnn = torch.nn.RNNCell(x.shape[2], net.hidden, nonlinearity="tanh").double()
        with torch.no_grad():
            rnn.weight_ih.copy_(t(cell["input"]["W"].T))
            rnn.weight_hh.copy_(t(cell["recurrent"]["W"].T))
            rnn.bias_ih.copy_(t(cell["b"]))
            rnn.bias_hh.zero_()
        for s in range(steps):
            h = rnn(xt[:, s], h)
        running = {}
    else:
        running = {k: [t(v[s]).clone() for s in range(v.shape[0])] for k, v in
                   _np_params(state[0]).items()}
        for s in range(steps):
            a = h @ t(cell["recurrent"]["W"]) + xt[:, s] @ t(cell["input"]["W"])
            if net.norm == "layer":
                z = torch.nn.functional.layer_norm(a, (net.hidden,), t(cell["gamma"]), t(cell["beta"]),
                                                   eps=EPS)
            else:
                z = torch.nn.functional.batch_norm(a, running["mean"][s], running["var"][s],
                                                   t(cell["gamma"]), t(cell["beta"]), training=train,
                                                   momentum=1 - net.momentum, eps=EPS)
            h = torch.tanh(z)
    logits = h @ t(out["W"]) + t(out["b"])
    return logits.detach().numpy(), {k: np.stack([v.numpy() for v in vs]) for k, vs in running.items()}


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
@pytest.mark.parametrize("train", [True, False])
def test_forward_matches_torch(norm, train):
    """norm=None is torch.nn.RNNCell; layer and per-step batch norm a torch loop over the steps."""
    with bnh.enable_x64(True):
        net, params, state = _random_net(norm)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        state = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        x = _x()
        logits, new_state = net.apply(params, state, jnp.asarray(x), train=train)
        ref, running = _torch_run(net, params, state, x, train)
        np.testing.assert_allclose(np.asarray(logits), ref, rtol=1e-10, atol=1e-12)
        for k, v in running.items():  # torch's running var is unbiased, as ours by default
            np.testing.assert_allclose(np.asarray(new_state[0][k]), v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", [None, "layer", "batch"])
def test_gradients_match_finite_differences(norm):
    from jax.test_util import check_grads

    with bnh.enable_x64(True):
        net, params, state = _random_net(norm, steps=4)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        state = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        x = jnp.asarray(_x(n=6, steps=4))
        y = jnp.asarray([0, 1, 2, 3, 1, 2])

        def loss(p, xx):
            logits, _ = net.apply(p, state, xx, train=True)
            return bnh.train.cross_entropy(logits, y)

        check_grads(loss, (params, x), order=1, modes=("rev",), atol=1e-6, rtol=1e-6, eps=1e-6)


def test_batch_norm_keeps_statistics_per_step():
    net, params, state = _random_net("batch")
    x = _x()
    _, new_state = net.apply(params, state, jnp.asarray(x), train=True)
    assert new_state[0]["mean"].shape == (5, 6)
    # Every step's row moved, and differently (each step has its own statistics)
    moved = np.abs(np.asarray(new_state[0]["mean"]) - np.asarray(state[0]["mean"])).sum(1)
    assert np.all(moved > 1e-4)
    # A shorter training sequence updates only its own steps
    _, short = net.apply(params, state, jnp.asarray(x[:, :3]), train=True)
    np.testing.assert_array_equal(np.asarray(short[0]["mean"][3:]), np.asarray(state[0]["mean"][3:]))


def test_longer_eval_sequences_reuse_last_step_statistics():
    with bnh.enable_x64(True):
        net, params, state = _random_net("batch")
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        state = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        x = _x(steps=9)
        logits, new_state = net.apply(params, state, jnp.asarray(x), train=False)
        ref, _ = np_rnn(net, params, state, x, False)
        np.testing.assert_allclose(np.asarray(logits), ref, rtol=1e-10, atol=1e-12)
        assert new_state[0]["mean"].shape == (5, 6)
        with pytest.raises(ValueError, match="at most 5 steps"):
            net.apply(params, state, jnp.asarray(x), train=True)


def test_layer_norm_same_in_train_and_eval_and_any_length():
    net, params, state = _random_net("layer")
    x = jnp.asarray(_x(steps=8), jnp.float32)
    a, _ = net.apply(params, state, x, train=True)
    b, _ = net.apply(params, state, x, train=False)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    # One example alone gives the same logits as inside a batch
    c, _ = net.apply(params, state, x[:1], train=True)
    np.testing.assert_allclose(np.asarray(c[0]), np.asarray(a[0]), atol=1e-5)


def test_return_hidden_shapes():
    net, params, state = _random_net("layer")
    logits, _, hidden = net.apply(params, state, jnp.asarray(_x()), train=False, return_hidden=True)
    assert logits.shape == (7, 4)
    assert len(hidden) == 1 and hidden[0]["pre"].shape == (7, 5, 6)
    np.testing.assert_allclose(np.asarray(hidden[0]["post"]), np.tanh(np.asarray(hidden[0]["pre"])),
                               atol=1e-6)


def test_protocol_and_errors():
    assert RNN(norm="batch").needs_batch and not RNN(norm="layer").needs_batch
    assert not RNN().needs_batch
    hash(RNN(norm="layer"))
    for bad in ({"norm": "group"}, {"input_shape": (28,)}, {"hidden": 0}, {"momentum": 1.5},
                {"init": "nope"}):
        with pytest.raises(ValueError):
            RNN(**bad)
    net, params, state = _random_net(None)
    with pytest.raises(ValueError, match="shape"):
        net.apply(params, state, jnp.zeros((2, 5, 4)), train=False)
    with pytest.raises(TypeError):
        net.apply(params, state, jnp.zeros((2, 5, 3)), train=1)
    unrolled = RNN(input_shape=(5, 3), hidden=6, num_classes=4, unroll=5)
    x = jnp.asarray(_x(), jnp.float32)
    np.testing.assert_allclose(np.asarray(unrolled.apply(params, state, x, train=False)[0]),
                               np.asarray(net.apply(params, state, x, train=False)[0]), atol=1e-5)


def test_engine_trains_the_rnn():
    """bnh.fit_many drives the RNN like any model: the loss falls on a learnable toy task."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 6, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int32)  # the sign of a running sum
    data = (x[:384], y[:384], x[384:], y[384:])
    for norm in (None, "layer", "batch"):
        net = RNN(input_shape=(6, 2), hidden=16, num_classes=2, norm=norm)
        run = bnh.fit_many(net, data, key=jax.random.PRNGKey(0), lr=0.1, sgd_momentum=0.9,
                           num_steps=200, batch_size=32, seeds=[0, 1, 2], eval_every=200)
        acc = np.asarray(run.test_acc)[:, -1]
        assert np.median(acc) > 0.75, (norm, acc)  # chance: 0.5
