"""Every notebook runs top to bottom in FAST mode with no error output, and every exercise check
in it (the solution copy) prints PASS.

Uses tools/run_notebooks.py, the runner CI also uses for the Colab and floor dependency sets.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import NOTEBOOKS, error_outputs, execute  # noqa: E402, F401


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path):
    assert os.environ.get("BN_FAST") == "1"
    # Cells tagged raises-exception demonstrate an error on purpose (the runner checks they do)
    nb, errors, _ = execute(path)
    assert not errors, f"{path.name}: error outputs {errors}"
    from test_student_copies import _check_cells, _check_names, verdict_lines

    found = verdict_lines(nb, _check_names())
    not_pass = [line for _, _, status, line in found if status != "PASS"]
    assert found and not not_pass, f"{path.name}: checks that did not PASS: {not_pass}"
    silent = set(_check_cells(nb)) - {i for i, *_ in found}
    assert not silent, f"{path.name}: check cells {sorted(silent)} printed no verdict"
    # Keep the executed copy for the HTML build and for looking at the figures
    out = ROOT / "test-artifacts" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
