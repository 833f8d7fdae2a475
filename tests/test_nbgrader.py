"""nbgrader (the real package) generates and autogrades the collection built by
tools/nbgrader_build.py: the solutions get full marks in every notebook, the released (blank)
copy zero, and notebook 04 with seeded mistakes the points of its one right exercise.

Autograding executes a notebook per submission. By default the solutions of two notebooks are
autograded (00, the first a student meets, and 04, the one with the most checks); every
notebook's grading metadata is still checked statically, and every solution copy is executed
with all its checks PASSing by tests/test_notebooks.py. BN_NBGRADER_ALL=1 autogrades all of them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import grade  # noqa: E402
import nbgrader_build  # noqa: E402
from student_copy import BEGIN, END  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
AUTOGRADED = IDS if os.environ.get("BN_NBGRADER_ALL") == "1" else ["00_start_here", "04_bn_math"]


def _need_nbgrader():
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        pytest.skip("nbgrader is not installed: the nbgrader generate/autograde tests were NOT run "
                    "(pip install nbgrader, part of the test extra)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_metadata_marks_every_solution_and_check(path):
    nb = nbgrader_build.nbgrader_notebook(path)
    exs = grade.exercises(nbformat.read(path, as_version=4))
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(tests) == len(exs)
    assert [c.metadata.nbgrader.points for c in tests] == [e.points for e in exs]
    for c in tests:
        assert c.metadata.nbgrader.locked and not c.metadata.nbgrader.solution
        assert "assert " in c.source and ".status" in c.source and BEGIN not in c.source
    for c in nb.cells:
        if c.cell_type == "code" and BEGIN in c.source:
            assert c.metadata.nbgrader["solution"] is True, c.source[:80]
    ids = [c.metadata.nbgrader.grade_id for c in nb.cells if "nbgrader" in c.metadata]
    assert len(set(ids)) == len(ids)
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    original = nbformat.read(path, as_version=4)
    assert sum(c.source.count(BEGIN) for c in nb.cells) == sum(
        c.source.count(BEGIN) for c in original.cells)


def _seeded_04(course: Path, out: Path) -> Path:
    """Notebook 04 from the course's source with two mistakes: eps forgotten in the forward
    pass, the conv version normalizing over the batch axis only; the backward pass stays right."""
    name = "04_bn_math"
    nb = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
    bodies = {
        "def my_batch_norm(": "mean = jnp.mean(x, axis=0)\nvar = jnp.mean((x - mean) ** 2, axis=0)\n"
                              "return gamma * (x - mean) / jnp.sqrt(var) + beta",
        "def my_conv_batch_norm(": "shape = [1] * x.ndim\nshape[channel_axis] = -1\n"
                                   "mean = jnp.mean(x, axis=0, keepdims=True)\n"
                                   "var = jnp.mean((x - mean) ** 2, axis=0, keepdims=True)\n"
                                   "return (jnp.reshape(gamma, shape) * (x - mean) / "
                                   "jnp.sqrt(var + eps) + jnp.reshape(beta, shape))",
    }
    for cell in nb.cells:
        for head, body in bodies.items():
            if cell.cell_type == "code" and head in cell.source and BEGIN in cell.source:
                out_lines, inside = [], False
                for line in cell.source.splitlines():
                    if line.strip() == BEGIN:
                        inside = True
                        out_lines += ["    " + b for b in body.splitlines()]
                    elif line.strip() == END:
                        inside = False
                    elif not inside:
                        out_lines.append(line)
                cell.source = "\n".join(out_lines)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{name}.ipynb")
    return out / f"{name}.ipynb"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    _need_nbgrader()
    root = tmp_path_factory.mktemp("course")
    names = nbgrader_build.generate(root, NOTEBOOKS)
    return root, names


@pytest.mark.slow
def test_generate_assignment_releases_every_notebook(course):
    root, names = course
    assert names == IDS
    for name in names:
        released = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
        text = "\n".join(c.source for c in released.cells)
        assert BEGIN not in text and "raise NotImplementedError()" in text
        tests = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert tests and all("checks.check_" in c.source for c in tests)


@pytest.mark.slow
def test_autograde_gives_the_solutions_full_marks(course):
    root, names = course
    assert set(AUTOGRADED) <= set(names)
    for name in AUTOGRADED:
        nbgrader_build.submit(root, "solutions", root / "source" / name / f"{name}.ipynb")
    got = nbgrader_build.autograde(root, "solutions", AUTOGRADED)
    wrong = {}
    for name in AUTOGRADED:
        exs = grade.exercises(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4))
        assert got[name]["max_score"] == sum(e.points for e in exs) > 0
        if got[name]["score"] != got[name]["max_score"]:
            wrong[name] = {k: v for k, v in got[name]["grades"].items() if v[0] != v[1]}
    assert not wrong, f"exercises of the solution copies without full marks: {wrong}"


@pytest.mark.slow
def test_autograde_gives_the_released_copy_zero(course):
    root, _ = course
    blank = root / "release" / "00_start_here" / "00_start_here.ipynb"
    nbgrader_build.submit(root, "blank", blank)
    got = nbgrader_build.autograde(root, "blank", ["00_start_here"])["00_start_here"]
    assert got["score"] == 0 and got["max_score"] > 0


@pytest.mark.slow
def test_autograde_gives_seeded_mistakes_the_right_partial_score(course, tmp_path):
    root, _ = course
    nbgrader_build.submit(root, "mistakes", _seeded_04(root, tmp_path / "mistakes"))
    got = nbgrader_build.autograde(root, "mistakes", ["04_bn_math"])["04_bn_math"]
    grades = got["grades"]
    assert grades["04_bn_math-check_batch_norm_forward"][0] == 0, grades
    assert grades["04_bn_math-check_batch_norm_conv"][0] == 0, grades
    backward = grade.points_for("check_batch_norm_backward")
    assert grades["04_bn_math-check_batch_norm_backward"] == (backward, backward), grades
    assert got["score"] == backward
