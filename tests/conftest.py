"""Shared test settings: FAST notebooks, Keras on JAX, CPU only."""

import os

os.environ.setdefault("BN_FAST", "1")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
