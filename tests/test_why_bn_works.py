"""Notebook 07's claims, each in a reduced but honest configuration (3 seeds, fewer steps), and the
measurement helpers of bn_helpers.why_bn_works on cases with known answers.

Networks and data are those of the notebook (784-100-100-10 ReLU MLP, Glorot init, MNIST-5k,
SGD lr 0.1, batch 128; the 25-layer deep linear network); only step counts shrink.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh

why = bnh.why_bn_works
SEEDS = (0, 1, 2)
K = len(SEEDS)
LR = 0.1


def mlp(bn, noise=0.0):
    return bnh.MLP((784, 100, 100, 10), activation="relu", bn=bn, init="xavier", noise=noise)


@pytest.fixture(scope="module")
def data():
    d = bnh.data.load_dataset("mnist5k")
    return (d.x_train, d.y_train, d.x_test, d.y_test)


# --- helpers with known answers -------------------------------------------------------------


def test_cosine_and_effective_lr():
    a = np.arange(12.0).reshape(3, 4) - 5
    assert float(why.cosine(a, 3 * a)) == pytest.approx(1.0, abs=1e-6)
    assert float(why.cosine(a, -a)) == pytest.approx(-1.0, abs=1e-6)
    assert float(why.cosine(a, np.zeros_like(a))) == 0.0
    assert float(why.effective_lr(0.1, np.full((2, 5), 2.0))) == pytest.approx(0.1 / 40)


def test_drift_is_zero_without_change_and_counts_start_stds():
    mean = np.zeros((2, 3, 4))
    std = np.ones((2, 3, 4))
    assert np.all(why.drift({"mean": mean, "std": std}) == 0)
    mean[:, 2] = 0.5
    std[:, 0] = 0.25
    np.testing.assert_allclose(why.drift({"mean": mean, "std": std})[:, 2], 2.0)


def test_landscape_summary_by_hand():
    rec = {"loss": np.array([[[1.0, 3.0], [2.0, 2.0]]]), "grad_diff": np.array([[[0.1, 0.4], [0.2, 0.2]]]),
           "grad_norm": np.array([[1.0, 2.0]])}
    s = why.landscape_summary(rec, (1.0, 2.0), 0.5, np.array([[2.0, 2.0]]))
    assert s["loss_range"][0] == pytest.approx(1.0)          # ranges 2 and 0, median 1
    beta = [max(0.1 / 0.5, 0.4 / 1.0), max(0.2 / 1.0, 0.2 / 2.0)]
    assert s["beta_p95"][0] == pytest.approx(np.percentile(beta, 95))
    assert why.landscape_summary(rec, (1.0, 2.0), 0.5, np.array([[2.0, 2.0]]), upto=1)["loss_range"][0] == 0.5


def test_max_trained_lr_and_select():
    acc = np.array([[0.9, 0.9, 0.9], [0.9, np.nan, 0.9], [0.1, 0.1, 0.1]])
    assert why.max_trained_lr((0.1, 1.0, 10.0), acc) == 0.1
    assert np.isnan(why.max_trained_lr((0.1, 1.0, 10.0), acc * 0))
    assert why.fmt_band([1.0, 2.0, 3.0]) == "2 (1-3)"


def test_bn_makes_the_loss_scale_invariant():
    key = jax.random.PRNGKey(0)
    x = jax.random.uniform(key, (64, 784))
    y = jnp.arange(64) % 10
    for bn, invariant in (("before", True), (None, False)):
        net = mlp(bn)
        params, state = net.init_params(key)
        losses = why.scaled_loss(net, params, state, x, y, 1, (0.5, 1.0, 10.0))
        spread = np.ptp(losses) / losses[1]
        assert (spread < 1e-4) == invariant, (bn, losses)


# --- the claims, 3 seeds each ------------------------------------------------------------------


SWEEP_LRS = (LR, 1.0, 3.0)
WD = 5e-3


@pytest.fixture(scope="module")
def sweep(data):
    """As in the notebook: every rate x seed of a network in one run, with the drift probe; BN
    also trains K runs at LR with weight decay. Returns {name: (result, lrs, decays)}."""
    x_probe = data[2][:500]
    out = {}
    for name, bn in (("standard", None), ("BN", "before")):
        lr = np.repeat(SWEEP_LRS, K)
        decay = np.zeros(lr.size)
        if bn:
            lr, decay = np.r_[lr, np.full(K, 1.0)], np.r_[decay, np.full(K, WD)]
        out[name] = bnh.fit_many(mlp(bn), data, key=jax.random.PRNGKey(0), lr=lr, weight_decay=decay,
                                 seeds=np.resize(SEEDS, lr.size), num_steps=400, batch_size=128,
                                 eval_every=50, train_eval=1000, probe=why.drift_probe_for(mlp(bn)),
                                 probe_inputs=x_probe)
    return out


def test_noisy_bn_trains_as_well_as_bn(data, sweep):
    noisy = bnh.fit_many(mlp("before", noise=1.0), data, key=jax.random.PRNGKey(0), lr=LR, seeds=SEEDS,
                         num_steps=400, batch_size=128, eval_every=50, train_eval=1000)
    bn, nz = np.asarray(sweep["BN"].train_acc[:K, -1]), np.asarray(noisy.train_acc[:, -1])
    assert abs(np.median(bn) - np.median(nz)) <= 0.03, (bn, nz)
    assert np.min(nz) > 0.9, nz


def test_bn_removes_the_drift_of_layer_inputs(sweep):
    d = {n: why.drift(why.select(r, slice(0, K)).probe)[:, -1] for n, r in sweep.items()}
    assert np.max(d["BN"]) < 0.2 * np.min(d["standard"]), d


def test_bn_trains_at_larger_learning_rates(sweep):
    n = len(SWEEP_LRS)
    top = {name: why.max_trained_lr(SWEEP_LRS, np.asarray(r.test_acc[:n * K, -1]).reshape(n, K))
           for name, r in sweep.items()}
    assert top == {"standard": 1.0, "BN": 3.0}, top           # notebook sweep: 0.01 ... 10


def test_weight_decay_raises_the_effective_rate(sweep):
    """BN network at lr 1: without decay the norm grows a little and stays; decay shrinks it,
    so lr / ||W||^2 ends several times higher (notebook: 7x after 1,000 steps)."""
    norm = np.asarray(sweep["BN"].probe["weight_norm"])[:, :, 1]
    plain, decayed = norm[K:2 * K], norm[-K:]                   # lr 1.0 without / with decay
    assert np.all(plain[:, -1] > plain[:, 0]), plain            # SGD alone makes the norm grow
    growth = {"no decay": plain[:, -1] / plain[:, 4], "decay": decayed[:, -1] / decayed[:, 4]}
    assert np.max(growth["decay"]) < np.min(growth["no decay"]), growth
    eff_ratio = np.median(1 / decayed[:, -1] ** 2) / np.median(1 / plain[:, -1] ** 2)
    assert eff_ratio > 2, eff_ratio


@pytest.fixture(scope="module")
def record_runs(data):
    return {name: bnh.fit_many(mlp(bn), data, key=jax.random.PRNGKey(0), lr=LR, seeds=SEEDS,
                               num_steps=300, batch_size=128, eval_every=300, train_eval=1000,
                               record=why.step_record(mlp(bn), LR, (0.5, 1.0, 2.0, 3.0, 4.0), (1, 2)))
            for name, bn in (("standard", None), ("BN", "before"))}


def test_gradient_ics_of_the_mlp_output_layer_is_smaller_with_bn(record_runs):
    cos = {n: np.median(np.asarray(r.record["ics_cos"])[:, :, 1], 1) for n, r in record_runs.items()}
    assert np.min(cos["BN"]) > np.max(cos["standard"]), cos


def test_bn_smooths_the_loss_along_the_gradient(record_runs):
    s = {n: why.landscape_summary(r.record, (0.5, 1.0, 2.0, 3.0, 4.0), LR, r.loss)
         for n, r in record_runs.items()}
    med = {n: {k: np.median(v) for k, v in d.items()} for n, d in s.items()}
    assert med["BN"]["loss_range"] <= 0.5 * med["standard"]["loss_range"], med
    assert med["BN"]["grad_diff_p95"] <= 0.3 * med["standard"]["grad_diff_p95"], med
    assert med["BN"]["beta_p95"] < med["standard"]["beta_p95"], med


def test_deep_linear_network_gradient_ics():
    """Santurkar et al.'s finding: in the 25-layer linear net, BN makes layer 17's gradient change
    far more when the earlier layers step (only layer 17 is measured here, as one of the two)."""
    x, y = why.deep_linear_data(jax.random.PRNGKey(1))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(SEEDS))
    cos, l2 = {}, {}
    for name, bn in (("standard", None), ("BN", "before")):
        deep = bnh.MLP((10,) * 26, activation="linear", bn=bn, init="xavier")
        losses, rec = why.deep_linear_ics(deep, keys, x, y, 1e-4, num_steps=100, layers=(16,))
        assert np.all(np.isfinite(np.asarray(losses)))
        assert np.all(np.asarray(losses)[:, -1] < np.asarray(losses)[:, 0]), name
        cos[name] = np.median(np.asarray(rec["ics_cos"])[:, :, 0], 1)
        l2[name] = np.median(np.asarray(rec["ics_l2"])[:, :, 0], 1)
    assert np.min(cos["standard"]) > 0.9, cos
    assert np.max(cos["BN"]) < np.min(cos["standard"]), cos
    assert np.min(l2["BN"]) > np.max(l2["standard"]), l2
    assert np.median(l2["BN"]) > 10 * np.median(l2["standard"]), l2


# --- ghost batch norm (bn_helpers.mlp.MLP ghost_batch) ------------------------------------------


def test_ghost_batch_default_and_whole_batch_change_nothing():
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(key, (32, 784))
    plain = mlp("before")
    params, state = plain.init_params(key)
    ref, ref_state = plain.apply(params, state, x, train=True)
    for ghost in (None, 32, 64):
        net = bnh.MLP((784, 100, 100, 10), activation="relu", bn="before", init="xavier", ghost_batch=ghost)
        out, new_state = net.apply(params, state, x, train=True)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
        for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(ref_state)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(net.apply(params, state, x, train=False)[0]),
                                      np.asarray(plain.apply(params, state, x, train=False)[0]))


def test_ghost_batch_normalizes_each_sub_batch_on_its_own():
    """Training mode: the output on the batch is the plain network's output on each sub-batch,
    and the running averages take the mean of the sub-batches' updates."""
    key = jax.random.PRNGKey(4)
    x = jax.random.normal(key, (24, 784))
    for bn in ("before", "after"):
        plain = bnh.MLP((784, 50, 50, 10), activation="relu", bn=bn, init="xavier")
        ghost = bnh.MLP((784, 50, 50, 10), activation="relu", bn=bn, init="xavier", ghost_batch=8)
        params, state = plain.init_params(key)
        out, new_state = ghost.apply(params, state, x, train=True)
        parts = [plain.apply(params, state, x[i:i + 8], train=True) for i in (0, 8, 16)]
        np.testing.assert_allclose(np.asarray(out), np.concatenate([np.asarray(p[0]) for p in parts]),
                                   rtol=1e-5, atol=1e-5)
        for j in range(2):
            for stat in ("mean", "var"):
                want = np.mean([np.asarray(p[1][j][stat]) for p in parts], 0)
                np.testing.assert_allclose(np.asarray(new_state[j][stat]), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="ghost batches of 8"):
        ghost.apply(params, state, x[:20], train=True)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="ghost_batch"):
            bnh.MLP((784, 10, 10), bn="before", ghost_batch=bad)
    with pytest.raises(ValueError, match="ghost_batch"):
        bnh.MLP((784, 10, 10), bn=None, ghost_batch=8)


# --- the second half: small batches by repetition, one large step, the CNN, regularization, placement


def test_repeated_batches_are_the_default_order_and_act_as_small_batches(data):
    key = jax.random.PRNGKey(0)
    idx = why.repeated_batches(key, 4000, (128, 16), 128, 40)
    assert idx.shape == (2, 40, 128) and idx.dtype == np.int32
    default = bnh.train.batch_indices(jax.random.split(key)[1], 4000, 128, 40)
    np.testing.assert_array_equal(idx[0], np.asarray(default))
    small = np.asarray(bnh.train.batch_indices(jax.random.split(key)[1], 4000, 16, 40))
    np.testing.assert_array_equal(idx[1], np.tile(small, (1, 8)))
    # same loss, gradient and BN statistics as the 16 examples alone
    net = mlp("before")
    params, state = net.init_params(key)
    x, y = jnp.asarray(data[0][small[0]]), jnp.asarray(data[1][small[0]])
    xt, yt = jnp.tile(x, (8, 1)), jnp.tile(y, 8)

    def loss(p, xb, yb):
        logits, _ = net.apply(p, state, xb, train=True)
        return bnh.train.cross_entropy(logits, yb)

    np.testing.assert_allclose(float(loss(params, xt, yt)), float(loss(params, x, y)), rtol=1e-5)
    tiled, alone = jax.grad(loss)(params, xt, yt), jax.grad(loss)(params, x, y)
    for a, b in zip(jax.tree.leaves(tiled), jax.tree.leaves(alone)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="divide"):
        why.repeated_batches(key, 4000, (48,), 128, 10)


def test_one_large_step_diverges_without_bn_and_blows_up_with_depth(data):
    """Bjorck et al.: the first rate whose single step multiplies the loss by 1000 is at least
    10x larger with BN; after a step of rate 100 the last hidden layer's std is more than 1000x
    the first's without BN, and not larger than the first's with BN (notebook's configuration)."""
    lrs = tuple(10.0 ** np.arange(-3, 3.01, 0.5))
    out = {}
    for name, bn in (("standard", None), ("BN", "before")):
        deep = bnh.MLP((784,) + (100,) * 6 + (10,), activation="relu", bn=bn, init="he")
        out[name] = why.one_step(deep, data[0][:128], data[1][:128], lrs=lrs, seeds=SEEDS)
    thr = {n: why.threshold_rate(lrs, o["relative"]) for n, o in out.items()}
    assert np.min(thr["BN"]) >= 10 * np.max(thr["standard"]), thr
    assert np.all(np.median(out["BN"]["relative"][:, :5], 0) < 1), out["BN"]["relative"]   # small steps help
    j = lrs.index(100.0)
    growth = {n: why.depth_growth(o["std_after"][:, j]) for n, o in out.items()}
    assert np.min(growth["standard"]) > 1000, growth
    assert np.max(growth["BN"]) <= 1.0, growth


def test_threshold_rate_and_depth_growth_by_hand():
    rel = np.array([[0.9, 2.0, 5e3], [0.9, np.nan, 1.0], [0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(why.threshold_rate((0.1, 1.0, 10.0), rel), [10.0, 1.0, np.inf])
    np.testing.assert_allclose(why.depth_growth([[1.0, 2.0, 8.0]]), [8.0])


def test_gradient_ics_of_a_small_cnn_is_not_smaller_with_bn(data):
    """Santurkar et al. on a CNN: the gradient shift with BN is similar or larger (median ICS(BN)
    >= 0.5 x ICS(standard)) while BN trains faster. Notebook's CNN, 60 steps instead of 300."""
    small = (why.small_images(data[0]), data[1], why.small_images(data[2]), data[3])
    l2, loss = {}, {}
    for name, norm in (("standard", None), ("BN", "batch")):
        cnn = bnh.CNN(input_shape=(14, 14, 1), channels=(8, 16), norm=norm, init="he")
        r = bnh.fit_many(cnn, small, key=jax.random.PRNGKey(0), lr=LR, seeds=SEEDS, num_steps=60,
                         batch_size=64, eval_every=60, train_eval=1000,
                         record=why.step_record(cnn, LR, (), (1, 2)))
        l2[name] = np.median(np.asarray(r.record["ics_l2"])[:, :, 0], 1)
        loss[name] = why.final_loss(r, 10)
    assert np.median(l2["BN"]) >= 0.5 * np.median(l2["standard"]), l2
    assert np.median(loss["BN"]) < np.median(loss["standard"]), loss


def test_run_rows_and_gap():
    from bn_helpers.train import FitResult

    r = FitResult(loss=np.ones((3, 10)), eval_steps=np.arange(2), test_acc=np.full((3, 2), 0.9),
                  train_acc=np.full((3, 2), 1.0), probe={"same_sign": np.ones((3, 2))}, params=None,
                  state=None)
    plain = r._replace(probe=None)
    np.testing.assert_allclose(why.gap(r), 0.1, atol=1e-9)
    rows = why.run_rows({"a": r, "b": plain}, 5, why.fmt_band)
    column = "one-sign inputs, start / end"
    assert rows[0][column] == "1.00 / 1.00" and rows[1][column] == ""
    assert why.final_loss(r, 5).shape == (3,)


def test_no_regularization_from_bn_or_its_batch_noise_at_this_scale(data):
    """Notebook, section 6 (1,000 steps there, 400 here): BN's train/test gap is within 3 points of
    the standard network's at batches of 16 and 128, and ghost batches of 8 do not shrink it by
    more than 2 points."""
    key = jax.random.PRNGKey(0)
    sizes = (16, 128)
    idx = np.repeat(why.repeated_batches(key, len(data[0]), sizes, 128, 400), K, axis=0)
    gaps = {}
    for name, bn in (("standard", None), ("BN", "before")):
        r = bnh.fit_many(mlp(bn), data, key=key, lr=LR, seeds=np.resize(SEEDS, idx.shape[0]), batch_idx=idx,
                         num_steps=400, batch_size=128, eval_every=400, train_eval=1000)
        gaps[name] = why.gap(r).reshape(len(sizes), K)
    for j, b in enumerate(sizes):
        assert abs(np.median(gaps["BN"][j]) - np.median(gaps["standard"][j])) < 0.03, (b, gaps)
    ghost = bnh.MLP((784, 100, 100, 10), activation="relu", bn="before", init="xavier", ghost_batch=8)
    g8 = why.gap(bnh.fit_many(ghost, data, key=key, lr=LR, seeds=SEEDS, num_steps=400, batch_size=128,
                              eval_every=400, train_eval=1000))
    assert np.median(g8) > np.median(gaps["BN"][1]) - 0.02, (g8, gaps["BN"][1])


def test_bn_placement_one_sign_inputs_and_accuracy(data, sweep):
    """Notebook, section 7 (400 steps here): with BN before a ReLU or sigmoid every input vector of
    the next layer has one sign, with BN after none has; test accuracy within 2 points between
    the placements (no winner); the sigmoid network with BN after fits the training set faster."""
    placed = {("relu", "before"): why.select(sweep["BN"], slice(0, K))}
    for act, bn in (("relu", "after"), ("sigmoid", "before"), ("sigmoid", "after")):
        net = mlp(bn) if act == "relu" else bnh.MLP((784, 100, 100, 10), activation=act, bn=bn, init="xavier")
        placed[act, bn] = bnh.fit_many(net, data, key=jax.random.PRNGKey(0), lr=LR, seeds=SEEDS,
                                       num_steps=400, batch_size=128, eval_every=50, train_eval=1000,
                                       probe=why.drift_probe_for(net), probe_inputs=data[2][:500])
    for (act, bn), r in placed.items():
        share = np.asarray(r.probe["same_sign"])
        assert (share.min() >= 0.99) if bn == "before" else (share.max() <= 0.01), (act, bn, share)
    for act in ("relu", "sigmoid"):
        acc = {bn: np.median(placed[act, bn].test_acc[:, -1]) for bn in ("before", "after")}
        assert abs(acc["after"] - acc["before"]) < 0.02, (act, acc)
    loss = {bn: why.final_loss(placed["sigmoid", bn], 40) for bn in ("before", "after")}
    assert np.max(loss["after"]) < np.min(loss["before"]), loss
