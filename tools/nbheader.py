"""Write the standard header of every notebook: title, Colab badge, promise, guarded setup cell.

The header cells carry the tag `bn-header` (markdown) and `bn-setup` (code);
running this script refreshes them in place, so the badge URL and the setup
cell stay identical across notebooks. tests/test_notebooks_hygiene.py checks
that every notebook's header is what this script would write.

    python tools/nbheader.py            # refresh all notebooks
    python tools/nbheader.py --check    # exit 1 if any header is stale
    python tools/nbheader.py --repo my-course/bn-notebooks [--branch main]
                                        # a course's fork: point every badge and setup cell
                                        # at it (rewrites REPO/BRANCH below, then refreshes)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import nbformat

# The one place that says where the collection lives; a fork changes it with --repo
REPO = "bn-notebooks/bn-notebooks"  # GitHub owner/name of this repository
BRANCH = "main"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

SETUP = f'''# Setup: inside Colab, install the helper package (it brings the shipped data).
# Elsewhere nothing is installed: use the README's setup. Never reinstalls jax,
# numpy, matplotlib or ipywidgets (--no-deps; Colab already has them).
import sys

if "google.colab" in sys.modules:
    %pip install -q --no-deps "bn-helpers @ git+https://github.com/{REPO}@{BRANCH}"'''


def badge(path: Path) -> str:
    url = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{path.name}"
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})")


def header_source(path: Path, title: str, promise: str) -> str:
    return f"# {title}\n\n{badge(path)}\n\n{promise.strip()}"


def _split_header(cell_source: str) -> tuple[str, str]:
    """(title, promise) from an existing header cell."""
    lines = cell_source.strip().splitlines()
    title = lines[0].lstrip("# ").strip()
    rest = [ln for ln in lines[1:] if "colab-badge.svg" not in ln]
    return title, "\n".join(rest).strip()


def refresh(path: Path) -> bool:
    """Rewrite the header cells of one notebook; True if anything changed."""
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    if not cells or "bn-header" not in cells[0].metadata.get("tags", []):
        raise SystemExit(f"{path.name}: the first cell must be the markdown header tagged bn-header")
    title, promise = _split_header(cells[0].source)
    new_header = header_source(path, title, promise)
    changed = cells[0].source != new_header
    cells[0].source = new_header
    if len(cells) < 2 or "bn-setup" not in cells[1].metadata.get("tags", []):
        cells.insert(1, nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["bn-setup"]}))
        changed = True
    elif cells[1].source != SETUP:
        cells[1].source = SETUP
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def set_repo(source: str, repo: str, branch: str) -> str:
    """This script's source with its REPO and BRANCH constants replaced."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise SystemExit(f"--repo must look like OWNER/NAME, got {repo!r}")
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", branch):
        raise SystemExit(f"--branch must be a branch name, got {branch!r}")
    source = re.sub(r'^REPO = "[^"]*"', f'REPO = "{repo}"', source, count=1, flags=re.M)
    return re.sub(r'^BRANCH = "[^"]*"', f'BRANCH = "{branch}"', source, count=1, flags=re.M)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale headers, change nothing")
    parser.add_argument("--repo", help="OWNER/NAME of a fork: every badge and setup cell points at it")
    parser.add_argument("--branch", default=None, help="the fork's branch (default: keep BRANCH)")
    args = parser.parse_args(argv)
    if args.repo:
        here = Path(__file__)
        here.write_text(set_repo(here.read_text(), args.repo, args.branch or BRANCH))
        # Run the rewritten script, so the new constants are the ones used
        return subprocess.call([sys.executable, str(here)])
    stale = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if args.check:
            nb = nbformat.read(path, as_version=4)
            title, promise = _split_header(nb.cells[0].source)
            if (nb.cells[0].source != header_source(path, title, promise)
                    or nb.cells[1].source != SETUP):
                stale.append(path.name)
        elif refresh(path):
            print(f"refreshed {path.name}")
    if stale:
        print("stale headers:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
