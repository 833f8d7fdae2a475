"""Shared test settings: FAST notebooks, Keras on JAX, CPU only."""

import os

import pytest

os.environ.setdefault("BN_FAST", "1")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture
def torch():
    """The torch module, or a visible skip where PyTorch is not installed."""
    try:
        import torch as torch_module
    except ImportError:
        pytest.skip("PyTorch is not installed: the PyTorch comparisons were NOT run "
                    "(.ci/run installs torch==2.13.0 CPU; locally: pip install torch)")
    return torch_module
