"""Where a cold FAST run's time goes: every XLA compilation of a notebook, per cell and program.

    python benchmarks/compiles.py notebooks/08_beyond_bn.ipynb [more notebooks] [--top 15]

Runs each notebook in FAST mode with JAX's compile log on (`JAX_LOG_COMPILES=1`) and the
persistent compilation cache off, so every program is compiled as on a first open in Colab,
then prints the wall time, the seconds spent in XLA compilation and in lowering, the number
of programs, a per-cell table and the slowest programs. A notebook's FAST run is mostly
compilation when its compile seconds are close to its wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from common import load, table  # noqa: E402

_LINE = re.compile(r"Finished (XLA compilation|jaxpr to MLIR module conversion) (?:of )?(\S+) "
                   r"in ([0-9.e+-]+) sec")


def compiles(nb) -> list[tuple[int, str, str, float]]:
    """(cell, kind, program, seconds) for every compile-log line in the notebook's outputs."""
    rows = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream":
                continue
            for m in _LINE.finditer(out.get("text", "")):
                kind = "compile" if m.group(1).startswith("XLA") else "lower"
                rows.append((i, kind, m.group(2), float(m.group(3))))
    return rows


def profile(path: Path, top: int) -> str:
    from run_notebooks import execute

    os.environ.update(BN_FAST="1", JAX_LOG_COMPILES="1")
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # every program compiled, as on first open
    t0 = time.perf_counter()
    nb, errors, _ = execute(path)
    wall = time.perf_counter() - t0
    rows = compiles(nb)
    spent = defaultdict(float)
    per_cell = defaultdict(lambda: [0, 0.0])
    for cell, kind, _, sec in rows:
        spent[kind] += sec
        if kind == "compile":
            per_cell[cell][0] += 1
            per_cell[cell][1] += sec
    n = sum(c for c, _ in per_cell.values())
    head = (f"{path.name}: {wall:.0f} s wall (FAST, cache off), {spent['compile']:.0f} s in XLA "
            f"compilation of {n} programs, {spent['lower']:.0f} s lowering; "
            f"{'errors: ' + str(errors) if errors else 'ran clean'} ({load()})")
    cells = table(["cell", "programs", "compile s"],
                  [[str(c), str(k), f"{s:.1f}"] for c, (k, s) in sorted(per_cell.items())])
    slow = sorted(((s, c, p) for c, kind, p, s in rows if kind == "compile"), reverse=True)[:top]
    programs = table(["compile s", "cell", "program"], [[f"{s:.1f}", str(c), p] for s, c, p in slow])
    return "\n\n".join([head, cells, programs])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=10, help="slowest programs listed")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(profile(path, args.top), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
