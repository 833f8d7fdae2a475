"""Execute every notebook and write the executed collection as static HTML (build/html/).

Figures, readouts and the current picture of every slider are kept, so the
pages read well without a kernel. FAST mode shrinks the work:

    python tools/build_html.py            # full runs (as a reader would)
    python tools/build_html.py --fast     # BN_FAST=1, quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, *, timeout: int = 1800):
    """Run one notebook in its own folder; return the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def static_widgets(nb):
    """Show each LiveFigure as its last picture: drop the live-widget view where a PNG is there."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                data.pop("application/vnd.jupyter.widget-view+json", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="set BN_FAST=1 (smaller runs)")
    parser.add_argument("--out", default=str(ROOT / "build" / "html"))
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    if args.fast:
        os.environ["BN_FAST"] = "1"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    exporter = HTMLExporter(template_name="lab")
    index = []
    for path in paths:
        t0 = time.perf_counter()
        nb = execute(path)
        body, _ = exporter.from_notebook_node(static_widgets(nb))
        target = out / path.with_suffix(".html").name
        target.write_text(body, encoding="utf-8")
        index.append(f'<li><a href="{target.name}">{path.stem}</a></li>')
        print(f"{path.name}: {time.perf_counter() - t0:.1f} s -> {target}", flush=True)
    (out / "index.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>bn-notebooks</title>"
        "<h1>bn-notebooks: executed collection</h1><ul>" + "\n".join(index) + "</ul>",
        encoding="utf-8")
    print(f"open {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
