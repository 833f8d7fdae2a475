"""Execute notebooks top to bottom and report error outputs; the runner the tests and CI share.

    python tools/run_notebooks.py [--outside DIR] [--expect-installed] [--save DIR] [notebooks ...]

With `--outside`, each notebook is copied to DIR and run there (a folder outside the checkout,
as in Colab), so `bn_helpers` must come from an installed wheel; `--expect-installed` then
checks that the kernel imported it from site-packages, not from the checkout. Needs only
nbformat, nbclient and ipykernel in the running interpreter. Exit status 1 if any notebook
fails. BN_FAST is passed through (set it to 1 for the tests' short runs).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
_WHERE = "import bn_helpers as _b; print('BN_HELPERS_FROM', _b.__file__)"


def error_outputs(nb):
    """(cell index, text) of every error or traceback output."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append((i, f"{out['ename']}: {out['evalue']}"))
            elif (out.get("output_type") == "stream"
                  and "Traceback (most recent call last)" in out.get("text", "")):
                found.append((i, out["text"][-500:]))
    return found


def _unexpected_errors(nb):
    """Error outputs, except in cells tagged `raises-exception` (which must raise)."""
    expected = {i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", [])}
    errors = [(i, e) for i, e in error_outputs(nb) if i not in expected]
    for i in expected:
        if not any(o.get("output_type") == "error" for o in nb.cells[i].outputs):
            errors.append((i, "tagged raises-exception but raised nothing"))
    return errors


def _run(nb, run_dir: Path, timeout: int) -> None:
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(run_dir)}})
    client.execute()


def execute(path: Path, *, workdir: Path | None = None, timeout: int = 900, where: bool = False):
    """Run one notebook; return (executed notebook, list of unexpected errors, bn_helpers path).

    Cells tagged `raises-exception` must raise (they demonstrate an error on purpose).
    """
    nb = nbformat.read(path, as_version=4)
    if where:
        nb.cells.append(nbformat.v4.new_code_cell(_WHERE))
    _run(nb, workdir or path.parent, timeout)
    origin = None
    if where:
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        origin = text.split("BN_HELPERS_FROM", 1)[-1].strip() if "BN_HELPERS_FROM" in text else None
        nb.cells.pop()
    return nb, _unexpected_errors(nb), origin


def execute_with_student_copy(path: Path, student, *, timeout: int = 900):
    """Run a notebook and its student copy `student` in one kernel, the shared part once.

    The two copies are the same up to the first cell that differs (the exercises, which come
    last), so those cells run once; then the student copy's remaining cells run, seeing exactly
    what they would in a student's kernel; then the solution's remaining cells, which redefine
    everything they use. Returns ((notebook, errors), (student copy, errors)), each executed
    copy with its own cells and outputs (`student` is filled in place).
    """
    nb = nbformat.read(path, as_version=4)
    if len(student.cells) != len(nb.cells):
        raise ValueError(f"{path.name}: the student copy has {len(student.cells)} cells, "
                         f"the notebook {len(nb.cells)}")
    split = next((i for i, (a, b) in enumerate(zip(nb.cells, student.cells))
                  if a.source != b.source), len(nb.cells))
    both = nbformat.from_dict(nb)
    both.cells = nb.cells[:split] + student.cells[split:] + nb.cells[split:]
    _run(both, path.parent, timeout)
    tail = len(nb.cells) - split
    nb.metadata, student.metadata = both.metadata, nbformat.from_dict(both.metadata)
    nb.cells = both.cells[:split] + both.cells[split + tail:]
    student.cells = both.cells[:split] + both.cells[split:split + tail]
    return (nb, _unexpected_errors(nb)), (student, _unexpected_errors(student))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--outside", type=Path, help="copy each notebook here and run it there")
    parser.add_argument("--expect-installed", action="store_true",
                        help="fail unless bn_helpers was imported from outside the checkout")
    parser.add_argument("--save", type=Path, help="write the executed notebooks to this folder")
    parser.add_argument("--timeout", type=int, default=900, help="seconds one cell may take")
    args = parser.parse_args(argv)
    paths = args.notebooks or NOTEBOOKS
    failures = 0
    total = time.perf_counter()
    for path in paths:
        src = path.resolve()
        if args.outside:
            args.outside.mkdir(parents=True, exist_ok=True)
            src = Path(shutil.copy2(src, args.outside / path.name))
        start = time.perf_counter()
        try:
            nb, errors, origin = execute(src, where=args.expect_installed, timeout=args.timeout)
        except Exception as err:  # a cell timeout or a dead kernel is a failure, not a crash
            nb, errors, origin = None, [(-1, f"{type(err).__name__}: {str(err)[-800:]}")], None
        if args.expect_installed and nb is not None:
            # The checkout's own package is ROOT/bn_helpers; a wheel sits in a site-packages
            if origin is None or Path(origin).resolve().is_relative_to(ROOT / "bn_helpers") \
                    or "site-packages" not in Path(origin).parts:
                errors.append((-1, f"bn_helpers was imported from {origin}, not an installed wheel"))
        status = "ok" if not errors else "FAILED"
        print(f"{path.name:32s} {time.perf_counter() - start:7.1f} s  {status}", flush=True)
        for i, e in errors:
            print(f"    cell {i}: {e}", flush=True)
        failures += bool(errors)
        if args.save and nb is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.save / path.name)
    print(f"notebooks: {len(paths) - failures} ran clean, {failures} with errors "
          f"({time.perf_counter() - total:.0f} s, python {sys.version.split()[0]})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
