"""The grader (tools/grade.py, `python dev.py grade`): full marks for the solutions, zero for the
blank student copy, the right partial score for seeded mistakes, and a report for a notebook that
crashes, loops, deletes its folder or kills its kernel.

Notebooks 00 and 04 are the fastest with exercises; each grading runs one notebook in FAST mode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import student_copy  # noqa: E402

NB00 = ROOT / "notebooks" / "00_start_here.ipynb"
NB04 = ROOT / "notebooks" / "04_bn_math.ipynb"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# ---- static: the exercises the grader finds ----

@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_exercises_the_grader_finds(path):
    import bn_helpers as bnh

    exs = grade.exercises(nbformat.read(path, as_version=4))
    assert exs, f"{path.name}: no bnh.checks.check_* call found"
    assert len({e.id for e in exs}) == len(exs)
    for e in exs:
        assert callable(getattr(bnh.checks, e.check)), e.check
        assert e.points > 0


def test_points_table_names_only_existing_checks():
    import bn_helpers as bnh

    for name in grade.POINTS:
        assert callable(getattr(bnh.checks, name, None)), f"POINTS lists unknown check {name}"


def test_every_exercise_of_the_collection_has_its_points():
    # A new exercise gets a deliberate weight in POINTS, not the silent default
    import re

    used = set()
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                used |= set(re.findall(r"\bchecks\.(check_\w+)\(", cell.source))
    assert used, "no exercise checks found in the notebooks"
    missing = used - set(grade.POINTS)
    assert not missing, f"give these checks points in tools/grade.py: {sorted(missing)}"


def test_check_calls_are_found_in_any_statement():
    src = ("%matplotlib inline\nv = bnh.checks.check_a(f)\nfor k in ks:\n"
           "    print(bnh.checks.check_b(g, k))\nbnh.checks.rel_error(a, b)\n")
    assert [(n, c) for n, c, _ in grade.check_calls(src)] == [
        ("check_a", "bnh.checks.check_a(f)"), ("check_b", "bnh.checks.check_b(g, k)")]


# ---- helpers to build submissions ----

def _replace_region(nb, check: str, new_body: str):
    """Replace the solution region of the cell that calls `check` with new_body (same indent)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and f"checks.{check}(" in cell.source:
            lines, out, inside = cell.source.splitlines(), [], False
            for line in lines:
                if line.strip() == student_copy.BEGIN:
                    inside = True
                    indent = line[: len(line) - len(line.lstrip())]
                    out += [indent + b for b in new_body.splitlines()]
                elif line.strip() == student_copy.END:
                    inside = False
                elif not inside:
                    out.append(line)
            cell.source = "\n".join(out)
            return
    raise AssertionError(f"no cell calls {check}")


def _drop_check_call(nb, check: str):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(ln for ln in cell.source.splitlines()
                                    if f"checks.{check}(" not in ln)


def _by_id(report):
    return {r.exercise: r for r in report.results}


# ---- executing submissions ----

@pytest.mark.slow
def test_solution_copy_gets_full_marks(tmp_path):
    sub = tmp_path / NB00.name
    sub.write_bytes(NB00.read_bytes())
    report = grade.grade(sub)
    assert report.original == str(NB00)
    assert report.results and report.errors == [], report.errors
    lines = [r.line for r in report.results]
    assert all(r.status == "PASS" for r in report.results), lines
    assert report.total == report.max_points > 0


@pytest.mark.slow
def test_blank_student_copy_gets_zero(tmp_path):
    sub = tmp_path / NB00.name
    nbformat.write(student_copy.student_notebook(NB00), sub)
    report = grade.grade(sub)
    assert report.results and report.total == 0 and report.max_points > 0
    for r in report.results:
        assert r.status == "FAIL" and "not implemented yet" in r.line, r.line


@pytest.mark.slow
def test_seeded_mistakes_get_the_right_partial_score(tmp_path):
    """Notebook 04: eps forgotten in the forward pass, the conv version normalizing over the batch
    axis only (a wrong axis), the backward pass right but its check call deleted."""
    nb = nbformat.read(NB04, as_version=4)
    _replace_region(nb, "check_batch_norm_forward",
                    "mean = jnp.mean(x, axis=0)\nvar = jnp.mean((x - mean) ** 2, axis=0)\n"
                    "return gamma * (x - mean) / jnp.sqrt(var) + beta")
    _replace_region(nb, "check_batch_norm_conv",
                    "shape = [1] * x.ndim\nshape[channel_axis] = -1\n"
                    "mean = jnp.mean(x, axis=0, keepdims=True)\n"
                    "var = jnp.mean((x - mean) ** 2, axis=0, keepdims=True)\n"
                    "return (jnp.reshape(gamma, shape) * (x - mean) / jnp.sqrt(var + eps)\n"
                    "        + jnp.reshape(beta, shape))")
    _drop_check_call(nb, "check_batch_norm_backward")
    sub = tmp_path / NB04.name
    nbformat.write(nb, sub)
    report = grade.grade(sub)
    got = _by_id(report)
    assert set(got) == {"check_batch_norm_forward", "check_batch_norm_backward",
                        "check_batch_norm_conv"}
    assert got["check_batch_norm_forward"].status == "FAIL", got["check_batch_norm_forward"].line
    assert got["check_batch_norm_conv"].status == "FAIL", got["check_batch_norm_conv"].line
    assert got["check_batch_norm_backward"].status == "PASS", got["check_batch_norm_backward"].line
    assert report.total == grade.points_for("check_batch_norm_backward")
    assert report.total < report.max_points


TINY_SOLUTION = '''def my_batch_norm(x, gamma, beta, eps=1e-5):
    ### BEGIN SOLUTION
    mean = jnp.mean(x, axis=0)
    var = jnp.mean((x - mean) ** 2, axis=0)
    return gamma * (x - mean) / jnp.sqrt(var + eps) + beta
    ### END SOLUTION'''
TINY_CHECK = "bnh.checks.check_batch_norm_forward(my_batch_norm)"


def _tiny(folder: Path, *cells) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    path = folder / "99_tiny.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_crash_loop_and_deleted_files_still_get_a_report(tmp_path, capsys):
    """One exception cell, one endless loop, one cell deleting its folder's files, a deleted and a
    tampered check call: the report names each, the exercise is still graded from the original,
    the submission file is untouched and the CSV/JSON are written."""
    originals = tmp_path / "orig"
    _tiny(originals, "import jax.numpy as jnp\nimport bn_helpers as bnh", TINY_SOLUTION + "\n\n\n"
          + TINY_CHECK)
    sub = _tiny(tmp_path / "sub", "import jax.numpy as jnp\nimport bn_helpers as bnh", "1 / 0",
                "while True:\n    pass",
                "import os\nfor p in os.listdir('.'):\n    os.remove(p)",
                TINY_SOLUTION,
                "bnh.checks.check_batch_norm_forward = lambda fn: print('PASS')")
    before = sub.read_bytes()
    out = tmp_path / "grades"
    assert grade.main([str(sub), "--originals", str(originals), "--timeout", "10",
                       "--out", str(out)]) == 0
    assert sub.read_bytes() == before
    printed = capsys.readouterr().out
    assert "99_tiny.ipynb  check_batch_norm_forward" in printed and "TOTAL" in printed
    data = json.loads((out / "grades.json").read_text())
    (rep,) = data
    errors = "\n".join(rep["errors"])
    assert "cell 1: ZeroDivisionError" in errors
    assert "cell 2: ran longer than 10 s" in errors
    (ex,) = rep["exercises"]
    assert ex["status"] == "PASS" and rep["total"] == rep["max_points"] == 1.0
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("submission,exercise,check,points,earned,verdict")
    assert len(rows) == 2 and ",PASS," in rows[1]


@pytest.mark.slow
def test_a_dead_kernel_and_missing_function_get_zero_with_a_report(tmp_path):
    originals = tmp_path / "orig"
    _tiny(originals, "import jax.numpy as jnp\nimport bn_helpers as bnh", TINY_SOLUTION + "\n\n\n"
          + TINY_CHECK)
    sub = _tiny(tmp_path / "sub", "import jax.numpy as jnp\nimport bn_helpers as bnh")
    report = grade.grade(sub, originals=originals, timeout=60)
    (r,) = report.results
    assert r.status == "FAIL" and r.earned == 0 and "NameError" in r.line, r.line
    dead = _tiny(tmp_path / "dead", "import os\nos._exit(1)")
    report = grade.grade(dead, originals=originals, timeout=60)
    (r,) = report.results
    assert r.status == "FAIL" and r.earned == 0
    assert any("kernel" in e.lower() for e in report.errors + report.notes), report


def test_list_prints_every_notebook_with_its_points(capsys):
    assert grade.main(["--list"]) == 0
    out = capsys.readouterr().out
    for path in NOTEBOOKS:
        assert f"{path.name}: " in out
    assert "check_batch_norm_backward" in out
