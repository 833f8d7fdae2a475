"""Every control of every notebook moved in the classic Notebook 6.5, in a real browser.

Server and kernel run in .venv-colab: ipywidgets 7.7.1, widgetsnbextension 3.6.10, IPython 7.34,
jax 0.7.2 (Colab's versions; the closest open front end to Colab's widget support), with
bn_helpers from the wheel installed there with --no-deps, as a notebook's Colab setup cell does.
Run All of every notebook here (outside the checkout, no error in any cell) is the collection's
proof on Colab's runtime.

The cases and the driver live in browser_cases.py; conftest.py starts the server.
"""

import os
import subprocess
from pathlib import Path

import pytest
from browser_cases import (  # noqa: F401
    notebook_pages, test_arrow_keys_move_the_slider, test_control_updates_figure,
    test_drag_follows_the_hand)

pytestmark = pytest.mark.browser
FRONT_END = "classic"


def test_colab_kernel_imports_the_installed_wheel(tmp_path):
    """The kernel's bn_helpers is the wheel in .venv-colab's site-packages, not the checkout."""
    from conftest import FRONT_ENDS, _missing

    front = next(f for f in FRONT_ENDS if f.key == FRONT_END)
    if not front.python().exists():
        _missing(f"{front.python()} is missing (python3 tools/compat_envs.py setup colab)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(front.python()), "-c", "import bn_helpers; print(bn_helpers.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    path = Path(where.strip()).resolve()
    checkout = Path(__file__).resolve().parents[2] / "bn_helpers"
    assert "site-packages" in path.parts and not path.is_relative_to(checkout), path
