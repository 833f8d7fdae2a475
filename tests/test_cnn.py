"""CNN model: shapes, PyTorch reference (eval and train mode), every norm kind, residual identity at
init, scanned runs equal unrolled layers, training through fit / fit_many; MLP's `norm` kinds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.cnn import CNN
from bn_helpers.norms import KINDS

X = jax.random.normal(jax.random.PRNGKey(1), (6, 12, 12, 3))


def _norm_kw(kind):
    return {"norm": kind, "groups": 4} if kind == "group" else {"norm": kind}


def test_plain_shapes_and_bias_dropped_before_norm():
    net = CNN(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=(1, 2), norm="batch")
    assert net.needs_batch and net.input_shape == (12, 12, 3)
    params, state = net.init_params(jax.random.PRNGKey(0))
    assert [p["W"].shape for p in params] == [(3, 3, 3, 8), (3, 3, 8, 16), (3, 3, 16, 16), (16, 10)]
    assert "b" not in params[0] and "gamma" in params[0] and "b" in params[-1]
    assert state[0]["var"].shape == (8,) and state[-1] == {}
    logits, new_state, hidden = net.apply(params, state, X, train=True, return_hidden=True)
    assert logits.shape == (6, 10) and len(hidden) == 3
    assert [h["post"].shape for h in hidden] == [(6, 12, 12, 8), (6, 6, 6, 16), (6, 6, 6, 16)]
    p_after, _ = CNN(input_shape=(12, 12, 3), norm="layer", placement="after").init_params(
        jax.random.PRNGKey(0))
    assert "b" in p_after[0] and not CNN(norm="layer").needs_batch
    assert hash(net) == hash(CNN(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=(1, 2),
                                 norm="batch"))


def test_residual_shapes_projection_and_hidden():
    net = CNN(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=2, residual=True,
              norm="batch", skip_init=True)
    params, state = net.init_params(jax.random.PRNGKey(0))
    assert len(params) == 1 + 4 + 1  # stem, 4 blocks, dense
    assert "proj" in params[3] and "proj" not in params[2] and params[3]["proj"]["W"].shape == (1, 1, 8, 16)
    assert params[1]["alpha"].shape == () and set(state[3]) == {"conv1", "conv2", "proj"}
    logits, _, hidden = net.apply(params, state, X, train=True, return_hidden=True)
    assert logits.shape == (6, 10) and len(hidden) == 1 + 2 * 4
    second = hidden[2]
    assert set(second) == {"pre", "post", "branch", "skip"}
    np.testing.assert_array_equal(second["post"], second["skip"] + second["branch"])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="norm"):
        CNN(norm="weight")
    with pytest.raises(ValueError, match="groups"):
        CNN(norm="group")
    with pytest.raises(ValueError, match="residual"):
        CNN(skip_init=True)
    with pytest.raises(ValueError, match="zero_init_last_gamma"):
        CNN(residual=True, zero_init_last_gamma=True)
    with pytest.raises(ValueError, match="convs_per_stage"):
        CNN(channels=(8, 16), convs_per_stage=(1, 2, 3))
    net = CNN()
    p, s = net.init_params(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="NHWC"):
        net.apply(p, s, jnp.zeros((2, 784)), train=False)


def _torch_net(torch, net, params, state, pool):
    """The same network in torch.nn (NCHW), weights copied from the pytree."""
    nn = torch.nn
    t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731
    layers, c_in = [], net.input_shape[2]
    for i, (p, s) in enumerate(zip(params[:-1], state[:-1])):
        if i > 0 and net.entries()[i][0] != net.entries()[i - 1][0]:
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        conv = nn.Conv2d(c_in, p["W"].shape[-1], 3, padding=1, bias="b" in p)
        conv.weight.data = t(p["W"]).permute(3, 2, 0, 1).contiguous()
        if "b" in p:
            conv.bias.data = t(p["b"])
        bn = nn.BatchNorm2d(p["W"].shape[-1], eps=net.eps, momentum=1 - net.momentum)
        bn.weight.data, bn.bias.data = t(p["gamma"]), t(p["beta"])
        bn.running_mean.data, bn.running_var.data = t(s["mean"]), t(s["var"])
        layers += [conv, bn, nn.ReLU()] if net.placement == "before" else [conv, nn.ReLU(), bn]
        c_in = p["W"].shape[-1]
    dense = nn.Linear(c_in, net.num_classes)
    dense.weight.data, dense.bias.data = t(params[-1]["W"]).T.contiguous(), t(params[-1]["b"])
    body = nn.Sequential(*layers)
    return body, dense, [m for m in layers if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("pool, placement", [("max", "before"), ("avg", "after")])
def test_matches_pytorch_eval_and_train(torch, pool, placement):
    net = CNN(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=(1, 2), norm="batch",
              pool=pool, placement=placement, momentum=0.8)
    params, state = net.init_params(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(5), 4 * len(params))
    for i, (p, s) in enumerate(zip(params[:-1], state[:-1])):  # non-trivial affine and statistics
        c = p["gamma"].shape[0]
        p["gamma"] = 1 + 0.3 * jax.random.normal(keys[4 * i], (c,))
        p["beta"] = 0.2 * jax.random.normal(keys[4 * i + 1], (c,))
        s["mean"] = 0.1 * jax.random.normal(keys[4 * i + 2], (c,))
        s["var"] = jnp.exp(0.3 * jax.random.normal(keys[4 * i + 3], (c,)))
    body, dense, bns = _torch_net(torch, net, params, state, pool)
    x_t = torch.tensor(np.asarray(X)).permute(0, 3, 1, 2)
    for train in (False, True):
        body.train(train)
        with torch.no_grad():
            ref = dense(body(x_t).mean(dim=(2, 3))).numpy()
        got, new_state = net.apply(params, state, X, train=train)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    for s, bn in zip(new_state, bns):  # state after one training step (torch's momentum = 1 - ours)
        np.testing.assert_allclose(s["mean"], bn.running_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(s["var"], bn.running_var.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("residual", [False, True])
def test_every_norm_kind_runs(kind, residual):
    net = CNN(input_shape=(12, 12, 3), channels=(8, 16), residual=residual, **_norm_kw(kind))
    params, state = net.init_params(jax.random.PRNGKey(0))
    for train in (True, False):
        logits, new_state = net.apply(params, state, X, train=train)
        assert logits.shape == (6, 10) and bool(jnp.all(jnp.isfinite(logits)))
    stateful = kind in ("batch", "renorm")
    assert net.needs_batch == stateful and bool(new_state[0]) == stateful
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, state, X, train=True)[0] ** 2))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_bn_output_has_per_channel_zero_mean_unit_variance():
    net = CNN(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=2, norm="batch")
    params, state = net.init_params(jax.random.PRNGKey(0), scale=3.0)
    _, _, hidden = net.apply(params, state, X, train=True, return_hidden=True)
    for h in hidden:  # BN before ReLU: "pre" is the normalized conv output (gamma=1, beta=0)
        np.testing.assert_allclose(h["pre"].mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(h["pre"].var(axis=(0, 1, 2)), 1.0, atol=1e-3)


@pytest.mark.parametrize("flag", [{"zero_init_last_gamma": True}, {"skip_init": True}])
@pytest.mark.parametrize("placement", ["before", "after"])
def test_residual_blocks_are_the_identity_at_init(flag, placement):
    net = CNN(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=(2, 9), residual=True,
              norm="batch", placement=placement, activation="tanh", **flag)
    params, state = net.init_params(jax.random.PRNGKey(0))
    _, _, hidden = net.apply(params, state, X, train=True, return_hidden=True)
    blocks = hidden[2::2]
    assert len(blocks) == 11 and net.entries()[-1][3] == 8  # the last 8 blocks are one scanned entry
    for block in blocks:
        assert float(jnp.max(jnp.abs(block["branch"]))) == 0.0
        np.testing.assert_array_equal(block["post"], block["skip"])
    np.testing.assert_array_equal(blocks[0]["skip"], hidden[0]["post"])  # the stem's output
    for prev, block in zip(blocks[2:], blocks[3:]):  # equal channels: skip is the input itself
        np.testing.assert_array_equal(block["skip"], prev["post"])
    plain = CNN(input_shape=(12, 12, 3), channels=(8,), convs_per_stage=2, residual=True, norm="batch")
    p, s = plain.init_params(jax.random.PRNGKey(0))
    assert float(jnp.max(jnp.abs(plain.apply(p, s, X, train=True, return_hidden=True)[2][2]["branch"]))) > 0.1


@pytest.mark.parametrize("blocks", [(2, 2), (2, 9)])
def test_fixup_init_follows_the_paper_and_every_block_is_the_identity(blocks):
    """Zhang et al. 2019: last conv of each branch and the dense layer 0, first conv x L^(-1/2)
    against the same draw without Fixup, scalar biases 0 and multiplier 1, no per-channel bias."""
    kw = dict(input_shape=(12, 12, 3), channels=(8, 16), convs_per_stage=blocks, residual=True)
    net, plain = CNN(**kw, fixup=True), CNN(**kw)
    params, state = net.init_params(jax.random.PRNGKey(0))
    ref, _ = plain.init_params(jax.random.PRNGKey(0))
    L = sum(blocks)
    for p, r in zip(params[1:-1], ref[1:-1]):
        np.testing.assert_allclose(p["conv1"]["W"], r["conv1"]["W"] * L ** -0.5, rtol=1e-6)
        assert float(jnp.max(jnp.abs(p["conv2"]["W"]))) == 0.0 and "b" not in p["conv1"]
        assert {k: v.tolist() for k, v in p["fixup"].items() if v.ndim == 0} in (
            {"bias1a": 0.0, "bias1b": 0.0, "bias2a": 0.0, "bias2b": 0.0, "scale": 1.0}, {})
    assert float(jnp.max(jnp.abs(params[-1]["W"]))) == 0.0 and params[-1]["bias_in"].shape == ()
    logits, _, hidden = net.apply(params, state, X, train=True, return_hidden=True)
    assert float(jnp.max(jnp.abs(logits))) == 0.0
    for block in hidden[2::2]:
        np.testing.assert_array_equal(block["post"], block["skip"])
    # The same network without Fixup does not start as the identity
    branch = plain.apply(ref, state, X, train=True, return_hidden=True)[2][2]["branch"]
    assert float(jnp.max(jnp.abs(branch))) > 0.1


def test_fixup_trains_and_refuses_a_norm(fashion):
    net = CNN(input_shape=(14, 14, 1), channels=(8,), convs_per_stage=3, residual=True, fixup=True)
    run = bnh.fit_many(net, fashion, key=jax.random.PRNGKey(0), lr=0.1, sgd_momentum=0.9,
                       seeds=[0, 1, 2], num_steps=60, eval_every=30)
    # measured: mean loss 2.30 -> 2.06-2.16 over the first/last 10 steps, test accuracy 0.27-0.29
    assert run.loss.shape == (3, 60) and np.all(np.isfinite(run.loss))
    assert np.all(run.loss[:, -10:].mean(1) < 0.97 * run.loss[:, :10].mean(1))
    assert np.all(np.asarray(run.test_acc)[:, -1] > 0.2)
    assert np.all(np.asarray(run.params[1]["fixup"]["scale"]) != 1.0)  # the multipliers learn
    for bad in ({"norm": "batch"}, {"skip_init": True}):
        with pytest.raises(ValueError, match="fixup"):
            CNN(residual=True, fixup=True, **bad)
    with pytest.raises(ValueError, match="fixup"):
        CNN(fixup=True)


def _stacked(net_scan, params):
    """Unrolled per-layer params -> the scanned network's entries (runs stacked)."""
    out, i = [], 0
    for *_, n in net_scan.entries():
        out.append(params[i] if n == 1 else jax.tree.map(lambda *a: jnp.stack(a), *params[i:i + n]))
        i += n
    return out + params[i:]


@pytest.mark.parametrize("residual", [False, True])
def test_scanned_run_equals_unrolled_layers(residual):
    kw = dict(input_shape=(8, 8, 3), channels=(8,), convs_per_stage=5, residual=residual, norm="batch")
    net_u, net_s = CNN(**kw, scan=False), CNN(**kw, scan=True)
    assert [e[3] for e in net_s.entries()] == ([1, 4] if not residual else [1, 5])
    params, state = net_u.init_params(jax.random.PRNGKey(0))
    x = X[:, :8, :8]
    p_s, s_s = _stacked(net_s, params), _stacked(net_s, state)
    out_u, st_u, hid_u = net_u.apply(params, state, x, train=True, return_hidden=True)
    out_s, st_s, hid_s = net_s.apply(p_s, s_s, x, train=True, return_hidden=True)
    np.testing.assert_allclose(out_s, out_u, rtol=1e-5, atol=1e-6)
    assert len(hid_s) == len(hid_u)
    np.testing.assert_allclose(hid_s[-1]["post"], hid_u[-1]["post"], rtol=1e-4, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), st_s,
                 _stacked(net_s, st_u))

    def loss(net, p, s):
        return jnp.sum(net.apply(p, s, x, train=True)[0] ** 2)

    g_u = jax.grad(lambda p: loss(net_u, p, state))(params)
    g_s = jax.grad(lambda p: loss(net_s, p, s_s))(p_s)
    # float32 sums in a different order: tolerance relative to each leaf's largest entry
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * np.abs(b).max()),
                 g_s, _stacked(net_s, g_u))


def test_init_scale_may_be_traced():
    net = CNN(input_shape=(8, 8, 1), channels=(4,), convs_per_stage=9)  # one scanned run
    stds = jax.vmap(lambda s: jnp.std(net.init_params(jax.random.PRNGKey(0), s)[0][1]["W"]))(
        jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(stds[1], 2 * stds[0], rtol=1e-5)
    np.testing.assert_allclose(stds[0], (2 / 36) ** 0.5, rtol=0.05)  # He: sqrt(2 / (3 * 3 * 4))


@pytest.fixture(scope="module")
def fashion():
    ds = bnh.data.load_dataset("fashion10k", flatten=False)
    assert ds.x_train.shape[1:] == (28, 28, 1)
    # 14x14 (2x2 means) keeps the test fast; the model states its input shape
    small = lambda x: x.reshape(len(x), 14, 2, 14, 2, 1).mean(axis=(2, 4))  # noqa: E731
    return small(ds.x_train[:600]), ds.y_train[:600], small(ds.x_test[:200]), ds.y_test[:200]


SMALL = CNN(input_shape=(14, 14, 1), channels=(8, 16), norm="batch")


def test_fit_lowers_the_loss_and_fit_many_equals_separate_fits(fashion):
    run = bnh.fit(SMALL, fashion, key=jax.random.PRNGKey(0), lr=0.5, num_steps=100, eval_every=50)
    # measured: mean loss 2.17 -> 1.11 over the first/last 10 steps, test accuracy 0.10 -> 0.59
    assert float(run.loss[-10:].mean()) < 0.7 * float(run.loss[:10].mean())
    assert float(run.test_acc[-1]) > 0.45 and float(run.test_acc[0]) < 0.2
    many = bnh.fit_many(SMALL, fashion, key=jax.random.PRNGKey(0), lr=0.1, seeds=[0, 1, 2],
                        num_steps=40, eval_every=20)
    assert many.loss.shape == (3, 40)
    for i, seed in enumerate([0, 1, 2]):
        start = SMALL.init_params(jax.random.PRNGKey(seed))
        one = bnh.fit(SMALL, fashion, key=jax.random.PRNGKey(0), lr=0.1, num_steps=40, eval_every=20,
                      start=start)
        np.testing.assert_allclose(many.loss[i], one.loss, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(many.test_acc[i], one.test_acc, atol=0.011)


# --- MLP with other normalization kinds ------------------------------------------------------------


def test_mlp_norm_kinds():
    x = jax.random.normal(jax.random.PRNGKey(2), (16, 20))
    base = bnh.MLP((20, 8, 8, 3), bn="before")
    p, s = base.init_params(jax.random.PRNGKey(0))
    same = bnh.MLP((20, 8, 8, 3), bn="before", norm="batch")
    np.testing.assert_array_equal(base.apply(p, s, x, train=True)[0], same.apply(p, s, x, train=True)[0])
    for kind in ("layer", "group", "renorm"):
        net = bnh.MLP((20, 8, 8, 3), bn="before", norm=kind, groups=2 if kind == "group" else None)
        p, s = net.init_params(jax.random.PRNGKey(0))
        _, new_s, hidden = net.apply(p, s, x, train=True, return_hidden=True)
        assert net.needs_batch == (kind == "renorm") and bool(new_s[0]) == (kind == "renorm")
        if kind == "layer":  # per example over the features
            np.testing.assert_allclose(hidden[0]["pre"].mean(axis=1), 0.0, atol=1e-5)
            np.testing.assert_allclose(hidden[0]["pre"].var(axis=1), 1.0, atol=1e-3)
    with pytest.raises(ValueError, match="instance"):
        bnh.MLP((20, 8, 3), bn="before", norm="instance")
    with pytest.raises(ValueError, match="groups"):
        bnh.MLP((20, 8, 3), bn="before", norm="group", groups=3)
