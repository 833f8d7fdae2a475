"""The few JAX and IPython APIs that differ across the versions the collection supports.

Supported: the floors in pyproject.toml (jax 0.4.30) up to today's releases, with Google Colab's
runtime (jax 0.7.2, ipywidgets 7.7.1, IPython 7.34) in between. Every module and notebook calls
these wrappers instead of the version-specific API, so a change of JAX touches one file.

Used in notebooks/04_bn_math.ipynb (float64 checks) and by the helper modules.
"""

from __future__ import annotations

import jax

__all__ = ["enable_x64", "is_tracer"]


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
