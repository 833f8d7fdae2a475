"""Environment check for notebook 00: versions, devices, shipped data, where we run.

Used in notebooks/00_start_here.ipynb.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

__all__ = ["report", "in_colab", "fast_mode"]

_PACKAGES = ("jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "bn-helpers")


def in_colab() -> bool:
    """True inside Google Colab.

    Used in the setup cell of every notebook.
    """
    return "google.colab" in sys.modules


def fast_mode() -> bool:
    """True when BN_FAST=1 is set (the tests' setting): notebooks shrink their work.

    Used near the top of every notebook.
    """
    import os

    value = os.environ.get("BN_FAST", "0")
    if value not in ("0", "1", ""):
        raise ValueError(f"BN_FAST must be 0 or 1, got {value!r}")
    return value == "1"


def report() -> dict:
    """Print and return what the collection runs on: Python, packages, JAX devices, data.

    Used in notebooks/00_start_here.ipynb.
    """
    import jax

    from . import data

    info = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in _PACKAGES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    info["jax devices"] = ", ".join(str(d) for d in jax.devices())
    info["where"] = "Google Colab" if in_colab() else "local Jupyter"
    info["fast mode"] = fast_mode()
    ds = data.load_dataset("mnist5k")
    info["shipped data"] = f"mnist5k: {len(ds.x_train)} train / {len(ds.x_test)} test images"
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:>{width}} : {value}")
    return info
