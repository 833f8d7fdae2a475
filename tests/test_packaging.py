"""Packaging: environment.yml agrees with pyproject.toml; the wheel carries the data and runs a
notebook from a folder outside the checkout (the Colab path, as far as it goes offline)."""

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _split(spec: str):
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = dict(_split(s) for s in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    conda.pop("python")
    conda.pop("pip")
    assert conda == runtime
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-e .[test]"]
    assert set(runtime) == {"jax", "numpy", "matplotlib", "ipywidgets", "jupyter"}


def test_test_extra_has_the_test_tools_but_not_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test = {_split(s)[0] for s in project["optional-dependencies"]["test"]}
    assert {"pytest", "keras", "playwright", "nbclient", "nbformat"} <= test
    assert "torch" not in test  # .ci/run installs the CPU build; pip would fetch a GPU build


def _site_packages(python: Path) -> str:
    return subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip()


@pytest.mark.slow
def test_wheel_installs_and_runs_a_notebook_outside_the_checkout(tmp_path):
    # Build the wheel from a clean copy of the tracked sources (no stale build/ folder)
    src = tmp_path / "src"
    files = subprocess.check_output(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                                    text=True).split()
    for f in files:
        if f.startswith(("bn_helpers/", "data/")) or f in ("pyproject.toml", "README.md"):
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist),
                    str(src)], check=True, capture_output=True)
    wheel = next(dist.glob("bn_helpers-*.whl"))

    # A fresh venv gets the wheel only; the scientific stack comes from this venv, the way
    # Colab already has it (the setup cell installs with --no-deps)
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    py = fresh / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True)
    (Path(_site_packages(py)) / "zz_shared_stack.pth").write_text(_site_packages(Path(sys.executable)))

    # Run notebook 00 from a folder outside the checkout, with the fresh interpreter as kernel
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy2(ROOT / "notebooks" / "00_start_here.ipynb", work)
    script = (
        "import nbformat, bn_helpers, sys\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read('00_start_here.ipynb', 4)\n"
        "nb.cells.append(nbformat.v4.new_code_cell("
        "'import bn_helpers, bn_helpers.data as d; print(\"BNH\", bn_helpers.__file__); "
        "print(\"DATA\", d._shipped_file(\"mnist5k.npz\"))'))\n"
        "NotebookClient(nb, timeout=600, kernel_name='python3').execute()\n"
        "print(nb.cells[-1].outputs[0]['text'])\n"
    )
    env = dict(os.environ, BN_FAST="1", PYTHONPATH="", JUPYTER_PATH="")
    out = subprocess.run([str(py), "-c", script], cwd=work, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"BNH {fresh}" in out.stdout, out.stdout       # the wheel's copy, not the checkout's
    assert f"DATA {fresh}" in out.stdout and "_datafiles" in out.stdout


def test_readme_quick_start_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.startswith("#")]
    assert commands == ["python3 dev.py lab", "python3 dev.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 dev.py test" in ci


def test_notebooks_do_not_reach_the_network():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells[2:] if c.cell_type == "code")
        assert "http://" not in code and "https://" not in code, path.name
        assert "download(" not in code, path.name


def test_lab_overrides_merge_and_are_never_read_half_written(tmp_path):
    """Two browser-test workers write the venv's JupyterLab overrides at once (JupyterLab and
    Notebook 7 share the file); a reader in between must always find whole JSON."""
    import importlib.util
    import json
    import threading

    spec = importlib.util.spec_from_file_location("bn_dev", ROOT / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    path = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"other:plugin": {"kept": True}}))
    bad = []

    def write():
        for _ in range(100):
            try:
                dev.lab_overrides(tmp_path)
            except Exception as err:  # noqa: BLE001 (reported below)
                bad.append(err)

    def read():
        for _ in range(400):
            try:
                json.loads(path.read_text())
            except ValueError as err:
                bad.append(err)

    threads = [threading.Thread(target=f) for f in (write, write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad, f"{len(bad)} writes or reads failed (half-written JSON?), e.g. {bad[0]!r}"
    merged = json.loads(path.read_text())
    assert merged["other:plugin"] == {"kept": True}
    assert merged["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    assert not list(path.parent.glob("*.tmp"))
