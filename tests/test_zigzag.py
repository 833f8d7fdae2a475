"""Claims of notebooks/02_zigzag.ipynb, tested against bn_helpers.zigzag and its checks."""

import io

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
    assert r["lr_best"] == pytest.approx(1 / r["lam_max"])


def test_normalizing_shrinks_the_condition_number():
    kappa = {m: zz.readout(*zz.make_inputs(3.0, 2.0, m))["kappa"] for m in zz.MODES}
    assert kappa["raw"] > kappa["standardized"] > kappa["whitened"]
    assert kappa["whitened"] == pytest.approx(1.0, abs=1e-4)
    # Standardized and whitened inputs do not depend on the raw scale ratio and offset
    for m in ("standardized", "whitened"):
        other = zz.readout(*zz.make_inputs(9.0, 4.0, m))["kappa"]
        assert other == pytest.approx(kappa[m], rel=1e-3)
    # Logistic: the same order, smaller curvatures, and whitening does not make it round
    logistic = {m: zz.readout(*zz.make_inputs(3.0, 2.0, m), "logistic") for m in zz.MODES}
    k = {m: logistic[m]["kappa"] for m in zz.MODES}
    assert k["raw"] > k["standardized"] > k["whitened"] > 1.5
    for m in zz.MODES:
        quad = zz.readout(*zz.make_inputs(3.0, 2.0, m))
        assert logistic[m]["lam_max"] < quad["lam_max"]
    # A mean offset creates a large eigenvalue (LeCun 5.3)
    assert zz.readout(*zz.make_inputs(3.0, 4.0, "raw"))["lam_max"] > \
        3 * zz.readout(*zz.make_inputs(3.0, 0.0, "raw"))["lam_max"]


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_diverges_just_above_the_limit_and_converges_just_below(raw, momentum):
    x, t = raw
    limit = 2 * (1 + momentum) / zz.readout(x, t)["lam_max"]
    assert _final_distance(x, t, 0.99 * limit, momentum) < 1e-3
    assert _final_distance(x, t, 1.01 * limit, momentum) >= zz.BLOWUP


def test_whitened_quadratic_converges_in_one_step_at_the_best_rate():
    x, t = zz.make_inputs(3.0, 2.0, "whitened")
    path, _ = zz.descend(x, t, lr=1.0, num_steps=2)
    assert float(jnp.linalg.norm(path[1] - zz.minimum(x, t))) < 1e-4


def test_logistic_past_its_limit_bounces_but_stays_bounded(raw):
    x, t = raw
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


def test_steps_to_converge_reports_failure():
    assert zz.steps_to_converge(100.0, max_steps=10) == -1
    assert zz.steps_to_converge(1.0 + 1e-9) == 1


# ---------------------------------------------------------------- LeCun's sign argument
@pytest.mark.parametrize("d", [2, 10])
def test_same_sign_fraction_positive_vs_centred(d):
    x, t, _ = zz.sign_inputs(d)
    assert bool(jnp.all(x > 0))
    assert zz.same_sign_fraction(zz.per_example_gradients(x, t, jnp.zeros(d))) == 1.0
    xc, tc, _ = zz.sign_inputs(d, centred=True)
    frac = zz.same_sign_fraction(zz.per_example_gradients(xc, tc, jnp.zeros(d)))
    assert abs(frac - 2.0 ** (1 - d)) < 0.05


def test_positive_inputs_take_a_longer_path_and_worse_conditioning():
    ratios, kappas = {}, {}
    for centred in (False, True):
        x, t, w_true = zz.sign_inputs(2, n=200, centred=centred)
        p = np.asarray(zz.sgd_path(x, t, lr=0.5, num_steps=200))
        ratios[centred] = np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)) / np.linalg.norm(p[-1])
        kappas[centred] = zz.readout(x, t)["kappa"]
        assert np.linalg.norm(p[-1] - np.asarray(w_true)) < 0.01
    assert ratios[False] > 2.0 > 1.5 > ratios[True]
    assert kappas[False] > 3 * kappas[True]


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


def test_sorted_minibatches_train_worse_than_shuffled():
    ds = bnh.data.load_dataset("mnist5k")
    out = zz.order_experiment((ds.x_train[:2000], ds.y_train[:2000], ds.x_test, ds.y_test),
                              seeds=(0, 1, 2), num_steps=200, eval_every=20, hidden=32)
    sorted_loss = np.median(out["sorted"]["train_loss"][:, -1])
    shuffled_loss = np.median(out["shuffled"]["train_loss"][:, -1])
    assert sorted_loss > 2 * shuffled_loss
    acc = {k: np.median(out[k]["test_acc"][:, -1]) for k in ("sorted", "shuffled")}
    assert acc["shuffled"] > acc["sorted"] + 0.2
    # The batch loss (last 100 steps) hides this for sorted batches and tracks it for shuffled ones
    batch = {k: np.median(out[k]["batch_loss"][:, -100:].mean(1)) for k in ("sorted", "shuffled")}
    assert batch["sorted"] < 0.5 * sorted_loss
    assert 0.5 < batch["shuffled"] / shuffled_loss < 2.0


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
    r = zz.readout(x, t)
    assert bnh.checks.check_max_stable_lr(r["lr_max"], x, t)
    assert "PASS" in capsys.readouterr().out
    assert not bnh.checks.check_max_stable_lr(r["lr_best"], x, t)
    assert "twice" in capsys.readouterr().out
    assert not bnh.checks.check_max_stable_lr(2 / r["lam_min"], x, t)
    assert "largest eigenvalue" in capsys.readouterr().out
    assert bnh.checks.check_max_stable_lr(lambda a, b: zz.readout(a, b)["lr_max"], x, t)
    assert "PASS" in capsys.readouterr().out

    def not_done(a, b):
        raise NotImplementedError

    assert not bnh.checks.check_max_stable_lr(not_done, x, t)
    assert "not implemented" in capsys.readouterr().out
    with pytest.raises(TypeError, match="value"):
        bnh.checks.check_max_stable_lr("0.1", x, t)


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
    (lambda: zz.order_experiment((np.zeros((10, 4)),) * 4, num_steps=30, eval_every=20),
     "num_steps"),
])
def test_bad_inputs_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=f"`?{arg}`?"):
        call()


# ---------------------------------------------------------------- the explorer
def test_explorer_updates_and_reports_divergence():
    live = zz.explorer()
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
    # Every control only moves blitted artists: a full draw happened once, at construction
    assert live._static_key == live._static_state()
    import PIL.Image
    assert PIL.Image.open(io.BytesIO(live.png())).size[0] > 600
