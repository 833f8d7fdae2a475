"""Every control of every notebook moved in Notebook 7, in a real browser.

The cases and the driver live in browser_cases.py; conftest.py starts the server.
"""

import pytest
from browser_cases import notebook_pages, test_control_updates_figure  # noqa: F401

pytestmark = pytest.mark.browser
FRONT_END = "notebook7"
