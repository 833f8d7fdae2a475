"""bn_helpers.compat: the same numbers and the same float64 switch on every supported JAX version.

Also run by CI in the colab (jax 0.7.2) and floor (jax 0.4.30) dependency sets.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bn_helpers as bnh


def test_one_random_stream_on_every_jax_version():
    # jax >= 0.5's default threefry; jax 0.4.30's old default starts 0.188 instead
    first = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (3, 2)))[0]
    np.testing.assert_allclose(first, [1.6226422, 2.0252647], rtol=1e-6)
    np.testing.assert_allclose(float(jax.random.normal(jax.random.key(0), (3,))[0]), 1.6226422,
                               rtol=1e-6)


def test_enable_x64_switches_precision_inside_the_block_only():
    with bnh.enable_x64(True):
        assert jnp.zeros(2).dtype == jnp.float64
    assert jnp.zeros(2).dtype == jnp.float32
    with bnh.enable_x64(True), bnh.enable_x64(False):
        assert jnp.zeros(2).dtype == jnp.float32


def test_is_tracer():
    assert not bnh.compat.is_tracer(jnp.ones(2))
    seen = []
    jax.jit(lambda x: seen.append(bnh.compat.is_tracer(x)) or x)(jnp.ones(2))
    assert seen == [True]


def test_optimization_barrier_returns_its_input_on_this_jax():
    x = jnp.arange(6.0).reshape(2, 3)
    y = jax.jit(lambda a: bnh.compat.optimization_barrier(jax.nn.relu(a - 2.0)) >= 0)(x)
    assert y.shape == (2, 3) and bool(y.all())
    assert jnp.array_equal(jax.jit(bnh.compat.optimization_barrier)(x), x)


def test_optimization_barrier_under_vmap():
    x = jnp.arange(6.0).reshape(2, 3)
    assert jnp.array_equal(jax.vmap(bnh.compat.optimization_barrier)(x), x)


def test_flat_draws_give_jax_randoms_numbers_in_every_shape():
    key = jax.random.PRNGKey(3)
    for shape in [(), (5,), (4, 3), (2, 3, 4), (3, 3, 2, 4), (2, 1, 3, 2, 2)]:
        np.testing.assert_array_equal(bnh.compat.normal(key, shape), jax.random.normal(key, shape))
        np.testing.assert_array_equal(bnh.compat.uniform(key, shape, minval=-0.5, maxval=2.0),
                                      jax.random.uniform(key, shape, minval=-0.5, maxval=2.0))
    assert bnh.compat.normal(key, [2, np.int64(3)]).shape == (2, 3)


def test_flat_draws_under_jit_and_vmap():
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    shape = (3, 3, 2, 4)
    fast = jax.jit(jax.vmap(lambda k: bnh.compat.normal(k, shape)))(keys)
    ref = jax.jit(jax.vmap(lambda k: jax.random.normal(k, shape)))(keys)
    np.testing.assert_array_equal(fast, ref)
    assert not np.allclose(fast[0], fast[1])     # each key its own draw


def test_flat_draws_follow_the_float64_switch_as_jax_random_does():
    key = jax.random.PRNGKey(2)
    with bnh.enable_x64(True):
        x = bnh.compat.normal(key, (2, 3, 2))
        assert x.dtype == jnp.float64
        np.testing.assert_array_equal(x, jax.random.normal(key, (2, 3, 2)))
        assert bnh.compat.uniform(key, (3, 2)).dtype == jnp.float64
    assert bnh.compat.normal(key, (2, 3, 2)).dtype == jnp.float32


def test_flat_draws_reject_a_bad_shape_by_name():
    for bad in [(-1, 3), (2.0, 3), ("3",)]:
        with pytest.raises(ValueError, match="`shape` must hold non-negative ints"):
            bnh.compat.normal(jax.random.PRNGKey(0), bad)
        with pytest.raises(ValueError, match="`shape`"):
            bnh.compat.uniform(jax.random.PRNGKey(0), bad)
