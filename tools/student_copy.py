"""Write student copies of the notebooks: solution regions replaced, hidden tests dropped, no outputs.

Between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers) the
code is replaced by `raise NotImplementedError(...)` at the same indentation;
`### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` regions are removed.

    python tools/student_copy.py [--out build/student] [notebooks ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def strip_solutions(source: str, where: str = "") -> str:
    """Replace each solution region of one cell; raise on unbalanced markers."""
    out, inside, hidden = [], False, False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested {BEGIN}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f'{indent}raise NotImplementedError("write your solution here")')
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif marker == BEGIN_HIDDEN:
            hidden = True
        elif marker == END_HIDDEN:
            hidden = False
        elif not inside and not hidden:
            out.append(line)
    if inside or hidden:
        raise ValueError(f"{where}: a solution or hidden-test region is not closed")
    return "\n".join(out)


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
    for path in paths:
        nbformat.write(student_notebook(path), out / path.name)
        print(f"wrote {out / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
