"""The few JAX and IPython APIs that differ across the versions the collection supports.

Supported: the floors in pyproject.toml (jax 0.4.30) up to today's releases, with Google Colab's
runtime (jax 0.7.2, ipywidgets 7.7.1, IPython 7.34) in between. Every module and notebook calls
these wrappers instead of the version-specific API, so a change of JAX touches one file.

Used in notebooks/04_bn_math.ipynb (float64 checks) and by the helper modules.
"""

from __future__ import annotations

import math
import operator

import jax

__all__ = ["enable_x64", "is_tracer", "normal", "optimization_barrier", "same_random_numbers",
           "uniform"]


def same_random_numbers() -> None:
    """Make `jax.random` draw the same numbers on every supported JAX version.

    jax 0.5 made the "partitionable" threefry the default; before it, the same key gave other
    numbers (jax 0.4.30: N(0, 1) from PRNGKey(0) starts 0.188, not 1.623), so a notebook's
    printed results would differ on the oldest supported version. Called once when bn_helpers
    is imported; changes nothing on jax >= 0.5.
    """
    try:
        if not getattr(jax.config, "jax_threefry_partitionable", True):
            jax.config.update("jax_threefry_partitionable", True)
    except (AttributeError, KeyError, ValueError):  # the option is gone where it is the only way
        pass


def enable_x64(new_val: bool = True):
    """Context manager: compute in float64 inside the `with` block (float32 outside).

    `jax.enable_x64` since jax 0.8; `jax.experimental.enable_x64` before.
    Used in notebooks/04_bn_math.ipynb.
    """
    fn = getattr(jax, "enable_x64", None)
    if fn is None:
        from jax.experimental import enable_x64 as fn
    return fn(bool(new_val))


def is_tracer(x) -> bool:
    """True when `x` is an abstract value inside `jit`, `grad` or `vmap` (it holds no numbers)."""
    return isinstance(x, jax.core.Tracer)


def optimization_barrier(x):
    """`x` unchanged, but XLA may not fold or move computations across it.

    `jax.lax.optimization_barrier` (public from jax 0.4.31, with a batching rule for `vmap`);
    on older versions `x` itself: the same numbers, only compiling may take longer.
    Used in notebooks/07_why_bn_works.ipynb.
    """
    fn = getattr(jax.lax, "optimization_barrier", None)
    return x if fn is None else fn(x)


# XLA:CPU takes 3-5 s to compile one partitionable-threefry draw of a 4-D shape (a conv kernel,
# a batch of feature maps) and 0.3 s for the same draw as a flat vector; every training program
# draws its initial weights, so the helpers' models draw flat and reshape (benchmarks/compiles.py)


def _shape(shape) -> tuple:
    try:
        dims = tuple(operator.index(d) for d in shape)
    except TypeError:
        dims = (-1,)
    if any(d < 0 for d in dims):
        raise ValueError(f"`shape` must hold non-negative ints, got {tuple(shape)!r}")
    return dims


def normal(key, shape, dtype=float):
    """`jax.random.normal(key, shape, dtype)`: the same numbers, drawn flat (fast to compile).

    Used by the models (bn_helpers/mlp.py, cnn.py, rnn.py) and the noise of notebooks/07_why_bn_works.ipynb.
    """
    shape = _shape(shape)
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def uniform(key, shape, dtype=float, minval=0.0, maxval=1.0):
    """`jax.random.uniform(key, shape, dtype, minval, maxval)`: the same numbers, drawn flat."""
    shape = _shape(shape)
    return jax.random.uniform(key, (math.prod(shape),), dtype, minval, maxval).reshape(shape)
