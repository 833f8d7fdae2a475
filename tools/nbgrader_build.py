"""Build an nbgrader course from the notebooks, release it, and autograde submitted copies.

    python tools/nbgrader_build.py source    [--course DIR] [notebooks ...]
    python tools/nbgrader_build.py generate  [--course DIR] [notebooks ...]
    python tools/nbgrader_build.py autograde [--course DIR] --student ID SUBMISSION.ipynb [...]
    python dev.py nbgrader generate ...      (the same, inside the project's .venv)

`source` copies every notebook to DIR/source/<NN_name>/<NN_name>.ipynb (one assignment per
notebook; DIR defaults to build/nbgrader) and adds nbgrader's cell metadata, leaving notebooks/
untouched: a cell with `### BEGIN SOLUTION` becomes an autograded-answer cell; each statement
calling `bnh.checks.check_*` is split off into its own locked autograder-test cell that keeps the
Verdict, asserts it is not FAIL and ends with the points it earns (nbgrader's partial credit:
all points on PASS, the grader's CREDIT["CLOSE"] share on CLOSE), with the points of
tools/grade.py's POINTS table. `generate` then runs `nbgrader generate_assignment` for each
assignment (DIR/release/ holds the student versions). `autograde` copies each submission to
DIR/submitted/<ID>/<assignment>/, runs `nbgrader autograde` with BN_GRADING=1 and BN_FAST=1 (the
checks add their hidden cases) and prints the scores read from DIR/gradebook.db.

Needs nbgrader (pip install nbgrader); the nbgrader commands run from the same interpreter.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grade  # noqa: E402
from student_copy import BEGIN, python_source  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "build" / "nbgrader"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONFIG = """\
# nbgrader configuration of the bn-notebooks course (written by tools/nbgrader_build.py)
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "bn-notebooks"
c.Execute.timeout = {timeout}
c.Execute.allow_errors = True
"""


def assignment_name(path: Path) -> str:
    return Path(path).stem


def _grade_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))[:60]


def _segments(source: str):
    """Split one cell into ("code", lines) and ("test", lines, statement node) pieces: every
    top-level statement that calls a check becomes its own piece."""
    lines = source.splitlines()
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return [("code", lines, None)]
    pieces, at = [], 0
    for node in tree.body:
        if not any(grade._is_check_call(n) for n in ast.walk(node)):
            continue
        first = node.lineno - 1
        while first > at and lines[first - 1].lstrip().startswith("@"):
            first -= 1
        pieces.append(("code", lines[at:first], None))
        pieces.append(("test", lines[first:node.end_lineno], node))
        at = node.end_lineno
    pieces.append(("code", lines[at:], None))
    out = []
    for kind, chunk, node in pieces:
        while chunk and not chunk[0].strip():
            chunk = chunk[1:]
        while chunk and not chunk[-1].strip():
            chunk = chunk[:-1]
        if chunk:
            out.append((kind, chunk, node))
    return out


def test_source(statement: str, node, check: str, points: float) -> str:
    """The autograder-test cell for one check statement."""
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name) and grade._is_check_call(node.value)):
        name, body = node.targets[0].id, statement
    elif isinstance(node, ast.Expr) and grade._is_check_call(node.value):
        name, body = "verdict", f"verdict = {statement.lstrip()}"
    else:  # the call sits inside a larger statement: run that, then the call once more
        call = next(ast.get_source_segment(statement, n) for n in ast.walk(ast.parse(statement))
                    if grade._is_check_call(n))
        name, body = "verdict", f"{statement}\nverdict = {call}"
    close = points * grade.CREDIT["CLOSE"]
    return (f"{body}\n"
            f"assert {name}.status != \"FAIL\", {name}.line\n"
            f"{points:g} if {name}.status == \"PASS\" else {close:g}  # points earned ({check})")


def nbgrader_notebook(path: Path):
    """The notebook with nbgrader metadata: solution cells and one test cell per check call."""
    nb = nbformat.read(path, as_version=4)
    stem = assignment_name(path)
    cells, seen = [], {}
    for cell in nb.cells:
        cell.pop("outputs", None) if cell.cell_type != "code" else None
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        cell.outputs, cell.execution_count = [], None
        pieces = _segments(cell.source)
        if len(pieces) <= 1 and not any(k == "test" for k, _, _ in pieces):
            if BEGIN in cell.source:
                cell.metadata["nbgrader"] = _meta(solution=True, grade_id=_grade_id(stem, cell.id))
            cells.append(cell)
            continue
        for k, (kind, chunk, node) in enumerate(pieces):
            new = nbformat.v4.new_code_cell("\n".join(chunk))
            new.metadata = {key: v for key, v in cell.metadata.items() if key != "nbgrader"}
            new.id = cell.id if k == 0 else _grade_id(cell.id, str(k))
            if kind == "test":
                check = grade._is_check_call(next(n for n in ast.walk(node)
                                                  if grade._is_check_call(n)))
                seen[check] = seen.get(check, 0) + 1
                ex_id = check if seen[check] == 1 else f"{check}-{seen[check]}"
                points = grade.points_for(check)
                new.source = test_source(new.source, node, check, points)
                new.metadata["nbgrader"] = _meta(grade=True, points=points,
                                                 grade_id=_grade_id(stem, ex_id))
            elif BEGIN in new.source:
                new.metadata["nbgrader"] = _meta(solution=True,
                                                 grade_id=_grade_id(stem, new.id, "answer"))
            cells.append(new)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def _meta(*, solution=False, grade=False, points=0.0, grade_id):
    meta = {"solution": solution, "grade": grade, "locked": not solution,
            "grade_id": grade_id, "schema_version": 3}
    if grade:
        meta["points"] = points
    return meta


def write_source(course: Path, notebooks, *, timeout: int = 900) -> list[str]:
    """Write DIR/nbgrader_config.py and DIR/source/<assignment>/<notebook>; return the names."""
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course.resolve()),
                                                             timeout=int(timeout)))
    names = []
    for path in notebooks:
        name = assignment_name(path)
        folder = course / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbgrader_notebook(Path(path)), folder / Path(path).name)
        names.append(name)
    return names


def _env(**extra) -> dict:
    """os.environ with this interpreter's bin folder first on PATH (nbgrader calls `alembic`)."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]), **extra)


def nbgrader(course: Path, *args, env=None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in the course folder (the interpreter's own nbgrader)."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    return subprocess.run(cmd, cwd=course, env=env or _env(), capture_output=True, text=True)


def generate(course: Path, notebooks) -> list[str]:
    names = write_source(course, notebooks)
    for name in names:
        proc = nbgrader(course, "generate_assignment", name, "--force")
        if proc.returncode:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{proc.stdout}"
                               f"\n{proc.stderr}")
    return names


def submit(course: Path, student: str, submission: Path) -> str:
    """Copy one submission to DIR/submitted/<student>/<assignment>/; return the assignment."""
    original = grade.find_original(Path(submission))
    if original is None:
        raise ValueError(f"{submission}: no notebook of this name or number in notebooks/")
    name = assignment_name(original)
    folder = course / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(submission, folder / original.name)
    return name


def autograde(course: Path, student: str, assignments, *, timeout: int = 900):
    """Run `nbgrader autograde` for one student's assignments; return {assignment: scores}."""
    env = _env(BN_GRADING="1", BN_FAST="1", MPLBACKEND="Agg")
    for name in assignments:
        proc = nbgrader(course, "autograde", name, "--student", student, "--force", env=env)
        if proc.returncode:
            raise RuntimeError(f"nbgrader autograde {name} failed:\n{proc.stdout}\n{proc.stderr}")
    return scores(course, student, assignments)


def scores(course: Path, student: str, assignments) -> dict:
    """{assignment: {"score", "max_score", "grades": {grade_id: (score, max_score)}}} from the
    course's gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    os.environ["PATH"] = _env()["PATH"]  # the gradebook asks `alembic` for its schema version
    with Gradebook(f"sqlite:///{(course / 'gradebook.db').resolve()}") as gb:
        for name in assignments:
            sub = gb.find_submission(name, student)
            grades = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    grades[g.name] = (float(g.score), float(g.max_score))
            out[name] = {"score": float(sub.score), "max_score": float(sub.max_score),
                         "grades": grades}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("source", "generate", "autograde"))
    parser.add_argument("paths", nargs="*", type=Path,
                        help="notebooks (source, generate) or submissions (autograde)")
    parser.add_argument("--course", type=Path, default=COURSE)
    parser.add_argument("--student", help="student ID of the submissions (autograde)")
    args = parser.parse_intermixed_args(argv)
    course = args.course.resolve()
    if args.command in ("source", "generate"):
        paths = args.paths or NOTEBOOKS
        names = (write_source(course, paths) if args.command == "source"
                 else generate(course, paths))
        print(f"{args.command}: {', '.join(names)} in {course}")
        return 0
    if not args.student or not args.paths:
        parser.error("autograde needs --student ID and at least one submission")
    if not (course / "gradebook.db").exists():
        generate(course, NOTEBOOKS)
    names = [submit(course, args.student, p) for p in args.paths]
    for name, s in autograde(course, args.student, names).items():
        print(f"{args.student} {name}: {s['score']:g} / {s['max_score']:g}")
        for gid, (got, most) in s["grades"].items():
            print(f"    {gid:50s} {got:g} / {most:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
