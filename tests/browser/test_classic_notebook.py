"""Every control of every notebook moved in the classic Notebook 6.5, in a real browser.

Server and kernel run in .venv-colab: ipywidgets 7.7.1, widgetsnbextension 3.6.10, IPython 7.34,
jax 0.7.2 (Colab's versions; the closest open front end to Colab's widget support).

The cases and the driver live in browser_cases.py; conftest.py starts the server.
"""

import pytest
from browser_cases import (  # noqa: F401
    notebook_pages, test_arrow_keys_move_the_slider, test_control_updates_figure,
    test_drag_follows_the_hand)

pytestmark = pytest.mark.browser
FRONT_END = "classic"
