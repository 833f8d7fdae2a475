"""Shared test settings: FAST notebooks, headless matplotlib, Keras on JAX, no network."""

import os

os.environ.setdefault("BN_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
