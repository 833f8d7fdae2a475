"""Notebook 06's claims, each from 3 seeds in a reduced but honest configuration, on the engine
(`bnh.MLP` + `bnh.fit_many`, as the notebook builds them): the Fig. 1 acceptance criterion, the
tuned (Xavier) baseline, the BN unit's widening spread, why the run can stop long before 50,000
steps, the learning-rate and init-std sweeps and the small-rate comparison, Fashion-MNIST and the
batch-size gap; plus the probe, the read-outs, the figures and the errors of
`bnh.paper_experiment`. The checks' mistake tables are in tests/test_checks_paper_experiment.py.

The Fig. 1 configuration: MNIST-5k (binarized), 784-100-100-100-10 sigmoid, N(0, 0.01²) init,
plain SGD lr 0.5, batch 60, BN before each sigmoid with momentum 0.99; 3 seeds of the plain
network, the BN network and the plain network with Xavier init, 3,000 steps. Seed medians
(calibrated once): acc at 1K BN 0.89 / no BN 0.10, at 3K 0.91 / 0.40; BN percentiles at step 0
(-1.02, +1.05); median range BN 0.3 / no BN 2.7.
"""

import jax
import numpy as np
import pytest

import bn_helpers as bnh

pe = bnh.paper_experiment
SEEDS = (0, 1, 2)
KEY = jax.random.PRNGKey(0)
SIZES = pe.SIZES
XAVIER_TOL = 0.03          # |BN - Xavier| test accuracy, seed medians, at 1,000 and 3,000 steps
TRAIN_SATURATED = 0.99     # training-digit accuracy at 8,000 steps
GAP_EPOCHS = 30            # the notebook's full setting
GAP_BATCH_SIZES = (30, 250)
SWEEP_STEPS = 1000         # the notebook's full setting


def net(bn=False, init="gaussian", init_std=0.01, sizes=SIZES):
    """The notebook's networks: sigmoid MLP, BN before each sigmoid with momentum 0.99."""
    return bnh.MLP(sizes, activation="sigmoid", bn="before" if bn else None, init=init,
                   init_std=init_std, momentum=0.99)


@pytest.fixture(scope="module")
def digits():
    return bnh.data.load_dataset("mnist5k", binarize=True)


@pytest.fixture(scope="module")
def fig1(digits):
    """name -> fit_many result of the notebook's three networks, 3 seeds, 3,000 steps."""
    nets = {"without BN": net(), "with BN": net(bn=True),
            "without BN, Xavier init": net(init="xavier")}
    return {name: bnh.fit_many(n, digits, key=KEY, lr=0.5, seeds=SEEDS, num_steps=3000,
                               eval_every=250, train_eval=1000, probe=pe.percentile_probe(n),
                               probe_inputs=digits.x_test[:1000])
            for name, n in nets.items()}


@pytest.fixture(scope="module")
def accept(fig1):
    return pe.acceptance(fig1["with BN"], fig1["without BN"])


def test_speed_criterion(accept):
    """BN ahead early by wide margins."""
    bn, plain = accept["bn"], accept["no_bn"]
    assert bn["acc_1k"] >= 0.80
    assert plain["acc_1k"] <= bn["acc_1k"] - 0.30
    assert bn["acc_3k"] - plain["acc_3k"] >= 0.25


def test_final_accuracy_criterion(accept):
    assert accept["bn"]["acc_final"] >= 0.88


def test_percentile_stability_criterion(accept):
    """Fig. 1(b, c) shape; BN's step-0 percentiles are the standard normal's because the probe
    normalizes with the probe batch's own statistics (training mode, N_BN^tr)."""
    assert accept["bn"]["median_range"] <= 0.6
    assert accept["no_bn"]["median_range"] >= 1.5
    assert abs(accept["bn"]["p15_0"] + 1.036) <= 0.15
    assert abs(accept["bn"]["p85_0"] - 1.036) <= 0.15
    # Without BN the tiny init collapses the distribution at step 0
    assert accept["no_bn"]["p85_0"] - accept["no_bn"]["p15_0"] < 0.1


def test_bn_curve_above_at_every_evaluation_after_the_first(accept):
    assert accept["above_after_first"]


def test_start_at_chance_and_finite(fig1):
    for r in fig1.values():
        np.testing.assert_allclose(r.test_acc[:, 0], 0.1, atol=0.05)
        assert np.all(np.isfinite(r.loss))
        assert not pe.diverged(r).any()


def test_probe_is_the_last_hidden_layers_sigmoid_input_in_training_mode(digits):
    n = net(bn=True)
    params, state = n.init_params(jax.random.PRNGKey(3))
    x = digits.x_test[:200]
    got = np.asarray(pe.percentile_probe(n)(params, state, x))
    _, _, hidden = n.apply(params, state, x, train=True, return_hidden=True)
    want = np.percentile(np.asarray(hidden[-1]["pre"]), [15, 50, 85], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert pe.percentile_probe(n) is pe.percentile_probe(net(bn=True))   # one compile per net


def test_xavier_baseline_trains_from_the_start(fig1):
    """A tuned plain network (Xavier init) is not stuck like the N(0, 0.01²) one: BN's big lead in
    Fig. 1 is a lead over a deliberately small init."""
    bn, xavier, small = fig1["with BN"], fig1["without BN, Xavier init"], fig1["without BN"]
    for step in (1000, 3000):
        a_bn, a_x, a_small = (pe.acc_at(r, step) for r in (bn, xavier, small))
        assert _med(a_x) >= 0.85, (step, a_x)
        assert abs(_med(a_bn) - _med(a_x)) <= XAVIER_TOL, (step, a_bn, a_x)
        assert _med(a_x) - _med(a_small) >= 0.3, (step, a_x, a_small)
    assert np.ptp(pe.acc_at(xavier, 3000)) <= 0.03


def test_bn_spread_widens_mostly_early(fig1):
    """Fig. 1(c) measured: the BN unit's 15-85 spread starts at the standard normal's 2.07 and
    widens, most of it within the first 1,000 steps; the median stays put."""
    r = fig1["with BN"]
    p = np.asarray(r.probe)[:, :, :, 0]
    spread = p[:, :, 2] - p[:, :, 0]
    i1k = int(np.flatnonzero(r.eval_steps == 1000)[0])
    assert abs(_med(spread[:, 0]) - 2.07) <= 0.15, spread[:, 0]
    assert _med(spread[:, -1] - spread[:, 0]) >= 0.8, spread[:, [0, -1]]
    share = (spread[:, i1k] - spread[:, 0]) / (spread[:, -1] - spread[:, 0])
    assert _med(share) >= 0.5, share
    assert _med(np.ptp(p[:, :, 1], axis=1)) <= 0.6


def _med(a):
    return float(np.median(a))


@pytest.fixture(scope="module")
def long_run(digits):
    """10,000 steps (the notebook's full FIG1_STEPS) of the BN network and the Xavier baseline."""
    return {name: bnh.fit_many(n, digits, key=KEY, lr=0.5, seeds=SEEDS, num_steps=10_000,
                               eval_every=1000, train_eval=1000)
            for name, n in (("with BN", net(bn=True)), ("Xavier", net(init="xavier")))}


def test_run_is_flat_after_8000_steps_because_training_digits_are_fitted(long_run):
    """Why the notebook stops at 10,000 steps: by 8,000 the networks classify (nearly) every
    training digit, the test accuracy has stopped rising, the loss still falls."""
    for r in long_run.values():
        i8k = int(np.flatnonzero(r.eval_steps == 8000)[0])
        i4k = int(np.flatnonzero(r.eval_steps == 4000)[0])
        assert _med(r.train_acc[:, i8k]) >= TRAIN_SATURATED, r.train_acc[:, i8k]
        assert abs(_med(r.test_acc[:, -1] - r.test_acc[:, i8k])) <= 0.01, r.test_acc[:, [i8k, -1]]
        assert abs(_med(r.test_acc[:, i8k] - r.test_acc[:, i4k])) <= 0.02
        loss = np.asarray(r.loss)
        assert _med(loss[:, 7500:8000].mean(1) / loss[:, -500:].mean(1)) >= 1.2


@pytest.fixture(scope="module")
def sweep(digits):
    """The notebook's combined sweep, reduced to 4 rates (init std 0.1) and 2 stds (rate 0.5)."""
    lrs = np.r_[pe_lrs(), 0.5, 0.5]
    stds = np.r_[np.full(4, 0.1), 0.001, 0.1]
    out = {}
    for name, bn in (("without BN", False), ("with BN", True)):
        r = bnh.fit_many(net(bn=bn, init_std=1.0), digits, key=KEY, lr=np.tile(lrs, 3),
                         init_scale=np.tile(stds, 3), seeds=np.repeat(SEEDS, len(lrs)),
                         num_steps=SWEEP_STEPS, eval_every=SWEEP_STEPS // 10, train_eval=500)
        out[name] = pe.split_configs(r, len(lrs))
    return out


def pe_lrs():
    """Rates 0.03, 4.17, 11.2 and 30 of the notebook's geomspace(0.03, 30, 8)."""
    return np.geomspace(0.03, 30, 8)[[0, 5, 6, 7]]


def test_learning_rate_claim(sweep):
    """BN trains every seed at every rate (up to 30); without BN every seed trains at 4.17 and
    none at 30 (diverged or stuck); BN reaches 0.85 at lr 30."""
    plain, bn = ([pe.status(r) for r in sweep[name][:4]] for name in ("without BN", "with BN"))
    assert all(s == ["trains"] * 3 for s in bn), bn
    assert plain[1] == ["trains"] * 3, plain
    assert all(s in ("diverged", "stuck") for s in plain[3]), plain
    assert _med(sweep["with BN"][3].test_acc[:, -1]) >= 0.85
    assert np.all(~np.isnan(pe.steps_to(sweep["with BN"][3], 0.85)))


def test_small_rate_bn_far_ahead(sweep):
    """At the sweep's smallest rate (0.03, init std 0.1, 1,000 steps) the plain sigmoid network
    is still slow to start: BN ends far ahead in every seed."""
    plain, bn = sweep["without BN"][0].test_acc[:, -1], sweep["with BN"][0].test_acc[:, -1]
    assert _med(bn) - _med(plain) >= 0.2, (bn, plain)
    assert np.all(bn > plain)
    assert _med(bn) >= 0.85


def test_bn_rescues_a_tiny_init(sweep):
    """Init std 0.001 (rate 0.5): without BN every seed is stuck, with BN every seed trains;
    at std 0.1 both train."""
    assert pe.status(sweep["without BN"][4]) == ["stuck"] * 3
    assert pe.status(sweep["with BN"][4]) == ["trains"] * 3
    assert _med(sweep["with BN"][4].test_acc[:, -1]) >= 0.85
    assert pe.status(sweep["without BN"][5]) == ["trains"] * 3


def test_fashion_bn_ahead_early_but_ends_lower():
    """Fashion-MNIST, the notebook's configuration (10,000 steps): BN is far ahead after 1,000
    steps and ends lower on the test images while fitting the training images better."""
    fashion = bnh.data.load_dataset("fashion10k")
    plain, bn = (bnh.fit_many(net(bn=b), fashion, key=KEY, lr=0.5, seeds=SEEDS, num_steps=10_000,
                              eval_every=1000) for b in (False, True))
    assert np.all(pe.acc_at(bn, 1000) > pe.acc_at(plain, 1000) + 0.2)
    assert _med(bn.test_acc[:, -1]) < _med(plain.test_acc[:, -1]), (bn.test_acc[:, -1],
                                                                    plain.test_acc[:, -1])
    assert _med(bn.train_acc[:, -1]) > _med(plain.train_acc[:, -1])


@pytest.mark.parametrize("batch_size", GAP_BATCH_SIZES)
def test_batch_size_bn_has_the_larger_gap(digits, batch_size):
    """The regularization claim, measured: after GAP_EPOCHS passes at init std 0.1 BN has the larger
    train/test gap (seed medians). Where both networks have fitted their training digits (batch 30,
    3,990 steps) BN's test accuracy is the lower one in every seed; where BN's is higher (batch
    250, 480 steps) the plain network has not finished fitting (full run, batch 10 and 60: as 30)."""
    steps = GAP_EPOCHS * (len(digits.x_train) // batch_size)
    steps -= steps % 10
    plain, bn = (bnh.fit_many(net(bn=b, init_std=0.1), digits, key=KEY, lr=0.5, seeds=SEEDS,
                              batch_size=batch_size, num_steps=steps, eval_every=steps // 10)
                 for b in (False, True))
    train = {n: np.asarray(x.train_acc[:, -1]) for n, x in (("plain", plain), ("bn", bn))}
    test = {n: np.asarray(x.test_acc[:, -1]) for n, x in (("plain", plain), ("bn", bn))}
    gap = {n: train[n] - test[n] for n in train}
    assert _med(gap["bn"]) > _med(gap["plain"]), gap
    assert _med(train["bn"]) >= 0.98
    if _med(train["plain"]) >= 0.98:      # both fitted
        assert np.all(test["bn"] < test["plain"]), test
    else:
        assert batch_size == 250 and _med(train["plain"]) <= 0.9
        assert _med(test["bn"]) > _med(test["plain"])


def test_prediction_check_on_a_real_run(fig1, capsys):
    runs = {name: fig1[name] for name in ("with BN", "without BN")}
    measured = {name: _med(r.test_acc[:, -1]) for name, r in runs.items()}
    assert bnh.checks.check_prediction(measured, runs)
    v = bnh.checks.check_prediction({"with BN": 0.1, "without BN": 0.1}, runs)
    assert not v and v.status == "FAIL"
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_take_and_split_configs(fig1):
    r = fig1["with BN"]
    one = pe.take(r, [2])
    np.testing.assert_array_equal(one.test_acc, np.asarray(r.test_acc)[[2]])
    np.testing.assert_array_equal(one.probe, np.asarray(r.probe)[[2]])
    assert one.eval_steps is r.eval_steps
    assert np.asarray(pe.take(r, np.array([True, False, True])).loss).shape[0] == 2
    parts = pe.split_configs(r, 3)
    assert len(parts) == 3 and np.asarray(parts[1].test_acc).shape[0] == 1
    np.testing.assert_array_equal(parts[1].test_acc, np.asarray(r.test_acc)[[1]])


def test_bad_inputs_raise_errors_naming_the_argument(fig1):
    r = fig1["with BN"]
    with pytest.raises(ValueError, match="`step`"):
        pe.acc_at(r, 123)
    with pytest.raises(ValueError, match="`target`"):
        pe.steps_to(r, 1.5)
    with pytest.raises(ValueError, match="`num_configs`"):
        pe.split_configs(r, 2)
    with pytest.raises(ValueError, match="`index`"):
        pe.take(r, np.zeros(3, bool))
    with pytest.raises(ValueError, match="one value per seed"):
        pe.compare([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="`rows`"):
        pe.markdown_table([])
    with pytest.raises(ValueError, match="`net`"):
        pe.percentile_probe(bnh.MLP((4, 3)))
    with pytest.raises(ValueError, match="evaluation steps"):
        pe.acceptance(r, pe.take(r, [0])._replace(eval_steps=r.eval_steps[:3]))
    with pytest.raises(ValueError, match="`sweep`"):
        bnh.figures.paper_experiment.lr_slider({"with BN": [r]}, [0.1, 1.0], init_std=0.1)


def test_reference_tables_are_complete():
    assert pe.PAPER_FIG1A[50000][0] > pe.PAPER_FIG1A[50000][1]
    assert {r["model"] for r in pe.IMAGENET} >= {"Inception", "BN-x5", "BN-x30"}
    assert len(pe.REIMPLEMENTATIONS) == 3


def test_compare_and_bands():
    text = pe.compare([0.9, 0.91, 0.92], [0.8, 0.85, 0.95])
    assert "with BN 0.910 (0.900\u20130.920)" in text and "higher by 0.060" in text
    assert "higher in 2 of 3 seeds" in text and "overlap" in text and "do not" not in text
    assert "do not overlap" in pe.compare([0.9, 0.91], [0.1, 0.2])
    med, lo, hi = pe.band([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    np.testing.assert_allclose([med, lo, hi], [[2.0, 1.0], [1.0, 0.0], [3.0, 2.0]])


def _shorten(r, n):
    """The first n evaluations of a result (as a short FAST run would give)."""
    return r._replace(eval_steps=r.eval_steps[:n], test_acc=np.asarray(r.test_acc)[:, :n],
                      train_acc=np.asarray(r.train_acc)[:, :n], probe=np.asarray(r.probe)[:, :n],
                      loss=np.asarray(r.loss)[:, :int(r.eval_steps[n - 1])])


def test_every_figure_axis_ends_at_the_last_step_run(fig1):
    """Issue 17: a short (FAST) run gets a short axis, never the paper's 50,000 steps."""
    import matplotlib.pyplot as plt

    figs = bnh.figures.paper_experiment
    for runs in (fig1, {k: _shorten(r, 5) for k, r in fig1.items()}):
        last = int(runs["with BN"].eval_steps[-1])
        for fig, axes in (figs.plot_fig1(runs, seeds=SEEDS), figs.plot_train_test(runs, window=250),
                          figs.plot_curves(runs, title="t")):
            for ax in np.atleast_1d(axes):
                assert ax.get_xlim() == (0, last), (ax.get_title(), ax.get_xlim())
            plt.close(fig)


def test_sliders_build_and_update(fig1):
    figs = bnh.figures.paper_experiment
    sweep = {name: [fig1[name], fig1[name]] for name in ("without BN", "with BN")}
    live = figs.lr_slider(sweep, [0.1, 1.0], init_std=0.1)
    assert "nearest computed learning rate: 1" in live.update(lr=0.9)
    live = figs.init_std_slider(sweep, [0.01, 0.1], lr=0.5, seeds=SEEDS)
    assert "nearest computed init std: 0.01" in live.update(init_std=0.012)


def test_notebook_has_references_and_no_conditional_prose():
    import nbformat

    from pathlib import Path

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "06_paper_experiment.ipynb",
                       as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert nb.cells[-1].source.startswith("## References")
    for cited in ("Ioffe", "Glorot", "Santurkar", "Bjorck", "Xiao"):
        assert cited in nb.cells[-1].source
    for banned in ("if the count above", "card", "notebook 07", "slowly and smoothly", "bnh.paper."):
        assert banned not in text.lower(), banned
    # The network and the training call are visible code, on the engine
    assert "bnh.paper." not in code and "bnh.MLP(" in code and "bnh.fit_many(" in code
