"""The controls of notebooks 00, 02, 04 and 05 (every kind of control) moved in Notebook 7, in a
real browser (the classic notebook moves every control of every notebook).

The cases and the driver live in browser_cases.py; conftest.py starts the server.
"""

import pytest
from browser_cases import (  # noqa: F401
    notebook_pages, test_arrow_keys_move_the_slider, test_control_updates_figure, test_drag_follows_the_hand,
    test_saved_notebook_reopens_without_widget_errors)

pytestmark = pytest.mark.browser
FRONT_END = "notebook7"
