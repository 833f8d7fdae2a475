"""Claims of notebooks/02_zigzag.ipynb, tested against bn_helpers.zigzag and its checks."""

import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh

zz = bnh.zigzag


@pytest.fixture(scope="module")
def raw():
    return zz.make_inputs(scale_ratio=3.0, offset=2.0, mode="raw")


def _final_distance(x, t, lr, momentum=0.0, loss="quadratic", steps=2000):
    path, _ = zz.descend(x, t, lr=lr, momentum=momentum, loss=loss, num_steps=steps)
    return float(jnp.linalg.norm(path[-1] - zz.minimum(x, t, loss)))


# ---------------------------------------------------------------- Hessian and stability
def test_quadratic_hessian_is_the_second_moment_matrix(raw):
    x, t = raw
    h = np.asarray(zz.hessian(x, t))
    np.testing.assert_allclose(h, np.asarray(x.T @ x / x.shape[0]), rtol=1e-5)
    r = zz.readout(x, t)
    np.testing.assert_allclose([r["lam_min"], r["lam_max"]], np.linalg.eigvalsh(h), rtol=1e-5)
    assert r["lr_max"] == pytest.approx(2 / r["lam_max"])
    # the best fixed step balances both ends: |1 - eta lam_min| = |1 - eta lam_max|
    assert r["lr_best"] == pytest.approx(2 / (r["lam_max"] + r["lam_min"]))
    assert r["contraction"] == pytest.approx((r["kappa"] - 1) / (r["kappa"] + 1))
    assert abs(1 - r["lr_best"] * r["lam_min"]) == pytest.approx(r["contraction"], rel=1e-5)
    assert abs(1 - r["lr_best"] * r["lam_max"]) == pytest.approx(r["contraction"], rel=1e-5)
    assert r["lr_steep"] == pytest.approx(1 / r["lam_max"])


def test_best_fixed_step_beats_every_other_fixed_step(raw):
    """2/(lam_max + lam_min) minimizes the worst per-step factor max_i |1 - eta lam_i|."""
    r = zz.readout(*raw)
    etas = np.linspace(0.01, 1.99, 400) * r["lr_max"]
    worst = np.maximum(np.abs(1 - etas * r["lam_min"]), np.abs(1 - etas * r["lam_max"]))
    assert worst.min() >= r["contraction"] - 1e-6
    assert etas[np.argmin(worst)] == pytest.approx(r["lr_best"], rel=0.01)
    # and on the real descent it needs fewer steps than LeCun's 1/lam_max
    x, t = raw
    w = zz.minimum(x, t)
    d_best = float(jnp.linalg.norm(zz.descend(x, t, lr=r["lr_best"], num_steps=30)[0][-1] - w))
    d_steep = float(jnp.linalg.norm(zz.descend(x, t, lr=r["lr_steep"], num_steps=30)[0][-1] - w))
    assert d_best < 0.5 * d_steep


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normalizing_shrinks_the_condition_number(seed):
    kappa = {m: zz.readout(*zz.make_inputs(3.0, 2.0, m, seed=seed))["kappa"] for m in zz.MODES}
    assert kappa["raw"] > kappa["standardized"] > kappa["whitened"]
    assert kappa["whitened"] == pytest.approx(1.0, abs=1e-4)
    # Standardized and whitened inputs do not depend on the raw scale ratio and offset
    for m in ("standardized", "whitened"):
        other = zz.readout(*zz.make_inputs(9.0, 4.0, m, seed=seed))["kappa"]
        assert other == pytest.approx(kappa[m], rel=1e-3)
    # Logistic: the same order, smaller curvatures, and whitening does not make it round
    logistic = {m: zz.readout(*zz.make_inputs(3.0, 2.0, m, seed=seed), "logistic") for m in zz.MODES}
    k = {m: logistic[m]["kappa"] for m in zz.MODES}
    assert k["raw"] > k["standardized"] > k["whitened"] > 1.5
    for m in zz.MODES:
        quad = zz.readout(*zz.make_inputs(3.0, 2.0, m, seed=seed))
        assert logistic[m]["lam_max"] < quad["lam_max"]
    # A mean offset creates a large eigenvalue (LeCun 5.3)
    assert zz.readout(*zz.make_inputs(3.0, 4.0, "raw"))["lam_max"] > \
        3 * zz.readout(*zz.make_inputs(3.0, 0.0, "raw"))["lam_max"]


def test_offset_raises_lam_max_but_kappa_depends_on_the_scale_ratio():
    tab = zz.offset_table((1.0, 3.0, 6.0), (0.0, 2.0, 4.0), seeds=(0, 1, 2))
    lam, kappa, lr = tab["lam_max"], tab["kappa"], tab["lr_max"]
    assert np.all(np.diff(lam, axis=2) > 0)              # every seed, every scale ratio
    assert np.all(np.diff(lr, axis=2) < 0)               # so the safe step shrinks
    ratio = lam[:, :, -1] / lam[:, :, 0]
    assert ratio.min() > 1.4 and ratio.max() > 10
    assert np.all(kappa[:, 0, -1] > 5 * kappa[:, 0, 0])  # scale ratio 1: kappa rises
    assert np.all(kappa[:, 2, -1] < 0.5 * kappa[:, 2, 0])  # scale ratio 6: kappa falls
    # the explorer's default (scale ratio 3, data seed 0): the offset 0 -> 2 lowers kappa
    assert kappa[0, 1, 0] == pytest.approx(6.61, abs=0.01)
    assert kappa[0, 1, 1] == pytest.approx(5.58, abs=0.01)
    assert np.all(kappa[:, 1, -1] > kappa[:, 1, 0])      # scale ratio 3, offset 4: kappa rises


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_diverges_just_above_the_limit_and_converges_just_below(momentum, seed):
    x, t = zz.make_inputs(3.0, 2.0, "raw", seed=seed)
    limit = 2 * (1 + momentum) / zz.readout(x, t)["lam_max"]
    assert _final_distance(x, t, 0.99 * limit, momentum) < 1e-3
    assert _final_distance(x, t, 1.01 * limit, momentum) >= zz.BLOWUP


def test_a_diverged_path_stops_where_it_passed_blowup():
    """The engine runs on; the path is cut after the fact at the first point past BLOWUP."""
    x, t = zz.make_inputs(3.0, 2.0, "raw")
    w_star, lr = zz.minimum(x, t), 1.5 * zz.readout(x, t)["lr_max"]
    path, losses = zz.descend(x, t, lr=lr, num_steps=400)
    dist = np.linalg.norm(np.asarray(path - w_star), axis=1)
    k = int(np.argmax(dist >= zz.BLOWUP))
    assert 0 < k < 400 and dist[k - 1] < zz.BLOWUP
    np.testing.assert_array_equal(np.asarray(path[k:]), np.broadcast_to(path[k], path[k:].shape))
    assert np.all(np.isfinite(np.asarray(losses)))
    # before the cut it is the engine's own path
    w, _, _, raw = bnh.train.sgd(zz.bowl(x, t), w_star + jnp.asarray(zz.START), None, lr=lr,
                                 num_steps=k, record=zz.weights)
    np.testing.assert_allclose(np.asarray(raw), np.asarray(path[:k]), rtol=1e-5)
    # a path that overflows stops at its last finite point
    bad = jnp.array([[0.0, 0.0], [1.0, 1.0], [jnp.inf, 0.0], [jnp.nan, 1.0]])
    np.testing.assert_array_equal(np.asarray(zz.stop_at_blowup(bad, jnp.zeros(2)))[2:], [[1, 1]] * 2)


def test_whitened_quadratic_converges_in_one_step_at_the_best_rate():
    x, t = zz.make_inputs(3.0, 2.0, "whitened")
    path, _ = zz.descend(x, t, lr=1.0, num_steps=2)
    assert float(jnp.linalg.norm(path[1] - zz.minimum(x, t))) < 1e-4
    assert zz.readout(x, t)["lr_best"] == pytest.approx(1.0, abs=1e-4)


def test_start_is_2_69_weight_units_away():
    assert np.hypot(*zz.START) == pytest.approx(2.69, abs=0.005)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_past_its_limit_bounces_but_stays_bounded(seed):
    x, t = zz.make_inputs(3.0, 2.0, "raw", seed=seed)
    r = zz.readout(x, t, "logistic")
    assert _final_distance(x, t, 0.9 * r["lr_max"], loss="logistic") < 1e-3
    d = _final_distance(x, t, 2 * r["lr_max"], loss="logistic")
    assert 0.1 < d < 10


def test_logistic_minimum_has_zero_gradient(raw):
    x, t = raw
    w = zz.minimum(x, t, "logistic")
    g = jax.grad(lambda v: zz.loss_value(v, x, t, "logistic"))(w)
    assert float(jnp.linalg.norm(g)) < 1e-5


# ---------------------------------------------------------------- steps vs condition number
def test_steps_scale_linearly_with_kappa_and_match_theory():
    conv = zz.convergence_vs_kappa(np.geomspace(10, 1000, 5))
    slope = np.polyfit(np.log(conv["kappa"]), np.log(conv["gd"]), 1)[0]
    assert 0.85 < slope < 1.15
    np.testing.assert_allclose(conv["gd"], conv["gd_theory"], rtol=0.05)
    assert np.all(conv["gd"] <= conv["gd_theory"])  # "a little lower"
    slope_m = np.polyfit(np.log(conv["kappa"]), np.log(conv["momentum"]), 1)[0]
    assert 0.4 < slope_m < 0.65
    ratio = conv["momentum"] / conv["momentum_theory"]
    assert np.all(ratio > 1.0) and np.all(ratio < 1.6)  # the notebook's "constant factor above"
    assert np.all(conv["momentum"] < conv["gd"])
    # the best fixed step: exactly its theory (rounded up), about half the steps of 1/lam_max
    assert np.all(conv["gd_best"] >= conv["gd_best_theory"] - 1e-9)
    assert np.all(conv["gd_best"] <= conv["gd_best_theory"] + 1)
    assert np.all((conv["gd"] / conv["gd_best"] > 1.8) & (conv["gd"] / conv["gd_best"] < 2.0))


def test_steps_to_converge_reports_failure():
    assert zz.steps_to_converge(100.0, max_steps=10) == -1
    assert zz.steps_to_converge(1.0 + 1e-9) == 1


# ---------------------------------------------------------------- LeCun's sign argument
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("d", [2, 10])
def test_same_sign_fraction_positive_vs_centred(d, seed):
    x, t, _ = zz.sign_inputs(d, seed=seed)
    assert bool(jnp.all(x > 0))
    assert zz.same_sign_fraction(zz.per_example_gradients(x, t, jnp.zeros(d))) == 1.0
    xc, tc, _ = zz.sign_inputs(d, centred=True, seed=seed)
    frac = zz.same_sign_fraction(zz.per_example_gradients(xc, tc, jnp.zeros(d)))
    assert abs(frac - 2.0 ** (1 - d)) < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positive_inputs_take_a_longer_path_and_worse_conditioning(seed):
    ratios, kappas = {}, {}
    for centred in (False, True):
        x, t, w_true = zz.sign_inputs(2, n=200, centred=centred, seed=seed)
        p = np.asarray(zz.sgd_path(x, t, lr=0.5, num_steps=200))
        ratios[centred] = np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)) / np.linalg.norm(p[-1])
        kappas[centred] = zz.readout(x, t)["kappa"]
        assert np.linalg.norm(p[-1] - np.asarray(w_true)) < 0.01
    assert ratios[False] > 2.0 > 1.5 > ratios[True]
    assert kappas[False] > 3 * kappas[True]


def test_bn_before_the_sigmoid_leaves_the_next_layer_inputs_all_positive():
    x = bnh.data.load_dataset("mnist5k").x_test[:500]
    before = zz.next_layer_inputs(x, bn="before", seeds=(0, 1, 2))
    after = zz.next_layer_inputs(x, bn="after", seeds=(0, 1, 2))
    assert np.all(before["min"] > 0) and np.all(before["same_sign"] == 1.0)
    assert np.all(np.abs(before["mean"] - 0.5) < 0.05)
    assert np.all(np.abs(after["mean"]) < 1e-3) and np.all(after["min"] < -1)
    assert np.all(after["same_sign"] == 0.0)


# ---------------------------------------------------------------- minibatch order
def test_order_indices_sorted_walks_through_the_classes():
    y = np.repeat(np.arange(10), 20)
    idx = zz.order_indices(y, 10, 40, order="sorted", seed=0)
    labels = y[idx]
    assert np.all(labels == labels[:, :1])               # one class per batch
    assert np.all(np.diff(labels[:20, 0]) >= 0)         # in class order within an epoch
    np.testing.assert_array_equal(labels[:20], labels[20:])
    assert sorted(idx[:20].ravel()) == list(range(200))  # every example once per epoch
    shuf = zz.order_indices(y, 10, 40, order="shuffled", seed=0)
    assert shuf.shape == (40, 10) and len(np.unique(y[shuf[0]])) > 1
    assert sorted(shuf[:20].ravel()) == list(range(200))


def order_runs(data, seeds, num_steps, eval_every):
    """The notebook's cell: a 784-64-10 ReLU MLP on the engine, sorted vs shuffled batch_idx."""
    net = bnh.MLP((784, 64, 10), activation="relu", init="he")
    out = {}
    for order in ("sorted", "shuffled"):
        idx = np.stack([zz.order_indices(data[1], 50, num_steps, order=order, seed=1000 + s)
                        for s in seeds])
        run = bnh.fit_many(net, data, key=jax.random.PRNGKey(0), lr=0.1, num_steps=num_steps,
                           batch_size=50, seeds=seeds, batch_idx=idx, eval_every=eval_every,
                           probe=zz.whole_set_loss(net), probe_inputs=(data[0], data[1]),
                           train_eval=500)
        out[order] = {"batch_loss": np.asarray(run.loss), "train_loss": np.asarray(run.probe),
                      "test_acc": np.asarray(run.test_acc)}
    out["eval_steps"] = run.eval_steps
    return out


@pytest.fixture(scope="module")
def order_run():
    """The notebook's FAST configuration: all 4,000 images, 8-step class blocks, 3 seeds."""
    ds = bnh.data.load_dataset("mnist5k")
    return order_runs((ds.x_train, ds.y_train, ds.x_test, ds.y_test), (0, 1, 2), 320, 4)


def test_sorted_minibatches_train_worse_than_shuffled(order_run):
    out = order_run
    full = {k: out[k]["train_loss"][:, -1] for k in ("sorted", "shuffled")}
    batch = {k: out[k]["batch_loss"][:, -100:].mean(1) for k in ("sorted", "shuffled")}
    acc = {k: out[k]["test_acc"][:, -1] for k in ("sorted", "shuffled")}
    assert np.all(full["sorted"] > 3 * full["shuffled"])
    assert acc["shuffled"].min() > acc["sorted"].max() + 0.3
    # the sorted run's batch loss is higher than the shuffled one's (not "excellent") ...
    assert np.all(batch["sorted"] > batch["shuffled"])
    # ... but far below its own whole-set loss, while for shuffled batches the two agree
    assert np.all(full["sorted"] > 3 * batch["sorted"])
    assert np.all((full["shuffled"] / batch["shuffled"] > 0.7) & (full["shuffled"] / batch["shuffled"] < 1.3))


def test_whole_set_loss_swings_with_the_class_blocks(order_run):
    out = order_run
    ev = out["eval_steps"][1:]
    last = ev > 320 - 80
    swing = {k: np.ptp(out[k]["train_loss"][:, 1:][:, last], 1) for k in ("sorted", "shuffled")}
    assert np.all(swing["sorted"] > 10 * swing["shuffled"])
    # evaluations every 20 steps fall alternately in the middle and at the end of an 8-step block
    assert [s % 8 for s in out["eval_steps"][::5][1:5]] == [4, 0, 4, 0]


# ---------------------------------------------------------------- checks
def test_check_hessian_eigs_pass_and_fail(capsys):
    assert bnh.checks.check_hessian_eigs(lambda f, w: jnp.linalg.eigvalsh(jax.hessian(f)(w)))
    assert "PASS" in capsys.readouterr().out
    assert not bnh.checks.check_hessian_eigs(
        lambda f, w: jnp.linalg.eigvalsh(jax.hessian(f)(w))[::-1])
    assert "ascending" in capsys.readouterr().out
    assert not bnh.checks.check_hessian_eigs(lambda f, w: jnp.sort(jnp.diag(jax.hessian(f)(w))))
    assert "diagonal" in capsys.readouterr().out

    def not_done(f, w):
        raise NotImplementedError

    assert not bnh.checks.check_hessian_eigs(not_done)
    assert "not implemented" in capsys.readouterr().out


def test_check_max_stable_lr_pass_and_fail(raw, capsys):
    x, t = raw
    assert bnh.checks.check_max_stable_lr(zz.max_stable_lr, x, t)
    assert "PASS" in capsys.readouterr().out
    assert not bnh.checks.check_max_stable_lr(lambda a, b, loss: zz.readout(a, b, loss)["lr_steep"], x, t)
    assert "twice" in capsys.readouterr().out
    assert not bnh.checks.check_max_stable_lr(lambda a, b, loss: zz.readout(a, b, loss)["lr_best"], x, t)
    assert "best fixed step" in capsys.readouterr().out
    assert not bnh.checks.check_max_stable_lr(zz.readout(x, t)["lr_max"], x, t)   # a number
    assert "not a function" in capsys.readouterr().out


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("call, arg", [
    (lambda: zz.make_inputs(scale_ratio=0.0), "scale_ratio"),
    (lambda: zz.make_inputs(offset=float("nan")), "offset"),
    (lambda: zz.make_inputs(mode="pca"), "mode"),
    (lambda: zz.readout(*zz.make_inputs(), loss="hinge"), "loss"),
    (lambda: zz.descend(*zz.make_inputs(), lr=-1.0), "lr"),
    (lambda: zz.descend(*zz.make_inputs(), lr=0.1, momentum=1.0), "momentum"),
    (lambda: zz.descend(*zz.make_inputs(), lr=0.1, num_steps=0), "num_steps"),
    (lambda: zz.descend(*zz.make_inputs(), lr=0.1, w0=[1.0, 2.0, 3.0]), "w0"),
    (lambda: zz.convergence_vs_kappa([0.5, 10]), "kappas"),
    (lambda: zz.steps_to_converge(-1.0), "kappa"),
    (lambda: zz.same_sign_fraction(np.ones(5)), "grads"),
    (lambda: zz.sign_inputs(1), "d"),
    (lambda: zz.order_indices(np.zeros(10), 2, 3, order="random"), "order"),
    (lambda: zz.order_indices(np.zeros(10), 20, 3, order="sorted"), "batch_size"),
    (lambda: zz.sgd_path(*zz.sign_inputs(2)[:2], lr=0.0), "lr"),
])
def test_bad_inputs_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=f"`?{arg}`?"):
        call()


# ---------------------------------------------------------------- the explorer
def test_learning_rate_one_is_a_notch_and_takes_one_step_on_whitened_inputs():
    live = bnh.figures.zigzag.explorer()
    lr = live.controls["lr"]
    notch = (0.0 - lr.min) / lr.step
    assert abs(notch - round(notch)) < 1e-9
    default = (np.log10(lr.value) - lr.min) / lr.step
    assert abs(default - round(default)) < 1e-3
    live.controls["inputs"].value = "whitened"
    lr.value = 1.0
    assert lr.value == 1.0
    assert "within 1 % of the start distance at step 1" in live.readout.value
    assert "2/(lam_max+lam_min) = 1 " in live.readout.value
    assert "learning rate 1," in live.fig.texts[0].get_text()



def test_explorer_updates_and_reports_divergence():
    live = bnh.figures.zigzag.explorer()
    assert "condition number" in live.readout.value
    before = live.png()
    lr_max = zz.readout(*zz.make_inputs(3.0, 2.0, "raw"))["lr_max"]
    live.controls["lr"].value = 1.05 * lr_max
    assert "DIVERGED" in live.readout.value
    assert live.png() != before
    live.controls["lr"].value = 0.9 * lr_max
    assert "DIVERGED" not in live.readout.value
    for name, value in (("inputs", "whitened"), ("loss", "logistic"), ("scale_ratio", 6.0),
                        ("offset", 0.5), ("momentum", 0.5), ("steps", 10)):
        live.controls[name].value = value
    assert live.error is None and live.calls == 9
    assert "logistic loss, whitened inputs" in live.readout.value
    text = re.sub("<[^>]+>", "", live.readout.value)   # short lines: no front end breaks a word
    assert all(len(line) <= 80 for line in text.split("\n"))
    # Every control only moves blitted artists: a full draw happened once, at construction
    assert live._static_key == live._static_state()
    assert "logistic loss, whitened inputs" in live.fig.texts[0].get_text()
    assert "momentum 0.5, 10 steps shown" in live.fig.texts[0].get_text()
    import PIL.Image
    assert PIL.Image.open(io.BytesIO(live.png())).size[0] > 600


# ---------------------------------------------------------------- the notebook's text
def test_notebook_text_has_no_known_false_claims():
    import pathlib

    import nbformat

    path = pathlib.Path(__file__).parents[1] / "notebooks" / "02_zigzag.ipynb"
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for wrong in ("feedback loop", "best rate $\\eta = 1/\\lambda_{max}$", "three weight units",
                  "batch loss looks excellent", "tolerance $\\epsilon$",
                  "which centres and scales the inputs of every layer"):
        assert wrong not in text, wrong
    assert "2/(\\lambda_{max} + \\lambda_{min})" in text and "(\\kappa - 1)/(\\kappa + 1)" in text
    assert nb.cells[-1].source.startswith("## References")
    for ref in ("Efficient BackProp", "Polyak", "1502.03167"):
        assert ref in nb.cells[-1].source
    assert "bnh.checks.fallback(" in code and "check_max_stable_lr(predict_max_lr" in code
    for c in nb.cells:   # solution markers on their own lines
        for line in c.source.splitlines():
            if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                assert line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION")
