"""apply_batch_norm against the real reference layers: Keras 3 (JAX backend) and PyTorch.

Momentum conversion: ours weighs the old value like Keras; PyTorch's
momentum weighs the new batch, so torch momentum p == ours 1 - p.
"""

import os

import numpy as np
import pytest

import bn_helpers as bnh

os.environ.setdefault("KERAS_BACKEND", "jax")


def batches(shape, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [(3.0 * rng.standard_normal(shape) + 2.0).astype(np.float32) for _ in range(n)]


def run_ours(xs, *, momentum, eps, feature_axis, unbiased_var):
    c = xs[0].shape[feature_axis]
    params, state = bnh.init_batch_norm(c)
    rng = np.random.default_rng(1)
    params = {"gamma": rng.uniform(0.5, 2, c).astype(np.float32),
              "beta": rng.standard_normal(c).astype(np.float32)}
    ys = []
    for xb in xs:
        y, state = bnh.apply_batch_norm(params, state, xb, train=True, momentum=momentum, eps=eps,
                                        feature_axis=feature_axis, unbiased_var=unbiased_var)
        ys.append(np.asarray(y))
    y_eval, _ = bnh.apply_batch_norm(params, state, xs[0], train=False, eps=eps,
                                     feature_axis=feature_axis)
    return params, state, ys, np.asarray(y_eval)


@pytest.mark.parametrize("shape, axis", [((16, 4), -1), ((4, 5, 5, 3), -1), ((4, 3, 5, 5), 1)])
def test_keras_batch_normalization(shape, axis):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"Keras runs on the {keras.backend.backend()} backend; these tests need jax "
                    "(set KERAS_BACKEND=jax before keras is imported)")
    xs = batches(shape)
    params, state, ys, y_eval = run_ours(xs, momentum=0.99, eps=1e-3, feature_axis=axis,
                                         unbiased_var=False)
    layer = keras.layers.BatchNormalization(axis=axis)  # defaults: momentum 0.99, epsilon 1e-3
    layer.build(shape)
    layer.gamma.assign(params["gamma"])
    layer.beta.assign(params["beta"])
    for xb, y in zip(xs, ys):
        out = np.asarray(layer(xb, training=True))
        np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), state["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), state["var"], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer(xs[0], training=False)), y_eval, rtol=1e-4,
                               atol=1e-4)


def test_keras_seed_snippet_dense_then_bn():
    """The seed notes' pattern: Dense then BatchNormalization, in training mode."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras is not on the jax backend")
    x = batches((32, 6))[0]
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization()])
    dense, bn = model.layers
    z = x @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    params, state = bnh.init_batch_norm(4)
    ours, state = bnh.apply_batch_norm(params, state, z, train=True, momentum=0.99, eps=1e-3,
                                       unbiased_var=False)
    np.testing.assert_allclose(np.asarray(model(x, training=True)), ours, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), state["var"], rtol=1e-5)


@pytest.mark.parametrize("shape, kind", [((16, 4), "1d"), ((4, 3, 5, 5), "2d")])
@pytest.mark.parametrize("torch_momentum", [0.1, 0.3])
def test_torch_batchnorm(shape, kind, torch_momentum, torch):
    xs = batches(shape, seed=2)
    params, state, ys, y_eval = run_ours(xs, momentum=1 - torch_momentum, eps=1e-5,
                                         feature_axis=1, unbiased_var=True)
    cls = torch.nn.BatchNorm1d if kind == "1d" else torch.nn.BatchNorm2d
    layer = cls(shape[1], momentum=torch_momentum, eps=1e-5)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(params["gamma"])))
        layer.bias.copy_(torch.from_numpy(np.asarray(params["beta"])))
    layer.train()
    for xb, y in zip(xs, ys):
        out = layer(torch.from_numpy(xb)).detach().numpy()
        np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.running_mean.numpy(), state["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var.numpy(), state["var"], rtol=1e-5, atol=1e-6)
    layer.eval()
    np.testing.assert_allclose(layer(torch.from_numpy(xs[0])).detach().numpy(), y_eval,
                               rtol=1e-4, atol=1e-4)


def test_torch_batch_of_one_raises_like_ours(torch):
    layer = torch.nn.BatchNorm1d(3).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(torch.ones(1, 3))
    params, state = bnh.init_batch_norm(3)
    with pytest.raises(ValueError, match="more than 1 value per feature"):
        bnh.apply_batch_norm(params, state, np.ones((1, 3)), train=True)


def test_flax_update_formula():
    """Flax linen/nnx BatchNorm (no Flax install): ra = momentum*ra + (1-momentum)*biased batch var."""
    x = np.array([[1, 2], [3, 6], [5, 10], [7, 14]], dtype=np.float64)
    params, state = bnh.init_batch_norm(2)
    _, s = bnh.apply_batch_norm(params, state, x, train=True, momentum=0.99, unbiased_var=False)
    flax_mean = 0.99 * 0.0 + 0.01 * x.mean(0)
    flax_var = 0.99 * 1.0 + 0.01 * np.maximum(0.0, (x**2).mean(0) - x.mean(0) ** 2)
    np.testing.assert_allclose(s["mean"], flax_mean, rtol=1e-6)
    np.testing.assert_allclose(s["var"], flax_var, rtol=1e-6)
