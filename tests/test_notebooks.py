"""Every notebook runs top to bottom in FAST mode with no error output."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path, tmp_path):
    assert os.environ.get("BN_FAST") == "1"
    nb = nbformat.read(path, as_version=4)
    # Cells tagged raises-exception demonstrate an error on purpose
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    expected = {i for i, c in enumerate(nb.cells) if "raises-exception" in c.metadata.get("tags", [])}
    errors = [(i, e) for i, e in error_outputs(nb) if i not in expected]
    assert not errors, f"{path.name}: error outputs {errors}"
    for i in expected:
        assert any(o.get("output_type") == "error" for o in nb.cells[i].outputs), \
            f"{path.name} cell {i} is tagged raises-exception but raised nothing"
    # Keep the executed copy for the HTML build and for looking at the figures
    out = ROOT / "test-artifacts" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
