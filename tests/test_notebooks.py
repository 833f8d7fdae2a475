"""Every notebook runs top to bottom in FAST mode with no error output, and every exercise check
in it (the solution copy) prints PASS; its student copy (`python dev.py student`) runs top to
bottom too, and every check in it prints FAIL.

The two copies differ only from their first exercise cell on (the exercises come last), so one
kernel runs the shared cells once, then the student copy's last cells, then the solution's
(tools/run_notebooks.py, `execute_with_student_copy`; CI runs the floor dependency set's
notebooks with the same runner).
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import NOTEBOOKS, error_outputs, execute_with_student_copy  # noqa: E402, F401
from student_copy import student_notebook  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_and_its_student_copy_run_in_fast_mode(path):
    assert os.environ.get("BN_FAST") == "1"
    from test_student_copies import _check_cells, _check_names, verdict_lines

    # Cells tagged raises-exception demonstrate an error on purpose (the runner checks they do)
    (nb, errors), (student, student_errors) = execute_with_student_copy(
        path, student_notebook(path))
    for copy, want, executed, errs in (("notebook", "PASS", nb, errors),
                                       ("student copy", "FAIL", student, student_errors)):
        assert not errs, f"{path.name} {copy}: error outputs {errs}"
        found = verdict_lines(executed, _check_names())
        wrong = [line for _, _, status, line in found if status != want]
        assert found and not wrong, f"{path.name} {copy}: checks that did not {want}: {wrong}"
        silent = set(_check_cells(executed)) - {i for i, *_ in found}
        assert not silent, f"{path.name} {copy}: check cells {sorted(silent)} printed no verdict"
    # Keep the executed copy for the HTML build and for looking at the figures
    out = ROOT / "test-artifacts" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
