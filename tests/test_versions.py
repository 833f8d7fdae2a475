"""Version support: the declared floors, Colab's pins, the compat wrappers, the version report,
and the one constant a course's fork changes to point every badge and setup cell at itself."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

import bn_helpers as bnh
from bn_helpers import env

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nbheader  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUNTIME = ("jax", "numpy", "matplotlib", "ipywidgets")


def _pins(name: str) -> dict:
    pins = {}
    for line in (ROOT / "ci" / f"{name}-constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pkg, version = line.split("==")
            pins[pkg.strip().lower()] = version.strip()
    return pins


def _floors_declared() -> dict:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for spec in deps:
        m = re.match(r"^([A-Za-z0-9_.\-]+)>=([0-9.]+)", spec)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def _v(version: str) -> tuple:
    return env._parse(version)


def test_floor_constraints_are_the_declared_minimums():
    floors, pins = _floors_declared(), _pins("floor")
    for pkg in RUNTIME:
        assert _v(pins[pkg]) == _v(floors[pkg]), f"{pkg}: floor file {pins[pkg]}, pyproject {floors[pkg]}"
    assert pins["jaxlib"] == pins["jax"]
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    for pkg in RUNTIME:
        assert any(isinstance(d, str) and d.startswith(f"{pkg}>={floors[pkg]}") for d in conda), pkg


def test_floors_never_above_colab():
    floor, colab = _pins("floor"), _pins("colab")
    for pkg in RUNTIME:
        assert _v(floor[pkg]) <= _v(colab[pkg]), f"{pkg}: floor {floor[pkg]} above Colab's {colab[pkg]}"


def test_colab_constraints_name_their_source_and_date():
    text = (ROOT / "ci" / "colab-constraints.txt").read_text()
    assert "googlecolab/backend-info" in text and "pip-freeze.txt" in text
    assert re.search(r"20\d\d", text)
    pins = _pins("colab")
    assert pins["jax"] == "0.7.2" and pins["ipywidgets"] == "7.7.1" and pins["ipython"] == "7.34.0"


def test_tested_range_starts_at_the_floors_and_covers_colab():
    floor, colab = _pins("floor"), _pins("colab")
    for pkg, (low, high) in env.TESTED.items():
        if pkg in floor:
            assert _v(low) == _v(floor[pkg]), pkg
        assert _v(low) <= _v(colab[pkg]) <= _v(high), pkg
        assert env.version_status(pkg, colab[pkg]) == ""


def test_version_report_says_what_is_outside_and_how_to_fix_it():
    old = env.version_status("jax", "0.4.20")
    assert "older than the oldest tested (0.4.30)" in old and 'pip install --upgrade "jax>=0.4.30"' in old
    new = env.version_status("ipywidgets", "9.0.1", colab=True)
    assert "newer than the newest tested" in new and '%pip install "ipywidgets==8.1.9"' in new
    assert "missing" in env.version_status("numpy", "not installed")
    assert env.version_status("jax", "0.7.2") == ""


def test_report_prints_versions_and_the_range(capsys):
    info = bnh.env.report()
    out = capsys.readouterr().out
    assert info["jax"] in out and "tested range" in out or "Outside the tested versions" in out
    assert isinstance(info["problems"], list)


def test_no_module_or_notebook_uses_version_specific_apis():
    """jax.enable_x64 is missing before jax 0.8; everything goes through bn_helpers.compat."""
    files = [*ROOT.glob("bn_helpers/**/*.py"), *NOTEBOOKS, *ROOT.glob("tests/*.py")]
    for path in files:
        if path.name in ("compat.py", "test_versions.py"):
            continue
        text = path.read_text()
        if path.suffix == ".ipynb":  # code only: the prose may name the API it wraps
            text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                             if c.cell_type == "code")
        assert "jax.enable_x64" not in text, f"{path}: use bnh.enable_x64 (bn_helpers.compat)"
        assert "jax.experimental.enable_x64" not in text, path
        assert "set_matplotlib_formats" not in text or "matplotlib_inline" in text, path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_badge_and_setup_cell_agree_with_the_repo_constant(path):
    nb = nbformat.read(path, as_version=4)
    repo, branch = nbheader.REPO, nbheader.BRANCH
    badge = (f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{path.name}")
    assert badge in nb.cells[0].source
    assert f"git+https://github.com/{repo}@{branch}" in nb.cells[1].source
    everything = "\n".join(c.source for c in nb.cells)
    assert everything.count("colab.research.google.com/github/") == 1, "one badge per notebook"


def test_fork_command_points_every_badge_at_the_fork(tmp_path):
    """`python tools/nbheader.py --repo OWNER/NAME` on a copy: one command, every notebook."""
    (tmp_path / "tools").mkdir()
    shutil.copy2(ROOT / "tools" / "nbheader.py", tmp_path / "tools" / "nbheader.py")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    subprocess.run([sys.executable, str(tmp_path / "tools" / "nbheader.py"), "--repo",
                    "my-course/bn-fork", "--branch", "fall-2027"], check=True, capture_output=True)
    assert 'REPO = "my-course/bn-fork"' in (tmp_path / "tools" / "nbheader.py").read_text()
    for path in sorted((tmp_path / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert f"github/my-course/bn-fork/blob/fall-2027/notebooks/{path.name}" in nb.cells[0].source
        assert "git+https://github.com/my-course/bn-fork@fall-2027" in nb.cells[1].source
    with pytest.raises(SystemExit, match="OWNER/NAME"):
        nbheader.set_repo("", "not a repo", "main")
