"""Grade submitted notebooks: run each in a fresh kernel, re-run every exercise check, write a table.

    python tools/grade.py SUBMISSION.ipynb [...] [--out DIR] [--timeout S] [--total-timeout S]
    python dev.py grade SUBMISSION.ipynb [...]          (the same, inside the project's .venv)
    python tools/grade.py --list                        (the exercises and points per notebook)

Each submission is copied into its own temporary folder and executed there in a new kernel with
BN_GRADING=1 (the checks add hidden cases) and BN_FAST=1; a cell that raises is recorded and the
next cells run anyway, a cell that runs longer than --timeout seconds is interrupted, and after
--total-timeout seconds the remaining cells are skipped. The exercises are the
`bnh.checks.check_*(...)` calls of the instructor's notebook of the same name in notebooks/ (or of
the same two-digit number), so a deleted or edited check call still counts: after the student's
cells, every one of those calls is run once more, with freshly loaded check modules, in the
student's kernel. Points per exercise come from POINTS (1 when not listed); a PASS earns all of
them, a CLOSE the share CREDIT["CLOSE"], a FAIL none.

Writes DIR/grades.csv (one row per notebook and exercise) and DIR/grades.json (per notebook: the
exercises, the total, the cells that raised or timed out) and prints the table. This runs the
students' code: a temporary working copy protects the course files from a notebook that deletes
files in its folder, but it is not a sandbox (run untrusted submissions in a container).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from student_copy import python_source  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# Points per exercise, by check name (1 when not listed); the same table feeds nbgrader
POINTS = {
    "check_batch_norm_forward": 1,
    "check_batch_norm_backward": 2,
    "check_batch_norm_conv": 2,
    "check_standardize": 1,
    "check_zca": 2,
    "check_hessian_eigs": 1,
    "check_max_stable_lr": 2,
    "check_xavier_init": 1,
    "check_he_init": 1,
    "check_std_prediction": 2,
    "check_histogram_reading": 1,
    "check_running_stats_update": 2,
    "check_fold_bn": 2,
    "check_prediction": 1,
    "check_percentile_summary": 1,
    "check_gradient_cosine": 1,
    "check_effective_lr": 2,
    "check_group_norm": 2,
    "check_renorm_correction": 2,
    "check_residual_variance": 2,
    "check_growth_rate": 1,
}
CREDIT = {"PASS": 1.0, "CLOSE": 0.5, "FAIL": 0.0}
MARK = "@@BN-GRADE "
_CHECK_CALL = re.compile(r"\bcheck_\w+")


def points_for(check: str) -> float:
    return float(POINTS.get(check, 1))


@dataclass
class Exercise:
    """One check call of the instructor's notebook: `id` is unique per notebook."""

    id: str
    check: str
    call: str
    cell: int
    points: float


@dataclass
class Result:
    exercise: str
    check: str
    points: float
    earned: float
    status: str
    value: float | None
    hint: str
    line: str


@dataclass
class Report:
    submission: str
    original: str | None
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(r.earned for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.points for r in self.results)


def _is_check_call(node) -> str | None:
    """The check's name if `node` is a call `<...>.checks.check_x(...)` or `check_x(...)`."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr.startswith("check_"):
        base = func.value
        if isinstance(base, ast.Attribute) and base.attr == "checks":
            return func.attr
        if isinstance(base, ast.Name) and base.id == "checks":
            return func.attr
    return None


def check_calls(source: str):
    """(check name, call source, call node) of every bnh.checks.check_* call in one cell."""
    src = python_source(source)
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        name = _is_check_call(node)
        if name:
            found.append((name, ast.get_source_segment(src, node), node))
    found.sort(key=lambda f: (f[2].lineno, f[2].col_offset))
    return found


def exercises(nb) -> list[Exercise]:
    """The exercises of a notebook, in order: one per check call in its code cells."""
    out, seen = [], {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for name, call, _ in check_calls(cell.source):
            seen[name] = seen.get(name, 0) + 1
            ex_id = name if seen[name] == 1 else f"{name}#{seen[name]}"
            out.append(Exercise(ex_id, name, call, i, points_for(name)))
    return out


def find_original(submission: Path, originals: Path = NOTEBOOKS) -> Path | None:
    """The instructor's notebook for a submission: same file name, else same two-digit number."""
    same = originals / submission.name
    if same.exists():
        return same
    m = re.match(r"(\d\d)[_\-]", submission.name)
    if m:
        hits = sorted(originals.glob(f"{m.group(1)}_*.ipynb"))
        if len(hits) == 1:
            return hits[0]
    return None


def grading_cell(ex: Exercise) -> str:
    """Code that re-runs one exercise's check with freshly loaded check modules and prints a
    MARK line with the verdict as JSON."""
    tree = ast.parse(ex.call, mode="eval")
    tree.body.func = ast.Name(id="_bn_grade_check", ctx=ast.Load())
    call = ast.unparse(tree)
    return f"""\
import importlib as _bn_il, json as _bn_json, math as _bn_math, pkgutil as _bn_pk
import bn_helpers.checks as _bn_checks
_bn_il.reload(_bn_il.import_module("bn_helpers.checks._core"))
_bn_grade_check = None
for _bn_m in _bn_pk.iter_modules(_bn_checks.__path__):
    if not _bn_m.name.startswith("_"):
        _bn_mod = _bn_il.reload(_bn_il.import_module("bn_helpers.checks." + _bn_m.name))
        _bn_grade_check = getattr(_bn_mod, {ex.check!r}, _bn_grade_check)
try:
    _bn_v = {call}
    _bn_out = {{"status": _bn_v.status, "value": _bn_v.value, "hint": _bn_v.hint, "line": _bn_v.line}}
except BaseException as _bn_err:
    _bn_out = {{"status": "FAIL", "value": None, "hint": "the check could not run",
               "line": f"could not run the check: {{type(_bn_err).__name__}}: {{_bn_err}}"}}
if isinstance(_bn_out["value"], float) and not _bn_math.isfinite(_bn_out["value"]):
    _bn_out["value"] = None
print({MARK!r} + _bn_json.dumps({{"id": {ex.id!r}, **_bn_out}}))
"""


def _cell_problems(cell) -> list[str]:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            out.append(f"{o.get('ename')}: {str(o.get('evalue'))[:200]}")
    return out


def run_submission(submission: Path, exercises_: list[Exercise], *, timeout: float = 300,
                   total_timeout: float = 1800, kernel: str = "python3"):
    """Execute the submission in a temporary copy, then the grading cells; return
    (executed notebook, {exercise id: verdict dict}, errors, notes)."""
    from nbclient import NotebookClient

    nb = nbformat.read(submission, as_version=4)
    n_student = len(nb.cells)
    for ex in exercises_:
        nb.cells.append(nbformat.v4.new_code_cell(grading_cell(ex)))
    errors, notes = [], []
    env = dict(os.environ, BN_GRADING="1", BN_FAST="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory(prefix="bn-grade-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        shutil.copy2(submission, work / submission.name)
        client = NotebookClient(
            nb, timeout=int(timeout), kernel_name=kernel, allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": "Timeout", "evalue": f"cell ran longer than {timeout:.0f} s",
                              "traceback": []},
            resources={"metadata": {"path": str(work)}})
        deadline = time.monotonic() + total_timeout
        try:
            with client.setup_kernel(env=env):
                for i, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    if i < n_student and time.monotonic() > deadline:
                        notes.append(f"cell {i} and later student cells skipped: the notebook "
                                     f"ran longer than {total_timeout:.0f} s")
                        deadline = float("inf")  # note once, skip the rest
                    if i < n_student and deadline == float("inf"):
                        continue
                    began = time.monotonic()
                    try:
                        client.execute_cell(cell, i)
                    except Exception as err:  # a dead kernel: nothing more can run
                        errors.append(f"cell {i}: {type(err).__name__}: {str(err)[:200]}")
                        notes.append("the kernel stopped; exercises not yet checked get 0")
                        break
                    if i < n_student:
                        if time.monotonic() - began >= timeout:
                            errors.append(f"cell {i}: ran longer than {timeout:.0f} s and was "
                                          "interrupted")
                        else:
                            errors += [f"cell {i}: {p}" for p in _cell_problems(cell)]
        except Exception as err:  # the kernel did not start or could not be shut down
            errors.append(f"kernel: {type(err).__name__}: {str(err)[:200]}")
    verdicts = {}
    for cell in nb.cells[n_student:]:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                for line in o.get("text", "").splitlines():
                    if line.startswith(MARK):
                        data = json.loads(line[len(MARK):])
                        verdicts[data.pop("id")] = data
    del nb.cells[n_student:]
    return nb, verdicts, errors, notes


def grade(submission: Path, *, originals: Path = NOTEBOOKS, timeout: float = 300,
          total_timeout: float = 1800) -> Report:
    """Grade one submitted notebook; never raises for a bad submission."""
    start = time.perf_counter()
    submission = Path(submission)
    original = find_original(submission, originals)
    report = Report(str(submission), str(original) if original else None)
    try:
        student_nb = nbformat.read(submission, as_version=4)
    except Exception as err:  # not a notebook at all
        report.errors.append(f"cannot read the notebook: {type(err).__name__}: {err}")
        return report
    if original is not None:
        exs = exercises(nbformat.read(original, as_version=4))
    else:
        exs = exercises(student_nb)
        report.notes.append("no instructor notebook of this name in notebooks/: the exercises "
                            "are the check calls found in the submission")
    _, verdicts, errors, notes = run_submission(submission, exs, timeout=timeout,
                                                total_timeout=total_timeout)
    report.errors += errors
    report.notes += notes
    for ex in exs:
        v = verdicts.get(ex.id)
        if v is None:
            v = {"status": "FAIL", "value": None, "hint": "",
                 "line": "the check did not run (time limit or a stopped kernel)"}
        status = v["status"] if v["status"] in CREDIT else "FAIL"
        report.results.append(Result(ex.id, ex.check, ex.points, ex.points * CREDIT[status],
                                     status, v["value"], v["hint"] or "", v["line"]))
    report.seconds = time.perf_counter() - start
    return report


def table(reports: list[Report]) -> str:
    rows = [("notebook", "exercise", "points", "verdict", "number", "hint")]
    for rep in reports:
        name = Path(rep.submission).name
        for r in rep.results:
            number = "" if r.value is None else f"{r.value:.2e}"
            rows.append((name, r.exercise, f"{r.earned:g}/{r.points:g}", r.status, number,
                         r.hint[:70]))
        rows.append((name, "TOTAL", f"{rep.total:g}/{rep.max_points:g}", "", "",
                     f"{len(rep.errors)} cell error(s)" if rep.errors else ""))
    widths = [max(len(row[k]) for row in rows) for k in range(5)]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True))
                     + "  " + row[5])
        if j == 0:
            lines.append("-" * (sum(widths) + 2 * 5 + 4))
    for rep in reports:
        for text in rep.errors + rep.notes:
            lines.append(f"{Path(rep.submission).name}: {text}")
    return "\n".join(line.rstrip() for line in lines)


def write(reports: list[Report], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "grades.csv", out / "grades.json"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "exercise", "check", "points", "earned", "verdict", "number",
                    "hint"])
        for rep in reports:
            for r in rep.results:
                w.writerow([rep.submission, r.exercise, r.check, r.points, r.earned, r.status,
                            "" if r.value is None else r.value, r.hint])
    payload = [{"submission": rep.submission, "original": rep.original, "total": rep.total,
                "max_points": rep.max_points, "seconds": round(rep.seconds, 1),
                "errors": rep.errors, "notes": rep.notes,
                "exercises": [asdict(r) for r in rep.results]} for rep in reports]
    json_path.write_text(json.dumps(payload, indent=2))
    return csv_path, json_path


def exercise_list(originals: Path = NOTEBOOKS) -> str:
    """A table of every notebook's exercises (the check calls) with their points."""
    lines = []
    for path in sorted(originals.glob("[0-9][0-9]_*.ipynb")):
        exs = exercises(nbformat.read(path, as_version=4))
        lines.append(f"{path.name}: {sum(e.points for e in exs):g} points")
        lines += [f"    cell {e.cell:3d}  {e.id:30s} {e.points:g}" for e in exs]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grades")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per cell (300)")
    parser.add_argument("--total-timeout", type=float, default=1800,
                        help="seconds per notebook before its remaining cells are skipped (1800)")
    parser.add_argument("--originals", type=Path, default=NOTEBOOKS,
                        help="folder of the instructor's notebooks (notebooks/)")
    parser.add_argument("--list", action="store_true",
                        help="print the exercises and points of the instructor's notebooks")
    args = parser.parse_args(argv)
    if args.list:
        print(exercise_list(args.originals))
        return 0
    if not args.submissions:
        parser.error("give at least one submitted notebook (or --list)")
    reports = []
    for path in args.submissions:
        print(f"grading {path} ...", flush=True)
        reports.append(grade(path, originals=args.originals, timeout=args.timeout,
                             total_timeout=args.total_timeout))
    print(table(reports))
    csv_path, json_path = write(reports, args.out)
    print(f"wrote {csv_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
