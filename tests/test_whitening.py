"""Claims of notebooks/01_whitening.ipynb, tested against bn_helpers.whitening and its checks."""

import functools
import re

import jax
import numpy as np
import pytest

import bn_helpers as bnh

W = bnh.whitening
WP = bnh.whitening_practice
KEY = jax.random.PRNGKey(0)


def data(seed=0, n=2000, corr=0.8, scale_ratio=5.0, mean=(3.0, 3.0)):
    return bnh.toydata.correlated_gaussian(jax.random.PRNGKey(seed), n, corr=corr,
                                           scale_ratio=scale_ratio, mean=mean)


# ------------------------------------------------------------------ whitening itself
@pytest.mark.parametrize("fn", [W.pca_whiten, W.zca_whiten])
def test_whitened_covariance_is_identity(fn):
    x = data()
    z = fn(x, eps=1e-8)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(W.covariance(z), np.eye(2), atol=1e-3)
    assert float(W.condition_number(W.covariance(z))) == pytest.approx(1.0, abs=2e-3)


def test_standardize_gives_mean_0_var_1_but_keeps_correlation():
    x = data(corr=0.8)
    s = W.standardize(x)
    np.testing.assert_allclose(s.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.var(0), 1, atol=1e-4)
    corr = np.corrcoef(np.asarray(x).T)[0, 1]
    assert float(W.covariance(s)[0, 1]) == pytest.approx(corr, abs=1e-4)
    # eigenvalues of a standardized 2-D covariance are 1 +- corr
    vals = W.eigen(W.covariance(s))[0]
    np.testing.assert_allclose(vals, [1 + abs(corr), 1 - abs(corr)], atol=1e-4)


def test_zca_is_symmetric_pca_is_rotation_of_it():
    cov = W.covariance(data())
    zca = W.whitening_matrix(cov, 1e-6, "zca")
    pca = W.whitening_matrix(cov, 1e-6, "pca")
    np.testing.assert_allclose(zca, zca.T, atol=1e-5)
    q = np.linalg.solve(np.asarray(zca), np.asarray(pca))  # pca = zca @ q
    np.testing.assert_allclose(q.T @ q, np.eye(2), atol=1e-4)


def test_zca_moves_data_least_among_whitenings():
    x = data(n=1000)
    z_zca = W.zca_whiten(x, 1e-8)
    best = float(W.whitening_distance(x, z_zca))
    assert best < float(W.whitening_distance(x, W.pca_whiten(x, 1e-8)))
    rng = np.random.default_rng(0)
    for _ in range(20):  # any whitening is z_zca @ Q with Q orthogonal
        q, _ = np.linalg.qr(rng.standard_normal((2, 2)))
        assert best <= float(W.whitening_distance(x, z_zca @ q)) + 1e-4


def test_four_views_matches_direct_functions_and_toydata():
    key = jax.random.PRNGKey(3)
    z = jax.random.normal(key, (300, 2))
    out = W.four_views(z, 0.7, 3.0, 2.0)
    x = W.gaussian_from_normal(z, 0.7, 3.0, 2.0)
    ref = [x, W.standardize(x), W.pca_whiten(x), W.zca_whiten(x)]
    for got, want in zip(out["views"], ref, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)
    # same construction as toydata.correlated_gaussian
    toy = bnh.toydata.correlated_gaussian(key, 300, corr=0.7, scale_ratio=3.0, mean=(2.0, 2.0))
    np.testing.assert_allclose(x, toy, atol=1e-5)
    np.testing.assert_allclose(out["kappa"][2:], 1.0, atol=1e-3)
    np.testing.assert_allclose(out["second_moment"], x.T @ x / 300, rtol=1e-5)
    assert float(out["kappa_second_moment"]) == pytest.approx(
        float(W.condition_number(out["second_moment"])), rel=1e-4)


def test_condition_numbers_follow_the_sliders():
    z = jax.random.normal(KEY, (2000, 2))
    # raw covariance: kappa grows with the scale ratio; standardized: (1+|c|)/(1-|c|)
    kappas = [float(W.four_views(z, 0.0, r, 0.0)["kappa"][0]) for r in (1.0, 3.0, 10.0)]
    assert kappas[0] < 1.2 and kappas[1] == pytest.approx(9, rel=0.1)
    assert kappas[2] == pytest.approx(100, rel=0.1)
    for c in (0.0, 0.5, 0.9):
        k = float(W.four_views(z, c, 4.0, 0.0)["kappa"][1])
        assert k == pytest.approx((1 + c) / (1 - c), rel=0.1, abs=0.1)
    # the mean offset does not change the covariance but inflates E[x x^T] (LeCun 5.3)
    a, b = W.four_views(z, 0.0, 1.0, 0.0), W.four_views(z, 0.0, 1.0, 4.0)
    np.testing.assert_allclose(a["covs"][0], b["covs"][0], atol=1e-4)
    assert float(W.condition_number(a["second_moment"])) < 1.2
    assert float(W.condition_number(b["second_moment"])) > 30


def test_fit_zca_and_zca_view_match_direct_whitening():
    x = np.asarray(data(n=500, mean=(1.0, -2.0)))
    x = np.concatenate([x, x @ np.array([[1.0, 0.5], [0.2, 1.0]])], axis=1)  # 4 features
    x = x + 0.1 * np.random.default_rng(0).standard_normal(x.shape)
    model = WP.fit_zca(x)
    images, filters = WP.zca_view(model, x[:7], [0, 2], 1e-3)
    ref = W.zca_whiten(x, 1e-3)
    np.testing.assert_allclose(images, ref[:7], atol=1e-3)
    wmat = W.whitening_matrix(W.covariance(x), 1e-3, "zca")
    np.testing.assert_allclose(filters, np.asarray(wmat)[[0, 2]], rtol=1e-3, atol=1e-3)


def test_mnist_zca_filters_are_centre_surround():
    d = bnh.data.load_dataset("mnist5k")
    model = WP.fit_zca(d.x_train[:2000])
    pixel = 14 * 28 + 14
    _, filt = WP.zca_view(model, d.x_test[:2], [pixel], 0.1)
    f = np.asarray(filt[0]).reshape(28, 28)
    assert np.argmax(np.abs(f)) == pixel and f[14, 14] > 0
    neighbours = f[13:16, 13:16].sum() - f[14, 14]
    assert neighbours < 0  # negative surround
    # local: the 9x9 window (10 % of the pixels) holds more than half of the filter
    assert np.abs(f[10:19, 10:19]).sum() > 0.5 * np.abs(f).sum()
    # larger eps whitens less: the whitened test images are closer to the centred originals
    x = d.x_test[:20]
    dist = [float(np.mean((np.asarray(WP.zca_view(model, x, [0], e)[0]) * np.sqrt(e)
                           - (x - model.mean)) ** 2)) for e in (1e-3, 1.0)]
    assert dist[1] < dist[0]


def test_time_transforms_shapes():
    out = WP.time_transforms([4, 16], n=64, repeats=1)
    assert out["dims"] == [4, 16]
    assert len(out["standardize"]) == len(out["zca"]) == 2
    assert all(t > 0 for t in out["standardize"] + out["zca"])


def bias_run(key, steps, lr, offset, mean_aware):
    """The notebook's cell: the centred layer trained by the engine's SGD loop, full batch."""
    a, t, start = WP.bias_problem(key, target_offset=offset)
    loss_fn = functools.partial(WP.centred_loss, a=a, t=t, mean_aware=mean_aware)
    _, _, loss, bias = bnh.train.sgd(loss_fn, start, None, lr=lr, num_steps=steps,
                                     record=lambda params, state, grads, batch: params[1])
    return {"loss": loss, "bias": bias, "bias_norm": jax.numpy.linalg.norm(bias, axis=1),
            "target_mean": t.mean(axis=0)}


def test_bias_grows_while_loss_stays_flat():
    steps, lr, offset = 300, 0.1, 1.0
    for seed in range(3):
        key = jax.random.PRNGKey(seed)
        naive = bias_run(key, steps, lr, offset, mean_aware=False)
        exact = bias_run(key, steps, lr, offset, mean_aware=True)
        # the loss curves are the same: b never reaches the output
        np.testing.assert_allclose(naive["loss"], exact["loss"], rtol=1e-4)
        late = np.asarray(naive["loss"][steps // 2:])
        assert late.max() - late.min() < 1e-3 * late.mean()  # flat
        # naive b grows linearly by lr * mean(t) per step; exact b stays 0
        t_mean = np.asarray(naive["target_mean"])
        assert np.all(np.abs(t_mean - offset) < 0.5)
        np.testing.assert_allclose(naive["bias"][-1], (steps - 1) * lr * t_mean, rtol=1e-3)
        assert float(naive["bias_norm"][-1]) == pytest.approx(
            (steps - 1) * lr * np.linalg.norm(t_mean), rel=1e-3)
        np.testing.assert_allclose(exact["bias"], 0, atol=1e-6)
        # the loss the engine records is the centred layer's squared error before each step
        a, t, (w0, b0) = WP.bias_problem(key, target_offset=offset)
        u = np.asarray(a @ w0)
        want = 0.5 * np.mean(np.sum((u - u.mean(0) - np.asarray(t)) ** 2, 1))
        assert float(naive["loss"][0]) == pytest.approx(want, rel=1e-5)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, arg", [
    (lambda: W.standardize(np.ones(5)), "`x`"),
    (lambda: W.standardize(np.ones((4, 2)), eps=-1), "`eps`"),
    (lambda: W.zca_whiten(np.array([[1.0, np.nan], [0.0, 1.0]])), "`x`"),
    (lambda: W.whitening_matrix(np.eye(2), kind="svd"), "`kind`"),
    (lambda: W.eigen(np.ones((2, 3))), "`m`"),
    (lambda: W.four_views(np.ones((5, 3)), 0.5, 1.0, 0.0), "`z`"),
    (lambda: W.four_views(np.ones((5, 2)), 1.0, 1.0, 0.0), "`corr`"),
    (lambda: W.four_views(np.ones((5, 2)), 0.5, 0.0, 0.0), "`scale_ratio`"),
    (lambda: WP.zca_view(WP.fit_zca(np.eye(3)), np.ones((2, 4)), [0], 0.1), "`x`"),
    (lambda: WP.zca_view(WP.fit_zca(np.eye(3)), np.ones((2, 3)), [5], 0.1), "`pixels`"),
    (lambda: WP.zca_view("model", np.ones((2, 3)), [0], 0.1), "`model`"),
    (lambda: WP.time_transforms([8], n=4), "`n`"),
    (lambda: WP.bias_problem(KEY, n=1), "`n`"),
    (lambda: WP.bias_problem(KEY, target_offset=float("nan")), "`target_offset`"),
    (lambda: W.whitening_distance(np.ones((4, 2)), np.ones((4, 3))), "`z`"),
])
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


# The exercise checks and their mistake tables: tests/test_checks_whitening.py


# ------------------------------------------------------------------ the explorers
def test_views_explorer_moves_every_slider_with_whole_readout_lines():
    z = jax.random.normal(KEY, (500, 2))
    live = bnh.figures.whitening.views_explorer(z)
    for name, value in (("corr", -0.5), ("ratio", 1.5), ("offset", -3.0)):
        live.controls[name].value = value
    assert live.error is None and live.calls == 4
    assert live._static_key == live._static_state()      # only blitted artists changed
    text = re.sub("<[^>]+>", "", live.readout.value)   # the readout's text, without <pre>
    assert all(len(line) <= 80 for line in text.split("\n"))   # no front end breaks a word
    out = W.four_views(z, -0.5, 1.5, -3.0)
    assert f"{float(out['kappa'][1]):8.2f}" in text and "correlation -0.50" in live.fig.texts[0].get_text()


def test_zca_explorer_readout_and_title_follow_eps(mnist_report):
    d, r = mnist_report
    model = WP.fit_zca(d.x_train)
    live = bnh.figures.whitening.zca_explorer(model, d.x_test[:6], [406, 265, 575, 400, 215, 568])
    live.controls["eps"].value = 1e-3
    assert live.error is None and "ε = 1.0e-03" in live.fig.texts[0].get_text()
    text = re.sub("<[^>]+>", "", live.readout.value)   # the readout's text, without <pre>
    assert all(len(line) <= 80 for line in text.split("\n"))
    kappa = WP.whitened_condition(model.eigvals, 1e-3, 1e-9)
    shown = float(text.split("κ = ")[1].split()[0])
    assert shown == pytest.approx(kappa, rel=1e-2) and "over the 646 directions" in text


# ------------------------------------------------------------------ issue 11: corrected claims
@pytest.fixture(scope="module")
def mnist_report():
    d = bnh.data.load_dataset("mnist5k")
    return d, WP.rank_report(d.x_train, rare_max=3, cut=1e-9)


def test_661_varying_pixels_span_647_directions_646_above_the_cut(mnist_report):
    _, r = mnist_report
    assert r["varying"] == 661 and r["rank"] == 647 and r["above_cut"] == 646
    # the rare pixels (inked in <= 3 images) account for the whole deficit
    assert r["rare"] == 64 and r["rare_rank"] == 50 and r["rare_examples"] == 63
    assert r["common"] == 597 and r["common_rank"] == 597
    assert r["rare_rank"] + r["common_rank"] == r["rank"]
    lam = r["eigvals"]
    assert lam[646] < 1e-9 * lam[0] < lam[645]      # the 647th is just under the cut
    assert lam[647:].max() < 1e-25                  # the rest are zero to rounding


def test_whitened_condition_depends_on_eps_and_cut(mnist_report):
    _, r = mnist_report
    lam = r["eigvals"]
    for cut in (1e-9, 1e-6, 1e-2):
        assert WP.whitened_condition(lam, 0.0, cut) == pytest.approx(1.0)
    k = {cut: WP.whitened_condition(lam, 1e-2, cut) for cut in (1e-9, 1e-6, 1e-4, 1e-2)}
    assert 2e5 < k[1e-9] < 4e5              # at eps = 1e-2: far from white
    assert k[1e-9] > k[1e-6] > k[1e-4] > k[1e-2] and k[1e-2] < 1.3
    eps_grid = np.logspace(-8, 1, 10)
    assert np.all(np.diff(WP.whitened_condition(lam, eps_grid, 1e-9)) > 0)
    assert int((lam > 1e-2).sum()) == 244
    # the formula is the condition number of the whitened data themselves
    x = np.asarray(data(n=300)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.1]])
    x = x + 0.01 * np.random.default_rng(1).standard_normal(x.shape)
    vals = np.linalg.eigvalsh(np.cov(x.T, bias=True))
    z = np.asarray(W.zca_whiten(x.astype(np.float64), 0.05))
    got = np.linalg.eigvalsh(np.cov(z.T, bias=True))
    assert WP.whitened_condition(vals, 0.05, 0.0) == pytest.approx(got.max() / got.min(), rel=1e-3)


def test_sample_correlation_explains_18_1_not_19():
    z = jax.random.normal(jax.random.PRNGKey(0), (500, 2))
    x = np.asarray(W.gaussian_from_normal(z, 0.9, 3.0, 0.0))
    r = np.corrcoef(x.T)[0, 1]
    assert r == pytest.approx(0.8953, abs=5e-4)
    k = float(W.four_views(z, 0.9, 3.0, 0.0)["kappa"][1])
    assert k == pytest.approx((1 + r) / (1 - r), rel=1e-3)
    assert k == pytest.approx(18.10, abs=0.01)
    ks = []
    for seed in range(1, 6):
        zs = jax.random.normal(jax.random.PRNGKey(seed), (500, 2))
        ks.append(float(W.four_views(zs, 0.9, 3.0, 0.0)["kappa"][1]))
    assert min(ks) < 18 and max(ks) > 20            # other draws scatter around 19


def test_minibatch_cannot_estimate_the_covariance(mnist_report):
    d, _ = mnist_report
    ms = (32, 64, 128, 256)
    st = WP.batch_covariance_study(d.x_train, ms, seeds=(0, 1, 2))
    assert st["full_rank"] == 647
    np.testing.assert_array_equal(st["rank"], np.array(ms)[:, None] - 1 + 0 * st["rank"])
    med = np.median(st["rel_error"], axis=1)
    assert med[0] > 0.85 and med[-1] > 0.3 and np.all(np.diff(med) < 0)
    assert np.all(st["var_error"] < st["rel_error"] / 3)     # per-feature variances are fine
    assert np.median(st["unseen"][0]) > 0.4 and np.all(st["unseen"][-1] > 0.03)
    assert np.all(st["spectra"][0, :, 31:] < 1e-20)       # rank m - 1: the rest is rounding
    with pytest.raises(ValueError, match="`ms`"):
        WP.batch_covariance_study(d.x_train, [1])


def test_zca_moves_data_least_on_three_seeds():
    for seed in (1, 2, 3):
        x = bnh.toydata.correlated_gaussian(jax.random.PRNGKey(seed), 500, corr=0.8,
                                            scale_ratio=3.0, mean=(2.0, 2.0))
        d_zca = float(W.whitening_distance(x, W.zca_whiten(x)))
        assert d_zca < float(W.whitening_distance(x, W.pca_whiten(x)))


def test_notebook_01_text():
    import pathlib

    import nbformat

    path = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "01_whitening.ipynb"
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert nb.cells[-1].source.startswith("## References")
    for name in ("Kessy", "Ioffe", "LeCun", "Bell", "Krizhevsky", "Goodfellow"):
        assert name in nb.cells[-1].source, name
    assert "Kessy, Lewin and Strimmer 2018" in text            # where ZCA's optimality is claimed
    assert "identity transform" in text and "represent anything" not in text
    assert "at one setting" not in text and "three settings" in text
    assert "18.10 rather than 19" in text
