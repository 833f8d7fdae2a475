"""`python dev.py student` writes student copies that run: valid Python in every code cell, the
copy equals its notebook up to the first exercise, and no outputs. That Run All goes through
(BN_FAST=1) with every check printing FAIL is asserted by tests/test_notebooks.py, which runs each
student copy in the same kernel as its notebook (the shared cells once).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import student_copy  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def _check_names() -> set[str]:
    import bn_helpers.checks as pkg

    names = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            names |= {fn.check_name for fn in vars(module).values()
                      if callable(fn) and hasattr(fn, "check_name")}
    return names


def verdict_lines(nb, names):
    """(cell index, check name, status, line) of every printed verdict line."""
    pattern = re.compile(r"^(?P<name>%s) \| .*? \| (?P<status>PASS|CLOSE|FAIL)( \| |$)"
                         % "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                for line in out.get("text", "").splitlines():
                    m = pattern.match(line)
                    if m:
                        found.append((i, m["name"], m["status"], line))
    return found


def _check_cells(nb):
    return sorted({e.cell for e in grade.exercises(nb)})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_copy_is_valid_python(path):
    nb = student_copy.student_notebook(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert student_copy.BEGIN not in cell.source and student_copy.END not in cell.source
            try:
                compile(student_copy.python_source(cell.source), f"{path.name} cell {i}", "exec")
            except SyntaxError as err:
                pytest.fail(f"{path.name} cell {i} of the student copy: {err}")
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_marker_inside_an_expression_names_the_cell():
    src = 'prediction = {\n    ### BEGIN SOLUTION\n    "a": 1,\n    ### END SOLUTION\n}'
    with pytest.raises(ValueError, match=r"06_x.ipynb cell 3: .*inside a dict, list or expression"):
        student_copy.strip_solutions(src, "06_x.ipynb cell 3")


def test_top_level_value_answers_become_none():
    src = "x = 2\n### BEGIN SOLUTION\nanswer = {'A': 1}\nk: int = 3\n### END SOLUTION\ncheck(answer)"
    out = student_copy.strip_solutions(src)
    assert "answer = None" in out and "k = None" in out and "NotImplementedError" not in out
    ns = {"check": lambda a: a}
    exec(out, ns)
    assert ns["answer"] is None
    stmt = "### BEGIN SOLUTION\nfor i in range(3):\n    pass\n### END SOLUTION"
    assert "raise NotImplementedError" in student_copy.strip_solutions(stmt)


def test_magics_are_neutralized():
    src = "%pip install x\n  !ls\nx = 1"
    assert student_copy.python_source(src).splitlines()[0].startswith("pass  # %pip")
    compile(student_copy.python_source("if True:\n    %time f()\n"), "c", "exec")


def test_dev_student_writes_every_notebook(tmp_path):
    assert student_copy.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_copies_share_every_cell_before_the_first_exercise(path):
    """The shared part runs once in tests/test_notebooks.py: it must end at the first exercise."""
    nb, copy = nbformat.read(path, as_version=4), student_copy.student_notebook(path)
    marked = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(m in c.source for m in (student_copy.BEGIN, student_copy.BEGIN_HIDDEN))]
    differ = [i for i, (a, b) in enumerate(zip(nb.cells, copy.cells)) if a.source != b.source]
    assert len(copy.cells) == len(nb.cells) and marked and differ[0] == marked[0]
