"""Every claim of notebooks/05_inference.ipynb, checked against bn_helpers.inference.

Stochastic claims (accuracies) are asserted on the median over three seeds of small but real
training runs on MNIST-5k (300 steps, the notebook's FAST setting, one `bnh.fit_many` call as in
the notebook); PyTorch comparisons skip with a visible reason when torch is absent. The exercise
checks' mistake tables are in tests/test_checks_inference.py.
"""

import dataclasses
import inspect
from pathlib import Path

import jax
import jax.numpy as jnp
import nbformat
import numpy as np
import pytest

import bn_helpers as bnh
from bn_helpers.compat import enable_x64

inf = bnh.inference
ROOT = Path(__file__).resolve().parents[1]
NET = bnh.MLP((784, 100, 100, 10), activation="relu", bn="before", momentum=0.9)
SEEDS = (0, 1, 2)
STEPS = 300


@pytest.fixture(scope="module")
def data():
    d = bnh.data.load_dataset("mnist5k")
    return (jnp.asarray(d.x_train), jnp.asarray(d.y_train), jnp.asarray(d.x_test),
            jnp.asarray(d.y_test))


@pytest.fixture(scope="module")
def run(data):
    """The notebook's training call: three seeds in one program, BN's statistics recorded."""
    return bnh.fit_many(NET, data, key=jax.random.PRNGKey(0), lr=0.1, seeds=SEEDS,
                        num_steps=STEPS, batch_size=60, eval_every=25, train_eval=500,
                        record=inf.batch_stats_recorder(NET), probe=inf.stats_probe(NET),
                        probe_inputs=data[0][:500])


@pytest.fixture(scope="module")
def runs(run):
    """The three networks one by one: [{"params", "state"}] per seed."""
    return [dict(zip(("params", "state"), jax.tree.map(lambda a, k=k: a[k], (run.params, run.state))))
            for k in range(len(SEEDS))]


# --- momentum conventions and the running average ----------------------------------------


def test_two_conventions_give_the_same_average():
    rng = np.random.default_rng(0)
    a = b = 0.0
    for v in rng.standard_normal(50):
        a = inf.ema(a, v, 0.9, convention="keras")
        b = inf.ema(b, v, inf.to_torch_momentum(0.9), convention="torch")
    assert a == pytest.approx(b, abs=1e-12)
    assert inf.to_torch_momentum(0.9) == pytest.approx(0.1)
    assert inf.from_torch_momentum(0.1) == pytest.approx(0.9)


def test_ema_trace_and_start_up_bias():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(200).astype(np.float32) + 3.0
    trace, debiased = inf.ema_trace(values, 0.95, 1.0)
    r, seen = 1.0, []
    for t, v in enumerate(values):
        r = 0.95 * r + 0.05 * v
        seen.append(v)
        w = 0.05 * 0.95 ** np.arange(t, -1, -1)  # weights of the values seen so far
        np.testing.assert_allclose(debiased[t], np.sum(w * np.array(seen)) / w.sum(), rtol=1e-4)
    np.testing.assert_allclose(trace[-1], r, rtol=1e-5)
    # Start-up bias: at momentum 0.999 the trace is still near its start after 200 steps
    slow, slow_deb = inf.ema_trace(values, 0.999, 0.0)
    assert abs(float(slow[-1])) < 1.0 < abs(float(slow_deb[-1]) - 0.0)
    assert float(slow_deb[-1]) == pytest.approx(values.mean(), abs=0.1)


def test_debiased_average_is_weighted_not_plain():
    """Dividing out the start-up bias leaves an exponentially weighted average (weights sum to 1)."""
    w = inf.debias_weights(0.99, 100)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w[-1] / w[0] == pytest.approx(0.99 ** -99, rel=1e-9) and w[-1] / w[0] > 2.5
    values = np.linspace(0.0, 1.0, 100).astype(np.float32)  # a trend, as while the weights learn
    _, deb = inf.ema_trace(values, 0.99, 5.0)
    assert float(deb[-1]) == pytest.approx(float(w @ values), abs=1e-4)
    assert float(deb[-1]) - values.mean() > 0.05  # not the plain average: recent values count more
    assert inf.debias_weights(0.0, 3).tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="`t`"):
        inf.debias_weights(0.9, 0)


def test_first_picture_shows_the_start_up_bias(run):
    """At the figure's first momentum (0.99) the bias stands out of the batch noise for a long
    time; at 0.9 it is gone within 44 steps (weight on the start value below 1 %)."""
    nb = nbformat.read(ROOT / "notebooks" / "05_inference.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "MOMENTUM0 = 0.99" in code
    assert int(np.ceil(np.log(0.01) / np.log(0.9))) == 44
    for k in range(len(SEEDS)):
        values = np.asarray(run.record[1]["mean"][k], dtype=np.float32)  # (steps, units), layer 2
        noise = np.median(np.abs(np.diff(values, axis=0)), axis=0)     # batch-to-batch jumps
        gaps = {}
        for mom in (0.9, 0.99):
            trace, deb = jax.vmap(lambda v, mom=mom: inf.ema_trace(v, mom, 0.0), 1, 1)(values)
            gaps[mom] = np.median(np.abs(np.asarray(trace - deb))[100] / noise)
        assert gaps[0.99] > 3.0 and gaps[0.9] < 0.01  # bias at step 100, in units of the noise


def test_recorded_statistics_are_what_bn_used(data):
    """With lr=0 the engine's state equals MLP.apply(train=True) step by step; the record of step
    t holds the mean and biased variance of BN's input over batch t, the probe those over the
    probe images, all from the one BN core."""
    x, y = data[:2]
    params, state = NET.init_params(jax.random.PRNGKey(7))
    idx = np.asarray(bnh.train.batch_indices(jax.random.PRNGKey(3), x.shape[0], 60, 50))
    out = bnh.fit(NET, data, key=jax.random.PRNGKey(3), lr=0.0, num_steps=50, batch_idx=idx,
                  eval_every=25, train_eval=500, start=(params, state),
                  record=inf.batch_stats_recorder(NET), probe=inf.stats_probe(NET),
                  probe_inputs=x[:500])
    ref = state
    for i in idx:
        _, ref = NET.apply(params, ref, x[i], train=True)
    for got, want in zip(out.state[:-1], ref[:-1], strict=True):
        np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["var"], want["var"], rtol=1e-4, atol=1e-5)
    # layer 1's input is x @ W (no bias before BN): the record holds its batch mean and variance
    z = np.asarray(x[idx[7]], np.float64) @ np.asarray(params[0]["W"], np.float64)
    np.testing.assert_allclose(out.record[0]["mean"][7], z.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.record[0]["var"][7], z.var(0), rtol=1e-4, atol=1e-6)
    first = inf.batch_statistics(NET, params, x[idx[0]])
    np.testing.assert_allclose(out.record[1]["mean"][0], first[1]["mean"], rtol=1e-4, atol=1e-5)
    pop = inf.batch_statistics(NET, params, x[:500])
    np.testing.assert_allclose(out.probe[1]["var"][-1], pop[1]["var"], rtol=1e-4, atol=1e-6)
    assert out.record[0]["mean"].shape == (50, 100) and out.probe[0]["mean"].shape == (3, 100)
    # recorder and probe are the same objects for the same net, so the compiled run is reused
    assert inf.batch_stats_recorder(NET) is inf.batch_stats_recorder(NET)
    assert inf.stats_probe(NET) is inf.stats_probe(NET)


def test_no_second_bn_formula_or_training_loop():
    """The inference modules read BN only through MLP.apply and train only through the engine."""
    for mod in (inf, bnh.inference_running, bnh.figures.inference):
        src = inspect.getsource(mod)
        for banned in ("value_and_grad", "jax.grad", "rsqrt", "_moments", "_normalize",
                       "lr *", "- lr"):
            assert banned not in src, (mod.__name__, banned)
        assert len(src.splitlines()) <= 310, mod.__name__


def test_one_network_or_a_stack_give_the_same_numbers(run, runs, data):
    xt, yt = data[2:]
    stacked = inf.accuracy(NET, run.params, run.state, xt, yt)
    assert stacked.shape == (3,)
    np.testing.assert_allclose(stacked, np.asarray(run.test_acc[:, -1]), atol=1e-6)
    for k, r in enumerate(runs):
        assert inf.accuracy(NET, r["params"], r["state"], xt, yt) == pytest.approx(stacked[k])
    pop = inf.population_statistics(NET, run.params, data[0], batch_size=60)
    one = inf.population_statistics(NET, runs[2]["params"], data[0], batch_size=60)
    np.testing.assert_allclose(pop[1]["var"][2], one[1]["var"], rtol=1e-5)


# --- Algorithm 2 -------------------------------------------------------------------------


@pytest.mark.parametrize("unbiased", [True, False])
def test_population_statistics_is_algorithm_2(data, unbiased):
    x = np.asarray(data[0][:600], dtype=np.float64)
    params, _ = NET.init_params(jax.random.PRNGKey(4))
    m = 20
    pop = inf.population_statistics(NET, params, x, batch_size=m, unbiased=unbiased)
    z = (x @ np.asarray(params[0]["W"], dtype=np.float64)).reshape(-1, m, 100)
    factor = m / (m - 1) if unbiased else 1.0
    np.testing.assert_allclose(pop[0]["mean"], z.mean(1).mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pop[0]["var"], factor * z.var(1).mean(0), rtol=1e-4)


def test_algorithm_2_correction_is_exact_in_layer_1_and_overshoots_in_layer_2(run, runs, data):
    """Layer 1 normalizes each training-mode batch with its own statistics, so layer 2's batches
    are already as spread as its full-pass inputs and m/(m-1) corrects twice."""
    x = data[0]
    for r in runs:
        l1, l2 = inf.variance_sources(NET, r["params"], x, batch_size=60)
        assert l1["algorithm2"] / l1["full_pass"] == pytest.approx(1.0, abs=0.002)
        assert l1["fixed_earlier"] == l1["algorithm2"]   # nothing before layer 1 to fix
        assert (l2["algorithm2"] - l2["fixed_earlier"]) / l2["full_pass"] > 0.005  # same batches
        assert l1["algorithm2_biased"] / l1["full_pass"] == pytest.approx(59 / 60, abs=0.005)
        assert 1.007 < l2["algorithm2"] / l2["full_pass"] < 1.025
        assert l2["algorithm2_biased"] / l2["full_pass"] == pytest.approx(1.0, abs=0.01)
        assert l2["fixed_earlier"] / l2["full_pass"] == pytest.approx(1.0, abs=0.006)
    stacked = inf.variance_sources(NET, run.params, x, batch_size=60)
    assert stacked[1]["algorithm2"].shape == (3,)
    assert stacked[1]["algorithm2"][1] == pytest.approx(
        inf.variance_sources(NET, runs[1]["params"], x, batch_size=60)[1]["algorithm2"], rel=1e-5)
    with pytest.raises(ValueError, match="`batch_size`"):
        inf.variance_sources(NET, runs[0]["params"], x[:10], batch_size=60)


def test_torch_cumulative_average_is_algorithm_2(data, torch):
    """PyTorch momentum=None over K equal batches == population_statistics."""
    x = np.array(data[0][:400])
    params, _ = NET.init_params(jax.random.PRNGKey(5))
    lin = torch.nn.Linear(784, 100, bias=False)
    bn = torch.nn.BatchNorm1d(100, momentum=None).train()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.asarray(params[0]["W"]).T.copy()))
        for xb in x.reshape(-1, 40, 784):
            bn(lin(torch.from_numpy(xb)))
    pop = inf.population_statistics(NET, params, x, batch_size=40)
    np.testing.assert_allclose(bn.running_mean.numpy(), pop[0]["mean"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), pop[0]["var"], rtol=1e-4, atol=1e-5)


# --- accuracy with batch / running / population statistics -----------------------------------


def test_accuracy_against_batch_size(run, runs, data):
    x, y = data[2:]
    sizes = (2, 16, 128)
    pop = inf.population_statistics(NET, run.params, data[0], batch_size=60)
    batch = inf.accuracy_vs_batch_size(NET, run.params, run.state, x, y, sizes, repeats=2)
    table = np.column_stack([batch, inf.accuracy(NET, run.params, run.state, x, y),
                             inf.accuracy(NET, run.params, pop, x, y)])      # (seeds, 5)
    b2, b16, b128, running, population = np.median(table, axis=0)
    assert b2 < 0.7 < b16 < b128 <= running + 0.02
    assert running > 0.9 and abs(running - population) < 0.02
    # one network alone gives its row of the stacked table (same batchings)
    r = runs[1]
    np.testing.assert_allclose(inf.accuracy_vs_batch_size(NET, r["params"], r["state"], x, y,
                                                          sizes, repeats=2), batch[1], atol=1e-6)


def test_prediction_depends_on_the_batch_only_in_training_mode(runs, data):
    x, y = data[2:]
    r = runs[0]
    spread, p_eval = inf.prediction_spread(NET, r["params"], r["state"], x, y, np.arange(6),
                                           sizes=(2, 256), num_contexts=8)
    width = spread.max(-1) - spread.min(-1)
    assert np.median(width[0]) > np.median(width[1])
    assert np.median(width[0]) > 0.2
    # eval mode: one image alone or inside a batch gives the same probability
    logits, _ = NET.apply(r["params"], r["state"], x[:6], train=False)
    np.testing.assert_allclose(jax.nn.softmax(logits)[np.arange(6), y[:6]], p_eval, rtol=1e-5)
    alone, _ = NET.apply(r["params"], r["state"], x[:1], train=False)
    np.testing.assert_allclose(alone[0], logits[0], rtol=1e-5, atol=1e-5)


def test_batch_of_one_errors_in_training_mode_only(runs, data):
    r, x = runs[0], data[2]
    NET.apply(r["params"], r["state"], x[:1], train=False)
    with pytest.raises(ValueError, match="at least 2"):
        NET.apply(r["params"], r["state"], x[:1], train=True)
    p, s = bnh.init_batch_norm(3)
    with pytest.raises(ValueError, match="more than 1 value per feature"):
        bnh.apply_batch_norm(p, s, np.ones((1, 3)), train=True)


# --- stale statistics, recalibration, NaN ------------------------------------------------------


def test_recalibration_alone_matches_fine_tuning_on_shifted_data(run, data):
    """The control: old weights with statistics recomputed on the shifted images do as well as
    fine-tuning + recalibration; stale statistics stay poor; lagging averages fall short.
    Fine-tuning as in the notebook: `bnh.fit` from each trained network, vmapped."""
    x, y, xt, yt = data
    shift = dict(brightness=0.2, contrast=0.6)
    xs, xts = inf.shift_images(x, **shift), inf.shift_images(xt, **shift)
    slow = dataclasses.replace(NET, momentum=0.99)
    fine = jax.vmap(lambda p, s: bnh.fit(slow, (xs, y, xts, yt), key=jax.random.PRNGKey(100),
                                         lr=0.05, num_steps=100, eval_every=100, train_eval=500,
                                         start=(p, s)))(run.params, run.state)
    assert float(jnp.abs(fine.params[0]["W"] - run.params[0]["W"]).max()) > 0.0
    acc = inf.fine_tune_table(NET, (run.params, run.state), (fine.params, fine.state), xs, xts, yt)
    clean = inf.accuracy(NET, run.params, run.state, xt, yt)
    rows = np.column_stack([acc[k] for k in ("old", "old_recalibrated", "stale", "lagging",
                                             "fine_recalibrated")] + [clean])
    old, old_recal, stale, lagging, fine_recal, clean = np.median(rows, axis=0)
    assert np.all(np.abs(rows[:, 1] - rows[:, 5]) < 0.01)      # back to the unshifted accuracy
    assert old_recal > old + 0.1
    assert abs(fine_recal - old_recal) < 0.02 < 0.2 * (old_recal - old)
    assert stale < old_recal - 0.1 and abs(stale - old) < 0.06
    assert old + 0.1 < lagging < fine_recal


def test_affine_shift_is_undone_by_the_first_bn_layer_in_training_mode(runs, data):
    r, xt = runs[0], data[2]
    batch = xt[:100]
    shifted = inf.shift_images(batch, brightness=0.2, contrast=0.6)
    assert bool(jnp.all((0.6 * batch + 0.2 >= 0) & (0.6 * batch + 0.2 <= 1)))  # nothing clipped
    h0 = NET.apply(r["params"], r["state"], batch, train=True, return_hidden=True)[2]
    h1 = NET.apply(r["params"], r["state"], shifted, train=True, return_hidden=True)[2]
    assert float(jnp.abs(h0[0]["pre"] - h1[0]["pre"]).max()) < 1e-3
    # eval mode with the training statistics does not undo it
    e0 = NET.apply(r["params"], r["state"], batch, train=False, return_hidden=True)[2]
    e1 = NET.apply(r["params"], r["state"], shifted, train=False, return_hidden=True)[2]
    assert float(jnp.abs(e0[0]["pre"] - e1[0]["pre"]).max()) > 0.5


def test_l2_decay_never_makes_weights_exactly_zero(runs, data):
    w0 = runs[0]["params"][0]["W"][:, 1]
    for lam in (5e-4, 1e-2):
        w = w0 * (1 - 0.1 * lam) ** 10_000
        assert int((w == 0).sum()) == 0 and float((data[0] @ w).var()) > 0.0
    assert float(jnp.abs(w0 * (1 - 0.1 * 1e-2) ** 10_000).max()) < 1e-4  # small, not zero


def test_dead_unit_cannot_move_but_a_revived_one_is_amplified(run, runs, data):
    x, _, xt, yt = data
    n = inf.underflow_steps(0.9)
    drops = []
    for r in runs:
        pruned = [dict(layer) for layer in r["params"]]
        pruned[0]["W"] = pruned[0]["W"].at[:, 0].set(0.0)
        dead = inf.refresh_running_stats(NET, pruned, r["state"], x, num_steps=n)
        out = NET.apply(pruned, dead, xt, train=False, return_hidden=True)[2][0]["pre"][:, 0]
        assert float(out.max() - out.min()) == 0.0                    # the same for every image
        assert float(out[0]) == pytest.approx(float(pruned[0]["beta"][0]), abs=1e-6)
        stale = NET.apply(r["params"], dead, xt, train=False, return_hidden=True)[2][0]["pre"]
        own = NET.apply(r["params"], r["state"], xt, train=False, return_hidden=True)[2][0]["pre"]
        assert float(jnp.abs(stale[:, 0]).max()) > 50 * float(jnp.abs(own[:, 0]).max())
        drops.append(inf.accuracy(NET, r["params"], r["state"], xt, yt)
                     - inf.accuracy(NET, r["params"], dead, xt, yt))
    assert min(drops) > 0.1
    # the notebook refreshes the three networks at once: the same collapse, seed by seed
    pruned = jax.tree.map(lambda a: a, run.params)
    pruned[0]["W"] = run.params[0]["W"].at[:, :, 0].set(0.0)
    dead = inf.refresh_running_stats(NET, pruned, run.state, x, num_steps=n)
    assert np.all(np.asarray(dead[0]["var"][:, 0]) == 0.0)
    np.testing.assert_allclose(drops, inf.accuracy(NET, run.params, run.state, xt, yt)
                               - inf.accuracy(NET, run.params, dead, xt, yt), atol=1e-6)


def test_dead_unit_gives_nan_at_eval_without_eps(runs, data):
    x, _, xt, yt = data
    r = runs[0]
    n = inf.underflow_steps(0.9)
    assert 500 < n < 2000 and inf.underflow_steps(0.99) > n
    pruned = [dict(layer) for layer in r["params"]]
    pruned[0]["W"] = pruned[0]["W"].at[:, 0].set(0.0)
    almost = inf.refresh_running_stats(NET, pruned, r["state"], x, num_steps=n - 50)
    dead = inf.refresh_running_stats(NET, pruned, r["state"], x, num_steps=n)
    assert float(almost[0]["var"][0]) > 0.0 and float(dead[0]["var"][0]) == 0.0
    logits, _ = NET.apply(pruned, dead, xt, train=False)
    assert bool(jnp.all(jnp.isfinite(logits)))
    assert inf.accuracy(NET, pruned, dead, xt, yt) > 0.85
    no_eps = dataclasses.replace(NET, eps=0.0)
    logits0, _ = no_eps.apply(pruned, dead, xt, train=False)
    assert bool(jnp.all(jnp.isnan(logits0)))
    assert inf.accuracy(no_eps, pruned, dead, xt, yt) == pytest.approx(float(jnp.mean(yt == 0)))
    folded = inf.fold_network(no_eps, pruned, dead)
    assert bool(jnp.all(jnp.isnan(inf.apply_folded(NET, folded, xt))))


# --- covariate shift ---------------------------------------------------------------------------


def test_test_time_re_estimation(run, runs, data):
    xt, yt = data[2:]
    noise = np.random.default_rng(5).standard_normal(xt.shape).astype(np.float32)  # as the notebook
    settings = [(0.0, 1.0, 0.0), (0.4, 1.0, 0.0), (0.0, 0.2, 0.0), (0.0, 1.0, 0.5)]
    table = inf.shift_table(NET, run.params, run.state, xt, yt, noise, settings)  # (3, 4, 3)
    (clean_t, clean_a, clean_o), (bright_t, bright_a, bright_o), (pale_t, pale_a, pale_o), \
        (noisy_t, noisy_a, noisy_o) = np.median(table, axis=0)
    assert abs(clean_t - clean_a) < 0.02 and abs(clean_t - clean_o) < 0.01
    assert bright_a > bright_t + 0.2 and bright_a > clean_t - 0.03
    assert pale_a > pale_t + 0.2
    assert abs(bright_o - bright_a) < 0.02 and abs(pale_o - pale_a) < 0.03
    assert noisy_a < clean_t - 0.1 and noisy_o < clean_t - 0.1  # noise is not undone
    # the slider's one-network call gives seed 0's row
    np.testing.assert_allclose(inf.shift_table(NET, runs[0]["params"], runs[0]["state"], xt, yt,
                                               noise, settings[1])[0], table[0, 1], atol=1e-6)


def test_reestimation_per_batch_depends_on_the_batch(run, runs, data):
    """Training mode on test batches (AdaBN done per batch) needs batches mixed across classes and
    makes predictions depend on the batch; re-estimating once, then eval mode, does not."""
    xt, yt = data[2:]
    xs = inf.shift_images(xt, brightness=0.3)
    order = np.argsort(np.asarray(yt), kind="stable")
    assert np.bincount(np.asarray(yt)[order[:100]], minlength=10).max() == 100
    rows = inf.reestimation_accuracy(NET, run.params, run.state, xs, yt, batch_size=100)
    med = {k: float(np.median(v)) for k, v in rows.items()}
    one = inf.reestimation_accuracy(NET, runs[2]["params"], runs[2]["state"], xs, yt, batch_size=100)
    assert one == pytest.approx({k: v[2] for k, v in rows.items()}, abs=1e-6)
    assert med["random_batches"] > med["training_stats"] + 0.15
    assert med["sorted_batches"] < 0.25 < med["random_batches"] - 0.5
    assert abs(med["once"] - med["random_batches"]) < 0.02
    assert 0.005 < med["changed"] < 0.1
    # eval mode with statistics re-estimated once: an image's prediction ignores its company
    r = runs[0]
    once = inf.population_statistics(NET, r["params"], xs, batch_size=100)
    full, _ = NET.apply(r["params"], once, xs, train=False)
    alone, _ = NET.apply(r["params"], once, xs[:1], train=False)
    np.testing.assert_allclose(alone[0], full[0], rtol=1e-5, atol=1e-5)


def test_spread_text():
    assert inf.spread_text([0.9, 0.95, 0.92]) == "0.920 (range 0.900 to 0.950 over 3 seeds)"
    with pytest.raises(ValueError, match="`values`"):
        inf.spread_text([])


def test_shift_images():
    x = jnp.array([[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(inf.shift_images(x, 0.2, 0.5), [[0.2, 0.45, 0.7]])
    np.testing.assert_allclose(inf.shift_images(x, 0.8), [[0.8, 1.0, 1.0]])


# --- folding -------------------------------------------------------------------------------------


def test_fold_dense_bn_equals_bn_layer_float64():
    with enable_x64(True):
        rng = np.random.default_rng(0)
        W, b, x = rng.standard_normal((6, 4)), rng.standard_normal(4), rng.standard_normal((9, 6))
        params = {"gamma": rng.uniform(0.5, 2, 4), "beta": rng.standard_normal(4)}
        state = {"mean": rng.standard_normal(4), "var": rng.uniform(0.1, 2, 4)}
        y_bn, _ = bnh.apply_batch_norm(params, state, x @ W + b, train=False, eps=1e-3)
        Wf, bf = inf.fold_dense_bn(W, b, params["gamma"], params["beta"], state["mean"],
                                   state["var"], 1e-3)
        np.testing.assert_allclose(x @ Wf + bf, y_bn, rtol=1e-12, atol=1e-12)


def test_fold_network_equals_eval_mode(runs, data):
    r, xt = runs[0], data[2]
    logits, _ = NET.apply(r["params"], r["state"], xt, train=False)
    folded = inf.apply_folded(NET, inf.fold_network(NET, r["params"], r["state"]), xt)
    scale = float(jnp.abs(logits).max())
    assert float(jnp.abs(folded - logits).max()) < 1e-5 * max(scale, 1.0)
    assert bool(jnp.all(folded.argmax(1) == logits.argmax(1)))


def test_fold_matches_torch_eval_layer(torch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    lin, bn = torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([0.3, 2.0, 0.01]))
        bn.weight.copy_(torch.tensor([1.5, 0.7, 2.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        ref = bn.eval()(lin(torch.from_numpy(x))).numpy()
    Wf, bf = inf.fold_dense_bn(lin.weight.detach().numpy().T, lin.bias.detach().numpy(),
                               bn.weight.detach().numpy(), bn.bias.detach().numpy(),
                               bn.running_mean.numpy(), bn.running_var.numpy(), bn.eps)
    np.testing.assert_allclose(x @ np.asarray(Wf) + np.asarray(bf), ref, rtol=1e-4, atol=1e-4)


# --- framework conventions ---------------------------------------------------------------------


def test_fixed_vector_table_matches_the_reference_values():
    rows = {r[0]: r for r in inf.fixed_vector_table()}
    for row in rows.values():
        assert row[-1] < 1e-6, row[0]
    np.testing.assert_allclose(rows["torch"][2], [0.4, 0.8])
    np.testing.assert_allclose(rows["torch"][3], [1.5667, 3.5667], atol=1e-4)
    np.testing.assert_allclose(rows["keras"][2], [0.04, 0.08])
    np.testing.assert_allclose(rows["keras"][3], [0.99 + 0.01 * 5, 0.99 + 0.01 * 20])
    np.testing.assert_allclose(rows["flax"][3], rows["keras"][3])
    # Flax and Keras with momentum 0.9: 1.4 and 2.9
    _, v = inf.framework_update("flax", np.zeros(2), np.ones(2),
                                np.array([[1, 2], [3, 6], [5, 10], [7, 14]]), 0.9)
    np.testing.assert_allclose(v, [1.4, 2.9])


def test_framework_update_torch_formula_against_torch(torch):
    x = np.array([[1, 2], [3, 6], [5, 10], [7, 14]], dtype=np.float32)
    layer = torch.nn.BatchNorm1d(2).train()
    layer(torch.from_numpy(x))
    m, v = inf.framework_update("torch", np.zeros(2), np.ones(2), x)
    np.testing.assert_allclose(layer.running_mean.numpy(), m, rtol=1e-6)
    np.testing.assert_allclose(layer.running_var.numpy(), v, rtol=1e-6)


def test_notebook_table_states_the_defaults():
    nb = nbformat.read(ROOT / "notebooks" / "05_inference.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "| default momentum | 0.1 (= our 0.9) | 0.99 | 0.99 | 0.9 |" in text
    assert "| default eps | 1e-5 | 1e-3 | 1e-5 | 1e-5 |" in text
    assert (NET.momentum, NET.eps) == (0.9, 1e-5)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "import torch" not in code and "import keras" not in code


def _notebook():
    return nbformat.read(ROOT / "notebooks" / "05_inference.ipynb", as_version=4)


def test_notebook_text_is_true_and_cited():
    nb = _notebook()
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    lower = text.lower()
    for banned in ("seed note", "card ", "plain average of the batches seen",
                   "strong weight decay) has set", "moves the dead unit"):
        assert banned not in lower, banned
    assert "not their\nplain average" in text or "not their plain average" in text
    assert "AdaBN" in text and "Schneider et al. (2020)" in text and "forgotten eval flag" in text
    assert "1 to 2 % *above* the full pass" in text
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References")
    for cited in ("1502.03167", "1412.6980", "1603.04779", "2006.16971", "Li, Y.", "Schneider, S.",
                  "Kingma", "LeCun"):
        assert cited in last.source, cited
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "SEEDS = (0, 1, 2)" in code


def test_notebook_reference_lines_are_labelled():
    code = "\n".join(c.source for c in _notebook().cells if c.cell_type == "code")
    code += "\n" + inspect.getsource(bnh.figures.inference)
    calls = []
    for i in range(len(code)):
        if code.startswith(("axhline(", "axvline(", "hlines("), i):
            depth, start = 0, code.index("(", i)
            for j in range(start, len(code)):  # noqa: B007 (j is the closing parenthesis)
                depth += {"(": 1, ")": -1}.get(code[j], 0)
                if depth == 0:
                    break
            calls.append(code[i:j + 1])
    assert len(calls) >= 6
    for call in calls:
        assert "label=" in call, call


# --- exercise checks -----------------------------------------------------------------------------


def test_checks_are_exported_and_decorated():
    """The mistake tables live in tests/test_checks_inference.py."""
    for name in ("check_running_stats_update", "check_fold_bn"):
        fn = getattr(bnh.checks, name)
        assert fn.check_name


# --- bad inputs name the argument ----------------------------------------------------------------


def test_bad_inputs_raise_errors_naming_the_argument(data):
    x, y = data[0][:100], data[1][:100]
    params, state = NET.init_params(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="`convention`"):
        inf.ema(0.0, 1.0, 0.9, convention="tf")
    with pytest.raises(ValueError, match="`momentum`"):
        inf.ema(0.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="`torch_momentum`"):
        inf.from_torch_momentum(-0.1)
    with pytest.raises(ValueError, match="`net`"):
        inf.population_statistics(bnh.MLP((784, 10, 10)), params, x)
    with pytest.raises(ValueError, match="`batch_size`"):
        inf.population_statistics(NET, params, x, batch_size=1)
    with pytest.raises(ValueError, match="`net`"):
        inf.batch_stats_recorder(bnh.MLP((784, 10, 10), bn="after"))
    with pytest.raises(ValueError, match="`adapt_batch`"):
        inf.shift_table(NET, params, state, x, y, jnp.zeros_like(x), [0.0, 1.0, 0.0], adapt_batch=1)
    with pytest.raises(ValueError, match="`batch_size`"):
        inf.reestimation_accuracy(NET, params, state, x, y, batch_size=200)
    with pytest.raises(ValueError, match="`sizes`"):
        inf.accuracy_vs_batch_size(NET, params, state, x, y, (1, 4))
    with pytest.raises(ValueError, match="`W`"):
        inf.fold_dense_bn(np.ones(3), np.ones(3), np.ones(3), np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="`var`"):
        inf.fold_dense_bn(np.ones((2, 3)), *[np.ones(3)] * 4, np.ones(2))
    with pytest.raises(ValueError, match="`framework`"):
        inf.framework_update("mxnet", 0, 1, np.ones((2, 2)))
    with pytest.raises(ValueError, match="`momentum`"):
        inf.underflow_steps(1.0)


def test_explorers_have_whole_labels_and_tooltips(run, runs, data):
    """Issue 17: every control of the notebook's explorers has hover text beyond its label."""
    xt, yt = data[2:]
    figs = bnh.figures.inference
    r = runs[0]
    spread, p_eval = inf.prediction_spread(NET, r["params"], r["state"], xt, yt, np.arange(3),
                                           sizes=(2, 8), num_contexts=4)
    noise = np.zeros(xt.shape, np.float32)
    lives = [figs.momentum_explorer(run, layer=1, unit=0, batch_size=60),
             figs.batch_size_explorer((2, 8), np.ones((3, 2)), np.ones(3), np.ones(3), spread,
                                      p_eval, yt),
             figs.shift_explorer(lambda b, c, n: inf.shift_images(xt[:4], b, c, n, noise[:4]),
                                 lambda b, c, n: inf.shift_table(NET, r["params"], r["state"], xt,
                                                                 yt, noise, [b, c, n])[0],
                                 0.9, adapt_batch=100)]
    labels = []
    for live in lives:
        assert live.error is None and live.calls >= 1
        for w in live.controls.values():
            tip = getattr(w, "tooltip", None) or getattr(w, "description_tooltip", None)
            assert tip and len(tip) > len(w.description) + 10, w.description
            labels.append(w.description)
    assert "momentum (weight on old)" in labels   # the label tests/browser/browser_cases.py finds
    w = lives[0].controls["momentum"]
    assert "OLD" in (getattr(w, "tooltip", None) or w.description_tooltip)
