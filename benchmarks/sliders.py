"""Every slider's update time: execute each notebook (FAST mode), then move each control in its kernel.

    python benchmarks/sliders.py [notebooks ...]

Compute + draw is what a move costs before the PNG is sent (goal: p50 <= 50 ms).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, table  # noqa: E402


def slider_times(notebooks, n: int = 20) -> list[dict]:
    """Execute each notebook (FAST) and sweep every LiveFigure control in its kernel."""
    import nbformat
    from nbclient import NotebookClient

    rows = []
    code = ("import json, bn_helpers as bnh\n"
            "print('SWEEP' + json.dumps([bnh.widgets.sweep(l, %d) for l in "
            "bnh.widgets.instances()]))" % n)
    os.environ["BN_FAST"] = "1"
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(code))
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        sweeps = json.loads(text.split("SWEEP", 1)[1])
        for i, sweep in enumerate(sweeps):
            for control, t in sweep.items():
                if not t["compute+draw"]:
                    continue
                rows.append({"notebook": path.stem, "figure": i, "control": control,
                             "p50": statistics.median(t["compute+draw"]),
                             "p90": float(np.percentile(t["compute+draw"], 90)),
                             "encode": statistics.median(t["encode"])})
    return rows


def slider_table(notebooks=None) -> str:
    paths = ([Path(p) for p in notebooks] if notebooks
             else sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    rows = [(r["notebook"], r["figure"], r["control"], f"{r['p50']:.1f}", f"{r['p90']:.1f}",
             f"{r['encode']:.1f}") for r in slider_times(paths)]
    return table(["notebook", "fig", "control", "p50 ms", "p90 ms", "encode p50 ms"], rows, "lrlrrr")


if __name__ == "__main__":
    print(slider_table(sys.argv[1:]))
