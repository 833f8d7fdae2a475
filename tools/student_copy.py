"""Write student copies of the notebooks: solution regions replaced, hidden tests dropped, no outputs.

Between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers) the
code is replaced by `raise NotImplementedError(...)` at the same indentation;
a region at the top level of a cell that only assigns names (a value exercise:
`prediction = ...`) becomes `name = None` for each of them instead, so Run All
goes on to the check, which prints FAIL. `### BEGIN HIDDEN TESTS` ...
`### END HIDDEN TESTS` regions are removed. Every student cell must still be
valid Python: a marker inside a dict, a list or an expression is reported with
its notebook and cell, and nothing is written for that notebook.

    python tools/student_copy.py [--out build/student] [notebooks ...]
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_MAGIC = re.compile(r"^(\s*)(%|!)")


def python_source(source: str) -> str:
    """A cell's source with IPython magics and shell lines (`%pip`, `!ls`) turned into `pass`."""
    out = []
    for line in source.splitlines():
        m = _MAGIC.match(line)
        out.append(f"{m.group(1)}pass  # {line.strip()}" if m else line)
    return "\n".join(out)


def _assigned_names(lines: list[str]) -> list[str] | None:
    """Names a top-level region assigns, or None unless the region is only plain assignments."""
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return None
    names = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not all(isinstance(t, ast.Name) for t in targets):
                return None
            names += [t.id for t in targets if t.id not in names]
        else:
            return None
    return names or None


def _stub(indent: str, body: list[str]) -> list[str]:
    names = _assigned_names(body) if indent == "" else None
    if names:
        return ["# YOUR ANSWER HERE: replace None"] + [f"{n} = None" for n in names]
    return [f"{indent}# YOUR CODE HERE", f'{indent}raise NotImplementedError("write your solution here")']


def strip_solutions(source: str, where: str = "") -> str:
    """Replace each solution region of one cell; raise ValueError on unbalanced markers or when
    the result is not valid Python (a marker inside a dict, list or expression)."""
    out, inside, hidden, body, start = [], False, False, [], 0
    for number, line in enumerate(source.splitlines(), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested {BEGIN} (line {number})")
            inside, body, start = True, [], number
            indent = line[: len(line) - len(line.lstrip())]
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN} (line {number})")
            inside = False
            out += _stub(indent, body)
        elif marker == BEGIN_HIDDEN:
            hidden = True
        elif marker == END_HIDDEN:
            hidden = False
        elif inside:
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
        elif not hidden:
            out.append(line)
    if inside or hidden:
        raise ValueError(f"{where}: a solution or hidden-test region is not closed")
    result = "\n".join(out)
    if BEGIN in source:
        try:
            compile(python_source(result), where or "<cell>", "exec")
        except SyntaxError as err:
            raise ValueError(
                f"{where}: the student copy of this cell is not valid Python ({err.msg}, line "
                f"{err.lineno}); a solution marker sits inside a dict, list or expression (line "
                f"{start}): put `{BEGIN}` ... `{END}` around whole statements"
            ) from None
    return result


def student_notebook(path: Path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source, f"{path.name} cell {i}")
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "student"))
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    problems = 0
    for path in paths:
        try:
            nb = student_notebook(path)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            problems += 1
            continue
        nbformat.write(nb, out / path.name)
        print(f"wrote {out / path.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
