"""Environment check for notebook 00: versions, devices, shipped data, where we run.

Used in notebooks/00_start_here.ipynb.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

__all__ = ["report", "in_colab", "fast_mode", "TESTED", "version_status"]

_PACKAGES = ("jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "ipython", "bn-helpers")

# The versions CI runs every notebook on: the declared floors (ci/floor-constraints.txt), Colab's
# runtime (ci/colab-constraints.txt) and the newest releases on 2026-12-01 (`pip install -e .`).
# tests/test_packaging.py checks the lower ends against pyproject.toml and the floor file.
TESTED = {
    "jax": ("0.4.30", "0.10.2"),
    "jaxlib": ("0.4.30", "0.10.2"),
    "numpy": ("1.26.0", "2.4.6"),
    "matplotlib": ("3.8.0", "3.11.2"),
    "ipywidgets": ("7.7.1", "8.1.9"),
    "ipython": ("7.34.0", "9.18.1"),
}


def _parse(version: str) -> tuple:
    """(major, minor, patch) of a version string such as '0.4.30' or '2.1.3rc1'."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def version_status(name: str, version: str, *, colab: bool = False) -> str:
    """'' when `version` of `name` lies in the tested range, else a plain sentence with the fix.

    Used by `report` in notebooks/00_start_here.ipynb.
    """
    if name not in TESTED or version == "not installed":
        return "" if version != "not installed" else f"{name} is missing: pip install {name}"
    low, high = TESTED[name]
    pip = "%pip" if colab else "pip"
    if _parse(version) < _parse(low):
        return (f"{name} {version} is older than the oldest tested ({low}); fix: "
                f"{pip} install --upgrade \"{name}>={low}\"")
    if _parse(version)[:2] > _parse(high)[:2]:
        return (f"{name} {version} is newer than the newest tested ({high}); if a cell fails, "
                f"{pip} install \"{name}=={high}\"")
    return ""


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
    colab = in_colab()
    problems = [m for name in TESTED if (m := version_status(name, info.get(name, ""), colab=colab))]
    info["where"] = "Google Colab" if colab else "local Jupyter"
    info["fast mode"] = fast_mode()
    ds = data.load_dataset("mnist5k")
    info["shipped data"] = f"mnist5k: {len(ds.x_train)} train / {len(ds.x_test)} test images"
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:>{width}} : {value}")
    if problems:
        print("\nOutside the tested versions:\n  " + "\n  ".join(problems))
    else:
        ranges = ", ".join(f"{k} {a}-{b}" for k, (a, b) in TESTED.items())
        print(f"\nAll versions lie in the tested range ({ranges}).")
    info["problems"] = problems
    return info
