"""Every claim of notebooks/05_inference.ipynb, checked against bn_helpers.inference.

Stochastic claims (accuracies) are asserted on the median over three seeds of small but real
training runs on MNIST-5k; PyTorch comparisons skip with a visible reason when torch is absent.
"""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import nbformat
import numpy as np
import pytest

import bn_helpers as bnh

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
def runs(data):
    x, y = data[:2]
    return [inf.train_recording(NET, x, y, key=jax.random.PRNGKey(s), lr=0.1, num_steps=STEPS,
                                ref_size=500) for s in SEEDS]


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


def test_recorded_running_state_matches_the_network(data):
    """With lr=0 the manual EMA in train_recording equals MLP.apply(train=True) step by step."""
    x, y = data[:2]
    key = jax.random.PRNGKey(3)
    out = inf.train_recording(NET, x, y, key=key, lr=0.0, num_steps=50, chunk=25)
    params, state = NET.init_params(jax.random.split(key)[0])
    idx = bnh.train.batch_indices(jax.random.split(key)[1], x.shape[0], 60, 50)
    for i in idx:
        _, state = NET.apply(params, state, x[i], train=True)
    for got, ref in zip(out["state"][:-1], state[:-1], strict=True):
        np.testing.assert_allclose(got["mean"], ref["mean"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["var"], ref["var"], rtol=1e-4, atol=1e-5)
    # The recorded statistics of step 0 are those of the first batch
    first = inf.batch_statistics(NET, params, x[idx[0]])
    np.testing.assert_allclose(out["batch_mean"][0, 1], first[1]["mean"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["batch_var"][0, 0], first[0]["var"], rtol=1e-4, atol=1e-5)
    assert out["batch_mean"].shape == (50, 2, 100) and out["pop_mean"].shape == (2, 2, 100)


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


def test_torch_cumulative_average_is_algorithm_2(data, torch):
    """PyTorch momentum=None over K equal batches == population_statistics (card G)."""
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


def test_accuracy_against_batch_size(runs, data):
    x, y = data[2:]
    sizes = (2, 16, 128)
    table = []
    for r in runs:
        pop = inf.population_statistics(NET, r["params"], data[0], batch_size=60)
        batch = inf.accuracy_vs_batch_size(NET, r["params"], r["state"], x, y, sizes, repeats=2)
        table.append([*batch, inf.accuracy(NET, r["params"], r["state"], x, y),
                      inf.accuracy(NET, r["params"], pop, x, y)])
    b2, b16, b128, running, population = np.median(np.array(table), axis=0)
    assert b2 < 0.7 < b16 < b128 <= running + 0.02
    assert running > 0.9 and abs(running - population) < 0.02
    # the same numbers through the one-size entry point
    r = runs[0]
    one = inf.accuracy(NET, r["params"], r["state"], x, y, mode="batch", batch_size=16, repeats=2)
    assert one == pytest.approx(float(inf.accuracy_vs_batch_size(
        NET, r["params"], r["state"], x, y, (16,), repeats=2)[0]), abs=0.03)


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


def test_recalibration_helps_after_fine_tuning_on_shifted_data(runs, data):
    x, y, xt, yt = data
    shift = dict(brightness=0.2, contrast=0.6)
    xs, xts = inf.shift_images(x, **shift), inf.shift_images(xt, **shift)
    slow = dataclasses.replace(NET, momentum=0.99)
    rows = []
    for s, r in zip(SEEDS, runs, strict=True):
        fine = inf.train_recording(slow, xs, y, key=jax.random.PRNGKey(10 + s), lr=0.05,
                                   num_steps=100, params=r["params"], state=r["state"],
                                   ref_size=100)
        recal = inf.population_statistics(NET, fine["params"], xs, batch_size=60)
        rows.append([inf.accuracy(NET, fine["params"], r["state"], xts, yt),       # stale
                     inf.accuracy(NET, fine["params"], fine["state"], xts, yt),    # lagging
                     inf.accuracy(NET, fine["params"], recal, xts, yt)])           # recalibrated
    stale, lagging, recal = np.median(np.array(rows), axis=0)
    assert recal > stale + 0.05
    assert recal >= lagging - 0.005


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


def test_test_time_re_estimation(runs, data):
    xt, yt = data[2:]
    noise = jax.random.normal(jax.random.PRNGKey(5), xt.shape)
    rows = []
    for r in runs:
        rows.append([float(a) for setting in ((0.0, 1.0, 0.0), (0.4, 1.0, 0.0), (0.0, 0.2, 0.0),
                                              (0.0, 1.0, 0.5))
                     for a in inf.shift_accuracy(NET, r["params"], r["state"], xt, yt, noise,
                                                 *setting)])
    clean_t, clean_a, bright_t, bright_a, pale_t, pale_a, noisy_t, noisy_a = np.median(rows, axis=0)
    assert abs(clean_t - clean_a) < 0.02
    assert bright_a > bright_t + 0.2 and bright_a > clean_t - 0.03
    assert pale_a > pale_t + 0.2
    assert noisy_a < clean_t - 0.1  # noise is not undone


def test_shift_images():
    x = jnp.array([[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(inf.shift_images(x, 0.2, 0.5), [[0.2, 0.45, 0.7]])
    np.testing.assert_allclose(inf.shift_images(x, 0.8), [[0.8, 1.0, 1.0]])


# --- folding -------------------------------------------------------------------------------------


def test_fold_dense_bn_equals_bn_layer_float64():
    with jax.enable_x64(True):
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


def test_fixed_vector_table_matches_card_g():
    rows = {r[0]: r for r in inf.fixed_vector_table()}
    for row in rows.values():
        assert row[-1] < 1e-6, row[0]
    np.testing.assert_allclose(rows["torch"][2], [0.4, 0.8])
    np.testing.assert_allclose(rows["torch"][3], [1.5667, 3.5667], atol=1e-4)
    np.testing.assert_allclose(rows["keras"][2], [0.04, 0.08])
    np.testing.assert_allclose(rows["keras"][3], [0.99 + 0.01 * 5, 0.99 + 0.01 * 20])
    np.testing.assert_allclose(rows["flax"][3], rows["keras"][3])
    # Flax and Keras with momentum 0.9: the card's 1.4 / 2.9
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


# --- exercise checks -----------------------------------------------------------------------------


def _good_update(mean, var, x, momentum):
    m = x.shape[0]
    return (momentum * mean + (1 - momentum) * x.mean(0),
            momentum * var + (1 - momentum) * x.var(0) * m / (m - 1))


def test_check_running_stats_update(capsys):
    check = bnh.checks.check_running_stats_update
    assert check(_good_update)
    assert "PASS" in capsys.readouterr().out

    def torch_style(mean, var, x, momentum):
        return _good_update(mean, var, x, 1 - momentum)

    def biased(mean, var, x, momentum):
        return (momentum * mean + (1 - momentum) * x.mean(0),
                momentum * var + (1 - momentum) * x.var(0))

    def todo(*_):
        raise NotImplementedError

    assert not check(torch_style)
    assert "PyTorch's convention" in capsys.readouterr().out
    assert not check(biased)
    assert "unbiased" in capsys.readouterr().out
    assert not check(todo)
    assert "not implemented" in capsys.readouterr().out


def test_check_fold_bn(capsys):
    check = bnh.checks.check_fold_bn

    def good(W, b, gamma, beta, mean, var, eps):
        s = gamma / np.sqrt(var + eps)
        return W * s, (b - mean) * s + beta

    def no_eps(W, b, gamma, beta, mean, var, eps):
        s = gamma / np.sqrt(var)
        return W * s, (b - mean) * s + beta

    def no_bias(W, b, gamma, beta, mean, var, eps):
        s = gamma / np.sqrt(var + eps)
        return W * s, beta - mean * s

    assert check(good)
    assert "PASS" in capsys.readouterr().out
    assert not check(no_eps)
    assert "eps goes inside" in capsys.readouterr().out
    assert not check(no_bias)
    assert "own bias" in capsys.readouterr().out
    assert not check(lambda *a: (a[0], a[1]))
    assert "FAIL" in capsys.readouterr().out


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
    with pytest.raises(ValueError, match="`num_steps`"):
        inf.train_recording(NET, x, y, key=jax.random.PRNGKey(0), lr=0.1, num_steps=30)
    with pytest.raises(ValueError, match="`mode`"):
        inf.accuracy(NET, params, state, x, y, mode="eval")
    with pytest.raises(ValueError, match="`batch_size`"):
        inf.accuracy(NET, params, state, x, y, mode="batch", batch_size=1)
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
